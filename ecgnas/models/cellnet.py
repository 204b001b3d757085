"""A searched ``ecg-cell`` architecture as a registered model, so that ``ecgnas train``, checkpoints
and ``ecgnas evaluate`` treat it like the hand-designed models.

``build_model("ecg-cell", arch="w16d1:|conv_3~0|+|...|")`` builds the
:class:`~ecgnas.spaces.conv1d.ECGCellNet` of that canonical string (see :mod:`ecgnas.spaces.conv1d`
for the network); the string is its only architecture hyperparameter, ``dropout`` the other.

>>> import torch
>>> m = CellModel(window=126, n_rr=5, in_channels=2).eval()
>>> m(torch.zeros(2, 2, 126), torch.zeros(2, 5)).shape
torch.Size([2, 5])
"""

from __future__ import annotations

from ecgnas.spaces.conv1d import ECGCellNet, ECGCellSpace

#: a plain default cell (convolutions on the three input edges, skip connections): a reasonable
#: hand-written member of the space, used only when no ``arch`` is given
DEFAULT_ARCH = "w16d1:|conv_3~0|+|conv_3~0|skip_connect~1|+|conv_3~0|skip_connect~1|skip_connect~2|"


class CellModel(ECGCellNet):
    """:class:`ECGCellNet` built from a canonical ``ecg-cell`` string (``arch``)."""

    HPARAMS = {"arch": DEFAULT_ARCH, "dropout": 0.2}

    def __init__(self, window: int = 252, n_rr: int = 4, n_classes: int = 5, in_channels: int = 1,
                 arch: str = DEFAULT_ARCH, dropout: float = 0.2):
        space = ECGCellSpace()
        width, depth, ops = space.parts(space.from_string(arch))
        super().__init__(width, depth, ops, in_channels=in_channels, window=window, n_rr=n_rr, n_classes=n_classes,
                         dropout=dropout)
        self.arch = space.to_string(space.from_string(arch))
