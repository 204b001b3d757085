"""DARTS cell search space (Liu, Simonyan & Yang, "DARTS: Differentiable Architecture Search", ICLR 2019).

Genotype
--------
A genotype is a *normal* and a *reduction* cell. Each cell has two input nodes, ``0 = c_{k-2}``
and ``1 = c_{k-1}`` (the outputs of the two previous cells), and four intermediate nodes
``2, 3, 4, 5``. Intermediate node ``2 + i`` (``i = 0..3``) reads exactly two *distinct* earlier
nodes from ``{0, .., i + 1}``, each through one operation of :data:`OPS` (``none`` is never part
of a derived genotype: DARTS drops it when it discretises, paper §2.4), and sums them. The cell
output concatenates the four intermediate nodes (``concat = [2, 3, 4, 5]``).

:class:`Genotype` is the DARTS code's plain named tuple: each cell a list of 8 ``(op, input)``
pairs, two per intermediate node in node order, and text is its ``repr``::

    Genotype(normal=[('sep_conv_3x3', 0), ...], normal_concat=[2, 3, 4, 5], reduce=[...], reduce_concat=[2, 3, 4, 5])

:func:`parse_genotype` reads that text safely (``ast`` + ``ast.literal_eval``, never ``eval``;
``range(2, 6)``, as DARTS search logs print the concat, is accepted too). The *canonical* string
(:meth:`DartsSpace.to_string`) sorts the two pairs of every intermediate node by input index
(the inputs are distinct, so this is a total order): a node sums its two branches, so the order
in which they are listed is meaningless, and swapping them gives the same string.

Size (derived, not enumerated; :attr:`DartsSpace.size` is ``None``): intermediate node ``2 + i``
chooses an unordered pair of distinct inputs from ``i + 2`` nodes and an operation for each,
i.e. ``7**2 * C(i + 2, 2)`` options: 49, 147, 294, 490. A cell therefore has
``49**4 * (1*3*6*10) = 1,037,664,180`` (~1.04e9) canonical strings and a genotype
``1,037,664,180**2 = 1,076,746,950,455,072,400`` (~1.08e18), the "~10^18" usually quoted for
DARTS. These count canonical strings; a few are isomorphic as graphs (e.g. two intermediate
nodes that read only the inputs, listed in the other order), which :meth:`Arch.hash` identifies.

Graph encoding (operations as nodes, as arch2vec encodes DARTS: Yan et al., NeurIPS 2020, §4)
--------------------------------------------------------------------------------------------
One cell (:func:`cell_to_arch`) is 11 nodes in topological order::

    0  c_{k-2} marker            1  c_{k-1} marker
    2, 3  the two ops of intermediate node 2     4, 5  ... of node 3
    6, 7  ... of node 4                          8, 9  ... of node 5
    10 output (reads all 8 op nodes: the concat)

An op node reading node ``j`` has an edge from input marker ``j`` (``j < 2``) or from *both* op
nodes of intermediate node ``j`` (whose sum is that node). Labels are :data:`CELL_LABELS`:
``c_k-2``, ``c_k-1``, the 7 operations and ``output``; the two input markers must differ because
``c_{k-2}`` and ``c_{k-1}`` are different tensors.

A genotype (:meth:`DartsSpace.genotype_to_arch`) is the normal cell's 11 nodes followed by the
reduction cell's 11 (22 nodes, block-diagonal adjacency: the cells share no edge). The operation
labels are shared by both cells (an encoder learns one embedding per operation), while the
markers carry the cell type: ``normal_c_k-2``, ``normal_c_k-1``, ``normal_output`` and the
``reduce_`` ones. Each cell is a connected component containing its own markers, so the
isomorphism-invariant :meth:`Arch.hash` tells a genotype from the one with its cells swapped, and
a GNN reaches the cell type within one message-passing step. We keep the two cells disjoint
instead of chaining them (normal output -> reduce inputs) because in the network each cell reads
two *different* earlier cells, which a single chain would misrepresent; per-cell encoders
(arch2vec pretrains on single cells) get the two 11-node cells from :meth:`DartsSpace.cell_archs`.
:attr:`DartsSpace.node_labels` has 13 labels: 4 input markers, 7 operations, 2 output markers.

>>> s = DartsSpace()
>>> a = s.genotype_to_arch(DARTS_V2)
>>> a.n_nodes, s.max_nodes, s.is_valid(a)
(22, 22, True)
>>> s.from_string(s.to_string(a)) == a
True
>>> s.to_string(a)[:60]
"Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ("
"""

