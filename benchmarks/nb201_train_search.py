"""DCL-ENAS vs random search on NAS-Bench-201 with *trained* candidates on CIFAR-10 (issue 19, item 4).

Each method searches with :func:`nascore.train_search.train_search` (the evaluator of
``nascore search --evaluator train``) under one short schedule (``--schedule``, a name of
``nb201_train_fidelity.SCHEDULES``), sharing the evaluator cache with the fidelity study, for
``--budget`` trainings per seed. Reported per seed and as mean ± std over the seeds run: the held-out
accuracy of the chosen cell and the table's 200-epoch test accuracy of it. Resumable: rerun the same
command and finished trainings are replayed from the run folders.

    NASCORE_DATA=/work/shared/data python benchmarks/nb201_train_search.py --schedule s16e3 --budget 15 --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, header  # noqa: E402
from nb201_train_fidelity import SCHEDULES  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--schedule", default="s16e3")
    ap.add_argument("--budget", type=int, default=15)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--methods", default="random,dcl-enas")
    ap.add_argument("--dcl-params", default='{"n_init": 6, "n_infill": 3, "pretrain_seed": 0}')
    ap.add_argument("--work", default="runs/nb201_train_search")
    ap.add_argument("--cache", default="runs/train-cache")
    ap.add_argument("--out", default=str(RESULTS / "nb201_train_search.json"))
    ap.add_argument("--reference-only", action="store_true",
                    help="add the table-only references (same budget, 2,000 draws) to --out; train nothing")
    args = ap.parse_args(argv)
    if args.reference_only:
        from nascore.io import atomic_write_json, read_json

        out = read_json(args.out)
        out["table_references"] = table_references(args.budget)
        atomic_write_json(Path(args.out), out)
        print(json.dumps(out["table_references"]))
        return 0

    import numpy as np
    import torch

    torch.set_num_threads(1)
    from nascore.data.cifar import find_cifar
    from nascore.io import atomic_write_json
    from nascore.train_evaluator import Recipe
    from nascore.train_search import train_search

    data = str(find_cifar("cifar10")[0])
    recipe = Recipe(**SCHEDULES[args.schedule])
    seeds = [int(s) for s in args.seeds.split(",") if s]
    methods = args.methods.split(",")
    per_seed: dict = {m: [] for m in methods}
    for seed in seeds:  # seeds outer, methods inner: a cut-short run still compares the methods on equal seeds
        for method in methods:  # one folder per (method, seed): a later seed can be added without refusing one
            params = json.loads(args.dcl_params) if method == "dcl-enas" else {}
            t0 = time.time()
            s = train_search(space="nb201", strategy=method, budget=str(args.budget), seeds=[seed],
                             output=Path(args.work) / f"{method}-s{seed}", data=data, recipe=recipe,
                             params=params, cache_dir=args.cache, progress=True)
            b = s["best"][0]
            per_seed[method].append({"seed": seed, "arch": b["arch"], "valid_accuracy": b["score"],
                                     "table_test_acc_200": b.get("test_accuracy"),
                                     "table_valid_acc_200": b.get("table_valid_accuracy"),
                                     "cached_trainings": sum(1 for r in _history(Path(args.work) / f"{method}-s{seed}", seed)
                                                             if r.get("metrics", {}).get("cached")),
                                     "wall_seconds_this_call": round(time.time() - t0, 1)})
            print(method, per_seed[method][-1], flush=True)
            rows = {}
            for m, runs in per_seed.items():
                if not runs:
                    continue
                t = np.array([r["table_test_acc_200"] for r in runs], float)
                v = np.array([r["valid_accuracy"] for r in runs], float)
                rows[m] = {"params": json.loads(args.dcl_params) if m == "dcl-enas" else {}, "seeds": runs,
                           "table_test_acc_200_mean": round(float(t.mean()), 3),
                           "table_test_acc_200_std": round(float(t.std(ddof=1)) if len(t) > 1 else 0.0, 3),
                           "valid_accuracy_mean": round(float(v.mean()), 3)}
            atomic_write_json(Path(args.out), {**header(), "args": vars(args), "recipe": recipe.to_dict(),
                                               "table_optimum_test_acc_200": 94.3733, "results": rows})
    for m, r in rows.items():
        print(m, r["table_test_acc_200_mean"], "±", r["table_test_acc_200_std"])
    return 0


def table_references(budget: int, draws: int = 2000) -> dict:
    """What ``budget`` uniformly random cells give when picked by the table's own signals (no
    training): the best by ``valid_acc_200`` (random search with the 200-epoch signal), by
    ``valid_acc_12`` (NATS-Bench's 12-epoch signal) and by parameter count; mean ± std over draws of
    the picked cell's ``test_acc_200``."""
    import numpy as np

    from nascore.benchmarks.nb201 import NB201Table

    f = NB201Table.load("cifar10").frame
    rng = np.random.default_rng(0)
    t = f["test_acc_200"].to_numpy()
    cols = {"valid_acc_200": f["valid_acc_200"].to_numpy(), "valid_acc_12": f["valid_acc_12"].to_numpy(),
            "params_m": f["params_m"].to_numpy()}
    picks = {k: [] for k in cols}
    for _ in range(draws):
        idx = rng.choice(len(f), budget, replace=False)
        for k, v in cols.items():
            picks[k].append(t[idx[np.argmax(v[idx])]])
    return {f"random_{budget}_by_{k}": {"mean": round(float(np.mean(v)), 3), "std": round(float(np.std(v)), 3),
                                        "draws": draws} for k, v in picks.items()}


def _history(folder: Path, seed: int) -> list:
    from nascore.io import read_jsonl

    return read_jsonl(folder / f"seed-{seed:04d}" / "history.jsonl")


if __name__ == "__main__":
    raise SystemExit(main())
