"""Path-based "hard" encoding of a cell and distances on it (BANANAS, White, Neiswanger & Savani,
AAAI 2021, §3; the hard encoder of DCL-ENAS, Zhang, Gong, Chen & Zhang 2025, §3.2).

A cell is a DAG of labelled nodes (:class:`~nascore.arch.Arch`). Information flows along the
*paths* from the input to the output; a path is identified by the labels of the nodes it passes
through (interior nodes only, input and output excluded), so two cells that differ only by a
relabelling of their nodes (isomorphic cells) have the same multiset of paths.

Which paths
    ``endpoints="first-last"`` (NAS-Bench-101, NAS-Bench-201): paths from node 0 (input) to the
    last node (output), the brief's definition. Spaces whose graphs have several sources and
    sinks (the DARTS genotype graph: two cells, four input markers, two output nodes) use
    ``"sources-sinks"``: every path from a node without predecessors to a node without
    successors, and the path's key then also holds the source and sink labels (so a normal-cell
    path differs from a reduction-cell path). ``"auto"`` (default) picks ``first-last`` unless a
    sampled cell of the space has no first-to-last path.
    Nodes labelled in ``drop_ops`` (default ``("none",)``: the zero operation) carry no
    information and break every path through them, so a cell and its pruned form have the same
    encoding.

Canonical index of a path
    With ``k`` interior labels (``space.node_labels`` minus the endpoint labels and ``drop_ops``,
    in the space's order) a path of length ``l`` (interior nodes) with label indices
    ``(a_1..a_l)`` gets ``offset(l) + sum_i a_i k**(l-i)`` with ``offset(l) = sum_{m<l} k**m``:
    paths are ordered by length, then lexicographically -- the BANANAS index. ``max_length`` (the
    longest path the index covers) defaults to ``max_nodes - 2`` (no path is longer) when that
    index fits in ``max_index`` entries, else to the longest path found in 256 cells sampled with
    seed 0 (NAS-Bench-101: 5, i.e. 1+3+...+243 = 364 entries, the BANANAS size; NAS-Bench-201: 3,
    1+4+16+64 = 85 entries, the ``none`` operation being dropped). When the exact index would exceed ``max_index`` entries (DARTS), or a path is longer
    than ``max_length``, the path's key is hashed (SHA-1) into ``max_index`` buckets instead: a
    truncated, hashed index whose rare collisions merge two paths. :attr:`PathEncoder.hashed`
    says which applies.

Encodings
    :meth:`PathEncoder.encode` -- the binary set-of-paths vector (BANANAS): entry ``i`` is 1 when
    some path has index ``i``. :meth:`PathEncoder.sequence` -- the DCL-ENAS form: every path as
    the concatenation of one-hot vectors of its operations (a "path template" of ``max_length``
    slots, empty slots zero), paths sorted canonically by (length, index), padded with all-zero
    paths (or truncated) to ``l_seq`` paths and concatenated.

Distances (what "similar architectures" means to DCL-ENAS)
    :func:`hamming` (number of differing bits) and :func:`jaccard` (``1 - |A∩B| / |A∪B|`` of the
    path sets; 0 for two empty sets), each also pairwise over matrices (:func:`pairwise_distance`).

>>> from nascore.spaces import get_space
>>> space = get_space("nb201")
>>> enc = PathEncoder(space)
>>> enc.dim, enc.max_length, enc.hashed
(85, 3, False)
>>> a = space.from_string("|nor_conv_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|nor_conv_1x1~2|")
>>> [p for p in enc.paths(a)]
[('nor_conv_3x3', 'skip_connect', 'nor_conv_1x1')]
>>> int(enc.encode(a).sum()), enc.count_paths(a)
(1, 1)
>>> b = space.from_string("|nor_conv_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|nor_conv_3x3~2|")
>>> float(jaccard(enc.encode(a), enc.encode(b)))
1.0
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import Iterable, Sequence

import numpy as np

from nascore.arch import Arch
from nascore.errors import UserError


class PathEncoder:
    """Path encodings of the architectures of one space (see module docstring).

    ``space``: a :class:`~nascore.spaces.base.SearchSpace`; ``drop_ops``: labels that break paths;
    ``endpoints``: ``"auto"``, ``"first-last"`` or ``"sources-sinks"``; ``max_length``: longest
    exactly indexed path (interior nodes), ``None`` = estimated from sampled cells;
    ``max_index``: largest exact index before hashing (also the hashed dimension).
    """

    def __init__(self, space, drop_ops: Sequence[str] = ("none",), endpoints: str = "auto",
                 max_length: int | None = None, max_index: int = 4096):
        if endpoints not in ("auto", "first-last", "sources-sinks"):
            raise UserError(f"path encoding endpoints must be auto, first-last or sources-sinks, got {endpoints!r}")
        if max_index < 2:
            raise UserError(f"path encoding max_index must be >= 2, got {max_index}")
        self.space = space
        self.drop_ops = tuple(o for o in drop_ops if o in space.node_labels)
        rng = np.random.default_rng(0)
        samples = [space.sample(rng) for _ in range(256)] if (endpoints == "auto" or max_length is None) else []
        if endpoints == "auto":
            endpoints = "first-last"
            if any(not _reaches(a.adjacency, 0, a.n_nodes - 1) for a in samples[:16]):
                endpoints = "sources-sinks"
        self.endpoints = endpoints
        if endpoints == "first-last":
            self.endpoint_labels = (space.node_labels[0], space.node_labels[-1])
        else:
            ends = set()
            for a in samples[:32]:
                m = a.adjacency
                for k in range(a.n_nodes):
                    if not m[:, k].any() or not m[k, :].any():
                        ends.add(a.ops[k])
            self.endpoint_labels = tuple(lab for lab in space.node_labels if lab in ends)
        self.interior = tuple(lab for lab in space.node_labels
                              if lab not in self.endpoint_labels and lab not in self.drop_ops)
        self._idx = {lab: i for i, lab in enumerate(self.interior)}
        if max_length is None:
            k = len(self.interior)
            bound = space.max_nodes - 2  # no path has more interior nodes
            if sum(k ** m for m in range(bound + 1)) <= max_index:
                max_length = bound
            else:
                max_length = max(1, max((len(p) - 2 for a in samples for p in self._raw_paths(a)), default=1))
        self.max_length = int(max_length)
        k = len(self.interior)
        self._offsets = [0]
        for m in range(self.max_length + 1):
            self._offsets.append(self._offsets[-1] + k ** m)
        exact = self._offsets[-1]
        if endpoints == "sources-sinks":
            exact *= max(1, len(self.endpoint_labels)) ** 2
        self.hashed = exact > max_index
        self.dim = max_index if self.hashed else exact

    # --- paths -------------------------------------------------------------------------------------
    def _raw_paths(self, arch: Arch) -> list[tuple[str, ...]]:
        """Every endpoint-to-endpoint path as the tuple of its labels (endpoints included)."""
        m = arch.adjacency
        n = arch.n_nodes
        passable = [op not in self.drop_ops for op in arch.ops]
        succ = [np.flatnonzero(m[i]).tolist() for i in range(n)]
        if self.endpoints == "first-last":
            starts, ends = [0], {n - 1}
        else:
            starts = [k for k in range(n) if not m[:, k].any() and m[k, :].any()]
            ends = {k for k in range(n) if m[:, k].any() and not m[k, :].any()}
        out: list[tuple[str, ...]] = []
        for s in starts:
            stack = [(s, (arch.ops[s],))]
            while stack:
                node, labels = stack.pop()
                for t in succ[node]:
                    if t in ends:
                        out.append(labels + (arch.ops[t],))
                    elif passable[t]:
                        stack.append((t, labels + (arch.ops[t],)))
        return out

    def paths(self, arch: Arch) -> list[tuple[str, ...]]:
        """The paths of ``arch`` as label tuples, sorted canonically by (length, index).

        ``first-last``: interior labels only; ``sources-sinks``: source and sink labels included.
        """
        raw = self._raw_paths(arch)
        ps = [p[1:-1] for p in raw] if self.endpoints == "first-last" else raw
        return sorted(ps, key=lambda p: (len(p), self.path_index(p)))

    def count_paths(self, arch: Arch) -> int:
        """Number of paths (with multiplicity) of ``arch``."""
        return len(self._raw_paths(arch))

    def path_index(self, path: Sequence[str]) -> int:
        """Canonical index of one path (see module docstring), in ``[0, dim)``."""
        path = tuple(path)
        if self.endpoints == "sources-sinks":
            ends, inner = (path[0], path[-1]), path[1:-1]
        else:
            ends, inner = (), path
        if self.hashed or len(inner) > self.max_length or any(lab not in self._idx for lab in inner):
            return _hash_index("|".join(path), self.dim)
        k = len(self.interior)
        idx = 0
        for lab in inner:
            idx = idx * k + self._idx[lab]
        idx += self._offsets[len(inner)]
        if ends:
            e = {lab: i for i, lab in enumerate(self.endpoint_labels)}
            idx = (e[ends[0]] * len(self.endpoint_labels) + e[ends[1]]) * self._offsets[-1] + idx
        return idx

    # --- encodings -----------------------------------------------------------------------------------
    def encode(self, arch: Arch) -> np.ndarray:
        """Binary set-of-paths vector, float32 ``[dim]``."""
        v = np.zeros(self.dim, np.float32)
        for p in self.paths(arch):
            v[self.path_index(p)] = 1.0
        return v

    def encode_many(self, archs: Iterable[Arch]) -> np.ndarray:
        """``[len(archs), dim]`` matrix of :meth:`encode`."""
        archs = list(archs)
        return np.stack([self.encode(a) for a in archs]) if archs else np.zeros((0, self.dim), np.float32)

    def sequence(self, arch: Arch, l_seq: int = 16) -> np.ndarray:
        """The DCL-ENAS sequence encoding, float32 ``[l_seq * max_length * len(interior)]``: each
        path's operations one-hot in ``max_length`` slots, paths in canonical order, zero-padded or
        truncated to ``l_seq`` paths."""
        k, L = len(self.interior), self.max_length
        out = np.zeros((l_seq, L, k), np.float32)
        ps = self.paths(arch)
        if self.endpoints == "sources-sinks":
            ps = [p[1:-1] for p in ps]
        for r, p in enumerate(ps[:l_seq]):
            for s, lab in enumerate(p[:L]):
                if lab in self._idx:
                    out[r, s, self._idx[lab]] = 1.0
        return out.ravel()


# --- helpers --------------------------------------------------------------------------------------
def _reaches(m: np.ndarray, s: int, t: int) -> bool:
    n = m.shape[0]
    seen = np.zeros(n, bool)
    seen[s] = True
    for j in range(s + 1, n):
        seen[j] = bool((m[:j, j] * seen[:j]).any())
    return bool(seen[t])


@lru_cache(maxsize=1 << 16)
def _hash_index(key: str, dim: int) -> int:
    return int.from_bytes(hashlib.sha1(key.encode()).digest()[:8], "big") % dim


def hamming(a, b) -> float:
    """Number of differing entries of two binary vectors.

    >>> hamming(np.array([1, 0, 1]), np.array([1, 1, 0]))
    2.0
    """
    return float(np.sum(np.asarray(a) != np.asarray(b)))


def jaccard(a, b) -> float:
    """Jaccard distance ``1 - |A∩B|/|A∪B|`` of two binary vectors (0 when both are empty).

    >>> jaccard(np.array([1, 0, 1]), np.array([1, 1, 0]))
    0.6666666666666667
    """
    a, b = np.asarray(a) > 0, np.asarray(b) > 0
    union = np.sum(a | b)
    return 0.0 if union == 0 else float(1.0 - np.sum(a & b) / union)


def pairwise_distance(x: np.ndarray, y: np.ndarray | None = None, metric: str = "jaccard") -> np.ndarray:
    """``[len(x), len(y)]`` distances between the rows of two binary matrices.

    >>> x = np.array([[1, 0, 1], [0, 0, 0]])
    >>> pairwise_distance(x, metric="hamming").tolist()
    [[0.0, 2.0], [2.0, 0.0]]
    >>> pairwise_distance(x).tolist()
    [[0.0, 1.0], [1.0, 0.0]]
    """
    x = (np.asarray(x) > 0).astype(np.float64)
    y = x if y is None else (np.asarray(y) > 0).astype(np.float64)
    inter = x @ y.T
    nx, ny = x.sum(1)[:, None], y.sum(1)[None, :]
    if metric == "hamming":
        return nx + ny - 2 * inter
    if metric == "jaccard":
        union = nx + ny - inter
        with np.errstate(invalid="ignore", divide="ignore"):
            d = 1.0 - inter / union
        return np.where(union == 0, 0.0, d)
    raise UserError(f"unknown path distance {metric!r} (choose from: hamming, jaccard)")
