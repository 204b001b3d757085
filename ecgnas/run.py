"""Train one model into a run folder and evaluate it (the library behind ``ecgnas train``).

The run folder ends up holding::

    config.json         what was run (model, hparams, dataset, split, prep config, train config, ensemble;
                        with ``--dataset a+b`` also ``extra_training_data``, said again in every report)
    train_log.jsonl     one line per epoch of the final model(s) (train loss, hold-out macro-F1, lr)
    checkpoint.pt       model name + hparams + members' weights + offsets + prep config and its key
    cv_metrics.json, oof.npz, cv_ensemble.pt   with a DS1 record cross-validation (``cv``, ensembles)
    val_metrics.json    the DS1 hold-out metrics (early-stopped recipe only)
    metrics.json, per_record.csv, confusion.png, predictions.csv   the DS2 evaluation
    train_summary.json  training summary (time, throughput, params, DS1 / DS2 headlines); written last

A folder holding a run of a *different* configuration is refused (UserError, nothing touched).
The same configuration again: a finished run is reported and left as it is; an unfinished one
(no ``train_summary.json``) is trained again from scratch. While a run writes the folder it holds
its lock (:func:`nascore.lock.folder_lock`, files ``.nascore.lock`` / ``.nascore.pid``): a second
process on the same folder is refused with a UserError naming the first one's PID.
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path
from typing import Any, Mapping

from nascore.errors import UserError
from nascore.io import atomic_write_bytes, atomic_write_json, read_json
from nascore.lock import busy_error, folder_lock
from nascore.validate import MAX_SEED

from ecgnas.train import TrainConfig, TrainingDiverged

RUN_FILES = ("config.json", "train_log.jsonl", "checkpoint.pt", "val_metrics.json", "cv_metrics.json", "oof.npz",
             "cv_ensemble.pt", "metrics.json", "per_record.csv", "confusion.png", "predictions.csv",
             "train_summary.json")
DONE_FILE = "train_summary.json"


def run_identity(config: Mapping[str, Any]) -> dict:
    """The part of a config.json that defines the experiment (runtime and paths left out)."""
    ident = {k: config.get(k) for k in ("model", "hparams", "split", "prep", "train", "ensemble")}
    ident["dataset"] = config.get("dataset") or "mitdb"  # run folders from before databases: MIT-BIH
    return ident


def check_output(out: Path, config: Mapping[str, Any]) -> bool:
    """Refuse a folder of another run; True when the same run already finished there.

    The folder-reuse rule is :func:`nascore.run.check_config` (the one rule of both command
    lines) with :func:`run_identity` as the identity: a file where the folder should be, a
    non-empty folder that is not a run folder and one holding a run of a different configuration
    are refused with a one-line :class:`UserError`.
    """
    from nascore.run import check_config

    out = Path(out)
    check_config(out, dict(config), what="--output", identity=run_identity)
    return (out / DONE_FILE).is_file()


MEMBER_KINDS = ("folds", "seeds")
DECISIONS = ("cv", "none")


def check_ensemble(ensemble: int, members: str, decision: str, folds: int, cfg: TrainConfig,
                   cv: bool = False) -> None:
    """Refuse (UserError) ensemble / decision / fold settings :func:`train_run` cannot honour with
    the schedule ``cfg``; callers that train later (an ECG search) check them before writing."""
    if isinstance(ensemble, bool) or not isinstance(ensemble, int) or not 1 <= ensemble <= 20:
        raise UserError(f"--ensemble: need an integer 1..20, got {ensemble!r}")
    if members not in MEMBER_KINDS:
        raise UserError(f"--members: {members!r} is not one of {', '.join(MEMBER_KINDS)}")
    if decision not in DECISIONS:
        raise UserError(f"--decision: {decision!r} is not one of {', '.join(DECISIONS)}")
    if isinstance(folds, bool) or not isinstance(folds, int) or not 2 <= folds <= 22:
        raise UserError(f"--folds: need an integer 2..22 (DS1 has 22 records), got {folds!r}")
    if ensemble > 1 and cfg.seed + ensemble - 1 > MAX_SEED:  # members "seeds" train with seed .. seed+K-1
        raise UserError(f"--seed {cfg.seed} with --ensemble {ensemble}: member seeds would pass {MAX_SEED}; "
                        f"use a seed <= {MAX_SEED - ensemble + 1}")
    fixed = cfg.select == "last" and cfg.patience is None
    if not fixed and (decision == "cv" or ensemble > 1 or cv):
        raise UserError("decision offsets and ensembles need the fixed schedule (select='last', no --patience): "
                        "early stopping on the hold-out cannot be combined with record-fold cross-validation")


def _ds1_folds(beats, parts: Mapping[str, Any], k: int, spec, seed: int) -> list:
    """Record folds over DS1 (inter-patient); beat folds over train + val for the optimistic intra split.
    Another main database: folds over whole patients of its train + val part.

    Only the main database is folded: the rows of extra training databases (``--dataset a+b``,
    :func:`ecgnas.data.extra_rows`, appended to ``parts["train"]``) are in no fold -- they are
    added to every fold's training set by :func:`ecgnas.ensemble.cross_validate` instead."""
    import numpy as np

    from ecgnas.data import extra_rows, record_folds

    extra = extra_rows(beats) if spec.extra else np.zeros(0, np.int64)
    if spec.split == "inter" and spec.main.name == "mitdb":
        folds = record_folds(beats, k)  # DS1 record names: an extra record (``svdb:800``) is never one
    else:
        folds = _main_folds(beats, parts, k, spec, seed, extra)
    if len(extra) and any(np.isin(f, extra).any() for f in folds):  # record_folds' names: cannot happen
        raise UserError(f"--dataset {spec.database}: an extra training record landed in a cross-validation fold")
    return folds


