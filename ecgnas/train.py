"""Train an ECG beat classifier on in-memory tensors: a fixed schedule, or early-stopped on a hold-out.

Inputs are a :class:`ecgnas.data.Beats`-like object (``x`` float32 ``[n, L]``, ``rr`` float32
``[n, 4]``, ``y`` int64 ``[n]`` indexing :data:`ecgnas.aami.CLASSES`) and a split dict of index
arrays ``{"train": ..., "val": ...}`` (``"test"`` is never touched here; ``"val"`` may be empty
for a fixed schedule). The model is any
``torch.nn.Module`` called as ``model(x[B, 1, L], rr[B, 4]) -> logits[B, 5]``.

What :func:`fit` does, one epoch at a time:

* index mini-batches straight from tensors already on the device (no ``DataLoader`` workers:
  for tiny 1D CNNs this is several times faster);
* AdamW (Loshchilov & Hutter, 2019), no weight decay on biases / normalisation parameters, with
  a one-cycle (Smith & Topin, 2019), cosine (Loshchilov & Hutter, 2017) or constant schedule
  stepped per batch, and gradient-norm clipping;
* class imbalance by a weighted cross-entropy (:func:`class_weights`) and/or a class-balanced
  sampler (draws with replacement, per-beat probability proportional to ``1/n_c`` or
  ``1/sqrt(n_c)``); label smoothing or a focal loss (Lin et al. 2017) on the same soft targets;
* beat augmentations (:mod:`ecgnas.augment`) drawn from the run's seeded generator;
* bf16 autocast on CUDA only (CPU runs stay in float32);
* after each epoch the hold-out macro-F1 over N, S, V, F (:func:`val_macro_f1`) when there is a
  hold-out; ``select="last"`` (default) keeps the last epoch's weights, ``"best"`` the best
  hold-out epoch's, and ``patience`` stops after that many epochs without improvement.

Same seed, same data, same thread count -> bit-identical weights on CPU.

>>> import numpy as np, torch
>>> from types import SimpleNamespace
>>> rng = np.random.default_rng(0); y = rng.integers(0, 3, 300)
>>> x = (rng.normal(size=(300, 16)) + y[:, None]).astype("float32")
>>> beats = SimpleNamespace(x=x, rr=np.zeros((300, 4), "float32"), y=y)
>>> class Lin(torch.nn.Module):
...     def __init__(self):
...         super().__init__(); self.fc = torch.nn.Linear(16, 5)
...     def forward(self, x, rr):
...         return self.fc(x[:, 0])
>>> seed_everything(0); model = Lin()
>>> res = fit(model, beats, {"train": np.arange(200), "val": np.arange(200, 300)},
...           TrainConfig(epochs=3, batch_size=32), progress=False)
>>> res.epochs_run, predict(model, beats, np.arange(5)).shape
(3, (5,))
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from nascore.errors import UserError
from nascore.io import append_jsonl
from nascore.validate import MAX_SEED

N_CLASSES = 5
Q_INDEX = 4  # ecgnas.aami.CLASSES.index("Q")

CLASS_WEIGHT_MODES = ("none", "inverse", "sqrt_inverse")
SAMPLERS = ("shuffle", "balanced", "sqrt_balanced")
SCHEDULES = ("onecycle", "cosine", "constant")
DEVICES = ("auto", "cpu", "cuda")
LOSSES = ("ce", "focal")
SELECTS = ("best", "last")
FOCAL_GAMMA = 2.0

class TrainingDiverged(UserError, FloatingPointError):
    """The training loss became NaN or infinite: one line naming the epoch, the loss and what to
    change (``ecgnas train`` prints it and exits 2). Also a :class:`FloatingPointError`, so a
    search that scores candidates (:class:`ecgnas.evaluator.ECGEvaluator`) records a diverging
    candidate as a bad one instead of stopping."""


# Fields that say where / how fast a run goes, not what it computes; they are left out of
# :meth:`TrainConfig.identity` (the part compared when a run folder is re-used).
_RUNTIME_FIELDS = ("device", "num_threads", "eval_batch_size")


@dataclass
class TrainConfig:
    """Everything :func:`fit` needs besides the model and the data.

    ``class_weight``: ``"none"``, ``"inverse"`` or ``"sqrt_inverse"`` (see :func:`class_weights`).
    ``sampler``: ``"shuffle"`` (each training beat once per epoch), ``"balanced"`` or
    ``"sqrt_balanced"`` (``samples_per_epoch`` draws with replacement, probability of a beat of
    class c proportional to ``1/n_c`` or ``1/sqrt(n_c)``). ``samples_per_epoch=None`` means the
    training-set size. ``patience=None`` disables early stopping. ``amp`` turns on bf16 autocast
    on CUDA only; it is ignored on CPU. ``ema_decay``: keep an exponential moving average of the
    weights (per step, ``torch.optim.swa_utils.AveragedModel``, buffers included) and score / keep
    that instead of the raw weights. ``train_q=False`` leaves the AAMI Q beats (8 in DS1) out of
    training: a class-balanced sampler would otherwise draw those 8 beats as often as the 45,000
    N beats (Q is also outside the headline macro-F1).

    ``augment``: comma-separated beat augmentations of :mod:`ecgnas.augment` (or ``"none"``);
    ``label_smoothing``: the target puts ``1 - ε`` on the true class and ``ε/5`` on each class;
    ``loss``: ``"ce"`` or ``"focal"`` (γ = 2); ``select``: keep the weights of the ``"last"`` epoch
    (a fixed schedule; no hold-out needed) or of the ``"best"`` hold-out epoch; ``patience`` stops
    after that many epochs without a better hold-out score (needs a hold-out).

    Defaults -- the recipe every ECG model here trains with, hand-designed and searched alike,
    chosen by grouped 4-fold record cross-validation over DS1 only (``benchmarks/ecg_recipe_cv.py``,
    the default ``ecg-cell`` network, 2 seeds; DS2 was not read): a fixed schedule of 6 epochs
    over every DS1 beat in shuffled batches of 256, inverse-frequency class weights, AdamW lr 2e-3
    with weight decay 1e-2 and a cosine schedule with 5 % warm-up, no early stopping, beat
    augmentations ``scale, wander, noise, shift, stretch`` and label smoothing 0.1 (out-of-fold
    macro-F1 56.9 ± 1.5, S F1 45.0). The earlier recipe (12 epochs of 16,384 class-balanced
    draws, one-cycle, early stopping on the 5-record hold-out) scored 51.8 ± 1.7 (S F1 28.9); the
    same without augmentation and smoothing 56.2 ± 0.7. The models standardise their RR features
    (:class:`ecgnas.models.rrnorm.RRNormed`, added by :func:`ecgnas.evaluate.build`).

    >>> TrainConfig(epochs=5, class_weight="inverse").epochs
    5
    >>> TrainConfig(class_weight="foo")
    Traceback (most recent call last):
    ...
    nascore.errors.UserError: class_weight: 'foo' is not one of none, inverse, sqrt_inverse
    """

    epochs: int = 6
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 1e-2
    schedule: str = "cosine"
    class_weight: str = "inverse"
    sampler: str = "shuffle"
    samples_per_epoch: int | None = None
    patience: int | None = None
    grad_clip: float | None = 1.0
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    num_threads: int | None = None
    eval_batch_size: int = 512
    ema_decay: float | None = None
    train_q: bool = False
    augment: str = "scale,wander,noise,shift,stretch"
    label_smoothing: float = 0.1
    loss: str = "ce"
    select: str = "last"

    def __post_init__(self):
        from ecgnas.augment import parse_augment

        self.augment = ",".join(parse_augment(self.augment)) or "none"
        _choice("loss", self.loss, LOSSES)
        _choice("select", self.select, SELECTS)
        if not (isinstance(self.label_smoothing, (int, float)) and 0 <= self.label_smoothing < 1):
            raise UserError(f"label_smoothing: must be in [0, 1), got {self.label_smoothing!r}")
        _choice("class_weight", self.class_weight, CLASS_WEIGHT_MODES)
        _choice("sampler", self.sampler, SAMPLERS)
        _choice("schedule", self.schedule, SCHEDULES)
        _choice("device", self.device, DEVICES)
        for name in ("epochs", "batch_size", "eval_batch_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise UserError(f"{name}: must be an integer >= 1, got {getattr(self, name)!r}")
        for name in ("samples_per_epoch", "patience", "num_threads"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or v < 1):
                raise UserError(f"{name}: must be an integer >= 1 or None, got {v!r}")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise UserError(f"lr: must be a positive number, got {self.lr!r}")
        if not (isinstance(self.weight_decay, (int, float)) and self.weight_decay >= 0):
            raise UserError(f"weight_decay: must be >= 0, got {self.weight_decay!r}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise UserError(f"grad_clip: must be > 0 or None, got {self.grad_clip!r}")
        if self.ema_decay is not None and not (isinstance(self.ema_decay, (int, float)) and 0 < self.ema_decay < 1):
            raise UserError(f"ema_decay: must be in (0, 1) or None, got {self.ema_decay!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed <= MAX_SEED:
            raise UserError(f"seed: must be an integer in [0, {MAX_SEED}], got {self.seed!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def identity(self) -> dict:
        """The fields that change what is computed (runtime-only fields dropped)."""
        return {k: v for k, v in self.to_dict().items() if k not in _RUNTIME_FIELDS}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise UserError(f"train config: unknown field(s) {', '.join(unknown)}")
        return cls(**dict(d))


@dataclass
class TrainResult:
    """What :func:`fit` returns; ``best_state`` holds CPU copies of the best weights.

    ``history``: one dict per epoch with ``epoch`` (1-based), ``train_loss``, ``val_macro_f1``
    (percent), ``lr`` (at the end of the epoch), ``seconds`` (epoch wall time, validation
    included) and ``best`` (whether this epoch is the best so far).
    ``throughput``: training beats per second over the training loop only (forward, backward,
    optimiser; validation excluded).
    """

    best_epoch: int
    best_val_macro_f1: float
    epochs_run: int
    stopped_early: bool
    history: list[dict]
    train_seconds: float
    throughput: float
    device: str
    n_train: int
    n_val: int
    class_weights: list[float]
    best_state: dict = field(repr=False, default_factory=dict)

    def summary(self) -> dict:
        """JSON-ready dict of everything but the weights."""
        d = dataclasses.asdict(self)
        d.pop("best_state")
        return d


def _choice(name: str, value, options: Sequence[str]) -> None:
    if value not in options:
        raise UserError(f"{name}: {value!r} is not one of {', '.join(options)}")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) so that model construction is reproducible.

    >>> seed_everything(3); a = torch.rand(2); seed_everything(3); bool((a == torch.rand(2)).all())
    True
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(device: str = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; ``"cuda"`` without a GPU is a UserError.

    >>> resolve_device("cpu")
    device(type='cpu')
    """
    _choice("device", device, DEVICES)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("device: 'cuda' requested but torch sees no CUDA GPU (use --device cpu or auto)")
    return torch.device(device)


