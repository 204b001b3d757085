"""Ensemble finals of the ECG search benchmark: each search's chosen architecture retrained as a
K-fold record ensemble with the same final schedule (issue 14, item 5: "single model and ensemble").

Reads result JSONs written by ``benchmarks/ecg_search.py``. For every (method, seed) run in them,
the architecture the search chose (``best_arch``) is retrained by
:func:`ecgnas.search.retrain_final` -- the call the search makes for its single final model, here
with ``ensemble=K``: the K fold models of a K-fold record cross-validation over DS1, seeded with
the search seed. Each run then has

* ``final_cv_macro_f1``: the fold models' pooled out-of-fold macro-F1 over all DS1 records -- the
  search objective at full fidelity (what the search optimises, scored on DS1 only);
* ``ds2``: the fold ensemble's DS2 figures (for reporting; nothing here reads DS2 to choose);

and the summary gives, over all runs, the rank correlation between the search objective the
search used (hold-out macro-F1 of the chosen candidate at search fidelity) and the final model's
DS1 CV score, and between the final DS1 CV score and DS2. The hand-designed random-search
baseline of a JSON is included with ``--baseline`` (its space: ``resnet-family``).

Run folders live under ``--work`` (one per method and seed, ``ecgnas train`` layout); a second
invocation resumes: finished folders are read, not retrained, and a folder another invocation is
training now is skipped (listed under ``skipped``), so two invocations can share one list of runs
on two cores; a last invocation collects everything. The JSON is written after every run.

    python benchmarks/ecg_search_finals.py --results benchmarks/results/ecg_search_paired.json \\
        --methods dcl-enas,random --ensemble 5 --work runs/ecg_search_finals \\
        --out benchmarks/results/ecg_search_finals.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import header, mean_std, parallel_map  # noqa: E402
from ecg_search import VARIANTS, ds2_figures  # noqa: E402
from ecg_search_paired import BASELINE, collect  # noqa: E402

from nascore.cliutil import parse_seeds  # noqa: E402
from nascore.io import atomic_write_json, read_json  # noqa: E402

KEYS = ("accuracy", "macro_f1", "S_se", "S_ppv", "S_f1", "V_f1", "F_f1")  # summarised over seeds


def runs_of(paths: list[str], methods: list[str] | None, seeds: list[int] | None, baseline: bool) -> list[dict]:
    """One job per (method, seed) run of the result files, read as ``ecg_search_paired.py`` reads
    them (the first file naming a run wins), in the order of ``methods``, then seeds."""
    rows, skipped = collect(paths, paths if baseline else [], methods)
    for r in skipped:
        print(f"skipped: {r['method']} seed {r['seed']} of {r['file']} (kept the run of {r['kept_from']})")
    jobs = [{"method": r["method"], "seed": r["seed"], "best_arch": r["best_arch"], "file": r["file"],
             "objective": r["objective"], "single_ds2_macro_f1": r["ds2_macro_f1"]}
            for r in rows if seeds is None or r["seed"] in seeds]
    missing = [m for m in methods or [] if not any(j["method"] == m for j in jobs)]
    if missing:
        raise SystemExit(f"--methods: no runs of {', '.join(missing)} in {', '.join(paths)}")
    return jobs


def _job(job: dict) -> dict:
    import torch

    torch.set_num_threads(1)
    from ecgnas.search import chosen_candidate, retrain_final
    from nascore.errors import UserError
    from nascore.lock import busy_error

    if job["method"] == BASELINE:
        method, space = "random", "resnet-family"
    else:
        method, space = VARIANTS.get(job["method"], job["method"]), None
    cand = chosen_candidate(method, job["best_arch"], space)
    t = time.time()
    first = {k: job[k] for k in ("method", "seed", "best_arch", "objective", "single_ds2_macro_f1", "file")}
    busy = busy_error(job["out"])
    if busy is None:
        try:
            summ = retrain_final(job["out"], cand, seed=job["seed"], ensemble=job["ensemble"], data=job["data"])
        except UserError:
            busy = busy_error(job["out"])
            if busy is None:
                raise
    if busy is not None:  # another invocation trains this one: leave it to it (a later run collects it)
        return {**first, "skipped": str(busy), "folder": job["out"]}
    return {**first,
            "ensemble": job["ensemble"], "final_cv_macro_f1": (summ.get("cv") or {}).get("macro_f1"),
            "ds2": ds2_figures(read_json(Path(job["out"]) / "metrics.json")),
            "seconds_this_invocation": round(time.time() - t, 1),
            "train_seconds": summ.get("train_seconds"), "folder": job["out"]}


def summarise(rows: list[dict]) -> dict:
    from scipy.stats import kendalltau, spearmanr

    out: dict = {"methods": {}, "skipped": [f"{r['method']} seed {r['seed']}" for r in rows if "skipped" in r]}
    rows = [r for r in rows if "skipped" not in r]
    for m in dict.fromkeys(r["method"] for r in rows):
        rs = [r for r in rows if r["method"] == m]
        out["methods"][m] = {"final_cv_macro_f1": mean_std(r["final_cv_macro_f1"] for r in rs),
                             "objective": mean_std(r["objective"] for r in rs),
                             "single_ds2_macro_f1": mean_std(r["single_ds2_macro_f1"] for r in rs),
                             **{f"ds2_{k}": mean_std(r["ds2"].get(k) for r in rs) for k in KEYS}}
    pairs = [r for r in rows if r["objective"] is not None and r["final_cv_macro_f1"] is not None
             and r["method"] != BASELINE]  # the baseline's hold-out is scored on its own windows
    if len(pairs) >= 4:
        a = [r["objective"] for r in pairs]
        b = [r["final_cv_macro_f1"] for r in pairs]
        c = [r["ds2"]["macro_f1"] for r in pairs]
        out["rank_correlation"] = {
            "n": len(pairs),
            "objective_vs_final_cv": {"spearman": float(spearmanr(a, b)[0]), "kendall": float(kendalltau(a, b)[0])},
            "final_cv_vs_ds2": {"spearman": float(spearmanr(b, c)[0]), "kendall": float(kendalltau(b, c)[0])}}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", action="append", required=True, help="an ecg_search.py result JSON (repeat)")
    ap.add_argument("--methods", default="", help="comma list, in the order to train (default: all in the files)")
    ap.add_argument("--seeds", default=None)
    ap.add_argument("--baseline", action="store_true", help="also the hand-designed random-search baseline")
    ap.add_argument("--ensemble", type=int, default=5, help="K fold models per final (default 5)")
    ap.add_argument("--jobs", type=int, default=1, help="parallel processes (one torch thread each)")
    ap.add_argument("--data", default=None)
    ap.add_argument("--work", default="runs/ecg_search_finals")
    ap.add_argument("--out", default="benchmarks/results/ecg_search_finals.json")
    args = ap.parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()] or None
    if args.baseline and methods is not None and BASELINE not in methods:
        methods.append(BASELINE)
    jobs = runs_of(args.results, methods, parse_seeds(args.seeds) if args.seeds else None, args.baseline)
    work = Path(args.work)
    for j in jobs:
        j.update(ensemble=args.ensemble, data=args.data,
                 out=str(work / f"{j['method'].replace(' ', '-')}-s{j['seed']}-ens{args.ensemble}"))
    t0 = time.time()
    doc = {**header(), "settings": {"results": args.results, "ensemble": args.ensemble, "members": "folds",
                                    "final": "ecgnas.search.final_schedule(), seeded with the search seed"},
           "protocol": "each run's chosen architecture retrained as a K-fold DS1 record ensemble; "
                       "final_cv_macro_f1 = the fold models' out-of-fold DS1 macro-F1; DS2 for reporting only",
           "runs": []}
    rows: list[dict] = []
    batch = max(1, args.jobs)
    for i in range(0, len(jobs), batch):  # write after every batch: a long run keeps what it finished
        rows += parallel_map(_job, jobs[i:i + batch], args.jobs, desc=f"finals {i + 1}-{min(i + batch, len(jobs))}"
                             f" of {len(jobs)}")
        doc.update(runs=rows, summary=summarise(rows), wall_seconds_this_invocation=round(time.time() - t0, 1))
        atomic_write_json(args.out, doc)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
