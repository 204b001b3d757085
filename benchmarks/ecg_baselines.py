"""Hand-designed ECG models on the inter-patient MIT-BIH protocol (DS1 -> DS2), several seeds.

For each hand-designed model (Kachuee et al. 2018, Acharya et al. 2017, the 1D ResNet + RR) and
seed: ``ecgnas train`` with the default recipe (:class:`ecgnas.train.TrainConfig` defaults, the
default :class:`ecgnas.data.PrepConfig`: 180 Hz, window + residual channels, five RR features),
early stopping on the DS1 hold-out, one evaluation on DS2. Records DS2 per-class Se/+P/F1 of S and
V, accuracy, macro-F1 (N,S,V,F), parameters, training time and throughput into
``benchmarks/results/ecg_baselines.json`` (machine, date, command, settings). The random-search
baseline over the hand-designed family is measured by ``benchmarks/ecg_search.py`` (it runs
through the same search pipeline as the NAS methods).

Resumable: every run is an ``ecgnas train`` folder under ``--work``; finished runs are read
back, the JSON is rewritten after every run.

Example (the recorded results)::

    NASCORE_DATA=../shared/data python benchmarks/ecg_baselines.py --seeds 0,1,2 --work runs/ecg_hand
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))
from common import RESULTS, header  # noqa: E402
from nascore.cliutil import parse_seeds  # noqa: E402
from nascore.io import atomic_write_json  # noqa: E402

MODELS = ("acharya", "kachuee", "resnet", "linear")
HEADLINE = (("accuracy", ("accuracy",)), ("macro_f1", ("macro_f1",)), ("S_se", ("S", "se")), ("S_ppv", ("S", "ppv")),
            ("S_f1", ("S", "f1")), ("V_se", ("V", "se")), ("V_ppv", ("V", "ppv")), ("V_f1", ("V", "f1")))


def _get(d: dict, path):
    for k in path:
        d = d[k]
    return d


def stats(values) -> dict:
    v = [x for x in values if x is not None]  # +P is undefined (None) when a class is never predicted
    return {"mean": statistics.fmean(v) if v else None, "std": statistics.stdev(v) if len(v) > 1 else None,
            "n": len(v)}


def entry(summary: dict, **extra) -> dict:
    t = summary["test"]
    return {**extra, "params": summary["params"], "window": summary["window"], "epochs_run": summary["epochs_run"],
            "best_epoch": summary["best_epoch"], "train_seconds": round(summary["train_seconds"], 1),
            "throughput_beats_per_s": round(summary["throughput"], 1), "val_macro_f1": summary["best_val_macro_f1"],
            "test": {"accuracy": t["accuracy"], "macro_f1": t["macro_f1"], "kappa": t["kappa"], "S": t["S"],
                     "V": t["V"], "ec57_sveb": t["sveb"], "ec57_veb": t["veb"]}}


def aggregate(entries: list[dict]) -> dict:
    """Mean and sample standard deviation over seeds of the headline numbers, per model."""
    out = {}
    for model in sorted({e["model"] for e in entries}):
        rows = [e for e in entries if e["model"] == model]
        agg = {"n_seeds": len(rows), "params": rows[0]["params"]}
        for name, path in HEADLINE:
            agg[name] = stats(_get(r["test"], path) for r in rows)
        for name in ("val_macro_f1", "train_seconds", "throughput_beats_per_s"):
            agg[name] = stats(r[name] for r in rows)
        out[model] = agg
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--data", default=None)
    ap.add_argument("--work", default="runs/ecg_hand", help="run folders (resumable)")
    ap.add_argument("--out", default=str(RESULTS / "ecg_baselines.json"))
    args = ap.parse_args(argv)

    from ecgnas.commands.train import train_run
    from ecgnas.data import PrepConfig
    from ecgnas.train import TrainConfig

    work = Path(args.work)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    base = TrainConfig(device=args.device, num_threads=args.threads)
    doc = {**header(), "protocol": "inter-patient MIT-BIH (de Chazal 2004): train DS1 minus hold-out records, "
                                   "early stopping on the DS1 hold-out, test DS2",
           "prep": PrepConfig().to_dict(), "train_config": base.to_dict(),
           "note": "metrics in percent; DS2 used only for reporting", "entries": [], "aggregate": {}}
    t_start = time.time()
    for model in models:
        for seed in parse_seeds(args.seeds):
            run = work / f"{model}-s{seed}"
            cfg = TrainConfig(**{**base.to_dict(), "seed": seed})
            summary = train_run(run, model, train=cfg, prep=PrepConfig(), split="inter", data=args.data, progress=True)
            doc["entries"].append(entry(summary, model=model, seed=seed, run=str(run)))
            doc["aggregate"] = aggregate(doc["entries"])
            doc["wall_seconds_this_invocation"] = round(time.time() - t_start, 1)
            atomic_write_json(args.out, doc)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
