"""A two-line stand-in for a supernet, shared by the EG-NAS tests: the evolution strategy should
raise the weight of op 2, which lowers the cross-entropy."""

from __future__ import annotations

import torch
from torch import nn


class ToyNet(nn.Module):
    """Logits favour the true class in proportion to the weight of op 2 on every edge: op 2 is 'good'."""

    def __init__(self):
        super().__init__()
        self.alpha = nn.Parameter(torch.zeros(1, 3, 4))

    def forward(self, x, w=None):
        w = torch.softmax(self.alpha, -1) if w is None else w
        good = w[..., 2].mean()
        return x * (good * 20 - 5)          # x is the one-hot label: CE falls as `good` grows
