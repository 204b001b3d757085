"""Weight-sharing supernets: the DARTS search network and the NAS-Bench-201 cell network.

Mixed operation with partial channels (PC-DARTS, Xu et al. ICLR 2020, Eq. 2):
for an edge input ``x`` with ``C`` channels, only the first ``C/K`` channels go through the
operations, the rest bypass them::

    f(x) = shuffle_K( concat[ sum_o w_o * o(x[:C/K]),  x[C/K:] ] )         (stride 1)

(with stride 2 the bypass is max-pooled), where ``w = softmax(α_edge)`` or any other weights
(an ES candidate). ``K = 1`` is the plain DARTS mixed op (Liu et al. 2019, Eq. 2). Pooling
operations are followed by a non-affine BN as in DARTS (``pool_bn=True``, the default); the
released EG-NAS code's mixed op has no such BN (``pool_bn=False``; caicaicheng/EG-NAS
``model_search.py``, ``MixedOp.__init__``). Edge normalisation (PC-DARTS β) is not implemented.

BatchNorm: every supernet BN normalises with the statistics of the batch at hand and keeps no
running statistics (``bn_running_stats=False``, the default), so scoring candidates has no side
effect; ``bn_running_stats=True`` builds them all with running statistics, as the released
EG-NAS supernet (PyTorch's default BN), whose ES then scores candidates in eval mode with the
statistics accumulated by the weight training (:mod:`nascore.egnas`).

Operation set: the supernet's ``ops`` (default :func:`~nascore.darts.ops.darts_opset`, the 8
DARTS operations, ``none`` included; EG-NAS searches of DARTS cells use the released 7 without
``none``, :data:`~nascore.darts.ops.EGNAS_RELEASED_PRIMITIVES`; :func:`build_supernet`'s
``primitives``).

Architecture parameters: one tensor ``alpha`` of shape ``[n_cell_types, n_edges, n_ops]``
(DARTS: ``[2, 14, 8]`` normal + reduce; NB-201: ``[1, 6, 5]``), initialised ``1e-3 * N(0, 1)``.
``forward(x, weights)`` takes weights of that shape (default ``softmax(alpha, -1)``).

DARTS network (DARTS §3, ``cnn/model_search.py``): stem conv3x3 (3 -> 3C) + BN, ``layers`` cells
(default 8) with reduction cells at ``layers//3`` and ``2*layers//3`` (channels doubled there),
each cell with 2 inputs and 4 intermediate nodes (14 edges) whose concatenation is the output,
then global pooling and a linear classifier.

NB-201 network (Dong & Yang 2020, §2.1; :mod:`nascore.models.nb201net`): stem conv3x3 + BN,
3 stages of ``N`` cells at C, 2C, 4C with a residual reduction block between stages, BN-ReLU,
global pooling, linear. The cell has 4 nodes and 6 edges (:data:`nascore.spaces.nb201.EDGES`).

Derivation: :func:`derive_darts` (DARTS §2.4: each intermediate node keeps the 2 incoming edges
with the strongest non-``none`` operation, and on each the strongest non-``none`` operation);
:func:`derive_nb201` (argmax over all 5 operations on each edge, ``none`` included, as the
NAS-Bench-201 paper's DARTS baseline derives — so that the cell is in the table).

>>> import torch
>>> net = DartsSupernet(C=8, layers=3, num_classes=10, K=2)
>>> net.alpha.shape, net(torch.randn(2, 3, 16, 16)).shape
(torch.Size([2, 14, 8]), torch.Size([2, 10]))
>>> nb = NB201Supernet(C=8, N=1, K=2)
>>> nb(torch.randn(2, 3, 16, 16), torch.full((1, 6, 5), 0.2)).shape
torch.Size([2, 10])
"""

from __future__ import annotations

import torch
from torch import nn

from nascore.darts.ops import FactorizedReduce, OpSet, ReLUConvBN, channel_shuffle, darts_opset, nb201_opset
from nascore.errors import UserError
from nascore.spaces.darts import Genotype, genotype_to_string

#: which spaces have a supernet here
SUPERNET_SPACES: tuple[str, ...] = ("darts", "nb201")


