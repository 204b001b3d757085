"""``ecgnas export RUN``: the whole path from a run's checkpoint to deployable files.

:func:`export_run` writes into ``output`` (default ``RUN/export/``)::

    model.onnx | model.torchscript.pt   the whole decision path (members, mean, offsets), contract inside
    model.int8.onnx                     with int8=True (ONNX only): static int8, calibrated on DS1 beats
    contract.json                       the preprocessing contract (sidecar copy)
    export.json                         parity statistics, int8 DS2 figures and sizes, measured latency
    model_card.md                       the run's model card with the export section

Order: export -> **parity check** (raises :class:`ecgnas.export.parity.ParityError`, one line; the
exported file and its contract are then removed, nothing else is written) -> int8 -> latency ->
report and card.

Beats of the parity check: all DS1 and DS2 beats of the run's prepared data (same PrepConfig,
checked by its cache key); ``parity_beats`` (an ``.npz`` with ``x`` and ``rr``) replaces them;
when the MIT-BIH data cannot be loaded and none is given, the documented fallback is
:data:`FALLBACK_BEATS` seeded random inputs of the model's shape (``x`` standard normal, ``rr``
1 + 0.1 x standard normal), named as such in the report. int8 needs the real data (DS1 for
calibration, DS2 for its report).
"""

from __future__ import annotations

import datetime as _dt
import os
import sys
from pathlib import Path

import numpy as np

from nascore.errors import UserError
from nascore.io import atomic_write_json

FORMATS = ("onnx", "torchscript")
FILE_NAMES = {"onnx": "model.onnx", "torchscript": "model.torchscript.pt"}
INT8_NAME = "model.int8.onnx"
FALLBACK_BEATS = 2048


def _say(progress: bool, text: str) -> None:
    if progress:
        print(text, file=sys.stderr, flush=True)


def _fallback(in_ch: int, window: int, n_rr: int, n: int = FALLBACK_BEATS):
    rng = np.random.default_rng(0)
    return (rng.standard_normal((n, in_ch, window)).astype(np.float32),
            (1 + 0.1 * rng.standard_normal((n, n_rr))).astype(np.float32))


def _load_npz(path, in_ch: int, window: int, n_rr: int):
    try:
        with np.load(path) as z:
            x, rr = np.asarray(z["x"], np.float32), np.asarray(z["rr"], np.float32)
    except (OSError, KeyError, ValueError) as e:
        raise UserError(f"--parity-beats {path}: need an .npz with arrays x and rr ({e})") from None
    if x.ndim == 2:
        x = x[:, None]
    if x.shape[1:] != (in_ch, window) or rr.shape != (len(x), n_rr):
        raise UserError(f"--parity-beats {path}: x {x.shape}, rr {rr.shape}; the model takes "
                        f"x [n, {in_ch}, {window}] and rr [n, {n_rr}]")
    return x, rr


def _x(beats, idx):
    x = np.asarray(beats.x[idx], np.float32)
    return x[:, None] if x.ndim == 2 else x


