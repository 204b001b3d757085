"""Evaluators: turn an architecture into a :class:`Result`.

An evaluator is any callable ``evaluator(arch) -> Result``. It knows nothing of strategies
or executors. ``Result.score`` is the one number strategies maximise (validation accuracy on a
benchmark, hold-out macro-F1 for ECG); ``metrics`` carries everything else worth recording, and
``cost`` the (real or simulated) seconds the evaluation took.

>>> from nascore.spaces import get_space
>>> space = get_space("nb201")
>>> ev = TabularEvaluator(space, table)             # doctest: +SKIP
>>> ev(space.from_string("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"))  # doctest: +SKIP
Result(score=90.769333, metrics={'valid_accuracy': 90.769333, 'test_accuracy': 93.66, ...}, cost=2169.641)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

from nascore.arch import Arch


@dataclass
class Result:
    """One evaluation. A non-finite ``score`` (NaN, ±inf) is a failed evaluation: strategies
    skip it, run folders record it as ``null`` and never pick it as the best.

    >>> Result(score=float("nan")).to_dict()["score"] is None
    True
    >>> Result.from_dict({"score": None}).failed
    True
    """

    score: float
    metrics: dict = field(default_factory=dict)
    cost: float = 0.0

    @property
    def failed(self) -> bool:
        """True when the score is not a finite number (a failed evaluation)."""
        return not is_score(self.score)

    def to_dict(self) -> dict:
        """``{"score", "metrics", "cost"}`` for a JSON record; a failed score is ``None``."""
        return {"score": None if self.failed else self.score, "metrics": self.metrics, "cost": self.cost}

    @classmethod
    def from_dict(cls, d: dict) -> "Result":
        """The inverse of :meth:`to_dict`: a ``None`` score (a failed evaluation) reads back as NaN."""
        score = d["score"]
        return cls(math.nan if score is None else float(score), dict(d.get("metrics", {})),
                   float(d.get("cost", 0.0)))


def is_score(value) -> bool:
    """True for a usable score: a finite real number (not None, NaN, ±inf or a bool)."""
    try:
        return not isinstance(value, bool) and math.isfinite(value)
    except TypeError:
        return False


class Evaluator(Protocol):
    def __call__(self, arch: Arch) -> Result: ...


class TabularEvaluator:
    """Look an architecture up in a tabular benchmark (e.g. :class:`~nascore.benchmarks.nb201.NB201Table`).

    ``score`` = the validation accuracy at the chosen fidelity; ``cost`` = the simulated training
    seconds (0 when the table has none). ``fidelity`` (a call argument) reads another of the
    table's epoch columns instead (a rung of a multi-fidelity search, :mod:`nascore.multifidelity`:
    NAS-Bench-201's ``valid_acc_12`` / ``valid_acc_200``, NAS-Bench-101's 4 / 12 / 36 / 108 epochs)."""

    def __init__(self, space, table, fidelity: int | None = None):
        self.space = space
        self.table = table
        self.fidelity = table.default_fidelity() if fidelity is None else fidelity
        table.signal_column(self.fidelity)  # validates the fidelity now, not mid-run

    def __call__(self, arch: Arch, fidelity: int | None = None) -> Result:
        q = self.table.query(self.space.to_string(arch), self.fidelity if fidelity is None else int(fidelity))
        cost = q.pop("cost_seconds")
        return Result(score=q["valid_accuracy"], metrics=q, cost=0.0 if cost is None else cost)
