"""``ecgnas search`` and ``ecgnas report``: architecture search for arrhythmia classifiers, end to end.

``search`` searches on DS1 (train = DS1 minus the hold-out records, selection on the DS1
hold-out), retrains the best architecture with the full schedule, evaluates it on DS2 beside the
random-search hand-designed baseline, and writes ``result.json``, ``pareto.png``, ``search.png``
and ``report.md`` (:mod:`ecgnas.search`). Kill it and run the same command again to resume.
``report`` re-renders ``report.md`` and the figures of a finished run.

Examples::

    ecgnas search --method evolution --budget 12 --output runs/quick       # minutes on a laptop CPU
    ecgnas search --method dcl-enas --budget 48 --seed 1 --baseline runs/baseline-s1 --output runs/dcl-s1
    ecgnas search --method random --max-params 20000 --output runs/small   # hardware-aware
    ecgnas search --method evolution --executor ray --workers 8 --output runs/evo-ray
    ecgnas search --method eg-nas --supernet-epochs 10 --output runs/egnas
    ecgnas search --method eg-nas --released --output runs/egnas-released   # the released EG-NAS code's choices
    ecgnas search --method dcl-enas --multi-fidelity --search-epochs 9 --budget 30 --output runs/dcl-mf   # rungs 1,3,9
    ecgnas report runs/quick
"""

from __future__ import annotations

import sys

from nascore.cliutil import add_multi_fidelity_options, check_options, multi_fidelity_args, parse_key_values
from nascore.commands.darts import add_supernet_options
from nascore.commands.egnas import ES_BOUNDS, add_released_options, released_choices
from nascore.errors import UserError
from nascore.helptext import doc_paragraph
from nascore.validate import integer, number

from ecgnas.commands.train import COMMON_BOUNDS, add_dataset_options, dataspec_from_args

#: ranges of the numeric options of ``ecgnas search`` (checked before anything runs or is written)
SEARCH_BOUNDS = {**COMMON_BOUNDS, "budget": integer(1, 1_000_000), "search_epochs": integer(1, 100_000),
                 "search_samples": integer(1, 100_000_000), "ensemble": integer(1, 20), "workers": integer(1, 4096),
                 "gpus_per_task": number(0, 1024), "supernet_epochs": integer(1, 100_000),
                 "supernet_warmup": integer(0, 100_000), "max_params": number(0, lo_open=True),
                 "max_flops": number(0, lo_open=True), "max_latency_ms": number(0, lo_open=True),
                 "es_batch_fraction": ES_BOUNDS["es_batch_fraction"], "mean_noise": ES_BOUNDS["mean_noise"]}
#: the eg-nas options of the released EG-NAS choices (dest -> flag), refused for the other methods
EGNAS_OPTIONS = {"op_set": "--op-set", "pool_bn": "--pool-bn", "bn_running_stats": "--bn-running-stats",
                 "released": "--released", "sigma_schedule": "--sigma-schedule",
                 "es_batch_fraction": "--es-batch-fraction", "normalize_candidates": "--normalize-candidates",
                 "double_softmax": "--double-softmax", "mean_noise": "--mean-noise"}


