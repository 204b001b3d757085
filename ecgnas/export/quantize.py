"""Post-training int8 quantisation with onnxruntime, calibrated on DS1 beats only.

:func:`quantize_int8` first runs onnxruntime's quantisation pre-processing
(``quant_pre_process``: symbolic shape inference and onnxruntime's basic graph optimisations, so
the quantiser sees every tensor's shape and a simplified graph), then ``onnxruntime.quantization.quantize_static``: QDQ format, int8 weights (per
output channel, symmetric) and **uint8** activations whose ranges are the min/max over the
calibration beats (:data:`CALIBRATION_BEATS` DS1 beats drawn by :func:`calibration_indices`,
stratified so every class that DS1 has is in it).

Why these choices (measured, ``benchmarks/RESULTS.md`` "int8 formats"): with int8 activations
onnxruntime's x86 kernels take a slower path than the uint8 x int8 one (``VPDPBUSD`` on
AVX512-VNNI), and the earlier setting (no pre-processing, int8 activations) was slower than the
float model. ``activations="int8"`` keeps it available. On x86 CPUs *without*
VNNI, uint8 x int8 products can saturate (onnxruntime's quantisation notes); the parity and DS2
figures that ``ecgnas export --int8`` reports are the check. Only the convolutions, matrix products and linear layers are
quantised (:data:`QUANTISED_OPS`); the decision head (ensemble mean, softmax, offsets, argmax)
stays float. The contract metadata is copied onto the int8 file, with ``quantisation`` added.

The calibration beats must come from DS1: DS2 is where the int8 model is reported, never where its
ranges are chosen (:func:`calibration_indices` refuses indices outside the given pool).
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from nascore.errors import UserError
from nascore.io import atomic_write_bytes

CALIBRATION_BEATS = 2048
QUANTISED_OPS = ("Conv", "MatMul", "Gemm")


def calibration_indices(y: np.ndarray, pool: np.ndarray, n: int = CALIBRATION_BEATS, seed: int = 0) -> np.ndarray:
    """``n`` indices from ``pool`` (DS1 beat indices): up to ``n // 8`` of each class that is not N,
    the rest N, drawn with a fixed seed; sorted.

    >>> y = np.array([0] * 100 + [1] * 5)
    >>> idx = calibration_indices(y, np.arange(105), n=16); len(idx), int((y[idx] == 1).sum())
    (16, 2)
    """
    pool = np.asarray(pool, dtype=np.int64)
    if pool.size == 0:
        raise UserError("int8 calibration: no DS1 beats")
    rng = np.random.default_rng(seed)
    y = np.asarray(y)
    picked = []
    for c in np.unique(y[pool]):
        if c == 0:
            continue
        members = pool[y[pool] == c]
        picked.append(rng.choice(members, min(len(members), max(1, n // 8)), replace=False))
    rest = n - sum(len(p) for p in picked)
    normal = pool[y[pool] == 0]
    if rest > 0 and normal.size:
        picked.append(rng.choice(normal, min(rest, normal.size), replace=False))
    idx = np.sort(np.concatenate(picked)) if picked else pool[:0]
    return idx[:n] if len(idx) <= n else np.sort(rng.choice(idx, n, replace=False))


ACTIVATIONS = ("uint8", "int8")


def quantize_int8(float_path: str | os.PathLike, int8_path: str | os.PathLike, x: np.ndarray, rr: np.ndarray,
                  batch: int = 256, per_channel: bool = True, activations: str = "uint8",
                  preprocess: bool = True) -> None:
    """Write the int8 model of ``float_path`` to ``int8_path``, calibrated on ``x``, ``rr`` (DS1 beats).

    ``activations``: ``"uint8"`` (default, asymmetric) or ``"int8"``; ``preprocess``: run
    ``quant_pre_process`` first."""
    if activations not in ACTIVATIONS:
        raise UserError(f"int8 activations={activations!r}: choose from {', '.join(ACTIVATIONS)}")
    from ecgnas.export import deps
    from ecgnas.export.contract import read_onnx_contract, set_onnx_metadata

    onnx = deps.onnx()
    q = deps.require("onnxruntime.quantization", "int8 quantisation")
    x, rr = np.ascontiguousarray(x, np.float32), np.ascontiguousarray(rr, np.float32)
    if len(x) == 0:
        raise UserError("int8 calibration: no beats")
    feeds = iter([{"x": x[i:i + batch], "rr": rr[i:i + batch]} for i in range(0, len(x), batch)])

    class Reader(q.CalibrationDataReader):
        def get_next(self):
            return next(feeds, None)

    contract = read_onnx_contract(float_path)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quantize_static's advice to run its pre-processing, on the root logger
    try:
        with tempfile.TemporaryDirectory() as tmp:
            src, out = Path(float_path), Path(tmp) / "int8.onnx"
            if preprocess:
                from onnxruntime.quantization.shape_inference import quant_pre_process

                src = Path(tmp) / "pre.onnx"
                quant_pre_process(str(float_path), str(src))
            act = q.QuantType.QUInt8 if activations == "uint8" else q.QuantType.QInt8
            q.quantize_static(str(src), str(out), Reader(), quant_format=q.QuantFormat.QDQ,
                              activation_type=act, weight_type=q.QuantType.QInt8,
                              per_channel=per_channel, op_types_to_quantize=list(QUANTISED_OPS),
                              calibrate_method=q.CalibrationMethod.MinMax,
                              extra_options={"ActivationSymmetric": False, "WeightSymmetric": True})
            proto = onnx.load(str(out))
    finally:
        root.setLevel(level)
    contract = {**contract, "quantisation": {
        "method": ("onnxruntime quant_pre_process, then " if preprocess else "onnxruntime ")
                  + f"quantize_static, QDQ, {activations} activations (asymmetric) and int8 weights "
                  f"({'per channel' if per_channel else 'per tensor'}, symmetric), MinMax calibration",
        "ops": list(QUANTISED_OPS), "calibration": f"{len(x)} DS1 beats (stratified by class, seed 0)"}}
    set_onnx_metadata(proto, contract)
    atomic_write_bytes(int8_path, proto.SerializeToString())