from __future__ import annotations

import ast
from typing import NamedTuple, Sequence

import numpy as np

from nascore.arch import Arch
from nascore.errors import UserError
from nascore.spaces.base import SearchSpace

#: the DARTS operations that can appear in a derived genotype (``none`` never does)
OPS: tuple[str, ...] = ("sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5",
                        "max_pool_3x3", "avg_pool_3x3", "skip_connect")
N_INTERMEDIATE = 4
#: the cell output concatenates every intermediate node
CONCAT: tuple[int, ...] = (2, 3, 4, 5)
#: nodes of one cell's graph: 2 input markers, 8 op nodes, 1 output
CELL_NODES = 2 + 2 * N_INTERMEDIATE + 1
CELL_TYPES: tuple[str, ...] = ("normal", "reduce")
#: labels of a single cell's graph (:func:`cell_to_arch`)
CELL_LABELS: tuple[str, ...] = ("c_k-2", "c_k-1") + OPS + ("output",)

Cell = list  # of 8 (op, input_index) pairs, two per intermediate node


class Genotype(NamedTuple):
    """A DARTS genotype, field for field as in the DARTS code (``cnn/genotypes.py``).

    ``normal`` / ``reduce``: 8 ``(op, input_index)`` pairs each; ``*_concat``: ``[2, 3, 4, 5]``.

    >>> g = Genotype(normal=[('skip_connect', 0), ('skip_connect', 1)] * 4, normal_concat=[2, 3, 4, 5],
    ...              reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1)] * 4, reduce_concat=[2, 3, 4, 5])
    >>> g.normal[1]
    ('skip_connect', 1)
    """

    normal: list
    normal_concat: list
    reduce: list
    reduce_concat: list


# The published DARTS cells (DARTS paper, Fig. 4/5; ``cnn/genotypes.py`` of the DARTS code):
# V1 from first-order, V2 from second-order search (CIFAR-10 test error 3.00% / 2.76%).
DARTS_V1 = Genotype(
    normal=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 0), ('sep_conv_3x3', 1),
            ('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 2)],
    normal_concat=[2, 3, 4, 5],
    reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 0),
            ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('avg_pool_3x3', 0)],
    reduce_concat=[2, 3, 4, 5])
DARTS_V2 = Genotype(
    normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1),
            ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)],
    normal_concat=[2, 3, 4, 5],
    reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1),
            ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)],
    reduce_concat=[2, 3, 4, 5])


def _short(text) -> str:
    """A one-line, bounded ``repr`` of user input for error messages."""
    r = repr(text)
    return r if len(r) <= 90 else r[:87] + "..."


# --- validation and canonical form --------------------------------------------------------------
def validate_cell(cell, field: str = "cell") -> Cell:
    """Check one cell and return it as a list of 8 ``(str, int)`` tuples (order kept).

    Raises :class:`UserError` naming ``field`` for a wrong length, a malformed pair, an unknown or
    ``none`` operation, an input index outside ``0..i+1`` for node ``2+i``, or a node reading
    the same input twice.

    >>> validate_cell([['skip_connect', 0], ['sep_conv_3x3', 1]] * 4)[:2]
    [('skip_connect', 0), ('sep_conv_3x3', 1)]
    """
    if not isinstance(cell, (list, tuple)) or len(cell) != 2 * N_INTERMEDIATE:
        n = len(cell) if isinstance(cell, (list, tuple)) else type(cell).__name__
        raise UserError(f"DARTS genotype field {field!r} must list 8 (op, input) pairs, "
                        f"2 per intermediate node; got {n}")
    out = []
    for k, pair in enumerate(cell):
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and isinstance(pair[0], str)
                and isinstance(pair[1], int) and not isinstance(pair[1], bool)):
            raise UserError(f"DARTS genotype {field}[{k}] must be an (op, input_index) pair; got {_short(pair)}")
        op, j = pair
        if op == "none":
            raise UserError(f"DARTS genotype {field}[{k}] uses 'none', which never appears in a derived genotype")
        if op not in OPS:
            raise UserError(f"DARTS genotype {field}[{k}]: unknown operation {op!r} (choose from {', '.join(OPS)})")
        i = k // 2
        if not 0 <= j <= i + 1:
            raise UserError(f"DARTS genotype {field}[{k}] = {_short(tuple(pair))}: intermediate node {i + 2} "
                            f"can only read nodes 0..{i + 1}")
        out.append((op, j))
    for i in range(N_INTERMEDIATE):
        if out[2 * i][1] == out[2 * i + 1][1]:
            raise UserError(f"DARTS genotype {field}: intermediate node {i + 2} reads node {out[2 * i][1]} twice; "
                            f"its two inputs must be distinct")
    return out


