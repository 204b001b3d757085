"""Fidelity of short NAS-Bench-201 trainings on this CPU against the benchmark's own accuracies (issue 19).

Trains random NB201 cells with :class:`nascore.train_evaluator.ImageTrainEvaluator` under short
schedules (:data:`SCHEDULES`: image size, training subset, epochs, reduced C/N) on the CIFAR-10
training images (the JPEG copy; scored on 2,000 held-out training images, the test split is never
read) and reports Kendall tau / Spearman rho of the trained accuracies with the table's
``valid_acc_200`` and ``test_acc_200`` (and, as a reference, of the parameter count), plus the
measured CPU seconds per architecture (1 torch thread).

The architectures are the first ``--archs`` of a fixed random permutation of the 15,625 cells
(``--arch-seed``), so a pilot on 12 cells is the head of the full study on 50. Resumable: every
finished training is appended to ``--jsonl`` (and the evaluator's cache); rerunning skips them.

    NASCORE_DATA=/work/shared/data python benchmarks/nb201_train_fidelity.py --schedules s16e3,s32e3 --archs 12
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, header  # noqa: E402

#: short schedules (name -> Recipe fields); every one trains with SGD-Nesterov + cosine (batch 64 and
#: crop+flip augmentation unless the schedule says otherwise)
SCHEDULES = {
    "s16e3": dict(image_size=16, C=8, N=1, subset=5000, epochs=3),
    "s32e3": dict(image_size=32, C=8, N=1, subset=5000, epochs=3),
    "s16e6": dict(image_size=16, C=8, N=1, subset=2500, epochs=6),
    "s16c16e3": dict(image_size=16, C=16, N=1, subset=5000, epochs=3),
    "s16e4": dict(image_size=16, C=8, N=1, subset=5000, epochs=4),
    "s16e8": dict(image_size=16, C=8, N=1, subset=4000, epochs=8),
    "s16n3e5": dict(image_size=16, C=8, N=3, subset=3000, epochs=5),
    "s16n2e6": dict(image_size=16, C=8, N=2, subset=4000, epochs=6),
    "s16b32e6na": dict(image_size=16, C=8, N=1, subset=4000, epochs=6, batch_size=32, augment=False),
    "s16d20e3": dict(image_size=16, C=8, N=1, subset=20000, epochs=3),  # 4x s16e3's images (and SGD steps)
    "s16e3na": dict(image_size=16, C=8, N=1, subset=5000, epochs=3, augment=False),  # s16e3, no augmentation
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--schedules", default="s16e3")
    ap.add_argument("--archs", type=int, default=50)
    ap.add_argument("--arch-seed", type=int, default=0)
    ap.add_argument("--data", default=None, help="CIFAR-10 folder (default $NASCORE_DATA/cifar10-jpeg)")
    ap.add_argument("--jsonl", default="runs/nb201_train_fidelity/trainings.jsonl")
    ap.add_argument("--cache", default="runs/train-cache", help="evaluator cache shared with the searches")
    ap.add_argument("--out", default=str(RESULTS / "nb201_train_fidelity.json"))
    ap.add_argument("--eval-seed", type=int, default=0,
                    help="base training seed; != 0 records the schedule as NAME@seedK (seed-to-seed agreement)")
    ap.add_argument("--report-only", action="store_true", help="train nothing; summarise the finished trainings")
    ap.add_argument("--max-minutes", type=float, default=None, help="stop starting trainings after this")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from nascore.benchmarks.nb201 import NB201Table
    from nascore.data.cifar import find_cifar
    from nascore.io import append_jsonl, atomic_write_json, read_jsonl
    from nascore.spaces import get_space
    from nascore.train_evaluator import ImageTrainEvaluator, Recipe

    data = args.data or str(find_cifar("cifar10")[0])
    space, table = get_space("nb201"), NB201Table.load("cifar10")
    frame = table.frame
    order = np.random.default_rng(args.arch_seed).permutation(len(frame))[:args.archs]
    jsonl = Path(args.jsonl)
    done = {(r["schedule"], r["arch"]): r for r in read_jsonl(jsonl, repair=True)} if jsonl.exists() else {}
    names = [s for s in args.schedules.split(",") if s]
    tag = "" if args.eval_seed == 0 else f"@seed{args.eval_seed}"
    t_start = time.time()
    for name in names:
        if args.report_only:
            break
        ev = ImageTrainEvaluator(space, data, Recipe(**SCHEDULES[name]), seed=args.eval_seed, cache_dir=args.cache,
                                 threads=1)
        name = name + tag
        for k in order:
            arch = frame["arch"].iloc[int(k)]
            if (name, arch) in done or args.report_only:
                continue
            if args.max_minutes is not None and time.time() - t_start > 60 * args.max_minutes:
                print("time limit reached; rerun to continue", flush=True)
                break
            res = ev(space.from_string(arch))
            rec = {"schedule": name, "eval_seed": args.eval_seed, "index": int(frame["index"].iloc[int(k)]),
                   "arch": arch, "acc": res.score,
                   "cpu_seconds": res.metrics.get("cpu_seconds"), "wall_seconds": res.cost,
                   "params": res.metrics.get("params"), "flops": res.metrics.get("flops"),
                   "cached": bool(res.metrics.get("cached")),
                   "valid_acc_200": float(frame["valid_acc_200"].iloc[int(k)]),
                   "test_acc_200": float(frame["test_acc_200"].iloc[int(k)])}
            append_jsonl(jsonl, [rec])
            done[(name, arch)] = rec
            print(f"{name} {len([1 for s, _ in done if s == name])}/{len(order)} acc {res.score:.2f} "
                  f"cpu {rec['cpu_seconds']} s  table {rec['test_acc_200']:.2f}", flush=True)
    names = names + [n + tag for n in names] if tag else names
    names = names + sorted({s for s, _ in done if "@" in s and s not in names and s.split("@")[0] in names})
    summary = summarize(done, names, frame, order)
    atomic_write_json(Path(args.out), {**header(), "args": vars(args), "schedules": {n: Recipe(**SCHEDULES[n.split("@")[0]]).to_dict() for n in names},
                                       "fixed": {"lr": 0.1, "momentum": 0.9, "nesterov": True,
                                                 "weight_decay": 5e-4, "val_size": 2000, "threads": 1},
                                       "results": summary})
    for n, s in summary.items():
        print(n, json.dumps(s))
    return 0


def summarize(done: dict, names, frame, order) -> dict:
    from scipy.stats import kendalltau, spearmanr

    out = {}
    sample = {frame["arch"].iloc[int(k)] for k in order}  # the first --archs cells only
    for name in names:
        recs = [r for (s, a), r in done.items() if s == name and a in sample]
        if len(recs) < 3:
            continue
        acc = np.array([r["acc"] for r in recs], float)
        ok = np.isfinite(acc)
        v = np.array([r["valid_acc_200"] for r in recs])[ok]
        t = np.array([r["test_acc_200"] for r in recs])[ok]
        p = np.array([r["params"] for r in recs], float)[ok]
        a = acc[ok]
        cpu = [r["cpu_seconds"] for r in recs if not r["cached"] and r["cpu_seconds"] is not None]
        cpu_all = [r["cpu_seconds"] for r in recs if r["cpu_seconds"] is not None]
        tau_v = kendalltau(a, v)[0]
        s = {"n": int(ok.sum()), "failed": int((~ok).sum()),
             "kendall_tau_valid200": round(float(tau_v), 4), "spearman_valid200": round(float(spearmanr(a, v)[0]), 4),
             "kendall_tau_test200": round(float(kendalltau(a, t)[0]), 4),
             "spearman_test200": round(float(spearmanr(a, t)[0]), 4),
             "params_kendall_tau_test200": round(float(kendalltau(p, t)[0]), 4),
             "cpu_seconds_per_arch_mean": round(float(np.mean(cpu_all)), 2),
             "cpu_seconds_per_arch_max": round(float(np.max(cpu_all)), 2),
             "cpu_seconds_total": round(float(np.sum(cpu_all)), 1), "trainings_run_here": len(cpu),
             "acc_mean": round(float(a.mean()), 2)}
        live = t > 50  # without the cells that cannot learn (table accuracy 10 %: no path from input to output)
        if live.sum() >= 3:
            s["n_live"] = int(live.sum())
            s["kendall_tau_test200_live"] = round(float(kendalltau(a[live], t[live])[0]), 4)
            s["spearman_test200_live"] = round(float(spearmanr(a[live], t[live])[0]), 4)
            s["params_kendall_tau_test200_live"] = round(float(kendalltau(p[live], t[live])[0]), 4)
        s["tau_valid200_per_cpu_second"] = round(float(tau_v) / s["cpu_seconds_per_arch_mean"], 5)
        # top-10 of the sample by the table: how many of them are also in our top-10
        if len(a) >= 20:
            top = set(np.argsort(-t)[:10]) & set(np.argsort(-a)[:10])
            s["top10_overlap_test200"] = len(top)
        if "@" in name:  # the same cells trained again with another seed: how well do two trainings agree?
            base = {r["arch"]: r["acc"] for (n, _), r in done.items() if n == name.split("@")[0]}
            paired = [r for r in recs if r["arch"] in base]
            if len(paired) >= 3:
                x, y = np.array([(base[r["arch"]], r["acc"]) for r in paired]).T
                s["seed_to_seed_kendall_tau"] = round(float(kendalltau(x, y)[0]), 4)
                s["seed_to_seed_abs_diff_mean"] = round(float(np.mean(np.abs(x - y))), 3)
                s["mean_of_two_seeds_n"] = len(paired)
                for col, key in (("valid_acc_200", "valid200"), ("test_acc_200", "test200")):
                    ref = [r[col] for r in paired]  # the mean of the two seeds' accuracies per cell
                    s[f"mean_of_two_seeds_kendall_tau_{key}"] = round(float(kendalltau((x + y) / 2, ref)[0]), 4)
                    s[f"mean_of_two_seeds_spearman_{key}"] = round(float(spearmanr((x + y) / 2, ref)[0]), 4)
        out[name] = s
    return out


if __name__ == "__main__":
    raise SystemExit(main())
