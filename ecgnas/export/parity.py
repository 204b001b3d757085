"""The parity check of an export: the exported file against the checkpoint, on the same beats.

Passes when, on every beat given (by default all DS1 and DS2 beats of the run's prepared data),

* the exported label equals the checkpoint's on at least :data:`MIN_AGREEMENT` (99.9 %) of beats,
* every probability differs by at most :data:`PROBA_ATOL` (1e-4), and
* every score (logit) by at most :data:`SCORE_ATOL` + :data:`SCORE_RTOL` x |reference score|
  (1e-3 + 1e-4 |s|).

float32 ONNX / TorchScript graphs differ from eager torch by rounding only (typically 1e-6);
the tolerances leave two orders of magnitude for other CPUs and onnxruntime releases and are far
below any change of weights. A failure is one line (:class:`ParityError`, exit status 2).
The check compares two implementations of one fixed model; it chooses nothing, so running it on
DS2 beats touches no decision of the protocol.

>>> ref = np.array([[2.0, 1.0], [0.0, 3.0]], np.float32)
>>> compare(ref, ref + 1e-6)["passed"], compare(ref, ref[:, ::-1].copy())["passed"]
(True, False)
"""

from __future__ import annotations

import numpy as np

from nascore.errors import UserError

MIN_AGREEMENT = 0.999
PROBA_ATOL = 1e-4
SCORE_ATOL = 1e-3
SCORE_RTOL = 1e-4


class ParityError(UserError):
    """The exported model does not reproduce the checkpoint (one line)."""


def _softmax(s: np.ndarray) -> np.ndarray:
    z = s - s.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def compare(ref_scores: np.ndarray, got_scores: np.ndarray, got_proba: np.ndarray | None = None,
            got_label: np.ndarray | None = None) -> dict:
    """Parity statistics of exported outputs against the reference scores ``[n, K]``.

    ``got_proba`` / ``got_label`` default to softmax / argmax of ``got_scores``. Returns ``n``,
    ``agreement`` (fraction of equal labels), ``max_abs_proba``, ``max_abs_score``,
    ``max_score_excess`` (largest |diff| minus its allowance; <= 0 passes), ``passed`` and ``reason``.
    """
    ref = np.asarray(ref_scores, np.float64)
    got = np.asarray(got_scores, np.float64)
    if ref.shape != got.shape or ref.ndim != 2 or len(ref) == 0:
        raise ParityError(f"parity: exported scores have shape {got.shape}, the checkpoint's {ref.shape}")
    p_ref = _softmax(ref)
    p_got = _softmax(got) if got_proba is None else np.asarray(got_proba, np.float64)
    y_ref = ref.argmax(1)
    y_got = got.argmax(1) if got_label is None else np.asarray(got_label).astype(np.int64)
    agreement = float((y_ref == y_got).mean())
    d_p = float(np.abs(p_ref - p_got).max())
    d_s = np.abs(ref - got)
    excess = float((d_s - (SCORE_ATOL + SCORE_RTOL * np.abs(ref))).max())
    reasons = []
    if not np.isfinite(got).all() or not np.isfinite(p_got).all():
        reasons.append("non-finite outputs")
    if agreement < MIN_AGREEMENT:
        reasons.append(f"labels agree on {100 * agreement:.3f} % of beats (need >= {100 * MIN_AGREEMENT:.1f} %)")
    if not d_p <= PROBA_ATOL:
        reasons.append(f"probabilities differ by up to {d_p:.2e} (tolerance {PROBA_ATOL:g})")
    if not excess <= 0:
        reasons.append(f"scores differ by up to {float(d_s.max()):.2e} "
                       f"(tolerance {SCORE_ATOL:g} + {SCORE_RTOL:g} x |score|)")
    return {"n": int(len(ref)), "agreement": agreement, "n_disagree": int((y_ref != y_got).sum()),
            "max_abs_proba": d_p, "max_abs_score": float(d_s.max()), "max_score_excess": excess,
            "tolerance": {"min_agreement": MIN_AGREEMENT, "proba_atol": PROBA_ATOL, "score_atol": SCORE_ATOL,
                          "score_rtol": SCORE_RTOL},
            "passed": not reasons, "reason": "; ".join(reasons) or None}


def check_parity(reference, exported, x: np.ndarray, rr: np.ndarray, what: str = "export") -> dict:
    """Run both runners (:mod:`ecgnas.export.runners`) on ``x``, ``rr``; :func:`compare` their outputs.

    Raises :class:`ParityError` (one line naming ``what`` and the failed criterion) when the check
    fails; returns the statistics otherwise.
    """
    ref_scores, _, _ = reference(x, rr)
    got_scores, got_proba, got_label = exported(x, rr)
    stats = compare(ref_scores, got_scores, got_proba, got_label)
    if not stats["passed"]:
        raise ParityError(f"{what}: parity check failed on {stats['n']} beats: {stats['reason']}")
    return stats
