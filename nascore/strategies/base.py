"""The ask/tell :class:`Strategy` interface (as in Optuna's and Nevergrad's ask-and-tell APIs).

A strategy proposes architectures (:meth:`ask`) and learns from their results (:meth:`tell`);
it never evaluates anything itself, so the same strategy runs against a tabular benchmark, local
training or a cluster. Every strategy:

* draws all its randomness from ``numpy.random.default_rng(seed)``, so the sequence of asks is a
  function of the seed and of what it was told; a run folder is resumed by replaying its history
  into a fresh strategy (see :mod:`nascore.run`);
* never asks for an architecture it has asked for before (identity = ``space.key``);
* may be asked for several architectures before hearing back (batch / parallel evaluation).

>>> from nascore.spaces import get_space
>>> from nascore.strategies import get_strategy
>>> s = get_strategy("random", get_space("nb201"), seed=0)
>>> [a] = s.ask(1)
>>> s.tell([a], [Result(score=1.0)])
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Sequence

import numpy as np

from nascore.arch import Arch
from nascore.errors import UserError
from nascore.evaluation import Result
from nascore.validate import MAX_SEED, integer


class Strategy(ABC):
    #: name used on the command line (``--strategy``)
    name: str = ""
    #: allowed ranges of the numeric constructor parameters (``nascore.validate.Bounds``); the
    #: types come from the constructor's annotations (:func:`nascore.strategies.strategy_params`)
    param_bounds: dict = {}

    def __init__(self, space, seed: int = 0):
        self.space = space
        self.seed = integer(0, MAX_SEED).check("seed", seed)
        self.rng = np.random.default_rng(self.seed)
        self.seen: set[str] = set()

    @abstractmethod
    def ask(self, n: int = 1) -> list[Arch]:
        """Propose ``n`` architectures never proposed before."""

    @abstractmethod
    def tell(self, archs: Sequence[Arch], results: Sequence[Result]) -> None:
        """Report the results of architectures this strategy proposed."""

    # --- helpers shared by strategies ----------------------------------------------------------
    def _mark(self, arch: Arch) -> bool:
        """Record ``arch`` as proposed; False if it had been proposed already."""
        k = self.space.key(arch)
        if k in self.seen:
            return False
        self.seen.add(k)
        return True

    def _check_not_exhausted(self) -> None:
        size = self.space.size
        if size is not None and len(self.seen) >= size:
            raise UserError(f"the {self.space.name} space is exhausted: all {size} architectures were evaluated")

    def _sample_unseen(self, max_tries: int = 100_000) -> Arch:
        self._check_not_exhausted()
        for _ in range(max_tries):
            a = self.space.sample(self.rng)
            if self._mark(a):
                return a
        raise UserError(f"could not sample an unseen architecture in {max_tries} tries "
                        f"({len(self.seen)} seen in {self.space.name})")

    @staticmethod
    def _check_told(archs, results) -> None:
        if len(archs) != len(results):
            raise ValueError(f"tell() got {len(archs)} architectures but {len(results)} results")
