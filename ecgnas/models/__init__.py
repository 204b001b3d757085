"""Hand-designed ECG beat classifiers and the registry that builds them by name.

Every model maps ``x`` float [B, in_channels, L] (one beat window, L = ``window`` samples; 126 =
0.25 s before to 0.45 s after the R peak at 180 Hz, the data pipeline's default, with two
channels: the window and its residual against the record's median beat) and ``rr`` float
[B, n_rr] (RR features, 5 by default) to logits [B, n_classes], via ``model(x, rr)``.

=========  ===================================================  =========================
name       model                                                 hyperparameters (default)
=========  ===================================================  =========================
kachuee    Kachuee et al. 2018 residual CNN (:mod:`.kachuee`)    use_rr (False)
acharya    Acharya et al. 2017 9-layer CNN (:mod:`.acharya`)     use_rr (False)
resnet     1D ResNet + RR features (:mod:`.resnet_rr`)           depth (4), width (32),
                                                                 kernel_size (7), dropout
                                                                 (0.2), use_rr (True)
ecg-cell   a searched ``ecg-cell`` architecture (:mod:`.cellnet`)  arch (canonical string),
                                                                 dropout (0.2)
darts1d    a searched 1D DARTS genotype (:mod:`.dartsnet`)       genotype (text), C (12),
                                                                 layers (6), dropout (0.2)
linear     logistic regression on window + RR (:mod:`.linear`)   channels (last), use_rr
                                                                 (True)
=========  ===================================================  =========================

>>> m = build_model("acharya", window=260)
>>> count_parameters(m)
19805
>>> build_model("resnet", depth=2, width=8).use_rr
True
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ecgnas.models.acharya import AcharyaNet
from ecgnas.models.cellnet import CellModel
from ecgnas.models.dartsnet import DartsModel
from ecgnas.models.kachuee import KachueeNet
from ecgnas.models.linear import LinearRR
from ecgnas.models.resnet_rr import ResNetRR
from nascore.errors import UserError

MODELS: dict[str, type[nn.Module]] = {"kachuee": KachueeNet, "acharya": AcharyaNet, "resnet": ResNetRR,
                                      "ecg-cell": CellModel, "darts1d": DartsModel, "linear": LinearRR}
"""Registry: name -> model class; each class lists its tunable hyperparameters in ``HPARAMS``."""

#: the hand-designed models (the others are built from searched architectures)
HAND_DESIGNED: tuple[str, ...] = ("kachuee", "acharya", "resnet", "linear")


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters of a model.

    >>> count_parameters(nn.Linear(3, 2))
    8
    """
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only))


def _check_value(name: str, key: str, value: Any, default: Any) -> Any:
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise UserError(f"{name}: hyperparameter {key}={value!r} must be true or false")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, float) and value.is_integer())):
            raise UserError(f"{name}: hyperparameter {key}={value!r} must be an integer")
        return int(value)
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UserError(f"{name}: hyperparameter {key}={value!r} must be a number")
        return float(value)
    return value


def build_model(name: str, window: int = 252, n_rr: int = 4, n_classes: int = 5, in_channels: int = 1,
                **hparams: Any) -> nn.Module:
    """Build a registered model; unknown names or hyperparameters raise a one-line :class:`UserError`.

    ``hparams`` override the model's ``HPARAMS`` defaults (types are checked: ints stay ints,
    ``use_rr`` must be a bool). Call ``torch.manual_seed(seed)`` first for reproducible weights.

    >>> build_model("vgg")
    Traceback (most recent call last):
    ...
    nascore.errors.UserError: unknown model 'vgg' (choose from: acharya, darts1d, ecg-cell, kachuee, linear, resnet)
    """
    if name not in MODELS:
        raise UserError(f"unknown model {name!r} (choose from: {', '.join(sorted(MODELS))})")
    cls = MODELS[name]
    defaults: dict[str, Any] = dict(cls.HPARAMS)  # type: ignore[attr-defined]
    unknown = sorted(set(hparams) - set(defaults))
    if unknown:
        raise UserError(f"{name}: unknown hyperparameter {unknown[0]!r} (valid: {', '.join(sorted(defaults))})")
    kw = {k: _check_value(name, k, v, defaults[k]) for k, v in hparams.items()}
    for key, val in (("window", window), ("n_rr", n_rr), ("n_classes", n_classes), ("in_channels", in_channels)):
        if isinstance(val, bool) or not isinstance(val, int) or val < 1:
            raise UserError(f"{name}: {key}={val!r} must be a positive integer")
    return cls(window=window, n_rr=n_rr, n_classes=n_classes, in_channels=in_channels, **{**defaults, **kw})


__all__ = ["MODELS", "HAND_DESIGNED", "build_model", "count_parameters", "KachueeNet", "AcharyaNet", "ResNetRR", "CellModel", "DartsModel", "LinearRR"]
