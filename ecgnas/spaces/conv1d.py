"""``ecg-cell``: a finite 1D cell search space for ECG beat classification, with exact costs.

A NAS-Bench-201 cell (Dong & Yang, ICLR 2020, §2.1) on 1D signals plus two searchable macro
choices, so that every strategy of :mod:`nascore.strategies` (random, regularised evolution,
DCL-ENAS, arch2vec-BO/RL, the last ones embedding *every* architecture) runs on it unchanged.

Operations (:data:`ECG_OPS`, in this order; the :class:`~nascore.darts.ops.OpSet` ``ecg1d`` of
:func:`ecg1d_opset`, usable by supernets too)
    ``none`` (zeros), ``skip_connect`` (identity), ``conv_3`` (ReLU - Conv1d k3 - BN),
    ``dil_conv_5`` (ReLU - depthwise Conv1d k5 dilation 2 - pointwise conv - BN, DARTS
    ``DilConv``), ``sep_conv_11`` (DARTS ``SepConv`` with kernel 11: two stacked ReLU -
    depthwise - pointwise - BN), ``max_pool_3`` (k3, stride 1, padding 1) and ``se``
    (squeeze-and-excitation on the identity path, Hu, Shen & Sun, CVPR 2018:
    ``x * sigmoid(W2 relu(W1 mean_t(x)))``, :class:`SqueezeExcite`).

Cell
    4 nodes, 6 edges ``i -> j`` ordered as :data:`nascore.spaces.nb201.EDGES`; node 0 is the cell
    input, node 3 its output, every node sums its incoming edges. Only *live* edges are built and
    run: an edge that is not ``none`` and lies on an input-to-output path free of ``none``
    (:func:`live_edges`). A dead edge could only add a constant (a BN shift of zeros) or nothing,
    so pruning it makes functionally equivalent strings (same :meth:`ECGCellSpace.equivalence_hash`)
    the same network; a cell whose every path holds a ``none`` outputs zeros.

Macro (searchable)
    ``width`` in :data:`WIDTHS` = channels ``C`` of stage 0, ``depth`` in :data:`DEPTHS` = cells
    per stage. Size: 7**6 cells x 4 macros = 470,596 architectures.

Network (:class:`ECGCellNet`, ``model(x [B, in_channels, window], rr [B, n_rr]) -> logits
[B, n_classes]``, the interface of :mod:`ecgnas.models`)::

    stem     Conv1d(in_channels, C, 7, stride 2, pad 3, no bias) - BN - ReLU - MaxPool(2)  (L/4)
    stage 0  depth cells on C channels
    reduce   ResidualReduction C -> 2C (stride 2)
    stage 1  depth cells on 2C
    reduce   ResidualReduction 2C -> 4C
    stage 2  depth cells on 4C
    BN - ReLU - global average pool -> [B, 4C]
    RR       Linear(n_rr, 32) - ReLU
    head     Linear(4C + 32, 64) - ReLU - Dropout - Linear(64, n_classes)

Stage lengths are :func:`stage_lengths` (any ``window >= 16``, odd lengths too). All BNs are
affine with running statistics (a standalone trainable network). In training mode BN needs more
than one value per channel: with ``window < 32`` the last stage has length 1, so train with
batches of 2 or more.

Graph encoding (:class:`~nascore.arch.Arch`, 10 nodes)
    0 ``input``, 1 the width label (``width_8``/``width_16``), 2 the depth label
    (``depth_1``/``depth_2``), 3..8 the six edge operations in string order, wired among
    themselves exactly as the NB-201 ops-as-nodes encoding (:func:`nascore.spaces.nb201._op_graph`,
    with node 2 in the role of its input), 9 ``output``; edges ``0 -> 1 -> 2`` and ``2 ->`` every
    operation whose edge leaves cell node 0. Every input-output path passes both macro nodes, so
    GIN, the arch2vec VGAE and the path encoding all see width and depth. The adjacency is the same
    for every architecture (:data:`ADJACENCY`); only labels change.

Canonical string: ``w<width>d<depth>:`` then the NB-201-style cell string, e.g.
``w16d2:|conv_3~0|+|sep_conv_11~0|skip_connect~1|+|none~0|se~1|max_pool_3~2|``; ``key`` is it.

Cost model (:meth:`ECGCellSpace.cost`, :meth:`~ECGCellSpace.cost_arrays`)
    ``params`` = trainable parameters, ``flops`` = what :class:`torch.utils.flop_counter.FlopCounterMode`
    counts for one eval forward pass with batch 1: convolutions, linear layers and matrix products
    at 2 FLOPs per multiply-add; BN, activations, pooling, additions and the SE gate's products are
    not counted. The network is additive: fixed parts (stem, reductions, last BN, RR branch, head)
    per width, plus ``depth`` times the live edges' entries of a per (width, stage, operation)
    table, each entry measured once on a single module (cached per shape). Exact, and vectorised
    with numpy over many architectures.

Latency
    :func:`measure_latency_ms` times a model (median CPU wall time, eval mode, inference mode).
    :meth:`ECGCellSpace.estimate_latency_ms` adds up a lookup table of measured latencies (one
    entry per (width, stage, operation) -- times ``depth`` for a macro -- plus the fixed parts),
    as FBNet (Wu et al., CVPR 2019, §3.2) and ProxylessNAS (Cai et al., ICLR 2019, §3.3) estimate
    latency. The table is measured on first use and cached as JSON under
    ``user_cache_root()/ecgnas/latency/``, keyed by torch version, CPU model, shapes, batch and
    threads. Constraints (:class:`~ecgnas.spaces.constrained.ConstrainedSpace`) use the estimate;
    evaluations record the measured latency of the trained model.

>>> space = ECGCellSpace()
>>> a = space.from_string("w16d2:|conv_3~0|+|sep_conv_11~0|skip_connect~1|+|none~0|se~1|max_pool_3~2|")
>>> space.size, a.n_nodes, a.ops[1:3], space.to_string(space.mutate(a, np.random.default_rng(0))) != space.key(a)
(470596, 10, ('width_16', 'depth_2'), True)
>>> import torch
>>> net = space.build_model(a).eval()
>>> net(torch.zeros(2, 1, 252), torch.zeros(2, 4)).shape
torch.Size([2, 5])
>>> from ecgnas.models import count_parameters
>>> space.cost(a)["params"] == count_parameters(net)
True
"""

