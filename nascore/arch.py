"""An architecture as a directed acyclic graph of operations.

:class:`Arch` is the one representation every space, encoder, predictor and strategy shares:
an adjacency matrix in topological order (``matrix[i][j] == 1`` is an edge ``i -> j``, only
``i < j``) and one operation label per node. Spaces decide what the nodes mean (NAS-Bench-101:
operations on nodes; NAS-Bench-201 and DARTS: the edge operations turned into nodes, as arch2vec
encodes them) and give each architecture its canonical string.

:meth:`Arch.hash` is invariant to isomorphism: it is a Weisfeiler-Lehman-style colour refinement
(as used to deduplicate NAS-Bench-101, Ying et al. 2019, §2.2): every node starts from
(label, in-degree, out-degree), then ``n`` times takes the hash of its own colour with the sorted
colours of its predecessors and of its successors; the graph hash is the hash of the sorted node
colours. Relabelling the nodes never changes it; two non-isomorphic graphs can in principle
collide, which :mod:`nascore.spaces.nb101` rules out for its space with an exact canonical form.

>>> a = Arch.from_edges(3, [(0, 1), (1, 2)], ["input", "conv3x3", "output"])
>>> a.n_nodes, a.edges
(3, [(0, 1), (1, 2)])
>>> a.hash == Arch.from_edges(3, [(0, 1), (1, 2)], ["input", "conv3x3", "output"]).hash
True
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from typing import Iterable, Sequence

import numpy as np


def _h(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


@dataclass(frozen=True)
class Arch:
    """A DAG of operations: ``matrix`` (n x n, upper-triangular 0/1 tuples) and ``ops`` (n labels)."""

    matrix: tuple[tuple[int, ...], ...]
    ops: tuple[str, ...]

    def __post_init__(self):
        n = len(self.ops)
        if len(self.matrix) != n or any(len(r) != n for r in self.matrix):
            raise ValueError(f"adjacency must be {n}x{n} for {n} ops")
        for i in range(n):
            for j in range(i + 1):
                if self.matrix[i][j]:
                    raise ValueError(f"edge {i}->{j} is not forward: the matrix must be strictly upper-triangular")

    # construction ------------------------------------------------------------------------
    @classmethod
    def from_numpy(cls, matrix, ops: Sequence[str]) -> "Arch":
        m = np.asarray(matrix, dtype=np.int64)
        return cls(tuple(tuple(int(v != 0) for v in row) for row in m), tuple(ops))

    @classmethod
    def from_edges(cls, n: int, edges: Iterable[tuple[int, int]], ops: Sequence[str]) -> "Arch":
        m = np.zeros((n, n), dtype=np.int64)
        for i, j in edges:
            m[i, j] = 1
        return cls.from_numpy(m, ops)

    # views -------------------------------------------------------------------------------
    @property
    def n_nodes(self) -> int:
        return len(self.ops)

    @cached_property
    def adjacency(self) -> np.ndarray:
        return np.array(self.matrix, dtype=np.int64).reshape(self.n_nodes, self.n_nodes)

    @property
    def edges(self) -> list[tuple[int, int]]:
        return [(i, j) for i in range(self.n_nodes) for j in range(self.n_nodes) if self.matrix[i][j]]

    @property
    def n_edges(self) -> int:
        return int(self.adjacency.sum())

    # graph algorithms --------------------------------------------------------------------
    def prune(self, drop_ops: Iterable[str] = ()) -> "Arch":
        """Remove nodes labelled in ``drop_ops`` (e.g. ``none``), then every node that is not on a
        path from node 0 (the input) to node ``n-1`` (the output). Returns the pruned graph; an
        input disconnected from the output yields the 2-node graph ``input -> output`` with no edge.
        """
        m = self.adjacency.copy()
        n = self.n_nodes
        drop = set(drop_ops)
        for k, op in enumerate(self.ops):
            if op in drop:
                m[k, :] = 0
                m[:, k] = 0
        fwd = np.zeros(n, bool)
        fwd[0] = True
        for j in range(1, n):
            fwd[j] = bool((m[:j, j] * fwd[:j]).any())
        bwd = np.zeros(n, bool)
        bwd[n - 1] = True
        for i in range(n - 2, -1, -1):
            bwd[i] = bool((m[i, i + 1:] * bwd[i + 1:]).any())
        keep = fwd & bwd
        keep[0] = keep[n - 1] = True
        idx = np.flatnonzero(keep)
        return Arch.from_numpy(m[np.ix_(idx, idx)], [self.ops[k] for k in idx])

    @cached_property
    def hash(self) -> str:
        """Isomorphism-invariant hex digest (WL colour refinement, see module docstring)."""
        m = self.adjacency
        n = self.n_nodes
        preds = [np.flatnonzero(m[:, k]) for k in range(n)]
        succs = [np.flatnonzero(m[k, :]) for k in range(n)]
        col = [_h(f"{self.ops[k]}|{len(preds[k])}|{len(succs[k])}") for k in range(n)]
        for _ in range(n):
            col = [
                _h(col[k] + "<" + "".join(sorted(col[p] for p in preds[k])) + ">"
                   + "".join(sorted(col[s] for s in succs[k])))
                for k in range(n)
            ]
        return _h("".join(sorted(col)))

    def permute(self, order: Sequence[int]) -> "Arch":
        """Relabel nodes: new node ``i`` is old node ``order[i]``; ``order`` must stay topological."""
        order = list(order)
        m = self.adjacency[np.ix_(order, order)]
        return Arch.from_numpy(m, [self.ops[k] for k in order])

    def __str__(self) -> str:  # readable, not canonical: spaces give canonical strings
        rows = ["".join(map(str, r)) for r in self.matrix]
        return f"Arch(ops={list(self.ops)}, matrix={rows})"