def _main_folds(beats, parts: Mapping[str, Any], k: int, spec, seed: int, extra) -> list:
    """:func:`_ds1_folds` for another main database or the intra split (``extra`` rows left out)."""
    import numpy as np

    pool = np.concatenate([parts["train"], parts["val"]])
    if len(extra):
        pool = pool[~np.isin(pool, extra)]
    if spec.split == "inter":
        pats = np.array([spec.main.patient_of(r) for r in beats.record[pool]])
        uniq = sorted(set(pats.tolist()))
        if len(uniq) < k:
            raise UserError(f"--folds {k}: {spec.main.name} has {len(uniq)} training patients")
        order = [uniq[i] for i in np.random.default_rng(seed).permutation(len(uniq))]
        return [np.sort(pool[np.isin(pats, order[i::k])]) for i in range(k)]
    return [np.sort(f) for f in np.array_split(np.random.default_rng(seed).permutation(pool), k)]


def train_run(output: str | os.PathLike, model: str, *, hparams: Mapping[str, Any] | None = None,
              train: TrainConfig | None = None, spec=None, progress: bool = True, ensemble: int = 1,
              members: str = "folds", decision: str = "none", folds: int = 5, cv: bool = False,
              prep=None, split: str | None = None, dataset: str | None = None, data=None) -> dict:
    """Train ``model`` into the run folder ``output`` and evaluate it; returns train_summary.json's dict.

    The recipe (``train``, default :class:`TrainConfig`: a fixed schedule, no early stopping)
    trains on all of DS1. ``cv=True`` first runs ``folds``-fold grouped record cross-validation
    over DS1 (:func:`ecgnas.ensemble.cross_validate`); ``cv_metrics.json`` then holds the
    out-of-fold scores, the DS1-only estimate of how the recipe transfers to new patients.
    ``decision="cv"`` also fits per-class decision offsets on those out-of-fold probabilities
    (:func:`ecgnas.decision.fit_offsets`) and stores them with the model; the default ``"none"``
    keeps the plain argmax, because offsets fitted on some DS1 folds lowered the macro-F1 of the
    other folds (nested DS1 cross-validation, ``benchmarks/RESULTS.md``). ``ensemble=K`` averages
    K members' probabilities: ``members="folds"`` (the K fold models of a K-fold cross-validation,
    no extra training) or ``"seeds"`` (K models on all of DS1, seeds ``seed .. seed+K-1``). A
    single-model run that did cross-validation also reports its fold models as an ensemble
    (``cv_ensemble_test`` in the summary, weights in ``cv_ensemble.pt``) and, when no offsets are
    applied, what the out-of-fold offsets would have given (``test_offsets``), at no extra
    training.

    DS2 is read only to write the final evaluation. ``spec``: the :class:`ecgnas.data.DataSpec`
    (database(s), :class:`~ecgnas.data.PrepConfig`, ``"inter"`` (DS1 / DS2) or ``"intra"`` split,
    data folder; default ``DataSpec()``: MIT-BIH). ``"mitdb+svdb"`` adds every SVDB record to the
    training beats as extra training data, which config.json, the checkpoint, metrics.json and
    train_summary.json all say; a cross-validation then folds the main database's training
    records only (:func:`_ds1_folds`), each fold model trains on the other folds plus every extra
    beat, and the out-of-fold scores (``cv_metrics.json``, labelled too) are over the main
    database's beats alone, as the literature does it. The keywords ``prep``, ``split``,
    ``dataset`` and ``data`` are the spec's parts given one by one (scripts written before the
    spec; made into one by :meth:`ecgnas.data.DataSpec.of`, and refused beside ``spec``). A
    ``train`` config with ``select="best"`` keeps the early-stopped hold-out recipe (no CV, no ensemble).
    Refuses (UserError, nothing written) a folder holding a run of another configuration;
    returns the stored summary if this run already finished.

    >>> # s = train_run("runs/resnet-s0", "resnet", ensemble=5)
    >>> # s["test"]["macro_f1"], s["cv"]["macro_f1"]
    """
    from ecgnas.data import DataSpec
    from ecgnas.evaluate import build, load_data, prep_dict, prep_key

    spec = DataSpec.of(spec, prep=prep, split=split, dataset=dataset, data=data)
    prep = spec.prep
    out = Path(output)
    cfg = train or TrainConfig()
    hp = dict(hparams or {})
    check_ensemble(ensemble, members, decision, folds, cfg, cv)
    fold_members = ensemble > 1 and members == "folds"
    run_cv = bool(cv) or decision == "cv" or fold_members
    ens = {"k": ensemble, "members": members, "decision": decision,
           "folds": ensemble if fold_members else (folds if run_cv else None)}
    config = {"model": model, "hparams": hp, "dataset": spec.database, "split": spec.split, "prep": prep_dict(prep),
              "prep_key": prep_key(prep), "train": cfg.identity(), "ensemble": ens,
              "runtime": {k: v for k, v in cfg.to_dict().items() if k not in cfg.identity()},
              "data": None if spec.data is None else str(spec.data)}
    if spec.extra:
        config["extra_training_data"] = spec.extra_training_note()
    in_ch, window, n_rr = prep.input_shape()
    build(model, window, n_rr, 5, hp, in_channels=in_ch)  # bad name / hparams fail here, before anything is written
    try:
        finished = check_output(out, config)
    except UserError as refusal:  # seen without the lock: another process may be writing this folder now
        raise busy_error(out, "--output") or refusal from None
    if finished:
        summary = read_json(out / DONE_FILE)
        _say(progress, f"{out}: this run already finished (DS2 macro-F1 {summary['test']['macro_f1']:.2f}); kept as is")
        return summary
    busy = busy_error(out, "--output")  # refused now rather than after loading the data
    if busy is not None:
        raise busy
    beats, parts = load_data(spec, progress=progress)
    with folder_lock(out, what="--output"):  # one writer: a second process is refused, its PID named
        if check_output(out, config):  # another process finished this same run meanwhile
            return read_json(out / DONE_FILE)
        for name in RUN_FILES:  # an unfinished earlier attempt of this same run: start clean
            if (out / name).exists():
                (out / name).unlink()
        atomic_write_json(out / "config.json", config)
        try:
            return _train_and_evaluate(out, beats, parts, model=model, hp=hp, cfg=cfg, spec=spec,
                                       ensemble=ensemble, members=members, decision=decision, run_cv=run_cv,
                                       ens=ens, progress=progress)
        except TrainingDiverged as e:  # one line (exit 2); the folder is bound to this configuration now
            raise TrainingDiverged(f"{out}: {e} (with another --output: this folder keeps the "
                                   "diverged run's configuration)") from None


