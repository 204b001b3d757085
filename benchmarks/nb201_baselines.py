"""Random search and regularised evolution on NAS-Bench-201 CIFAR-10, at both fidelities.

Each strategy runs 100 seeds of 100 queries; the figure reported for a run is the test accuracy
(test_acc_200) of its best-by-validation architecture. Also measures the wall time of loading the
table and of one 100-query search. Writes ``benchmarks/results/nb201_baselines.json`` and one
curve PNG per fidelity.

    python benchmarks/nb201_baselines.py [--seeds 0-99] [--budget 100] [--data DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, header  # noqa: E402

from nascore.benchmarks.nb201 import NB201Table  # noqa: E402
from nascore.cliutil import parse_seeds  # noqa: E402
from nascore.io import atomic_write_json, read_json  # noqa: E402
import numpy as np  # noqa: E402

from nascore.report import curve_array, plot_curves, summarize_seeds  # noqa: E402
from nascore.search import benchmark_search  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0-99")
    ap.add_argument("--budget", default="100")
    ap.add_argument("--data", default=None)
    ap.add_argument("--strategies", default="random,evolution")
    args = ap.parse_args()
    seeds = parse_seeds(args.seeds)

    loads = []
    for _ in range(5):
        t = time.perf_counter()
        table = NB201Table.load("cifar10", args.data)
        loads.append(time.perf_counter() - t)
    out = {**header(), "table": str(table.path), "table_load_seconds": {"min": min(loads), "all": loads},
           "budget_queries": int(args.budget), "seeds": len(seeds), "results": {}}
    work = Path(tempfile.mkdtemp(prefix="nb201-baselines-"))
    for fidelity in (200, 12):
        curves = {}
        for strategy in args.strategies.split(","):
            t = time.perf_counter()
            benchmark_search(space="nb201", dataset="cifar10", strategy=strategy, budget=args.budget,
                                 seeds=seeds, output=work / f"{strategy}-f{fidelity}", fidelity=fidelity,
                                 table=table, progress=True)
            total = time.perf_counter() - t
            runs = [read_json(work / f"{strategy}-f{fidelity}" / f"seed-{k:04d}" / "result.json") for k in seeds]
            curves[strategy] = runs
            s = summarize_seeds(runs)
            s["wall_seconds_all_seeds"] = total
            s["curve_test_mean"] = [round(float(x), 4) for x in np.nanmean(curve_array(runs), 0)]
            out["results"][f"{strategy}/f{fidelity}"] = s
            print(f"fidelity {fidelity} {strategy}: test {s['test_accuracy']['mean']:.2f} ± {s['test_accuracy']['std']:.2f}"
                  f"  valid {s['valid_accuracy']['mean']:.2f}  one search {s['wall_seconds']['mean']:.3f} s")
        opt = table.optimum(fidelity)
        out[f"optimum_f{fidelity}"] = opt
        plot_curves(curves, RESULTS / f"nb201_baselines_f{fidelity}.png",
                    title=f"NAS-Bench-201 CIFAR-10, search signal valid_acc_{fidelity}, {len(seeds)} seeds",
                    optimum=opt["test_accuracy"])
    atomic_write_json(RESULTS / "nb201_baselines.json", out)
    print(f"wrote {RESULTS / 'nb201_baselines.json'}")


if __name__ == "__main__":
    main()
