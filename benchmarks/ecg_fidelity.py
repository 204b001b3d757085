"""Which training budget ranks ``ecg-cell`` candidates? Rank correlation between multi-fidelity rungs (issue 14, item 2).

A multi-fidelity search (:mod:`nascore.multifidelity`, ``ecgnas search --multi-fidelity``)
scores every candidate at the lowest rung and promotes the best third to the next. That only
pays if a low rung ranks candidates the way the top rung does. This script samples
``--archs`` architectures of ``ecg-cell`` (uniformly, ``--sample-seed``), trains each one at
every rung of ``--rungs`` (epochs of 8,192 class-balanced DS1 beats: the search fidelity of
:func:`ecgnas.evaluator.default_fidelity` with its epoch count replaced, exactly what a rung of
the search trains) and scores it on the DS1 hold-out records (``--selection holdout``, the
search's default objective). DS2 is never loaded.

Reported (``benchmarks/results/ecg_fidelity.json``):

* Kendall τ and Spearman ρ between every pair of rungs (with p-values);
* the **seed-noise ceiling**: the same rung trained again with another evaluation seed
  (``--noise-rung``, ``--noise-archs``): two trainings of one architecture agree this well, so no
  rung can track another better than this;
* for each lower rung, how many of the top rung's best ``--top`` architectures survive the
  promotion to the next rung of ASHA (kept if in the top 1/``eta``);
* the same for the threshold-free hold-out scores the evaluator records beside macro-F1 (macro
  AUC, class-balanced NLL, balanced accuracy; :func:`ecgnas.metrics.probability_scores`): is one of
  them a less noisy objective?
* with ``--repeat-check S0,S1,S2,S3`` (cached trainings only): how well single trainings agree
  across seeds, and how well the mean of two (``ecgnas search --search-repeats 2``) agrees with the
  mean of two others;
* CPU-seconds per candidate at each rung (one torch thread each; the machine is shared, so
  these are loaded-machine figures).

Every training goes through the evaluator's result cache (``WORK/evals``), so an interrupted
run is resumed by running the same command; ``--archs`` can be raised later and only the new
architectures train. Architectures are processed in sampling order, all rungs each, so any prefix of
the sample is a complete, unbiased smaller sample. With ``--top-archs M`` the lower rungs (and the
noise retraining) of every architecture come first and the top rung -- the costly one -- only
for the first ``M`` afterwards.

Example (the recorded results)::

    NASCORE_DATA=../shared/data python benchmarks/ecg_fidelity.py --archs 60 --rungs 1,3,9 --top-archs 16 --noise-rung 3 \\
        --noise-archs 30 --work runs/ecg_fidelity
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))
from common import RESULTS, header  # noqa: E402
from nascore.io import atomic_write_json  # noqa: E402


#: threshold-free hold-out scores the evaluator records beside macro-F1 (ecgnas.metrics.probability_scores)
SMOOTH = ("macro_auc", "balanced_nll", "balanced_accuracy")


def _corr(a, b) -> dict:
    from scipy import stats

    a, b = np.asarray(a, float), np.asarray(b, float)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3:
        return {"n": int(ok.sum()), "kendall_tau": None, "spearman_rho": None}
    t = stats.kendalltau(a[ok], b[ok])
    s = stats.spearmanr(a[ok], b[ok])
    return {"n": int(ok.sum()), "kendall_tau": float(t.statistic), "kendall_p": float(t.pvalue),
            "spearman_rho": float(s.statistic), "spearman_p": float(s.pvalue)}


def _survivors(low, top, k: int, eta: int) -> dict:
    """Of the top-``k`` by the top rung, how many are in the top 1/eta by the lower rung."""
    low, top = np.asarray(low, float), np.asarray(top, float)
    ok = np.isfinite(low) & np.isfinite(top)
    low, top = low[ok], top[ok]
    n_keep = max(1, int(np.ceil(len(low) / eta)))
    kept = set(np.argsort(-low, kind="stable")[:n_keep].tolist())
    best = np.argsort(-top, kind="stable")[:k].tolist()
    return {"top_k": k, "kept_fraction": 1 / eta, "survive": sum(i in kept for i in best),
            "best_survives": bool(best and best[0] in kept)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--archs", type=int, default=60)
    ap.add_argument("--rungs", default="1,3,9", help="epochs per rung, ascending")
    ap.add_argument("--sample-seed", type=int, default=0, help="seed of the architecture sample")
    ap.add_argument("--seed", type=int, default=0, help="evaluation seed (the search's --seed)")
    ap.add_argument("--noise-rung", type=int, default=3, help="rung retrained with --seed + 1 (0: skip)")
    ap.add_argument("--noise-archs", type=int, default=30, help="how many of the sample get the noise retraining")
    ap.add_argument("--top-archs", type=int, default=None,
                    help="only the first M architectures train at the top rung (it costs most); default: all")
    ap.add_argument("--eta", type=int, default=3)
    ap.add_argument("--top", type=int, default=5)
    ap.add_argument("--data", default=None, help="MIT-BIH folder (default: $NASCORE_DATA/mitdb)")
    ap.add_argument("--work", default="runs/ecg_fidelity")
    ap.add_argument("--out", default="ecg_fidelity.json")
    ap.add_argument("--train", action="append", default=[], metavar="KEY=VALUE",
                    help="override a field of the search fidelity's TrainConfig (e.g. ema_decay=0.999); repeatable")
    ap.add_argument("--selection", choices=("holdout", "cv"), default="holdout",
                    help="the score: DS1 hold-out (the search default) or grouped 4-fold CV over DS1")
    ap.add_argument("--collect", action="store_true", help="summarise what the cache holds; train nothing")
    ap.add_argument("--repeat-check", default=None, metavar="S0,S1,S2,S3",
                    help="from the cache only: does the mean of two trainings (seeds S0,S1) rank the first --archs "
                         "cells at rung --noise-rung like the mean of two others (S2,S3)? (--search-repeats 2)")
    args = ap.parse_args(argv)
    rungs = sorted({int(r) for r in args.rungs.split(",")})

    import torch

    torch.set_num_threads(1)
    import ecgnas.spaces  # noqa: F401  (registers ecg-cell)
    from nascore.spaces import get_space
    from ecgnas.data import DataSpec
    from ecgnas.evaluator import ECGEvaluator, default_fidelity

    space = get_space("ecg-cell")
    rng = np.random.default_rng(args.sample_seed)
    archs, seen = [], set()
    while len(archs) < args.archs:  # distinct architectures, in sampling order
        a = space.sample(rng)
        key = space.to_string(a)
        if key not in seen:
            seen.add(key)
            archs.append(a)
    work = Path(args.work)
    cache = work / "evals"
    import json

    overrides = {}
    for kv in args.train:
        k, _, v = kv.partition("=")
        overrides[k] = json.loads(v)
    fidelity = default_fidelity(**overrides)
    base = ECGEvaluator(space, fidelity, spec=DataSpec(data=args.data), seed=args.seed, cache_dir=cache, latency=False,
                        selection=args.selection)
    noisy = ECGEvaluator(space, fidelity, spec=DataSpec(data=args.data), seed=args.seed + 1, cache_dir=cache, latency=False,
                         selection=args.selection)
    if args.collect:  # read the cache only
        _cache_only(base)
        _cache_only(noisy)
    for ev in (base, noisy):  # one load of the beats, shared
        ev._loaded = base._loaded

    n_top = len(archs) if args.top_archs is None else args.top_archs
    plan = []  # (arch index, rung label, evaluator): the lower rungs and the noise retraining of every
    for i in range(len(archs)):  # architecture first, then the top rung of the first n_top
        plan += [(i, r, base) for r in rungs[:-1]]
        if args.noise_rung and i < args.noise_archs:
            plan.append((i, f"{args.noise_rung}@seed{args.seed + 1}", noisy))
        if i < n_top and args.top_archs is None:
            plan.append((i, rungs[-1], base))
    if args.top_archs is not None:
        plan += [(i, rungs[-1], base) for i in range(min(n_top, len(archs)))]
    if args.repeat_check:
        return _repeat_check(args, space, archs, fidelity, cache)
    rows = [{"arch": space.to_string(a), "score": {}, "cost_s": {}} for a in archs]
    t_start = time.perf_counter()
    for step, (i, r, ev) in enumerate(plan):
        row = rows[i]
        try:
            res = ev(archs[i], fidelity=int(str(r).split("@")[0]))
        except LookupError:  # --collect: not trained yet
            continue
        row["score"][str(r)] = res.score
        row["cost_s"][str(r)] = res.cost
        for m in SMOOTH:
            row.setdefault(m, {})[str(r)] = res.metrics.get(f"val_{m}")
        if res.failed:
            row.setdefault("errors", {})[str(r)] = res.metrics.get("error")
        print(f"[{step + 1}/{len(plan)}] arch {i} rung {r}: {row['score'].get(str(r), float('nan')):.1f} "
              f"({row['cost_s'].get(str(r), float('nan')):.0f} s; {time.perf_counter() - t_start:.0f} s so far)",
              flush=True)
    rows = [r for r in rows if r["score"]]

    def col(name, metric="score"):
        sign = -1.0 if metric == "balanced_nll" else 1.0  # lower is better: rank its negation
        vals = [r.get(metric, {}).get(name) for r in rows]
        return [float("nan") if v is None else sign * v for v in vals]

    names = [str(r) for r in rungs]
    pairs = {f"{a} vs {b}": _corr(col(a), col(b)) for a, b in itertools.combinations(names, 2)}
    noise_name = f"{args.noise_rung}@seed{args.seed + 1}"
    noise = _corr(col(str(args.noise_rung)), col(noise_name)) if args.noise_rung and args.noise_archs else None
    top = names[-1]
    survive = {r: _survivors(col(r), col(top), args.top, args.eta) for r in names[:-1]}
    # the same comparisons for each threshold-free score: which objective is least noisy?
    by_metric = {}
    for m in SMOOTH:
        by_metric[m] = {"pairs": {f"{a} vs {b}": _corr(col(a, m), col(b, m))
                                  for a, b in itertools.combinations(names, 2)},
                        "seed_noise": None if noise is None else _corr(col(str(args.noise_rung), m),
                                                                        col(noise_name, m)),
                        "vs_macro_f1_at_top": _corr(col(top, m), col(top))}
    def summary(values) -> dict:
        v = np.asarray([x for x in values if x is not None and np.isfinite(x)], float)
        return {"mean": float(v.mean()) if len(v) else None, "std": float(v.std(ddof=1)) if len(v) > 1 else None,
                "n": int(len(v))}

    cost = {r: summary(x["cost_s"].get(r) for x in rows) for r in names + ([noise_name] if noise else [])}
    scores = {r: summary(col(r)) for r in names}
    out = {**header(), "archs": len(rows), "rungs": rungs, "sample_seed": args.sample_seed, "seed": args.seed,
           "fidelity": fidelity.identity(), "train_overrides": overrides, "selection": args.selection, "eta": args.eta,
           "pairs": pairs, "seed_noise": None if noise is None else {"rung": args.noise_rung, **noise},
           "top_rung_survivors": survive, "threshold_free": by_metric, "cpu_seconds_per_candidate": cost, "hold_out_macro_f1": scores,
           "rows": rows}
    RESULTS.mkdir(exist_ok=True)
    atomic_write_json(RESULTS / args.out, out)
    print(f"{len(rows)} architectures -> {RESULTS / args.out}")
    for k, v in pairs.items():
        print(f"  rungs {k}: tau {v['kendall_tau']}, rho {v['spearman_rho']} (n {v['n']})")
    if noise:
        print(f"  seed noise at rung {args.noise_rung}: tau {noise['kendall_tau']}, rho {noise['spearman_rho']} "
              f"(n {noise['n']})")
    for m, d in by_metric.items():
        sn = d["seed_noise"] or {}
        print(f"  {m}: seed noise tau {sn.get('kendall_tau')}; "
              + ", ".join(f"{k} tau {v['kendall_tau']}" for k, v in d["pairs"].items()))
    return 0


def _cache_only(ev):
    """``ev`` answering from its result cache only: a training it would have to run raises LookupError."""
    def refuse(*_a, **_k):
        raise LookupError("not in the cache")
    ev.evaluate = refuse  # type: ignore[method-assign]
    return ev


def _repeat_check(args, space, archs, fidelity, cache) -> int:
    """Reliability of single trainings and of two-training means, from cached trainings only."""
    from ecgnas.data import DataSpec
    from ecgnas.evaluator import ECGEvaluator

    seeds = [int(x) for x in args.repeat_check.split(",")]
    if len(seeds) != 4:
        raise SystemExit("--repeat-check: give four seeds, S0,S1,S2,S3")
    rung = args.noise_rung or 3
    scores = {}
    for sd in seeds:
        ev = _cache_only(ECGEvaluator(space, fidelity, spec=DataSpec(data=args.data), seed=sd, cache_dir=cache, latency=False,
                                      selection=args.selection))
        col = []
        for a in archs:
            try:
                col.append(ev(a, fidelity=rung).score)
            except LookupError:
                col.append(float("nan"))
        scores[sd] = np.asarray(col, float)
    s0, s1, s2, s3 = (scores[sd] for sd in seeds)
    single = {f"seed {a} vs seed {b}": _corr(scores[a], scores[b]) for a, b in itertools.combinations(seeds, 2)}
    taus = [v["kendall_tau"] for v in single.values() if v["kendall_tau"] is not None]
    rhos = [v["spearman_rho"] for v in single.values() if v["spearman_rho"] is not None]
    out = {**header(), "rung": rung, "seeds": seeds, "archs": int(np.isfinite(s0 + s1 + s2 + s3).sum()),
           "single_training_pairs": single,
           "single_training_mean": {"kendall_tau": float(np.mean(taus)) if taus else None,
                                    "spearman_rho": float(np.mean(rhos)) if rhos else None},
           "two_training_means": _corr((s0 + s1) / 2, (s2 + s3) / 2),
           "rows": [{"arch": space.to_string(a), **{f"seed{sd}": float(scores[sd][i]) if np.isfinite(scores[sd][i])
                                                     else None for sd in seeds}}
                    for i, a in enumerate(archs)]}
    atomic_write_json(RESULTS / args.out, out)
    print(f"{out['archs']} cells at rung {rung}: single trainings agree at mean tau "
          f"{out['single_training_mean']['kendall_tau']}, rho {out['single_training_mean']['spearman_rho']}; "
          f"means of two: tau {out['two_training_means']['kendall_tau']}, "
          f"rho {out['two_training_means']['spearman_rho']} -> {RESULTS / args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
