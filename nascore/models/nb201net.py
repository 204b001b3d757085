"""The NAS-Bench-201 CIFAR network for one cell (Dong & Yang, "NAS-Bench-201", ICLR 2020, §2.1).

Macro skeleton (the same for every cell of the benchmark; Fig. 1 top of the paper)::

    input [B, 3, H, W]
    stem: Conv3x3(3 -> C) + BN                                  -> [B, C, H, W]
    stage 1: N cells at C channels
    residual reduction block C -> 2C, stride 2                  -> [B, 2C, H/2, W/2]
    stage 2: N cells at 2C
    residual reduction block 2C -> 4C, stride 2                 -> [B, 4C, H/4, W/4]
    stage 3: N cells at 4C
    BN-ReLU, global average pool, Linear(4C -> num_classes)     -> logits [B, num_classes]

with ``C = 16`` and ``N = 5`` in the benchmark. The reduction block is the ResNet basic block
(He et al. 2016) with stride 2: ``ReLU-Conv3x3(stride 2)-BN -> ReLU-Conv3x3-BN`` plus a shortcut
``AvgPool2x2(stride 2) -> Conv1x1`` (no BN on the shortcut).

Cell: 4 nodes, node 0 is the cell input and node ``j = sum_{i<j} op_{i->j}(node i)``; node 3
is the cell output. The operations keep shape ``[B, C, H, W]`` (:data:`OPS`, name -> constructor
taking the channel count, as in the DARTS code): ``none`` (zero), ``skip_connect`` (identity),
``nor_conv_1x1`` / ``nor_conv_3x3`` (ReLU-Conv-BN), ``avg_pool_3x3`` (stride 1, padding 1,
``count_include_pad=False``). Convolutions have no bias; BN is affine with running statistics.

The parameter count equals the benchmark's ``params_m`` column: the skeleton alone has 73,306
parameters and each ``nor_conv_3x3`` / ``nor_conv_1x1`` edge adds, over the 3 stages of N = 5
cells, 243,040 / 28,000 (checked against the CIFAR-10 table in ``tests/test_nb201_model.py``).

>>> import torch
>>> net = build_nb201_net("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|")
>>> net(torch.zeros(2, 3, 32, 32)).shape, sum(p.numel() for p in net.parameters())
(torch.Size([2, 10]), 802426)
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

from nascore.arch import Arch
from nascore.errors import UserError
from nascore.spaces.nb201 import EDGES, NB201Space


class ReLUConvBN(nn.Sequential):
    """ReLU -> Conv2d(no bias) -> BatchNorm2d; ``[B, C_in, H, W] -> [B, C_out, H/stride, W/stride]``."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, stride: int = 1, padding: int = 0):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel_size, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(c_out),
        )


class Zero(nn.Module):
    """The ``none`` operation: zeros shaped like the input (keeps the autograd graph)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


#: NAS-Bench-201 cell operations: name -> constructor(C) of a shape-preserving module
OPS: dict[str, Callable[[int], nn.Module]] = {
    "none": lambda C: Zero(),
    "skip_connect": lambda C: nn.Identity(),
    "nor_conv_1x1": lambda C: ReLUConvBN(C, C, 1, padding=0),
    "nor_conv_3x3": lambda C: ReLUConvBN(C, C, 3, padding=1),
    "avg_pool_3x3": lambda C: nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False),
}


class ResidualReduction(nn.Module):
    """ResNet basic block with stride 2: ``[B, C_in, H, W] -> [B, C_out, ceil(H/2), ceil(W/2)]``
    for even H, W (the benchmark's 32x32 and 16x16 maps)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride=2, padding=1)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, stride=1, padding=1)
        self.shortcut = nn.Sequential(nn.AvgPool2d(kernel_size=2, stride=2),
                                      nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.conv_b(self.conv_a(x))


class NB201Cell(nn.Module):
    """One cell: ``ops[e]`` sits on edge ``EDGES[e] = (i, j)``; shape ``[B, C, H, W]`` is kept."""

    def __init__(self, ops: Sequence[str], C: int):
        super().__init__()
        self.edge_ops = tuple(ops)
        self.edges = nn.ModuleList(OPS[op](C) for op in self.edge_ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for j in (1, 2, 3):
            nodes.append(sum(self.edges[e](nodes[i]) for e, (i, t) in enumerate(EDGES) if t == j))
        return nodes[3]


class NB201Net(nn.Module):
    """The NAS-Bench-201 network (see module docstring): ``[B, 3, H, W] -> logits [B, num_classes]``."""

    def __init__(self, ops: Sequence[str], C: int = 16, N: int = 5, num_classes: int = 10):
        super().__init__()
        self.edge_ops = tuple(ops)
        self.stem = nn.Sequential(nn.Conv2d(3, C, 3, padding=1, bias=False), nn.BatchNorm2d(C))
        layers: list[nn.Module] = []
        c = C
        for stage in range(3):
            if stage > 0:
                layers.append(ResidualReduction(c, 2 * c))
                c *= 2
            layers += [NB201Cell(self.edge_ops, c) for _ in range(N)]
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=True))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.lastact(self.cells(self.stem(x)))
        return self.classifier(self.pool(h).flatten(1))


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"build_nb201_net: {name} must be a positive integer; got {value!r}")
    return value


def build_nb201_net(ops_or_arch_string: str | Sequence[str] | Arch, C: int = 16, N: int = 5,
                    num_classes: int = 10) -> NB201Net:
    """Build the NAS-Bench-201 network of a cell.

    ``ops_or_arch_string``: the official string ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``, the six
    edge operations in that order, or an :class:`Arch` of :class:`NB201Space`. Bad cells or
    sizes raise :class:`UserError`. Returns an untrained :class:`NB201Net` (PyTorch default init).

    >>> net = build_nb201_net(["none"] * 6, C=8, N=1, num_classes=3)
    >>> import torch; net(torch.randn(4, 3, 16, 16)).shape
    torch.Size([4, 3])
    """
    space = NB201Space()
    if isinstance(ops_or_arch_string, str):
        arch = space.from_string(ops_or_arch_string)
    elif isinstance(ops_or_arch_string, Arch):
        arch = space.validate(ops_or_arch_string)
    elif isinstance(ops_or_arch_string, (list, tuple)):
        arch = space.from_ops(ops_or_arch_string)
    else:
        raise UserError(f"build_nb201_net needs an nb201 arch string, 6 operation names or an Arch; "
                        f"got {type(ops_or_arch_string).__name__}")
    return NB201Net(space.edge_ops(arch), C=_positive_int(C, "C"), N=_positive_int(N, "N"),
                    num_classes=_positive_int(num_classes, "num_classes"))
