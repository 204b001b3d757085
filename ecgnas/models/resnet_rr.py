"""A small 1D ResNet with RR-interval features: the modern hand-designed baseline family.

Morphology branch (He et al. 2016, "Deep Residual Learning for Image Recognition", CVPR, basic
block, adapted to 1D as in Hannun et al. 2019, Nature Medicine 25:65-69):

    stem:   conv(width, k) - BN - ReLU
    block i (i = 0..depth-1), channels c_i = width * 2**min(i // 2, 2), stride 1 for i = 0 else 2:
            conv(c_i, k, stride) - BN - ReLU - conv(c_i, k) - BN  (+ shortcut) - ReLU
            shortcut = identity, or conv1x1(stride) - BN when the shape changes
    global average pooling over time -> [B, c_last]

Classifier: ``[pooled features, ReLU(FC 32 (rr))]`` (the RR branch only when ``use_rr``) -> FC 64 -
ReLU - dropout -> FC n_classes. The RR features (previous, next and local-mean RR normalised by
the record mean, prematurity and pause ratios; see :mod:`ecgnas.data.preprocess`) pass through
their own small layer before they meet the morphology features, so a few rhythm numbers are not
drowned by the pooled channels; rhythm is what separates many S beats from N (de Chazal et al.
2004, IEEE TBME 51(7)). The searched ECG networks fuse RR the same way.

Hyperparameters (the space a random-search baseline tunes): ``depth`` (residual blocks, 1..12),
``width`` (base channels, 4..256), ``kernel_size`` (odd, 3..31), ``dropout`` ([0, 0.9)),
``use_rr`` (bool). Convolutions are bias-free ('same' padding) since BN follows them. The model
works for any window >= 1 (strided convs with padding never reach length 0).

Parameter count at the defaults (depth 4, width 32, kernel 7, use_rr, one input channel, 4 RR
features), computed with ``count_parameters``: 144,197 (142,053 with ``use_rr=False``),
independent of the window length thanks to global pooling.

Input ``x`` float [B, in_channels, L], ``rr`` float [B, n_rr]; output logits [B, n_classes].

>>> import torch
>>> m = ResNetRR(window=126, in_channels=2, n_rr=5).eval()
>>> m(torch.zeros(3, 2, 126), torch.zeros(3, 5)).shape
torch.Size([3, 5])
"""

from __future__ import annotations

import torch
from torch import nn

from nascore.errors import UserError

HEAD_UNITS = 64
RR_UNITS = 32


def block_channels(depth: int, width: int) -> list[int]:
    """Output channels of each residual block: doubling every second block, at most 4 x width.

    >>> block_channels(6, 16)
    [16, 16, 32, 32, 64, 64]
    """
    return [width * 2 ** min(i // 2, 2) for i in range(depth)]


class _BasicBlock1d(nn.Module):
    def __init__(self, c_in: int, c_out: int, k: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv1d(c_in, c_out, k, stride=stride, padding=k // 2, bias=False)
        self.bn1 = nn.BatchNorm1d(c_out)
        self.conv2 = nn.Conv1d(c_out, c_out, k, padding=k // 2, bias=False)
        self.bn2 = nn.BatchNorm1d(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv1d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm1d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return torch.relu(y + self.shortcut(x))


class ResNetRR(nn.Module):
    """1D ResNet + RR features; see the module docstring for the architecture."""

    HPARAMS = {"depth": 4, "width": 32, "kernel_size": 7, "dropout": 0.2, "use_rr": True}

    def __init__(self, window: int = 252, n_rr: int = 4, n_classes: int = 5, depth: int = 4, width: int = 32,
                 kernel_size: int = 7, dropout: float = 0.2, use_rr: bool = True, in_channels: int = 1):
        super().__init__()
        if not 1 <= depth <= 12:
            raise UserError(f"resnet: depth={depth} out of range 1..12")
        if not 4 <= width <= 256:
            raise UserError(f"resnet: width={width} out of range 4..256")
        if kernel_size % 2 == 0 or not 3 <= kernel_size <= 31:
            raise UserError(f"resnet: kernel_size={kernel_size} must be odd, 3..31")
        if not 0.0 <= dropout < 0.9:
            raise UserError(f"resnet: dropout={dropout} out of range [0, 0.9)")
        if window < 1:
            raise UserError(f"resnet: window={window} must be >= 1")
        self.use_rr, self.n_rr = bool(use_rr), int(n_rr)
        k = int(kernel_size)
        self.stem = nn.Sequential(nn.Conv1d(in_channels, width, k, padding=k // 2, bias=False), nn.BatchNorm1d(width),
                                  nn.ReLU())
        chans = block_channels(depth, width)
        blocks, c_in = [], width
        for i, c in enumerate(chans):
            blocks.append(_BasicBlock1d(c_in, c, k, stride=1 if i == 0 else 2))
            c_in = c
        self.blocks = nn.Sequential(*blocks)
        self.rr_branch = nn.Sequential(nn.Linear(self.n_rr, RR_UNITS), nn.ReLU()) if self.use_rr else None
        n_in = chans[-1] + (RR_UNITS if self.use_rr else 0)
        self.head = nn.Sequential(nn.Linear(n_in, HEAD_UNITS), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(HEAD_UNITS, n_classes))

    def forward(self, x: torch.Tensor, rr: torch.Tensor | None = None) -> torch.Tensor:
        h = self.blocks(self.stem(x)).mean(dim=2)
        if self.use_rr:
            if rr is None:
                raise ValueError("resnet built with use_rr=True needs rr [B, n_rr]")
            h = torch.cat([h, self.rr_branch(rr)], dim=1)
        return self.head(h)
