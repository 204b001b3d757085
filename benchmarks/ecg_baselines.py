"""The DS2 table: hand-designed models and the default ``ecg-cell`` network under the recipe.

For each model spec and seed: ``ecgnas train`` with the default recipe
(:class:`ecgnas.train.TrainConfig` defaults: fixed schedule, inverse class weights, beat
augmentations, label smoothing, RR standardisation in the model) with ``--cv``: a 5-fold grouped
record cross-validation over DS1, then one model on all of DS1, plain argmax (the default
decision). Nothing here is chosen on DS2; DS2 is only evaluated. Recorded per run:

* ``single``: the model trained on all of DS1 (what ``ecgnas train`` gives);
* ``ensemble``: the 5 fold models, probabilities averaged (what ``ecgnas train --ensemble 5``
  gives; here at no extra training);
* ``single_offsets``: the single model with per-class offsets fitted on the DS1 out-of-fold
  predictions (``--decision cv``), for the ablation of the decision rule;
* ``cv``: the DS1 out-of-fold scores (the DS1-only estimate).

Resumable: every run is an ``ecgnas train`` folder under ``--work``; finished runs are read back.
Runs go in parallel over ``--jobs`` processes, one torch thread each. Output:
``benchmarks/results/ecg_baselines.json`` (machine, date, command, settings, per-run entries,
mean ± std over seeds).

Example (the recorded results)::

    NASCORE_DATA=../shared/data python benchmarks/ecg_baselines.py --seeds 0-4 --jobs 2 --work runs/ecg_table
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))
from common import RESULTS, header, parallel_map  # noqa: E402
from nascore.cliutil import parse_seeds  # noqa: E402
from nascore.io import atomic_write_json  # noqa: E402

#: spec name -> (model, hparams, TrainConfig overrides); "+rr" = the published network given the RR
#: features; the converged linear row uses the schedule that converges a linear model (measured in
#: benchmarks/ecg_recipe_cv.py), every other row the default recipe
SPECS: dict[str, tuple[str, dict, dict]] = {
    "linear": ("linear", {}, {}),
    "linear (converged: 20 epochs, lr 1e-2, no weight decay)": ("linear", {}, {"epochs": 20, "lr": 1e-2,
                                                                              "weight_decay": 0.0}),
    "acharya+rr": ("acharya", {"use_rr": True}, {}),
    "acharya (published, no RR)": ("acharya", {}, {}),
    "ecg-cell (default network)": ("ecg-cell", {}, {}),
    "ecg-cell + linear RR path (rr_skip)": ("ecg-cell", {"rr_skip": True}, {}),
    "kachuee+rr": ("kachuee", {"use_rr": True}, {}),
    "kachuee (published, no RR)": ("kachuee", {}, {}),
    "resnet": ("resnet", {}, {}),
}
#: specs on other prepared inputs: spec -> PrepConfig overrides (not chosen on DS2: see RESULTS.md)
PREPS: dict[str, dict] = {"ecg-cell, template of non-premature beats": {"template": "regular"}}
SPECS.update({k: SPECS["ecg-cell (default network)"] for k in PREPS})
CLASSES = ("N", "S", "V", "F")
HEADLINE = (("accuracy", ("accuracy",)), ("macro_f1", ("macro_f1",)),
            *((f"{c}_{m}", (c, m)) for c in CLASSES for m in ("se", "ppv", "f1")))
VIEWS = ("single", "ensemble", "single_offsets", "cv")


def _get(d: dict, path):
    for k in path:
        d = d[k]
    return d


def stats(values) -> dict:
    v = [x for x in values if x is not None]  # +P is undefined (None) when a class is never predicted
    return {"mean": statistics.fmean(v) if v else None, "std": statistics.stdev(v) if len(v) > 1 else None,
            "n": len(v)}


def slug(spec: str) -> str:
    import re

    return re.sub(r"[^a-z0-9+]+", "-", spec.lower()).strip("-")


def entry(summary: dict, **extra) -> dict:
    views = {"single": summary["test"], "ensemble": summary.get("cv_ensemble_test"),
             "single_offsets": summary.get("test_offsets"), "cv": summary.get("cv")}
    return {**extra, "params": summary["params"], "window": summary["window"], "epochs_run": summary["epochs_run"],
            "train_seconds_all_models": round(summary["train_seconds"], 1),
            "throughput_beats_per_s": round(summary["throughput"], 1),
            "offsets_not_applied": summary.get("offsets_not_applied"),
            **{v: ({name: _get(views[v], path) for name, path in HEADLINE} if views[v] else None) for v in VIEWS}}


def aggregate(entries: list[dict]) -> dict:
    """Mean and sample standard deviation over seeds of the headline numbers, per spec and view."""
    out = {}
    for spec in dict.fromkeys(e["spec"] for e in entries):
        rows = [e for e in entries if e["spec"] == spec]
        agg = {"n_seeds": len(rows), "seeds": [r["seed"] for r in rows], "params": rows[0]["params"]}
        for v in VIEWS:
            if all(r[v] for r in rows):
                agg[v] = {name: stats(r[v][name] for r in rows) for name, _ in HEADLINE}
        for name in ("train_seconds_all_models", "single_model_seconds", "throughput_beats_per_s"):
            agg[name] = stats(r[name] for r in rows)
        out[spec] = agg
    return out


VIEW_NAMES = {"single": "single model", "ensemble": "5-fold ensemble", "single_offsets": "single + DS1 offsets"}


def _ms(st: dict, digits: int = 1, sep: str = ",") -> str:
    """``mean ± std`` of a :func:`stats` dict (``–`` when undefined)."""
    if st is None or st.get("mean") is None:
        return "–"
    m = f"{st['mean']:{sep}.{digits}f}"
    return m if st.get("std") is None else f"{m} ± {st['std']:{sep}.{digits}f}"


def markdown(doc: dict) -> str:
    """The two RESULTS.md tables (DS2 per view; DS1 estimate and training time) from a results doc."""
    cols = ["acc", "macro-F1"] + [f"{c} {m}" for c in CLASSES for m in ("Se", "+P", "F1")]
    keys = ["accuracy", "macro_f1"] + [f"{c}_{m}" for c in CLASSES for m in ("se", "ppv", "f1")]
    out = ["| model | view | seeds | params | " + " | ".join(cols) + " |", "|---" * (4 + len(cols)) + "|"]
    for spec, a in doc["aggregate"].items():
        for v, name in VIEW_NAMES.items():
            if v in a:
                out.append(f"| {spec} | {name} | {a['n_seeds']} | {a['params']:,} | "
                           + " | ".join(_ms(a[v][k]) for k in keys) + " |")
    out += ["", "| model | seeds | DS1 CV macro-F1 (5 record folds, out of fold) | DS1 CV S F1 | DS2 macro-F1 "
            "(single) | one model, 1 thread (s) | all 6 trainings (s) |", "|---" * 7 + "|"]
    for spec, a in doc["aggregate"].items():
        out.append(f"| {spec} | {a['n_seeds']} | {_ms(a['cv']['macro_f1'])} | {_ms(a['cv']['S_f1'])} | "
                   f"{_ms(a['single']['macro_f1'])} | {_ms(a['single_model_seconds'], 0)} | "
                   f"{_ms(a['train_seconds_all_models'], 0)} |")
    return "\n".join(out)


def _job(job: dict) -> dict:
    import torch

    torch.set_num_threads(1)
    from ecgnas.run import train_run
    from ecgnas.data import DataSpec, PrepConfig
    from ecgnas.train import TrainConfig

    model, hp, over = SPECS[job["spec"]]
    cfg = TrainConfig(**{"device": "cpu", "num_threads": 1, "seed": job["seed"], **over})
    spec = DataSpec(prep=PrepConfig(**PREPS.get(job["spec"], {})), data=job["data"])
    s = train_run(job["run"], model, hparams=hp, train=cfg, spec=spec, progress=False, cv=True)
    from nascore.io import read_jsonl

    log = read_jsonl(Path(job["run"]) / "train_log.jsonl")  # the single model's epochs (fold models are not logged)
    return entry(s, spec=job["spec"], model=model, hparams=hp, train_overrides=over, seed=job["seed"],
                 prep_overrides=PREPS.get(job["spec"], {}),
                 run=job["run"], single_model_seconds=round(sum(r["seconds"] for r in log), 1))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--specs", default=";".join(SPECS), help="semicolon-separated spec names (default all)")
    ap.add_argument("--seeds", default="0-4")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--data", default=None)
    ap.add_argument("--work", default="runs/ecg_table", help="run folders (resumable)")
    ap.add_argument("--out", default=str(RESULTS / "ecg_baselines.json"))
    ap.add_argument("--collect", action="store_true",
                    help="train nothing: gather the finished runs under --work (any seed of the list)")
    ap.add_argument("--markdown", action="store_true",
                    help="train nothing: print the RESULTS.md tables of the --out results file")
    args = ap.parse_args(argv)
    if args.markdown:
        import json

        print(markdown(json.loads(Path(args.out).read_text())))
        return 0

    from ecgnas.data import DataSpec, PrepConfig
    from ecgnas.evaluate import load_data
    from ecgnas.train import TrainConfig

    specs = [s.strip() for s in args.specs.split(";") if s.strip()]
    unknown = [s for s in specs if s not in SPECS]
    if unknown:
        ap.error(f"unknown spec(s) {unknown}; choose from {list(SPECS)}")
    for prep in [{}] + [PREPS[s] for s in specs if s in PREPS]:
        load_data(DataSpec(prep=PrepConfig(**prep), data=args.data), progress=False)  # warm the beat caches before forking
    work = Path(args.work)
    jobs = [{"spec": s, "seed": seed, "data": args.data, "run": str(work / f"{slug(s)}-s{seed}")}
            for seed in parse_seeds(args.seeds) for s in specs]
    if args.collect:
        jobs = [j for j in jobs if (Path(j["run"]) / "train_summary.json").is_file()]
    t0 = time.time()
    entries = parallel_map(_job, jobs, args.jobs, desc="ds2 table")
    doc = {**header(), "protocol": "inter-patient MIT-BIH (de Chazal 2004): recipe chosen on DS1 only; 5-fold "
                                   "grouped record CV over DS1 (out-of-fold score, fold ensemble), one model on "
                                   "all of DS1; DS2 evaluated once per run",
           "prep": PrepConfig().to_dict(), "train_config": TrainConfig(device="cpu", num_threads=1).to_dict(),
           "note": "metrics in percent; mean ± sample std over the seeds run", "entries": entries,
           "aggregate": aggregate(entries), "wall_seconds_this_invocation": round(time.time() - t0, 1)}
    atomic_write_json(args.out, doc)
    for spec, a in doc["aggregate"].items():
        line = " | ".join(f"{v} {a[v]['macro_f1']['mean']:.1f}±{(a[v]['macro_f1']['std'] or 0):.1f} "
                          f"(S {a[v]['S_f1']['mean']:.1f}, V {a[v]['V_f1']['mean']:.1f})" for v in VIEWS if v in a)
        print(f"{spec:30s} n={a['n_seeds']} {line}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