def class_counts(y: np.ndarray, n_classes: int = N_CLASSES) -> np.ndarray:
    """Beats per class, ``[n_classes]`` int64.

    >>> class_counts(np.array([0, 0, 2]), 3).tolist()
    [2, 0, 1]
    """
    y = np.asarray(y)
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise UserError(f"labels: expected class indices in 0..{n_classes - 1}, got {y.min()}..{y.max()}")
    return np.bincount(y, minlength=n_classes).astype(np.int64)


def class_weights(y: np.ndarray, mode: str = "sqrt_inverse", n_classes: int = N_CLASSES) -> np.ndarray:
    """Per-class loss weights ``[n_classes]`` float64 for a weighted cross-entropy.

    ``"inverse"``: ``w_c ∝ 1/n_c``; ``"sqrt_inverse"``: ``w_c ∝ 1/sqrt(n_c)``; ``"none"``: all 1.
    Weights are scaled so that the mean weight over the training beats is 1
    (``sum_c n_c w_c = n``), which keeps the loss (and so the learning rate) on the same scale as
    the unweighted loss. Classes with no training beat get weight 0 (they never occur in the loss).
    With ``"inverse"`` every present class contributes the same total weight ``n / K`` (K = number
    of present classes), i.e. the "balanced" weighting of King & Zeng (2001) / scikit-learn.

    >>> class_weights(np.array([0, 0, 0, 1]), "inverse", 3).tolist()
    [0.6666666666666666, 2.0, 0.0]
    """
    _choice("class_weight", mode, CLASS_WEIGHT_MODES)
    counts = class_counts(y, n_classes).astype(np.float64)
    if counts.sum() == 0:
        raise UserError("class weights: the training set is empty")
    present = counts > 0
    w = np.zeros(n_classes, dtype=np.float64)
    if mode == "none":
        w[present] = 1.0
    elif mode == "inverse":
        w[present] = 1.0 / counts[present]
    else:
        w[present] = 1.0 / np.sqrt(counts[present])
    return w * counts.sum() / float((w * counts).sum())


