"""1D versions of the DARTS operations: the op set the ECG supernet searches (``darts1d``).

The eight DARTS candidates (Liu, Simonyan & Yang, ICLR 2019, §3; :data:`nascore.darts.ops.DARTS_PRIMITIVES`,
in that α column order) built by the dimension-generic :func:`nascore.darts.ops.darts_opset` with
``dim=1``: ``Conv1d`` / ``BatchNorm1d`` / 1D pooling instead of the 2D layers, nothing else changed.
The names keep the 2D spelling so that genotypes keep the DARTS vocabulary and text format
(:func:`nascore.spaces.darts.parse_genotype`); in 1D ``3x3`` means kernel 3 and ``5x5`` kernel 5.

Receptive field of one operation in samples of the resolution it runs at (:data:`RECEPTIVE_FIELD`):

=================  ====  =========================================================
operation           RF   layers
=================  ====  =========================================================
``sep_conv_3x3``      5   2 x (ReLU, depthwise k3, pointwise, BN)
``sep_conv_5x5``      9   2 x (ReLU, depthwise k5, pointwise, BN)
``dil_conv_3x3``      5   ReLU, depthwise k3 dilation 2, pointwise, BN
``dil_conv_5x5``      9   ReLU, depthwise k5 dilation 2, pointwise, BN
``max_pool_3x3``      3   (+ non-affine BN in the supernet, as DARTS)
``avg_pool_3x3``      3
``skip_connect``      1   identity (FactorizedReduce in a reduction cell)
``none``              -   zeros
=================  ====  =========================================================

Time scale for MIT-BIH beats (prepared at 180 Hz by default, 126-sample windows; see
:class:`ecgnas.data.PrepConfig`). The ECG networks of :mod:`ecgnas.supernet` stride the stem by 2
and the two reduction cells halve again, so the cells run at 90, 45 and 22.5 Hz: one
``sep_conv_5x5`` (9 samples) spans 100 ms in the first stage -- a QRS complex -- 200 ms in the
second and 400 ms in the last; a cell chains up to four operations (node 5 reads node 4 reads
node 3 ...), and the cells stack, so the network sees the whole beat before pooling. We
therefore keep the DARTS kernels (the default, and what "EG-NAS / DARTS on ECG" means) instead
of an ECG-scaled set with larger kernels: scaling the kernels would need new operation names
(``parse_genotype`` accepts only the DARTS vocabulary), so genotypes would no longer be DARTS
genotypes. (With 360 Hz beats keep stride 2 and accept twice the cost: a stride above the
stem's kernel 3 would skip samples.) An op set with ECG-sized kernels exists elsewhere
(:func:`ecgnas.spaces.conv1d.ecg1d_opset`, ``sep_conv_11`` ...) and can be passed as ``ops=`` to
the ECG supernet if wanted; its genotypes are then :class:`Genotype` objects outside the DARTS
text vocabulary.

EG-NAS searches (:func:`ecgnas.supernet.egnas_ecg_search`, ``method="egnas"``) search the
released EG-NAS subset, :data:`nascore.darts.ops.EGNAS_RELEASED_PRIMITIVES` (7 operations, no
``none``; ``darts1d_opset(EGNAS_RELEASED_PRIMITIVES)``), first-order DARTS all 8; the search's
``config.json`` records the list (``primitives``; a folder without it searched all 8).

>>> ops = darts1d_opset()
>>> ops.name, ops.dim, len(ops.primitives), ops.primitives[4]
('darts1d', 1, 8, 'sep_conv_3x3')
>>> import torch
>>> ops.build("dil_conv_5x5", 4, stride=2, affine=True)(torch.randn(2, 4, 63)).shape
torch.Size([2, 4, 32])
"""

from __future__ import annotations

from typing import Sequence

from nascore.darts.ops import DARTS_PRIMITIVES, OpSet, darts_opset

#: the search-space tag written into result.json and checkpoints (= the op set's name)
SPACE = "darts1d"

#: the candidate operations in α column order (the DARTS ones, ``none`` first)
PRIMITIVES: tuple[str, ...] = DARTS_PRIMITIVES

#: receptive field of one operation, in samples at the resolution it runs at (see the table above)
RECEPTIVE_FIELD: dict[str, int] = {"none": 0, "max_pool_3x3": 3, "avg_pool_3x3": 3, "skip_connect": 1,
                                   "sep_conv_3x3": 5, "sep_conv_5x5": 9, "dil_conv_3x3": 5, "dil_conv_5x5": 9}


def darts1d_opset(primitives: Sequence[str] = PRIMITIVES) -> OpSet:
    """The DARTS operations in 1D (``darts_opset(1)``); ``primitives`` reorders or drops some.

    >>> darts1d_opset(("none", "skip_connect", "sep_conv_3x3")).primitives
    ('none', 'skip_connect', 'sep_conv_3x3')
    """
    return darts_opset(1, tuple(primitives))
