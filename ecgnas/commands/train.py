"""``ecgnas train``: train one model on DS1, early-stop on the DS1 hold-out, evaluate on DS2.

The run folder (``--output DIR``) ends up holding::

    config.json         what was run (model, hparams, split, prep config, train config, runtime)
    train_log.jsonl     one line per epoch (train loss, hold-out macro-F1, seconds, lr)
    checkpoint.pt       model name + hparams + weights + prep config and its cache key
    val_metrics.json    the DS1 hold-out metrics of the kept (best) weights
    metrics.json, per_record.csv, confusion.png, predictions.csv   the DS2 evaluation
    train_summary.json  training summary (best epoch, time, throughput, params); written last

A folder holding a run of a *different* configuration is refused (exit 2, nothing touched). The
same configuration again: a finished run is reported and left as it is; an unfinished one (no
``train_summary.json``) is trained again from scratch.

Example::

    ecgnas train --model resnet --epochs 20 --seed 0 --hparam depth=6 --output runs/resnet-s0
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Mapping

from nascore.errors import UserError
from nascore.io import atomic_write_json, read_json

from ecgnas.augment import AUGMENTATIONS
from ecgnas.train import CLASS_WEIGHT_MODES, DEVICES, LOSSES, SAMPLERS, SCHEDULES, TrainConfig

RUN_FILES = ("config.json", "train_log.jsonl", "checkpoint.pt", "val_metrics.json", "cv_metrics.json", "oof.npz",
             "cv_ensemble.pt", "metrics.json", "per_record.csv", "confusion.png", "predictions.csv",
             "train_summary.json")
DONE_FILE = "train_summary.json"


def parse_hparams(items: list[str] | None) -> dict[str, Any]:
    """``["depth=6", "use_rr=false", "dropout=0.1"]`` -> ``{"depth": 6, "use_rr": False, "dropout": 0.1}``.

    Values are read as JSON (numbers, ``true``/``false``, ``null``), Python's ``True``/``False``
    also work, anything else stays a string.

    >>> parse_hparams(["depth=6", "use_rr=False", "name=x"])
    {'depth': 6, 'use_rr': False, 'name': 'x'}
    """
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UserError(f"--hparam: expected KEY=VALUE, got {item!r}")
        raw = raw.strip()
        if raw in ("True", "False"):
            val: Any = raw == "True"
        else:
            try:
                val = json.loads(raw)
            except json.JSONDecodeError:
                val = raw
        out[key] = val
    return out


def run_identity(config: Mapping[str, Any]) -> dict:
    """The part of a config.json that defines the experiment (runtime and paths left out)."""
    return {k: config.get(k) for k in ("model", "hparams", "split", "prep", "train", "ensemble")}


def _diff(a: Mapping[str, Any], b: Mapping[str, Any], prefix: str = "") -> list[str]:
    out = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k), b.get(k)
        if isinstance(va, Mapping) and isinstance(vb, Mapping):
            out += _diff(va, vb, f"{prefix}{k}.")
        elif va != vb:
            out.append(f"{prefix}{k}: {va!r} -> {vb!r}")
    return out


def check_output(out: Path, config: Mapping[str, Any]) -> bool:
    """Refuse a folder of another run; True when the same run already finished there.

    Raises :class:`UserError` if ``out`` is a file, holds a config.json of a different
    configuration, or is a non-empty folder that is not a run folder.
    """
    if out.exists() and not out.is_dir():
        raise UserError(f"--output {out}: exists and is not a folder")
    if not out.is_dir() or not any(out.iterdir()):
        return False
    cfg_path = out / "config.json"
    if not cfg_path.is_file():
        raise UserError(f"--output {out}: folder is not empty and holds no config.json (not an ecgnas run folder); "
                        "choose another --output")
    try:
        old = read_json(cfg_path)
    except (json.JSONDecodeError, OSError) as e:
        raise UserError(f"{cfg_path}: unreadable ({e}); choose another --output") from None
    diffs = _diff(run_identity(old), run_identity(config))
    if diffs:
        shown = "; ".join(diffs[:3]) + ("; ..." if len(diffs) > 3 else "")
        raise UserError(f"--output {out}: holds a run of a different configuration ({shown}); "
                        "choose another --output")
    return (out / DONE_FILE).is_file()


MEMBER_KINDS = ("folds", "seeds")
DECISIONS = ("cv", "none")


def _check_ensemble(ensemble: int, members: str, decision: str, folds: int, cfg: TrainConfig,
                    cv: bool = False) -> None:
    if isinstance(ensemble, bool) or not isinstance(ensemble, int) or not 1 <= ensemble <= 20:
        raise UserError(f"--ensemble: need an integer 1..20, got {ensemble!r}")
    if members not in MEMBER_KINDS:
        raise UserError(f"--members: {members!r} is not one of {', '.join(MEMBER_KINDS)}")
    if decision not in DECISIONS:
        raise UserError(f"--decision: {decision!r} is not one of {', '.join(DECISIONS)}")
    if isinstance(folds, bool) or not isinstance(folds, int) or not 2 <= folds <= 22:
        raise UserError(f"--folds: need an integer 2..22 (DS1 has 22 records), got {folds!r}")
    fixed = cfg.select == "last" and cfg.patience is None
    if not fixed and (decision == "cv" or ensemble > 1 or cv):
        raise UserError("decision offsets and ensembles need the fixed schedule (select='last', no --patience): "
                        "early stopping on the hold-out cannot be combined with record-fold cross-validation")


def _ds1_folds(beats, parts: Mapping[str, Any], k: int, split: str, seed: int) -> list:
    """Record folds over DS1 (inter-patient); beat folds over train + val for the optimistic intra split."""
    import numpy as np

    from ecgnas.data import record_folds

    if split == "inter":
        return record_folds(beats, k)
    pool = np.concatenate([parts["train"], parts["val"]])
    return [np.sort(f) for f in np.array_split(np.random.default_rng(seed).permutation(pool), k)]


def train_run(output: str | os.PathLike, model: str, *, hparams: Mapping[str, Any] | None = None,
              train: TrainConfig | None = None, prep=None, split: str = "inter", data=None,
              progress: bool = True, ensemble: int = 1, members: str = "folds", decision: str = "none",
              folds: int = 5, cv: bool = False) -> dict:
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

    DS2 is read only to write the final evaluation. ``prep``: a :class:`ecgnas.data.PrepConfig`
    (default ``PrepConfig()``); ``split``: ``"inter"`` (DS1 / DS2) or ``"intra"``. A ``train``
    config with ``select="best"`` keeps the early-stopped hold-out recipe (no CV, no ensemble).
    Refuses (UserError, nothing written) a folder holding a run of another configuration;
    returns the stored summary if this run already finished.

    >>> # s = train_run("runs/resnet-s0", "resnet", ensemble=5)
    >>> # s["test"]["macro_f1"], s["cv"]["macro_f1"]
    """
    import numpy as np

    from ecgnas.decision import apply_offsets, fit_offsets
    from ecgnas.ensemble import EnsembleModel, cross_validate
    from ecgnas.evaluate import (build, evaluate_indices, headline, load_data, prep_dict, prep_key,
                                 save_checkpoint)
    from ecgnas.metrics import metrics_json
    from ecgnas.models import count_parameters
    from ecgnas.train import fit, predict, seed_everything

    out = Path(output)
    cfg = train or TrainConfig()
    hp = dict(hparams or {})
    _check_ensemble(ensemble, members, decision, folds, cfg, cv)
    fixed = cfg.select == "last" and cfg.patience is None
    if prep is None:
        from ecgnas.data import PrepConfig

        prep = PrepConfig()
    fold_members = ensemble > 1 and members == "folds"
    run_cv = bool(cv) or decision == "cv" or fold_members
    ens = {"k": ensemble, "members": members, "decision": decision,
           "folds": ensemble if fold_members else (folds if run_cv else None)}
    config = {"model": model, "hparams": hp, "split": split, "prep": prep_dict(prep), "prep_key": prep_key(prep),
              "train": cfg.identity(), "ensemble": ens,
              "runtime": {k: v for k, v in cfg.to_dict().items() if k not in cfg.identity()},
              "data": None if data is None else str(data)}
    in_ch, window, n_rr = prep.input_shape()
    build(model, window, n_rr, 5, hp, in_channels=in_ch)  # bad name / hparams fail here, before anything is written
    if check_output(out, config):
        summary = read_json(out / DONE_FILE)
        _say(progress, f"{out}: this run already finished (DS2 macro-F1 {summary['test']['macro_f1']:.2f}); kept as is")
        return summary

    beats, parts = load_data(data, prep, split, progress=progress)
    n_rr, window, in_ch = beats.n_rr, beats.window, beats.in_channels
    out.mkdir(parents=True, exist_ok=True)
    for name in RUN_FILES:  # an unfinished earlier attempt of this same run: start clean
        if (out / name).exists():
            (out / name).unlink()
    atomic_write_json(out / "config.json", config)

    def new_model(seed: int):
        seed_everything(seed)
        return build(model, window, n_rr, 5, hp, in_channels=in_ch)

    summary: dict = {"model": model, "hparams": hp, "window": window, "ensemble": ens}
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
        atomic_write_json(out / "val_metrics.json", {"title": f"{model} DS1 hold-out", **val_metrics})
        summary["val"] = headline(val_metrics)
    else:
        ds1 = np.sort(np.concatenate([parts["train"], parts["val"]]))
        if run_cv:
            fold_idx = _ds1_folds(beats, parts, ens["folds"], split, cfg.seed)
            _say(progress, f"{model}: {len(fold_idx)}-fold record cross-validation over DS1 ({len(ds1)} beats)")
            cv_res = cross_validate(lambda k: build(model, window, n_rr, 5, hp, in_channels=in_ch), beats, fold_idx,
                                cfg, progress=progress,
                                on_fold=lambda k, m, s: _say(progress, f"  fold {k + 1}/{len(fold_idx)} trained "
                                                                       f"({s['train_seconds']:.0f} s)"))
            y_oof = beats.y[cv_res["index"]]
            keep = y_oof != 4  # Q: not trained, outside the headline metric
            if decision == "cv":
                offsets = fit_offsets(y_oof[keep], cv_res["proba"][keep])
            rec = beats.record[cv_res["index"]]
            cv_raw = metrics_json(y_oof, cv_res["proba"].argmax(1), rec)
            cv_dec = cv_raw if offsets is None else metrics_json(y_oof, apply_offsets(cv_res["proba"], offsets).argmax(1),
                                                                 rec)
            atomic_write_json(out / "cv_metrics.json", {
                "title": f"{model} DS1 out-of-fold ({len(fold_idx)} record folds)", **cv_dec,
                "raw_argmax": headline(cv_raw), "offsets": None if offsets is None else offsets.tolist(),
                "note": "offsets were fitted on these same out-of-fold predictions (in-sample for the offsets)"})
            np.savez_compressed(out / "oof.npz", index=cv_res["index"], proba=cv_res["proba"], y=y_oof)
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
                    prep=prep, split=split, in_channels=in_ch,
                    extra={"train": cfg.to_dict(), "ensemble": ens,
                           **({"best_epoch": fits[0].best_epoch, "val_macro_f1": fits[0].best_val_macro_f1}
                              if not fixed else {})})
    title = f"{model}{f' x{ensemble}' if ensemble > 1 else ''} {split}-patient, DS2 ({out.name})"
    test_metrics = evaluate_indices(out, final, beats, parts["test"], title, cfg.eval_batch_size)
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
                        n_classes=5, prep=prep, split=split, in_channels=in_ch,
                        extra={"train": cfg.to_dict(), "ensemble": {**ens, "k": len(cv_res["members"])}})
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
    _say(progress, f"{out}: {cv_txt}DS2 macro-F1 {test_metrics['macro_f1']:.2f}, accuracy "
                   f"{test_metrics['accuracy']:.2f} ({seconds:.0f} s of training)")
    return summary


