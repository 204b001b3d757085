"""Single DARTS cells as a space of their own, for pretraining arch2vec as the paper does (on cells).

A DARTS genotype is two cells; arch2vec pretrains on single cells encoded as 11-node graphs
(:func:`nascore.spaces.darts.cell_to_arch`). :class:`DartsCellSpace` samples such cells uniformly
(per intermediate node two distinct inputs and an operation each), names them by the ``repr`` of
the canonical 8-pair list, and decides validity with :func:`~nascore.spaces.darts.arch_to_cell`.
It is infinite (about 1.04e9 canonical cells), so it is used for pretraining and quality figures,
not for searching. ``nascore arch2vec pretrain --space darts`` uses it.

>>> import numpy as np
>>> s = DartsCellSpace()
>>> a = s.sample(np.random.default_rng(0))
>>> a.n_nodes, s.is_valid(a), s.from_string(s.to_string(a)) == a
(11, True, True)
"""

from __future__ import annotations

import ast

import numpy as np

from nascore.arch import Arch
from nascore.errors import UserError
from nascore.spaces.base import SearchSpace


class DartsCellSpace(SearchSpace):
    name = "darts-cell"

    def __init__(self):
        from nascore.spaces import darts

        self._d = darts
        self.node_labels = darts.CELL_LABELS
        self.max_nodes = darts.CELL_NODES
        self._genotypes = darts.DartsSpace()

    def sample(self, rng: np.random.Generator) -> Arch:
        return self._d.cell_to_arch(self._genotypes._sample_cell(rng))

    def mutate(self, arch: Arch, rng: np.random.Generator) -> Arch:
        """Change the operation of one random pair (always a different valid cell)."""
        cell = list(self._d.arch_to_cell(arch))
        k = int(rng.integers(len(cell)))
        op, j = cell[k]
        choices = [o for o in self._d.OPS if o != op]
        cell[k] = (choices[int(rng.integers(len(choices)))], j)
        return self._d.cell_to_arch(cell)

    def crossover(self, a: Arch, b: Arch, rng: np.random.Generator) -> Arch:
        ca, cb = self._d.arch_to_cell(a), self._d.arch_to_cell(b)
        pick = rng.integers(0, 2, size=len(ca) // 2)
        return self._d.cell_to_arch([p for i in range(len(pick)) for p in (ca, cb)[pick[i]][2 * i:2 * i + 2]])

    def is_valid(self, arch: Arch) -> bool:
        try:
            self._d.arch_to_cell(arch)
        except UserError:
            return False
        return True

    def to_string(self, arch: Arch) -> str:
        self.validate(arch)
        return repr([tuple(p) for p in self._d.canonical_cell(self._d.arch_to_cell(arch))])

    def from_string(self, text: str) -> Arch:
        try:
            cell = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError):
            raise UserError(f"malformed DARTS cell string {text[:60]!r}: expected a list of (op, input) pairs") from None
        return self._d.cell_to_arch(self._d.validate_cell(cell, "DARTS cell string"))
