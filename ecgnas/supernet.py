"""EG-NAS (and first-order DARTS) searching 1D DARTS cells for ECG beats, and the found cells' networks.

Everything search-related is the core's (:mod:`nascore.darts`, :mod:`nascore.egnas`): the 1D
DARTS supernet with PC-DARTS partial channels, the evolution strategy with the compound fitness,
genotype derivation, the evaluation network and the resumable search loop
(:func:`nascore.darts.train.supernet_search_loop`). This module adds what is ECG-specific:

* :class:`RRHead`, the classifier every ECG model here uses: ``cat(features, relu(Linear(n_rr,
  32)(rr)))`` -> ``Linear(., 64)`` - ReLU - Dropout - ``Linear(64, n_classes)`` (the head of
  :class:`ecgnas.spaces.conv1d.ECGCellNet`);
* :class:`ECGSupernet`: a 1D :class:`~nascore.darts.supernet.DartsSupernet` body (op set
  :func:`ecgnas.spaces.darts1d.darts1d_opset`, the 8 DARTS operations in 1D; an EG-NAS search
  uses the released 7 without ``none``, see :func:`nascore.darts.train.supernet_config`) +
  :class:`RRHead`, called as ``net(x [B, C, L], rr [B, k], weights=None)``;
* :class:`ECGEvalNet`: the evaluation network of a genotype (a 1D
  :class:`~nascore.darts.evalnet.EvalNet` body + :class:`RRHead`), ``model(x, rr) -> logits``,
  trainable with :func:`ecgnas.train.fit`;
* :class:`ECGSearchTask` and :func:`egnas_ecg_search`: the search on beats with the inter-patient
  protocol — weights on ``split["train"]``, α on ``split["val"]`` (the DS1 hold-out),
  ``split["test"]`` (DS2) never read.

Sampling. Weight batches: ``samples_per_epoch`` beats per epoch drawn with replacement from the
training split with the probabilities of ``ecgnas.train``'s class-balanced sampler
(:func:`sampling_probs`: ``1/n_c`` per beat of class ``c``, or ``1/sqrt(n_c)``); Q beats are left
out (``train_q=False``, as :class:`ecgnas.train.TrainConfig`). Held-out batches (the ES scoring
batch, the DARTS α batches) are always drawn class-balanced from the hold-out: on a natural
hold-out batch ~90 % of the beats are N, every candidate is about equally accurate and the ES's
``acc_i >= acc_α`` comparison carries no information; DARTS α steps on natural batches would
optimise α for N.

Evaluation (end of epoch): macro-F1 over N, S, V, F and accuracy
(:func:`ecgnas.metrics.classification_report`) of the supernet with ``softmax(α)`` on the whole
hold-out, natural class mix. Supernet BNs normalise with the statistics of the batch at hand (as
in DARTS), and a natural hold-out batch is distributed very unlike the balanced training
batches: measured on real beats after two epochs, that alone gave macro-F1 29.8 % / accuracy
42.6 % on the hold-out (and 32.7 % / 43.5 % on the *training* records), against 54.5 % / 95.9 %
when the BNs use statistics of 8 balanced training batches (BN recalibration, as one-shot NAS
scores subnets: :func:`nascore.darts.supernet.recalibrated_copy`). So the hold-out is scored by a
recalibrated copy (``eval_bn_batches=8``, the same calibration beats every epoch); the ES and α
steps see balanced batches with batch statistics, like the weight steps. That F1 monitors the
shared weights; the derived cell must be trained from scratch (:class:`ECGEvalNet`).

Defaults and why (one CPU thread, real beats: 2 channels x 126 samples at 180 Hz, 5 RR
features; this machine was shared, so times are indicative). Supernet C = 8, 5 cells
(reductions after cells 1 and 3), PC-DARTS K = 4, stem stride 2: 47,221 weights. One
256-beat weight step took 0.86-0.91 s with stem stride 2 against 1.34-1.38 s with stride 1
(the cells then run at 90, 45 and 22 Hz: one ``sep_conv_5x5`` spans 100 ms, a QRS complex, in
the first stage), and K = 2 was 1.7x slower than K = 4 at the same C (99k weights). A full
EG-NAS epoch of 8,192 training beats: ~50-60 s of weight steps, ~24 s for the ES (population
50 on one 256-beat hold-out batch; ~25 % of an ES epoch), ~11 s for the recalibrated
evaluation of the 10,722 hold-out beats. Evaluation network (:class:`ECGEvalNet`) C = 12, 6
cells: 86,677 parameters for DARTS_V2, ~900 training beats/s (a 16,384-beat ``fit`` epoch in
~20 s).

>>> import torch
>>> net = ECGSupernet(C=8, layers=3, K=4, seed=0)
>>> net(torch.randn(2, 1, 64), torch.randn(2, 4)).shape, tuple(net.alpha.shape)
(torch.Size([2, 5]), (2, 14, 8))
>>> m = ECGEvalNet(net.derive(), window=64, C=8, layers=3)
>>> m(torch.randn(2, 1, 64), torch.randn(2, 4)).shape
torch.Size([2, 5])
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nascore.darts.ops import OpSet
from nascore.darts.train import (DEFAULT_LR, METHODS, SearchTask, adopt_stored_config, check_device, method_settings,
                                 search_seconds, supernet_config, supernet_search_loop, supernet_settings)
from nascore.errors import UserError
from nascore.lock import folder_lock
from nascore.run import check_config

from ecgnas.spaces.conv1d import HEAD_UNITS, RR_UNITS
from ecgnas.spaces.darts1d import SPACE, darts1d_opset
from ecgnas.train import CLASS_WEIGHT_MODES as CLASS_WEIGHTS
from ecgnas.train import N_CLASSES, Q_INDEX, SAMPLERS, sampling_probs


# --- the head ---------------------------------------------------------------------------------------
class RRHead(nn.Module):
    """``cat(h, relu(Linear(n_rr, 32)(rr)))`` -> Linear(., 64) - ReLU - Dropout - Linear(64, n_classes).

    ``n_rr = 0``: no RR branch (``rr`` ignored). ``forward(h [B, n_features], rr [B, n_rr])``.

    >>> RRHead(10, 4)(torch.zeros(3, 10), torch.zeros(3, 4)).shape
    torch.Size([3, 5])
    """

    def __init__(self, n_features: int, n_rr: int = 4, n_classes: int = N_CLASSES, dropout: float = 0.2,
                 rr_units: int = RR_UNITS, hidden: int = HEAD_UNITS):
        super().__init__()
        if not (isinstance(dropout, (int, float)) and 0 <= dropout < 1):
            raise UserError(f"dropout={dropout!r} must be a number in [0, 1)")
        self.n_rr = int(n_rr)
        self.rr = nn.Sequential(nn.Linear(self.n_rr, rr_units), nn.ReLU()) if self.n_rr else None
        n_in = n_features + (rr_units if self.n_rr else 0)
        self.head = nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, n_classes))

    def forward(self, h: torch.Tensor, rr: torch.Tensor | None = None) -> torch.Tensor:
        if self.rr is not None:
            if rr is None or rr.dim() != 2 or rr.shape[1] != self.n_rr:
                got = None if rr is None else list(rr.shape)
                raise UserError(f"RR features: expected [B, {self.n_rr}], got {got}")
            h = torch.cat([h, self.rr(rr.to(h.dtype))], dim=1)
        return self.head(h)


def _as_3d(x: torch.Tensor) -> torch.Tensor:
    return x.unsqueeze(1) if x.dim() == 2 else x


def _check_net_args(in_channels, n_rr, n_classes, C, layers, stem_stride):
    for name, v, lo in (("in_channels", in_channels, 1), ("n_rr", n_rr, 0), ("n_classes", n_classes, 2),
                        ("C", C, 1), ("layers", layers, 3), ("stem_stride", stem_stride, 1)):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            extra = " (two reduction cells)" if name == "layers" else ""
            raise UserError(f"{name}={v!r} must be an integer >= {lo}{extra}")


# --- supernet ---------------------------------------------------------------------------------------
class ECGSupernet(nn.Module):
    """1D DARTS supernet body + :class:`RRHead`: ``net(x [B, in_channels, L], rr [B, n_rr], weights=None)``.

    ``weights``: architecture weights ``[2, 14, n_ops]`` (default ``softmax(alpha)``), as in the
    core supernets, so :class:`nascore.egnas.EvolutionStrategy` scores candidates with
    ``net(x, rr, w)``. ``x`` may also be ``[B, L]`` (one channel). Exposes ``alpha``,
    :meth:`weights`, :meth:`weight_parameters` (everything but α, the head included),
    :meth:`check_weights`, :meth:`genotype`, :meth:`derive` (canonical DARTS text) and
    ``ops_set``; ``space`` is the op set's name (``darts1d`` by default), the tag of its
    checkpoints. Initialisation (weights and α) is drawn from ``seed`` without touching the
    global RNG; ``seed=None`` uses the global RNG.

    Size at the defaults (C=8, 5 cells, K=4, stem stride 2): 47,117 weights for 1 channel and 4
    RR features, 47,221 for 2 channels and 5 (the default beats); measured costs in the module
    docstring. ``pool_bn`` / ``bn_running_stats``: as :class:`nascore.darts.supernet.DartsSupernet`
    (defaults: a BN after pooling operations, BNs with batch statistics only).
    """

    def __init__(self, in_channels: int = 1, n_rr: int = 4, n_classes: int = N_CLASSES, *, C: int = 8,
                 layers: int = 5, K: int = 4, ops: OpSet | None = None, stem_stride: int = 2, dropout: float = 0.2,
                 seed: int | None = 0, pool_bn: bool = True, bn_running_stats: bool = False):
        super().__init__()
        _check_net_args(in_channels, n_rr, n_classes, C, layers, stem_stride)
        from nascore.darts.supernet import DartsSupernet
        ops = ops or darts1d_opset()
        if ops.dim != 1:
            raise UserError(f"ECG supernet: op set {ops.name!r} is {ops.dim}D; a 1D op set is needed")
        self.space = ops.name
        self.n_rr, self.in_channels = int(n_rr), int(in_channels)

        def build():
            gen = None if seed is None else torch.Generator().manual_seed(int(seed))
            body = DartsSupernet(C=C, layers=layers, num_classes=None, K=K, ops=ops, in_channels=in_channels,
                                 generator=gen, stem_stride=stem_stride, pool_bn=pool_bn,
                                 bn_running_stats=bn_running_stats)
            return body, RRHead(body.feature_dim, n_rr, n_classes, dropout)

        if seed is None:
            self.body, self.head = build()
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(seed))
                self.body, self.head = build()
        self.ops_set = self.body.ops_set

    @property
    def alpha(self) -> nn.Parameter:
        return self.body.alpha

    def weights(self) -> torch.Tensor:
        return self.body.weights()

    def weight_parameters(self) -> list[nn.Parameter]:
        a = self.body.alpha
        return [p for p in self.parameters() if p is not a]

    def check_weights(self, weights: torch.Tensor) -> torch.Tensor:
        return self.body.check_weights(weights)

    def features(self, x: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        return self.body.features(_as_3d(x), weights)

    def forward(self, x: torch.Tensor, rr: torch.Tensor | None = None,
                weights: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.features(x, weights), rr)

    def genotype(self, weights: torch.Tensor | None = None):
        return self.body.genotype(weights)

    def derive(self, weights: torch.Tensor | None = None) -> str:
        return self.body.derive(weights)


# --- evaluation network -----------------------------------------------------------------------------
class ECGEvalNet(nn.Module):
    """The network of a found genotype: 1D DARTS :class:`~nascore.darts.evalnet.EvalNet` body (no
    auxiliary head) + :class:`RRHead`; ``model(x [B, in_channels, window], rr [B, n_rr]) -> logits``.

    ``genotype``: DARTS text or a :class:`~nascore.spaces.darts.Genotype` (validated when the op
    set speaks the DARTS vocabulary). ``drop_path_prob``: constant drop-path rate during training
    (:func:`ecgnas.train.fit` has no schedule for it; default 0). No auxiliary tower: ``fit``
    trains on the logits only. The parameter count does not depend on ``window`` (global pooling).

    Default size C = 12, 6 cells (reductions after cells 2 and 4), stem stride 2, chosen by
    measuring DARTS_V2 on real beats (2 x 126 samples, 5 RR features, one CPU thread, balanced
    ``fit`` batches of 256): C=8/5 cells 42,349 parameters, ~1,460 training beats/s;
    **C=12/6 cells 86,677, ~900 beats/s**; C=16/6 cells 143,813, ~530 beats/s; C=16/8 cells
    246,757, ~210 beats/s. The default sits between Kachuee et al.'s net (57k) and the ResNet
    baseline (142k) and trains a 12 x 16,384-beat ``fit`` in about 4-5 minutes on one thread.
    """

    def __init__(self, genotype, in_channels: int = 1, window: int = 252, n_rr: int = 4, n_classes: int = N_CLASSES,
                 *, C: int = 12, layers: int = 6, dropout: float = 0.2, ops: OpSet | None = None,
                 stem_stride: int = 2, drop_path_prob: float = 0.0):
        super().__init__()
        _check_net_args(in_channels, n_rr, n_classes, C, layers, stem_stride)
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise UserError(f"window={window!r} must be an integer >= 1")
        if not 0 <= drop_path_prob < 1:
            raise UserError(f"drop_path_prob={drop_path_prob!r} must be in [0, 1)")
        from nascore.darts.evalnet import EvalNet
        from nascore.spaces.darts import OPS as DARTS_OPS, parse_genotype, validate_genotype
        ops = ops or darts1d_opset()
        if ops.dim != 1:
            raise UserError(f"ECG evaluation network: op set {ops.name!r} is {ops.dim}D; a 1D op set is needed")
        g = parse_genotype(genotype) if isinstance(genotype, str) else genotype
        if set(ops.primitives) - {"none"} <= set(DARTS_OPS):
            g = validate_genotype(g)
        self.genotype, self.window, self.n_rr = g, int(window), int(n_rr)
        self.body = EvalNet(g, C=C, layers=layers, num_classes=None, auxiliary=False, ops=ops,
                            in_channels=in_channels, stem_stride=stem_stride)
        self.body.drop_path_prob = float(drop_path_prob)
        self.head = RRHead(self.body.feature_dim, n_rr, n_classes, dropout)

    def forward(self, x: torch.Tensor, rr: torch.Tensor | None = None) -> torch.Tensor:
        h, _ = self.body.features(_as_3d(x))
        return self.head(h, rr)


# --- sampling ---------------------------------------------------------------------------------------
def _index(split, name: str, n: int) -> np.ndarray:
    if name not in split:
        raise UserError(f"split has no {name!r} indices (expected keys 'train' and 'val')")
    idx = np.asarray(split[name])
    if idx.dtype == bool:
        idx = np.flatnonzero(idx)
    if idx.ndim != 1 or (idx.size and (not np.issubdtype(idx.dtype, np.integer) or idx.min() < 0 or idx.max() >= n)):
        raise UserError(f"split[{name!r}]: indices must be a 1-D integer array within 0..{n - 1}")
    if idx.size == 0:
        what = "nothing to train the supernet weights on" if name == "train" else \
            "the ES / DARTS α steps and the supernet's macro-F1 need hold-out beats (DS1 hold-out)"
        raise UserError(f"split[{name!r}] is empty: {what}")
    return idx.astype(np.int64)


# --- the search task ----------------------------------------------------------------------------------
class ECGSearchTask(SearchTask):
    """The ECG beats for :func:`nascore.darts.train.supernet_search_loop` (module docstring: sampling).

    Inputs are ``(x [B, C, L], rr [B, k])``; only ``split["train"]`` and ``split["val"]`` are read.
    Batches depend only on ``(cfg["seed"], epoch)``. ``identity`` describes the data (sizes and a
    digest of the training and hold-out beats) and becomes part of the run's ``config.json``.
    """

    arch_key = "genotype"

    def __init__(self, beats, split, cfg: dict, device, space: str = SPACE):
        from ecgnas.metrics import classification_report
        from ecgnas.train import class_weights
        self._report = classification_report
        self.space, self.cfg, self.dev = space, cfg, torch.device(device)
        x_all, rr_all, y_all = beats.x, beats.rr, np.asarray(beats.y)
        n = len(y_all)
        if x_all.ndim not in (2, 3) or len(x_all) != n:
            raise UserError(f"beats.x must be [n, L] or [n, C, L] with n = {n} rows; got shape {list(x_all.shape)}")
        if rr_all.ndim != 2 or len(rr_all) != n:
            raise UserError(f"beats.rr must be [n, k] with n = {n} rows; got shape {list(rr_all.shape)}")
        tr, va = _index(split, "train", n), _index(split, "val", n)
        for name, idx in (("train", tr), ("val", va)):
            yy = y_all[idx]
            if yy.min() < 0 or yy.max() >= N_CLASSES:
                raise UserError(f"beats.y in split[{name!r}]: labels must be 0..{N_CLASSES - 1} (N, S, V, F, Q)")
        if not cfg["train_q"]:   # as ecgnas.train.fit: a balanced sampler would draw DS1's 8 Q beats like 45k N
            tr = tr[y_all[tr] != Q_INDEX]
            if tr.size == 0:
                raise UserError("split['train'] holds only Q beats: nothing to train the supernet weights on")
        y_tr, y_va = y_all[tr].astype(np.int64), y_all[va].astype(np.int64)
        held = np.flatnonzero(y_va != Q_INDEX) if not cfg["train_q"] else np.arange(len(va))
        if held.size == 0:
            raise UserError("split['val'] holds only Q beats: the ES / DARTS α steps need other hold-out beats")

        def tensor(a, dtype=np.float32):
            return torch.as_tensor(np.ascontiguousarray(a, dtype=dtype))

        x_tr, x_va = tensor(x_all[tr]), tensor(x_all[va])
        if x_tr.dim() == 2:
            x_tr, x_va = x_tr.unsqueeze(1), x_va.unsqueeze(1)
        rr_tr, rr_va = tensor(rr_all[tr]), tensor(rr_all[va])
        h = hashlib.blake2b(digest_size=12)
        for a in (tr, va, y_tr, y_va, x_tr.numpy(), x_va.numpy(), rr_tr.numpy(), rr_va.numpy()):
            h.update(np.ascontiguousarray(a).tobytes())
        self.in_channels, self.window, self.n_rr = int(x_tr.shape[1]), int(x_tr.shape[2]), int(rr_tr.shape[1])
        self.identity = {"n_train": int(len(tr)), "n_val": int(len(va)), "in_channels": self.in_channels,
                         "window": self.window, "n_rr": self.n_rr,
                         "train_counts": np.bincount(y_tr, minlength=N_CLASSES).tolist(),
                         "val_counts": np.bincount(y_va, minlength=N_CLASSES).tolist(), "digest": h.hexdigest()}
        self.x_tr, self.rr_tr, self.y_tr = x_tr.to(self.dev), rr_tr.to(self.dev), torch.as_tensor(y_tr).to(self.dev)
        self.x_va, self.rr_va, self.y_va = x_va.to(self.dev), rr_va.to(self.dev), torch.as_tensor(y_va).to(self.dev)
        self.y_va_np = y_va
        self.p_tr = sampling_probs(y_tr, cfg["sampler"])
        self.held = held                          # hold-out rows the ES / α batches draw from
        self.p_va = sampling_probs(y_va[held], "balanced")
        per_epoch = cfg["samples_per_epoch"] or len(tr)
        self.bs = min(cfg["batch_size"], per_epoch)
        self.steps = max(1, per_epoch // self.bs)   # the ragged last batch is dropped (BN needs > 1 beat)
        w = class_weights(y_tr, cfg["class_weight"])
        self.loss_weight = None if cfg["class_weight"] == "none" else torch.as_tensor(w, dtype=torch.float32,
                                                                                       device=self.dev)
        n_eval = len(va) if cfg["eval_beats"] is None else min(len(va), cfg["eval_beats"])
        self.eval_order = torch.as_tensor(np.random.default_rng([cfg["seed"], 4]).permutation(len(va))[:n_eval],
                                          device=self.dev)

    # --- batches ---------------------------------------------------------------------------------
    def _draw(self, p: np.ndarray, size: int, epoch: int, stream: int, shuffle: bool = False) -> np.ndarray:
        """``size`` indices: with replacement by ``p``, or (``shuffle``) concatenated permutations."""
        rng = np.random.default_rng([int(self.cfg["seed"]), int(epoch), stream])
        if shuffle:
            n = len(p)
            return np.concatenate([rng.permutation(n) for _ in range(-(-size // n))])[:size]
        return rng.choice(len(p), size=size, replace=True, p=p)

    def _batches(self, x, rr, y, idx):
        idx = torch.as_tensor(idx, device=self.dev)
        for s in range(self.steps):
            b = idx[s * self.bs:(s + 1) * self.bs]
            yield (x[b], rr[b]), y[b]

    def train_batches(self, epoch):
        idx = self._draw(self.p_tr, self.steps * self.bs, epoch, 1, shuffle=self.cfg["sampler"] == "shuffle")
        return self._batches(self.x_tr, self.rr_tr, self.y_tr, idx)

    def held_batches(self, epoch):
        idx = self.held[self._draw(self.p_va, self.steps * self.bs, epoch, 2)]
        return self._batches(self.x_va, self.rr_va, self.y_va, idx)

    def es_batch(self, epoch):
        b = torch.as_tensor(self.held[self._draw(self.p_va, self.bs, epoch, 3)], device=self.dev)
        return (self.x_va[b], self.rr_va[b]), self.y_va[b]

    def loss(self, logits, y):
        return F.cross_entropy(logits.float(), y, weight=self.loss_weight)

    # --- metrics and result ----------------------------------------------------------------------
    def bn_batches(self) -> list[tuple]:
        """The calibration set: ``eval_bn_batches`` training batches drawn like the weight batches
        (own random stream, the same beats every epoch) whose BN statistics the end-of-epoch
        evaluation uses (:func:`nascore.darts.supernet.recalibrated_copy`)."""
        n = self.cfg["eval_bn_batches"]
        rng = np.random.default_rng([int(self.cfg["seed"]), 5])
        idx = rng.choice(len(self.p_tr), size=n * self.bs, replace=True, p=self.p_tr)
        idx = torch.as_tensor(idx, device=self.dev)
        return [(self.x_tr[b], self.rr_tr[b]) for b in idx.split(self.bs)]

    def evaluate(self, net, autocast, epoch: int = 0) -> dict:
        from contextlib import nullcontext

        from nascore.darts.supernet import recalibrated_copy
        was = net.training
        preds, loss_sum = [], 0.0
        bs = self.cfg["eval_batch_size"]
        try:
            with torch.no_grad(), (autocast or nullcontext)():
                if self.cfg["eval_bn_batches"]:
                    scored = recalibrated_copy(net, self.bn_batches())
                else:
                    scored = net
                    net.eval()
                for s in range(0, len(self.eval_order), bs):
                    b = self.eval_order[s:s + bs]
                    logits = scored(self.x_va[b], self.rr_va[b]).float()
                    loss_sum += float(F.cross_entropy(logits, self.y_va[b], reduction="sum"))
                    preds.append(logits.argmax(1).cpu())
        finally:
            net.train(was)
        y_true = self.y_va_np[self.eval_order.cpu().numpy()]
        rep = self._report(y_true, torch.cat(preds).numpy())
        n = len(y_true)
        f1 = rep["macro_f1"]
        return {"valid_loss": loss_sum / n, "valid_acc": float(rep["accuracy"]),
                "valid_macro_f1": None if f1 is None or math.isnan(f1) else float(f1)}

    def result(self, cfg, log, finished):
        last = log[-1]
        return {"method": cfg["method"], "space": self.space, "seed": cfg["seed"], "epochs_done": len(log),
                "genotype": last["genotype"], "valid_macro_f1_supernet": last["valid_macro_f1"],
                "valid_accuracy_supernet": last["valid_acc"], "seconds": search_seconds(log),
                "alpha": last["alpha"], "config": cfg, "finished": finished}

    def postfix(self, rec):
        f1 = rec.get("valid_macro_f1")
        return {"f1": "nan" if f1 is None else f"{f1:.1f}", "acc": f"{rec['valid_acc']:.1f}"}


# --- entry point ---------------------------------------------------------------------------------------
def ecg_search_config(*, method: str = "egnas", epochs: int = 50, warmup: int | None = None, seed: int = 0,
                      C: int = 8, layers: int = 5, K: int = 4, stem_stride: int = 2, dropout: float = 0.2,
                      batch_size: int = 256, samples_per_epoch: int | None = 8192, sampler: str = "balanced",
                      class_weight: str = "none", lr: float | None = None, lr_min: float = 0.0,
                      momentum: float = 0.9, weight_decay: float = 3e-4, grad_clip: float = 5.0,
                      arch_lr: float = 6e-4, arch_wd: float = 1e-3, es=None, eval_beats: int | None = None,
                      eval_batch_size: int = 512, eval_bn_batches: int = 8, train_q: bool = False,
                      amp: str = "auto", op_set: str | None = None, pool_bn: bool = True,
                      bn_running_stats: bool = False) -> dict:
    """The configuration of an ECG supernet search (the run's ``config.json`` without the data part), checked.

    Defaults as the core search (:func:`nascore.darts.train.search_config`): EG-NAS lr 0.1 and
    warm-up 15 of 50 epochs (the paper), DARTS lr 0.025 and warm-up 0; SGD momentum 0.9, weight
    decay 3e-4, clipping 5; ES settings :class:`nascore.egnas.ESConfig` (population 50 ...).
    ECG: balanced sampling of 8,192 training beats per epoch (what the hand-designed baselines
    use), plain cross-entropy (``class_weight="none"``: the sampler already balances; ``inverse``
    / ``sqrt_inverse`` as :func:`ecgnas.train.class_weights` on the training split), and, as
    :class:`ecgnas.train.TrainConfig` (``train_q=False``), no Q beats in the training batches nor
    in the held-out ES / α batches (the end-of-epoch hold-out metrics still see every beat).
    End of epoch: the hold-out (all of it, or the first ``eval_beats`` of a fixed shuffle) is
    predicted by a copy of the supernet whose BNs use statistics of ``eval_bn_batches`` (8)
    training batches (``0``: the batch statistics of the hold-out batches of ``eval_batch_size``).
    Supernet (:func:`nascore.darts.train.supernet_config`): EG-NAS searches the released 7 DARTS
    operations (no ``none``), DARTS the 8 (``op_set`` chooses), a BN after pooling operations
    (``pool_bn``), BNs without running statistics (``bn_running_stats``: released EG-NAS keeps them).

    >>> ecg_search_config(method="darts", epochs=3)["warmup"], ecg_search_config(epochs=20, warmup=5)["lr"]
    (0, 0.1)
    """
    if method not in METHODS:
        raise UserError(f"unknown search method {method!r} (choose from {', '.join(METHODS)})")
    for name, v, lo in (("epochs", epochs, 1), ("C", C, 1), ("layers", layers, 3), ("K", K, 1),
                        ("stem_stride", stem_stride, 1), ("batch_size", batch_size, 2),
                        ("eval_batch_size", eval_batch_size, 2), ("eval_bn_batches", eval_bn_batches, 0),
                        ("seed", seed, 0)):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise UserError(f"{name} must be an integer >= {lo}; got {v!r}")
    for name, v in (("samples_per_epoch", samples_per_epoch), ("eval_beats", eval_beats)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 2):
            raise UserError(f"{name} must be an integer >= 2 or None; got {v!r}")
    if C % K:
        raise UserError(f"partial channels: C={C} channels cannot be split into K={K} parts")
    warmup, es = method_settings(method, epochs, warmup, amp, es)
    if sampler not in SAMPLERS:
        raise UserError(f"sampler: {sampler!r} is not one of {', '.join(SAMPLERS)}")
    if class_weight not in CLASS_WEIGHTS:
        raise UserError(f"class_weight: {class_weight!r} is not one of {', '.join(CLASS_WEIGHTS)}")
    lr = DEFAULT_LR[method] if lr is None else lr
    for name, v, positive in (("lr", lr, True), ("lr_min", lr_min, False), ("weight_decay", weight_decay, False),
                              ("grad_clip", grad_clip, True), ("arch_lr", arch_lr, True), ("arch_wd", arch_wd, False)):
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and (v > 0 if positive
                                                                                             else v >= 0)
        if not ok:
            raise UserError(f"{name} must be a {'positive' if positive else 'non-negative'} number; got {v!r}")
    if not (isinstance(dropout, (int, float)) and 0 <= dropout < 1):
        raise UserError(f"dropout={dropout!r} must be a number in [0, 1)")
    if not 0 <= momentum < 1:
        raise UserError(f"momentum must be in [0, 1); got {momentum!r}")
    return {"method": method, "space": SPACE, "epochs": epochs, "warmup": warmup, "seed": int(seed), "C": C,
            "layers": layers, "K": K, "stem_stride": stem_stride, "dropout": float(dropout), "batch_size": batch_size,
            "samples_per_epoch": samples_per_epoch, "sampler": sampler, "class_weight": class_weight,
            "lr": float(lr), "lr_min": float(lr_min), "momentum": float(momentum), "weight_decay": float(weight_decay),
            "grad_clip": float(grad_clip), "arch_lr": float(arch_lr) if method == "darts" else None,
            "arch_wd": float(arch_wd) if method == "darts" else None, "es": es, "eval_beats": eval_beats,
            "eval_batch_size": eval_batch_size, "eval_bn_batches": eval_bn_batches, "train_q": bool(train_q),
            "amp": amp, **supernet_config(method, SPACE, op_set, pool_bn, bn_running_stats)}


def egnas_ecg_search(beats, split, output, *, method: str = "egnas", epochs: int = 50, warmup: int | None = None,
                     seed: int = 0, C: int = 8, layers: int = 5, K: int = 4, batch_size: int = 256,
                     samples_per_epoch: int | None = 8192, lr: float | None = None, es=None, device: str = "cpu",
                     progress: bool = True, on_epoch=None, **kwargs) -> dict:
    """Run (or resume) an EG-NAS (``method="egnas"``) or first-order DARTS (``"darts"``) search of
    1D DARTS cells on ECG beats in the run folder ``output``; returns the ``result.json`` dict.

    ``beats``: :class:`ecgnas.data.Beats`-like (``x`` float32 ``[n, L]`` or ``[n, C, L]``, ``rr``
    ``[n, k]``, ``y`` int64 in 0..4); ``split``: ``{"train", "val"}`` index arrays (the
    inter-patient split: DS1 minus hold-out, DS1 hold-out; ``"test"`` is ignored, never read).
    ``es``: :class:`nascore.egnas.ESConfig` or a dict of its fields; ``kwargs``: the other
    :func:`ecg_search_config` settings (``stem_stride``, ``dropout``, ``sampler``, ``class_weight``,
    ``lr_min``, ``momentum``, ``weight_decay``, ``grad_clip``, ``arch_lr``, ``arch_wd``,
    ``eval_beats``, ``eval_batch_size``, ``eval_bn_batches``, ``train_q``, ``amp``). ``on_epoch(record)`` is called after each
    epoch's checkpoint.

    Run folder (as the CIFAR search): ``config.json`` (the settings + a description and digest of
    the data; another configuration is refused), ``log.jsonl`` (per epoch: lr, ES fitness
    components or the DARTS α loss, train loss/accuracy, hold-out loss/accuracy/macro-F1,
    ``alpha``, ``genotype``, seconds), ``checkpoint.pt`` (atomic; a killed run resumes from the last
    finished epoch to the same result, bitwise on CPU with a fixed thread count), ``alpha.png``,
    ``result.json`` (``method``, ``space: "darts1d"``, ``genotype`` text, ``valid_macro_f1_supernet``,
    ``valid_accuracy_supernet``, ``seconds``, ``alpha``, ``config``, ``finished``). The folder is
    locked while the search writes it (:func:`nascore.lock.folder_lock`): a second process on it
    is refused with a UserError naming the first one's PID.

    Example (real beats; about a minute an epoch at the defaults on one CPU thread)::

        from ecgnas.data import load_beats, inter_patient_split
        beats = load_beats(progress=False)
        res = egnas_ecg_search(beats, inter_patient_split(beats), "runs/egnas-ecg", epochs=50)
        model = ECGEvalNet(res["genotype"], window=beats.x.shape[-1])   # then ecgnas.train.fit(model, ...)
    """
    base = ecg_search_config(method=method, epochs=epochs, warmup=warmup, seed=seed, C=C, layers=layers, K=K,
                             batch_size=batch_size, samples_per_epoch=samples_per_epoch, lr=lr, es=es, **kwargs)
    dev = check_device(device)
    task = ECGSearchTask(beats, split, base, dev)
    cfg = adopt_stored_config(output, {**base, "data": task.identity}, progress=progress)  # an older folder: its own
    sn = supernet_settings(cfg)
    net = ECGSupernet(task.in_channels, task.n_rr, N_CLASSES, C=cfg["C"], layers=cfg["layers"], K=cfg["K"],
                      stem_stride=cfg["stem_stride"], dropout=cfg["dropout"], seed=cfg["seed"],
                      ops=darts1d_opset(sn["primitives"]), pool_bn=sn["pool_bn"],
                      bn_running_stats=sn["bn_running_stats"]).to(dev)
    check_config(Path(output), cfg)  # a folder of another configuration is refused before it is locked
    with folder_lock(output, what="search folder"):  # one writer: a second process is refused, its PID named
        return supernet_search_loop(cfg, output, net, task, device=dev, progress=progress, on_epoch=on_epoch)
