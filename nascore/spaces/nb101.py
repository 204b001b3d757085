"""NAS-Bench-101 cell space (Ying, Klein, Real, Christiansen, Murphy & Hutter, ICML 2019).

A cell is a DAG of at most 7 nodes in topological order: node 0 is ``input``, the last node is
``output`` and every interior node carries one of three operations, ``conv3x3-bn-relu``,
``conv1x1-bn-relu`` or ``maxpool3x3`` (the official label strings). The adjacency matrix is
strictly upper-triangular. As in the official ``nasbench`` API (``ModelSpec._prune`` and
``NASBench._check_spec``), a cell is first *pruned* -- every node that is not on a path from input
to output is dropped -- and is valid when the pruned cell still connects input to output and has
at most 9 edges. The edge limit therefore applies to the **pruned** matrix: a 7-node matrix with
10 edges, one of which feeds a dead node, is valid (it is the smaller pruned cell). The set of
distinct cells is the same under either reading (every pruned cell is itself a matrix within the
limit), but the post-pruning rule accepts more raw matrices, which changes what random sampling
draws; :mod:`benchmarks.nb101_enumerate` measures both.

Distinct cells up to isomorphism (relabelling the interior nodes) number 423,624 (Ying et al.
2019, §2.2); :func:`enumerate_cells` finds exactly these with numpy (see there).

Canonical string
----------------
Grammar (``n`` = number of nodes, ``2 <= n <= 7``)::

    cell  := "ops=" [ op ( "," op )* ] "|adj=" bits
    op    := "conv1x1-bn-relu" | "conv3x3-bn-relu" | "maxpool3x3"     (the n-2 interior nodes, in order)
    bits  := ( "0" | "1" ){n(n-1)/2}   m[i][j] for i < j, row-major (i = 0: j = 1..n-1; i = 1: j = 2..n-1; ...)

Input and output are implicit (first and last node). :meth:`NB101Space.to_string` writes the
*canonical* form: the cell is pruned, then of all relabellings of its interior nodes that keep
the matrix upper-triangular (at most 5! = 120) the one with the lexicographically smallest
``bits`` string and, among those, the smallest sequence of operation indices (in the order of
:data:`OPS`). Two cells get the same string exactly when they are isomorphic, so the string is
an exact identity (the WL :attr:`nascore.arch.Arch.hash` is only probabilistic).
:meth:`NB101Space.from_string` accepts any string of the grammar that describes a valid cell (any
node order, dead nodes allowed) and returns the canonical cell.

>>> s = NB101Space()
>>> a = s.from_string("ops=maxpool3x3,conv3x3-bn-relu|adj=110011")
>>> s.to_string(a)          # the two interior nodes are swapped into canonical order
'ops=conv3x3-bn-relu,maxpool3x3|adj=110011'
>>> s.is_valid(a), a.n_nodes, s.size
(True, 4, 423624)
"""

from __future__ import annotations

import io
import itertools
import os
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from nascore.arch import Arch
from nascore.errors import UserError
from nascore.spaces.base import SearchSpace

INPUT, OUTPUT = "input", "output"
#: interior operations, in operation-index order (index 0, 1, 2)
OPS: tuple[str, ...] = ("conv1x1-bn-relu", "conv3x3-bn-relu", "maxpool3x3")
OP_INDEX = {op: k for k, op in enumerate(OPS)}
MAX_NODES = 7
MAX_EDGES = 9
#: number of distinct cells (Ying et al. 2019, §2.2), reproduced by :func:`enumerate_cells`
NB101_SIZE = 423_624
#: distinct cells by number of nodes (after pruning), as the full enumeration established
#: (``python benchmarks/nb101_enumerate.py``; sum = 423,624)
COUNTS_BY_NODES: dict[int, int] = {2: 1, 3: 6, 4: 84, 5: 2_441, 6: 62_010, 7: 359_082}

_CHUNK = 7  # bits per lookup-table chunk when permuting adjacency bit strings


def n_bits(n: int) -> int:
    """Number of upper-triangular entries of an ``n x n`` matrix, ``n(n-1)/2``."""
    return n * (n - 1) // 2


# --- bit-string encoding of matrices ------------------------------------------------------------
@lru_cache(maxsize=None)
def _shift_table(n: int) -> np.ndarray:
    """``sh[i, j]`` = bit shift of entry (i, j), i < j, in an n-node code (first entry = MSB); -1 elsewhere."""
    sh = np.full((n, n), -1, np.int64)
    L = n_bits(n)
    for k, (i, j) in enumerate(zip(*np.triu_indices(n, 1))):
        sh[i, j] = L - 1 - k
    return sh


