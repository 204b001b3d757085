"""A searched 1D DARTS genotype (EG-NAS / DARTS on ECG beats) as a registered model.

``build_model("darts1d", genotype="Genotype(normal=[...], ...)")`` builds the
:class:`~ecgnas.supernet.ECGEvalNet` of that genotype text (the DARTS format of
:mod:`nascore.spaces.darts`); ``C`` (12), ``layers`` (6 cells) and ``dropout`` (0.2) are its other
hyperparameters. So ``ecgnas train``, checkpoints and ``ecgnas evaluate`` treat it like the
hand-designed models.

>>> import torch
>>> m = DartsModel(window=126, n_rr=5, in_channels=2, C=8, layers=3).eval()
>>> m(torch.zeros(2, 2, 126), torch.zeros(2, 5)).shape
torch.Size([2, 5])
"""

from __future__ import annotations

from nascore.spaces.darts import DARTS_V2, genotype_to_string

from ecgnas.supernet import ECGEvalNet


class DartsModel(ECGEvalNet):
    """:class:`ECGEvalNet` built from genotype text (default: DARTS-V2, Liu et al. 2019)."""

    HPARAMS = {"genotype": genotype_to_string(DARTS_V2), "C": 12, "layers": 6, "dropout": 0.2}

    def __init__(self, window: int = 252, n_rr: int = 4, n_classes: int = 5, in_channels: int = 1,
                 genotype: str = HPARAMS["genotype"], C: int = 12, layers: int = 6, dropout: float = 0.2):
        super().__init__(genotype, in_channels=in_channels, window=window, n_rr=n_rr, n_classes=n_classes, C=C,
                         layers=layers, dropout=dropout)
