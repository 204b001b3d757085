"""How well does each selection signal predict DS2? The 5-record DS1 hold-out vs grouped CV over DS1.

A search can only be as good as the score it maximises. This script takes every final model of
``benchmarks/results/ecg_search.json`` (the best architecture of each method and seed, and of the
hand-designed random-search baseline) and the default hand-designed models of
``benchmarks/results/ecg_baselines.json``, plus the ``linear`` model (logistic regression on the
residual channel and RR features, trained here with the same recipe), and scores each of them
the two ways a search can (``ecgnas.evaluator.ECGEvaluator``, search fidelity, same seed as its run):

* ``holdout``: short training on DS1 minus the hold-out records, macro-F1 on the 5 hold-out records;
* ``cv4``: grouped 4-fold cross-validation over the 22 DS1 records (``ecgnas.data.record_folds``),
  macro-F1 of the pooled out-of-fold predictions.

It then reports the rank correlation (Spearman, Kendall) of each signal with the DS2 macro-F1
of the same architecture's final model (full schedule, from the committed results) -- the
figure a user cares about and no search may look at. DS2 is read from those results only; it
never enters a score here. Output: ``benchmarks/results/ecg_selection.json`` and a scatter PNG.

Example (the recorded results)::

    NASCORE_DATA=../shared/data python benchmarks/ecg_selection.py --jobs 2 --work runs/ecg_selection
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))
from common import RESULTS, header, parallel_map  # noqa: E402
from nascore.io import atomic_write_json, read_json  # noqa: E402

SIGNALS = ("holdout", "cv")


def points(work: Path, data) -> list[dict]:
    """Every (label, seed, candidate, DS2 macro-F1 of its final model) to score."""
    search = read_json(RESULTS / "ecg_search.json")
    out = []
    for name, block in [*search["methods"].items(), ("baseline (random search, hand-designed)", search["baseline"])]:
        for r in block["runs"]:
            out.append({"group": name, "seed": r["seed"], "arch": r["best_arch"], "ds2_macro_f1": r["ds2"]["macro_f1"],
                        "final_val_macro_f1": r["final_val_macro_f1"]})
    for e in read_json(RESULTS / "ecg_baselines.json")["entries"]:
        out.append({"group": f"hand-designed {e['model']}", "seed": e["seed"], "model": e["model"],
                    "ds2_macro_f1": e["test"]["macro_f1"], "final_val_macro_f1": e["val_macro_f1"]})
    for seed in (0, 1, 2):  # the linear model is not in the committed tables: train it with the same recipe
        from ecgnas.data import DataSpec
        from ecgnas.run import train_run
        from ecgnas.train import TrainConfig

        s = train_run(str(work / f"linear-final-s{seed}"), "linear", train=TrainConfig(num_threads=1, seed=seed),
                      spec=DataSpec(data=data), progress=False)
        out.append({"group": "hand-designed linear", "seed": seed, "model": "linear",
                    "ds2_macro_f1": s["test"]["macro_f1"], "final_val_macro_f1": s.get("best_val_macro_f1")})
    return out


def candidate(p: dict) -> tuple[object, str, dict]:
    """``(space, canonical string, candidate dict)`` of a point."""
    from ecgnas.evaluator import candidate_of
    from ecgnas.search import get_search_space

    if "model" in p:
        return None, p["model"], {"model": p["model"], "hparams": {}, "train": {}, "prep": {}}
    if p["arch"].startswith("Genotype("):
        return None, p["arch"], {"model": "darts1d", "hparams": {"genotype": p["arch"]}, "train": {}, "prep": {}}
    space = get_search_space("resnet-family" if p["group"].startswith("baseline") else "ecg-cell")
    return space, p["arch"], candidate_of(space, space.from_string(p["arch"]))


def _job(job: dict) -> dict:
    import torch

    torch.set_num_threads(1)
    from ecgnas.data import DataSpec
    from ecgnas.evaluator import ECGEvaluator

    p = job["point"]
    space, key, cand = candidate(p)
    ev = ECGEvaluator(space, seed=p["seed"], spec=DataSpec(data=job["data"]), latency=False, selection=job["signal"],
                      cache_dir=job["cache"])
    res = ev.cached(key, cand).to_dict()  # cached like a search's: a rerun (or a crash) repeats nothing
    return {**p, "signal": job["signal"], "score": res["score"], "S_f1": res["metrics"].get("val_S_f1"),
            "cost": res["cost"]}


def correlations(rows: list[dict], signal: str, target: str = "ds2_macro_f1") -> dict:
    from scipy.stats import kendalltau, spearmanr

    xs = [r["score"] for r in rows if r["signal"] == signal]
    ys = [r[target] for r in rows if r["signal"] == signal]
    rho, p_rho = spearmanr(xs, ys)
    tau, p_tau = kendalltau(xs, ys)
    return {"n": len(xs), "spearman": float(rho), "spearman_p": float(p_rho), "kendall": float(tau),
            "kendall_p": float(p_tau)}


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = sorted({r["group"] for r in rows})
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6), sharey=True)
    for ax, signal, label in zip(axes, SIGNALS, ("5-record DS1 hold-out", "grouped 4-fold CV over DS1")):
        for k, g in enumerate(groups):
            sel = [r for r in rows if r["signal"] == signal and r["group"] == g]
            ax.scatter([r["score"] for r in sel], [r["ds2_macro_f1"] for r in sel], s=28, label=g,
                       marker="os^vD<>p*"[k % 9])
        c = correlations(rows, signal)
        ax.set_title(f"{label}: Spearman {c['spearman']:.2f}")
        ax.set_xlabel("selection score at search fidelity (macro-F1 %)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("DS2 macro-F1 of the final model (%)")
    axes[1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--data", default=None)
    ap.add_argument("--work", default="runs/ecg_selection")
    ap.add_argument("--out", default=str(RESULTS / "ecg_selection.json"))
    args = ap.parse_args(argv)
    work = Path(args.work)
    (work / "cache").mkdir(parents=True, exist_ok=True)
    pts = points(work, args.data)
    jobs = [{"point": p, "signal": s, "data": args.data, "cache": str(work / "cache")} for s in SIGNALS for p in pts]
    rows = parallel_map(_job, jobs, args.jobs, desc="selection signals")
    png = Path(args.out).with_suffix(".png")
    plot(rows, png)
    summary = {s: {"vs_ds2": correlations(rows, s),
                   "cpu_seconds_per_candidate": sum(r["cost"] for r in rows if r["signal"] == s) /
                   max(1, sum(r["signal"] == s for r in rows))} for s in SIGNALS}
    final = [{"score": r["final_val_macro_f1"], "ds2_macro_f1": r["ds2_macro_f1"], "signal": "final"}
             for r in rows if r["signal"] == "holdout"]
    summary["final_model_holdout"] = {"vs_ds2": correlations(final, "final")}
    atomic_write_json(args.out, {**header(), "signals": {"holdout": "5-record DS1 hold-out (114 124 201 205 223)",
                                                          "cv": "grouped 4-fold CV over the 22 DS1 records"},
                                 "fidelity": "ecgnas.evaluator.default_fidelity() (3 epochs x 8,192 beats)",
                                 "summary": summary, "rows": rows, "figure": str(png.name)})
    for s, v in summary.items():
        print(s, {k: round(x, 3) if isinstance(x, float) else x for k, x in v["vs_ds2"].items()})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