from __future__ import annotations

import hashlib
import itertools
import json
from functools import lru_cache
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from torch import nn

from nascore.arch import Arch
from nascore.darts.ops import BUILDERS, OpSet, ReLUConvBN, SepConv
from nascore.errors import UserError
from nascore.spaces.base import SearchSpace
from nascore.spaces.nb201 import ADJACENCY as NB201_ADJACENCY
from nascore.spaces.nb201 import EDGES

from ecgnas.hardware import _median_ms, count_flops, cpu_model, measure_latency_ms  # noqa: F401 (re-exported)

#: the seven candidate operations, in one-hot / code order (``none`` is code 0)
ECG_OPS: tuple[str, ...] = ("none", "skip_connect", "conv_3", "dil_conv_5", "sep_conv_11", "max_pool_3", "se")
WIDTHS: tuple[int, ...] = (8, 16)
DEPTHS: tuple[int, ...] = (1, 2)
WIDTH_LABELS = tuple(f"width_{w}" for w in WIDTHS)
DEPTH_LABELS = tuple(f"depth_{d}" for d in DEPTHS)
N_CELLS = len(ECG_OPS) ** len(EDGES)  # 117,649
SIZE = N_CELLS * len(WIDTHS) * len(DEPTHS)  # 470,596
MIN_WINDOW = 16
RR_UNITS = 32
HEAD_UNITS = 64
_SOURCES = tuple(s for s, _ in EDGES)  # (0, 0, 1, 0, 1, 2)