def _check_concat(concat, field: str) -> list[int]:
    ok = (isinstance(concat, (list, tuple, range))
          and all(isinstance(v, int) and not isinstance(v, bool) for v in concat)
          and list(concat) == list(CONCAT))
    if not ok:
        raise UserError(f"DARTS genotype field {field!r} must be [2, 3, 4, 5] (the cell output concatenates "
                        f"all 4 intermediate nodes); got {_short(concat)}")
    return list(CONCAT)


def validate_genotype(genotype) -> Genotype:
    """Check a :class:`Genotype` (or any 4-sequence in its field order); return it normalised
    (lists of ``(str, int)`` tuples, concat ``[2, 3, 4, 5]``), pair order kept.

    >>> validate_genotype(DARTS_V1) == DARTS_V1
    True
    """
    if not isinstance(genotype, (tuple, list)) or len(genotype) != 4:
        raise UserError(f"a DARTS genotype has 4 fields (normal, normal_concat, reduce, reduce_concat); "
                        f"got {_short(genotype)}")
    normal, normal_concat, reduce, reduce_concat = genotype
    return Genotype(validate_cell(normal, "normal"), _check_concat(normal_concat, "normal_concat"),
                    validate_cell(reduce, "reduce"), _check_concat(reduce_concat, "reduce_concat"))


def canonical_cell(cell) -> Cell:
    """Validate, then sort each intermediate node's two pairs by input index.

    >>> canonical_cell([('sep_conv_3x3', 1), ('skip_connect', 0)] * 4)[:2]
    [('skip_connect', 0), ('sep_conv_3x3', 1)]
    """
    cell = validate_cell(cell)
    out = []
    for i in range(N_INTERMEDIATE):
        out.extend(sorted(cell[2 * i: 2 * i + 2], key=lambda p: p[1]))
    return out


def canonical_genotype(genotype) -> Genotype:
    """:func:`validate_genotype`, then :func:`canonical_cell` on both cells."""
    g = validate_genotype(genotype)
    return Genotype(canonical_cell(g.normal), list(CONCAT), canonical_cell(g.reduce), list(CONCAT))


# --- text -----------------------------------------------------------------------------------------
def genotype_to_string(genotype) -> str:
    """The DARTS text of a genotype, canonical (pairs sorted within each node).

    >>> genotype_to_string(DARTS_V1)[:78]
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('skip_connect', 0)"
    """
    g = canonical_genotype(genotype)

    def cell(c):
        return "[" + ", ".join(f"({op!r}, {j})" for op, j in c) + "]"

    concat = "[" + ", ".join(map(str, CONCAT)) + "]"
    return (f"Genotype(normal={cell(g.normal)}, normal_concat={concat}, "
            f"reduce={cell(g.reduce)}, reduce_concat={concat})")


def _literal(node: ast.AST, field: str, text: str):
    # ``range(a[, b])`` is how DARTS search logs print the concat; everything else must be a literal
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range"
            and not node.keywords and 1 <= len(node.args) <= 2):
        try:
            args = [ast.literal_eval(a) for a in node.args]
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            args = None
        if args is not None and all(isinstance(a, int) and not isinstance(a, bool) and abs(a) < 100 for a in args):
            return list(range(*args))
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise UserError(f"malformed DARTS genotype {_short(text)}: field {field!r} is not a literal "
                        f"list of (op, input) pairs") from None


