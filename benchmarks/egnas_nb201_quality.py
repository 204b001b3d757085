"""EG-NAS vs first-order DARTS vs random sampling on the NAS-Bench-201 cell (CIFAR-10).

Each search trains the NB-201 supernet on real CIFAR-10 (this workspace's JPEG copy) and derives a
cell whose CIFAR-10 test accuracy (``test_acc_200``) is looked up in the NB-201 table, no final
training. Random sampling draws one cell uniformly per seed. CPU-sized by default (state it when
reporting): ``--subset`` training images (half weights, half held out), ``--epochs``, supernet
``C``/cells per stage ``N``; EG-NAS warm-up ``--warmup`` (the paper's 15 of 50 scaled), DARTS no
warm-up. Per-run folders under ``--work`` make it resumable: finished runs are skipped, a killed
run resumes from its last epoch. Writes ``benchmarks/results/egnas_nb201_quality.json``.

Methods (``--methods``): ``egnas`` (our defaults), ``egnas_released`` (EG-NAS with every choice
of the released code, :func:`nascore.egnas.released_settings`: σ kept at 1, half-batch scoring
with softmax(z/‖z‖), double-softmax update, 0.01 noise on the mean, running BN statistics, no BN
after pooling; the NB-201 cell keeps its 5 operations), ``darts``. Each run also records the
process CPU seconds it used (``cpu_seconds_per_run``; wall seconds mislead on a loaded machine).

    nohup nice -n 10 python benchmarks/egnas_nb201_quality.py --seeds 0-3 > /tmp/egnas_quality.log 2>&1 &
    nice -n 19 python benchmarks/egnas_nb201_quality.py --methods egnas,egnas_released --seeds 0-1 --out x.json
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
from nascore.darts.train import run_supernet_search, search_config  # noqa: E402
from nascore.egnas import released_settings  # noqa: E402
from nascore.data.cifar import load_cifar  # noqa: E402
from nascore.io import atomic_write_json, read_json  # noqa: E402
from nascore.spaces.nb201 import NB201Space  # noqa: E402


def stats(v):
    v = [float(a) for a in v if a is not None]
    return {"mean": round(float(np.mean(v)), 3) if v else None, "std": round(float(np.std(v, ddof=1)), 3) if len(v) > 1 else None,
            "n": len(v), "values": v}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0-3")
    ap.add_argument("--random-seeds", default="0-99")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--subset", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--C", type=int, default=16)
    ap.add_argument("--N", type=int, default=1)
    ap.add_argument("--population", type=int, default=50)
    ap.add_argument("--methods", default="egnas,darts")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--data", default=None)
    ap.add_argument("--bench-data", default=None)
    ap.add_argument("--work", default="/tmp/egnas_nb201_quality")
    ap.add_argument("--out", default="egnas_nb201_quality.json", help="file name under benchmarks/results/")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    seeds = parse_seeds(args.seeds)
    table = NB201Table.load("cifar10", args.bench_data)
    x, y, _ = load_cifar("cifar10", args.data, "train")
    out = {**header(), "setup": {k: v for k, v in vars(args).items()}, "results": {}}
    work = Path(args.work)
    for method in args.methods.split(","):
        if method not in ("egnas", "egnas_released", "darts"):
            raise SystemExit(f"--methods: unknown method {method!r} (egnas, egnas_released, darts)")
        runs, cpu = [], []
        es_based = method.startswith("egnas")
        for seed in seeds:
            es, supernet = {"population": args.population}, {}
            if method == "egnas_released":
                es, supernet = released_settings("nb201", es)
            cfg = search_config(method="egnas" if es_based else method, space="nb201", epochs=args.epochs,
                                warmup=args.warmup if es_based else 0, subset=args.subset, seed=seed,
                                batch_size=args.batch_size, C=args.C, layers=args.N, K=4,
                                eval_images=args.subset // 2, es=es if es_based else None, **supernet)
            folder = work / f"{method}-seed{seed:03d}"
            done = folder / "result.json"
            if done.exists() and read_json(done).get("finished"):
                res = read_json(done)
            else:
                t, c = time.perf_counter(), time.process_time()
                res = run_supernet_search(cfg, folder, images=(x, y), bench_data=args.bench_data, progress=False)
                cpu.append(time.process_time() - c)
                print(f"{method} seed {seed}: {res['arch']} test {res.get('test_accuracy')} "
                      f"({time.perf_counter() - t:.0f} s wall, {cpu[-1]:.0f} s CPU)", flush=True)
            runs.append(res)
        out["results"][method] = {"test_accuracy": stats(r.get("test_accuracy") for r in runs),
                                  "supernet_valid_accuracy": stats(r["valid_accuracy_supernet"] for r in runs),
                                  "archs": [r["arch"] for r in runs],
                                  "seconds_per_run": stats(sum(r["seconds"].values()) for r in runs),
                                  "es_seconds_per_run": stats(r["seconds"]["es"] for r in runs),
                                  "cpu_seconds_per_run": stats(cpu)}
        atomic_write_json(RESULTS / args.out, out)
    space = NB201Space()
    rnd = []
    for seed in parse_seeds(args.random_seeds):
        arch = space.to_string(space.sample(np.random.default_rng(seed)))
        rnd.append(table.query(arch, 200)["test_accuracy"])
    out["results"]["random"] = {"test_accuracy": stats(rnd[:len(seeds)]),
                                "test_accuracy_all_random_seeds": {k: v for k, v in stats(rnd).items() if k != "values"}}
    out["optimum"] = table.optimum(200)
    atomic_write_json(RESULTS / args.out, out)
    for m, r in out["results"].items():
        t = r["test_accuracy"]
        print(f"{m}: test {t['mean']} ± {t['std']} (n={t['n']})")


if __name__ == "__main__":
    main()