# --- operations -------------------------------------------------------------------------------------
class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation on the identity path (Hu, Shen & Sun, CVPR 2018, §3):
    ``x * sigmoid(W2 relu(W1 mean(x)))``, the mean over every spatial axis, ``W1: C -> max(C // 4, 4)``.
    Dimension-generic; ``[B, C, *S]`` kept.

    >>> se = SqueezeExcite(8)
    >>> se.fc1.out_features, se(torch.ones(2, 8, 5)).shape
    (4, torch.Size([2, 8, 5]))
    """

    def __init__(self, C: int, reduction: int = 4, min_channels: int = 4):
        super().__init__()
        r = max(C // reduction, min_channels)
        self.fc1 = nn.Linear(C, r)
        self.fc2 = nn.Linear(r, C)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean(dim=tuple(range(2, x.dim())))
        w = torch.sigmoid(self.fc2(torch.relu(self.fc1(s))))
        return x * w.view(*w.shape, *([1] * (x.dim() - 2)))


def _se(ops: OpSet, C: int, stride: int, affine: bool) -> nn.Module:
    """``se``; with stride 2 the identity path is ``skip_connect``'s reduction, then SE."""
    if stride == 1:
        return SqueezeExcite(C)
    return nn.Sequential(BUILDERS["skip_connect"](ops, C, stride, affine), SqueezeExcite(C))


#: builders of the ``ecg1d`` operations (``builder(opset, C, stride, affine)``, see :mod:`nascore.darts.ops`)
ECG_BUILDERS = {
    "none": BUILDERS["none"],
    "skip_connect": BUILDERS["skip_connect"],
    "conv_3": lambda ops, C, stride, affine: ReLUConvBN(ops, C, C, 3, stride, 1, affine),
    "dil_conv_5": BUILDERS["dil_conv_5x5"],
    "sep_conv_11": lambda ops, C, stride, affine: SepConv(ops, C, C, 11, stride, 5, affine),
    "max_pool_3": BUILDERS["max_pool_3x3"],
    "se": _se,
}


def ecg1d_opset(primitives: Sequence[str] = ECG_OPS) -> OpSet:
    """The ``ecg1d`` operation set (dim 1) over ``primitives`` (default: all of :data:`ECG_OPS`).

    >>> ops = ecg1d_opset()
    >>> ops.build("sep_conv_11", 8, stride=2, affine=False)(torch.randn(2, 8, 25)).shape
    torch.Size([2, 8, 13])
    """
    return OpSet("ecg1d", 1, tuple(primitives), ECG_BUILDERS)


# --- graph encoding -------------------------------------------------------------------------------------
def _graph() -> np.ndarray:
    m = np.zeros((10, 10), np.int64)
    m[0, 1] = m[1, 2] = 1
    m[2:, 2:] = NB201_ADJACENCY  # the depth node plays the NB-201 cell input
    return m


ADJACENCY = _graph()
_MATRIX = Arch.from_numpy(ADJACENCY, ["input"] * 10).matrix
_NB201_MATRIX = Arch.from_numpy(NB201_ADJACENCY, ["input"] * 8).matrix
_SHARED_ADJACENCY = ADJACENCY.copy()
_SHARED_ADJACENCY.flags.writeable = False


def _arch(ops: tuple) -> Arch:
    """An :class:`Arch` on the constant graph whose cached ``adjacency`` is one shared read-only
    array, so code reading the adjacency of all 470,596 architectures (arch2vec's dataset) does
    not rebuild it each time."""
    a = Arch(_MATRIX, ops)
    a.__dict__["adjacency"] = _SHARED_ADJACENCY
    return a
_OP_CODE = {op: k for k, op in enumerate(ECG_OPS)}
_MACRO_CODE = {f"w{w}d{d}": wi * len(DEPTHS) + di for wi, w in enumerate(WIDTHS) for di, d in enumerate(DEPTHS)}
_TOKENS = [{f"{op}~{s}": k for k, op in enumerate(ECG_OPS)} for s in range(3)]
_CELL_FORMAT = "|{}~0|+|{}~0|{}~1|+|{}~0|{}~1|{}~2|"


def live_edges(codes: np.ndarray) -> np.ndarray:
    """Which edges are built: not ``none`` and on an input-output path without ``none``.

    ``codes``: int ``[N, 6]`` operation codes (``ECG_OPS`` index, edges in :data:`EDGES` order)
    -> bool ``[N, 6]``.

    >>> live_edges(np.array([[2, 0, 0, 0, 2, 0], [2, 0, 0, 0, 0, 2]])).astype(int).tolist()
    [[1, 0, 0, 0, 1, 0], [0, 0, 0, 0, 0, 0]]
    """
    on = np.asarray(codes) != 0
    e01, e02, e12, e03, e13, e23 = (on[:, k] for k in range(6))
    fwd1 = e01
    fwd2 = e02 | (fwd1 & e12)
    bwd2 = e23
    bwd1 = e13 | (e12 & bwd2)
    return np.stack([e01 & bwd1, e02 & bwd2, e12 & fwd1 & bwd2, e03, e13 & fwd1, e23 & fwd2], axis=1)


def stage_lengths(window: int) -> tuple[int, int, int]:
    """Signal length in stages 0, 1, 2: stem ``ceil(window / 2)`` then max-pool ``// 2``; each
    reduction ``ceil(L / 2)``.

    >>> stage_lengths(252), stage_lengths(17)
    ((63, 32, 16), (4, 2, 1))
    """
    l0 = -(-int(window) // 2) // 2
    l1 = -(-l0 // 2)
    return l0, l1, -(-l1 // 2)


# --- the space -----------------------------------------------------------------------------------------
class ECGCellSpace(SearchSpace):
    """The ``ecg-cell`` space (see the module docstring)."""

    name = "ecg-cell"
    node_labels = ("input",) + WIDTH_LABELS + DEPTH_LABELS + ECG_OPS + ("output",)
    max_nodes = 10

    # --- construction -----------------------------------------------------------------------------
    def from_parts(self, width: int, depth: int, ops: Sequence[str]) -> Arch:
        """The architecture of a macro choice and six edge operations (in :data:`EDGES` order)."""
        if width not in WIDTHS:
            raise UserError(f"width {width!r} is outside the ecg-cell space "
                            f"(choose from {', '.join(map(str, WIDTHS))})")
        if depth not in DEPTHS:
            raise UserError(f"depth {depth!r} is outside the ecg-cell space "
                            f"(choose from {', '.join(map(str, DEPTHS))})")
        ops = tuple(ops)
        if len(ops) != 6:
            raise UserError(f"an ecg-cell cell needs 6 edge operations, got {len(ops)}: {list(ops)}")
        for op in ops:
            if op not in _OP_CODE:
                raise UserError(f"operation {op!r} is outside the ecg-cell space (choose from {', '.join(ECG_OPS)})")
        return _arch(("input", f"width_{width}", f"depth_{depth}") + ops + ("output",))

    def _from_codes(self, macro: int, codes) -> Arch:
        wi, di = divmod(int(macro), len(DEPTHS))
        return _arch(("input", WIDTH_LABELS[wi], DEPTH_LABELS[di]) + tuple(ECG_OPS[int(c)] for c in codes)
                     + ("output",))

    def parts(self, arch: Arch) -> tuple[int, int, tuple[str, ...]]:
        """``(width, depth, edge operations)`` of a valid architecture."""
        self.validate(arch)
        return WIDTHS[WIDTH_LABELS.index(arch.ops[1])], DEPTHS[DEPTH_LABELS.index(arch.ops[2])], tuple(arch.ops[3:9])

    def edge_ops(self, arch: Arch) -> tuple[str, ...]:
        return tuple(arch.ops[3:9])

    def _codes(self, arch: Arch) -> tuple[int, tuple[int, ...]]:
        """``(macro index, six op codes)``; macro index = ``width_index * 2 + depth_index``."""
        self.validate(arch)
        macro = WIDTH_LABELS.index(arch.ops[1]) * len(DEPTHS) + DEPTH_LABELS.index(arch.ops[2])
        return macro, tuple(_OP_CODE[o] for o in arch.ops[3:9])

    # --- sampling -----------------------------------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> Arch:
        """Uniform over all 470,596 architectures (independent uniform choices)."""
        codes = rng.integers(0, len(ECG_OPS), size=6)
        return self._from_codes(int(rng.integers(len(WIDTHS))) * len(DEPTHS) + int(rng.integers(len(DEPTHS))), codes)

    def mutate(self, arch: Arch, rng: np.random.Generator) -> Arch:
        """One elementary change: of the 8 choices (6 edges, width, depth) one, drawn uniformly,
        takes another value drawn uniformly."""
        macro, codes = self._codes(arch)
        wi, di = divmod(macro, len(DEPTHS))
        codes = list(codes)
        gene = int(rng.integers(8))
        if gene < 6:
            others = [k for k in range(len(ECG_OPS)) if k != codes[gene]]
            codes[gene] = others[int(rng.integers(len(others)))]
        elif gene == 6:
            others = [k for k in range(len(WIDTHS)) if k != wi]
            wi = others[int(rng.integers(len(others)))]
        else:
            others = [k for k in range(len(DEPTHS)) if k != di]
            di = others[int(rng.integers(len(others)))]
        return self._from_codes(wi * len(DEPTHS) + di, codes)

    def crossover(self, a: Arch, b: Arch, rng: np.random.Generator) -> Arch:
        """Each edge operation, the width and the depth from either parent with probability 1/2."""
        (ma, ca), (mb, cb) = self._codes(a), self._codes(b)
        pick = rng.integers(0, 2, size=8)
        codes = [ca[k] if pick[k] == 0 else cb[k] for k in range(6)]
        wi = divmod(ma if pick[6] == 0 else mb, len(DEPTHS))[0]
        di = divmod(ma if pick[7] == 0 else mb, len(DEPTHS))[1]
        return self._from_codes(wi * len(DEPTHS) + di, codes)

    # --- identity -------------------------------------------------------------------------------------
    def is_valid(self, arch: Arch) -> bool:
        """Exactly the 10-node graph of the module docstring with labels in their places."""
        ops = arch.ops
        return (len(ops) == 10 and arch.matrix == _MATRIX and ops[0] == "input" and ops[9] == "output"
                and ops[1] in WIDTH_LABELS and ops[2] in DEPTH_LABELS and all(o in _OP_CODE for o in ops[3:9]))

    def to_string(self, arch: Arch) -> str:
        self.validate(arch)
        return f"w{arch.ops[1][6:]}d{arch.ops[2][6:]}:" + _CELL_FORMAT.format(*arch.ops[3:9])

    def _parse_fast(self, text: str):
        """``(macro, codes)`` of a well-formed canonical string, else ``None``."""
        head, _, cell = text.partition(":")
        macro = _MACRO_CODE.get(head)
        t = cell.split("|")
        if macro is None or len(t) != 10 or t[0] or t[9] or t[2] != "+" or t[5] != "+":
            return None
        try:
            return macro, tuple(_TOKENS[s][t[k]] for s, k in zip(_SOURCES, (1, 3, 4, 6, 7, 8)))
        except KeyError:
            return None

    def from_string(self, text: str) -> Arch:
        if not isinstance(text, str):
            raise UserError(f"an ecg-cell arch string must be text, got {text!r}")
        text = text.strip()
        fast = self._parse_fast(text)
        if fast is not None:
            return self._from_codes(*fast)
        head, sep, cell = text.partition(":")
        shape = "w<width>d<depth>:|op~0|+|op~0|op~1|+|op~0|op~1|op~2|"
        if not sep or not head.startswith("w") or "d" not in head:
            raise UserError(f"malformed ecg-cell arch string {text!r}: expected {shape}")
        w, _, d = head[1:].partition("d")
        # ASCII digits only ("²".isdigit() is true, int("²") fails) and a bounded length (int() of
        # a 5,000-digit string raises): anything else is a malformed prefix
        if not all(v.isascii() and v.isdigit() and len(v) <= 9 for v in (w, d)):
            raise UserError(f"malformed ecg-cell arch string {text!r}: macro prefix {head!r} "
                            f"must read w<width>d<depth>")
        groups = cell.split("+")
        if len(groups) != 3:
            raise UserError(f"malformed ecg-cell arch string {text!r}: expected 3 cell groups joined by '+'")
        ops = []
        for t, g in enumerate(groups, start=1):
            parts = g[1:-1].split("|") if len(g) >= 2 and g[0] == g[-1] == "|" else None
            if parts is None or len(parts) != t:
                raise UserError(f"malformed ecg-cell arch string {text!r}: group {g!r} must list node {t}'s "
                                f"{t} input(s) as |op~i|...|")
            for s, p in enumerate(parts):
                op, _, src = p.partition("~")
                if src != str(s):
                    raise UserError(f"malformed ecg-cell arch string {text!r}: {p!r} should read from node {s}")
                ops.append(op)
        return self.from_parts(int(w), int(d), ops)

    def equivalence_hash(self, arch: Arch) -> str:
        """Hash shared by functionally identical architectures: the cell pruned of ``none`` and dead
        nodes as in :meth:`nascore.spaces.nb201.NB201Space.equivalence_hash`, with the macro choice
        kept (width and depth change the network even when the cell is empty)."""
        self.validate(arch)
        cell = Arch(_NB201_MATRIX, ("input",) + tuple(arch.ops[3:9]) + ("output",))
        return hashlib.sha1(f"{arch.ops[1]}|{arch.ops[2]}|{cell.prune(drop_ops=('none',)).hash}".encode()).hexdigest()

    # --- encodings ------------------------------------------------------------------------------------
    def to_vector(self, arch: Arch) -> np.ndarray:
        """46 floats: one-hot of the six edge operations (6 x 7), then width (2) and depth (2) one-hots."""
        macro, codes = self._codes(arch)
        v = np.zeros(6 * len(ECG_OPS) + len(WIDTHS) + len(DEPTHS), np.float32)
        v[np.arange(6) * len(ECG_OPS) + np.asarray(codes)] = 1
        wi, di = divmod(macro, len(DEPTHS))
        v[6 * len(ECG_OPS) + wi] = 1
        v[6 * len(ECG_OPS) + len(WIDTHS) + di] = 1
        return v

    # --- finite space -----------------------------------------------------------------------------------
    @property
    def size(self) -> int:
        return SIZE

    def enumerate(self) -> Iterator[Arch]:
        """Every architecture, macro by macro (``w8d1, w8d2, w16d1, w16d2``), cells in
        ``itertools.product`` order of :data:`ECG_OPS` -- the order of :meth:`all_strings` and of
        ``cost_arrays(None)``."""
        for w, d in itertools.product(WIDTH_LABELS, DEPTH_LABELS):
            head = ("input", w, d)
            for ops in itertools.product(ECG_OPS, repeat=6):
                yield _arch(head + ops + ("output",))

    def all_strings(self) -> list[str]:
        """The canonical strings of :meth:`enumerate`, fast (string formatting only)."""
        cells = [_CELL_FORMAT.format(*ops) for ops in itertools.product(ECG_OPS, repeat=6)]
        return [f"w{w}d{d}:" + c for w, d in itertools.product(WIDTHS, DEPTHS) for c in cells]

    # --- network ------------------------------------------------------------------------------------------
    @property
    def opset(self) -> OpSet:
        return ecg1d_opset()

    def build_model(self, arch: Arch, in_channels: int = 1, window: int = 252, n_rr: int = 4, n_classes: int = 5,
                    dropout: float = 0.2) -> "ECGCellNet":
        """The trainable :class:`ECGCellNet` of ``arch`` (call ``torch.manual_seed`` first for
        reproducible weights)."""
        width, depth, ops = self.parts(arch)
        return ECGCellNet(width, depth, ops, in_channels=in_channels, window=window, n_rr=n_rr, n_classes=n_classes,
                          dropout=dropout)

    # --- costs ------------------------------------------------------------------------------------------------
    def _decode(self, items) -> tuple[np.ndarray, np.ndarray]:
        """``(macro [N], codes [N, 6])`` of canonical strings and/or architectures; ``None`` = all."""
        if items is None:
            return None, None
        if isinstance(items, (str, Arch)):
            raise UserError("cost_arrays needs a sequence of arch strings or architectures, not a single one")
        items = list(items)
        macro = np.empty(len(items), np.int64)
        codes = np.empty((len(items), 6), np.int64)
        for k, it in enumerate(items):
            if isinstance(it, str):
                mc = self._parse_fast(it)
                mc = mc if mc is not None else self._codes(self.from_string(it))
            elif isinstance(it, Arch):
                mc = self._codes(it)
            else:
                raise UserError(f"cannot cost {it!r}: expected an ecg-cell arch string or Arch")
            macro[k], codes[k] = mc
        return macro, codes

    @staticmethod
    def _sum(table: "_Table", macro, codes) -> tuple[np.ndarray, ...]:
        """Fixed part plus depth times the live edges' stage-summed entries, for every column of ``table``."""
        if macro is None:  # the whole space, in enumerate order
            codes = _all_cell_codes()
            live = live_edges(codes)
            out = []
            for fixed, per_op in table.columns():
                cell = [(per_op[wi][codes] * live).sum(1) for wi in range(len(WIDTHS))]
                out.append(np.concatenate([fixed[wi] + d * cell[wi]
                                           for wi in range(len(WIDTHS)) for d in DEPTHS]))
            return tuple(out)
        wi, di = np.divmod(macro, len(DEPTHS))
        depth = np.asarray(DEPTHS)[di]
        live = live_edges(codes)
        return tuple(fixed[wi] + depth * (per_op[wi[:, None], codes] * live).sum(1)
                     for fixed, per_op in table.columns())

    def cost_arrays(self, items=None, *, in_channels: int = 1, window: int = 252, n_rr: int = 4,
                    n_classes: int = 5) -> tuple[np.ndarray, np.ndarray]:
        """``(params int64 [N], flops int64 [N])`` of canonical strings and/or architectures, exact
        (see the module docstring); ``items=None``: every architecture in :meth:`enumerate` order."""
        table = cost_table(*_check_shape(in_channels, window, n_rr, n_classes))
        params, flops = self._sum(table, *self._decode(items))
        return params.astype(np.int64), flops.astype(np.int64)

    def cost(self, arch: Arch, in_channels: int = 1, window: int = 252, n_rr: int = 4,
             n_classes: int = 5) -> dict:
        """``{"params": int, "flops": int}`` of one architecture (FLOPs as FlopCounterMode counts them)."""
        p, f = self.cost_arrays([arch], in_channels=in_channels, window=window, n_rr=n_rr, n_classes=n_classes)
        return {"params": int(p[0]), "flops": int(f[0])}

    def min_cost(self, *, in_channels: int = 1, window: int = 252, n_rr: int = 4, n_classes: int = 5) -> dict:
        """The smallest parameter count and the smallest FLOP count in the space: both belong to an
        empty cell (every operation's entries are >= 0), i.e. to the smallest fixed part."""
        table = cost_table(*_check_shape(in_channels, window, n_rr, n_classes))
        return {"params": int(table.fixed["params"].min()), "flops": int(table.fixed["flops"].min())}

    def estimate_latency_ms(self, items=None, *, in_channels: int = 1, window: int = 252, n_rr: int = 4,
                            n_classes: int = 5, batch: int = 1, threads: int = 1) -> np.ndarray:
        """Additive latency estimate (float64 ms ``[N]``) from the cached lookup table
        (:func:`latency_table`, measured on first use); ``items=None``: the whole space."""
        shape = _check_shape(in_channels, window, n_rr, n_classes)
        table = latency_table(*shape, batch=batch, threads=threads)
        (ms,) = self._sum(table, *self._decode(items))
        return ms.astype(np.float64)



@lru_cache(maxsize=1)
def _all_cell_codes() -> np.ndarray:
    """int64 ``[7**6, 6]``: every cell's op codes in ``itertools.product`` order."""
    k = len(ECG_OPS)
    return (np.arange(N_CELLS)[:, None] // k ** np.arange(5, -1, -1)[None, :]) % k


def _check_shape(in_channels, window, n_rr, n_classes) -> tuple[int, int, int, int]:
    for name, v, lo in (("in_channels", in_channels, 1), ("window", window, MIN_WINDOW), ("n_rr", n_rr, 1),
                        ("n_classes", n_classes, 1)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise UserError(f"ecg-cell: {name}={v!r} must be an integer >= {lo}")
    return int(in_channels), int(window), int(n_rr), int(n_classes)


# --- network ----------------------------------------------------------------------------------------------
class ResidualReduction(nn.Module):
    """NB-201 stage transition (ResNet basic block, stride 2) for standalone networks: ReLU-conv3
    (stride 2)-BN, ReLU-conv3-BN, plus a shortcut avg-pool 2 (ceil mode, so odd sizes give
    ``ceil(S / 2)`` like the strided conv) and conv 1x1; BNs keep running statistics (unlike
    :class:`nascore.darts.supernet.ResidualReduction`). ``[B, c_in, *S] -> [B, c_out, *ceil(S / 2)]``.

    >>> ResidualReduction(ecg1d_opset(), 4, 8)(torch.randn(2, 4, 7)).shape
    torch.Size([2, 8, 4])
    """

    def __init__(self, ops: OpSet, c_in: int, c_out: int):
        super().__init__()
        self.conv_a = ReLUConvBN(ops, c_in, c_out, 3, 2, 1, affine=True)
        self.conv_b = ReLUConvBN(ops, c_out, c_out, 3, 1, 1, affine=True)
        pool = (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)[ops.dim - 1](2, 2, ceil_mode=True)
        self.shortcut = nn.Sequential(pool, ops.conv(c_in, c_out, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.conv_b(self.conv_a(x))


class ECGCell(nn.Module):
    """One cell on ``C`` channels with its live edges only (:func:`live_edges`); ``[B, C, L]`` kept.

    >>> cell = ECGCell(ecg1d_opset(), 8, ["none"] * 6)
    >>> len(cell.edges), float(cell(torch.ones(1, 8, 5)).abs().sum())
    (0, 0.0)
    """

    def __init__(self, ops: OpSet, C: int, cell_ops: Sequence[str]):
        super().__init__()
        cell_ops = tuple(cell_ops)
        bad = [o for o in cell_ops if o not in _OP_CODE]
        if len(cell_ops) != len(EDGES) or bad:
            raise UserError(f"an ecg-cell cell needs 6 operations from {', '.join(ECG_OPS)}; got {list(cell_ops)}")
        codes = np.array([[_OP_CODE[o] for o in cell_ops]])
        live = live_edges(codes)[0]
        self.plan = [(e, s, t) for e, (s, t) in enumerate(EDGES) if live[e]]
        self.edges = nn.ModuleList(ops.build(cell_ops[e], C, 1, affine=True) for e, _, _ in self.plan)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes: list = [x, None, None, None]
        for op, (_, s, t) in zip(self.edges, self.plan):
            y = op(nodes[s])
            nodes[t] = y if nodes[t] is None else nodes[t] + y
        return torch.zeros_like(x) if nodes[3] is None else nodes[3]


class ECGCellNet(nn.Module):
    """The ``ecg-cell`` network (see the module docstring): ``model(x [B, in_channels, L], rr [B, n_rr])
    -> logits [B, n_classes]``."""

    def __init__(self, width: int, depth: int, cell_ops: Sequence[str], in_channels: int = 1, window: int = 252,
                 n_rr: int = 4, n_classes: int = 5, dropout: float = 0.2):
        super().__init__()
        in_channels, window, n_rr, n_classes = _check_shape(in_channels, window, n_rr, n_classes)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
            raise UserError(f"ecg-cell: dropout={dropout!r} must be a number in [0, 1)")
        ops = ecg1d_opset()
        self.width, self.depth, self.cell_ops, self.window = int(width), int(depth), tuple(cell_ops), window
        C = self.width
        self.stem = nn.Sequential(nn.Conv1d(in_channels, C, 7, stride=2, padding=3, bias=False), nn.BatchNorm1d(C),
                                  nn.ReLU(), nn.MaxPool1d(2))
        layers: list[nn.Module] = []
        c = C
        for stage in range(3):
            if stage:
                layers.append(ResidualReduction(ops, c, 2 * c))
                c *= 2
            layers += [ECGCell(ops, c, self.cell_ops) for _ in range(self.depth)]
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(nn.BatchNorm1d(c), nn.ReLU())
        self.rr = nn.Sequential(nn.Linear(n_rr, RR_UNITS), nn.ReLU())
        self.head = nn.Sequential(nn.Linear(c + RR_UNITS, HEAD_UNITS), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(HEAD_UNITS, n_classes))

    def forward(self, x: torch.Tensor, rr: torch.Tensor) -> torch.Tensor:
        h = self.lastact(self.cells(self.stem(x))).mean(dim=2)
        return self.head(torch.cat([h, self.rr(rr)], dim=1))


# --- cost tables ------------------------------------------------------------------------------------------
class _Table:
    """``fixed[c][width index]`` and ``per_op[c][width index, op code]`` (stage-summed) per column ``c``."""

    def __init__(self, fixed: dict, per_op: dict):
        self.fixed, self.per_op = fixed, per_op

    def columns(self):
        return [(self.fixed[k], self.per_op[k]) for k in self.fixed]


def _fixed_net(width: int, in_channels: int, window: int, n_rr: int, n_classes: int) -> ECGCellNet:
    """The network of the empty cell: exactly the fixed parts of every architecture of this width."""
    return ECGCellNet(width, 1, ("none",) * 6, in_channels, window, n_rr, n_classes, 0.0).eval()


def _op_modules(in_channels: int, window: int):
    """``(width index, stage, op code, module, input)`` for every non-``none`` op of every stage."""
    ops = ecg1d_opset()
    for wi, w in enumerate(WIDTHS):
        for s, length in enumerate(stage_lengths(window)):
            c = w * 2 ** s
            for k, op in enumerate(ECG_OPS):
                if k:
                    yield wi, s, k, ops.build(op, c, 1, affine=True).eval(), torch.zeros(1, c, length)


@lru_cache(maxsize=16)
def cost_table(in_channels: int, window: int, n_rr: int, n_classes: int) -> _Table:
    """Parameters and FLOPs of the fixed parts (per width) and of each operation (per width and op,
    summed over the three stages), from single modules built once (global RNG untouched)."""
    fixed = {"params": np.zeros(len(WIDTHS), np.int64), "flops": np.zeros(len(WIDTHS), np.int64)}
    per = {"params": np.zeros((len(WIDTHS), len(ECG_OPS)), np.int64),
           "flops": np.zeros((len(WIDTHS), len(ECG_OPS)), np.int64)}
    with torch.random.fork_rng(devices=[]):
        for wi, w in enumerate(WIDTHS):
            net = _fixed_net(w, in_channels, window, n_rr, n_classes)
            fixed["params"][wi] = _n_params(net)
            fixed["flops"][wi] = count_flops(net, torch.zeros(1, in_channels, window), torch.zeros(1, n_rr))
        for wi, _, k, mod, x in _op_modules(in_channels, window):
            per["params"][wi, k] += _n_params(mod)
            per["flops"][wi, k] += count_flops(mod, x)
    return _Table(fixed, per)


def _n_params(module: nn.Module) -> int:
    return int(sum(p.numel() for p in module.parameters() if p.requires_grad))


# --- latency ----------------------------------------------------------------------------------------------
class _Merged(nn.Module):
    """An operation plus the addition that merges it into its node (what one live edge costs)."""

    def __init__(self, op: nn.Module):
        super().__init__()
        self.op = op

    def forward(self, x):
        return self.op(x) + x


LATENCY_FORMAT = "ecgnas-latency-v1"
_LATENCY: dict = {}


def latency_cache_path(key: dict) -> Path:
    from nascore.paths import user_cache_root

    digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return user_cache_root() / "ecgnas" / "latency" / f"ecg-cell-{digest}.json"


def latency_table(in_channels: int = 1, window: int = 252, n_rr: int = 4, n_classes: int = 5, batch: int = 1,
                  threads: int = 1, repeats: int = 20, warmup: int = 3) -> _Table:
    """Measured latency lookup table (ms): the empty-cell network per width (``fixed``) and each
    operation plus its merge addition per (width, stage), summed over stages (``per_op``). Read from
    the JSON cache (:func:`latency_cache_path`) when present for this torch version, CPU and shape;
    measured and written there otherwise."""
    key = {"format": LATENCY_FORMAT, "torch": torch.__version__, "cpu": cpu_model(), "in_channels": in_channels,
           "window": window, "n_rr": n_rr, "n_classes": n_classes, "batch": batch, "threads": threads}
    mem = json.dumps(key, sort_keys=True)
    if mem in _LATENCY:
        return _LATENCY[mem]
    path = latency_cache_path(key)
    doc = None
    try:
        doc = json.loads(path.read_text())
        if doc.get("key") != key or np.shape(doc.get("op_ms")) != (len(WIDTHS), 3, len(ECG_OPS)):
            doc = None
    except (OSError, ValueError):
        doc = None
    if doc is None:
        doc = {"key": key, **_measure_latency_table(in_channels, window, n_rr, n_classes, batch, threads,
                                                    repeats, warmup)}
        from nascore.io import atomic_write_json

        atomic_write_json(path, doc)
    table = _Table({"ms": np.asarray(doc["fixed_ms"], np.float64)},
                   {"ms": np.asarray(doc["op_ms"], np.float64).sum(axis=1)})
    _LATENCY[mem] = table
    return table


def _measure_latency_table(in_channels, window, n_rr, n_classes, batch, threads, repeats, warmup) -> dict:
    fixed = [0.0] * len(WIDTHS)
    op_ms = np.zeros((len(WIDTHS), 3, len(ECG_OPS)))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        for wi, w in enumerate(WIDTHS):
            fixed[wi] = measure_latency_ms(_fixed_net(w, in_channels, window, n_rr, n_classes), in_channels, window,
                                           n_rr, batch, threads, repeats, warmup)
        for wi, s, k, mod, x in _op_modules(in_channels, window):
            merged, xb = _Merged(mod), torch.randn(batch, *x.shape[1:])
            op_ms[wi, s, k] = _median_ms(lambda: merged(xb), merged, threads, repeats, warmup)
    return {"fixed_ms": fixed, "op_ms": op_ms.tolist(), "repeats": repeats, "warmup": warmup}
