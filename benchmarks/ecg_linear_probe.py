"""A converged linear classifier on the pipeline's inputs, as a reference for the networks.

scikit-learn's multinomial logistic regression (lbfgs, balanced class weights, L2 strength C)
on the same beats every model sees (``PrepConfig()``): the RR features plus the residual channel
(window minus the record's median beat), or plus both channels. Trained on DS1 minus the hold-out
records (N, S, V, F beats; Q left out as in ``TrainConfig``), C chosen on the DS1 hold-out
macro-F1, DS2 reported for every C (for information) and for the chosen one. This is the
classical family of de Chazal et al. (2004), without their hand-made morphology features.

    NASCORE_DATA=../shared/data python benchmarks/ecg_linear_probe.py
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, header  # noqa: E402

import numpy as np  # noqa: E402

from nascore.io import atomic_write_json  # noqa: E402

FEATURES = {"rr + residual": lambda b, i: np.concatenate([b.rr[i], b.x[i, 1]], 1),
            "rr + window + residual": lambda b, i: np.concatenate([b.rr[i], b.x[i, 0], b.x[i, 1]], 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=None)
    ap.add_argument("--C", default="0.01,0.1,1")
    ap.add_argument("--out", default=str(RESULTS / "ecg_linear_probe.json"))
    args = ap.parse_args(argv)
    from sklearn.linear_model import LogisticRegression

    from ecgnas.data import PrepConfig
    from ecgnas.evaluate import load_data
    from ecgnas.metrics import classification_report

    beats, sp = load_data(args.data, PrepConfig(), "inter", progress=False)
    tr = sp["train"][beats.y[sp["train"]] < 4]
    rows = []
    for name, feat in FEATURES.items():
        for c in (float(v) for v in args.C.split(",")):
            t = time.process_time()
            clf = LogisticRegression(C=c, class_weight="balanced", max_iter=3000)
            clf.fit(feat(beats, tr), beats.y[tr])
            row = {"features": name, "C": c, "cpu_seconds": round(time.process_time() - t, 1)}
            for part, key in (("val", "holdout"), ("test", "ds2")):
                idx = sp[part]
                r = classification_report(beats.y[idx], clf.predict(feat(beats, idx)))
                row[key] = {"macro_f1": r["macro_f1"], "accuracy": r["accuracy"],
                            **{f"{k}_{m}": r["per_class"][k][m] for k in ("S", "V") for m in ("se", "ppv", "f1")}}
            rows.append(row)
            print(name, c, f"hold-out {row['holdout']['macro_f1']:.1f}  DS2 {row['ds2']['macro_f1']:.1f} "
                  f"(S F1 {row['ds2']['S_f1']:.1f}, V F1 {row['ds2']['V_f1']:.1f})", flush=True)
    chosen = {name: max((r for r in rows if r["features"] == name), key=lambda r: r["holdout"]["macro_f1"])
              for name in FEATURES}
    atomic_write_json(args.out, {**header(), "model": "sklearn LogisticRegression(lbfgs, class_weight=balanced)",
                                 "selection": "C by DS1 hold-out macro-F1", "rows": rows,
                                 "chosen": {k: {"C": v["C"], "holdout": v["holdout"], "ds2": v["ds2"]}
                                            for k, v in chosen.items()}})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
