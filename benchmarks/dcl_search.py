"""DCL-ENAS against regularised evolution and random search on NAS-Bench-201 CIFAR-10.

For each fidelity (search signal valid_acc_200 and valid_acc_12) and each strategy, one search of
``--budget`` queries per seed; the figure of a run is the test accuracy (test_acc_200) of its
best-by-validation architecture. Reports mean ± std over seeds, the mean curve against queries,
and the CPU time of one search (``time.process_time`` of the worker process, torch limited to one
thread). Writes ``benchmarks/results/dcl_search.json`` and ``dcl_search_f200.png`` /
``dcl_search_f12.png``.

Resumable: every (fidelity, strategy, seed) is its own run folder under ``--work``; finished
ones are read back, not rerun. ``--jobs`` searches run in parallel processes.

    python benchmarks/dcl_search.py [--seeds 0-49] [--budget 100] [--jobs 2] [--work /tmp/dcl_search]

``--strategies`` also takes ``dcl-enas-persistent`` (dcl-enas with ``population_mode="persistent"``,
issue 15 item 10), ``dcl-enas-margin`` (predictor ``rank_loss="margin"``, the paper's margin ranking
loss, issue 15 item 9) and ``dcl-enas-pairwise`` (predictor ``rank_loss="pairwise"``, RankNet); ``--out NAME`` writes ``NAME.json`` / ``NAME_f*.png`` instead of ``dcl_search*``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, header, parallel_map  # noqa: E402

import numpy as np  # noqa: E402

from nascore.cliutil import parse_seeds  # noqa: E402
from nascore.io import atomic_write_json, read_json  # noqa: E402
from nascore.report import curve_array, plot_curves, summarize_seeds  # noqa: E402

STRATEGIES = ("dcl-enas", "evolution", "random")
#: extra names for --strategies: (strategy, params)
VARIANTS = {"dcl-enas-persistent": ("dcl-enas", {"population_mode": "persistent"}),
            "dcl-enas-margin": ("dcl-enas", {"predictor": {"rank_loss": "margin"}}),
            "dcl-enas-pairwise": ("dcl-enas", {"predictor": {"rank_loss": "pairwise"}})}
_TABLE = {}


def _table(data):
    if "t" not in _TABLE:
        from nascore.benchmarks.nb201 import NB201Table

        _TABLE["t"] = NB201Table.load("cifar10", data)
    return _TABLE["t"]


def run_one(job) -> dict:
    """One search in its own folder; returns its result.json plus its CPU seconds."""
    import torch

    from nascore.search import benchmark_search

    torch.set_num_threads(1)
    work, strategy, fidelity, seed, budget, data = job
    out = Path(work) / f"f{fidelity}" / strategy / f"seed-{seed:04d}"
    res_path = out / f"seed-{seed:04d}" / "result.json"
    cpu_path = out / "cpu.json"
    if res_path.exists() and cpu_path.exists():
        r = read_json(res_path)
        if r.get("finished"):
            return {**r, "cpu_seconds": read_json(cpu_path)["cpu_seconds"]}
    table = _table(data)
    c0 = time.process_time()
    name, params = VARIANTS.get(strategy, (strategy, None))
    benchmark_search(space="nb201", dataset="cifar10", strategy=name, budget=str(budget), seeds=[seed],
                     output=out, fidelity=fidelity, table=table, progress=False, params=params)
    cpu = time.process_time() - c0
    atomic_write_json(cpu_path, {"cpu_seconds": cpu})
    r = read_json(res_path)
    return {**r, "cpu_seconds": cpu}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0-49")
    ap.add_argument("--budget", type=int, default=100)
    ap.add_argument("--data", default=None, help="folder holding nb201-cifar10.csv")
    ap.add_argument("--fidelities", default="200,12")
    ap.add_argument("--strategies", default=",".join(STRATEGIES))
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--work", default="/tmp/dcl_search")
    ap.add_argument("--out", default="dcl_search", help="name of the JSON/PNGs under benchmarks/results")
    args = ap.parse_args()
    seeds = parse_seeds(args.seeds)
    strategies = args.strategies.split(",")
    fidelities = [int(f) for f in args.fidelities.split(",")]
    table = _table(args.data)
    jobs = [(args.work, s, f, k, args.budget, args.data) for f in fidelities for s in strategies for k in seeds]
    t0 = time.perf_counter()
    results = parallel_map(run_one, jobs, args.jobs, desc="searches")
    by = {(j[1], j[2]): [] for j in jobs}
    for j, r in zip(jobs, results):
        by[(j[1], j[2])].append(r)
    out = {**header(), "table": str(table.path), "budget_queries": args.budget, "seeds": len(seeds),
           "jobs": args.jobs, "results": {},
           # finished searches are read back from --work, so this is the wall time of this invocation only;
           # the cost of a search is cpu_seconds_per_search, measured when it ran
           "wall_seconds_this_invocation": time.perf_counter() - t0}
    for f in fidelities:
        opt = table.optimum(f)
        out[f"optimum_f{f}"] = opt
        curves = {}
        for s in strategies:
            runs = by[(s, f)]
            curves[s] = runs
            summ = summarize_seeds(runs)
            cpu = np.array([r["cpu_seconds"] for r in runs])
            summ["cpu_seconds_per_search"] = {"mean": float(cpu.mean()), "std": float(cpu.std(ddof=1)) if len(cpu) > 1
                                              else 0.0, "max": float(cpu.max())}
            arr = curve_array(runs)
            summ["curve_test_mean"] = [round(float(x), 4) for x in np.nanmean(arr, 0)]
            summ["curve_test_std"] = [round(float(x), 4) for x in np.nanstd(arr, 0)]
            finals = np.array([r["best"]["test_accuracy"] for r in runs])
            summ["found_optimum_fraction"] = float(np.mean(np.array([r["best"]["arch"] for r in runs]) == opt["arch"]))
            summ["within_0.1_of_optimum_test_fraction"] = float(np.mean(finals >= opt["test_accuracy"] - 0.1))
            out["results"][f"{s}/f{f}"] = summ
            print(f"fidelity {f} {s:10s}: test {summ['test_accuracy']['mean']:.3f} ± {summ['test_accuracy']['std']:.3f}"
                  f"  valid {summ['valid_accuracy']['mean']:.3f}  cpu/search {summ['cpu_seconds_per_search']['mean']:.2f} s"
                  f"  optimum found {summ['found_optimum_fraction']:.2f}")
        plot_curves(curves, RESULTS / f"{args.out}_f{f}.png",
                    title=f"NAS-Bench-201 CIFAR-10, signal valid_acc_{f}, {len(seeds)} seeds",
                    optimum=opt["test_accuracy"])
    atomic_write_json(RESULTS / f"{args.out}.json", out)
    print(f"wrote {RESULTS / (args.out + '.json')}")


if __name__ == "__main__":
    main()