def sampling_probs(y: np.ndarray, sampler: str = "balanced", n_classes: int = N_CLASSES) -> np.ndarray:
    """Per-beat draw probabilities of the samplers: a beat of class ``c`` gets ``1/n_c``
    (``"balanced"``) or ``1/sqrt(n_c)`` (``"sqrt_balanced"``), normalised; ``"shuffle"`` gives every
    beat the same probability. Shared by :func:`fit` and the supernet search (:mod:`ecgnas.supernet`).

    >>> sampling_probs(np.array([0, 0, 0, 1])).round(3).tolist()
    [0.167, 0.167, 0.167, 0.5]
    """
    _choice("sampler", sampler, SAMPLERS)
    y = np.asarray(y, dtype=np.int64)
    if y.size == 0:
        raise UserError("sampling probabilities of an empty set of beats")
    if sampler == "shuffle":
        return np.full(y.size, 1.0 / y.size)
    counts = class_counts(y, n_classes).astype(np.float64)
    per_class = np.zeros(n_classes)
    present = counts > 0
    per_class[present] = 1.0 / (counts[present] if sampler == "balanced" else np.sqrt(counts[present]))
    p = per_class[y]
    return p / p.sum()


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for p in model.parameters():
        if not p.requires_grad:
            continue
        (decay if p.ndim > 1 else no_decay).append(p)  # biases, norm scales/shifts: no decay
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