def parse_genotype(text: str) -> Genotype:
    """Parse ``Genotype(normal=[...], normal_concat=[...], reduce=[...], reduce_concat=[...])``
    (keywords or positional, any pair order, any whitespace) without ``eval``; validated, pair
    order kept. Raises :class:`UserError` for malformed text or an invalid genotype.

    >>> parse_genotype(repr(DARTS_V2)) == DARTS_V2
    True
    """
    if not isinstance(text, str):
        raise UserError(f"a DARTS genotype string is needed; got {type(text).__name__}")
    src = text.strip()
    usage = "expected Genotype(normal=[...], normal_concat=[...], reduce=[...], reduce_concat=[...])"
    try:
        tree = ast.parse(src, mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        raise UserError(f"malformed DARTS genotype {_short(text)}: {usage}") from None
    call = tree.body
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "Genotype"):
        raise UserError(f"malformed DARTS genotype {_short(text)}: {usage}")
    fields = Genotype._fields
    if len(call.args) > len(fields) or any(isinstance(a, ast.Starred) for a in call.args):
        raise UserError(f"malformed DARTS genotype {_short(text)}: {usage}")
    nodes = dict(zip(fields, call.args))
    for kw in call.keywords:
        if kw.arg not in fields:
            raise UserError(f"malformed DARTS genotype {_short(text)}: unknown field {kw.arg!r} ({usage})")
        if kw.arg in nodes:
            raise UserError(f"malformed DARTS genotype {_short(text)}: field {kw.arg!r} given twice")
        nodes[kw.arg] = kw.value
    missing = [f for f in fields if f not in nodes]
    if missing:
        raise UserError(f"malformed DARTS genotype {_short(text)}: missing field(s) {', '.join(missing)}")
    return validate_genotype(Genotype(**{f: _literal(nodes[f], f, text) for f in fields}))


# --- graphs ---------------------------------------------------------------------------------------
def _markers(cell_type: str | None) -> tuple[str, str, str]:
    if cell_type is None:
        return CELL_LABELS[0], CELL_LABELS[1], CELL_LABELS[-1]
    return f"{cell_type}_c_k-2", f"{cell_type}_c_k-1", f"{cell_type}_output"


def _cell_block(cell: Cell, cell_type: str | None) -> tuple[np.ndarray, list[str]]:
    """Adjacency [11, 11] and labels of one (validated) cell, op nodes in the cell's pair order."""
    m = np.zeros((CELL_NODES, CELL_NODES), np.int64)
    for k, (_, j) in enumerate(cell):
        node = 2 + k
        if j < 2:
            m[j, node] = 1
        else:
            m[2 + 2 * (j - 2), node] = m[3 + 2 * (j - 2), node] = 1
        m[node, CELL_NODES - 1] = 1
    in0, in1, out = _markers(cell_type)
    return m, [in0, in1] + [op for op, _ in cell] + [out]


def _block_to_cell(m: np.ndarray, ops: Sequence[str], cell_type: str | None) -> Cell:
    """Inverse of :func:`_cell_block`; raises :class:`UserError` if the block is not a cell graph."""
    where = "DARTS cell graph" if cell_type is None else f"DARTS {cell_type} cell graph"
    in0, in1, out = _markers(cell_type)
    if tuple(ops[:2]) != (in0, in1) or ops[-1] != out:
        raise UserError(f"{where}: nodes 0, 1 and 10 must be labelled {in0!r}, {in1!r}, {out!r}; "
                        f"got {ops[0]!r}, {ops[1]!r}, {ops[-1]!r}")
    cell = []
    for k in range(2 * N_INTERMEDIATE):
        node, i = 2 + k, k // 2
        preds = [int(p) for p in np.flatnonzero(m[:, node])]
        if len(preds) == 1 and preds[0] < 2:
            j = preds[0]
        elif len(preds) == 2 and preds[0] >= 2 and preds[0] % 2 == 0 and preds[1] == preds[0] + 1:
            j = 2 + (preds[0] - 2) // 2
        else:
            raise UserError(f"{where}: op node {node} (intermediate node {i + 2}) has inputs {preds}, "
                            f"not one input marker or both op nodes of an earlier intermediate node")
        cell.append((ops[node], j))
    cell = validate_cell(cell, where)
    ref, _ = _cell_block(cell, cell_type)
    if not np.array_equal(ref, m):
        raise UserError(f"{where}: extra or missing edges (every op node must feed only the output)")
    return cell


