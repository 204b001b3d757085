"""``ecgnas train``: train one model on DS1 and evaluate it on DS2 (the command line of :func:`ecgnas.run.train_run`).

The run folder's contents and the re-use rule are described in :mod:`ecgnas.run`; a folder of a
different configuration is refused with exit 2.

Example::

    ecgnas train --model resnet --epochs 20 --seed 0 --hparam depth=6 --output runs/resnet-s0
"""

from __future__ import annotations

import math
from typing import Any

from nascore.cliutil import check_options, parse_key_values
from nascore.errors import UserError
from nascore.helptext import doc_paragraph
from nascore.validate import MAX_SEED, integer, number

from ecgnas.augment import AUGMENTATIONS
from ecgnas.data.preprocess import TEMPLATES
from ecgnas.run import DECISIONS, MEMBER_KINDS, train_run
from ecgnas.train import CLASS_WEIGHT_MODES, DEVICES, LOSSES, SAMPLERS, SCHEDULES, TrainConfig


def parse_hparams(items: list[str] | None, option: str = "--hparam") -> dict[str, Any]:
    """``["depth=6", "use_rr=false", "dropout=0.1"]`` -> ``{"depth": 6, "use_rr": False, "dropout": 0.1}``.

    Values are read as JSON (numbers, ``true``/``false``, ``null``), Python's ``True``/``False``
    also work, anything else stays a string (:func:`nascore.cliutil.parse_key_values`; a key
    given twice or a missing ``=`` is a one-line error naming ``option``).

    >>> parse_hparams(["depth=6", "use_rr=False", "name=x"])
    {'depth': 6, 'use_rr': False, 'name': 'x'}
    """
    return parse_key_values(items, option)


#: ranges of the options ``train``, ``baseline random-search`` and ``search`` share (checked before
#: anything runs; 0 means "every beat" for the samples and "none" for the patience)
COMMON_BOUNDS = {"epochs": integer(1, 100_000), "samples_per_epoch": integer(0, 100_000_000),
                 "patience": integer(0, 100_000), "threads": integer(1, 1024), "seed": integer(0, MAX_SEED)}
#: ranges of the options of ``ecgnas train`` only
TRAIN_BOUNDS = {**COMMON_BOUNDS, "batch_size": integer(1, 65_536), "label_smoothing": number(0, 1, hi_open=True),
                "ema": number(0, 1, lo_open=True, hi_open=True), "lr": number(0, 10, lo_open=True),
                "weight_decay": number(0, 10), "ensemble": integer(1, 20), "folds": integer(2, 22)}
#: longest beat window on either side of the R peak, seconds
MAX_WINDOW_S = 5.0


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
    add_dataset_options(p)
    p.add_argument("--quiet", action="store_true", help="no progress output")


def add_dataset_options(p) -> None:
    """``--dataset`` and ``--data``, as every command that trains on a database takes them."""
    p.add_argument("--dataset", default="mitdb",
                   help="database(s) from ecgnas.datasets (default mitdb); A+B trains on A's training patients plus "
                        "every record of B (extra training data, said in every report)")
    p.add_argument("--data", default=None,
                   help="WFDB folder (default $NASCORE_DATA/<dataset>, then the user cache); several databases: "
                        "NAME=DIR,NAME=DIR")


def dataspec_from_args(args, prep=None):
    """The :class:`~ecgnas.data.DataSpec` of ``--dataset``, ``--split``, ``--data`` and ``prep``
    (default ``PrepConfig()``): built once per command, passed whole to the library."""
    from ecgnas.data import DataSpec, PrepConfig

    return DataSpec(args.dataset, PrepConfig() if prep is None else prep, args.split, args.data)


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train one model (DS1, early stop on the DS1 hold-out), evaluate on DS2",
                              description=doc_paragraph(__doc__, 0))
    from ecgnas.models import MODELS

    p.add_argument("--model", required=True,
                   help=f"one of {', '.join(sorted(MODELS))} (ecg-cell with --hparam arch=..., darts1d with "
                        "--hparam genotype=...)")
    d = TrainConfig()
    p.add_argument("--seed", type=int, default=0,
                   help="training seed: weights, batch order, augmentation (an ensemble's members derive theirs "
                        "from it; default 0)")
    p.add_argument("--lr", type=float, default=d.lr, help=f"peak learning rate (default {d.lr})")
    p.add_argument("--weight-decay", type=float, default=d.weight_decay, help=f"AdamW (default {d.weight_decay})")
    p.add_argument("--class-weight", choices=CLASS_WEIGHT_MODES, default=d.class_weight,
                   help=f"loss weighting against class imbalance (default {d.class_weight})")
    p.add_argument("--split", choices=("inter", "intra"), default="inter",
                   help="inter: DS1/DS2 (default); intra: random beat split (optimistic)")
    p.add_argument("--window", default=None, metavar="BEFORE,AFTER",
                   help="beat window in seconds around the R peak (default 0.25,0.45)")
    p.add_argument("--template", choices=TEMPLATES, default="all",
                   help="residual template: the median of all the record's beats (default) or of its non-premature "
                        "beats only (regular; for records where ectopic beats are the majority)")
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


def parse_window(text: str | None, template: str = "all"):
    """``"0.25,0.45"`` -> a PrepConfig with that window (None -> the default window) and residual
    ``template``."""
    from ecgnas.data import PrepConfig

    if text is None:
        return PrepConfig(template=template)
    shown = text if len(text) <= 60 else text[:57] + "..."
    try:
        before, after = (float(v) for v in text.split(","))
    except ValueError:
        raise UserError(f"--window: expected BEFORE,AFTER in seconds (e.g. 0.25,0.45), got {shown!r}") from None
    if not (math.isfinite(before) and math.isfinite(after) and 0 <= before <= MAX_WINDOW_S
            and 0 < after <= MAX_WINDOW_S):
        raise UserError(f"--window: need 0 <= BEFORE <= {MAX_WINDOW_S:g} and 0 < AFTER <= {MAX_WINDOW_S:g} "
                        f"seconds, got {shown!r}")
    return PrepConfig(before_s=before, after_s=after, template=template)


def train_config_from_args(args, **fields) -> TrainConfig:
    spe = None if args.samples_per_epoch == 0 else args.samples_per_epoch
    patience = None if not args.patience else args.patience
    return TrainConfig(epochs=args.epochs, batch_size=args.batch_size, schedule=args.schedule, sampler=args.sampler,
                       samples_per_epoch=spe, patience=patience, device=args.device,
                       amp=not args.no_amp, num_threads=args.threads, augment=args.augment,
                       label_smoothing=args.label_smoothing, loss=args.loss, ema_decay=args.ema,
                       select="last" if patience is None else "best", **fields)


def main(args) -> int:
    check_options(args, TRAIN_BOUNDS)
    cfg = train_config_from_args(args, lr=args.lr, weight_decay=args.weight_decay, class_weight=args.class_weight,
                                 seed=args.seed)
    train_run(args.output, args.model, hparams=parse_hparams(args.hparam), train=cfg,
              spec=dataspec_from_args(args, parse_window(args.window, args.template)), progress=not args.quiet,
              ensemble=args.ensemble, members=args.members, decision=args.decision if cfg.select == "last" else "none",
              folds=args.folds, cv=args.cv)
    return 0
