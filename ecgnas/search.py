"""End-to-end architecture search for arrhythmia classifiers: search on DS1, retrain, report DS2.

:func:`ecg_search` is the Python API of ``ecgnas search``. For one method and seed it

1. **searches** on DS1 only: the sample-based methods (``dcl-enas``, ``arch2vec-bo``,
   ``arch2vec-rl``, ``evolution``, ``random``) run a :mod:`nascore` ask/tell strategy on a graph
   space (default ``ecg-cell``, :mod:`ecgnas.spaces.conv1d`) with the :class:`~ecgnas.evaluator.ECGEvaluator`
   (short training on DS1 minus the hold-out records, score = hold-out macro-F1) through the
   run loop of :mod:`nascore.run` (append-only history, resume by replay) and an executor
   (``local``: in this process; ``ray``: parallel Ray tasks); ``eg-nas`` trains a 1D DARTS
   supernet whose architecture parameters move by the EG-NAS evolution strategy
   (:mod:`ecgnas.supernet`) and derives one genotype;
2. **retrains** the best architecture with the full schedule (``final``, the same recipe the
   hand-designed models get) into ``final/`` -- an ``ecgnas train`` run folder with
   ``checkpoint.pt``, ``metrics.json``, ``per_record.csv``, ``confusion.png``, ``predictions.csv``;
3. runs (or reuses) the **baseline**: random search over the hand-designed family
   (:mod:`ecgnas.spaces.handdesigned`) with the same budget, fidelity, final schedule and seed,
   through this same function, into ``baseline/`` (or the folder given as ``baseline``, which
   several methods can share);
4. writes ``result.json`` -- ``method``, ``best_arch``, ``search_cost_seconds``, ``params``,
   ``ds2`` and ``baseline_ds2`` (both in the shape of ``metrics.json``) and more -- the Pareto
   table/figure of hold-out macro-F1 against size (``pareto.csv``, ``pareto.png``) and the report
   (:func:`ecgnas.search_report.write_search_report`: ``report.md`` with the figures).

DS2 is used in step 2 and 3 only, for the final reports; nothing selected anything on it.

Hardware-aware search: ``constraints`` = any of ``max_params``, ``max_flops``,
``max_latency_ms`` restricts the space (:class:`~ecgnas.spaces.constrained.ConstrainedSpace`:
parameters and FLOPs are exact, latency is the additive lookup-table estimate of this machine);
every evaluated candidate records its measured parameters, FLOPs and latency. With
``latency_source="onnxruntime"`` latency is instead measured per candidate with onnxruntime
(batch 1, 1 thread, :func:`ecgnas.export.latency.model_latency_ms`): ``max_latency_ms`` then
rejects a candidate whose measurement exceeds it (a failed evaluation, untrained) rather than
restricting the space, and every recorded ``latency_ms`` (candidates, final model) is that
measurement.

Layout of ``output``::

    config.json      what defines the run (refused if it differs; the run resumes otherwise)
    search/          the search run folder (config.json, history.jsonl, result.json; eg-nas: log.jsonl, checkpoint.pt)
    evals/           the evaluation cache (one JSON per evaluated candidate; ``eval_cache`` moves it)
    final/           the best architecture retrained with the full schedule, evaluated on DS2
    baseline/        the hand-designed random-search baseline (unless ``baseline`` points elsewhere or is "none")
    pareto.csv, pareto.png, search.png, report.md, result.json

Kill it at any point and run the same command again: finished evaluations are replayed from the
history (none is repeated) and the result equals an uninterrupted run's. One process at a time:
``output`` (and ``search/``, ``final/``, ``baseline/``) are locked while written
(:mod:`nascore.lock`); a second ``ecgnas search`` on the same folder is refused at once with the
first one's PID (exit status 2), before anything is written.

>>> # res = ecg_search("runs/evo-s0", method="evolution", budget=24, seed=0)
>>> # res["ds2"]["macro_f1"], res["baseline_ds2"]["macro_f1"]
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
from typing import Any, Mapping

from nascore.errors import UserError
from nascore.io import atomic_write_json, read_json

from ecgnas.train import TrainConfig

from ecgnas.methods import (ARCH2VEC_PRETRAIN_ARCHS, METHODS, SAMPLE_SPACES, arch2vec_model,  # noqa: F401
                            get_method)

CONSTRAINTS = ("max_params", "max_flops", "max_latency_ms")
EXECUTORS = ("local", "ray")
RESULT_FILE = "result.json"


def final_schedule(**overrides) -> TrainConfig:
    """The full training schedule of the final model: the :class:`TrainConfig` defaults on one
    CPU thread (the recipe the hand-designed baselines train with), with ``overrides``.

    >>> final_schedule().epochs == TrainConfig().epochs
    True
    """
    return dataclasses.replace(TrainConfig(num_threads=1), **overrides)


def get_search_space(name: str, constraints: Mapping[str, float] | None = None, prep=None):
    """A sample-based search space by name, restricted by ``constraints`` if any."""
    import ecgnas.spaces  # noqa: F401  (registers ecg-cell)  # pyflakes: ignore
    from nascore.spaces import get_space

    if name not in SAMPLE_SPACES:
        raise UserError(f"--space: {name!r} is not a space the sample-based methods search "
                        f"(choose from: {', '.join(SAMPLE_SPACES)})")
    if name == "resnet-family":
        from ecgnas.spaces.handdesigned import HandDesignedSpace

        space = HandDesignedSpace()
    else:
        space = get_space(name)
    cons = {k: v for k, v in dict(constraints or {}).items() if v is not None}
    if not cons:
        return space
    bad = sorted(set(cons) - set(CONSTRAINTS))
    if bad:
        raise UserError(f"unknown constraint {bad[0]!r} (choose from: {', '.join(CONSTRAINTS)})")
    if not hasattr(space, "cost_arrays"):
        raise UserError(f"--space {name}: has no cost model, so it cannot be constrained by {', '.join(cons)}")
    from ecgnas.data import PrepConfig
    from ecgnas.spaces.constrained import ConstrainedSpace

    in_ch, window, n_rr = (prep or PrepConfig()).input_shape()
    return ConstrainedSpace(space, **cons, in_channels=in_ch, window=window, n_rr=n_rr)


def _executor(name: str, options: Mapping[str, Any] | None):
    from nascore.executors import get_executor

    if name not in EXECUTORS:
        raise UserError(f"--executor: unknown executor {name!r} (choose from: {', '.join(EXECUTORS)})")
    return get_executor("serial" if name == "local" else "ray", **dict(options or {}))


def ecg_search(output, *, method: str, space: str | None = None, budget: int = 24, seed: int = 0,
               fidelity: TrainConfig | None = None, final: TrainConfig | None = None, spec=None,
               constraints: Mapping[str, float] | None = None, executor: str = "local",
               executor_options: Mapping[str, Any] | None = None, batch_size: int = 1,
               strategy_params: Mapping[str, Any] | None = None, supernet: Mapping[str, Any] | None = None,
               baseline: str | Path | None = "auto", eval_cache=None, latency: bool = True,
               selection: str = "holdout", ensemble: int = 1, progress: bool = True, wait: bool = False,
               multi_fidelity=None, latency_source: str = "table", repeats: int = 1, prep=None,
               split: str | None = None, dataset: str | None = None, data=None) -> dict:
    """Search, retrain and report (see the module docstring); returns ``result.json``'s dict.

    Every argument (method, space, budget against the strategy's initial sample, strategy and
    supernet parameters, executor, ensemble) is checked before anything is written: a refused
    call leaves no folder, or a pre-existing one untouched. ``output`` is then held for the whole
    call (:func:`nascore.run.claim_folder`): a second process on it is refused with a UserError
    naming the first one's PID -- or, with ``wait=True``, waits for it to finish (the baseline
    folder is claimed so, since several searches share it and reuse it once finished).

    ``budget``: candidate evaluations of the sample-based methods (eg-nas: ignored, its cost is
    set by ``supernet["epochs"]``); ``fidelity``: the short training of a candidate (default
    :func:`ecgnas.evaluator.default_fidelity`); ``final``: the full schedule of the final model
    (default :func:`final_schedule`); ``baseline``: ``"auto"`` (run it into ``output/baseline``),
    a folder (run or reuse it there; share one per seed between methods) or ``"none"``;
    ``spec``: the :class:`ecgnas.data.DataSpec` searched, retrained and tested on (database(s),
    :class:`~ecgnas.data.PrepConfig`, split, data folder; default ``DataSpec()``: MIT-BIH;
    ``"mitdb+svdb"`` adds SVDB as extra training data, recorded in config.json and result.json);
    ``prep``, ``split``, ``dataset`` and ``data``: its parts given one by one (scripts written
    before the spec; made into one by :meth:`ecgnas.data.DataSpec.of`, refused beside ``spec``).
    ``selection``: how candidates are scored, ``"holdout"`` (the DS1 hold-out records) or ``"cv"``
    (grouped 4-fold cross-validation over DS1, four trainings per candidate; sample-based methods
    and the baseline, see :class:`ecgnas.evaluator.ECGEvaluator`); ``repeats``: trainings per
    candidate with different seeds, scored by their mean (a steadier objective at ``repeats``
    times the cost; the baseline gets the same); ``ensemble``: members of the
    final model (``ecgnas train --ensemble``: K fold models of a DS1 record cross-validation; 1 = a
    single model on all of DS1; extra training data are in every member's training set, in no
    fold); ``multi_fidelity``: ``None`` (each candidate trains once at the fidelity), or a
    :class:`nascore.multifidelity.MultiFidelity` rung schedule (epochs per rung, η; ``True``:
    the ladder of ratio 3 ending at the fidelity's epochs), the strategy then runs
    inside asynchronous successive halving (ask/tell methods; the baseline gets the same
    schedule): candidates train for each rung's epochs (the fidelity's beats per epoch), the top
    1/η of a rung go up, ``budget`` counts ``budget x top-rung`` candidate-epochs, the top rung's
    epochs become the fidelity's and ``result.json`` reports ``multi_fidelity`` (rungs, epochs
    spent, candidates, evaluations per rung, seconds); ``latency_source``: ``"table"`` (the
    lookup-table estimate restricts the space, eager torch latency is recorded) or
    ``"onnxruntime"`` (measured per candidate, see the module docstring; needs the ``deploy``
    extra).
    """
    from nascore.validate import MAX_SEED, integer, number

    from ecgnas.data import DataSpec
    from ecgnas.evaluator import default_fidelity

    spec = DataSpec.of(spec, prep=prep, split=split, dataset=dataset, data=data)
    prep, split = spec.prep, spec.split

    entry = get_method(method)
    space = space or entry.default_space
    entry.check_space(space)
    supernet_kind = entry.kind == "supernet"
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise UserError(f"--budget: must be a whole number of evaluations >= 1, got {budget!r}")
    seed = integer(0, MAX_SEED).check("--seed", seed)
    repeats = integer(1, 1000).check("--search-repeats", repeats)
    if repeats != 1 and supernet_kind:
        raise UserError(f"--search-repeats: {method} scores architectures inside one supernet; it applies to the "
                        "sampled candidates of the ask/tell methods")
    strategy_params = entry.check_params(strategy_params)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise UserError(f"--batch-size: must be an integer >= 1, got {batch_size!r}")
    from ecgnas.evaluator import LATENCY_SOURCES, SELECTIONS, require_onnxruntime

    if latency_source not in LATENCY_SOURCES:
        raise UserError(f"--latency-source: {latency_source!r} is not one of {', '.join(LATENCY_SOURCES)}")
    if latency_source == "onnxruntime":
        require_onnxruntime()

    if selection not in SELECTIONS:
        raise UserError(f"--selection: {selection!r} is not one of {', '.join(SELECTIONS)}")
    if selection != "holdout" and supernet_kind:
        raise UserError(f"--selection cv scores sampled candidates; {method} scores architectures inside its supernet "
                        "on the hold-out, so it takes --selection holdout only")
    fidelity = fidelity or default_fidelity()
    schedule = _schedule(multi_fidelity, fidelity, method, supernet_kind)
    if schedule is not None:  # the top rung is the search fidelity
        fidelity = dataclasses.replace(fidelity, epochs=schedule.top)
    final = dataclasses.replace(final or final_schedule(), seed=int(seed))  # the final model trains with the search seed
    cons = {k: number(0, lo_open=True).check(f"--{k.replace('_', '-')}", v)
            for k, v in dict(constraints or {}).items() if v is not None}
    supernet = dict(supernet or {})
    if "epochs" in supernet and supernet.get("warmup") is None:  # keep the paper's 15-of-50 warm-up share
        supernet["warmup"] = int(round(0.3 * int(supernet["epochs"])))
    from ecgnas.run import check_ensemble

    check_ensemble(ensemble, "folds", "none", 5, final)  # what retrain_final will ask of train_run
    out = Path(output)
    base_dir = None
    if baseline not in (None, "none"):
        base_dir = out / "baseline" if baseline == "auto" else Path(baseline)
    config = {"method": method, "space": space, "budget": budget, "seed": int(seed), "split": split,
              "fidelity": fidelity.identity(), "final": final.identity(), "prep": prep.to_dict(),
              "constraints": cons, "strategy_params": strategy_params, "supernet": supernet,
              "baseline": None if base_dir is None else ("auto" if baseline == "auto" else str(base_dir)),
              "latency": bool(latency)}
    if selection != "holdout":  # absent for the hold-out: earlier run folders keep resuming
        config["selection"] = selection
    if repeats != 1:  # absent for one training per candidate: earlier run folders keep resuming
        config["search_repeats"] = int(repeats)
    if ensemble != 1:
        config["final_ensemble"] = int(ensemble)
    if schedule is not None:  # absent without it: earlier run folders keep resuming
        config["multi_fidelity"] = schedule.to_dict()
    if latency_source != "table":  # absent for the table: earlier run folders keep resuming
        config["latency_source"] = latency_source
    if spec.database != "mitdb":  # absent for MIT-BIH: earlier run folders keep resuming
        config["dataset"] = spec.database
        if spec.extra:
            config["extra_training_data"] = spec.extra_training_note()
    measured_limit = cons.get("max_latency_ms") if latency_source == "onnxruntime" else None
    space_cons = {k: v for k, v in cons.items() if not (k == "max_latency_ms" and measured_limit is not None)}
    space_obj = None if supernet_kind else get_search_space(space, space_cons, prep)
    # everything that can refuse this command is checked before the first byte is written, so a
    # corrected command is never refused because a refused one left a config.json behind
    if executor not in EXECUTORS:
        raise UserError(f"--executor: unknown executor {executor!r} (choose from: {', '.join(EXECUTORS)})")
    strategy = evaluator = None
    if supernet_kind:
        _check_supernet(entry, supernet, seed)
    else:
        strategy = entry.build_strategy(space_obj, seed=int(seed), params=strategy_params, budget=budget,
                                        progress=progress)
        need = getattr(strategy, "min_queries", 0)
        if schedule is not None:  # the initial sample at the bottom rung, in full-fidelity evaluations
            need = -(-need * schedule.rungs[0] // schedule.top)
        if budget < need:
            raise UserError(f"--budget: {budget} evaluations is smaller than the {method} strategy's initial "
                            f"sample ({need}); raise --budget or lower it with --param")
        from ecgnas.evaluator import ECGEvaluator

        evaluator = ECGEvaluator(space_obj, fidelity, spec=spec, seed=int(seed),
                                 cache_dir=Path(eval_cache) if eval_cache is not None else out / "evals",
                                 latency=latency, selection=selection, latency_source=latency_source,
                                 max_latency_ms=measured_limit, repeats=repeats)
    from nascore.run import claim_folder

    with claim_folder(out, config, wait=wait, on_wait=lambda m: _say(True, f"{m}; waiting for it")):
        t0 = time.perf_counter()
        if supernet_kind:
            found = _supernet_search(entry, out, config, spec, seed, progress)
        else:
            found = _sample_search(out, config, space_obj, strategy, evaluator, executor, executor_options,
                                   batch_size, progress, selection, schedule)
        _say(progress, f"{out}: search done, best hold-out macro-F1 {found['score']:.2f} ({found['arch']}); "
                       f"retraining it with the full schedule ({final.epochs} epochs)")
        final_summary = retrain_final(out / "final", found["candidate"], seed=seed, ensemble=ensemble, final=final,
                                      spec=spec, progress=progress)
        from ecgnas.evaluate import load_checkpoint

        ds2 = read_json(out / "final" / "metrics.json")
        base_res = None
        if base_dir is not None:
            _say(progress, f"{out}: baseline (random search over the hand-designed family) in {base_dir}")
            base_res = ecg_search(base_dir, method="random", space="resnet-family", budget=budget, seed=seed,
                                  fidelity=fidelity, final=final, spec=spec, executor=executor,
                                  executor_options=executor_options, batch_size=batch_size, baseline="none",
                                  eval_cache=eval_cache, latency=latency, selection=selection, ensemble=ensemble,
                                  progress=progress, wait=True, multi_fidelity=schedule,
                                  latency_source=latency_source, repeats=repeats)
        ckpt = load_checkpoint(out / "final" / "checkpoint.pt")
        hw = final_hardware(ckpt, latency, latency_source)
        result = {"method": method, "space": space, "seed": int(seed), "budget": budget, "split": split,
                  **({"dataset": spec.database} if spec.database != "mitdb" else {}),
                  **({"extra_training_data": spec.extra_training_note()} if spec.extra else {}),
                  "best_arch": found["arch"], "best_candidate": found["candidate"],
                  "search_val_macro_f1": found["score"], "final_val_macro_f1": ckpt.get("val_macro_f1"),
                  "final_cv_macro_f1": (final_summary.get("cv") or {}).get("macro_f1"),
                  "params": final_summary["params"], "flops": hw["flops"], "latency_ms": hw["latency_ms"],
                  "search_cost_seconds": round(found["cost_seconds"], 3), "evaluations": found.get("evaluations"),
                  "final_train_seconds": round(final_summary["train_seconds"], 3),
                  "constraints": cons, "ds2": ds2,
                  "baseline_ds2": None if base_res is None else base_res["ds2"],
                  "baseline": None if base_res is None else {k: base_res[k] for k in (
                      "best_arch", "params", "search_val_macro_f1", "final_val_macro_f1", "final_cv_macro_f1",
                      "search_cost_seconds")}
                  | {"folder": str(base_dir)},
                  "wall_seconds_this_call": round(time.perf_counter() - t0, 3), "finished": True, "config": config}
        if schedule is not None:
            result["multi_fidelity"] = found["multi_fidelity"]
        if not supernet_kind:  # an ask/tell search has a candidate history to draw
            from ecgnas.search_report import read_history, write_pareto

            write_pareto(out, read_history(out / "search"), cons,
                         baseline_history=None if base_dir is None else read_history(base_dir / "search"))
        atomic_write_json(out / RESULT_FILE, result)
        from ecgnas.search_report import write_search_report

        write_search_report(out)
        _say(progress, f"{out}: DS2 macro-F1 {ds2['macro_f1']:.2f} (accuracy {ds2['accuracy']:.2f})"
                       + ("" if base_res is None else f"; baseline {base_res['ds2']['macro_f1']:.2f}")
                       + f" -> {out / RESULT_FILE}")
        return result


def final_hardware(ckpt: Mapping[str, Any], latency: bool = True, latency_source: str = "table") -> dict:
    """FLOPs per beat and measured CPU latency (ms, one thread) of a checkpoint's model: eager
    torch (``latency_source="table"``) or onnxruntime at batch 1 (``"onnxruntime"``)."""
    import torch

    from ecgnas.evaluate import model_from_checkpoint
    from ecgnas.hardware import count_flops, measure_latency_ms

    net = model_from_checkpoint(ckpt)
    shape = (int(ckpt.get("in_channels", 1)), int(ckpt["window"]), int(ckpt["n_rr"]))
    flops = count_flops(net, torch.zeros(1, shape[0], shape[1]), torch.zeros(1, shape[2]))
    if not latency:
        ms = None
    elif latency_source == "onnxruntime":
        from ecgnas.evaluator import onnxruntime_latency_ms

        ms = onnxruntime_latency_ms(net, *shape)
    else:
        ms = round(measure_latency_ms(net, *shape, threads=1, repeats=30, warmup=5), 4)
    return {"flops": flops, "latency_ms": ms}


def _check_supernet(entry, supernet: Mapping[str, Any], seed) -> None:
    """Refuse supernet settings :func:`ecgnas.supernet.egnas_ecg_search` would refuse, before writing."""
    from ecgnas.supernet import ecg_search_config

    try:
        ecg_search_config(method=entry.supernet, seed=int(seed), **dict(supernet))
    except TypeError as e:  # an unknown setting
        raise UserError(f"--supernet settings: {e}") from None


def _schedule(multi_fidelity, fidelity, method: str, supernet_kind: bool):
    """The rung schedule of ``multi_fidelity`` (None, True, a MultiFidelity or ``{"rungs", "eta"}``)."""
    if multi_fidelity is None or multi_fidelity is False:
        return None
    from nascore.multifidelity import MultiFidelity

    if supernet_kind:
        raise UserError(f"--multi-fidelity: {method} trains one supernet; multi-fidelity applies to the ask/tell "
                        "methods")
    if multi_fidelity is True:
        return MultiFidelity.ladder(fidelity.epochs, 3)
    if isinstance(multi_fidelity, MultiFidelity):
        return multi_fidelity
    if isinstance(multi_fidelity, Mapping):
        mf = dict(multi_fidelity)
        unknown = sorted(set(mf) - {"rungs", "eta"})
        if unknown:
            raise UserError(f"multi_fidelity: unknown setting {unknown[0]!r} (rungs, eta)")
        return MultiFidelity.parse(mf.get("rungs"), mf.get("eta", 3), top=fidelity.epochs)
    raise UserError(f"multi_fidelity: expected a MultiFidelity, a mapping or True, got {type(multi_fidelity).__name__}")


def _sample_search(out: Path, config: dict, space, strategy, evaluator, executor, executor_options, batch_size,
                   progress, selection="holdout", schedule=None) -> dict:
    from nascore.evaluation import is_score
    from nascore.run import Budget, run_search

    from ecgnas.evaluator import candidate_of

    ex = _executor(executor, executor_options)
    run_config = {k: config[k] for k in ("method", "space", "budget", "seed", "split", "fidelity", "prep",
                                          "constraints", "strategy_params", "latency")}
    if "dataset" in config:
        run_config["dataset"] = config["dataset"]
    if selection != "holdout":
        run_config["selection"] = selection
    if "search_repeats" in config:
        run_config["search_repeats"] = config["search_repeats"]
    if "latency_source" in config:
        run_config["latency_source"] = config["latency_source"]
    if schedule is not None:
        run_config["multi_fidelity"] = schedule.to_dict()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        total, unit = (config["budget"], "eval") if schedule is None else (config["budget"] * schedule.top, "epoch")
        bar = tqdm(total=total, desc=f"{config['method']} on {config['space']}", unit=unit, dynamic_ncols=True)
    best = [float("-inf")]

    def on_result(rec):
        score = rec["score"]  # None: a failed evaluation (nascore.run records it so)
        if is_score(score):
            best[0] = max(best[0], score)
        if bar is not None:
            bar.update(rec.get("epochs", 1))
            bar.set_postfix(last="failed" if not is_score(score) else f"{score:.1f}", best=f"{best[0]:.1f}")

    try:
        res = run_search(space=space, strategy=strategy, evaluator=evaluator, budget=Budget(queries=config["budget"]),
                         out_dir=out / "search", config=run_config, executor=ex, batch_size=batch_size,
                         on_result=on_result, multi_fidelity=schedule)
    finally:
        if bar is not None:
            bar.close()
        ex.close()
    b = res["best"]
    if b is None:
        raise UserError(f"{out / 'search'}: every one of the {res['queries']} candidate evaluations failed "
                        "(no finite hold-out score); nothing to retrain -- check the data and the search fidelity")
    arch = space.from_string(b["arch"])
    return {"arch": b["arch"], "score": float(b["score"]), "candidate": candidate_of(space, arch),
            "flops": b.get("flops"), "latency_ms": b.get("latency_ms"), "evaluations": res["queries"],
            "cost_seconds": float(res["simulated_seconds"]), "multi_fidelity": res.get("multi_fidelity")}


def _supernet_search(entry, out: Path, config: dict, spec, seed, progress) -> dict:
    from ecgnas.evaluate import load_data
    from ecgnas.supernet import egnas_ecg_search

    beats, parts = load_data(spec, progress=progress)
    opts = dict(config["supernet"])
    res = egnas_ecg_search(beats, {"train": parts["train"], "val": parts["val"]}, out / "search", method=entry.supernet,
                           seed=int(seed), progress=progress, **opts)
    secs = res.get("seconds", {})
    cost = float(sum(v for v in secs.values() if isinstance(v, (int, float)))) if isinstance(secs, dict) else float(secs)
    return {"arch": res["genotype"], "score": float(res["valid_macro_f1_supernet"]),
            "candidate": _genotype_candidate(res["genotype"]), "evaluations": None, "cost_seconds": cost}


def _genotype_candidate(genotype: str) -> dict:
    return {"model": "darts1d", "hparams": {"genotype": genotype}, "train": {}, "prep": {}}


def chosen_candidate(method: str, arch: str, space: str | None = None) -> dict:
    """The candidate (``{"model", "hparams", "train", "prep"}``) of an architecture a search of
    ``method`` chose, from its canonical string (``result.json``'s ``best_arch``): a supernet
    method's genotype, or an ask/tell method's architecture of ``space`` (default: the method's).

    >>> chosen_candidate("random", "w8d1:|conv_3~0|+|none~0|none~1|+|none~0|none~1|none~2|")["model"]
    'ecg-cell'
    """
    from ecgnas.evaluator import candidate_of

    entry = get_method(method)
    if entry.kind == "supernet":
        return _genotype_candidate(arch)
    sp = get_search_space(space or entry.default_space)
    return candidate_of(sp, sp.from_string(arch))


def retrain_final(folder, candidate: Mapping[str, Any], *, seed: int, ensemble: int = 1,
                  final: TrainConfig | None = None, spec=None, data=None, progress: bool = False) -> dict:
    """The final model of a search, outside a search: ``candidate`` (``{"model", "hparams",
    "train", "prep"}``, as :func:`ecgnas.evaluator.candidate_of` gives it) retrained into the run
    folder ``folder`` with the full schedule ``final`` (default :func:`final_schedule`) seeded with
    the search seed ``seed`` -- the call :func:`ecg_search` makes for its ``final/`` folder, so
    a benchmark can retrain a chosen architecture as a ``K``-fold ensemble afterwards. Returns
    train_summary.json's dict (``["cv"]["macro_f1"]``: the fold models' DS1 out-of-fold score
    when ``ensemble`` > 1); resumes like :func:`ecgnas.run.train_run`."""
    from ecgnas.data import DataSpec
    from ecgnas.evaluate import make_prep
    from ecgnas.run import check_ensemble, train_run

    final = dataclasses.replace(final or final_schedule(), seed=int(seed))
    check_ensemble(ensemble, "folds", "none", 5, final)
    spec = DataSpec.of(spec, data=data)
    if candidate.get("prep"):  # the candidate's own window
        spec = spec.with_prep(make_prep(spec.prep.to_dict(), **candidate["prep"]))
    cfg = dataclasses.replace(final, **dict(candidate.get("train", {})))
    return train_run(Path(folder), candidate["model"], hparams=candidate["hparams"], train=cfg, spec=spec,
                     progress=progress, ensemble=ensemble)


def _say(progress: bool, text: str) -> None:
    if progress:
        print(text, file=sys.stderr, flush=True)
