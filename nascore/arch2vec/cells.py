"""Single DARTS cells as a space of their own, for pretraining arch2vec as the paper does (on cells).

A DARTS genotype is two cells; arch2vec pretrains on single cells encoded as 11-node graphs
(:func:`nascore.spaces.darts.cell_to_arch`). :class:`DartsCellSpace` samples such cells uniformly
(per intermediate node two distinct inputs and an operation each), names them by the ``repr`` of
the canonical 8-pair list, and decides validity with :func:`~nascore.spaces.darts.arch_to_cell`.
It is infinite (about 1.04e9 canonical cells), so it is used for pretraining and quality figures,
not for searching. ``nascore arch2vec pretrain --space darts`` uses it.

:meth:`DartsCellSpace.sample_dense` draws many cells at once, vectorised, straight into the
compact dense layout of :mod:`nascore.arch2vec.vgae` (uint8 labels and adjacency) with their
canonical strings -- the same distribution as :meth:`~DartsCellSpace.sample` and the same
strings as :meth:`~DartsCellSpace.to_string`, without building an :class:`Arch` per cell
(600,000 cells, the released pretraining set's size, take a few seconds).

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

    def sample_dense(self, rng: np.random.Generator, n: int):
        """``(keys [n] str, codes [n] int64, ops [n, 11] uint8, adj [n, 11, 11] uint8)`` of ``n``
        random cells (not necessarily distinct; ``codes`` is an exact integer identity of the
        canonical cell, for de-duplication). Labels index :attr:`node_labels`."""
        d = self._d
        n_ops, nodes = len(d.OPS), d.CELL_NODES
        inp = np.empty((n, 2 * d.N_INTERMEDIATE), np.int64)
        opi = rng.integers(0, n_ops, size=(n, 2 * d.N_INTERMEDIATE))
        for i in range(d.N_INTERMEDIATE):  # two distinct inputs of node 2+i, uniformly, from 0..i+1
            a = rng.integers(0, i + 2, size=n)
            b = rng.integers(0, i + 1, size=n)
            b = b + (b >= a)
            swap = b < a  # canonical order: by input index
            inp[:, 2 * i] = np.where(swap, b, a)
            inp[:, 2 * i + 1] = np.where(swap, a, b)
            o0, o1 = opi[:, 2 * i].copy(), opi[:, 2 * i + 1].copy()
            opi[:, 2 * i] = np.where(swap, o1, o0)
            opi[:, 2 * i + 1] = np.where(swap, o0, o1)
        codes = np.zeros(n, np.int64)
        for k in range(2 * d.N_INTERMEDIATE):
            codes = codes * (n_ops * 6) + opi[:, k] * 6 + inp[:, k]
        ops = np.empty((n, nodes), np.uint8)
        ops[:, 0], ops[:, 1], ops[:, -1] = 0, 1, len(self.node_labels) - 1
        ops[:, 2:-1] = opi + 2
        adj = np.zeros((n, nodes, nodes), np.uint8)
        rows = np.arange(n)
        for k in range(2 * d.N_INTERMEDIATE):
            node, j = 2 + k, inp[:, k]
            direct = j < 2
            adj[rows[direct], j[direct], node] = 1
            src = 2 + 2 * (j[~direct] - 2)
            adj[rows[~direct], src, node] = 1
            adj[rows[~direct], src + 1, node] = 1
            adj[:, node, nodes - 1] = 1
        text = [f"({o!r}, " for o in d.OPS]
        keys = ["[" + ", ".join(f"{text[o]}{j})" for o, j in zip(orow, irow)) + "]"
                for orow, irow in zip(opi.tolist(), inp.tolist())]
        return keys, codes, ops, adj

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