def export_run(run_dir: str | os.PathLike, fmt: str = "onnx", *, int8: bool = False, output=None, data=None,
               parity_beats=None, latency_repeats: int = 200, threads: int = 1, progress: bool = True) -> dict:
    """Export the checkpoint of ``run_dir``; returns the report written as ``export.json``.

    ``latency_repeats=0`` skips the latency measurement; ``threads``: torch / onnxruntime threads
    of the parity check (latency is measured on 1 and 2 threads regardless).
    """
    from ecgnas.export import deps
    from ecgnas.export.card import write_model_card
    from ecgnas.export.contract import build_contract
    from ecgnas.export.graph import OPSET, export_onnx, export_torchscript, file_size
    from ecgnas.export.parity import ParityError, check_parity
    from ecgnas.export.runners import TorchRunner, runner_for
    from ecgnas.evaluate import load_checkpoint, load_data, make_prep, model_from_checkpoint, prep_key
    from ecgnas.models import count_parameters

    if fmt not in FORMATS:
        raise UserError(f"--format: {fmt!r} is not one of {', '.join(FORMATS)}")
    if int8 and fmt != "onnx":
        raise UserError("--int8: needs --format onnx (the quantisation is onnxruntime's)")
    if fmt == "onnx" or int8:
        deps.onnx(), deps.onnxruntime()
    run = Path(run_dir)
    if not run.is_dir():
        raise UserError(f"{run}: run folder not found")
    ckpt_path = run / "checkpoint.pt"
    ckpt = load_checkpoint(ckpt_path)
    model = model_from_checkpoint(ckpt, ckpt_path).cpu().eval()
    prep = make_prep(ckpt["prep"])
    if ckpt.get("prep_key") and prep_key(prep) != ckpt["prep_key"]:
        raise UserError(f"{ckpt_path}: its prep config no longer gives cache key {ckpt['prep_key']!r}; "
                        "the data pipeline changed since training")
    in_ch, window, n_rr = int(ckpt.get("in_channels", 1)), int(ckpt["window"]), int(ckpt["n_rr"])
    out = Path(output) if output is not None else run / "export"
    out.mkdir(parents=True, exist_ok=True)
    contract = build_contract(ckpt, export_format=fmt, params=count_parameters(model),
                              opset=OPSET if fmt == "onnx" else None)
    path = out / FILE_NAMES[fmt]
    _say(progress, f"exporting {ckpt['model']} ({len(ckpt['members'])} member(s)) as {fmt} -> {path}")
    if fmt == "onnx":
        export_onnx(model, path, in_channels=in_ch, window=window, n_rr=n_rr, contract=contract)
    else:
        export_torchscript(model, path, in_channels=in_ch, window=window, n_rr=n_rr, contract=contract)
    atomic_write_json(out / "contract.json", contract)

    beats = parts = None
    if parity_beats is not None:
        x, rr = _load_npz(parity_beats, in_ch, window, n_rr)
        what = f"the beats of {parity_beats}"
    else:
        try:
            from ecgnas.data import DataSpec

            beats, parts = load_data(DataSpec.from_config(ckpt, prep, data), progress=progress)
        except UserError as e:
            if int8:
                raise UserError(f"--int8 needs the run's prepared beats (DS1 calibration, DS2 report): {e}") from None
            _say(progress, f"note: no prepared beats ({e}); parity on {FALLBACK_BEATS} seeded random inputs instead")
        if beats is not None:
            if beats.window != window or beats.in_channels != in_ch:
                raise UserError(f"{ckpt_path}: model expects {in_ch} x {window} inputs, the data has "
                                f"{beats.in_channels} x {beats.window}")
            idx = np.sort(np.concatenate([parts["train"], parts["val"], parts["test"]]))
            x, rr = _x(beats, idx), np.asarray(beats.rr[idx], np.float32)
            what = "all DS1 and DS2 beats" if ckpt["split"] == "inter" else "all beats of the split"
        else:
            x, rr = _fallback(in_ch, window, n_rr)
            what = f"{FALLBACK_BEATS} seeded random inputs (fallback: no prepared beats)"
    _say(progress, f"parity check on {len(x)} beats ({what})")
    try:
        parity = check_parity(TorchRunner(model, threads), runner_for(path, fmt, threads), x, rr, what=str(path))
    except ParityError:  # a file that does not reproduce the checkpoint is not left behind
        path.unlink(missing_ok=True)
        (out / "contract.json").unlink(missing_ok=True)
        raise
    if not int8:  # an int8 file of an earlier export would not match this one
        (out / INT8_NAME).unlink(missing_ok=True)
    files = {path.name: {"format": fmt, "bytes": file_size(path)}}
    report = {"run": str(run), "model": ckpt["model"], "members": len(ckpt["members"]), "format": fmt,
              "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "files": files, "parity": parity, "parity_beats": {"what": what, "n": int(len(x))}}

    if int8:
        report["int8"] = _int8(path, out / INT8_NAME, beats, parts, threads, progress)
        files[INT8_NAME] = {"format": "onnx int8", "bytes": file_size(out / INT8_NAME)}
    if fmt == "onnx" and latency_repeats:
        from ecgnas.export.latency import latency_grid, machine

        report["machine"] = machine()
        report["latency"] = {}
        for name in [path.name] + ([INT8_NAME] if int8 else []):
            _say(progress, f"latency of {name} (onnxruntime, 1 and 2 threads, batch 1 and 256)")
            report["latency"][name] = latency_grid(out / name, in_channels=in_ch, window=window, n_rr=n_rr,
                                                   repeats=int(latency_repeats))
    elif fmt != "onnx":
        report["latency_note"] = "latency is measured for ONNX exports (onnxruntime) only"
    atomic_write_json(out / "export.json", report)
    write_model_card(run, out, report)
    return report


def _int8(float_path: Path, int8_path: Path, beats, parts, threads: int, progress: bool) -> dict:
    """Quantise (DS1 calibration), then both models' DS2 headline metrics and their label agreement."""
    from ecgnas.export.graph import file_size
    from ecgnas.export.quantize import calibration_indices, quantize_int8
    from ecgnas.export.runners import OnnxRunner
    from ecgnas.evaluate import headline
    from ecgnas.metrics import metrics_json

    ds1 = np.sort(np.concatenate([parts["train"], parts["val"]]))
    cal = calibration_indices(beats.y, ds1)
    _say(progress, f"int8: calibrating on {len(cal)} DS1 beats -> {int8_path}")
    quantize_int8(float_path, int8_path, _x(beats, cal), beats.rr[cal])
    te = parts["test"]
    x, rr, y, rec = _x(beats, te), np.asarray(beats.rr[te], np.float32), beats.y[te], beats.record[te]
    y_float = OnnxRunner(float_path, threads)(x, rr)[2]
    y_int8 = OnnxRunner(int8_path, threads)(x, rr)[2]
    return {"calibration": f"{len(cal)} DS1 beats, stratified by class (seed 0); DS2 not used",
            "float_bytes": file_size(float_path), "int8_bytes": file_size(int8_path),
            "ds2_float": headline(metrics_json(y, y_float, rec)), "ds2_int8": headline(metrics_json(y, y_int8, rec)),
            "agreement_with_float_ds2": float((y_float == y_int8).mean()), "n_ds2": int(len(te))}
