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


def load_data(spec=None, progress: bool = True, cache_dir=None):
    """``(beats, split_dict)`` of a :class:`ecgnas.data.DataSpec` (``None``: MIT-BIH, ``PrepConfig()``,
    inter-patient), its beats cached by the data pipeline.

    ``split_dict = {"train", "val", "test"}`` index arrays. The main database gives them: its
    standard split (MIT-BIH: de Chazal's DS1 minus the hold-out records / the hold-out / DS2,
    :func:`ecgnas.data.inter_patient_split`), else :func:`ecgnas.data.patient_split` over its
    patients (``"inter"``), or the optimistic beat-level split (``"intra"``,
    :func:`ecgnas.data.intra_patient_split`, for comparison with papers only). Every record of each
    extra database is appended to ``train`` only; their record names are prefixed ``<database>:``.
    The files are read from ``spec.data`` (:attr:`ecgnas.data.DataSpec.dirs`).
    """
    from ecgnas import data as ecgdata

    if spec is None:
        spec = ecgdata.DataSpec()
    elif not isinstance(spec, ecgdata.DataSpec):
        raise UserError(f"load_data: expected a DataSpec, got {type(spec).__name__}")
    dirs = spec.dirs
    main = spec.main

    def _load(db):
        kw = {} if db.name == "mitdb" else {"database": db}  # MIT-BIH: the call every earlier run made
        if cache_dir is not None:
            kw["cache_dir"] = cache_dir
        return ecgdata.load_beats(data=dirs[db.name], config=spec.prep, progress=progress, **kw)

    beats = _load(main)
    if spec.split == "intra":
        parts = ecgdata.intra_patient_split(beats)
    elif main.name == "mitdb" or main.train_split is not None:
        parts = ecgdata.inter_patient_split(beats) if main.name == "mitdb" else ecgdata.inter_patient_split(
            beats, database=main)
    else:
        parts = ecgdata.patient_split(beats, main)
    if not spec.extra:
        return beats, parts
    pieces, report = [beats], dict(beats.report)
    report["extra_training_data"] = {}
    for db in spec.extra:
        b = _load(db)
        if b.window != beats.window or b.in_channels != beats.in_channels or b.n_rr != beats.n_rr:
            raise UserError(f"--dataset {spec.database}: {db.name} beats are {b.in_channels} x {b.window} (+{b.n_rr} RR), "
                            f"{main.name} beats {beats.in_channels} x {beats.window} (+{beats.n_rr} RR)")
        b.record = np.char.add(f"{db.name}{ecgdata.spec.RECORD_SEP}", np.asarray(b.record).astype(str))
        report["extra_training_data"][db.name] = {"beats": len(b), "records": len(set(b.record.tolist())),
                                                  "counts": b.class_counts(), "data_dir": b.report.get("data_dir")}
        pieces.append(b)
    n0 = len(beats)
    joined = ecgdata.Beats(x=np.concatenate([p.x for p in pieces]), rr=np.concatenate([p.rr for p in pieces]),
                           y=np.concatenate([p.y for p in pieces]),
                           record=np.concatenate([np.asarray(p.record).astype(str) for p in pieces]),
                           sample=np.concatenate([p.sample for p in pieces]), fs=beats.fs, report=report,
                           config=beats.config)
    extra_idx = np.arange(n0, len(joined), dtype=np.int64)
    parts = {k: np.asarray(v, np.int64) for k, v in parts.items()}
    parts["train"] = np.concatenate([parts["train"], extra_idx])
    return joined, parts


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
                    window: int, n_rr: int, n_classes: int, spec, extra: Mapping[str, Any] | None = None,
                    in_channels: int = 1) -> None:
    """Write ``model``'s weights and everything needed to rebuild it, atomically; the
    :class:`~ecgnas.data.DataSpec` ``spec`` it was trained on is recorded as ``prep`` (and its
    ``prep_key``), ``split`` and ``dataset`` (:meth:`ecgnas.data.DataSpec.from_config` reads it back;
    the data folder is not recorded).

    >>> # save_checkpoint(run / "checkpoint.pt", model, name="resnet", hparams={}, window=252,
    >>> #                 n_rr=4, n_classes=5, spec=DataSpec())
    """
    import io

    from ecgnas.ensemble import EnsembleModel
    from ecgnas.models.rrnorm import RRNormed

    members = list(model.members) if isinstance(model, EnsembleModel) else [model]
    offsets = (model.offsets.tolist() if isinstance(model, EnsembleModel) else [])
    ckpt = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "model": name, "hparams": dict(hparams),
            "window": int(window), "n_rr": int(n_rr), "n_classes": int(n_classes), "in_channels": int(in_channels),
            "prep": prep_dict(spec.prep),
            "prep_key": prep_key(spec.prep), "split": spec.split, "dataset": spec.database, **dict(extra or {}),
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
                 device: str = "auto", dataset: str | None = None, cache_dir=None) -> dict:
    """Re-evaluate the checkpoint of ``run_dir`` on ``split`` ("test" = DS2, "val" = DS1 hold-out).

    Reloads ``run_dir/checkpoint.pt``, rebuilds the beats with the same PrepConfig (refusing data
    whose cache key differs) and writes the evaluation into ``run_dir/eval-<split>/``. Returns
    the metrics dict.

    ``dataset``: another database (registered name) for a **cross-database** evaluation: every
    record of it (but its excluded ones) is prepared with the checkpoint's PrepConfig -- lead
    through the database's lead map, resampled to the model's rate -- and predicted; the files go
    to ``run_dir/eval-<dataset>/`` (metrics.json, per_record.csv, predictions.csv, confusion.png,
    plus per_patient.csv). ``split`` does not apply then. A database the run trained on is refused.

    >>> # m = evaluate_run("runs/resnet-s0", "test"); m["macro_f1"]
    >>> # m = evaluate_run("runs/resnet-s0", dataset="incartdb", data="/data/incartdb")
    """
    from ecgnas.data import DataSpec
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
    trained = DataSpec.from_config(ckpt, prep)  # no "dataset" in the checkpoint: MIT-BIH
    if dataset is not None:
        from ecgnas.datasets import get_database

        target = get_database(dataset)
        if target.name != trained.main.name:
            if target.name in {d.name for d in trained.databases}:
                raise UserError(f"--dataset {target.name}: {run} trained on {trained.database}, so {target.name} is not "
                                "an unseen database (cross-database evaluation needs one the run never saw)")
            model.to(resolve_device(device))
            return evaluate_cross(run, model, ckpt, trained, DataSpec(target.name, prep, trained.split, data),
                                  progress, cache_dir)
    beats, parts = load_data(DataSpec.of(trained, data=data), progress=progress, cache_dir=cache_dir)
    if beats.window != ckpt["window"] or beats.in_channels != int(ckpt.get("in_channels", 1)):
        raise UserError(f"{path}: model expects {ckpt.get('in_channels', 1)} x {ckpt['window']} inputs but the data "
                        f"has {beats.in_channels} x {beats.window}")
    model.to(resolve_device(device))
    main = trained.main
    if main.name == "mitdb":
        where = "DS2" if split == "test" else "DS1 hold-out"
    else:
        where = f"{main.name} {'test' if split == 'test' else 'validation'} patients"
    note = trained.extra_training_note()
    title = f"{ckpt['model']} {ckpt['split']}-patient, {where} ({run.name})" + (f"; {note}" if note else "")
    m = evaluate_indices(run / f"eval-{split}", model, beats, parts[split], title)
    if note:
        m = _label(run / f"eval-{split}", m, {"dataset": trained.database, "extra_training_data": note})
    return m


