"""NAS-Bench-201 / NATS-Bench topology space (Dong & Yang, ICLR 2020).

A cell has 4 nodes and 6 edges ``i -> j`` (``i < j``); each edge carries one of 5 operations,
so the space holds 5**6 = 15,625 cells. The official string lists the edges grouped by target
node: ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` (``op~i`` on edge ``i -> j`` for ``j = 1, 2, 3``).

Graph encoding (as arch2vec encodes this space, Yan et al. 2020, §4): the operations become
nodes. Node 0 is the cell input, nodes 1..6 are the six edge operations in string order and node
7 is the output. An operation on edge ``s -> t`` feeds every operation on an edge leaving ``t``
(or the output when ``t = 3``), and reads the input (``s = 0``) or every operation whose edge
ends at ``s``. The adjacency is therefore the same for all cells; only the labels change.

Identity: every string is its own benchmark entry (the table trained each one), so
:meth:`NB201Space.key` is the string. :meth:`NB201Space.equivalence_hash` additionally removes
``none`` operations and dead nodes before the isomorphism-invariant hash, so functionally
identical cells (15,625 strings -> fewer distinct computations) share it.

>>> s = NB201Space()
>>> a = s.from_string("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|")
>>> a.ops[1], s.size
('nor_conv_3x3', 15625)
"""

from __future__ import annotations

import itertools
from typing import Iterator

import numpy as np

from nascore.arch import Arch
from nascore.errors import UserError
from nascore.spaces.base import SearchSpace

OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: the six cell edges (source, target) in the order of the official string
EDGES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))


def _op_graph() -> np.ndarray:
    m = np.zeros((8, 8), np.int64)
    for a, (s, t) in enumerate(EDGES, start=1):
        if s == 0:
            m[0, a] = 1
        for b, (s2, t2) in enumerate(EDGES, start=1):
            if t2 == s:
                m[b, a] = 1
        if t == 3:
            m[a, 7] = 1
    return m


ADJACENCY = _op_graph()


def ops_string(ops) -> str:
    """The official string of six edge operations (string order), e.g.
    ``|nor_conv_3x3~0|+|none~0|skip_connect~1|+|...~0|...~1|...~2|``; no checking."""
    groups, k = [], 0
    for t in (1, 2, 3):
        groups.append("|" + "|".join(f"{ops[k + s]}~{s}" for s in range(t)) + "|")
        k += t
    return "+".join(groups)


def all_strings() -> frozenset[str]:
    """The 15,625 canonical strings of the space, by formatting alone (fast; no :class:`Arch`)."""
    return frozenset(ops_string(ops) for ops in itertools.product(OPS, repeat=6))


class NB201Space(SearchSpace):
    name = "nb201"
    node_labels = ("input",) + OPS + ("output",)
    max_nodes = 8

    # --- construction ---------------------------------------------------------------------
    def from_ops(self, ops) -> Arch:
        ops = tuple(ops)
        if len(ops) != 6 or any(o not in OPS for o in ops):
            raise UserError(f"nb201 needs 6 operations from {', '.join(OPS)}; got {list(ops)}")
        return Arch.from_numpy(ADJACENCY, ("input",) + ops + ("output",))

    def edge_ops(self, arch: Arch) -> tuple[str, ...]:
        return tuple(arch.ops[1:7])

    def sample(self, rng: np.random.Generator) -> Arch:
        return self.from_ops(OPS[k] for k in rng.integers(0, len(OPS), size=6))

    def mutate(self, arch: Arch, rng: np.random.Generator) -> Arch:
        ops = list(self.edge_ops(arch))
        e = int(rng.integers(6))
        choices = [o for o in OPS if o != ops[e]]
        ops[e] = choices[int(rng.integers(len(choices)))]
        return self.from_ops(ops)

    def crossover(self, a: Arch, b: Arch, rng: np.random.Generator) -> Arch:
        pick = rng.integers(0, 2, size=6)
        ea, eb = self.edge_ops(a), self.edge_ops(b)
        return self.from_ops(ea[k] if pick[k] == 0 else eb[k] for k in range(6))

    # --- identity ---------------------------------------------------------------------------
    def is_valid(self, arch: Arch) -> bool:
        return (arch.n_nodes == 8 and np.array_equal(arch.adjacency, ADJACENCY)
                and arch.ops[0] == "input" and arch.ops[7] == "output"
                and all(o in OPS for o in arch.ops[1:7]))

    def to_string(self, arch: Arch) -> str:
        self.validate(arch)
        return ops_string(self.edge_ops(arch))

    def from_string(self, text: str) -> Arch:
        text = text.strip()
        groups = text.split("+")
        if len(groups) != 3:
            raise UserError(f"malformed nb201 arch string {text!r}: expected 3 groups joined by '+'")
        ops = []
        for t, g in enumerate(groups, start=1):
            if not (g.startswith("|") and g.endswith("|")):
                raise UserError(f"malformed nb201 arch string {text!r}: group {g!r} must be |op~i|...|")
            parts = g[1:-1].split("|")
            if len(parts) != t:
                raise UserError(f"malformed nb201 arch string {text!r}: node {t} needs {t} inputs, got {len(parts)}")
            for s, p in enumerate(parts):
                op, _, src = p.partition("~")
                if src != str(s):
                    raise UserError(f"malformed nb201 arch string {text!r}: {p!r} should read from node {s}")
                if op not in OPS:
                    raise UserError(f"operation {op!r} is outside the nb201 space (choose from {', '.join(OPS)})")
                ops.append(op)
        return self.from_ops(ops)

    def equivalence_hash(self, arch: Arch) -> str:
        """Hash shared by functionally identical cells (``none`` and dead nodes removed)."""
        return arch.prune(drop_ops=("none",)).hash

    # --- finite space -------------------------------------------------------------------------
    @property
    def size(self) -> int:
        return len(OPS) ** 6

    def enumerate(self) -> Iterator[Arch]:
        for ops in itertools.product(OPS, repeat=6):
            yield self.from_ops(ops)

    def build_model(self, arch: Arch, **kwargs):
        """The NAS-Bench-201 CIFAR network of ``arch`` (:func:`nascore.models.build_nb201_net`;
        ``kwargs``: ``C``, ``N``, ``num_classes``)."""
        from nascore.models import build_nb201_net
        return build_nb201_net(self.validate(arch), **kwargs)

    def to_vector(self, arch: Arch) -> np.ndarray:
        """30-dim one-hot of the six edge operations (the adjacency is constant)."""
        v = np.zeros((6, len(OPS)), np.float32)
        for e, op in enumerate(self.edge_ops(arch)):
            v[e, OPS.index(op)] = 1
        return v.ravel()
