"""Score the neurokit2 R-peak detector (ecgnas.data.rpeaks) against the MIT-BIH reference beats.

For each of the 48 records: detect R peaks on the raw MLII lead (the first stored lead for 102
and 104, which have no MLII), match them one-to-one to the reference beat annotations (every
annotation whose symbol is an AAMI beat symbol, :data:`ecgnas.aami.SYMBOL_TO_CLASS`) within
150 ms, and count TP / FN / FP. Reports sensitivity Se = TP/(TP+FN) and positive predictivity
+P = TP/(TP+FP) per record and pooled over all records (gross statistics, ANSI/AAMI EC57), over
the whole record (no 5-minute learning period is excluded). Writes
``benchmarks/results/rpeak_detector.json``.

    python benchmarks/rpeak_detector.py [--data DIR] [--tolerance 0.15] [--method neurokit] [--jobs N]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, header  # noqa: E402

from ecgnas.data.mitdb import find_mitdb, list_records  # noqa: E402
from nascore.io import atomic_write_json  # noqa: E402


def score_record(folder: str, name: str, tolerance: float, method: str) -> dict:
    import numpy as np
    import wfdb

    from ecgnas.aami import SYMBOL_TO_CLASS
    from ecgnas.data.rpeaks import detect_rpeaks, score_detections

    header_ = wfdb.rdheader(f"{folder}/{name}")
    lead = "MLII" if "MLII" in header_.sig_name else header_.sig_name[0]
    rec = wfdb.rdrecord(f"{folder}/{name}", channel_names=[lead])
    ann = wfdb.rdann(f"{folder}/{name}", "atr")
    ref = np.array([s for s, sym in zip(ann.sample, ann.symbol) if sym in SYMBOL_TO_CLASS])
    t = time.perf_counter()
    det = detect_rpeaks(rec.p_signal[:, 0], rec.fs, method=method)
    secs = time.perf_counter() - t
    s = score_detections(ref, det, rec.fs, tolerance)
    return {"record": name, "lead": lead, **s, "detect_seconds": round(secs, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None)
    ap.add_argument("--tolerance", type=float, default=0.15, help="matching tolerance in seconds")
    ap.add_argument("--method", default="neurokit", help="neurokit2 ecg_peaks method")
    ap.add_argument("--jobs", type=int, default=os.cpu_count())
    args = ap.parse_args()
    folder = find_mitdb(args.data)
    names = list_records(folder)
    t = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=multiprocessing.get_context("spawn")) as ex:
        per = list(ex.map(score_record, [str(folder)] * len(names), names, [args.tolerance] * len(names),
                          [args.method] * len(names)))
    wall = time.perf_counter() - t
    tp, fn, fp = (sum(r[k] for r in per) for k in ("tp", "fn", "fp"))
    pooled = {"n_ref": tp + fn, "n_det": tp + fp, "tp": tp, "fn": fn, "fp": fp,
              "se": round(tp / (tp + fn), 5), "ppv": round(tp / (tp + fp), 5)}
    worst = sorted(per, key=lambda r: min(r["se"], r["ppv"]))[:5]
    result = {**header(), "data": str(folder), "method": args.method, "tolerance_s": args.tolerance,
              "records": len(per), "seconds": round(wall, 2), "global": pooled,
              "mean_of_records": {"se": round(sum(r["se"] for r in per) / len(per), 5),
                                  "ppv": round(sum(r["ppv"] for r in per) / len(per), 5)},
              "worst_records": [{k: r[k] for k in ("record", "se", "ppv", "fn", "fp")} for r in worst],
              "per_record": per}
    path = RESULTS / "rpeak_detector.json"
    atomic_write_json(path, result)
    print(f"{len(per)} records, Se {pooled['se']:.4f}, +P {pooled['ppv']:.4f} (TP {tp}, FN {fn}, FP {fp}) "
          f"in {wall:.1f} s; wrote {path}")
    for r in worst:
        print(f"  record {r['record']}: Se {r['se']:.4f}, +P {r['ppv']:.4f}")


if __name__ == "__main__":
    main()