class MixedOp(nn.Module):
    """One edge: all ``ops.primitives`` on ``C/K`` channels, weighted sum, bypass, channel shuffle.

    ``forward(x [B, C, *S], w [n_ops]) -> [B, C, *S/stride]``.

    >>> import torch
    >>> m = MixedOp(darts_opset(2), C=8, stride=1, K=4)
    >>> m(torch.randn(2, 8, 6, 6), torch.softmax(torch.zeros(8), 0)).shape
    torch.Size([2, 8, 6, 6])
    """

    def __init__(self, ops: OpSet, C: int, stride: int, K: int = 4, pool_bn: bool = True):
        super().__init__()
        if C % K:
            raise UserError(f"partial channels: C={C} channels cannot be split into K={K} parts")
        self.K, self.stride = K, stride
        c = C // K
        mods = []
        for name in ops.primitives:
            op = ops.build(name, c, stride, affine=False)
            if pool_bn and "pool" in name:
                op = nn.Sequential(op, ops.bn(c, affine=False, track_running_stats=False))
            mods.append(op)
        self.ops = nn.ModuleList(mods)
        self.bypass_pool = ops.max_pool(2, 2) if stride == 2 else None
        self.dim = ops.dim

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        c = x.shape[1] // self.K
        xa, xb = x[:, :c], x[:, c:]
        out = sum(wi * op(xa) for wi, op in zip(w, self.ops))
        if self.K == 1:
            return out
        if self.bypass_pool is not None:
            if any(s % 2 for s in xb.shape[2:]):  # odd sizes: pad so the bypass matches ceil(S/2)
                xb = nn.functional.pad(xb, (0, 1) * self.dim)
            xb = self.bypass_pool(xb)
        return channel_shuffle(torch.cat([out, xb], dim=1), self.K)


class Supernet(nn.Module):
    """Base of the supernets: ``alpha`` handling, weight parameters, derivation."""

    space: str = ""

    def _init_alpha(self, shape, generator: torch.Generator | None):
        self.alpha = nn.Parameter(1e-3 * torch.randn(*shape, generator=generator))

    def weights(self) -> torch.Tensor:
        """``softmax(alpha)`` over the operations: ``[n_cell_types, n_edges, n_ops]``."""
        return torch.softmax(self.alpha, dim=-1)

    def weight_parameters(self) -> list[nn.Parameter]:
        return [p for n, p in self.named_parameters() if n != "alpha"]

    def check_weights(self, weights: torch.Tensor) -> torch.Tensor:
        if tuple(weights.shape) != tuple(self.alpha.shape):
            raise UserError(f"{self.space} supernet: architecture weights must have shape "
                            f"{list(self.alpha.shape)}; got {list(weights.shape)}")
        return weights

    def derive(self, weights: torch.Tensor | None = None) -> str:  # pragma: no cover - abstract
        raise NotImplementedError


class DartsSearchCell(nn.Module):
    """DARTS search cell: inputs ``s0 [B, C_pp, *S0]``, ``s1 [B, C_p, *S1]`` -> ``[B, multiplier*C, *S']``."""

    def __init__(self, ops: OpSet, steps: int, multiplier: int, C_pp: int, C_p: int, C: int, reduction: bool,
                 reduction_prev: bool, K: int, pool_bn: bool = True):
        super().__init__()
        self.reduction, self.steps, self.multiplier = reduction, steps, multiplier
        self.preprocess0 = (FactorizedReduce(ops, C_pp, C, affine=False) if reduction_prev
                            else ReLUConvBN(ops, C_pp, C, 1, 1, 0, affine=False))
        self.preprocess1 = ReLUConvBN(ops, C_p, C, 1, 1, 0, affine=False)
        self.edges = nn.ModuleList()
        for i in range(steps):
            for j in range(2 + i):
                self.edges.append(MixedOp(ops, C, 2 if reduction and j < 2 else 1, K, pool_bn))

    def forward(self, s0, s1, weights):
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        offset = 0
        for _ in range(self.steps):
            s = sum(self.edges[offset + j](h, weights[offset + j]) for j, h in enumerate(states))
            offset += len(states)
            states.append(s)
        return torch.cat(states[-self.multiplier:], dim=1)


def n_darts_edges(steps: int = 4) -> int:
    return sum(2 + i for i in range(steps))


