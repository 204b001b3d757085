"""Standardise the RR features inside the model, from the training beats' statistics.

The RR features are ratios near 1 (:mod:`ecgnas.data.preprocess`): prematurity 0.7 vs 1.0 is a
small number next to weights initialised for unit-variance inputs, so a network (or a linear model
trained by a first-order optimiser) needs many steps before rhythm can drive its decision.
:class:`RRNormed` wraps any beat classifier and feeds it

.. math::  \\tilde{rr} = (rr - \\mu) / \\sqrt{\\sigma^2 + \\epsilon}

with :math:`\\mu, \\sigma^2` the mean and variance of the RR features over all training batches
(``BatchNorm1d(affine=False, momentum=None)``: batch statistics while training, their cumulative
average -- i.e. the training-set statistics -- at evaluation; Ioffe & Szegedy 2015). The
statistics live in the state dict, so a checkpoint carries them and a test patient's beats are
scaled by training statistics only. Measured effect: :mod:`benchmarks.ecg_recipe_cv`.

>>> import torch
>>> from ecgnas.models.linear import LinearRR
>>> m = RRNormed(LinearRR(window=8, n_rr=5, in_channels=2), n_rr=5)
>>> m(torch.zeros(4, 2, 8), torch.rand(4, 5)).shape
torch.Size([4, 5])
"""

from __future__ import annotations

import torch
from torch import nn


class RRNormed(nn.Module):
    """``net(x, norm(rr))``; attributes of ``net`` stay reachable as ``wrapper.net``.

    ``skip=True`` adds a linear path from the standardised RR features straight to the logits,
    ``net(x, r) + W r`` with ``W`` [n_classes, n_rr] initialised to zero (the model starts as
    without it): rhythm evidence then also enters additively, as in a linear classifier, instead
    of only through the network's saturating layers (the ``hparam`` ``rr_skip``).
    """

    def __init__(self, net: nn.Module, n_rr: int, n_classes: int = 5, skip: bool = False):
        super().__init__()
        self.net = net
        self.rr_norm = nn.BatchNorm1d(int(n_rr), affine=False, momentum=None)
        self.rr_skip = None
        if skip:
            self.rr_skip = nn.Linear(int(n_rr), int(n_classes), bias=False)
            nn.init.zeros_(self.rr_skip.weight)

    def forward(self, x: torch.Tensor, rr: torch.Tensor | None = None) -> torch.Tensor:
        if rr is not None:
            rr = self.rr_norm(rr.float()).to(x.dtype)
        out = self.net(x, rr)
        if self.rr_skip is not None and rr is not None:
            out = out + self.rr_skip(rr)
        return out
