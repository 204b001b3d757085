"""Ensembles of beat classifiers and grouped record-fold cross-validation over DS1.

:func:`cross_validate` trains one model per record fold of DS1 (:func:`ecgnas.data.record_folds`:
whole records, never a patient on both sides) and returns the **out-of-fold** probabilities of
every DS1 beat -- each predicted by the model that did not see its record -- together with the K
fold models. That one call gives the three things the inter-patient protocol needs from DS1
alone: a selection score (out-of-fold macro-F1, which scores all of DS1's S and F beats, not a
5-record hold-out's), the data to fit decision offsets on (:mod:`ecgnas.decision`), and K
ensemble members.

:class:`EnsembleModel` averages its members' class probabilities and adds the decision offsets:

.. math::  \\text{out}(x) = \\log \\Big( \\frac{1}{K} \\sum_k \\operatorname{softmax} f_k(x, rr) \\Big) + b

so ``softmax(out)`` is the (offset-adjusted) mean probability and ``argmax(out)`` the decision; a
single model with offsets is the case K = 1. It is an ordinary ``nn.Module`` called as
``model(x, rr)``, so :func:`ecgnas.train.predict` and the evaluation code take it unchanged.

>>> import torch
>>> class C(torch.nn.Module):
...     def __init__(self, v): super().__init__(); self.v = torch.nn.Parameter(torch.tensor(v))
...     def forward(self, x, rr): return self.v.expand(x.shape[0], -1)
>>> e = EnsembleModel([C([0.0, 1.0]), C([1.0, 0.0])])
>>> torch.softmax(e(torch.zeros(1, 1, 3), None), 1).tolist()
[[0.5, 0.5]]
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from nascore.errors import UserError


class EnsembleModel(nn.Module):
    """Mean of member probabilities, in log space, plus per-class offsets ``b`` (a buffer)."""

    def __init__(self, members: Sequence[nn.Module], offsets=None):
        super().__init__()
        if not members:
            raise UserError("ensemble: needs at least one member")
        self.members = nn.ModuleList(members)
        b = torch.zeros(0) if offsets is None else torch.as_tensor(np.asarray(offsets, dtype=np.float32))
        self.register_buffer("offsets", b)

    def forward(self, x: torch.Tensor, rr: torch.Tensor | None = None) -> torch.Tensor:
        p = torch.stack([torch.softmax(m(x, rr).float(), dim=1) for m in self.members]).mean(0)
        out = torch.log(p.clamp_min(1e-9))
        if self.offsets.numel():
            out = out + self.offsets.to(out.device)
        return out


def cross_validate(build: Callable[[int], nn.Module], beats, folds: Sequence[np.ndarray], config,
                   fit_fn: Callable | None = None, progress: bool = False,
                   on_fold: Callable[[int, nn.Module, dict], None] | None = None,
                   extra_train: np.ndarray | None = None) -> dict:
    """Train one model per fold on the other folds; out-of-fold probabilities for every fold beat.

    ``build(k)``: a fresh model for fold ``k`` (seed it inside for reproducibility); ``folds``:
    disjoint beat-index arrays (whole records); ``config``: a :class:`ecgnas.train.TrainConfig`
    with a fixed schedule (``select="last"``, ``patience=None``: no fold is used to stop another's
    training). Beats outside the folds (DS2) are never read. Returns ``{"proba": [n_oof, K] float,
    "index": [n_oof] beat indices (concatenated folds), "members": [K models], "summaries": [...]}``.
    ``on_fold(k, model, summary)`` is called after each fold (for checkpoints / progress).
    ``extra_train``: optional beat indices added to *every* fold's training set and never held
    out, predicted or scored (extra training data, e.g. every SVDB beat with ``--dataset
    mitdb+svdb``, :func:`ecgnas.data.extra_rows`): the folds and the out-of-fold predictions
    stay over the main database's beats only. They must be disjoint from the folds (else a
    UserError); ``None`` or empty: the plain cross-validation.
    """
    from ecgnas.train import fit, predict_proba, seed_everything

    fit_fn = fit_fn or fit
    if config.select != "last" or config.patience is not None:
        raise UserError("cross_validate: use a fixed schedule (select='last', patience=None); "
                        "early stopping on another fold would let it choose the model")
    folds = [np.asarray(f, dtype=np.int64) for f in folds]
    all_idx = np.concatenate(folds)
    if len(np.unique(all_idx)) != len(all_idx):
        raise UserError("cross_validate: folds overlap")
    extra = np.zeros(0, np.int64) if extra_train is None else np.asarray(extra_train, dtype=np.int64).ravel()
    if np.isin(extra, all_idx).any():
        raise UserError(f"cross_validate: {int(np.isin(extra, all_idx).sum())} extra training beats are also in "
                        "the folds (extra training data is never held out or scored)")
    members, summaries, probas = [], [], []
    for k, held in enumerate(folds):
        train = np.concatenate([f for j, f in enumerate(folds) if j != k] + ([extra] if len(extra) else []))
        seed_everything(config.seed + 1000 * k)
        model = build(k)
        res = fit_fn(model, beats, {"train": train, "val": np.zeros(0, np.int64)}, config, progress=progress)
        probas.append(predict_proba(model, beats, held, config.eval_batch_size))
        summary = {k2: v for k2, v in res.summary().items() if k2 != "history"}
        summary["fold"] = k
        members.append(model)
        summaries.append(summary)
        if on_fold is not None:
            on_fold(k, model, summary)
    return {"proba": np.concatenate(probas), "index": all_idx, "members": members, "summaries": summaries}


def mean_proba(models: Sequence[nn.Module], beats, idx, batch_size: int = 512) -> np.ndarray:
    """Mean of the members' class probabilities on ``beats`` rows ``idx`` ``[n, K]``.

    >>> # p = mean_proba(cv["members"], beats, split["test"])
    """
    from ecgnas.train import predict_proba

    return np.mean([predict_proba(m, beats, idx, batch_size) for m in models], axis=0)