def register(subparsers) -> None:
    from ecgnas.evaluator import DEFAULT_FIDELITY
    from ecgnas.methods import METHODS, all_spaces
    from ecgnas.evaluator import LATENCY_SOURCES
    from ecgnas.search import CONSTRAINTS, EXECUTORS
    from ecgnas.train import DEVICES, TrainConfig

    d = TrainConfig()
    p = subparsers.add_parser("search", help="search an arrhythmia classifier on DS1, retrain it, report DS2 "
                                             "beside the hand-designed baseline", description=doc_paragraph(__doc__, 0))
    p.add_argument("--method", required=True, choices=list(METHODS), help="search method")
    p.add_argument("--space", default=None, choices=all_spaces(),
                   help="search space (default ecg-cell; darts1d for eg-nas; resnet-family = the hand-designed family)")
    p.add_argument("--budget", type=int, default=24, help="candidate evaluations (sample-based methods; default 24)")
    p.add_argument("--seed", type=int, default=0, help="search seed (also the evaluation seed; default 0)")
    p.add_argument("--output", required=True, help="run folder")
    add_dataset_options(p)
    p.add_argument("--split", choices=("inter", "intra"), default="inter",
                   help="inter: DS1/DS2 (default); intra: random beat split (optimistic)")
    g = p.add_argument_group("candidate training (search fidelity)")
    g.add_argument("--search-epochs", type=int, default=DEFAULT_FIDELITY["epochs"],
                   help=f"epochs per candidate (default {DEFAULT_FIDELITY['epochs']})")
    g.add_argument("--search-samples", type=int, default=DEFAULT_FIDELITY["samples_per_epoch"],
                   help=f"beats per candidate epoch (default {DEFAULT_FIDELITY['samples_per_epoch']})")
    g.add_argument("--selection", choices=("holdout", "cv"), default="holdout",
                   help="how a candidate is scored: holdout = macro-F1 on the DS1 hold-out records (default); "
                        "cv = grouped 4-fold cross-validation over all DS1 records (4 trainings per candidate, "
                        "a steadier signal; see benchmarks/RESULTS.md)")
    g.add_argument("--search-repeats", type=int, default=1, metavar="R",
                   help="train each candidate R times with different seeds and score the mean (default 1; one "
                        "training's score is mostly seed noise in ecg-cell, see benchmarks/RESULTS.md)")
    g = p.add_argument_group("final model (full schedule)")
    g.add_argument("--epochs", type=int, default=d.epochs, help=f"max epochs (default {d.epochs})")
    g.add_argument("--samples-per-epoch", type=int, default=d.samples_per_epoch,
                   help="beats per epoch (default: every training beat once; 0 = the same)")
    g.add_argument("--patience", type=int, default=d.patience,
                   help="early-stopping patience on the DS1 hold-out (default: none, the fixed schedule)")
    g.add_argument("--ensemble", type=int, default=1, metavar="K",
                   help="final model: average K fold models of a DS1 record cross-validation (default 1)")
    g = p.add_argument_group("hardware-aware search")
    for c in CONSTRAINTS:
        g.add_argument("--" + c.replace("_", "-"), type=float, default=None,
                       help={"max_params": "at most this many parameters",
                             "max_flops": "at most this many FLOPs per beat",
                             "max_latency_ms": "at most this CPU latency per beat (ms; see --latency-source)"}[c])
    g.add_argument("--latency-source", choices=LATENCY_SOURCES, default="table",
                   help="table: --max-latency-ms restricts the space by a per-operation lookup table of eager-torch "
                        "ms, eager latency recorded (default); onnxruntime: each candidate is exported and timed "
                        "with onnxruntime (batch 1, 1 thread), --max-latency-ms rejects it when slower and its "
                        "latency_ms is that measurement (pip install -e '.[deploy]')")
    g = p.add_argument_group("execution")
    g.add_argument("--executor", choices=EXECUTORS, default="local",
                   help="local: evaluate in this process (default); ray: parallel Ray tasks (pip install -e '.[ray]')")
    g.add_argument("--workers", type=int, default=None,
                   help="ray: candidates evaluated at once (default: the CPUs Ray sees; also the batch size)")
    g.add_argument("--ray-address", default=None, help="ray: join this cluster (auto, ray://host:10001)")
    g.add_argument("--gpus-per-task", type=float, default=0.0, help="ray: GPUs each evaluation reserves")
    g.add_argument("--device", choices=DEVICES, default="cpu", help="where candidates and the final model train")
    g.add_argument("--threads", type=int, default=1, help="torch threads per evaluation (default 1)")
    g.add_argument("--eval-cache", default=None, help="evaluation cache folder (default OUTPUT/evals; share it "
                                                       "between methods of one seed)")
    g.add_argument("--no-latency", action="store_true", help="do not measure each candidate's CPU latency")
    g = p.add_argument_group("method settings")
    g.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="strategy parameter (repeat), e.g. population=10, n_init=8, model=PATH (arch2vec)")
    g.add_argument("--supernet-epochs", type=int, default=None, help="eg-nas: supernet epochs")
    g.add_argument("--supernet-warmup", type=int, default=None, help="eg-nas: warm-up epochs before the ES acts")
    g.add_argument("--baseline", default="auto",
                   help="auto: run the hand-designed random-search baseline into OUTPUT/baseline (default); "
                        "DIR: run or reuse it there; none: no baseline")
    g = p.add_argument_group("eg-nas: the released EG-NAS code's choices (as `nascore egnas search`; default ours, "
                             "except the 7 operations without 'none')")
    add_supernet_options(g)
    add_released_options(g)
    add_multi_fidelity_options(p, "--search-epochs")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=main)

    r = subparsers.add_parser("report", help="render report.md and the figures of a finished `ecgnas search` run",
                              description="Re-render report.md, search.png and pareto.png of a finished run folder.")
    r.add_argument("run", help="run folder of `ecgnas search`")
    r.set_defaults(func=report_main)