class DartsSupernet(Supernet):
    """The DARTS search network (see module docstring). ``[B, in_channels, *S] -> logits [B, num_classes]``.

    ``forward(x, weights) = classifier(features(x, weights))``; :meth:`features` gives the pooled
    output of the last cell, ``[B, feature_dim]``, for networks that put their own head on the
    body (the ECG supernet fuses RR features there). ``num_classes=None`` builds no classifier
    (``forward`` then returns the features). ``stem_stride`` (default 1, as DARTS) strides the stem
    convolution (long 1D signals). ``pool_bn`` / ``bn_running_stats``: see the module docstring
    (defaults: a BN after pooling operations, BNs without running statistics).
    """

    space = "darts"

    def __init__(self, C: int = 16, layers: int = 8, num_classes: int = 10, K: int = 4, ops: OpSet | None = None,
                 in_channels: int = 3, steps: int = 4, multiplier: int = 4, stem_multiplier: int = 3,
                 generator: torch.Generator | None = None, stem_stride: int = 1, pool_bn: bool = True,
                 bn_running_stats: bool = False):
        super().__init__()
        ops = ops or darts_opset(2)
        if bn_running_stats:
            ops = ops.with_bn_running_stats(True)
        self.ops_set, self.steps = ops, steps
        c_curr = stem_multiplier * C
        self.stem = nn.Sequential(ops.conv(in_channels, c_curr, 3, stride=stem_stride, padding=1),
                                  ops.bn(c_curr, affine=True, track_running_stats=False))
        C_pp, C_p, c_curr = c_curr, c_curr, C
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                c_curr *= 2
            cell = DartsSearchCell(ops, steps, multiplier, C_pp, C_p, c_curr, reduction, reduction_prev, K, pool_bn)
            reduction_prev = reduction
            self.cells.append(cell)
            C_pp, C_p = C_p, multiplier * c_curr
        self.pool = ops.global_pool()
        self.feature_dim = C_p
        self.classifier = nn.Identity() if num_classes is None else nn.Linear(C_p, num_classes)
        self._init_alpha((2, n_darts_edges(steps), len(ops.primitives)), generator)

    def features(self, x: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        """Globally pooled output of the last cell: ``[B, feature_dim]``."""
        w = self.weights() if weights is None else self.check_weights(weights)
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1, w[1] if cell.reduction else w[0])
        return self.pool(s1).flatten(1)

    def forward(self, x: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        return self.classifier(self.features(x, weights))

    def genotype(self, weights: torch.Tensor | None = None) -> Genotype:
        w = self.weights() if weights is None else self.check_weights(weights)
        return derive_darts(w, self.ops_set.primitives, self.steps)

    def derive(self, weights: torch.Tensor | None = None) -> str:
        """Canonical genotype text (the DARTS ``repr`` when the op names are outside the DARTS vocabulary)."""
        g = self.genotype(weights)
        try:
            return genotype_to_string(g)
        except UserError:
            return repr(g)


class ResidualReduction(nn.Module):
    """ResNet basic block with stride 2 (NB-201 stage transition), dimension-generic."""

    def __init__(self, ops: OpSet, c_in: int, c_out: int):
        super().__init__()
        # batch statistics only, like every supernet BN (unless bn_running_stats overrides the op set)
        self.conv_a = ReLUConvBN(ops, c_in, c_out, 3, 2, 1, affine=True, track_running_stats=False)
        self.conv_b = ReLUConvBN(ops, c_out, c_out, 3, 1, 1, affine=True, track_running_stats=False)
        self.shortcut = nn.Sequential(ops.avg_pool(2, 2), ops.conv(c_in, c_out, 1))

    def forward(self, x):
        return self.shortcut(x) + self.conv_b(self.conv_a(x))


class NB201SearchCell(nn.Module):
    """NB-201 cell with a :class:`MixedOp` on each of the 6 edges; ``[B, C, *S]`` kept."""

    def __init__(self, ops: OpSet, C: int, K: int, pool_bn: bool = True):
        super().__init__()
        from nascore.spaces.nb201 import EDGES
        self.edge_list = EDGES
        self.edges = nn.ModuleList(MixedOp(ops, C, 1, K, pool_bn) for _ in EDGES)

    def forward(self, x, weights):
        nodes = [x]
        for j in (1, 2, 3):
            nodes.append(sum(self.edges[e](nodes[i], weights[e]) for e, (i, t) in enumerate(self.edge_list) if t == j))
        return nodes[3]


class NB201Supernet(Supernet):
    """The NAS-Bench-201 network with mixed edges (see module docstring); ``[B, 3, *S] -> [B, num_classes]``.
    ``pool_bn`` / ``bn_running_stats`` as :class:`DartsSupernet`."""

    space = "nb201"

    def __init__(self, C: int = 16, N: int = 5, num_classes: int = 10, K: int = 4, ops: OpSet | None = None,
                 in_channels: int = 3, generator: torch.Generator | None = None, pool_bn: bool = True,
                 bn_running_stats: bool = False):
        super().__init__()
        ops = ops or nb201_opset(2)
        if bn_running_stats:
            ops = ops.with_bn_running_stats(True)
        self.ops_set = ops
        self.stem = nn.Sequential(ops.conv(in_channels, C, 3, padding=1), ops.bn(C, True, track_running_stats=False))
        layers: list[nn.Module] = []
        c = C
        for stage in range(3):
            if stage > 0:
                layers.append(ResidualReduction(ops, c, 2 * c))
                c *= 2
            layers += [NB201SearchCell(ops, c, K, pool_bn) for _ in range(N)]
        self.cells = nn.ModuleList(layers)
        self.lastact = nn.Sequential(ops.bn(c, True, track_running_stats=False), nn.ReLU())
        self.pool = ops.global_pool()
        self.feature_dim = c
        self.classifier = nn.Linear(c, num_classes)
        self._init_alpha((1, 6, len(ops.primitives)), generator)

    def features(self, x: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        """Pooled features before the classifier: ``[B, feature_dim]``."""
        w = self.weights() if weights is None else self.check_weights(weights)
        h = self.stem(x)
        for cell in self.cells:
            h = cell(h, w[0]) if isinstance(cell, NB201SearchCell) else cell(h)
        return self.pool(self.lastact(h)).flatten(1)

    def forward(self, x: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        return self.classifier(self.features(x, weights))

    def derive(self, weights: torch.Tensor | None = None) -> str:
        w = self.weights() if weights is None else self.check_weights(weights)
        return derive_nb201(w, self.ops_set.primitives)


# --- evaluation with estimated BN statistics --------------------------------------------------------
@torch.no_grad()
def recalibrated_copy(net: nn.Module, batches, weights: torch.Tensor | None = None) -> nn.Module:
    """A copy of ``net`` in eval mode whose batch-statistics BNs (``track_running_stats=False``, all
    supernet BNs) normalise with statistics estimated on ``batches`` instead of the batch at hand.

    Supernet BNs always use the statistics of the current batch (DARTS), so a prediction depends
    on what else is in its batch. When evaluation batches are distributed unlike the training
    batches (the class-balanced ECG batches vs. a natural hold-out with ~90 % N beats) that
    shift alone ruins the predictions. As one-shot NAS recalibrates BN before scoring a subnet
    (Guo et al., "Single Path One-Shot NAS with Uniform Sampling", ECCV 2020), each such BN of the copy gets
    running statistics: the cumulative average over ``batches`` (each a tuple of network inputs,
    run as ``net(*inputs, weights)`` with only the BNs in training mode, so dropout and the global
    RNG are untouched). ``net`` itself is not changed.
    """
    import copy
    from torch.nn.modules.batchnorm import _BatchNorm
    twin = copy.deepcopy(net)
    twin.eval()
    bns = [m for m in twin.modules() if isinstance(m, _BatchNorm) and not m.track_running_stats]
    ref = next(iter(twin.parameters()), None)
    kw = {} if ref is None else {"device": ref.device}
    for m in bns:
        m.track_running_stats, m.momentum = True, None
        m.running_mean = torch.zeros(m.num_features, **kw)
        m.running_var = torch.ones(m.num_features, **kw)
        m.num_batches_tracked = torch.zeros((), dtype=torch.long, **kw)
        m.train()
    n = 0
    for inputs in batches:
        inputs = inputs if isinstance(inputs, (tuple, list)) else (inputs,)
        twin(*inputs) if weights is None else twin(*inputs, weights)
        n += 1
    if n == 0:
        raise UserError("BN recalibration needs at least one batch")
    for m in bns:
        m.eval()
    return twin


# --- derivation ---------------------------------------------------------------------------------
def derive_cell(weights: torch.Tensor, primitives, steps: int = 4) -> list[tuple[str, int]]:
    """DARTS rule for one cell: ``weights [n_edges, n_ops]`` (edges ordered node by node, inputs in
    increasing order) -> ``2 * steps`` ``(op, input)`` pairs. For intermediate node ``2+i`` each
    incoming edge ``j`` scores ``max_{o != none} w[j, o]``; the two best edges are kept (ties: lower
    input index), each with its best non-``none`` operation.

    >>> w = torch.zeros(14, 3); w[0, 2] = 0.9; w[1, 0] = 1.0; w[1, 1] = 0.5; w[2] = 0.2
    >>> derive_cell(w, ("none", "a", "b"))[:2]
    [('b', 0), ('a', 1)]
    """
    primitives = tuple(primitives)
    keep = [k for k, p in enumerate(primitives) if p != "none"]
    if not keep:
        raise UserError("cannot derive a cell: every candidate operation is 'none'")
    w = weights.detach().float().cpu()
    out, start = [], 0
    for i in range(steps):
        n = 2 + i
        block = w[start:start + n][:, keep]
        strength = block.max(dim=1).values
        order = sorted(range(n), key=lambda j: (-float(strength[j]), j))[:2]
        for j in sorted(order, key=lambda j: (-float(strength[j]), j)):
            out.append((primitives[keep[int(block[j].argmax())]], j))
        start += n
    return out


def derive_darts(weights: torch.Tensor, primitives, steps: int = 4) -> Genotype:
    """:func:`derive_cell` on ``weights[0]`` (normal) and ``weights[1]`` (reduce) -> :class:`Genotype`."""
    concat = list(range(2, 2 + steps))
    return Genotype(derive_cell(weights[0], primitives, steps), concat, derive_cell(weights[1], primitives, steps),
                    concat)


def derive_nb201(weights: torch.Tensor, primitives) -> str:
    """Argmax operation on each of the 6 edges (``weights [1, 6, n_ops]``) -> official NB-201 string.

    >>> w = torch.zeros(1, 6, 5); w[0, :, 3] = 1
    >>> derive_nb201(w, ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"))
    '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|'
    """
    from nascore.spaces.nb201 import NB201Space
    space = NB201Space()
    w = weights.detach().float().cpu().reshape(6, -1)
    return space.to_string(space.from_ops([primitives[int(w[e].argmax())] for e in range(6)]))


def build_supernet(space: str, *, C: int | None = None, layers: int | None = None, num_classes: int = 10, K: int = 4,
                   ops: OpSet | None = None, in_channels: int = 3, seed: int = 0, primitives=None,
                   pool_bn: bool = True, bn_running_stats: bool = False) -> Supernet:
    """A supernet by space name (``darts``: C=16, 8 cells; ``nb201``: C=16, N=5 cells per stage).
    ``layers`` is the cell count for darts and cells per stage for nb201. α is drawn from ``seed``.
    ``primitives``: the α columns (default: the space's op set, 8 DARTS / 5 NB-201 operations);
    ``pool_bn``, ``bn_running_stats``: see the module docstring.

    >>> build_supernet("nb201", C=8, layers=1, K=2).alpha.shape
    torch.Size([1, 6, 5])
    >>> from nascore.darts.ops import EGNAS_RELEASED_PRIMITIVES
    >>> build_supernet("darts", C=8, layers=3, K=2, primitives=EGNAS_RELEASED_PRIMITIVES).alpha.shape
    torch.Size([2, 14, 7])
    """
    if primitives is not None:
        if ops is not None:
            raise UserError("build_supernet: pass ops or primitives, not both")
        ops = (darts_opset(2) if space == "darts" else nb201_opset(2)).with_primitives(primitives)
    kw = dict(pool_bn=pool_bn, bn_running_stats=bn_running_stats)
    gen = torch.Generator().manual_seed(int(seed))
    with torch.random.fork_rng(devices=[]):  # seeded weight init, global RNG left untouched
        torch.manual_seed(int(seed))
        if space == "darts":
            return DartsSupernet(C=C or 16, layers=layers or 8, num_classes=num_classes, K=K, ops=ops,
                                 in_channels=in_channels, generator=gen, **kw)
        if space == "nb201":
            return NB201Supernet(C=C or 16, N=layers or 5, num_classes=num_classes, K=K, ops=ops,
                                 in_channels=in_channels, generator=gen, **kw)
    raise UserError(f"unknown supernet space {space!r} (choose from {', '.join(SUPERNET_SPACES)})")
