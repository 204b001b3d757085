"""Checkpoints of trained ECG models, and their (re-)evaluation on the DS1 hold-out or DS2.

A checkpoint (``checkpoint.pt``, read with ``torch.load(weights_only=True)``) is a dict::

    {"format": "ecgnas-checkpoint", "version": 2,
     "model": "resnet", "hparams": {...}, "window": 126, "n_rr": 5, "n_classes": 5, "in_channels": 2,
     "prep": {...PrepConfig fields...}, "prep_key": "...", "split": "inter",
     "train": {...TrainConfig fields...}, "rr_norm": true,
     "members": [{...state dict...}, ...],      # one per ensemble member (one for a single model)
     "offsets": [0.0, 0.75, -0.25, 0.5, 0.0]}   # decision offsets fitted on DS1 out-of-fold (or [])

It holds everything needed to rebuild the model (:func:`ecgnas.models.build_model`, wrapped in
:class:`ecgnas.models.rrnorm.RRNormed` when ``rr_norm``; several members and the offsets make an
:class:`ecgnas.ensemble.EnsembleModel`) and the very same beats and split (:func:`load_data`), so
``ecgnas evaluate RUN`` reproduces a run's figures, decision offsets included. Version 1
checkpoints (one ``state_dict``, no RR standardisation, no offsets) are still read.

>>> # ckpt = load_checkpoint("runs/resnet-s0/checkpoint.pt")
>>> # metrics = evaluate_run("runs/resnet-s0", split="test")   # writes runs/resnet-s0/eval-test/
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from nascore.errors import UserError
from nascore.io import atomic_write_bytes

CHECKPOINT_FORMAT = "ecgnas-checkpoint"
CHECKPOINT_VERSION = 2
READABLE_VERSIONS = (1, 2)
SPLITS = ("inter", "intra")
EVAL_SPLITS = ("test", "val")
_REQUIRED = ("model", "hparams", "window", "n_rr", "n_classes", "prep", "split")


def prep_dict(prep) -> dict:
    """A PrepConfig as a plain JSON-ready dict (tuples as lists; includes the pipeline ``version``)."""
    return prep.to_dict()


def prep_key(prep) -> str:
    """The data pipeline's cache key of a PrepConfig (identifies the exact beats it yields)."""
    return str(prep.key())


