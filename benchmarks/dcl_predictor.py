"""Ranking quality of the DCL-ENAS predictor and baselines on NAS-Bench-201 CIFAR-10.

For every trial and every number of labelled architectures n (20, 50, 100, 200): n architectures
are drawn at random (seeded by trial and n) with their valid_acc_200; each predictor is trained on
them and ranks the remaining 15,625 - n; reported are Kendall's tau and Spearman's rho between
predicted scores and valid_acc_200 (mean ± std over trials). Predictors, side by side:

* ``dcl`` -- the full two-stage predictor (stage 1 contrastive pretraining, stage 2 ranking) with
  the default :class:`~nascore.predictors.dcl.DCLConfig` (since issue 15 item 9 the margin ranking
  loss; the 2026-11-23 "Predictor ranking" table and the ``dcl`` column of the issue-15 table in
  ``benchmarks/RESULTS.md`` ran the previous default, RankNet, now ``dcl-pairwise``);
* ``dcl-no-pretrain`` -- the same stage 2 from a randomly initialised GIN;
* ``gin-mse`` -- the same GIN shape trained with MSE (:class:`~nascore.predictors.GINRegressor`);
* ``path-mlp`` -- an MLP on the path encoding, MSE (:class:`~nascore.predictors.PathMLPRegressor`);
* ``dcl-paper`` (only with ``--methods``) -- the two-stage predictor with the paper's stage 2
  (:data:`PAPER_STAGE2`: margin ranking loss plus the supervised contrastive term with a linear
  warm-up of its weight), same stage 1 as ``dcl``;
* ``dcl-margin`` (only with ``--methods``) -- the margin ranking loss alone (contrastive term off
  as in ``dcl``), to separate the two changes;
* ``dcl-pairwise`` (only with ``--methods``) -- the previous default, RankNet
  (``rank_loss="pairwise"``), same stage 1.

``--methods dcl,dcl-paper`` runs a subset; ``--out NAME`` writes ``NAME.json``/``NAME.png``
instead of ``dcl_predictor.*``.

Stage 1 uses no labels, so one pretraining per trial (seed = trial) serves every n of that trial.
Resumable: each trial writes ``--work/trial-XXXX.json``; finished trials are read back.
Writes ``benchmarks/results/dcl_predictor.json`` and ``dcl_predictor.png``.

    python benchmarks/dcl_predictor.py [--trials 20] [--sizes 20,50,100,200] [--jobs 2] [--methods ...] [--out NAME]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, header, parallel_map  # noqa: E402

import numpy as np  # noqa: E402
from scipy.stats import kendalltau, spearmanr  # noqa: E402

from nascore.io import atomic_write_json, read_json  # noqa: E402
from nascore.report import save_figure  # noqa: E402

METHODS = ("dcl", "dcl-no-pretrain", "gin-mse", "path-mlp")
ALL_METHODS = METHODS + ("dcl-paper", "dcl-margin", "dcl-pairwise")
#: the paper's stage 2 (issue 15 item 9); margin and weights are our choices (the paper gives none)
PAPER_STAGE2 = {"rank_loss": "margin", "margin": 0.1, "supcon_weight": 0.1, "contrastive_warmup": 30}
_STATE = {}


def _setup(data):
    if "space" not in _STATE:
        from nascore.benchmarks.nb201 import NB201Table
        from nascore.spaces import get_space

        space = get_space("nb201")
        table = NB201Table.load("cifar10", data)
        archs = list(space.enumerate())
        y = np.array([table.query(space.to_string(a), 200)["valid_accuracy"] for a in archs])
        _STATE.update(space=space, table=table, archs=archs, y=y)
    return _STATE


def run_trial(job) -> dict:
    import torch

    from nascore.predictors import DCLConfig, DCLPredictor, GINRegressor, PathMLPRegressor

    torch.set_num_threads(1)
    work, trial, sizes, data, methods = job
    path = Path(work) / f"trial-{trial:04d}.json"
    if path.exists():
        old = read_json(path)
        if old.get("sizes") == list(sizes) and old.get("methods", list(METHODS)) == list(methods):
            return old
    st = _setup(data)
    space, archs, y = st["space"], st["archs"], st["y"]
    out = {"trial": trial, "sizes": list(sizes), "methods": list(methods), "results": {}, "cpu_seconds": {}}
    c = time.process_time()
    DCLPredictor(space, seed=trial).pretrain()  # cached in-process for every n below
    out["cpu_seconds"]["dcl-pretrain"] = time.process_time() - c
    for n in sizes:
        rng = np.random.default_rng([trial, n])
        idx = rng.choice(len(archs), size=n, replace=False)
        mask = np.ones(len(archs), bool)
        mask[idx] = False
        train = [archs[i] for i in idx]
        test = [a for a, m in zip(archs, mask) if m]
        ytest = y[mask]
        row = {}
        for method in methods:
            c = time.process_time()
            if method == "dcl":
                p = DCLPredictor(space, seed=trial)
                p.pretrain()
            elif method in ("dcl-paper", "dcl-margin", "dcl-pairwise"):  # stage 1 reads no stage-2 field
                p = DCLPredictor(space, seed=trial)
                p.pretrain()
                p.cfg = DCLConfig.from_dict(PAPER_STAGE2 if method == "dcl-paper" else
                                            {"rank_loss": "pairwise"} if method == "dcl-pairwise" else
                                            {"rank_loss": "margin", "margin": PAPER_STAGE2["margin"]})
            elif method == "dcl-no-pretrain":
                p = DCLPredictor(space, seed=trial)
            elif method == "gin-mse":
                p = GINRegressor(space, seed=trial)
            else:
                p = PathMLPRegressor(space, seed=trial)
            p.fit(train, y[idx])
            fit_cpu = time.process_time() - c
            pred = p.predict(test)
            row[method] = {"kendall_tau": float(kendalltau(pred, ytest)[0]),
                           "spearman_rho": float(spearmanr(pred, ytest)[0]), "fit_cpu_seconds": fit_cpu}
        out["results"][str(n)] = row
    atomic_write_json(path, out)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--sizes", default="20,50,100,200")
    ap.add_argument("--data", default=None, help="folder holding nb201-cifar10.csv")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--work", default="/tmp/dcl_predictor")
    ap.add_argument("--methods", default=",".join(METHODS), help=f"comma list from {', '.join(ALL_METHODS)}")
    ap.add_argument("--out", default="dcl_predictor", help="name of the JSON/PNG under benchmarks/results")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    bad = [m for m in methods if m not in ALL_METHODS]
    if bad or not methods:
        ap.error(f"--methods: unknown {bad} (choose from {', '.join(ALL_METHODS)})")
    jobs = [(args.work, t, tuple(sizes), args.data, methods) for t in range(args.trials)]
    t0 = time.perf_counter()
    trials = parallel_map(run_trial, jobs, args.jobs, desc="trials")
    summary = {}
    for n in sizes:
        summary[str(n)] = {}
        for m in methods:
            vals = {k: np.array([t["results"][str(n)][m][k] for t in trials])
                    for k in ("kendall_tau", "spearman_rho", "fit_cpu_seconds")}
            summary[str(n)][m] = {k: {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0}
                                  for k, v in vals.items()}
    pre = np.array([t["cpu_seconds"]["dcl-pretrain"] for t in trials])
    out = {**header(), "target": "valid_acc_200, NAS-Bench-201 CIFAR-10, test = all other cells",
           "trials": args.trials, "sizes": sizes, "wall_seconds_total": time.perf_counter() - t0,
           "pretrain_cpu_seconds": {"mean": float(pre.mean()), "std": float(pre.std(ddof=1)) if len(pre) > 1 else 0.0},
           "summary": summary}
    from nascore.predictors import DCLConfig

    out["dcl_config"] = DCLConfig().to_dict()
    out["methods"] = list(methods)
    if "dcl-paper" in methods:
        out["dcl_paper_stage2"] = dict(PAPER_STAGE2)
    atomic_write_json(RESULTS / f"{args.out}.json", out)
    print("| n | " + " | ".join(f"{m} tau" for m in methods) + " | " + " | ".join(f"{m} rho" for m in methods) + " |")
    for n in sizes:
        s = summary[str(n)]
        print(f"| {n} | " + " | ".join(f"{s[m]['kendall_tau']['mean']:.3f} ± {s[m]['kendall_tau']['std']:.3f}"
                                       for m in methods)
              + " | " + " | ".join(f"{s[m]['spearman_rho']['mean']:.3f}" for m in methods) + " |")
    _plot(summary, sizes, args.trials, methods, args.out)
    print(f"wrote {RESULTS / (args.out + '.json')}")


def _plot(summary, sizes, trials, methods=METHODS, name="dcl_predictor") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for m in methods:
        mu = [summary[str(n)][m]["kendall_tau"]["mean"] for n in sizes]
        sd = [summary[str(n)][m]["kendall_tau"]["std"] for n in sizes]
        ax.errorbar(sizes, mu, yerr=sd, marker="o", capsize=3, label=m)
    ax.set_xscale("log")
    ax.set_xticks(sizes)
    ax.set_xticklabels([str(n) for n in sizes])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("labelled architectures")
    ax.set_ylabel("Kendall tau on the rest of NAS-Bench-201")
    ax.set_title(f"NAS-Bench-201 CIFAR-10 valid_acc_200, {trials} trials")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, RESULTS / f"{name}.png")  # atomic, unique temporary name


if __name__ == "__main__":
    main()
