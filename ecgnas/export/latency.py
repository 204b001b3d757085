"""Measured onnxruntime latency of an exported classifier on this CPU.

:func:`measure` times ``session.run`` on a batch of seeded random beats of the model's input shape
(the time does not depend on the values): ``warmup`` untimed runs, then ``repeats`` timed ones;
it reports the median and the 95th percentile (ms per call) and the throughput (beats per second
at the median). :func:`latency_grid` does so for each batch size and intra-op thread count. On a
loaded machine the figures include waiting for a core; the report says how loaded it was
(``os.getloadavg``).
"""

from __future__ import annotations

import os
import time

import numpy as np

from nascore.errors import UserError

BATCHES = (1, 256)
THREADS = (1, 2)


def measure(path: str | os.PathLike, *, in_channels: int, window: int, n_rr: int, batch: int = 1, threads: int = 1,
            repeats: int = 200, warmup: int = 20, session=None) -> dict:
    """Median / p95 ms per call and beats per second of ``path`` at ``batch`` on ``threads`` threads."""
    from ecgnas.export.runners import ort_session

    for name, v in (("batch", batch), ("threads", threads), ("repeats", repeats)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise UserError(f"latency {name}={v!r} must be an integer >= 1")
    sess = session or ort_session(path, threads)
    rng = np.random.default_rng(0)
    feed = {"x": rng.standard_normal((batch, in_channels, window)).astype(np.float32),
            "rr": (1 + 0.1 * rng.standard_normal((batch, n_rr))).astype(np.float32)}
    for _ in range(warmup):
        sess.run(["label"], feed)
    times = np.empty(repeats)
    for i in range(repeats):
        t0 = time.perf_counter()
        sess.run(["label"], feed)
        times[i] = time.perf_counter() - t0
    med = float(np.median(times)) * 1000
    return {"batch": batch, "threads": threads, "repeats": repeats, "median_ms": med,
            "p95_ms": float(np.percentile(times, 95)) * 1000, "throughput_beats_per_s": batch / (med / 1000)}


def latency_grid(path: str | os.PathLike, *, in_channels: int, window: int, n_rr: int, batches=BATCHES,
                 threads=THREADS, repeats: int = 200, warmup: int = 20) -> list[dict]:
    """:func:`measure` for every batch size and thread count; batches of more than one beat get
    ``max(10, repeats // 10)`` repeats (each call is that much longer)."""
    out = []
    for t in threads:
        from ecgnas.export.runners import ort_session

        sess = ort_session(path, t)
        for b in batches:
            r = repeats if b == 1 else max(10, repeats // 10)
            out.append(measure(path, in_channels=in_channels, window=window, n_rr=n_rr, batch=b, threads=t,
                               repeats=r, warmup=warmup if b == 1 else max(2, warmup // 10), session=sess))
    return out


def machine() -> dict:
    """The CPU, core count and load average at measurement time."""
    from ecgnas.export import deps
    from ecgnas.hardware import cpu_model

    onnxruntime = deps.onnxruntime()

    try:
        load = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        load = None
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "loadavg_1_5_15": load,
            "onnxruntime": onnxruntime.__version__}


def model_latency_ms(model, *, in_channels: int, window: int, n_rr: int, batch: int = 1, threads: int = 1,
                     repeats: int = 50, warmup: int = 10) -> float:
    """Median onnxruntime latency (ms per call) of an in-memory model: exported to a temporary ONNX
    file (:func:`ecgnas.export.graph.export_onnx`) and timed by :func:`measure`. ``ecgnas search
    --latency-source onnxruntime`` measures every candidate with it (:mod:`ecgnas.evaluator`)."""
    import tempfile
    from pathlib import Path

    from ecgnas.export.graph import export_onnx

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        export_onnx(model, path, in_channels=in_channels, window=window, n_rr=n_rr)
        return measure(path, in_channels=in_channels, window=window, n_rr=n_rr, batch=batch, threads=threads,
                       repeats=repeats, warmup=warmup)["median_ms"]
