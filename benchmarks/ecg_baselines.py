"""Hand-designed ECG baselines on the inter-patient MIT-BIH protocol (DS1 -> DS2).

For each hand-designed model (Kachuee et al. 2018, Acharya et al. 2017, the 1D ResNet + RR
features) over several seeds, and for the random-search best of the ResNet family, train on
DS1-train with early stopping on the DS1 hold-out records and evaluate once on DS2. Records DS2
per-class Se/+P/F1 of S and V, accuracy, macro-F1 (N,S,V,F), parameters, training time and
training throughput into ``benchmarks/results/ecg_baselines.json`` (with machine, date, command
and every training setting).

Resumable: every run lives in its own folder under ``--work`` (``ecgnas train`` / ``ecgnas
baseline random-search`` run folders); finished runs are read back instead of re-trained, a
killed random search resumes from its history, and the JSON is rewritten after every entry.

Example (the settings of the recorded hand-designed results; the random search ran as a second process with
``--models "" --trials 10 --out benchmarks/results/ecg_baselines_random_search.json``)::

    NASCORE_DATA=../shared/data python benchmarks/ecg_baselines.py --epochs 16 --patience 5 --samples-per-epoch 8192 \\
        --seeds 0,1,2 --trials 0 --threads 1 --work runs/ecg_b2
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

MODELS = ("acharya", "kachuee", "resnet")


def _entry(summary: dict, **extra) -> dict:
    t = summary["test"]
    return {**extra, "params": summary["params"], "window": summary["window"],
            "epochs_run": summary["epochs_run"], "best_epoch": summary["best_epoch"],
            "train_seconds": round(summary["train_seconds"], 1), "throughput_beats_per_s": round(summary["throughput"], 1),
            "val_macro_f1": summary["best_val_macro_f1"],
            "test": {"accuracy": t["accuracy"], "macro_f1": t["macro_f1"], "kappa": t["kappa"], "S": t["S"], "V": t["V"],
                     "ec57_sveb": t["sveb"], "ec57_veb": t["veb"]}}


def _aggregate(entries: list[dict]) -> dict:
    """Mean and sample standard deviation over seeds of the headline numbers, per model."""
    out = {}
    for model in sorted({e["model"] for e in entries}):
        rows = [e for e in entries if e["model"] == model]
        vals = {
            "accuracy": [r["test"]["accuracy"] for r in rows], "macro_f1": [r["test"]["macro_f1"] for r in rows],
            "S_se": [r["test"]["S"]["se"] for r in rows], "S_ppv": [r["test"]["S"]["ppv"] for r in rows],
            "S_f1": [r["test"]["S"]["f1"] for r in rows], "V_se": [r["test"]["V"]["se"] for r in rows],
            "V_ppv": [r["test"]["V"]["ppv"] for r in rows], "V_f1": [r["test"]["V"]["f1"] for r in rows],
            "val_macro_f1": [r["val_macro_f1"] for r in rows], "train_seconds": [r["train_seconds"] for r in rows],
            "throughput_beats_per_s": [r["throughput_beats_per_s"] for r in rows],
        }
        agg = {"n_seeds": len(rows), "params": rows[0]["params"]}
        for k, v in vals.items():
            v = [x for x in v if x is not None]  # +P is undefined (None) when a class is never predicted
            agg[k] = {"mean": statistics.fmean(v) if v else None,
                      "std": statistics.stdev(v) if len(v) > 1 else None, "n": len(v)}
        out[model] = agg
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--samples-per-epoch", type=int, default=8192)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--patience", type=int, default=4)
    ap.add_argument("--sampler", default="balanced",
                    help="batch sampler of the hand-designed runs (balanced: chosen on the DS1 hold-out macro-F1)")
    ap.add_argument("--class-weight", default="none")
    ap.add_argument("--trials", type=int, default=8, help="random-search trials (0: skip the search)")
    ap.add_argument("--search-seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--data", default=None)
    ap.add_argument("--work", default="runs/ecg_baselines", help="run folders (resumable)")
    ap.add_argument("--out", default=str(RESULTS / "ecg_baselines.json"))
    args = ap.parse_args(argv)

    from ecgnas.baselines import SearchSpace, random_search
    from ecgnas.commands.train import train_run
    from ecgnas.data import PrepConfig
    from ecgnas.train import TrainConfig

    work = Path(args.work)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    seeds = parse_seeds(args.seeds)
    base = TrainConfig(epochs=args.epochs, samples_per_epoch=args.samples_per_epoch, batch_size=args.batch_size,
                       patience=args.patience, device=args.device, num_threads=args.threads,
                       sampler=args.sampler, class_weight=args.class_weight)
    doc = {**header(), "protocol": "inter-patient MIT-BIH (de Chazal 2004): train DS1 minus hold-out records, "
                                   "early stopping and selection on the DS1 hold-out, test DS2",
           "prep": PrepConfig().to_dict(), "train_config": base.to_dict(),
           "note": "each epoch draws samples_per_epoch beats; metrics in percent; DS2 used only for reporting",
           "entries": [], "aggregate": {}, "random_search": None}
    t_start = time.time()

    def save():
        doc["aggregate"] = _aggregate(doc["entries"])
        doc["wall_seconds_this_invocation"] = round(time.time() - t_start, 1)
        atomic_write_json(args.out, doc)

    for model in models:
        for seed in seeds:
            run = work / f"{model}-s{seed}"
            cfg = TrainConfig(**{**base.to_dict(), "seed": seed})
            summary = train_run(run, model, train=cfg, prep=PrepConfig(), split="inter", data=args.data, progress=True)
            doc["entries"].append(_entry(summary, model=model, seed=seed, run=str(run)))
            save()

    if args.trials > 0:
        res = random_search(work / "random_search", args.trials, seed=args.search_seed, base=base, data=args.data,
                            progress=True)
        b, t = res["best"], res["test"]
        doc["random_search"] = {
            "folder": str(work / "random_search"), "n_trials": res["n_trials"], "seed": args.search_seed,
            "space": SearchSpace().to_dict(), "search_train_seconds": round(res["search_seconds"], 1),
            "best_trial": b["trial"], "best_config": b["config"], "params": b["params"],
            "val_macro_f1": b["val_macro_f1"], "epochs_run": b["epochs_run"], "best_epoch": b["best_epoch"],
            "train_seconds": round(b["train_seconds"], 1), "throughput_beats_per_s": round(b["throughput"], 1),
            "test": {"accuracy": t["accuracy"], "macro_f1": t["macro_f1"], "kappa": t["kappa"], "S": t["S"],
                     "V": t["V"], "ec57_sveb": t["sveb"], "ec57_veb": t["veb"]},
            "trials": res["trials"]}
        save()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