def make_prep(fields: Mapping[str, Any] | None = None, **overrides):
    """Build a :class:`ecgnas.data.PrepConfig` from a dict (a checkpoint's ``prep``) plus overrides.

    Fields the constructor does not take (the pipeline ``version``) are dropped: a changed
    pipeline shows up as a different :func:`prep_key` instead.

    >>> make_prep({"before_s": 0.25, "after_s": 0.45, "version": "1"}, after_s=0.25).window_samples()
    (45, 45)
    """
    from ecgnas.data import PrepConfig

    d = dict(fields or {})
    d.update(overrides)
    for f in dataclasses.fields(PrepConfig):
        if not f.init:
            d.pop(f.name, None)
    known = {f.name for f in dataclasses.fields(PrepConfig) if f.init}
    unknown = sorted(set(d) - known)
    if unknown:
        raise UserError(f"prep config: unknown field(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    return PrepConfig(**d)


def load_data(data=None, prep=None, split: str = "inter", progress: bool = True):
    """Load the beats for ``prep`` (cached by the data pipeline) and make the named split.

    Returns ``(beats, split_dict)`` with ``split_dict = {"train", "val", "test"}`` index arrays:
    ``"inter"`` is de Chazal's DS1/DS2 with the DS1 hold-out records as ``val``
    (:func:`ecgnas.data.inter_patient_split`); ``"intra"`` mixes beats of all records
    (:func:`ecgnas.data.intra_patient_split`, optimistic, for comparison with papers only).
    """
    from ecgnas import data as ecgdata

    if split not in SPLITS:
        raise UserError(f"split: {split!r} is not one of {', '.join(SPLITS)}")
    beats = ecgdata.load_beats(data=data, config=prep if prep is not None else ecgdata.PrepConfig(),
                               progress=progress)
    fn = ecgdata.inter_patient_split if split == "inter" else ecgdata.intra_patient_split
    return beats, fn(beats)


def build(name: str, window: int, n_rr: int = 4, n_classes: int = 5, hparams: Mapping[str, Any] | None = None,
          in_channels: int = 1, rr_norm: bool = True):
    """:func:`ecgnas.models.build_model`, with unknown names / hyper-parameters as one-line UserErrors.

    ``rr_norm`` (default): wrap the model in :class:`ecgnas.models.rrnorm.RRNormed`, which
    standardises the RR features with the training beats' statistics (checkpoints say whether);
    the hyper-parameter ``rr_skip=True`` (any model) adds its linear RR-to-logits path.
    """
    from ecgnas.models import MODELS, build_model
    from ecgnas.models.rrnorm import RRNormed

    if name not in MODELS:
        raise UserError(f"model: unknown name {name!r} (choose from: {', '.join(sorted(MODELS))})")
    hp = dict(hparams or {})
    rr_skip = hp.pop("rr_skip", False)  # a hyper-parameter of every model: see RRNormed
    if not isinstance(rr_skip, bool):
        raise UserError(f"model {name!r}: hyperparameter rr_skip={rr_skip!r} must be true or false")
    if rr_skip and not rr_norm:
        raise UserError(f"model {name!r}: rr_skip needs the RR standardisation (rr_norm)")
    try:
        net = build_model(name, window=window, n_rr=n_rr, n_classes=n_classes, in_channels=in_channels, **hp)
    except TypeError as e:
        raise UserError(f"model {name!r}: bad hyper-parameters {dict(hparams or {})}: {e}") from None
    return RRNormed(net, n_rr, n_classes, skip=rr_skip) if rr_norm else net


def save_checkpoint(path: str | os.PathLike, model: torch.nn.Module, *, name: str, hparams: Mapping[str, Any],
                    window: int, n_rr: int, n_classes: int, prep, split: str, extra: Mapping[str, Any] | None = None,
                    in_channels: int = 1) -> None:
    """Write ``model``'s weights and everything needed to rebuild it, atomically.

    >>> # save_checkpoint(run / "checkpoint.pt", model, name="resnet", hparams={}, window=252,
    >>> #                 n_rr=4, n_classes=5, prep=PrepConfig(), split="inter")
    """
    import io

    from ecgnas.ensemble import EnsembleModel
    from ecgnas.models.rrnorm import RRNormed

    members = list(model.members) if isinstance(model, EnsembleModel) else [model]
    offsets = (model.offsets.tolist() if isinstance(model, EnsembleModel) else [])
    ckpt = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "model": name, "hparams": dict(hparams),
            "window": int(window), "n_rr": int(n_rr), "n_classes": int(n_classes), "in_channels": int(in_channels),
            "prep": prep_dict(prep),
            "prep_key": prep_key(prep), "split": split, **dict(extra or {}),
            "rr_norm": isinstance(members[0], RRNormed), "offsets": [float(v) for v in offsets],
            "members": [{k: v.detach().cpu() for k, v in m.state_dict().items()} for m in members]}
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read and validate a checkpoint written by :func:`save_checkpoint`.

    Read with ``torch.load(weights_only=True)`` (:func:`nascore.safeload.torch_load`): a file that
    needs more than tensors and plain data is refused, nothing in it is run. A missing file, a file
    torch cannot read or refuses, or a dict that is not ours raises a one-line :class:`UserError`
    naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: checkpoint not found (is this an 'ecgnas train' run folder?)")
    from nascore.safeload import torch_load
    ckpt = torch_load(path, "torch checkpoint")
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise UserError(f"{path}: not an ecgnas checkpoint (no format={CHECKPOINT_FORMAT!r} entry)")
    if ckpt.get("version") not in READABLE_VERSIONS:
        raise UserError(f"{path}: checkpoint version {ckpt.get('version')!r} is not supported "
                        f"(this ecgnas reads versions {', '.join(map(str, READABLE_VERSIONS))})")
    missing = [k for k in _REQUIRED + (("state_dict",) if ckpt["version"] == 1 else ("members",)) if k not in ckpt]
    if missing:
        raise UserError(f"{path}: checkpoint lacks {', '.join(missing)}")
    if ckpt["version"] == 1:  # one model, no RR standardisation, no offsets
        ckpt = {**ckpt, "members": [ckpt.pop("state_dict")], "rr_norm": False, "offsets": []}
    if not isinstance(ckpt["members"], list) or not ckpt["members"]:
        raise UserError(f"{path}: checkpoint holds no model weights ('members' is empty)")
    offsets = ckpt.get("offsets") or []
    if offsets and len(offsets) != int(ckpt["n_classes"]):
        raise UserError(f"{path}: {len(offsets)} decision offsets for {ckpt['n_classes']} classes")
    return ckpt


