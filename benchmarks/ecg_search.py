"""ECG architecture search benchmark: every method against the random-search hand-designed baseline.

For each search seed: the baseline (random search over the hand-designed family,
:mod:`ecgnas.spaces.handdesigned`) runs once into ``WORK/baseline-s<seed>``; then every method
runs ``ecgnas.search.ecg_search`` with the same budget, fidelity, final schedule and seed, and
``--baseline WORK/baseline-s<seed>`` (shared, not re-run). Inter-patient protocol: search and
selection on DS1 only (hold-out records inside DS1), DS2 only for the figures.

Recorded per method (mean ± std over seeds): DS2 macro-F1, S and V F1 (and Se/+P), accuracy, the
paired difference to the baseline of the same seed, search cost (candidate-evaluation seconds:
CPU-seconds here, every evaluation runs on one thread), final training seconds, parameters;
into ``benchmarks/results/ecg_search.json`` with machine, date and command. Runs execute in
``--jobs`` processes (one torch thread each); everything is resumable (run the same command).

Example (the recorded results)::

    NASCORE_DATA=../shared/data python benchmarks/ecg_search.py --seeds 0,1,2 --budget 30 --jobs 2 --work runs/ecg_search
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))
from common import RESULTS, header, mean_std, parallel_map  # noqa: E402
from nascore.cliutil import parse_seeds  # noqa: E402
from nascore.io import atomic_write_json  # noqa: E402

METHODS = ("random", "evolution", "dcl-enas", "arch2vec-bo", "arch2vec-rl", "eg-nas")
#: benchmark-only variants: ``eg-nas-released`` = eg-nas with every choice of the released EG-NAS
#: code (``ecgnas search --method eg-nas --released``: σ kept at 1, 7 operations, half-batch
#: scoring, normalised candidates, double-softmax update, noise on the mean, running BN statistics)
#: ``eg-nas-8ops`` = eg-nas with DARTS's 8 operations (``none`` included: ``--op-set darts``) instead
#: of the released EG-NAS 7 (the default)
VARIANTS = {"eg-nas-released": "eg-nas", "eg-nas-8ops": "eg-nas"}


def _alpha_summary(folder) -> dict | None:
    """How far the supernet search moved the architecture weights: over the edges of the last
    epoch's softmax(α) (``search/log.jsonl``), the largest weight, the mean of each edge's largest
    weight and the uniform weight 1/|ops| they start from; None without a supernet log."""
    import json

    import numpy as np

    log = Path(folder) / "search" / "log.jsonl"
    if not log.is_file():
        return None
    last = json.loads(log.read_text().splitlines()[-1])
    if not last.get("alpha"):
        return None
    edges = np.asarray(last["alpha"], dtype=float)
    edges = edges.reshape(-1, edges.shape[-1])  # (cell types x edges) x operations
    maxima = edges.max(1)
    return {"epoch": last["epoch"], "edges": len(edges), "uniform": 1 / edges.shape[1], "max": float(maxima.max()),
            "mean_edge_max": float(maxima.mean())}


def ds2_figures(metrics: dict) -> dict:
    """The DS2 figures of the tables from a run's ``metrics.json``: accuracy, macro-F1, κ and
    ``S_se`` ... ``F_f1`` (Se, +P, F1 of S, V and F)."""
    pc = metrics["per_class"]
    return {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"], "kappa": metrics["kappa"],
            **{f"{c}_{k}": pc[c][k] for c in ("S", "V", "F") for k in ("se", "ppv", "f1")}}


def _row(res: dict, folder=None) -> dict:
    from ecgnas.search_report import search_objective

    ds2 = res["ds2"]
    mf = res.get("multi_fidelity") or {}
    return {"seed": res["seed"], "objective": search_objective(res),
            "final_cv_macro_f1": res.get("final_cv_macro_f1"),
            "candidate_epochs": mf.get("candidate_epochs"), "candidates": mf.get("candidates"), "best_arch": res["best_arch"], "params": res["params"], "flops": res.get("flops"),
            "latency_ms": res.get("latency_ms"), "search_val_macro_f1": res["search_val_macro_f1"],
            "final_val_macro_f1": res["final_val_macro_f1"], "search_cost_seconds": res["search_cost_seconds"],
            "final_train_seconds": res["final_train_seconds"], "evaluations": res.get("evaluations"),
            "ds2": ds2_figures(ds2),
            "baseline_macro_f1": None if res.get("baseline_ds2") is None else res["baseline_ds2"]["macro_f1"],
            "alpha": None if folder is None else _alpha_summary(folder)}


def _aggregate(rows: list[dict]) -> dict:
    keys = ("accuracy", "macro_f1", "S_se", "S_ppv", "S_f1", "V_se", "V_ppv", "V_f1", "F_f1")
    out = {k: mean_std(r["ds2"][k] for r in rows) for k in keys}
    out["gain_over_baseline"] = mean_std(r["ds2"]["macro_f1"] - r["baseline_macro_f1"] for r in rows
                                       if r["baseline_macro_f1"] is not None)
    for k in ("params", "search_cost_seconds", "final_train_seconds", "search_val_macro_f1", "final_val_macro_f1",
              "final_cv_macro_f1", "candidate_epochs", "candidates"):
        out[k] = mean_std(r.get(k) for r in rows)
    out["search_cpu_hours"] = mean_std(r["search_cost_seconds"] / 3600 for r in rows)
    out["n_seeds"] = len(rows)
    return out


def _job(job: dict) -> dict:
    import torch

    torch.set_num_threads(1)
    from ecgnas.evaluator import default_fidelity
    from ecgnas.search import ecg_search, final_schedule

    fid = default_fidelity(**job["fidelity"])
    fin = final_schedule(**job["final"])
    kw = dict(budget=job["budget"], seed=job["seed"], fidelity=fid, final=fin, data=job["data"], progress=False,
              selection=job.get("selection", "holdout"), ensemble=job.get("ensemble", 1),
              eval_cache=job.get("eval_cache"))
    method = VARIANTS.get(job["method"], job["method"])
    if job.get("multi_fidelity") and method != "eg-nas":
        from nascore.multifidelity import MultiFidelity

        kw["multi_fidelity"] = MultiFidelity.parse(job["multi_fidelity"]["rungs"], eta=job["multi_fidelity"]["eta"])
    if job["method"] == "baseline":
        return ecg_search(job["out"], method="random", space="resnet-family", baseline="none", **kw)
    params = dict(job.get("params") or {})
    supernet = dict(job["supernet"]) if method == "eg-nas" else None
    if job["method"] == "eg-nas-released":
        from nascore.egnas import released_settings

        es, sn = released_settings("darts1d", supernet.pop("es", None))
        supernet = {**supernet, **sn, "es": es}
    elif job["method"] == "eg-nas-8ops":
        supernet = {**supernet, "op_set": "darts"}
    return ecg_search(job["out"], method=method, baseline=job["baseline"], strategy_params=params,
                      supernet=supernet, **kw)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--budget", type=int, default=30, help="candidate evaluations per search")
    ap.add_argument("--search-epochs", type=int, default=3)
    ap.add_argument("--search-samples", type=int, default=8192)
    ap.add_argument("--supernet-epochs", type=int, default=10, help="eg-nas supernet epochs")
    ap.add_argument("--supernet-warmup", type=int, default=3, help="eg-nas warm-up epochs (the paper: 15 of 50)")
    ap.add_argument("--jobs", type=int, default=2, help="parallel processes (one torch thread each)")
    ap.add_argument("--data", default=None)
    ap.add_argument("--work", default="runs/ecg_search")
    ap.add_argument("--out", default=str(RESULTS / "ecg_search.json"))
    ap.add_argument("--selection", choices=("holdout", "cv"), default="holdout",
                    help="how candidates are scored (methods and baseline alike; eg-nas: holdout only)")
    ap.add_argument("--no-baseline", action="store_true", help="skip the hand-designed random-search baseline")
    ap.add_argument("--multi-fidelity", default=None, metavar="RUNGS",
                    help="run every ask/tell method (and the baseline) inside ASHA with these rungs, e.g. 1,3,9; "
                         "--budget then counts budget x top-rung candidate-epochs")
    ap.add_argument("--eta", type=int, default=3)
    ap.add_argument("--ensemble", type=int, default=1, help="final model: K record-fold models (gives a DS1 CV score)")
    ap.add_argument("--final-epochs", type=int, default=None, help="final schedule epochs (default: the recipe's)")
    ap.add_argument("--eval-cache", action="store_true",
                    help="one evaluation cache for all runs of a seed (WORK/evals-s<seed>); candidates a "
                         "method shares with another are trained once")
    args = ap.parse_args(argv)

    work = Path(args.work)
    seeds = parse_seeds(args.seeds)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    common = {"budget": args.budget, "data": args.data,
              "fidelity": {"epochs": args.search_epochs, "samples_per_epoch": args.search_samples},
              "final": {} if args.final_epochs is None else {"epochs": args.final_epochs},
              "supernet": {"epochs": args.supernet_epochs, "warmup": args.supernet_warmup},
              "selection": args.selection, "ensemble": args.ensemble,
              "multi_fidelity": None if args.multi_fidelity is None else {
                  "rungs": [int(r) for r in args.multi_fidelity.split(",")], "eta": args.eta}}
    t0 = time.time()
    doc = {**header(), "settings": {**common, "methods": methods, "seeds": seeds},
           "protocol": f"inter-patient MIT-BIH: search + selection on DS1 ({args.selection}: "
                       + ("hold-out records inside DS1" if args.selection == "holdout" else
                          "grouped 4-fold cross-validation over the DS1 records") + "), final model "
                       "retrained with the full schedule, DS2 only for reporting; baseline = random search over the "
                       "hand-designed family with the same budget, fidelity, final schedule and seed",
           "methods": {}, "baseline": {}}

    def save(results: dict) -> None:
        doc["methods"] = {m: {"runs": rows, "aggregate": _aggregate(rows)} for m, rows in results.items()
                          if m != "baseline" and rows}
        if results.get("baseline"):
            doc["baseline"] = {"runs": results["baseline"], "aggregate": _aggregate(results["baseline"])}
        doc["wall_seconds_this_invocation"] = round(time.time() - t0, 1)
        atomic_write_json(args.out, doc)

    if any(m.startswith("arch2vec") for m in methods):  # pretrain once, before parallel jobs could race for it
        import ecgnas.spaces  # noqa: F401
        from ecgnas.search import arch2vec_model
        from nascore.spaces import get_space

        t = time.time()
        doc["arch2vec_model"] = str(arch2vec_model(get_space("ecg-cell")))
        doc["arch2vec_pretrain_seconds_this_invocation"] = round(time.time() - t, 1)
    results: dict[str, list] = {"baseline": []}
    def cache(s):
        return {"eval_cache": str(work / f"evals-s{s}")} if args.eval_cache else {}

    base_jobs = [] if args.no_baseline else [{**common, **cache(s), "method": "baseline", "seed": s,
                                               "out": str(work / f"baseline-s{s}")} for s in seeds]
    for res in parallel_map(_job, base_jobs, args.jobs, desc="baselines"):
        results["baseline"].append(_row(res))
    save(results)
    jobs = [{**common, **cache(s), "method": m, "seed": s, "out": str(work / f"{m}-s{s}"),
             "baseline": "none" if args.no_baseline else str(work / f"baseline-s{s}")} for m in methods for s in seeds]
    for job, res in zip(jobs, parallel_map(_job, jobs, args.jobs, desc="searches")):
        results.setdefault(job["method"], []).append(_row(res, job["out"]))
        save(results)
    save(results)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
