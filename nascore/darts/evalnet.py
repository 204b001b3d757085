"""The DARTS evaluation network of a genotype (DARTS §3.2, ``cnn/model.py``), dimension-generic.

Stem conv3x3 (in -> 3C) + BN, ``layers`` cells (default 20, C = 36) with reduction cells at
``layers//3`` and ``2*layers//3``, each cell wired by the genotype (two ``(op, input)`` pairs per
intermediate node, output = concat of the intermediate nodes), global pooling, linear classifier.
Training extras:

* **drop-path** (Larsson et al. 2017, FractalNet; as DARTS): during training every non-identity
  operation's output is zeroed per sample with probability ``drop_path_prob`` (and rescaled by
  ``1 / (1 - p)``); set ``net.drop_path_prob`` each epoch (DARTS raises it linearly to 0.2);
* **auxiliary head** (Szegedy et al. 2016) after cell ``2*layers//3``: ReLU, avg-pool 5 stride 3,
  conv1x1 128, BN, ReLU, conv2x2 768, BN, ReLU, global pool, linear; its loss is added with weight 0.4.

``forward(x) -> (logits [B, classes], aux_logits or None)`` (aux only in training mode);
``features(x) -> (pooled [B, feature_dim], aux_logits or None)`` is the same without the final
classifier, for networks with their own head (``num_classes=None``: no classifier at all, no
auxiliary head allowed; the ECG evaluation network uses this).

>>> import torch
>>> from nascore.spaces.darts import DARTS_V2
>>> net = EvalNet(DARTS_V2, C=8, layers=3, auxiliary=True)
>>> logits, aux = net.train()(torch.randn(2, 3, 32, 32))
>>> logits.shape, aux.shape
(torch.Size([2, 10]), torch.Size([2, 10]))
"""

from __future__ import annotations

import torch
from torch import nn

from nascore.darts.ops import FactorizedReduce, OpSet, ReLUConvBN, darts_opset
from nascore.errors import UserError
from nascore.spaces.darts import Genotype, parse_genotype, validate_genotype


def drop_path(x: torch.Tensor, p: float) -> torch.Tensor:
    """Zero whole samples with probability ``p``; survivors scaled by ``1/(1-p)``."""
    if p <= 0:
        return x
    keep = 1.0 - p
    mask = torch.empty((x.shape[0],) + (1,) * (x.dim() - 1), device=x.device, dtype=x.dtype).bernoulli_(keep)
    return x / keep * mask


class EvalCell(nn.Module):
    """A fixed cell: inputs ``s0``, ``s1`` -> ``[B, len(concat)*C, *S']``."""

    def __init__(self, ops: OpSet, pairs, concat, C_pp: int, C_p: int, C: int, reduction: bool, reduction_prev: bool):
        super().__init__()
        self.reduction = reduction
        self.preprocess0 = FactorizedReduce(ops, C_pp, C) if reduction_prev else ReLUConvBN(ops, C_pp, C, 1, 1, 0)
        self.preprocess1 = ReLUConvBN(ops, C_p, C, 1, 1, 0)
        self.inputs = [j for _, j in pairs]
        self.concat = list(concat)
        self.ops = nn.ModuleList(ops.build(name, C, 2 if reduction and j < 2 else 1, True) for name, j in pairs)
        self.multiplier = len(self.concat)

    def forward(self, s0, s1, drop_prob: float = 0.0):
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for i in range(len(self.ops) // 2):
            hs = []
            for k in (2 * i, 2 * i + 1):
                h = self.ops[k](states[self.inputs[k]])
                if self.training and drop_prob > 0 and not isinstance(self.ops[k], nn.Identity):
                    h = drop_path(h, drop_prob)
                hs.append(h)
            states.append(hs[0] + hs[1])
        return torch.cat([states[i] for i in self.concat], dim=1)


class AuxiliaryHead(nn.Module):
    """DARTS auxiliary classifier on a ``[B, C, 8, 8]`` map (dimension-generic; pools to 1 at the end)."""

    def __init__(self, ops: OpSet, C: int, num_classes: int):
        super().__init__()
        self.features = nn.Sequential(nn.ReLU(inplace=False), ops.avg_pool(5, 3, 0, count_include_pad=False),
                                      ops.conv(C, 128, 1), ops.bn(128), nn.ReLU(inplace=False),
                                      ops.conv(128, 768, 2), ops.bn(768), nn.ReLU(inplace=False), ops.global_pool())
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


class EvalNet(nn.Module):
    """The evaluation network (module docstring); ``genotype``: :class:`Genotype` or its text.
    ``stem_stride`` (default 1, as DARTS) strides the stem convolution (long 1D signals)."""

    def __init__(self, genotype, C: int = 36, layers: int = 20, num_classes: int = 10, auxiliary: bool = True,
                 ops: OpSet | None = None, in_channels: int = 3, stem_multiplier: int = 3, stem_stride: int = 1):
        super().__init__()
        ops = ops or darts_opset(2)
        g = parse_genotype(genotype) if isinstance(genotype, str) else genotype
        if ops.dim == 2 and set(ops.builders) >= {"sep_conv_3x3"}:
            g = validate_genotype(g)
        g = Genotype(*g)
        self.drop_path_prob = 0.0
        c_curr = stem_multiplier * C
        self.stem = nn.Sequential(ops.conv(in_channels, c_curr, 3, stride=stem_stride, padding=1), ops.bn(c_curr))
        C_pp, C_p, c_curr = c_curr, c_curr, C
        self.cells = nn.ModuleList()
        self.aux_pos = 2 * layers // 3
        reduction_prev = False
        c_aux = None
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                c_curr *= 2
            pairs, concat = (g.reduce, g.reduce_concat) if reduction else (g.normal, g.normal_concat)
            cell = EvalCell(ops, pairs, concat, C_pp, C_p, c_curr, reduction, reduction_prev)
            reduction_prev = reduction
            self.cells.append(cell)
            C_pp, C_p = C_p, cell.multiplier * c_curr
            if i == self.aux_pos:
                c_aux = C_p
        if auxiliary and num_classes is None:
            raise UserError("EvalNet: the auxiliary head needs num_classes")
        self.aux = AuxiliaryHead(ops, c_aux, num_classes) if auxiliary else None
        self.pool = ops.global_pool()
        self.feature_dim = C_p
        self.classifier = nn.Identity() if num_classes is None else nn.Linear(C_p, num_classes)

    def features(self, x):
        """``(pooled output of the last cell [B, feature_dim], aux logits or None)``."""
        s0 = s1 = self.stem(x)
        aux = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i == self.aux_pos and self.aux is not None and self.training:
                aux = self.aux(s1)
        return self.pool(s1).flatten(1), aux

    def forward(self, x):
        h, aux = self.features(x)
        return self.classifier(h), aux