def _scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig, total_steps: int):
    if cfg.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=max(total_steps, 10),
                                                   pct_start=0.25, anneal_strategy="cos")
    if cfg.schedule == "cosine":
        warm = max(1, int(0.05 * total_steps))

        def f(step: int) -> float:
            if step < warm:
                return (step + 1) / warm
            t = (step - warm) / max(1, total_steps - warm)
            return 0.5 * (1.0 + math.cos(math.pi * min(t, 1.0)))

        return torch.optim.lr_scheduler.LambdaLR(opt, f)
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)


def val_macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Macro-F1 in percent over N, S, V, F: ``ecgnas.metrics.classification_report(...)["macro_f1"]``.

    >>> val_macro_f1(np.array([0, 1, 2, 3]), np.array([0, 1, 2, 3]))
    100.0
    """
    from ecgnas.metrics import classification_report

    return float(classification_report(y_true, y_pred)["macro_f1"])


def _as_index(idx, n: int, name: str) -> np.ndarray:
    idx = np.asarray(idx)
    if idx.dtype == bool:
        idx = np.flatnonzero(idx)
    if idx.ndim != 1 or (idx.size and (idx.min() < 0 or idx.max() >= n)):
        raise UserError(f"split[{name!r}]: indices must be a 1-D array within 0..{n - 1}")
    return idx.astype(np.int64)


def _tensors(beats, idx: np.ndarray, device: torch.device):
    x = torch.as_tensor(np.ascontiguousarray(beats.x[idx], dtype=np.float32)).to(device)
    rr = torch.as_tensor(np.ascontiguousarray(beats.rr[idx], dtype=np.float32)).to(device)
    return (x.unsqueeze(1) if x.ndim == 2 else x), rr


def _model_device(model: torch.nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    for b in model.buffers():
        return b.device
    return torch.device("cpu")


@torch.inference_mode()
def _proba_tensors(model: torch.nn.Module, x: torch.Tensor, rr: torch.Tensor, batch_size: int) -> np.ndarray:
    was_training = model.training
    model.eval()
    out = []
    for i in range(0, x.shape[0], batch_size):
        out.append(torch.softmax(model(x[i:i + batch_size], rr[i:i + batch_size]).float(), dim=1).cpu())
    model.train(was_training)
    return torch.cat(out).numpy().astype(np.float64) if out else np.zeros((0, N_CLASSES))


def _predict_tensors(model: torch.nn.Module, x: torch.Tensor, rr: torch.Tensor, batch_size: int) -> np.ndarray:
    return _proba_tensors(model, x, rr, batch_size).argmax(1).astype(np.int64)


def predict(model: torch.nn.Module, beats, idx=None, batch_size: int = 512) -> np.ndarray:
    """Predicted class indices ``[len(idx)]`` int64 for ``beats`` rows ``idx`` (all rows if None).

    Runs on whatever device the model's parameters are on, in eval mode, without gradients.

    >>> # y_pred = predict(model, beats, split["test"])
    """
    n = len(beats.y)
    idx = np.arange(n) if idx is None else _as_index(idx, n, "predict")
    device = _model_device(model)
    x, rr = _tensors(beats, idx, device)
    return _predict_tensors(model, x, rr, batch_size)


def predict_proba(model: torch.nn.Module, beats, idx=None, batch_size: int = 512) -> np.ndarray:
    """Class probabilities ``[len(idx), n_classes]`` float64 (softmax of the logits), eval mode.

    >>> # p = predict_proba(model, beats, split["test"]); p.sum(1)  -> all ones
    """
    n = len(beats.y)
    idx = np.arange(n) if idx is None else _as_index(idx, n, "predict")
    x, rr = _tensors(beats, idx, _model_device(model))
    return _proba_tensors(model, x, rr, batch_size)


def _peak_index(beats) -> int:
    """R-peak index inside the window: from the beats' PrepConfig, else the window centre."""
    cfg = getattr(beats, "config", None)
    if cfg is not None and hasattr(cfg, "window_samples"):
        return int(cfg.window_samples()[0])
    return int(np.asarray(beats.x).shape[-1] // 2)


def _loss(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, cfg: TrainConfig) -> torch.Tensor:
    """Weighted cross-entropy (or focal loss, Lin et al. 2017, ``-(1-p_t)^γ log p_t``, γ = 2) against
    soft targets ``[B, K]``; the per-beat class weight is the target-weighted mean of ``weight``."""
    logp = torch.log_softmax(logits.float(), dim=1)
    per_beat = -(target * logp)
    if cfg.loss == "focal":
        per_beat = per_beat * (1 - logp.exp()).pow(FOCAL_GAMMA)
    w = target @ weight
    return (per_beat.sum(1) * w).sum() / w.sum().clamp_min(1e-12)


def _emit(log, record: dict) -> None:
    if log is None:
        return
    if callable(log):
        log(record)
    else:
        append_jsonl(Path(log), [record])


def fit(model: torch.nn.Module, beats, split: Mapping[str, Sequence[int]], config: TrainConfig | None = None,
        progress: bool = True, log: Callable[[dict], None] | str | os.PathLike | None = None) -> TrainResult:
    """Train ``model`` on ``split["train"]``, early-stop on the macro-F1 of ``split["val"]``.

    ``log``: a callable receiving each epoch's history dict, or a path to append it to as JSON
    lines. On return the model holds the best weights (highest hold-out macro-F1; the earliest
    such epoch on ties) and is in eval mode.

    >>> # seed_everything(0); model = build_model("resnet")
    >>> # res = fit(model, beats, inter_patient_split(beats), TrainConfig(epochs=20))
    >>> # res.best_val_macro_f1, res.throughput
    """
    cfg = config or TrainConfig()
    n = len(beats.y)
    tr = _as_index(split.get("train", []), n, "train")
    va = _as_index(split.get("val", []), n, "val")
    if not cfg.train_q:
        tr = tr[np.asarray(beats.y)[tr] != Q_INDEX]
    if tr.size == 0:
        raise UserError("split['train'] is empty: nothing to train on")
    if va.size == 0 and (cfg.select == "best" or cfg.patience is not None):
        raise UserError("split['val'] is empty: early stopping / best-epoch selection needs hold-out beats "
                        "(use select='last' and patience=None for a fixed schedule)")
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    device = resolve_device(cfg.device)
    use_amp = bool(cfg.amp and device.type == "cuda")
    seed_everything(cfg.seed)  # dropout and any other in-training randomness
    gen = torch.Generator().manual_seed(cfg.seed)  # batch order / sampling, always on CPU

    y_np = np.asarray(beats.y)
    y_tr_np = y_np[tr].astype(np.int64)
    y_va_np = y_np[va].astype(np.int64)
    w = class_weights(y_tr_np, cfg.class_weight)
    model.to(device)
    x_tr, rr_tr = _tensors(beats, tr, device)
    y_tr = torch.as_tensor(y_tr_np).to(device)
    x_va, rr_va = _tensors(beats, va, device)
    w_t = torch.as_tensor(w, dtype=torch.float32, device=device)
    probs = None if cfg.sampler == "shuffle" else torch.as_tensor(sampling_probs(y_tr_np, cfg.sampler))

    from ecgnas.augment import augment_batch, mixup, parse_augment

    aug = parse_augment(cfg.augment)
    plain_aug = tuple(a for a in aug if a != "mix")
    peak, fs = _peak_index(beats), int(getattr(beats, "fs", 180) or 180)
    eye = torch.eye(N_CLASSES, device=device)
    smooth = float(cfg.label_smoothing)
    n_tr = len(tr)
    per_epoch = n_tr if cfg.samples_per_epoch is None else cfg.samples_per_epoch
    bs = min(cfg.batch_size, per_epoch)
    steps = max(1, per_epoch // bs)  # drop the ragged last batch (BatchNorm needs > 1 sample)
    opt = torch.optim.AdamW(_param_groups(model, cfg.weight_decay), lr=cfg.lr)
    sched = _scheduler(opt, cfg, steps * cfg.epochs)
    ema = None
    if cfg.ema_decay is not None:
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay), use_buffers=True)
    scored = model if ema is None else ema.module

    history: list[dict] = []
    best_f1, best_epoch, best_state = -1.0, 0, None
    best_seen, since_best = -1.0, 0
    train_time = 0.0
    seen = 0
    stopped = False
    t_start = time.perf_counter()
    bar = _epoch_bar(cfg.epochs, progress)
    try:
        for epoch in range(1, cfg.epochs + 1):
            t0 = time.perf_counter()
            model.train()
            if probs is None:
                order = torch.randperm(n_tr, generator=gen)
                if per_epoch != n_tr:  # fixed-size epochs over a shuffled (possibly repeated) stream
                    reps = -(-per_epoch // n_tr)
                    order = torch.cat([order] + [torch.randperm(n_tr, generator=gen) for _ in range(reps - 1)])
            else:
                order = torch.multinomial(probs, per_epoch, replacement=True, generator=gen)
            order = order[: steps * bs].to(device)
            loss_sum = torch.zeros((), device=device)
            for s in range(steps):
                b = order[s * bs:(s + 1) * bs]
                xb, rb = x_tr[b], rr_tr[b]
                target = eye[y_tr[b]]
                if smooth:
                    target = target * (1 - smooth) + smooth / N_CLASSES
                if plain_aug:
                    xb, rb = augment_batch(xb, rb, plain_aug, peak, fs, gen)
                if "mix" in aug:
                    xb, rb, target = mixup(xb, rb, target, gen)
                with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_amp):
                    logits = model(xb, rb)
                loss = _loss(logits, target, w_t, cfg)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.grad_clip is not None:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                opt.step()
                sched.step()
                if ema is not None:
                    ema.update_parameters(model)
                loss_sum += loss.detach()
            train_loss = float(loss_sum) / steps  # float() syncs, so the timing below is honest
            t_train = time.perf_counter() - t0
            train_time += t_train
            seen += steps * bs
            if not math.isfinite(train_loss):
                raise TrainingDiverged(f"training diverged at epoch {epoch} (loss {train_loss}); lower --lr "
                                       f"(now {cfg.lr:g}) or try another --seed")

            f1 = float("nan")
            if va.size:
                f1 = val_macro_f1(y_va_np, _predict_tensors(scored, x_va, rr_va, cfg.eval_batch_size))
            better = f1 > best_seen  # for patience: the hold-out score improved (never with no hold-out)
            if better:
                best_seen, since_best = f1, 0
            else:
                since_best += 1
            improved = better if cfg.select == "best" else True  # the weights kept: best epoch, or the last
            if improved:
                best_f1, best_epoch = f1, epoch
                best_state = {k: v.detach().to("cpu", copy=True) for k, v in scored.state_dict().items()}
            rec = {"epoch": epoch, "train_loss": train_loss, "val_macro_f1": f1 if va.size else None,
                   "lr": float(opt.param_groups[0]["lr"]), "seconds": time.perf_counter() - t0,
                   "train_seconds": t_train, "best": improved}
            history.append(rec)
            _emit(log, rec)
            if bar is not None:
                bar.set_postfix(loss=f"{train_loss:.3f}", val_f1=f"{f1:.1f}", best=f"{best_f1:.1f}@{best_epoch}")
                bar.update(1)
            if cfg.patience is not None and since_best >= cfg.patience and epoch < cfg.epochs:
                stopped = True
                break
    finally:
        if bar is not None:
            bar.close()

    model.load_state_dict(best_state)
    model.eval()
    return TrainResult(
        best_epoch=best_epoch, best_val_macro_f1=best_f1, epochs_run=len(history), stopped_early=stopped,
        history=history, train_seconds=time.perf_counter() - t_start,
        throughput=seen / train_time if train_time > 0 else float("nan"), device=str(device),
        n_train=int(n_tr), n_val=int(len(va)), class_weights=[float(v) for v in w], best_state=best_state,
    )


def _epoch_bar(total: int, progress: bool):
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="epochs", unit="ep", leave=False, dynamic_ncols=True)