def model_from_checkpoint(ckpt: Mapping[str, Any], path: str | os.PathLike = "checkpoint") -> torch.nn.Module:
    """Rebuild the model of a loaded checkpoint and load its weights (eval mode, CPU).

    One member and no offsets: the plain model; otherwise an :class:`ecgnas.ensemble.EnsembleModel`
    of the members with the stored decision offsets.
    """
    from ecgnas.ensemble import EnsembleModel

    members = []
    for sd in ckpt["members"]:
        model = build(ckpt["model"], ckpt["window"], ckpt["n_rr"], ckpt["n_classes"], ckpt["hparams"],
                      in_channels=int(ckpt.get("in_channels", 1)), rr_norm=bool(ckpt.get("rr_norm", False)))
        try:
            model.load_state_dict(sd)
        except RuntimeError as e:
            raise UserError(f"{path}: weights do not fit model {ckpt['model']!r} {ckpt['hparams']} "
                            f"({str(e).splitlines()[0][:120]})") from None
        members.append(model.eval())
    if len(members) == 1 and not ckpt.get("offsets"):
        return members[0]
    return EnsembleModel(members, ckpt.get("offsets") or None).eval()


def evaluate_indices(out_dir: str | os.PathLike, model: torch.nn.Module, beats, idx, title: str,
                     batch_size: int = 512) -> dict:
    """Predict ``beats`` rows ``idx`` and write the evaluation files into ``out_dir``.

    Returns the metrics dict of :func:`ecgnas.report.write_evaluation` (metrics.json,
    per_record.csv, confusion.png, predictions.csv).
    """
    from ecgnas.report import write_evaluation
    from ecgnas.train import predict

    idx = np.asarray(idx, dtype=np.int64)
    if idx.size == 0:
        raise UserError(f"{title}: no beats to evaluate")
    y_pred = predict(model, beats, idx, batch_size=batch_size)
    return write_evaluation(out_dir, np.asarray(beats.y)[idx], y_pred, np.asarray(beats.record)[idx],
                            np.asarray(beats.sample)[idx], title)


def headline(m: Mapping[str, Any]) -> dict:
    """The numbers a results table needs from a :func:`ecgnas.metrics.metrics_json` dict.

    Accuracy, macro-F1 (N,S,V,F), kappa, per-class Se/+P/F1 of N, S, V and F, EC57 SVEB Se/+P and VEB
    Se/+P/FPR (percent; None where undefined).
    """
    pc = m["per_class"]
    return {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "kappa": m["kappa"],
            **{c: {k: pc[c][k] for k in ("se", "ppv", "f1")} for c in ("N", "S", "V", "F") if c in pc},
            "sveb": {k: m["ec57"]["sveb"][k] for k in ("se", "ppv")},
            "veb": {k: m["ec57"]["veb"][k] for k in ("se", "ppv", "fpr")}}


def evaluate_run(run_dir: str | os.PathLike, split: str = "test", data=None, progress: bool = True,
                 device: str = "auto") -> dict:
    """Re-evaluate the checkpoint of ``run_dir`` on ``split`` ("test" = DS2, "val" = DS1 hold-out).

    Reloads ``run_dir/checkpoint.pt``, rebuilds the beats with the same PrepConfig (refusing data
    whose cache key differs) and writes the evaluation into ``run_dir/eval-<split>/``. Returns
    the metrics dict.

    >>> # m = evaluate_run("runs/resnet-s0", "test"); m["macro_f1"]
    """
    from ecgnas.train import resolve_device

    if split not in EVAL_SPLITS:
        raise UserError(f"--split: {split!r} is not one of {', '.join(EVAL_SPLITS)}")
    run = Path(run_dir)
    if not run.is_dir():
        raise UserError(f"{run}: run folder not found")
    path = run / "checkpoint.pt"
    ckpt = load_checkpoint(path)
    model = model_from_checkpoint(ckpt, path)
    prep = make_prep(ckpt["prep"])
    if ckpt.get("prep_key") and prep_key(prep) != ckpt["prep_key"]:
        raise UserError(f"{path}: its prep config no longer gives cache key {ckpt['prep_key']!r} "
                        f"(got {prep_key(prep)!r}); the data pipeline changed since training")
    beats, parts = load_data(data, prep, ckpt["split"], progress=progress)
    if beats.window != ckpt["window"] or beats.in_channels != int(ckpt.get("in_channels", 1)):
        raise UserError(f"{path}: model expects {ckpt.get('in_channels', 1)} x {ckpt['window']} inputs but the data "
                        f"has {beats.in_channels} x {beats.window}")
    model.to(resolve_device(device))
    title = f"{ckpt['model']} {ckpt['split']}-patient, {'DS2' if split == 'test' else 'DS1 hold-out'} ({run.name})"
    return evaluate_indices(run / f"eval-{split}", model, beats, parts[split], title)