def cell_to_arch(cell) -> Arch:
    """One cell (8 ``(op, input)`` pairs) as its 11-node graph, labels from :data:`CELL_LABELS`,
    pairs canonically ordered (see the module docstring). Used to pretrain cell encoders.

    >>> a = cell_to_arch(DARTS_V2.normal)
    >>> a.n_nodes, a.ops[0], a.ops[-1], a.n_edges
    (11, 'c_k-2', 'output', 17)
    """
    m, labels = _cell_block(canonical_cell(cell), None)
    return Arch.from_numpy(m, labels)


def arch_to_cell(arch: Arch) -> Cell:
    """Inverse of :func:`cell_to_arch` (pair order as in the graph).

    >>> arch_to_cell(cell_to_arch(DARTS_V1.reduce))[:2]
    [('max_pool_3x3', 0), ('max_pool_3x3', 1)]
    """
    if arch.n_nodes != CELL_NODES:
        raise UserError(f"a DARTS cell graph has {CELL_NODES} nodes; got {arch.n_nodes}")
    return _block_to_cell(arch.adjacency, arch.ops, None)


# --- the space ------------------------------------------------------------------------------------
class DartsSpace(SearchSpace):
    """The DARTS space over genotypes, encoded as 22-node graphs (see the module docstring).

    >>> import numpy as np
    >>> s = DartsSpace()
    >>> a = s.sample(np.random.default_rng(0))
    >>> s.is_valid(a) and s.is_valid(s.mutate(a, np.random.default_rng(1)))
    True
    >>> s.arch_to_genotype(s.from_string(repr(DARTS_V2))) == canonical_genotype(DARTS_V2)
    True
    """

    name = "darts"
    node_labels = (tuple(m for t in CELL_TYPES for m in _markers(t)[:2]) + OPS
                   + tuple(_markers(t)[2] for t in CELL_TYPES))
    max_nodes = 2 * CELL_NODES

    # --- genotype <-> graph -------------------------------------------------------------------
    def genotype_to_arch(self, genotype) -> Arch:
        """The 22-node graph of a genotype (validated; pairs put in canonical order)."""
        g = canonical_genotype(genotype)
        return self._build(g.normal, g.reduce)

    @staticmethod
    def _build(normal: Cell, reduce: Cell) -> Arch:
        m = np.zeros((2 * CELL_NODES, 2 * CELL_NODES), np.int64)
        labels: list[str] = []
        for c, (cell, t) in enumerate(zip((normal, reduce), CELL_TYPES)):
            block, lab = _cell_block(cell, t)
            s = c * CELL_NODES
            m[s:s + CELL_NODES, s:s + CELL_NODES] = block
            labels += lab
        return Arch.from_numpy(m, labels)

    def arch_to_genotype(self, arch: Arch) -> Genotype:
        """Read the genotype back from a 22-node graph (pair order as in the graph; pass it to
        :func:`canonical_genotype` or :meth:`to_string` for the canonical form)."""
        if not isinstance(arch, Arch) or arch.n_nodes != self.max_nodes:
            n = arch.n_nodes if isinstance(arch, Arch) else type(arch).__name__
            raise UserError(f"a DARTS genotype graph has {self.max_nodes} nodes; got {n}")
        m, k = arch.adjacency, CELL_NODES
        if m[:k, k:].any():
            raise UserError("DARTS genotype graph: the normal and reduction cells must not share edges")
        cells = [_block_to_cell(m[s:s + k, s:s + k], arch.ops[s:s + k], t)
                 for s, t in ((0, "normal"), (k, "reduce"))]
        return Genotype(cells[0], list(CONCAT), cells[1], list(CONCAT))

    def cell_archs(self, arch: Arch) -> tuple[Arch, Arch]:
        """The (normal, reduce) cells of a genotype graph as 11-node :func:`cell_to_arch` graphs."""
        g = self.arch_to_genotype(arch)
        return cell_to_arch(g.normal), cell_to_arch(g.reduce)

    def genotype(self, arch: Arch) -> Genotype:
        """The canonical genotype of ``arch``."""
        return canonical_genotype(self.arch_to_genotype(arch))

    # --- sampling -------------------------------------------------------------------------------
    def _sample_cell(self, rng: np.random.Generator) -> Cell:
        cell = []
        for i in range(N_INTERMEDIATE):
            inputs = rng.choice(i + 2, size=2, replace=False)
            ops = rng.integers(0, len(OPS), size=2)
            cell += [(OPS[int(o)], int(j)) for o, j in zip(ops, inputs)]
        return cell

    def sample(self, rng: np.random.Generator) -> Arch:
        """Uniform over canonical genotypes: per intermediate node, two distinct inputs uniformly
        and an operation for each uniformly."""
        normal = self._sample_cell(rng)
        return self.genotype_to_arch(Genotype(normal, list(CONCAT), self._sample_cell(rng), list(CONCAT)))

    @staticmethod
    def _edits(g: Genotype) -> list[tuple[int, int, tuple[str, int]]]:
        """Every elementary edit ``(cell, pair_index, new_pair)``: one pair's operation, or its
        input (to a node that is not the other pair's input). 60 per cell."""
        edits = []
        for c, cell in enumerate((g.normal, g.reduce)):
            for k, (op, j) in enumerate(cell):
                other = cell[k ^ 1][1]
                edits += [(c, k, (o, j)) for o in OPS if o != op]
                edits += [(c, k, (op, j2)) for j2 in range(k // 2 + 2) if j2 not in (j, other)]
        return edits

    def _apply(self, g: Genotype, edit) -> Arch:
        c, k, pair = edit
        cells = [list(g.normal), list(g.reduce)]
        cells[c][k] = pair
        return self.genotype_to_arch(Genotype(cells[0], list(CONCAT), cells[1], list(CONCAT)))

    def neighbours(self, arch: Arch) -> list[Arch]:
        """All 120 genotypes one elementary edit (one operation or one input of one pair) away;
        all distinct and different from ``arch``."""
        g = self.genotype(arch)
        return [self._apply(g, e) for e in self._edits(g)]

    def mutate(self, arch: Arch, rng: np.random.Generator) -> Arch:
        """One elementary edit chosen uniformly among the 120 (see :meth:`neighbours`)."""
        g = self.genotype(arch)
        edits = self._edits(g)
        return self._apply(g, edits[int(rng.integers(len(edits)))])

    def crossover(self, a: Arch, b: Arch, rng: np.random.Generator) -> Arch:
        """Per-node mixing: every intermediate node of each cell (both its pairs) comes from ``a``
        or ``b`` with equal probability; always valid since nodes choose independently."""
        ga, gb = self.genotype(a), self.genotype(b)
        pick = rng.integers(0, 2, size=(2, N_INTERMEDIATE))
        cells = []
        for c, (ca, cb) in enumerate(((ga.normal, gb.normal), (ga.reduce, gb.reduce))):
            cell = []
            for i in range(N_INTERMEDIATE):
                cell += (ca if pick[c, i] == 0 else cb)[2 * i: 2 * i + 2]
            cells.append(cell)
        return self.genotype_to_arch(Genotype(cells[0], list(CONCAT), cells[1], list(CONCAT)))

    # --- identity ---------------------------------------------------------------------------------
    def is_valid(self, arch: Arch) -> bool:
        """A 22-node graph laid out exactly as :meth:`genotype_to_arch` builds it (either order of
        the two op nodes within an intermediate node is accepted)."""
        try:
            g = self.arch_to_genotype(arch)
        except UserError:
            return False
        return self._build(g.normal, g.reduce) == arch

    def to_string(self, arch: Arch) -> str:
        self.validate(arch)
        return genotype_to_string(self.arch_to_genotype(arch))

    def from_string(self, text: str) -> Arch:
        return self.genotype_to_arch(parse_genotype(text))
