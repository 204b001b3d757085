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

from ecgnas.train import CLASS_WEIGHT_MODES, DEVICES, SAMPLERS, SCHEDULES, TrainConfig

RUN_FILES = ("config.json", "train_log.jsonl", "checkpoint.pt", "val_metrics.json", "metrics.json",
             "per_record.csv", "confusion.png", "predictions.csv", "train_summary.json")
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
    return {k: config.get(k) for k in ("model", "hparams", "split", "prep", "train")}


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


def train_run(output: str | os.PathLike, model: str, *, hparams: Mapping[str, Any] | None = None,
              train: TrainConfig | None = None, prep=None, split: str = "inter", data=None,
              progress: bool = True) -> dict:
    """Train ``model`` into the run folder ``output`` and evaluate it; returns train_summary.json's dict.

    ``prep``: a :class:`ecgnas.data.PrepConfig` (default ``PrepConfig()``); ``split``: ``"inter"``
    (DS1-train / DS1 hold-out / DS2) or ``"intra"``. Refuses (UserError, nothing written) a folder
    holding a run of another configuration; returns the stored summary if this run already finished.

    >>> # s = train_run("runs/resnet-s0", "resnet", train=TrainConfig(epochs=20, seed=0))
    >>> # s["test"]["macro_f1"], s["throughput"]
    """
    from ecgnas.evaluate import (build, evaluate_indices, headline, load_data, prep_dict, prep_key,
                                 save_checkpoint)
    from ecgnas.metrics import metrics_json
    from ecgnas.models import count_parameters
    from ecgnas.train import fit, predict, seed_everything

    out = Path(output)
    cfg = train or TrainConfig()
    hp = dict(hparams or {})
    if prep is None:
        from ecgnas.data import PrepConfig

        prep = PrepConfig()
    config = {"model": model, "hparams": hp, "split": split, "prep": prep_dict(prep), "prep_key": prep_key(prep),
              "train": cfg.identity(),
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
    seed_everything(cfg.seed)
    net = build(model, window, n_rr, 5, hp, in_channels=in_ch)
    out.mkdir(parents=True, exist_ok=True)
    for name in RUN_FILES:  # an unfinished earlier attempt of this same run: start clean
        if (out / name).exists():
            (out / name).unlink()
    atomic_write_json(out / "config.json", config)
    _say(progress, f"training {model} {hp or ''} on {len(parts['train'])} beats "
                   f"(hold-out {len(parts['val'])}, test {len(parts['test'])}) -> {out}")
    res = fit(net, beats, parts, cfg, progress=progress, log=out / "train_log.jsonl")
    save_checkpoint(out / "checkpoint.pt", net, name=model, hparams=hp, window=window, n_rr=n_rr, n_classes=5,
                    prep=prep, split=split, in_channels=in_ch,
                    extra={"train": cfg.to_dict(), "best_epoch": res.best_epoch, "val_macro_f1": res.best_val_macro_f1})
    va = parts["val"]
    val_metrics = metrics_json(beats.y[va], predict(net, beats, va, cfg.eval_batch_size), beats.record[va])
    atomic_write_json(out / "val_metrics.json", {"title": f"{model} DS1 hold-out", **val_metrics})
    test_metrics = evaluate_indices(out, net, beats, parts["test"], f"{model} {split}-patient, DS2 ({out.name})",
                                    cfg.eval_batch_size)
    summary = {"model": model, "hparams": hp, "params": count_parameters(net), "window": window,
               **{k: v for k, v in res.summary().items() if k != "history"},
               "val": headline(val_metrics), "test": headline(test_metrics)}
    atomic_write_json(out / DONE_FILE, summary)
    _say(progress, f"{out}: best epoch {res.best_epoch}/{res.epochs_run}, hold-out macro-F1 "
                   f"{res.best_val_macro_f1:.2f}; DS2 macro-F1 {test_metrics['macro_f1']:.2f}, "
                   f"accuracy {test_metrics['accuracy']:.2f}, {res.throughput:.0f} beats/s")
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
    p.add_argument("--samples-per-epoch", type=int, default=d.samples_per_epoch,
                   help=f"beats drawn per epoch (default {d.samples_per_epoch}; 0 = every training beat once)")
    p.add_argument("--patience", type=int, default=d.patience,
                   help=f"early-stopping patience in epochs on the hold-out macro-F1 (default {d.patience})")
    p.add_argument("--device", choices=DEVICES, default="auto", help="auto (CUDA if available), cpu, cuda")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--no-amp", action="store_true", help="no bf16 autocast on CUDA")
    p.add_argument("--data", default=None, help="MIT-BIH folder (default $NASCORE_DATA/mitdb, then the user cache)")
    p.add_argument("--quiet", action="store_true", help="no progress output")


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train one model (DS1, early stop on the DS1 hold-out), evaluate on DS2",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="kachuee, acharya, resnet, or ecg-cell (with --hparam arch=...)")
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
    return TrainConfig(epochs=args.epochs, batch_size=args.batch_size, schedule=args.schedule, sampler=args.sampler,
                       samples_per_epoch=spe, patience=args.patience, device=args.device,
                       amp=not args.no_amp, num_threads=args.threads, **fields)


def main(args) -> int:
    cfg = train_config_from_args(args, lr=args.lr, weight_decay=args.weight_decay, class_weight=args.class_weight,
                                 seed=args.seed)
    train_run(args.output, args.model, hparams=parse_hparams(args.hparam), train=cfg, prep=parse_window(args.window),
              split=args.split, data=args.data, progress=not args.quiet)
    return 0
