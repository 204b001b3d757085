"""A linear beat classifier: multinomial logistic regression on the beat window and RR features.

The classical reference for the networks: in the inter-patient literature the strongest simple
models are linear classifiers on RR-interval and morphology features (de Chazal et al. 2004, linear
discriminants; Mondéjar-Guerra et al. 2019, SVMs). Here the features are the pipeline's inputs
themselves, so no feature engineering enters:

.. math::  \\text{logits} = W \\, [\\operatorname{vec}(x_c);\\ rr] + b

where :math:`x_c` is the last input channel (``channels="last"``, the default: with the pipeline's
default input that is the residual against the record's median beat) or every channel
(``channels="all"``), and :math:`rr` the RR features. ``use_rr=False`` drops :math:`rr`. Trained by
the same trainer as the networks (class-balanced sampling, AdamW, early stopping on the hold-out).

Why the last channel only by default: the raw window carries the patient's own beat shape, which
a linear model cannot separate from the class and which does not transfer between patients.

>>> import torch
>>> m = LinearRR(window=126, n_rr=5, in_channels=2)
>>> m(torch.zeros(3, 2, 126), torch.zeros(3, 5)).shape, sum(p.numel() for p in m.parameters())
(torch.Size([3, 5]), 660)
"""

from __future__ import annotations

import torch
from torch import nn

from nascore.errors import UserError

CHANNELS = ("last", "all")


class LinearRR(nn.Module):
    """Logistic regression on ``[window channel(s); RR features]`` (see the module docstring)."""

    HPARAMS = {"channels": "last", "use_rr": True}

    def __init__(self, window: int = 252, n_rr: int = 4, n_classes: int = 5, in_channels: int = 1,
                 channels: str = "last", use_rr: bool = True):
        super().__init__()
        if channels not in CHANNELS:
            raise UserError(f"linear: hyperparameter channels={channels!r} must be one of {', '.join(CHANNELS)}")
        self.channels, self.use_rr, self.in_channels = channels, bool(use_rr), in_channels
        n_in = window * (in_channels if channels == "all" else 1) + (n_rr if use_rr else 0)
        self.fc = nn.Linear(n_in, n_classes)

    def forward(self, x: torch.Tensor, rr: torch.Tensor | None) -> torch.Tensor:
        if x.dim() == 2:
            x = x.unsqueeze(1)
        if x.shape[1] != self.in_channels:
            raise UserError(f"linear: expected {self.in_channels} input channel(s), got {x.shape[1]}")
        feats = (x if self.channels == "all" else x[:, -1:]).flatten(1)
        if self.use_rr:
            if rr is None:
                raise ValueError("linear: use_rr=True needs rr features")
            feats = torch.cat([feats, rr.to(feats.dtype)], dim=1)
        return self.fc(feats)