def _say(progress: bool, text: str) -> None:
    if progress:
        print(text, file=sys.stderr, flush=True)


def add_train_options(p, epochs_default: int | None = None) -> None:
    """Options shared by ``train`` and ``baseline random-search`` (training hyper-parameters, runtime)."""
    d = TrainConfig()
    epochs_default = d.epochs if epochs_default is None else epochs_default
    p.add_argument("--epochs", type=int, default=epochs_default, help=f"max epochs (default {epochs_default})")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help=f"(default {d.batch_size})")
    p.add_argument("--schedule", choices=SCHEDULES, default=d.schedule, help=f"LR schedule (default {d.schedule})")
    p.add_argument("--sampler", choices=SAMPLERS, default=d.sampler, help=f"batch sampler (default {d.sampler})")
    spe = "every training beat once" if d.samples_per_epoch is None else d.samples_per_epoch
    p.add_argument("--samples-per-epoch", type=int, default=d.samples_per_epoch,
                   help=f"beats drawn per epoch (default: {spe}; 0 = every training beat once)")
    p.add_argument("--patience", type=int, default=d.patience,
                   help="early-stopping patience in epochs on the DS1 hold-out macro-F1 (default: none, a fixed "
                        "schedule; setting it keeps the best hold-out epoch and turns off CV offsets/ensembles)")
    p.add_argument("--augment", default=d.augment, metavar="NAMES",
                   help=f"comma-separated beat augmentations from {', '.join(AUGMENTATIONS)}, or none "
                        f"(default {d.augment})")
    p.add_argument("--label-smoothing", type=float, default=d.label_smoothing,
                   help=f"label smoothing (default {d.label_smoothing})")
    p.add_argument("--loss", choices=LOSSES, default=d.loss, help=f"ce or focal (default {d.loss})")
    p.add_argument("--ema", type=float, default=d.ema_decay, metavar="DECAY",
                   help=f"keep an exponential moving average of the weights (default {d.ema_decay})")
    p.add_argument("--device", choices=DEVICES, default="auto", help="auto (CUDA if available), cpu, cuda")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--no-amp", action="store_true", help="no bf16 autocast on CUDA")
    p.add_argument("--data", default=None, help="MIT-BIH folder (default $NASCORE_DATA/mitdb, then the user cache)")
    p.add_argument("--quiet", action="store_true", help="no progress output")


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train one model (DS1, early stop on the DS1 hold-out), evaluate on DS2",
                              description=__doc__.split("\n\n")[0])
    from ecgnas.models import MODELS

    p.add_argument("--model", required=True,
                   help=f"one of {', '.join(sorted(MODELS))} (ecg-cell with --hparam arch=..., darts1d with "
                        "--hparam genotype=...)")
    d = TrainConfig()
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr", type=float, default=d.lr, help=f"peak learning rate (default {d.lr})")
    p.add_argument("--weight-decay", type=float, default=d.weight_decay, help=f"AdamW (default {d.weight_decay})")
    p.add_argument("--class-weight", choices=CLASS_WEIGHT_MODES, default=d.class_weight,
                   help=f"loss weighting against class imbalance (default {d.class_weight})")
    p.add_argument("--split", choices=("inter", "intra"), default="inter",
                   help="inter: DS1/DS2 (default); intra: random beat split (optimistic)")
    p.add_argument("--window", default=None, metavar="BEFORE,AFTER",
                   help="beat window in seconds around the R peak (default 0.25,0.45)")
    p.add_argument("--hparam", action="append", default=[], metavar="KEY=VALUE", help="model hyper-parameter (repeat)")
    p.add_argument("--output", required=True, help="run folder")
    p.add_argument("--ensemble", type=int, default=1, metavar="K",
                   help="average the probabilities of K members (default 1: a single model)")
    p.add_argument("--members", choices=MEMBER_KINDS, default="folds",
                   help="ensemble members: the K fold models of a K-fold DS1 record cross-validation (default), "
                        "or K seeds trained on all of DS1")
    p.add_argument("--decision", choices=DECISIONS, default="none",
                   help="none (default): plain argmax; cv: per-class decision offsets fitted on DS1 out-of-fold "
                        "predictions (measured to lower the macro-F1 of held-out DS1 folds, see RESULTS.md)")
    p.add_argument("--cv", action="store_true",
                   help="also run the DS1 record cross-validation for its out-of-fold scores (cv_metrics.json) "
                        "and the fold ensemble's figures; --ensemble K and --decision cv run it anyway")
    p.add_argument("--folds", type=int, default=5, help="record folds of the DS1 cross-validation (default 5)")
    add_train_options(p)
    p.set_defaults(func=main)


