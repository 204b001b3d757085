"""Per-class decision offsets fitted on DS1 out-of-fold probabilities (never on test patients).

A classifier trained with class-balanced sampling or weights predicts as if every class were
equally likely; the best operating point for macro-F1 on unseen patients is somewhere else, and
it differs per class (S beats are rare and look like N; V beats are distinct). The decision rule
here is

.. math::  \\hat y = \\arg\\max_c \\; \\log p_c(x) + b_c, \\qquad b_N = 0,

i.e. per-class thresholds on the probability ratios (equivalently a prior correction
:math:`b_c = \\log(\\pi'_c / \\pi_c)` with freely chosen target priors; Saerens et al. 2002,
Neural Computation 14(1)). The offsets :math:`b` are chosen to maximise macro-F1 over N, S, V, F
of **out-of-fold** predictions on DS1 (:func:`ecgnas.ensemble.cross_validate`: every DS1 beat is
predicted by a model that never saw its record), by coordinate ascent over a fixed grid
(:data:`GRID`, 3 passes). DS2 is never an input: :func:`fit_offsets` takes labels and
probabilities only, and the callers pass DS1 out-of-fold arrays.

Q (not trained, 8 DS1 beats) keeps offset 0 and is outside the objective, as in the headline metric.

>>> import numpy as np
>>> y = np.array([0] * 90 + [1] * 10)
>>> p = np.tile([0.7, 0.3, 0.0, 0.0, 0.0], (100, 1)); p[90:, :2] = [0.55, 0.45]
>>> b = fit_offsets(y, p)
>>> bool((apply_offsets(p, b).argmax(1) == y).all()), bool(b[1] > 0)
(True, True)
"""

from __future__ import annotations

import numpy as np

from nascore.errors import UserError

GRID = np.round(np.arange(-3.0, 3.0001, 0.25), 2)
SCORED = (0, 1, 2, 3)  # N, S, V, F
EPS = 1e-9


def _macro_f1(y: np.ndarray, pred: np.ndarray, classes=SCORED) -> float:
    f1s = []
    for c in classes:
        tp = float(np.sum((pred == c) & (y == c)))
        fp = float(np.sum((pred == c) & (y != c)))
        fn = float(np.sum((pred != c) & (y == c)))
        f1s.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(f1s)) * 100


def apply_offsets(proba: np.ndarray, offsets) -> np.ndarray:
    """Adjusted scores ``log p + b`` (``[n, K]``); their argmax is the decision.

    >>> apply_offsets(np.array([[0.6, 0.4]]), [0.0, 1.0]).argmax(1).tolist()
    [1]
    """
    b = np.asarray(offsets, dtype=np.float64)
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2 or b.shape != (proba.shape[1],):
        raise UserError(f"offsets: expected {proba.shape[1] if proba.ndim == 2 else '?'} values, got shape {b.shape}")
    return np.log(np.clip(proba, EPS, 1.0)) + b


def fit_offsets(y: np.ndarray, proba: np.ndarray, passes: int = 3) -> np.ndarray:
    """Offsets ``b`` ``[K]`` (``b_N = 0``) maximising macro-F1 (N, S, V, F) of ``argmax(log p + b)``.

    ``y``: int labels ``[n]`` and ``proba`` ``[n, K]`` of **out-of-fold DS1** predictions. Coordinate
    ascent over :data:`GRID` for S, V, F in turn, ``passes`` times; ties keep the offset nearest 0
    (the smallest change to the model's own decision).
    """
    y = np.asarray(y, dtype=np.int64)
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2 or len(y) != len(proba) or len(y) == 0:
        raise UserError(f"fit_offsets: need labels [n] and probabilities [n, K], got {y.shape} and {proba.shape}")
    logp = np.log(np.clip(proba, EPS, 1.0))
    b = np.zeros(proba.shape[1])
    best = _macro_f1(y, (logp + b).argmax(1))
    order = np.argsort(np.abs(GRID), kind="stable")
    for _ in range(passes):
        changed = False
        for c in SCORED[1:]:
            if c >= proba.shape[1] or not (y == c).any():
                continue
            keep = b[c]
            for v in GRID[order]:
                b[c] = v
                score = _macro_f1(y, (logp + b).argmax(1))
                if score > best + 1e-9:
                    best, keep, changed = score, v, True
            b[c] = keep
        if not changed:
            break
    return b
