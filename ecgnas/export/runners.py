"""Run an exported classifier on beats, in batches: onnxruntime for ONNX, torch.jit for TorchScript.

Every runner is called as ``runner(x [n, C, L] float32, rr [n, R] float32)`` and returns
``(scores [n, K] float32, proba [n, K] float32, label [n] int64)`` as numpy arrays, the outputs of
:class:`ecgnas.export.graph.DeployModel`.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import torch

from nascore.errors import UserError


def _batches(n: int, batch: int):
    for i in range(0, n, batch):
        yield slice(i, min(n, i + batch))


def _stack(parts):
    if not parts:
        raise UserError("no beats to run the exported model on")
    return tuple(np.concatenate([p[i] for p in parts]) for i in range(3))


def ort_session(path: str | os.PathLike, threads: int = 1):
    """An onnxruntime CPU session on ``threads`` intra-op threads (one inter-op thread, sequential)."""
    from ecgnas.export import deps

    ort = deps.onnxruntime()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads)
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types for a bad file
        raise UserError(f"{path}: onnxruntime cannot load it ({str(e).splitlines()[0][:160]})") from None


class OnnxRunner:
    def __init__(self, path: str | os.PathLike, threads: int = 1, batch: int = 1024):
        self.session, self.batch = ort_session(path, threads), int(batch)

    def __call__(self, x: np.ndarray, rr: np.ndarray):
        x, rr = np.ascontiguousarray(x, np.float32), np.ascontiguousarray(rr, np.float32)
        out = [self.session.run(["scores", "proba", "label"], {"x": x[s], "rr": rr[s]})
               for s in _batches(len(x), self.batch)]
        return _stack(out)


class TorchScriptRunner:
    def __init__(self, path: str | os.PathLike, threads: int = 1, batch: int = 1024):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit's deprecation notice
            self.module = torch.jit.load(str(path), map_location="cpu").eval()
        self.batch, self.threads = int(batch), threads

    def __call__(self, x: np.ndarray, rr: np.ndarray):
        before = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            with torch.inference_mode():
                out = []
                for s in _batches(len(x), self.batch):
                    sc, p, y = self.module(torch.as_tensor(np.asarray(x[s], np.float32)),
                                           torch.as_tensor(np.asarray(rr[s], np.float32)))
                    out.append((sc.numpy(), p.numpy(), y.numpy()))
        finally:
            torch.set_num_threads(before)
        return _stack(out)


class TorchRunner:
    """The checkpoint's own model (the reference of the parity check), through the same wrapper."""

    def __init__(self, model: torch.nn.Module, threads: int = 1, batch: int = 1024):
        from ecgnas.export.graph import DeployModel

        self.module, self.batch, self.threads = DeployModel(model).eval().cpu(), int(batch), threads

    __call__ = TorchScriptRunner.__call__


def runner_for(path: str | os.PathLike, fmt: str, threads: int = 1):
    return OnnxRunner(path, threads) if fmt == "onnx" else TorchScriptRunner(path, threads)
