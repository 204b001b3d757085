"""Operation sets for cell supernets, with the dimensionality abstracted (1D signals, 2D images).

An :class:`OpSet` is (a) the layer factories of one dimensionality — ``conv``, ``bn``,
``max_pool``, ``avg_pool``, ``global_pool`` — and (b) a dict ``builders`` from operation name to a
constructor ``builder(opset, C, stride, affine) -> nn.Module`` that maps ``[B, C, *S]`` to
``[B, C, *ceil(S / stride)]``. The order of ``primitives`` is the column order of the
architecture parameters α. Supernets, evaluation networks and genotype derivation only ever call
``opset.build(name, C, stride, affine)`` and the factories, so a new modality (the ECG work's 1D
set) is a new :class:`OpSet`, not new network code.

Operations (DARTS, Liu et al. ICLR 2019, §3 / ``cnn/operations.py``; NAS-Bench-201, Dong & Yang
ICLR 2020, §2.1):

* ``sep_conv_kxk``: (ReLU, depthwise k conv, pointwise conv, BN) twice; the first carries the stride.
* ``dil_conv_kxk``: ReLU, depthwise k conv with dilation 2, pointwise conv, BN.
* ``max_pool_3x3`` / ``avg_pool_3x3``: padding 1, average pooling excludes the padding.
* ``skip_connect``: identity, or :class:`FactorizedReduce` when the stride is 2.
* ``none``: zeros (strided like the input).
* NB-201 ops: ``nor_conv_1x1`` / ``nor_conv_3x3`` (ReLU-Conv-BN), ``avg_pool_3x3``, ``skip_connect``,
  ``none`` — the same modules as :mod:`nascore.models.nb201net`, written once more here only
  because they must be dimension-generic.

BatchNorm: ``bn(C, affine, track_running_stats)``. Operations pass ``track_running_stats=affine``:
search-time operations (``affine=False``, as in DARTS) normalise with batch statistics in both
train and eval mode, so scoring many candidate architectures on a batch has no side effects;
evaluation networks (``affine=True``) keep running statistics as usual. An op set with
``bn_running_stats=True`` (:meth:`OpSet.with_bn_running_stats`) makes every BN it builds keep
running statistics, whatever the caller asked: the released EG-NAS supernet's BNs do (PyTorch's
default), so in eval mode its ES scores candidates with them (:mod:`nascore.egnas`).

Operation sets: :data:`DARTS_PRIMITIVES` (the 8 DARTS candidates, ``none`` first, DARTS'
column order) and :data:`EGNAS_RELEASED_PRIMITIVES` (the 7 of the released EG-NAS code, whose
``genotypes.py`` comments ``none`` out and lists ``avg_pool_3x3`` before ``max_pool_3x3``).

Names use the 2D spelling (``3x3``) for every dimensionality so that genotypes keep one vocabulary;
in 1D ``3x3`` means kernel 3.

>>> import torch
>>> ops = darts_opset(2)
>>> op = ops.build("sep_conv_3x3", C=8, stride=2, affine=False)
>>> op(torch.randn(2, 8, 16, 16)).shape
torch.Size([2, 8, 8, 8])
>>> darts_opset(1).build("dil_conv_5x5", 4, 1, True)(torch.randn(3, 4, 50)).shape
torch.Size([3, 4, 50])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

import torch
from torch import nn
import torch.nn.functional as F

from nascore.errors import UserError

Builder = Callable[["OpSet", int, int, bool], nn.Module]

#: the DARTS candidate operations with ``none`` first (the α column order of the DARTS code)
DARTS_PRIMITIVES: tuple[str, ...] = ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3",
                                     "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")
#: the released EG-NAS operations (caicaicheng/EG-NAS ``genotypes.py``: ``'none'`` commented out),
#: in its column order: the op set of EG-NAS searches of DARTS cells here
EGNAS_RELEASED_PRIMITIVES: tuple[str, ...] = ("avg_pool_3x3", "max_pool_3x3", "skip_connect", "sep_conv_3x3",
                                              "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")


@dataclass(frozen=True)
class OpSet:
    """Layer factories of one dimensionality plus named operation builders (see module docstring).

    ``dim``: 1 (``[B, C, L]``) or 2 (``[B, C, H, W]``); ``primitives``: operation names in α order;
    ``builders``: name -> ``builder(opset, C, stride, affine)``; ``bn_running_stats``: None (each
    BN keeps running statistics as its caller asks) or a bool that overrides every caller.

    >>> ops = darts_opset(1)
    >>> ops.primitives[:3], ops.dim
    (('none', 'max_pool_3x3', 'avg_pool_3x3'), 1)
    """

    name: str
    dim: int
    primitives: tuple[str, ...]
    builders: Mapping[str, Builder] = field(repr=False)
    bn_running_stats: bool | None = None

    def __post_init__(self):
        if self.dim not in (1, 2, 3):
            raise UserError(f"op set {self.name!r}: dim must be 1, 2 or 3; got {self.dim!r}")
        missing = [p for p in self.primitives if p not in self.builders]
        if missing:
            raise UserError(f"op set {self.name!r}: unknown operation(s) {', '.join(map(repr, missing))} "
                            f"(known: {', '.join(self.builders)})")
        if len(set(self.primitives)) != len(self.primitives):
            raise UserError(f"op set {self.name!r}: an operation is listed twice in {self.primitives}")

    # --- factories ----------------------------------------------------------------------------
    def conv(self, c_in: int, c_out: int, kernel_size: int, stride: int = 1, padding: int = 0,
             dilation: int = 1, groups: int = 1, bias: bool = False) -> nn.Module:
        cls = (nn.Conv1d, nn.Conv2d, nn.Conv3d)[self.dim - 1]
        return cls(c_in, c_out, kernel_size, stride=stride, padding=padding, dilation=dilation, groups=groups,
                   bias=bias)

    def bn(self, c: int, affine: bool = True, track_running_stats: bool = True) -> nn.Module:
        cls = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)[self.dim - 1]
        if self.bn_running_stats is not None:
            track_running_stats = self.bn_running_stats
        return cls(c, affine=affine, track_running_stats=track_running_stats)

    def max_pool(self, kernel_size: int, stride: int = 1, padding: int = 0) -> nn.Module:
        return (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)[self.dim - 1](kernel_size, stride=stride, padding=padding)

    def avg_pool(self, kernel_size: int, stride: int = 1, padding: int = 0, count_include_pad: bool = False) -> nn.Module:
        return (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)[self.dim - 1](
            kernel_size, stride=stride, padding=padding, count_include_pad=count_include_pad)

    def global_pool(self) -> nn.Module:
        return (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d)[self.dim - 1](1)

    # --- operations ---------------------------------------------------------------------------
    def build(self, name: str, C: int, stride: int = 1, affine: bool = True) -> nn.Module:
        """The operation ``name`` on ``C`` channels (``UserError`` for a name outside this set)."""
        if name not in self.builders:
            raise UserError(f"unknown operation {name!r} for op set {self.name!r} "
                            f"(choose from {', '.join(self.builders)})")
        return self.builders[name](self, C, stride, affine)

    def with_primitives(self, primitives) -> "OpSet":
        """The same op set searching over another subset/order of its operations."""
        return OpSet(self.name, self.dim, tuple(primitives), self.builders, self.bn_running_stats)

    def with_bn_running_stats(self, flag: bool | None = True) -> "OpSet":
        """The same op set whose every BN keeps running statistics (``True``), none does
        (``False``) or each as its caller asks (``None``).

        >>> darts_opset(2).with_bn_running_stats().bn(4, affine=False, track_running_stats=False).track_running_stats
        True
        """
        return OpSet(self.name, self.dim, self.primitives, self.builders, flag)


# --- generic modules ------------------------------------------------------------------------------
class ReLUConvBN(nn.Sequential):
    """ReLU -> conv -> BN: ``[B, c_in, *S] -> [B, c_out, *S']``."""

    def __init__(self, ops: OpSet, c_in: int, c_out: int, kernel_size: int, stride: int, padding: int,
                 affine: bool = True, track_running_stats: bool | None = None):
        track = affine if track_running_stats is None else track_running_stats
        super().__init__(nn.ReLU(inplace=False), ops.conv(c_in, c_out, kernel_size, stride, padding),
                         ops.bn(c_out, affine, track_running_stats=track))


class DilConv(nn.Sequential):
    """ReLU -> depthwise conv (dilated) -> pointwise conv -> BN (DARTS ``DilConv``)."""

    def __init__(self, ops: OpSet, c_in: int, c_out: int, kernel_size: int, stride: int, padding: int,
                 dilation: int, affine: bool = True):
        super().__init__(nn.ReLU(inplace=False),
                         ops.conv(c_in, c_in, kernel_size, stride, padding, dilation=dilation, groups=c_in),
                         ops.conv(c_in, c_out, 1),
                         ops.bn(c_out, affine, track_running_stats=affine))


class SepConv(nn.Sequential):
    """Two stacked undilated :class:`DilConv` blocks; the first one carries the stride (DARTS ``SepConv``)."""

    def __init__(self, ops: OpSet, c_in: int, c_out: int, kernel_size: int, stride: int, padding: int,
                 affine: bool = True):
        super().__init__(DilConv(ops, c_in, c_in, kernel_size, stride, padding, 1, affine),
                         DilConv(ops, c_in, c_out, kernel_size, 1, padding, 1, affine))


class Zero(nn.Module):
    """``none``: zeros shaped like the (strided) input, keeping the autograd graph."""

    def __init__(self, stride: int = 1):
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x.mul(0.0)
        return x[(slice(None), slice(None)) + (slice(None, None, self.stride),) * (x.dim() - 2)].mul(0.0)


class FactorizedReduce(nn.Module):
    """Halve every spatial size with two stride-2 1x1 convs, the second on the input shifted by one
    (DARTS ``FactorizedReduce``); ``[B, c_in, *S] -> [B, c_out, *ceil(S/2)]``, odd sizes included
    (the shifted copy is zero-padded at the end)."""

    def __init__(self, ops: OpSet, c_in: int, c_out: int, affine: bool = True):
        super().__init__()
        if c_out % 2:
            raise UserError(f"FactorizedReduce needs an even channel count; got {c_out}")
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = ops.conv(c_in, c_out // 2, 1, stride=2)
        self.conv_2 = ops.conv(c_in, c_out - c_out // 2, 1, stride=2)
        self.bn = ops.bn(c_out, affine, track_running_stats=affine)
        self.dim = ops.dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        shifted = F.pad(x, (0, 1) * self.dim)[(slice(None), slice(None)) + (slice(1, None),) * self.dim]
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1))


def _skip(ops: OpSet, C: int, stride: int, affine: bool) -> nn.Module:
    return nn.Identity() if stride == 1 else FactorizedReduce(ops, C, C, affine)


def _sep(k: int) -> Builder:
    return lambda ops, C, stride, affine: SepConv(ops, C, C, k, stride, k // 2, affine)


def _dil(k: int) -> Builder:
    return lambda ops, C, stride, affine: DilConv(ops, C, C, k, stride, k - 1, 2, affine)


def _nor(k: int) -> Builder:
    return lambda ops, C, stride, affine: ReLUConvBN(ops, C, C, k, stride, k // 2, affine)


#: every operation this module can build, by name
BUILDERS: dict[str, Builder] = {
    "none": lambda ops, C, stride, affine: Zero(stride),
    "max_pool_3x3": lambda ops, C, stride, affine: ops.max_pool(3, stride, 1),
    "avg_pool_3x3": lambda ops, C, stride, affine: ops.avg_pool(3, stride, 1, count_include_pad=False),
    "skip_connect": _skip,
    "sep_conv_3x3": _sep(3),
    "sep_conv_5x5": _sep(5),
    "dil_conv_3x3": _dil(3),
    "dil_conv_5x5": _dil(5),
    "nor_conv_1x1": _nor(1),
    "nor_conv_3x3": _nor(3),
}


def darts_opset(dim: int = 2, primitives=DARTS_PRIMITIVES) -> OpSet:
    """The DARTS operations (``none`` included by default; pass ``primitives`` without it to drop it)."""
    return OpSet(f"darts{dim}d", dim, tuple(primitives), BUILDERS)


def nb201_opset(dim: int = 2) -> OpSet:
    """The five NAS-Bench-201 operations in the benchmark's order (:data:`nascore.spaces.nb201.OPS`)."""
    from nascore.spaces.nb201 import OPS as NB201_OPS
    return OpSet(f"nb201-{dim}d", dim, NB201_OPS, BUILDERS)


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interleave ``groups`` channel groups (ShuffleNet; PC-DARTS §3.1), any number of spatial dims.

    >>> channel_shuffle(torch.arange(6.).view(1, 6, 1), 2).flatten().tolist()
    [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]
    """
    b, c = x.shape[:2]
    rest = x.shape[2:]
    return x.view(b, groups, c // groups, *rest).transpose(1, 2).reshape(b, c, *rest)