def _label(out: Path, metrics: dict, fields: Mapping[str, Any]) -> dict:
    """Add ``fields`` after the title of an evaluation's metrics.json (rewritten atomically)."""
    from nascore.io import atomic_write_json

    head = {k: metrics[k] for k in ("title",) if k in metrics}
    m = {**head, **dict(fields), **{k: v for k, v in metrics.items() if k not in head}}
    atomic_write_json(Path(out) / "metrics.json", m)
    return m


def evaluate_cross(run: Path, model: torch.nn.Module, ckpt: Mapping[str, Any], trained, on,
                   progress: bool = True, cache_dir=None) -> dict:
    """The cross-database part of :func:`evaluate_run` (``run_dir/eval-<database>/``): the model
    trained on the :class:`~ecgnas.data.DataSpec` ``trained``, tested on every record of the
    database of the spec ``on`` (its prep is the checkpoint's: lead map and resampling to the
    model's rate happen in preparation; its split does not apply)."""
    from ecgnas import data as ecgdata
    from ecgnas.data.prepare import console_notes
    from ecgnas.metrics import per_record_table

    target, prep = on.main, on.prep
    kw = {} if cache_dir is None else {"cache_dir": cache_dir}
    beats = ecgdata.load_beats(data=on.dirs[target.name], config=prep, progress=progress, database=target, **kw)
    if beats.window != ckpt["window"] or beats.in_channels != int(ckpt.get("in_channels", 1)):
        raise UserError(f"{run}: model expects {ckpt.get('in_channels', 1)} x {ckpt['window']} inputs but the "
                        f"{target.name} beats are {beats.in_channels} x {beats.window}")
    out = run / f"eval-{target.name}"
    note = trained.extra_training_note()
    title = (f"{ckpt['model']} trained on {trained.main.name}, cross-database test on {target.name} ({run.name})"
             + (f"; {note}" if note else ""))
    from ecgnas.report import write_evaluation
    from ecgnas.train import predict
    from nascore.io import atomic_write_text

    y_true = np.asarray(beats.y)
    y_pred = predict(model, beats, np.arange(len(beats)))
    m = write_evaluation(out, y_true, y_pred, np.asarray(beats.record), np.asarray(beats.sample), title)
    patients = np.array([target.patient_of(r) for r in np.asarray(beats.record).astype(str)])
    table = per_record_table(y_true, y_pred, patients).rename(columns={"record": "patient"})
    atomic_write_text(out / "per_patient.csv", table.to_csv(index=False, lineterminator="\n", float_format="%.4f"))
    fields = {"dataset": target.name, "database": target.title, "trained_on": trained.database,
              "cross_database": True, "records": len(set(beats.record.tolist())),
              "patients": (len(set(patients.tolist())) if target.patients is not None
                           else "unknown (no record -> patient map; per_patient.csv is per record)"),
              "preparation": {"lead": prep.lead, "fs": prep.fs, "notes": console_notes(beats.report.get("notes", [])),
                              "skipped_records": beats.report.get("skipped_records", {}),
                              "skipped_symbols": beats.report.get("skipped_symbols", {})}}
    if note:
        fields["extra_training_data"] = note
    return _label(out, m, fields)
