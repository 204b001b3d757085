"""arch2vec-BO over several pretraining seeds, and the torch thread count of the pretraining (issue 15 item 4).

Pretrains the NB201 arch2vec model with the default settings (:func:`nascore.arch2vec.pretrain.pretrain`)
once per ``--pretrain-seeds`` seed into ``--work/models/seed<k>``, then runs arch2vec-BO (100
queries, signal ``valid_acc_200``) on every model for every search seed and every ``--configs``
entry (named arch2vec-BO parameter sets, :data:`CONFIGS`: ``default`` is the current default,
``previous`` the paper's form and the default before issue 15 item 4); the figure of a run is the test accuracy
(``test_acc_200``) of its best-by-validation cell. Reports mean ± std over the search seeds per
model, the mean over models, and the per-model spread.

``--thread-check SEED`` also pretrains that seed with the caller's thread count
(``threads=None``, the behaviour before the fix) under 1 and under 2 torch threads, compares the
two models (state dicts, embeddings: bit-identical or the largest difference) and, when they
differ, runs the default search on both.

Every (model, config, seed) result is kept in ``--work/runs.jsonl`` and not rerun; the summary
goes to ``benchmarks/results/<--out>.json``.

    python benchmarks/arch2vec_robust.py --pretrain-seeds 0,1,2 --seeds 0-29 --configs default,previous
    python benchmarks/arch2vec_robust.py --pretrain-seeds 1 --seeds 100-129 --configs previous,ucb2,rank --out x
    python benchmarks/arch2vec_robust.py --short-thread-check 0     # 1 epoch, 2,000 cells: bit-identical?

``--short-thread-check SEED`` writes ``benchmarks/results/arch2vec_threads_check.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, header  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from nascore.arch2vec.pretrain import load_model, pretrain  # noqa: E402
from nascore.benchmarks.nb201 import NB201Table  # noqa: E402
from nascore.cliutil import parse_seeds  # noqa: E402
from nascore.evaluation import TabularEvaluator  # noqa: E402
from nascore.io import atomic_write_json  # noqa: E402
from nascore.spaces import get_space  # noqa: E402
from nascore.strategies import get_strategy  # noqa: E402

#: named arch2vec-BO parameter sets (keyword arguments of ``get_strategy("arch2vec-bo", ...)``); every
#: name but ``default`` spells out ``target`` and ``candidates``, so a name keeps its meaning when the
#: default changes (the rows named ``default`` in runs.jsonl before the change were renamed ``previous``)
PREVIOUS = {"target": "raw", "candidates": "all"}  # the paper's form; arch2vec-BO's default before issue 15 item 4
CONFIGS = {
    "default": {},                                   # the current default (= rank_mut)
    "previous": PREVIOUS,
    "batch1": {**PREVIOUS, "batch": 1},
    "init10": {**PREVIOUS, "init": 10},
    "init32": {**PREVIOUS, "init": 32},
    "hidden128": {**PREVIOUS, "hidden": 128},
    "epochs100": {**PREVIOUS, "epochs": 100},
    "ucb2": {**PREVIOUS, "acq": "ucb", "kappa": 2.0},
    "ens3": {**PREVIOUS, "ensemble": 3},
    "ens5": {**PREVIOUS, "ensemble": 5},
    "ts": {**PREVIOUS, "acq": "ts"},
    "ts_ens3": {**PREVIOUS, "acq": "ts", "ensemble": 3},
    "rank": {"target": "rank", "candidates": "all"},
    "mut": {"target": "raw", "candidates": "mutation"},
    "rank_mut": {"target": "rank", "candidates": "mutation"},
}


def pretrain_model(space, folder: Path, seed: int, threads) -> Path:
    """``folder/model.pt`` of the default pretraining (made once; ``threads`` as :func:`pretrain`)."""
    if not (folder / "model.pt").exists():
        pretrain(space, output=folder, seed=seed, progress=False, threads=threads)
    return folder / "model.pt"


def model_summary(path: Path) -> dict:
    """Reconstruction and latent-scale figures of a model (from its metrics.json and embeddings)."""
    m = json.loads((path.parent / "metrics.json").read_text())
    with np.load(path.parent / "embeddings.npz") as z:
        emb = z["emb"].astype(np.float64)
    sd = emb.std(0)
    return {"heldout_exact": m["metrics"]["heldout"]["accuracy"],
            "validity_released_rule": m["metrics"]["prior_fitted"]["arch2vec"]["validity"],
            "train_seconds": m["seconds"]["train"], "torch_threads": m["train"]["torch_threads"],
            "emb_dim_std": [round(float(x), 5) for x in sd],
            "active_dims(std>0.1*max)": int((sd > 0.1 * sd.max()).sum()),
            "distinct_embeddings": int(len(np.unique(emb.round(6), axis=0)))}


def compare_models(a: Path, b: Path) -> dict:
    """Whether two pretrainings are bit-identical (state dict and embeddings), else the largest difference."""
    ma, _ = load_model(a)
    mb, _ = load_model(b)
    sa, sb = ma.state_dict(), mb.state_dict()
    diff = max(float((sa[k].double() - sb[k].double()).abs().max()) for k in sa)
    same_w = all(torch.equal(sa[k], sb[k]) for k in sa)
    with np.load(a.parent / "embeddings.npz") as za, np.load(b.parent / "embeddings.npz") as zb:
        ea, eb = za["emb"], zb["emb"]
    return {"state_dict_bit_identical": same_w, "max_abs_weight_difference": diff,
            "embeddings_bit_identical": bool(np.array_equal(ea, eb)),
            "max_abs_embedding_difference": float(np.abs(ea.astype(np.float64) - eb).max())}


def short_thread_check(space, seed: int, work: Path) -> None:
    """Pretrain ``seed`` briefly (1 epoch, 2,000 cells) with the caller's threads (``threads=None``)
    under 1, 2 and again 1 torch thread; write whether the models are bit-identical."""
    paths = []
    for i, n in enumerate((1, 2, 1)):
        torch.set_num_threads(n)
        d = work / f"t{n}-{i}"
        if not (d / "model.pt").exists():
            pretrain(space, output=d, seed=seed, epochs=1, max_archs=2000, progress=False, quality_samples=100,
                     threads=None)
        paths.append(d / "model.pt")
    torch.set_num_threads(1)
    r = {**header(), "seed": seed, "epochs": 1, "max_archs": 2000,
         "1 vs 2 threads": compare_models(paths[0], paths[1]),
         "1 vs 1 thread (run-to-run)": compare_models(paths[0], paths[2])}
    atomic_write_json(RESULTS / "arch2vec_threads_check.json", r)
    print(r)


def latent_diagnosis(table, models: dict) -> dict:
    """Per model, on standardised embeddings: Spearman between a cell's valid_acc_200 and the mean of
    its 10 nearest latent neighbours (2,000 random cells, seed 0), and how close the benchmark
    optimum lies to the 50 best cells (how many have it among their 10 nearest neighbours)."""
    from scipy.stats import spearmanr

    opt = table.optimum(200)["arch"]
    va = np.asarray(table.frame["valid_acc_200"], float)
    rng = np.random.default_rng(0)
    res = {}
    for name, path in models.items():
        with np.load(path.parent / "embeddings.npz") as z:
            keys = [k.decode() if isinstance(k, bytes) else str(k) for k in z["keys"].tolist()]
            e = z["emb"].astype(np.float64)
        y = va[[table.row(k) for k in keys]]
        e = (e - e.mean(0)) / (e.std(0) + 1e-8)
        sq = (e * e).sum(1)
        sub = rng.choice(len(keys), 2000, replace=False)
        d = sq[sub, None] - 2 * e[sub] @ e.T + sq[None]
        d[np.arange(2000), sub] = np.inf
        nn = np.argsort(d, 1)[:, :10]
        top = np.argsort(-y)[:50]
        o = keys.index(opt)
        dt = sq[top, None] - 2 * e[top] @ e.T + sq[None]
        dt[np.arange(50), top] = np.inf
        rank_opt = (dt < dt[:, [o]]).sum(1)
        res[name] = {"knn10_spearman_valid": float(spearmanr(y[sub], y[nn].mean(1))[0]),
                     "top50_cells_with_optimum_in_10nn": int((rank_opt < 10).sum()),
                     "median_rank_of_optimum_from_top50": float(np.median(rank_opt))}
    return res


def run_bo(space, ev, model: str, seed: int, params: dict, queries: int) -> dict:
    """One arch2vec-BO search (plain ask/tell loop): best-by-validation cell and its test accuracy."""
    s = get_strategy("arch2vec-bo", space, seed=seed, model=model, **params)
    best = (-np.inf, None, None)
    t = time.process_time()
    for _ in range(queries):
        archs = s.ask(1)
        res = [ev(a) for a in archs]
        s.tell(archs, res)
        for a, r in zip(archs, res):
            if r.score > best[0]:
                best = (r.score, r.metrics["test_accuracy"], space.key(a))
    return {"valid": float(best[0]), "test": float(best[1]), "arch": best[2], "cpu_s": time.process_time() - t}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pretrain-seeds", default="0,1,2")
    ap.add_argument("--seeds", default="0-29")
    ap.add_argument("--configs", default="default")
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--thread-check", type=int, default=None, help="pretraining seed for the 1- vs 2-thread check")
    ap.add_argument("--short-thread-check", type=int, default=None,
                    help="pretraining seed: only the short 1- vs 2-thread check (1 epoch, 2,000 cells), then exit")
    ap.add_argument("--thread-check-seeds", default=None, help="search seeds for the 2-thread model (default --seeds)")
    ap.add_argument("--work", default="/tmp/arch2vec-robust")
    ap.add_argument("--data", default=None)
    ap.add_argument("--out", default="arch2vec_bo_robust")
    args = ap.parse_args()
    torch.set_num_threads(1)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    space = get_space("nb201")
    if args.short_thread_check is not None:
        short_thread_check(space, args.short_thread_check, work / "short")
        return
    table = NB201Table.load("cifar10", args.data)
    ev = TabularEvaluator(space, table, 200)
    seeds = parse_seeds(args.seeds)
    configs = args.configs.split(",")
    for c in configs:
        if c not in CONFIGS:
            raise SystemExit(f"unknown config {c!r}; known: {', '.join(CONFIGS)}")
    models = {f"seed{k}": pretrain_model(space, work / "models" / f"seed{k}", k, 1)
              for k in parse_seeds(args.pretrain_seeds)}
    out = {**header(), "table": str(table.path), "queries": args.queries, "search_seeds": seeds,
           "figure": "test_acc_200 of the best-by-valid_acc_200 cell; mean/std over search seeds (std ddof=1)",
           "configs": {c: CONFIGS[c] for c in configs}, "models": {}, "results": {}}
    if args.thread_check is not None:
        k = args.thread_check
        pair = {}
        for n in (1, 2):
            torch.set_num_threads(n)
            pair[n] = pretrain_model(space, work / "models" / f"seed{k}-caller{n}threads", k, None)
        torch.set_num_threads(1)
        out["thread_check"] = {"seed": k, "caller_1_vs_2_threads": compare_models(pair[1], pair[2]),
                               "fixed_default_vs_caller_1_thread (run-to-run)":
                                   compare_models(models[f"seed{k}"], pair[1]) if f"seed{k}" in models else None}
        print("thread check:", out["thread_check"], flush=True)
        if not out["thread_check"]["caller_1_vs_2_threads"]["embeddings_bit_identical"]:
            models[f"seed{k}-2threads"] = pair[2]  # its search, beside the 1-thread model's
    out["latent_diagnosis"] = latent_diagnosis(table, {k: v for k, v in models.items() if "threads" not in k})
    print("latent diagnosis:", out["latent_diagnosis"], flush=True)
    done = {}
    log = work / "runs.jsonl"
    if log.exists():
        for line in log.read_text().splitlines():
            r = json.loads(line)
            done[(r["model"], r["config"], r["seed"])] = r
    for name, path in models.items():
        out["models"][name] = {"path": str(path), **model_summary(path)}
        for c in configs:
            rows = []
            for seed in (parse_seeds(args.thread_check_seeds) if "threads" in name and args.thread_check_seeds
                         else seeds):
                key = (name, c, seed)
                if key not in done:
                    r = {"model": name, "config": c, "seed": seed, **run_bo(space, ev, str(path), seed, CONFIGS[c],
                                                                            args.queries)}
                    with log.open("a") as f:
                        f.write(json.dumps(r) + "\n")
                    done[key] = r
                rows.append(done[key])
            t = np.array([r["test"] for r in rows])
            v = np.array([r["valid"] for r in rows])
            out["results"][f"{name}/{c}"] = {
                "model": name, "config": c, "n": len(rows), "test_mean": float(t.mean()), "test_std": float(t.std(ddof=1)),
                "valid_mean": float(v.mean()), "valid_std": float(v.std(ddof=1)),
                "found_optimum": int(sum(r["arch"] == table.optimum(200)["arch"] for r in rows)),
                "cpu_s_per_search": float(np.mean([r["cpu_s"] for r in rows])), "per_seed_test": t.tolist()}
            if "threads" in name:  # paired with the 1-thread model of the same seed on the same search seeds
                ref = {r["seed"]: r["test"] for r in done.values() if r["model"] == name.split("-")[0]
                       and r["config"] == c}
                d = np.array([r["test"] - ref[r["seed"]] for r in rows if r["seed"] in ref])
                out["results"][f"{name}/{c}"]["paired_minus_1thread"] = {
                    "mean": float(d.mean()), "std": float(d.std(ddof=1)) if len(d) > 1 else 0.0,
                    "n": int(len(d)), "identical_runs": int((d == 0).sum())}
            print(f"{name:>22s} {c:>12s}: test {t.mean():.3f} ± {t.std(ddof=1):.3f}  valid {v.mean():.3f}  "
                  f"cpu/search {out['results'][f'{name}/{c}']['cpu_s_per_search']:.1f} s", flush=True)
            atomic_write_json(RESULTS / f"{args.out}.json", out)
    for c in configs:
        means = [out["results"][f"{m}/{c}"]["test_mean"] for m in models if "threads" not in m]
        out.setdefault("over_models", {})[c] = {"mean_of_means": float(np.mean(means)), "min": float(min(means)),
                                                "max": float(max(means)), "spread": float(max(means) - min(means))}
        print(f"{c}: mean over pretraining seeds {np.mean(means):.3f}, min {min(means):.3f}, max {max(means):.3f}")
    atomic_write_json(RESULTS / f"{args.out}.json", out)
    print(f"wrote {RESULTS / (args.out + '.json')}")


if __name__ == "__main__":
    main()