def parse_window(text: str | None):
    """``"0.25,0.45"`` -> a PrepConfig with that window (None -> the default PrepConfig)."""
    from ecgnas.data import PrepConfig

    if text is None:
        return PrepConfig()
    try:
        before, after = (float(v) for v in text.split(","))
    except ValueError:
        raise UserError(f"--window: expected BEFORE,AFTER in seconds (e.g. 0.25,0.45), got {text!r}") from None
    return PrepConfig(before_s=before, after_s=after)


def train_config_from_args(args, **fields) -> TrainConfig:
    spe = None if args.samples_per_epoch == 0 else args.samples_per_epoch
    patience = None if not args.patience else args.patience
    return TrainConfig(epochs=args.epochs, batch_size=args.batch_size, schedule=args.schedule, sampler=args.sampler,
                       samples_per_epoch=spe, patience=patience, device=args.device,
                       amp=not args.no_amp, num_threads=args.threads, augment=args.augment,
                       label_smoothing=args.label_smoothing, loss=args.loss, ema_decay=args.ema,
                       select="last" if patience is None else "best", **fields)


def main(args) -> int:
    cfg = train_config_from_args(args, lr=args.lr, weight_decay=args.weight_decay, class_weight=args.class_weight,
                                 seed=args.seed)
    train_run(args.output, args.model, hparams=parse_hparams(args.hparam), train=cfg, prep=parse_window(args.window),
              split=args.split, data=args.data, progress=not args.quiet, ensemble=args.ensemble,
              members=args.members, decision=args.decision if cfg.select == "last" else "none", folds=args.folds,
              cv=args.cv)
    return 0
