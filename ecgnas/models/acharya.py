"""Acharya et al. (2017) 9-layer 1D CNN for single-beat classification.

U. R. Acharya, S. L. Oh, Y. Hagiwara, J. H. Tan, M. Adam, A. Gertych, R. S. Tan, "A deep
convolutional neural network model to classify heartbeats", Computers in Biology and Medicine
89 (2017) 389-396, Table 2 (input 260 samples):

    conv(5, k=3) - maxpool 2 - conv(10, k=4) - maxpool 2 - conv(20, k=4) - maxpool 2
    -> flatten -> FC 30 - FC 20 - FC n_classes (softmax in the loss)

with leaky ReLU after every convolution and hidden FC layer (slope 0.01 here, PyTorch's default;
the paper does not give it). Convolutions are unpadded, stride 1; pools are size 2, stride 2.
The three convolutions and pools need ``window >= 28``.

Parameter count, computed from this architecture: 19,805 at the published input length 260
(flatten 20 x 30 = 600 features; 18,030 of the weights are the first FC layer), 19,205 at our
default window 252 (20 x 29 = 580), 19,325 at 252 with ``use_rr=True`` (4 RR features
concatenated at the first FC layer).

Input ``x`` float [B, in_channels, L] (the paper: one channel; a second channel, as our pipeline's
default residual channel, adds 15 weights to the first convolution), ``rr`` float [B, n_rr]
(ignored unless ``use_rr``); output logits [B, n_classes].

>>> import torch
>>> m = AcharyaNet(window=260)
>>> m(torch.zeros(2, 1, 260), None).shape, sum(p.numel() for p in m.parameters())
(torch.Size([2, 5]), 19805)
"""

from __future__ import annotations

import torch
from torch import nn

from nascore.errors import UserError

_CONVS = ((1, 5, 3), (5, 10, 4), (10, 20, 4))  # (in, out, kernel)


def feature_length(window: int) -> int:
    """Length after the three conv (valid) + maxpool(2) stages; < 1 means the window is too short.

    >>> feature_length(260), feature_length(252)
    (30, 29)
    """
    n = int(window)
    for _, _, k in _CONVS:
        n = (n - k + 1) // 2
        if n < 1:
            return 0
    return n


class AcharyaNet(nn.Module):
    """The Acharya et al. (2017) network; ``use_rr`` adds RR features at the first FC layer."""

    HPARAMS = {"use_rr": False}

    def __init__(self, window: int = 252, n_rr: int = 4, n_classes: int = 5, use_rr: bool = False,
                 in_channels: int = 1):
        super().__init__()
        n_feat = feature_length(window)
        if n_feat < 1:
            raise UserError(f"acharya: window {window} too short (needs >= 28 samples)")
        self.use_rr, self.n_rr = bool(use_rr), int(n_rr)
        layers: list[nn.Module] = []
        for i, (c_in, c_out, k) in enumerate(_CONVS):
            c_in = in_channels if i == 0 else c_in
            layers += [nn.Conv1d(c_in, c_out, k), nn.LeakyReLU(0.01), nn.MaxPool1d(2, 2)]
        self.features = nn.Sequential(*layers)
        n_in = 20 * n_feat + (self.n_rr if self.use_rr else 0)
        self.head = nn.Sequential(nn.Linear(n_in, 30), nn.LeakyReLU(0.01), nn.Linear(30, 20), nn.LeakyReLU(0.01),
                                  nn.Linear(20, n_classes))

    def forward(self, x: torch.Tensor, rr: torch.Tensor | None = None) -> torch.Tensor:
        h = self.features(x).flatten(1)
        if self.use_rr:
            if rr is None:
                raise ValueError("acharya built with use_rr=True needs rr [B, n_rr]")
            h = torch.cat([h, rr], dim=1)
        return self.head(h)
