"""What a model costs on hardware: FLOPs per forward pass and measured CPU latency.

Used for every evaluated candidate and final model of an ECG search (:mod:`ecgnas.evaluator`,
:mod:`ecgnas.search`) and by the ``ecg-cell`` cost and latency tables (:mod:`ecgnas.spaces.conv1d`).

* :func:`count_flops` -- what :class:`torch.utils.flop_counter.FlopCounterMode` counts for one
  forward pass: convolutions, linear layers and matrix products at 2 FLOPs per multiply-add
  (normalisation, activations, pooling and element-wise products are not counted);
* :func:`measure_latency_ms` -- median CPU wall time of one forward pass (eval mode, inference mode,
  after warm-up, on a given number of threads);
* :func:`cpu_model` -- the CPU's name, for keying measured tables.
"""

from __future__ import annotations

import platform
import statistics
import time
from pathlib import Path

import torch
from torch import nn

from nascore.errors import UserError


def count_flops(module: nn.Module, *inputs: torch.Tensor) -> int:
    """FLOPs of one forward pass as :class:`~torch.utils.flop_counter.FlopCounterMode` counts them.

    >>> count_flops(nn.Linear(3, 2), torch.zeros(1, 3))
    12
    """
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        module(*inputs)
    return int(fc.get_total_flops())


def _median_ms(fn, module: nn.Module, threads: int, repeats: int, warmup: int) -> float:
    """Median wall time (ms) of ``fn()`` with ``module`` in eval mode under inference mode, after
    ``warmup`` calls, on ``threads`` torch threads; thread count and training flag restored."""
    for name, v in (("threads", threads), ("repeats", repeats)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise UserError(f"latency {name}={v!r} must be an integer >= 1")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise UserError(f"latency warmup={warmup!r} must be an integer >= 0")
    before, was_training = torch.get_num_threads(), module.training
    torch.set_num_threads(threads)
    module.eval()
    try:
        with torch.inference_mode():
            for _ in range(warmup):
                fn()
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t0)
    finally:
        torch.set_num_threads(before)
        module.train(was_training)
    return 1000.0 * statistics.median(times)


def measure_latency_ms(model: nn.Module, in_channels: int = 1, window: int = 252, n_rr: int = 4, batch: int = 1,
                       threads: int = 1, repeats: int = 30, warmup: int = 5) -> float:
    """Median CPU wall time (ms) of ``model(x [batch, in_channels, window], rr [batch, n_rr])`` in eval
    and inference mode after ``warmup`` passes, on ``threads`` torch threads (the previous thread
    count and the model's training flag are restored). Inputs are seeded random CPU tensors.

    >>> class Tiny(nn.Module):
    ...     def forward(self, x, rr):
    ...         return x.mean(-1) + rr[:, :1]
    >>> measure_latency_ms(Tiny(), repeats=3, warmup=1) > 0
    True
    """
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise UserError(f"latency batch={batch!r} must be an integer >= 1")
    g = torch.Generator().manual_seed(0)
    x, rr = torch.randn(batch, in_channels, window, generator=g), torch.randn(batch, n_rr, generator=g)
    return _median_ms(lambda: model(x, rr), model, threads, repeats, warmup)


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``, else :func:`platform.processor`)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"
