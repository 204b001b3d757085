"""The exported graph and its writers (ONNX through ``torch.onnx``, TorchScript through ``torch.jit``).

:class:`DeployModel` wraps what ``ecgnas evaluate`` runs -- a single model, or an
:class:`ecgnas.ensemble.EnsembleModel` (mean of member probabilities + decision offsets) -- so the
exported file holds the whole decision path and returns three outputs:

* ``scores`` ``[B, K]``: what the checkpoint's model returns (logits; log mean probability +
  offsets for an ensemble or a model with offsets);
* ``proba`` ``[B, K]``: ``softmax(scores)``, the probabilities ``ecgnas evaluate`` takes the argmax of;
* ``label`` ``[B]`` int64: ``argmax(scores)`` (first index on ties, as torch and onnxruntime agree).

The ONNX file is written by the TorchScript-based exporter (``torch.onnx.export(dynamo=False)``,
opset :data:`OPSET`; it needs no ``onnxscript``) with a dynamic batch axis. A model that ignores
its RR features (``kachuee`` / ``acharya`` without ``use_rr``) still gets the ``rr`` input, unused,
so every exported classifier has the same two inputs.

>>> import torch
>>> from ecgnas.models.linear import LinearRR
>>> s, p, y = DeployModel(LinearRR(window=8, n_rr=5, in_channels=2))(torch.zeros(3, 2, 8), torch.zeros(3, 5))
>>> s.shape, p.shape, y.dtype
(torch.Size([3, 5]), torch.Size([3, 5]), torch.int64)
"""

from __future__ import annotations

import io
import json
import os
import warnings
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from nascore.errors import UserError
from nascore.io import atomic_write_bytes

OPSET = 17
INPUTS = ("x", "rr")
OUTPUTS = ("scores", "proba", "label")


class DeployModel(nn.Module):
    """``model(x, rr)`` -> ``(scores, softmax(scores), argmax(scores))``, all float32 / int64."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, rr: torch.Tensor):
        scores = self.model(x, rr).float()
        return scores, torch.softmax(scores, dim=1), torch.argmax(scores, dim=1)


def _example(in_channels: int, window: int, n_rr: int, batch: int = 2):
    g = torch.Generator().manual_seed(0)
    return torch.randn(batch, in_channels, window, generator=g), torch.randn(batch, n_rr, generator=g)


def export_onnx(model: nn.Module, path: str | os.PathLike, *, in_channels: int, window: int, n_rr: int,
                contract: Mapping[str, Any] | None = None, opset: int = OPSET) -> None:
    """Write ``DeployModel(model)`` as ONNX to ``path`` (atomically), the contract in its metadata."""
    from ecgnas.export import deps
    from ecgnas.export.contract import set_onnx_metadata

    onnx = deps.onnx()
    net = DeployModel(model).eval().cpu()
    buf = io.BytesIO()
    dyn = {"x": {0: "batch"}, "rr": {0: "batch"}, "scores": {0: "batch"}, "proba": {0: "batch"}, "label": {0: "batch"}}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the exporter's deprecation and tracer warnings
        torch.onnx.export(net, _example(in_channels, window, n_rr), buf, dynamo=False, input_names=list(INPUTS),
                          output_names=list(OUTPUTS), dynamic_axes=dyn, opset_version=opset, do_constant_folding=True)
    proto = onnx.load_from_string(buf.getvalue())
    _ensure_rr_input(proto, n_rr)
    if contract is not None:
        set_onnx_metadata(proto, contract)
    proto.producer_name = "ecgnas"
    onnx.checker.check_model(proto)
    atomic_write_bytes(path, proto.SerializeToString())


def _ensure_rr_input(proto, n_rr: int) -> None:
    """Add the ``rr`` graph input where the exporter dropped it (a model that ignores RR features)."""
    from onnx import TensorProto, helper

    names = [i.name for i in proto.graph.input]
    if "rr" not in names:
        proto.graph.input.append(helper.make_tensor_value_info("rr", TensorProto.FLOAT, ["batch", int(n_rr)]))


def export_torchscript(model: nn.Module, path: str | os.PathLike, *, in_channels: int, window: int, n_rr: int,
                       contract: Mapping[str, Any] | None = None) -> None:
    """Write ``DeployModel(model)`` traced with ``torch.jit.trace`` to ``path`` (atomically); the
    contract is the extra file ``contract.json`` (:func:`read_torchscript_contract`)."""
    net = DeployModel(model).eval().cpu()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(net, _example(in_channels, window, n_rr), check_trace=False)
        buf = io.BytesIO()
        extra = {"contract.json": json.dumps(dict(contract or {}), sort_keys=True)}
        torch.jit.save(traced, buf, _extra_files=extra)  # deprecated in favour of torch.export, still supported
    atomic_write_bytes(path, buf.getvalue())


def read_torchscript_contract(path: str | os.PathLike) -> dict:
    """The contract stored in a TorchScript file written by :func:`export_torchscript`."""
    extra = {"contract.json": ""}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except (RuntimeError, OSError, ValueError) as e:
        raise UserError(f"{path}: cannot read TorchScript model ({str(e).splitlines()[0][:120]})") from None
    if not extra["contract.json"]:
        raise UserError(f"{path}: no contract.json inside (not exported by ecgnas export)")
    return json.loads(extra["contract.json"])


def file_size(path: str | os.PathLike) -> int:
    return Path(path).stat().st_size
