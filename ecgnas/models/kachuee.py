"""Kachuee, Fazeli & Sarrafzadeh (2018) residual 1D CNN for single-beat classification.

M. Kachuee, S. Fazeli, M. Sarrafzadeh, "ECG Heartbeat Classification: A Deep Transferable
Representation", IEEE ICHI 2018, pp. 443-444 (arXiv:1805.00794), Fig. 2:

    conv(32, k=5) -> 5 x [conv(32, k=5) - ReLU - conv(32, k=5) - (+ skip) - ReLU - maxpool(k=5, s=2)]
    -> flatten -> FC 32 - ReLU - FC 32 - ReLU -> FC n_classes (softmax in the loss)

Choices where the paper is silent: convolutions are 'same'-padded (length kept), max-pools are
unpadded (``L -> floor((L - 5) / 2) + 1``), a ReLU follows the first conv and each hidden FC.
The five unpadded pools need ``window >= 125``.

Parameter count, computed from this architecture (``count_parameters``): 55,013 at the paper's
input length 187 without RR features (flattened 32 x 2 = 64 features), 57,061 at our default
window 252 (32 x 4 = 128 features), 57,189 at 252 with ``use_rr=True`` (4 RR features concatenated
to the flattened features at the first FC layer). Almost all weights are the ten 32x32x5 residual
convolutions (10 x 5,152 = 51,520).

Input ``x`` float [B, in_channels, L] (the paper: one channel, the beat; our pipeline's default
adds the residual channel, which only widens the first convolution: +160 parameters for two
channels), ``rr`` float [B, n_rr] (ignored unless ``use_rr``); output logits [B, n_classes].

>>> import torch
>>> m = KachueeNet(window=187, use_rr=False)
>>> m(torch.zeros(2, 1, 187), torch.zeros(2, 4)).shape, sum(p.numel() for p in m.parameters())
(torch.Size([2, 5]), 55013)
"""

from __future__ import annotations

import torch
from torch import nn

from nascore.errors import UserError


def pooled_length(window: int, n_pools: int = 5, k: int = 5, s: int = 2) -> list[int]:
    """Lengths after each unpadded max-pool ``(k, s)``, starting from ``window``.

    >>> pooled_length(187)
    [92, 44, 20, 8, 2]
    """
    out, n = [], int(window)
    for _ in range(n_pools):
        n = (n - k) // s + 1 if n >= k else 0
        out.append(n)
    return out


class _ResBlock(nn.Module):
    def __init__(self, ch: int, k: int = 5):
        super().__init__()
        self.conv1 = nn.Conv1d(ch, ch, k, padding=k // 2)
        self.conv2 = nn.Conv1d(ch, ch, k, padding=k // 2)
        self.pool = nn.MaxPool1d(5, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(torch.relu(self.conv1(x)))
        return self.pool(torch.relu(x + y))


class KachueeNet(nn.Module):
    """The Kachuee et al. (2018) network; ``use_rr`` adds RR features at the first FC layer."""

    HPARAMS = {"use_rr": False}

    def __init__(self, window: int = 252, n_rr: int = 4, n_classes: int = 5, use_rr: bool = False,
                 in_channels: int = 1):
        super().__init__()
        lengths = pooled_length(window)
        if lengths[-1] < 1:
            raise UserError(f"kachuee: window {window} too short (needs >= 125 samples for 5 max-pools of 5/2)")
        self.use_rr, self.n_rr = bool(use_rr), int(n_rr)
        self.stem = nn.Conv1d(in_channels, 32, 5, padding=2)
        self.blocks = nn.Sequential(*[_ResBlock(32) for _ in range(5)])
        n_in = 32 * lengths[-1] + (self.n_rr if self.use_rr else 0)
        self.head = nn.Sequential(nn.Linear(n_in, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(),
                                  nn.Linear(32, n_classes))

    def forward(self, x: torch.Tensor, rr: torch.Tensor | None = None) -> torch.Tensor:
        h = self.blocks(torch.relu(self.stem(x))).flatten(1)
        if self.use_rr:
            if rr is None:
                raise ValueError("kachuee built with use_rr=True needs rr [B, n_rr]")
            h = torch.cat([h, rr], dim=1)
        return self.head(h)