def main(args) -> int:
    import dataclasses

    from ecgnas.evaluator import default_fidelity
    from ecgnas.methods import get_method
    from ecgnas.search import CONSTRAINTS, ecg_search, final_schedule

    check_options(args, SEARCH_BOUNDS)
    cons = {c: getattr(args, c) for c in CONSTRAINTS}
    params = parse_key_values(args.param, "--param")
    params = get_method(args.method).check_params(params)  # types and ranges checked before anything is written
    runtime = dict(device=args.device, num_threads=args.threads)
    fidelity = default_fidelity(epochs=args.search_epochs, samples_per_epoch=args.search_samples, **runtime)
    spe = None if args.samples_per_epoch == 0 else args.samples_per_epoch
    patience = args.patience or None
    final = dataclasses.replace(final_schedule(), epochs=args.epochs, samples_per_epoch=spe,
                                patience=patience, select="last" if patience is None else "best", **runtime)
    ex_opts, batch = {}, 1
    if args.executor == "ray":
        ex_opts = {"address": args.ray_address, "num_cpus": args.workers, "cpus_per_task": args.threads,
                   "gpus_per_task": args.gpus_per_task}
        batch = args.workers or _ray_cpus(args)
    elif args.workers or args.ray_address:
        raise UserError("--workers / --ray-address need --executor ray")
    supernet = {k: v for k, v in (("epochs", args.supernet_epochs), ("warmup", args.supernet_warmup)) if v is not None}
    supernet.update(egnas_choices(args))
    baseline = args.baseline if args.baseline in ("auto", "none") else args.baseline
    res = ecg_search(args.output, method=args.method, space=args.space, budget=args.budget, seed=args.seed,
                     fidelity=fidelity, final=final, spec=dataspec_from_args(args), constraints=cons,
                     executor=args.executor, executor_options=ex_opts, batch_size=batch,
                     strategy_params=params, supernet=supernet, baseline=baseline,
                     eval_cache=args.eval_cache, latency=not args.no_latency, selection=args.selection,
                     ensemble=args.ensemble, progress=not args.quiet, multi_fidelity=_schedule_arg(args),
                     latency_source=args.latency_source, repeats=args.search_repeats)
    ds2 = res["ds2"]
    test = "DS2" if res.get("dataset", "mitdb") == "mitdb" else f"{res['dataset'].split('+')[0]} test patients"
    line = (f"{args.output}: {res['method']} -> {test} macro-F1 {ds2['macro_f1']:.2f}, accuracy {ds2['accuracy']:.2f}, "
            f"S F1 {ds2['per_class']['S']['f1']:.1f}, V F1 {ds2['per_class']['V']['f1']:.1f}, {res['params']:,} params")
    if res.get("baseline_ds2"):
        line += f"; baseline {test} macro-F1 {res['baseline_ds2']['macro_f1']:.2f}"
    if res.get("extra_training_data"):
        line += f"; {res['extra_training_data']}"
    print(line + f" (report: {args.output.rstrip('/')}/report.md)", file=sys.stdout)
    return 0


def egnas_choices(args) -> dict:
    """The released-EG-NAS options as ``ecg_search``'s ``supernet`` settings (``es`` fields,
    ``op_set``, ``pool_bn``, ``bn_running_stats``; resolved as ``nascore egnas search`` does,
    :func:`nascore.commands.egnas.released_choices`), only those that differ from the default
    search: a run at the defaults records none of them, so run folders written before these
    options existed keep resuming. Refused (UserError) for a method other than eg-nas."""
    from nascore.darts.train import default_primitives, resolve_primitives
    from nascore.egnas import ESConfig

    from ecgnas.methods import get_method
    from ecgnas.spaces.darts1d import SPACE

    given = [flag for dest, flag in EGNAS_OPTIONS.items()
             if getattr(args, dest) is not None and not (dest == "released" and not args.released)]
    entry = get_method(args.method)
    if entry.supernet != "egnas":
        if given:
            raise UserError(f"{given[0]}: an eg-nas option (the released EG-NAS choices); --method {args.method} "
                            "does not take it")
        return {}
    es, sn = released_choices(args, SPACE)
    ours = ESConfig()
    out = {}
    changed = {k: v for k, v in es.items() if v != getattr(ours, k)}
    if changed:
        out["es"] = changed
    if sn["op_set"] is not None and (resolve_primitives("egnas", SPACE, sn["op_set"])
                                     != list(default_primitives("egnas", SPACE))):
        out["op_set"] = sn["op_set"]
    if sn["pool_bn"] is not True:
        out["pool_bn"] = sn["pool_bn"]
    if sn["bn_running_stats"] is not False:
        out["bn_running_stats"] = sn["bn_running_stats"]
    return out


def _schedule_arg(args):
    """``--multi-fidelity --rungs --eta`` as ``ecg_search``'s ``multi_fidelity`` (None without it)."""
    mf = multi_fidelity_args(args)
    return {"rungs": mf["rungs"], "eta": mf["eta"]} if mf else None


def _ray_cpus(args) -> int:
    try:
        import ray
    except ImportError:
        raise UserError("the ray executor needs Ray: pip install -e \".[ray]\"") from None
    if not ray.is_initialized():
        ray.init(address=args.ray_address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    return max(1, int(ray.cluster_resources().get("CPU", 1) // max(args.threads, 1)))


def report_main(args) -> int:
    from ecgnas.search_report import write_search_report

    path = write_search_report(args.run)
    print(f"{path}", file=sys.stdout)
    return 0