def _train_and_evaluate(out: Path, beats, parts, *, model: str, hp: dict, cfg: TrainConfig, spec,
                        ensemble: int, members: str, decision: str, run_cv: bool, ens: dict,
                        progress: bool) -> dict:
    """The training and evaluation of :func:`train_run`, in the locked run folder ``out`` whose
    ``config.json`` is written; returns the summary it writes last (``train_summary.json``)."""
    import numpy as np

    from ecgnas.data import extra_rows
    from ecgnas.decision import apply_offsets, fit_offsets
    from ecgnas.ensemble import EnsembleModel, cross_validate
    from ecgnas.evaluate import build, evaluate_indices, headline, save_checkpoint
    from ecgnas.metrics import metrics_json
    from ecgnas.models import count_parameters
    from ecgnas.train import fit, predict, seed_everything

    fixed = cfg.select == "last" and cfg.patience is None
    n_rr, window, in_ch = beats.n_rr, beats.window, beats.in_channels

    def new_model(seed: int):
        seed_everything(seed)
        return build(model, window, n_rr, 5, hp, in_channels=in_ch)

    split = spec.split
    note = spec.extra_training_note()
    mit = spec.main.name == "mitdb"
    val_name, ds2_name = ("DS1 hold-out", "DS2") if mit else (f"{spec.main.name} validation patients",
                                                               f"{spec.main.name} test patients")
    summary: dict = {"model": model, "hparams": hp, "window": window, "ensemble": ens}
    if not mit or note:
        summary["dataset"] = spec.database
    if note:
        summary["extra_training_data"] = note
        summary["extra_training_beats"] = beats.report.get("extra_training_data", {})
    offsets = None
    cv_res = None
    if not fixed:  # the early-stopped recipe: DS1 minus hold-out, best epoch on the hold-out
        net = new_model(cfg.seed)
        _say(progress, f"training {model} {hp or ''} on {len(parts['train'])} beats "
                       f"(hold-out {len(parts['val'])}, test {len(parts['test'])}) -> {out}")
        res = fit(net, beats, parts, cfg, progress=progress, log=out / "train_log.jsonl")
        final, fits = net, [res]
        va = parts["val"]
        val_metrics = metrics_json(beats.y[va], predict(net, beats, va, cfg.eval_batch_size), beats.record[va])
        atomic_write_json(out / "val_metrics.json", {"title": f"{model} {val_name}", **val_metrics})
        summary["val"] = headline(val_metrics)
    else:
        ds1 = np.sort(np.concatenate([parts["train"], parts["val"]]))
        if run_cv:
            fold_idx = _ds1_folds(beats, parts, ens["folds"], spec, cfg.seed)
            # extra training data: in every fold's training set, in no fold (never scored)
            extra_idx = extra_rows(beats) if note else None
            _say(progress, f"{model}: {len(fold_idx)}-fold record cross-validation over DS1 ("
                           + (f"{len(ds1)} beats)" if not note else
                              f"{sum(len(f) for f in fold_idx)} beats; {len(extra_idx)} beats of {note} in "
                              "every fold's training set)"))
            cv_res = cross_validate(lambda k: build(model, window, n_rr, 5, hp, in_channels=in_ch), beats, fold_idx,
                                cfg, progress=progress,
                                on_fold=lambda k, m, s: _say(progress, f"  fold {k + 1}/{len(fold_idx)} trained "
                                                                       f"({s['train_seconds']:.0f} s)"),
                                extra_train=extra_idx)
            y_oof = beats.y[cv_res["index"]]
            keep = y_oof != 4  # Q: not trained, outside the headline metric
            if decision == "cv":
                offsets = fit_offsets(y_oof[keep], cv_res["proba"][keep])
            rec = beats.record[cv_res["index"]]
            cv_raw = metrics_json(y_oof, cv_res["proba"].argmax(1), rec)
            cv_dec = cv_raw if offsets is None else metrics_json(y_oof, apply_offsets(cv_res["proba"], offsets).argmax(1),
                                                                 rec)
            atomic_write_json(out / "cv_metrics.json", {
                "title": f"{model} DS1 out-of-fold ({len(fold_idx)} record folds)" + (f"; {note}" if note else ""),
                **cv_dec, "raw_argmax": headline(cv_raw), "offsets": None if offsets is None else offsets.tolist(),
                "note": "offsets were fitted on these same out-of-fold predictions (in-sample for the offsets)",
                **({"dataset": spec.database, "extra_training_data": note,
                    "extra_training_beats": int(len(extra_idx)),
                    "scored": f"{spec.main.name} fold beats only (the extra beats are in every fold's training "
                              "set and never scored)"} if note else {})})
            buf = io.BytesIO()  # written atomically, as every file of the run folder
            np.savez_compressed(buf, index=cv_res["index"], proba=cv_res["proba"], y=y_oof)
            atomic_write_bytes(out / "oof.npz", buf.getvalue())
            summary["cv"] = headline(cv_dec)
            summary["cv_raw"] = headline(cv_raw)
            summary["offsets"] = None if offsets is None else offsets.tolist()
        if ensemble > 1 and members == "folds":
            nets, fits = cv_res["members"], []
        else:
            nets, fits = [], []
            k = ensemble if ensemble > 1 else 1
            for i in range(k):
                net = new_model(cfg.seed + i)
                c = TrainConfig(**{**cfg.to_dict(), "seed": cfg.seed + i})
                _say(progress, f"training {model} {hp or ''} on all {len(ds1)} DS1 beats (member {i + 1}/{k}, "
                               f"fixed schedule of {cfg.epochs} epochs) -> {out}")
                res = fit(net, beats, {"train": ds1, "val": np.zeros(0, np.int64)}, c, progress=progress,
                          log=out / "train_log.jsonl")
                nets.append(net)
                fits.append(res)
        final = nets[0] if (len(nets) == 1 and offsets is None) else EnsembleModel(nets, offsets).eval()
    seconds = sum(r.train_seconds for r in fits) + (sum(s["train_seconds"] for s in cv_res["summaries"]) if cv_res else 0.0)
    save_checkpoint(out / "checkpoint.pt", final, name=model, hparams=hp, window=window, n_rr=n_rr, n_classes=5,
                    spec=spec, in_channels=in_ch,
                    extra={"train": cfg.to_dict(), "ensemble": ens, **({"extra_training_data": note} if note else {}),
                           **({"best_epoch": fits[0].best_epoch, "val_macro_f1": fits[0].best_val_macro_f1}
                              if not fixed else {})})
    title = (f"{model}{f' x{ensemble}' if ensemble > 1 else ''} {split}-patient, {ds2_name} ({out.name})"
             + (f"; {note}" if note else ""))
    test_metrics = evaluate_indices(out, final, beats, parts["test"], title, cfg.eval_batch_size)
    if note:
        from ecgnas.evaluate import _label

        test_metrics = _label(out, test_metrics, {"dataset": spec.database, "extra_training_data": note})
    te = parts["test"]
    plain = nets[0] if (fixed and len(nets) == 1) else (EnsembleModel(nets) if fixed else None)
    if offsets is not None:  # the same model without the offsets, for the ablation of the decision rule
        summary["test_raw"] = headline(metrics_json(beats.y[te], predict(plain, beats, te, cfg.eval_batch_size),
                                                    beats.record[te]))
    elif cv_res is not None:  # what offsets fitted on the DS1 out-of-fold predictions would have given (not applied)
        y_oof = beats.y[cv_res["index"]]
        info = fit_offsets(y_oof[y_oof != 4], cv_res["proba"][y_oof != 4])
        summary["offsets_not_applied"] = info.tolist()
        summary["test_offsets"] = headline(metrics_json(
            beats.y[te], predict(EnsembleModel([plain], info).eval(), beats, te, cfg.eval_batch_size),
            beats.record[te]))
    if cv_res is not None and not (ensemble > 1 and members == "folds"):
        fold_ens = EnsembleModel(cv_res["members"], offsets).eval()
        save_checkpoint(out / "cv_ensemble.pt", fold_ens, name=model, hparams=hp, window=window, n_rr=n_rr,
                        n_classes=5, spec=spec, in_channels=in_ch,
                        extra={"train": cfg.to_dict(), "ensemble": {**ens, "k": len(cv_res["members"])},
                               **({"extra_training_data": note} if note else {})})
        summary["cv_ensemble_test"] = headline(metrics_json(
            beats.y[te], predict(fold_ens, beats, te, cfg.eval_batch_size), beats.record[te]))
    first = fits[0] if fits else None
    summary.update({"params": count_parameters(nets[0] if fixed else final),
                    "members": len(nets) if fixed else 1,
                    "train_seconds": seconds,
                    "throughput": (first.throughput if first else cv_res["summaries"][0]["throughput"]),
                    "epochs_run": (first.epochs_run if first else cv_res["summaries"][0]["epochs_run"]),
                    "device": first.device if first else cv_res["summaries"][0]["device"],
                    "n_train": int(first.n_train if first else len(ds1)),
                    "test": headline(test_metrics)})
    if first is not None and not fixed:
        summary.update({"best_epoch": first.best_epoch, "best_val_macro_f1": first.best_val_macro_f1,
                        "stopped_early": first.stopped_early})
    atomic_write_json(out / DONE_FILE, summary)
    cv_txt = f"DS1 out-of-fold macro-F1 {summary['cv']['macro_f1']:.2f}; " if "cv" in summary else ""
    _say(progress, f"{out}: {cv_txt}{ds2_name} macro-F1 {test_metrics['macro_f1']:.2f}, accuracy "
                   f"{test_metrics['accuracy']:.2f} ({seconds:.0f} s of training)")
    return summary


def _say(progress: bool, text: str) -> None:
    if progress:
        print(text, file=sys.stderr, flush=True)