def matrix_to_bits(matrix) -> int:
    """Integer code of an upper-triangular 0/1 matrix (row-major upper triangle, first entry = MSB).

    >>> matrix_to_bits([[0, 1, 1], [0, 0, 1], [0, 0, 0]])
    7
    """
    m = np.asarray(matrix)
    n = m.shape[0]
    iu = np.triu_indices(n, 1)
    return int(sum(1 << int(s) for s, v in zip(_shift_table(n)[iu], m[iu]) if v))


def bits_to_matrix(n: int, bits: int) -> np.ndarray:
    """Inverse of :func:`matrix_to_bits`: the ``n x n`` int64 matrix.

    >>> bits_to_matrix(3, 5).tolist()
    [[0, 1, 0], [0, 0, 1], [0, 0, 0]]
    """
    sh = _shift_table(n)
    m = np.zeros((n, n), np.int64)
    iu = np.triu_indices(n, 1)
    m[iu] = (int(bits) >> sh[iu]) & 1
    return m


def ops_code(digits: Sequence[int]) -> int:
    """Base-3 code of the interior operation indices, first interior node most significant."""
    c = 0
    for d in digits:
        c = 3 * c + int(d)
    return c


def code_digits(k: int, code: int) -> list[int]:
    """The ``k`` operation indices of an operation code (inverse of :func:`ops_code`)."""
    out = []
    for _ in range(k):
        out.append(code % 3)
        code //= 3
    return out[::-1]


@lru_cache(maxsize=None)
def _ops_text(k: int, code: int) -> str:
    return ",".join(OPS[d] for d in code_digits(k, code))


def format_cell(n: int, bits: int, code: int) -> str:
    """The string of a cell given as (number of nodes, adjacency code, operation code).

    >>> format_cell(3, 0b111, 2)
    'ops=maxpool3x3|adj=111'
    """
    return f"ops={_ops_text(n - 2, int(code))}|adj={int(bits):0{n_bits(n)}b}"


# --- relabelling tables -------------------------------------------------------------------------
@dataclass(frozen=True)
class _PermTables:
    """Every relabelling of the interior nodes of an n-node cell, as lookup tables.

    ``orders[p]``: new node ``a`` is old node ``orders[p, a]`` (input and output stay put);
    ``bad[p]``: adjacency bits whose edge would point backwards after relabelling ``p`` (the
    relabelling is allowed for a cell iff ``bits & bad[p] == 0``); ``chunk[c][p, v]``: relabelled
    code of the bits ``v`` of chunk ``c`` (bits ``c*7 .. c*7+6`` counted from the LSB);
    ``ops[p, code]``: relabelled operation code.
    """

    n: int
    orders: np.ndarray
    bad: np.ndarray
    chunk: tuple[np.ndarray, ...]
    ops: np.ndarray

    def permute_bits(self, bits: np.ndarray, p) -> np.ndarray:
        """Relabelled adjacency codes; ``p`` an index (-> shape of ``bits``) or index array with
        scalar ``bits`` (-> one per relabelling)."""
        out = 0
        for c, tab in enumerate(self.chunk):
            out = out | tab[p, (bits >> (_CHUNK * c)) & ((1 << _CHUNK) - 1)]
        return out


