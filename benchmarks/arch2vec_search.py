"""arch2vec-BO and arch2vec-RL against random search and regularised evolution on NAS-Bench-201 CIFAR-10.

All four strategies run the same seeds in one script, with the search signal valid_acc_200, under
two budgets: 100 queries, and a simulated training time (default 200,000 s of ``train_seconds_200``,
about 110 queries of an average cell). The figure per run is the test accuracy (test_acc_200) of the
best-by-validation cell. The arch2vec strategies use the pretrained NB201 model in the user cache
(``benchmarks/arch2vec_pretrain.py`` or ``nascore arch2vec pretrain --space nb201`` writes it).
``arch2vec-rl-sigma8`` is arch2vec-RL with the action noise of the released code (sigma = 1 raw
is about 8 standardised units here): its proposals are dominated by the noise (see
``nascore.strategies.arch2vec_rl``). Also runs both arch2vec strategies on NAS-Bench-101 (all 423,624 cells embedded) against a
*synthetic* target -- there is no NB101 accuracy table here -- to exercise that code path.

Each (strategy, budget, seed) is a run folder under ``--work``; finished ones are skipped on a rerun.
Writes ``benchmarks/results/arch2vec_search.json`` and curve PNGs.

``--tune-rl MODEL[,MODEL...]`` instead runs the arch2vec-RL tuning grid (action sigma, learning
rate, a frozen policy, the released fixed baseline) on tuning seeds ``--tune-seeds`` (default
100-129, disjoint from the benchmark's seeds), 100 queries, for each pretrained model, and writes
``benchmarks/results/arch2vec_rl_tuning.json``.

    python benchmarks/arch2vec_search.py [--seeds 0-49] [--seconds 200000] [--nb101-seeds 0-4]
    python benchmarks/arch2vec_search.py --tune-rl ~/.cache/nascore/arch2vec/nb201/model.pt
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, header  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from nascore.benchmarks.nb201 import NB201Table  # noqa: E402
from nascore.cliutil import parse_seeds  # noqa: E402
from nascore.evaluation import Result, TabularEvaluator  # noqa: E402
from nascore.io import atomic_write_json, read_json  # noqa: E402
from nascore.report import curve_array, plot_curves, save_figure, summarize_seeds, y_limits  # noqa: E402
from nascore.run import Budget, run_search  # noqa: E402
from nascore.spaces import get_space  # noqa: E402
from nascore.strategies import get_strategy  # noqa: E402

STRATEGIES = ("random", "evolution", "arch2vec-bo", "arch2vec-rl", "arch2vec-rl-sigma8")
#: benchmark labels that run a strategy with non-default parameters
VARIANTS = {"arch2vec-rl-sigma8": ("arch2vec-rl", {"sigma": 8.0})}
PUBLISHED = {"arch2vec-bo": {"valid": 91.41, "test": 94.18}, "arch2vec-rl": {"valid": 91.32, "test": 94.12}}


def run_all(space, strategies, budget, seeds, evaluator, work: Path, params: dict, label: str) -> dict:
    from rich.progress import track

    out = {}
    for name in strategies:
        strategy, extra = VARIANTS.get(name, (name, {}))
        runs = []
        t0 = time.process_time()
        computed = 0
        for seed in track(seeds, description=f"{label} {name}"):
            folder = work / f"{name}" / f"seed-{seed:04d}"
            res_path = folder / "result.json"
            if res_path.exists() and read_json(res_path).get("finished"):
                runs.append(read_json(res_path))
                continue
            kw = {**params.get(strategy, {}), **extra}
            strat = get_strategy(strategy, space, seed=seed, **kw)
            runs.append(run_search(space=space, strategy=strat, evaluator=evaluator, budget=budget, out_dir=folder,
                                   config={"label": label, "strategy": strategy, "seed": seed,
                                           "budget": budget.to_dict(), "params": kw}))
            computed += 1
        s = summarize_seeds(runs)
        if computed:
            s["cpu_seconds_per_search_this_session"] = (time.process_time() - t0) / computed
        s["curve_test_mean"] = [None if np.isnan(x) else round(float(x), 4) for x in np.nanmean(curve_array(runs), 0)]
        out[name] = (s, runs)
    return out


def rl_grid() -> dict:
    grid = {"random search": ("random", {})}
    for sigma in (0.5, 1.0, 2.0, 4.0, 8.0):
        for lr in (0.01, 0.1):
            grid[f"sigma {sigma:g}, lr {lr:g}"] = ("arch2vec-rl", {"sigma": sigma, "lr": lr})
        grid[f"sigma {sigma:g}, frozen policy (lr 1e-9)"] = ("arch2vec-rl", {"sigma": sigma, "lr": 1e-9})
    for sigma in (4.0, 8.0):
        grid[f"sigma {sigma:g}, lr 0.01, released fixed baseline 0.4 on accuracy/100"] = (
            "arch2vec-rl", {"sigma": sigma, "lr": 0.01, "baseline": 0.4, "normalize": False, "reward_scale": 0.01})
    return grid


def tune_rl(space, evaluator, models: list[str], seeds: list[int], queries: int = 100) -> dict:
    """Best-by-validation test accuracy of each grid point (plain ask/tell loop, no run folders)."""
    out = {}
    for model in models:
        rows = {}
        for label, (name, params) in rl_grid().items():
            t = time.process_time()
            best = []
            for seed in seeds:
                kw = {**params, **({"model": model} if name != "random" else {})}
                s = get_strategy(name, space, seed=seed, **kw)
                b = (-np.inf, None)
                for _ in range(queries):
                    archs = s.ask(1)
                    res = [evaluator(a) for a in archs]
                    s.tell(archs, res)
                    for r in res:
                        if r.score > b[0]:
                            b = (r.score, r.metrics["test_accuracy"])
                best.append(b)
            v = np.array(best)
            rows[label] = {"valid_mean": float(v[:, 0].mean()), "valid_std": float(v[:, 0].std()),
                           "test_mean": float(v[:, 1].mean()), "test_std": float(v[:, 1].std()),
                           "cpu_seconds_per_search": (time.process_time() - t) / len(seeds), "params": params}
            print(f"{Path(model).parent.name:>24s} {label:64s} test {rows[label]['test_mean']:.2f} ± "
                  f"{rows[label]['test_std']:.2f}", flush=True)
        out[model] = rows
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tune-rl", default=None, help="comma-separated model.pt paths: run the RL tuning grid")
    ap.add_argument("--tune-seeds", default="100-129")
    ap.add_argument("--seeds", default="0-49")
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=200_000)
    ap.add_argument("--strategies", default=",".join(STRATEGIES))
    ap.add_argument("--nb101-seeds", default="0-4")
    ap.add_argument("--nb101-model", default=None, help="arch2vec NB101 model.pt (default: the user cache)")
    ap.add_argument("--work", default="/tmp/arch2vec-search")
    ap.add_argument("--data", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    seeds = parse_seeds(args.seeds) if args.seeds.strip() else []  # empty: NB101 part only
    strategies = args.strategies.split(",")
    work = Path(args.work)
    space = get_space("nb201")
    table = NB201Table.load("cifar10", args.data)
    ev = TabularEvaluator(space, table, 200)
    opt = table.optimum(200)
    if args.tune_rl:
        tseeds = parse_seeds(args.tune_seeds)
        res = tune_rl(space, ev, [str(Path(m).expanduser()) for m in args.tune_rl.split(",")], tseeds, args.queries)
        atomic_write_json(RESULTS / "arch2vec_rl_tuning.json",
                          {**header(), "seeds": tseeds, "queries": args.queries, "fidelity": 200,
                           "figure": "test_acc_200 of the best-by-valid_acc_200 cell, mean/std over seeds",
                           "results": res})
        print(f"wrote {RESULTS / 'arch2vec_rl_tuning.json'}")
        return
    out = {**header(), "seeds": len(seeds), "fidelity": 200, "optimum": opt, "published_arch2vec": PUBLISHED,
           "results": {}}
    for label, budget in (("queries", Budget(queries=args.queries)), ("seconds", Budget(seconds=args.seconds))):
        if not seeds:
            break
        res = run_all(space, strategies, budget, seeds, ev, work / f"nb201-{label}", {}, f"nb201 {label}")
        out["results"][f"nb201/{label}"] = {"budget": budget.to_dict(), **{k: v[0] for k, v in res.items()}}
        for k, (s, _) in res.items():
            print(f"{label} {k}: valid {s['valid_accuracy']['mean']:.2f} ± {s['valid_accuracy']['std']:.2f}  "
                  f"test {s['test_accuracy']['mean']:.2f} ± {s['test_accuracy']['std']:.2f}  "
                  f"queries {s['queries']['mean']:.1f}")
        if label == "queries":
            plot_curves({k: v[1] for k, v in res.items()}, RESULTS / "arch2vec_search_nb201_queries.png",
                        title=f"NAS-Bench-201 CIFAR-10, {len(seeds)} seeds, {args.queries} queries",
                        optimum=opt["test_accuracy"])
        else:
            _plot_time({k: v[1] for k, v in res.items()}, RESULTS / "arch2vec_search_nb201_seconds.png",
                       f"NAS-Bench-201 CIFAR-10, {len(seeds)} seeds, {args.seconds:.0f} simulated s",
                       opt["test_accuracy"], args.seconds)
        atomic_write_json(RESULTS / "arch2vec_search.json", out)

    nb101_seeds = parse_seeds(args.nb101_seeds) if args.nb101_seeds.strip() else []
    if nb101_seeds:
        s101 = get_space("nb101")
        params = {k: {"model": args.nb101_model} for k in ("arch2vec-bo", "arch2vec-rl")} if args.nb101_model else {}
        res = run_all(s101, ["random", "arch2vec-bo", "arch2vec-rl"], Budget(queries=args.queries), nb101_seeds,
                      synthetic_nb101, work / "nb101-synthetic", params, "nb101 synthetic")
        out["results"]["nb101/synthetic"] = {
            "target": "synthetic: 2*#conv3x3 + #conv1x1 - 0.5*#maxpool + 0.5*longest input-output path (nodes); "
                      "score only (no accuracy)",
            **{k: v[0] for k, v in res.items()}}
        for k, (s, _) in res.items():
            print(f"nb101 synthetic {k}: best score {s['score']['mean']:.2f} ± {s['score']['std']:.2f}")
    atomic_write_json(RESULTS / ("arch2vec_search.json" if seeds else "arch2vec_search_nb101.json"), out)
    print(f"wrote {RESULTS / 'arch2vec_search.json'}")


def synthetic_nb101(arch) -> Result:
    """A smooth synthetic NB101 target (no table here): rewards convolutions and depth."""
    ops = arch.ops
    m = arch.adjacency
    depth = np.zeros(arch.n_nodes)
    for j in range(1, arch.n_nodes):
        preds = np.flatnonzero(m[:, j])
        depth[j] = (depth[preds].max() + 1) if len(preds) else 0
    score = (2 * ops.count("conv3x3-bn-relu") + ops.count("conv1x1-bn-relu") - 0.5 * ops.count("maxpool3x3")
             + 0.5 * depth[-1])
    return Result(score=float(score), metrics={}, cost=1.0)


def _plot_time(curves: dict, path: Path, title: str, optimum: float, seconds: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = np.linspace(0, seconds, 201)
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    means = []
    for label, runs in curves.items():
        arr = np.full((len(runs), len(grid)), np.nan)
        for i, r in enumerate(runs):
            t = np.array([row[1] for row in r["trajectory"]])
            v = np.array([np.nan if row[3] is None else row[3] for row in r["trajectory"]])
            k = np.searchsorted(t, grid, side="right") - 1
            arr[i] = np.where(k >= 0, v[np.clip(k, 0, None)], np.nan)
        mean = np.nanmean(arr, 0)
        means.append(mean)
        ax.plot(grid, mean, label=f"{label} (n={len(runs)})")
    ax.axhline(optimum, color="k", ls="--", lw=0.8, label=f"optimum {optimum:.2f}")
    ax.set_xlabel("simulated training seconds")
    ax.set_ylabel("test accuracy of best-by-validation (%)")
    ax.set_title(title)
    ax.set_ylim(*(y_limits(means, optimum) or (0, 100)))  # every point of every curve shown
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)  # atomic, unique temporary name


if __name__ == "__main__":
    main()