@lru_cache(maxsize=None)
def perm_tables(n: int) -> _PermTables:
    """The relabelling tables of ``n``-node cells (built once per ``n``; 120 relabellings for 7).

    >>> t = perm_tables(4)
    >>> t.orders.tolist(), int(t.permute_bits(np.int64(0b110011), 1))   # swapping nodes 1, 2 of a diamond
    ([[0, 1, 2, 3], [0, 2, 1, 3]], 51)
    """
    L, k = n_bits(n), n - 2
    sh = _shift_table(n)
    orders = np.array([(0, *q, n - 1) for q in itertools.permutations(range(1, n - 1))], np.int64).reshape(-1, n)
    P = len(orders)
    n_chunks = max(1, -(-L // _CHUNK))
    dest = np.zeros((P, L), np.int64)  # dest[p, s]: new shift of the bit at old shift s (or -1 if backwards)
    bad = np.zeros(P, np.int64)
    for p, order in enumerate(orders):
        inv = np.argsort(order)
        for i, j in zip(*np.triu_indices(n, 1)):
            s = sh[i, j]
            a, b = inv[i], inv[j]
            if a < b:
                dest[p, s] = sh[a, b]
            else:
                dest[p, s] = -1
                bad[p] |= 1 << int(s)
    chunks = []
    for c in range(n_chunks):
        width = min(_CHUNK, L - _CHUNK * c) if L else 0
        tab = np.zeros((P, 1 << _CHUNK), np.int64)
        for v in range(1 << width):
            for t in range(width):
                if v >> t & 1:
                    d = dest[:, _CHUNK * c + t]
                    tab[:, v] |= np.where(d >= 0, np.left_shift(1, np.maximum(d, 0)), 0)
        chunks.append(tab)
    n_codes = 3 ** k
    digits = np.array([code_digits(k, c) for c in range(n_codes)], np.int64).reshape(n_codes, k)
    weights = 3 ** np.arange(k - 1, -1, -1, dtype=np.int64)
    ops = np.zeros((P, n_codes), np.int64)
    for p, order in enumerate(orders):
        # new interior node a (1..n-2) carries the op of old node order[a]
        ops[p] = (digits[:, order[1:n - 1] - 1] * weights).sum(axis=1) if k else 0
    return _PermTables(n, orders, bad, tuple(chunks), ops)


def canonical_codes(n: int, bits: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Canonical (adjacency code, operation code) of many pruned ``n``-node cells at once.

    ``bits``, ``codes``: int arrays [N] of cells that are already pruned (every node on an
    input->output path). Returns the relabelling with the smallest adjacency code, ties broken
    by the smallest operation code, over all interior relabellings that keep the matrix
    upper-triangular (vectorised over cells, looping over the <= 120 relabellings).

    >>> b, c = canonical_codes(4, np.array([0b110011]), np.array([ops_code([2, 1])]))
    >>> format_cell(4, int(b[0]), int(c[0]))
    'ops=conv3x3-bn-relu,maxpool3x3|adj=110011'
    """
    t = perm_tables(n)
    bits = np.asarray(bits, np.int64)
    codes = np.asarray(codes, np.int64)
    base = 3 ** (n - 2)
    best = np.full(bits.shape, np.iinfo(np.int64).max, np.int64)
    for p in range(len(t.orders)):
        key = t.permute_bits(bits, p) * base + t.ops[p, codes]
        ok = (bits & t.bad[p]) == 0
        np.minimum(best, np.where(ok, key, best), out=best)
    return best // base, best % base


# --- pruning (vectorised) -----------------------------------------------------------------------
def prune_codes(m: int, bits: np.ndarray, digits: np.ndarray | None = None):
    """Prune many ``m``-node cells at once, as :meth:`nascore.arch.Arch.prune` and the official
    ``ModelSpec._prune`` do (keep the nodes on an input->output path, in their order).

    ``bits``: adjacency codes [N] of ``m``-node matrices; ``digits``: optional operation indices
    [N, m-2]. Returns ``(n, pbits, connected, raw_edges, pruned_edges, pcodes)``: pruned node
    count, pruned adjacency code (in the n-node layout), whether input reaches output, edge
    counts before/after pruning, and the pruned operation codes (``None`` without ``digits``).
    Entries of disconnected cells other than ``connected`` are meaningless.
    """
    bits = np.asarray(bits, np.int64)
    N = bits.shape[0]
    sh = _shift_table(m)
    pairs = list(zip(*np.triu_indices(m, 1)))
    e = {(i, j): ((bits >> int(sh[i, j])) & 1).astype(bool) for i, j in pairs}
    fwd = [np.ones(N, bool)] + [None] * (m - 1)
    for j in range(1, m):
        acc = np.zeros(N, bool)
        for i in range(j):
            acc |= e[i, j] & fwd[i]
        fwd[j] = acc
    bwd = [None] * (m - 1) + [np.ones(N, bool)]
    for i in range(m - 2, -1, -1):
        acc = np.zeros(N, bool)
        for j in range(i + 1, m):
            acc |= e[i, j] & bwd[j]
        bwd[i] = acc
    keep = [fwd[i] & bwd[i] for i in range(m)]
    connected = keep[m - 1].copy()
    newidx = [np.zeros(N, np.int64)]
    for i in range(1, m):
        newidx.append(newidx[-1] + keep[i - 1])
    n = (newidx[-1] + keep[m - 1]).astype(np.int64)
    n = np.where(connected, n, 2)
    # shift of new entry (a, b) in an n-node code, for every n up to m
    SH = np.full((m + 1, m, m), 0, np.int64)
    for k in range(2, m + 1):
        SH[k, :k, :k] = np.maximum(_shift_table(k), 0)
    pbits = np.zeros(N, np.int64)
    raw_edges = np.zeros(N, np.int64)
    for i, j in pairs:
        raw_edges += e[i, j]
        live = e[i, j] & keep[i] & keep[j]
        pbits |= np.where(live, np.left_shift(1, SH[n, newidx[i], newidx[j]]), 0)
    pruned_edges = np.zeros(N, np.int64)
    for s in range(n_bits(m)):
        pruned_edges += (pbits >> s) & 1
    pcodes = None
    if digits is not None:
        digits = np.asarray(digits, np.int64).reshape(N, m - 2)
        pcodes = np.zeros(N, np.int64)
        for i in range(1, m - 1):
            pcodes = np.where(keep[i], pcodes * 3 + digits[:, i - 1], pcodes)
    return n, pbits, connected, raw_edges, pruned_edges, pcodes


# --- exhaustive enumeration ---------------------------------------------------------------------
@dataclass(frozen=True)
class Cells:
    """Distinct cells as arrays [N], sorted by (nodes, adjacency code, operation code).

    >>> cells = enumerate_cells(max_nodes=4, cache=False)
    >>> len(cells), cells.counts_by_nodes()
    (91, {2: 1, 3: 6, 4: 84})
    >>> cells.string(0)
    'ops=|adj=1'
    """

    n_nodes: np.ndarray   # uint8
    adj_bits: np.ndarray  # uint32, n_bits(n)-bit code (see matrix_to_bits)
    op_codes: np.ndarray  # uint16, base-3 code (see ops_code)

    def __len__(self) -> int:
        return int(self.n_nodes.shape[0])

    def counts_by_nodes(self) -> dict[int, int]:
        v, c = np.unique(self.n_nodes, return_counts=True)
        return {int(a): int(b) for a, b in zip(v, c)}

    def string(self, i: int) -> str:
        return format_cell(int(self.n_nodes[i]), int(self.adj_bits[i]), int(self.op_codes[i]))

    def strings(self) -> list[str]:
        return [format_cell(n, b, c) for n, b, c in
                zip(self.n_nodes.tolist(), self.adj_bits.tolist(), self.op_codes.tolist())]

    def arch(self, i: int) -> Arch:
        n = int(self.n_nodes[i])
        ops = [INPUT] + [OPS[d] for d in code_digits(n - 2, int(self.op_codes[i]))] + [OUTPUT]
        return Arch.from_numpy(bits_to_matrix(n, int(self.adj_bits[i])), ops)


def pruned_shapes(max_nodes: int = MAX_NODES, max_edges: int = MAX_EDGES, *, workers: int = 1,
                  stats: dict | None = None) -> dict[int, np.ndarray]:
    """Every distinct pruned adjacency matrix (unlabelled, not yet up to isomorphism), by node count.

    Enumerates all ``2**(m(m-1)/2)`` upper-triangular ``m x m`` matrices (``m = max_nodes``)
    as integer codes, prunes them all at once (:func:`prune_codes`), keeps those whose pruned
    form connects input to output with at most ``max_edges`` edges, and deduplicates the pruned
    codes. ``workers > 1`` splits the matrices over processes. If ``stats`` is a dict it receives
    raw-matrix counts (connected; valid with the edge limit after / before pruning; distinct
    pruned shapes under each rule; valid matrices by pruned node count).
    """
    L = n_bits(max_nodes)
    total = 1 << L
    step = 1 << 14  # chunks small enough to stay in cache, and to share among workers
    bounds = np.append(np.arange(0, total, step), total)
    jobs = [(max_nodes, max_edges, int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]
    if workers > 1:
        import multiprocessing as mp

        with mp.get_context("fork" if os.name == "posix" else "spawn").Pool(workers) as pool:
            parts = pool.map(_shapes_job, jobs)
    else:
        parts = [_shapes_job(j) for j in jobs]
    keys_after = np.unique(np.concatenate([p[0] for p in parts]))
    if stats is not None:
        keys_before = np.unique(np.concatenate([p[1] for p in parts]))
        stats.update({
            "raw_matrices": total,
            "raw_connected": int(sum(p[2] for p in parts)),
            "raw_valid_edge_limit_after_pruning": int(sum(p[3] for p in parts)),
            "raw_valid_edge_limit_before_pruning": int(sum(p[4] for p in parts)),
            "distinct_pruned_shapes_after_rule": int(len(keys_after)),
            "distinct_pruned_shapes_before_rule": int(len(keys_before)),
            "same_shapes_under_both_rules": bool(np.array_equal(keys_after, keys_before)),
            # what the official sampler draws: valid raw matrices by pruned node count
            "raw_valid_by_nodes": {k: int(v) for k, v in enumerate(sum(p[5] for p in parts)) if k >= 2},
        })
    n = keys_after >> 32
    bits = keys_after & 0xFFFFFFFF
    return {k: bits[n == k] for k in range(2, max_nodes + 1)}


def _shapes_job(job):
    m, max_edges, a, b = job
    codes = np.arange(a, b, dtype=np.int64)
    n, pbits, conn, raw_e, pr_e, _ = prune_codes(m, codes)
    after = conn & (pr_e <= max_edges)
    before = conn & (raw_e <= max_edges)
    key = (n << 32) | pbits
    return (np.unique(key[after]), np.unique(key[before]), int(conn.sum()), int(after.sum()), int(before.sum()),
            np.bincount(n[after], minlength=m + 1))


def _cells_of_size(n: int, shapes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct labelled cells with ``n`` nodes from the pruned shapes with ``n`` nodes.

    The shapes are reduced to canonical unlabelled graphs; for each graph ``g`` the labellings are
    the orbits of the ``3**(n-2)`` operation codes under its automorphisms (the relabellings
    that map ``g`` onto itself), each represented by its smallest code -- which is exactly the
    operation code :func:`canonical_codes` picks, since ties on the adjacency are broken by the
    smallest operation code over those same relabellings.
    """
    t = perm_tables(n)
    graphs = np.unique(canonical_codes(n, shapes, np.zeros_like(shapes))[0])
    P = len(t.orders)
    aut = np.zeros((len(graphs), P), bool)
    for p in range(P):
        aut[:, p] = ((graphs & t.bad[p]) == 0) & (t.permute_bits(graphs, p) == graphs)
    groups, inverse = np.unique(np.packbits(aut, axis=1), axis=0, return_inverse=True)
    inverse = np.asarray(inverse).reshape(-1)
    out_bits, out_codes = [], []
    for gi in range(len(groups)):
        perms = np.flatnonzero(np.unpackbits(groups[gi])[:P])
        reps = np.unique(t.ops[perms].min(axis=0))
        members = graphs[inverse == gi]
        out_bits.append(np.repeat(members, len(reps)))
        out_codes.append(np.tile(reps, len(members)))
    b = np.concatenate(out_bits) if out_bits else np.zeros(0, np.int64)
    c = np.concatenate(out_codes) if out_codes else np.zeros(0, np.int64)
    order = np.lexsort((c, b))
    return b[order], c[order]


def _cache_file(max_nodes: int, max_edges: int) -> Path:
    from nascore.paths import user_cache_root

    return user_cache_root() / "nb101" / f"cells-n{max_nodes}-e{max_edges}-v1.npz"


def _load_cache(path: Path, max_nodes: int, max_edges: int) -> Cells | None:
    try:
        with np.load(path) as z:
            cells = Cells(z["n_nodes"], z["adj_bits"], z["op_codes"])
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
        return None
    if not (cells.n_nodes.shape == cells.adj_bits.shape == cells.op_codes.shape):
        return None
    if max_nodes == MAX_NODES and max_edges == MAX_EDGES and cells.counts_by_nodes() != COUNTS_BY_NODES:
        return None
    return cells


def enumerate_cells(max_nodes: int = MAX_NODES, max_edges: int = MAX_EDGES, *, cache: bool = True,
                    workers: int | None = None, progress: bool = False, stats: dict | None = None) -> Cells:
    """Every distinct valid cell (up to isomorphism), as :class:`Cells` arrays.

    1. :func:`pruned_shapes`: all upper-triangular ``max_nodes x max_nodes`` matrices as integer
       codes (2**21 for 7 nodes), pruned and edge-counted at once; distinct pruned shapes kept.
    2. For each node count ``n``, the shapes are reduced to canonical unlabelled graphs with
       precomputed relabelling tables, and each graph gets one cell per orbit of its ``3**(n-2)``
       labellings under its automorphisms (:func:`_cells_of_size`).

    With the defaults (7 nodes, 9 edges) this yields the published 423,624 cells, by node count
    :data:`COUNTS_BY_NODES`. ``cache`` reads/writes the result as ``.npz`` under
    ``nascore.paths.user_cache_root()/nb101`` (written atomically), so a second call only loads it.
    ``workers`` processes share step 1 (default 1: the whole run takes about half a second on one
    core, and a second core saves only about 0.1 s -- see the benchmark JSON). ``stats``: see
    :func:`pruned_shapes` (only filled when computing, so pass ``cache=False`` to get it).

    >>> cells = enumerate_cells(max_nodes=5, cache=False)
    >>> cells.counts_by_nodes() == {k: COUNTS_BY_NODES[k] for k in range(2, 6)}
    True
    """
    if not 2 <= int(max_nodes) <= MAX_NODES:
        raise UserError(f"max_nodes must be between 2 and {MAX_NODES}, got {max_nodes}")
    if int(max_edges) < 1:
        raise UserError(f"max_edges must be >= 1, got {max_edges}")
    max_nodes, max_edges = int(max_nodes), int(max_edges)
    path = _cache_file(max_nodes, max_edges)
    if cache and path.exists():
        cells = _load_cache(path, max_nodes, max_edges)
        if cells is not None:
            return cells
    if workers is None:
        workers = 1
    shapes = pruned_shapes(max_nodes, max_edges, workers=workers, stats=stats)
    sizes = range(2, max_nodes + 1)
    if progress:
        from rich.progress import track

        sizes = track(sizes, description="nb101: labelling cells")
    ns, bs, cs = [], [], []
    for n in sizes:
        b, c = _cells_of_size(n, shapes[n])
        ns.append(np.full(len(b), n, np.uint8))
        bs.append(b)
        cs.append(c)
    cells = Cells(np.concatenate(ns), np.concatenate(bs).astype(np.uint32), np.concatenate(cs).astype(np.uint16))
    if max_nodes == MAX_NODES and max_edges == MAX_EDGES and len(cells) != NB101_SIZE:  # pragma: no cover
        raise RuntimeError(f"nb101 enumeration found {len(cells)} cells, expected {NB101_SIZE}")
    if cache:
        from nascore.io import atomic_write_bytes

        buf = io.BytesIO()
        np.savez_compressed(buf, n_nodes=cells.n_nodes, adj_bits=cells.adj_bits, op_codes=cells.op_codes)
        atomic_write_bytes(path, buf.getvalue())
    return cells


# --- parsing --------------------------------------------------------------------------------------
def parse_cell(text: str) -> tuple[int, int, list[int]]:
    """Parse a string of the grammar (module docstring) into ``(n, adjacency code, op indices)``;
    the cell is not checked for validity. Raises :class:`UserError` naming the string."""
    if not isinstance(text, str):
        raise UserError(f"nb101 arch must be a string, got {type(text).__name__} {text!r}")
    head, sep, adj = text.strip().partition("|adj=")
    if not sep or not head.startswith("ops=") or "|" in adj:
        raise UserError(f"malformed nb101 arch string {text!r}: expected 'ops=<op>,...|adj=<0/1 bits>'")
    digits = _parse_ops(head[4:])
    if isinstance(digits, str):
        raise UserError(f"nb101 arch string {text!r}: {digits}")
    n = len(digits) + 2
    if len(adj) != n_bits(n) or adj.strip("01"):
        raise UserError(f"malformed nb101 arch string {text!r}: adj must be {n_bits(n)} characters 0/1 "
                        f"for {n} nodes, got {adj!r}")
    return n, int(adj, 2), list(digits)


@lru_cache(maxsize=4096)
def _parse_ops(body: str) -> tuple[int, ...] | str:
    """Operation indices of the ``ops=`` part, or the reason it is outside the space."""
    names = body.split(",") if body else []
    for op in names:
        if op not in OP_INDEX:
            return f"operation {op!r} is outside the space (choose from {', '.join(OPS)})"
    if len(names) + 2 > MAX_NODES:
        return f"{len(names) + 2} nodes; the space allows at most {MAX_NODES}"
    return tuple(OP_INDEX[op] for op in names)


def arch_of(n: int, bits: int, digits: Sequence[int]) -> Arch:
    return Arch.from_numpy(bits_to_matrix(n, bits), [INPUT] + [OPS[d] for d in digits] + [OUTPUT])


def invalid_reason(arch: Arch) -> str | None:
    """Why ``arch`` is outside the space (``None`` when it is inside)."""
    n = arch.n_nodes
    if not 2 <= n <= MAX_NODES:
        return f"it has {n} nodes (2..{MAX_NODES} allowed)"
    if arch.ops[0] != INPUT or arch.ops[-1] != OUTPUT:
        return f"the first node must be {INPUT!r} and the last {OUTPUT!r}, got {arch.ops[0]!r} and {arch.ops[-1]!r}"
    for op in arch.ops[1:-1]:
        if op not in OP_INDEX:
            return f"operation {op!r} is not one of {', '.join(OPS)}"
    p = arch.prune()
    if p.n_nodes == 2 and not p.matrix[0][1]:
        return "input and output are disconnected"
    if p.n_edges > MAX_EDGES:
        return f"its pruned cell has {p.n_edges} edges (at most {MAX_EDGES} allowed)"
    return None


@lru_cache(maxsize=1 << 16)
def _canonical_key(matrix: tuple, ops: tuple) -> tuple[int, int, int]:
    p = Arch(matrix, ops).prune()
    n = p.n_nodes
    t = perm_tables(n)
    bits = matrix_to_bits(p.adjacency)
    code = ops_code(OP_INDEX[o] for o in p.ops[1:-1])
    base = 3 ** (n - 2)
    idx = np.arange(len(t.orders))
    key = t.permute_bits(np.int64(bits), idx) * base + t.ops[:, code]
    key = np.where((bits & t.bad) == 0, key, np.iinfo(np.int64).max)
    best = int(key.min())
    return n, best // base, best % base


class NB101Space(SearchSpace):
    """The NAS-Bench-101 cell space (see module docstring).

    ``sampler``: ``"official"`` (default) draws as the official example does -- a uniformly
    random 7x7 upper-triangular 0/1 matrix and 5 random operations, redrawn until valid -- which
    is *not* uniform over the 423,624 cells (small cells are reached by many matrices);
    ``"uniform"`` draws uniformly from the enumeration (:func:`enumerate_cells`, cached).
    ``mutation_rate``: the official mutation flips each of the 21 matrix entries with probability
    ``mutation_rate / 7`` and changes each of the 5 operations with probability
    ``mutation_rate / 5`` (Ying et al. 2019, regularised evolution baseline).

    >>> s = NB101Space()
    >>> rng = np.random.default_rng(0)
    >>> a = s.sample(rng); b = s.mutate(a, rng)
    >>> s.is_valid(b) and s.to_string(b) != s.to_string(a)
    True
    """

    name = "nb101"
    node_labels = (INPUT, "conv1x1-bn-relu", "conv3x3-bn-relu", "maxpool3x3", OUTPUT)
    max_nodes = MAX_NODES

    def __init__(self, sampler: str = "official", mutation_rate: float = 1.0, max_tries: int = 10_000):
        if sampler not in ("official", "uniform"):
            raise UserError(f"nb101 sampler must be 'official' or 'uniform', got {sampler!r}")
        if not 0 < float(mutation_rate) <= MAX_NODES:
            raise UserError(f"nb101 mutation_rate must be in (0, {MAX_NODES}], got {mutation_rate}")
        self.sampler = sampler
        self.mutation_rate = float(mutation_rate)
        self.max_tries = int(max_tries)
        self._cells: Cells | None = None

    # --- identity ---------------------------------------------------------------------------
    def is_valid(self, arch: Arch) -> bool:
        return invalid_reason(arch) is None

    def validate(self, arch: Arch) -> Arch:
        why = invalid_reason(arch)
        if why is not None:
            raise UserError(f"architecture is outside the nb101 space: {why}: {arch}")
        return arch

    def canonical(self, arch: Arch) -> Arch:
        """The pruned cell in canonical node order (raises :class:`UserError` if invalid)."""
        self.validate(arch)
        n, bits, code = _canonical_key(arch.matrix, arch.ops)
        return arch_of(n, bits, code_digits(n - 2, code))

    def to_string(self, arch: Arch) -> str:
        self.validate(arch)
        return format_cell(*_canonical_key(arch.matrix, arch.ops))

    def from_string(self, text: str) -> Arch:
        n, bits, digits = parse_cell(text)
        raw = arch_of(n, bits, digits)
        why = invalid_reason(raw)
        if why is not None:
            raise UserError(f"nb101 arch string {text!r} is outside the space: {why}")
        return self.canonical(raw)

    # --- sampling ---------------------------------------------------------------------------
    def _random_raw(self, rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
        m = np.triu(rng.integers(0, 2, size=(MAX_NODES, MAX_NODES)), 1)
        ops = [INPUT] + [OPS[k] for k in rng.integers(0, len(OPS), size=MAX_NODES - 2)] + [OUTPUT]
        return m, ops

    def sample(self, rng: np.random.Generator) -> Arch:
        if self.sampler == "uniform":
            if self._cells is None:
                self._cells = enumerate_cells()
            return self._cells.arch(int(rng.integers(len(self._cells))))
        for _ in range(self.max_tries):
            m, ops = self._random_raw(rng)
            a = Arch.from_numpy(m, ops)
            if self.is_valid(a):
                return self.canonical(a)
        raise RuntimeError(f"no valid nb101 cell in {self.max_tries} draws")  # pragma: no cover

    def padded(self, arch: Arch, rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
        """``arch`` as a 7-node matrix: dead nodes (random operations, no edges) are inserted just
        before the output, as in the official 7x7 ``original_matrix`` of a pruned cell."""
        n = arch.n_nodes
        m = np.zeros((MAX_NODES, MAX_NODES), np.int64)
        idx = list(range(n - 1)) + [MAX_NODES - 1]
        m[np.ix_(idx, idx)] = arch.adjacency
        extra = [OPS[k] for k in rng.integers(0, len(OPS), size=MAX_NODES - n)]
        return m, list(arch.ops[:-1]) + extra + [OUTPUT]

    def mutate(self, arch: Arch, rng: np.random.Generator) -> Arch:
        """The official NAS-Bench-101 mutation on the padded 7x7 cell (see class docstring),
        redrawn until the child is valid and differs (canonically) from ``arch``."""
        key = self.to_string(arch)
        base_m, base_ops = self.padded(arch, rng)
        iu = np.triu_indices(MAX_NODES, 1)
        p_edge, p_op = self.mutation_rate / MAX_NODES, self.mutation_rate / (MAX_NODES - 2)
        for _ in range(self.max_tries):
            m = base_m.copy()
            flip = rng.random(len(iu[0])) < p_edge
            m[iu[0][flip], iu[1][flip]] ^= 1
            ops = list(base_ops)
            for k in range(1, MAX_NODES - 1):
                if rng.random() < p_op:
                    choices = [o for o in OPS if o != ops[k]]
                    ops[k] = choices[int(rng.integers(len(choices)))]
            child = Arch.from_numpy(m, ops)
            if self.is_valid(child) and self.to_string(child) != key:
                return self.canonical(child)
        raise RuntimeError(f"no valid nb101 mutation of {key} in {self.max_tries} tries")  # pragma: no cover

    def crossover(self, a: Arch, b: Arch, rng: np.random.Generator) -> Arch:
        """Uniform crossover of the padded 7x7 parents: every matrix entry and every operation
        comes from either parent with probability 1/2; redrawn until valid (after
        ``max_tries`` failures the child is a copy of a random parent)."""
        ma, oa = self.padded(self.canonical(a), rng)
        mb, ob = self.padded(self.canonical(b), rng)
        for _ in range(self.max_tries):
            take = rng.integers(0, 2, size=(MAX_NODES, MAX_NODES)).astype(bool)
            m = np.triu(np.where(take, ma, mb), 1)
            pick = rng.integers(0, 2, size=MAX_NODES)
            ops = [oa[k] if pick[k] == 0 else ob[k] for k in range(MAX_NODES)]
            child = Arch.from_numpy(m, ops)
            if self.is_valid(child):
                return self.canonical(child)
        return self.canonical(a if rng.integers(2) == 0 else b)  # pragma: no cover

    # --- finite space -------------------------------------------------------------------------
    @property
    def size(self) -> int:
        return NB101_SIZE

    def enumerate(self) -> Iterator[Arch]:
        """Every distinct cell, canonical, ordered by (nodes, adjacency, operations)."""
        cells = enumerate_cells()
        for i in range(len(cells)):
            yield cells.arch(i)


def canonicalize_strings(texts: Sequence[str], where: Callable[[int], str] | None = None) -> list[str]:
    """Canonical strings of many arch strings at once (vectorised; 423,624 strings take about 1 s).

    ``where(i)`` names item ``i`` in error messages (e.g. ``"nb101.csv: line 7"``; default
    ``"arch i"``); a malformed or invalid string raises :class:`UserError` naming it.

    >>> canonicalize_strings(["ops=maxpool3x3,conv3x3-bn-relu|adj=110011"])
    ['ops=conv3x3-bn-relu,maxpool3x3|adj=110011']
    """
    N = len(texts)
    where = where if where is not None else (lambda i: f"arch {i}")
    n_raw = np.zeros(N, np.int64)
    bits_raw = np.zeros(N, np.int64)
    digits_raw = np.zeros((N, MAX_NODES - 2), np.int64)
    for i, t in enumerate(texts):
        try:
            n, b, d = parse_cell(t)
        except UserError as e:
            raise UserError(f"{where(i)}: {e}") from None
        n_raw[i], bits_raw[i] = n, b
        digits_raw[i, : n - 2] = d
    n_out = np.zeros(N, np.int64)
    b_out = np.zeros(N, np.int64)
    c_out = np.zeros(N, np.int64)
    for m in np.unique(n_raw):
        sel = np.flatnonzero(n_raw == m)
        n, pb, conn, _, pe, pc = prune_codes(int(m), bits_raw[sel], digits_raw[sel, : m - 2])
        bad = np.flatnonzero(~conn | (pe > MAX_EDGES))
        if len(bad):
            i = sel[bad[0]]
            why = "input and output are disconnected" if not conn[bad[0]] else \
                f"its pruned cell has {pe[bad[0]]} edges (at most {MAX_EDGES} allowed)"
            raise UserError(f"{where(i)}: nb101 arch string {texts[i]!r} is outside the space: {why}")
        n_out[sel], b_out[sel], c_out[sel] = n, pb, pc
    for n in np.unique(n_out):
        sel = np.flatnonzero(n_out == n)
        b_out[sel], c_out[sel] = canonical_codes(int(n), b_out[sel], c_out[sel])
    return [format_cell(n, b, c) for n, b, c in zip(n_out.tolist(), b_out.tolist(), c_out.tolist())]
