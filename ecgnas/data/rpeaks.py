"""R-peak detection for recordings without reference annotations (neurokit2), and its scoring.

* :func:`detect_rpeaks` -- ``neurokit2.ecg_clean`` then ``neurokit2.ecg_peaks`` (method
  ``"neurokit"`` by default: QRS detection from the steepness of the cleaned signal, Makowski et
  al., Behavior Research Methods 53:1689-1696, 2021).
* :func:`unlabelled_beats` -- the same beat windows and RR features as the labelled pipeline
  (:mod:`ecgnas.data.preprocess`, same :class:`PrepConfig`), around detected peaks.
* :func:`score_detections` -- sensitivity ``Se = TP / (TP + FN)`` and positive predictivity
  ``+P = TP / (TP + FP)`` (ANSI/AAMI EC57) with one-to-one matching within a tolerance (150 ms
  by default), using ``wfdb.processing.Comparitor``.

>>> s = score_detections(np.array([100, 500, 900]), np.array([110, 560, 900, 1300]), fs=360)
>>> s["tp"], s["fn"], s["fp"], round(s["se"], 3), s["ppv"]
(2, 1, 2, 0.667, 0.5)
"""

from __future__ import annotations

import numpy as np

from nascore.errors import UserError

from .preprocess import PrepConfig, beat_inputs, clean_signal


def detect_rpeaks(signal: np.ndarray, fs: float, method: str = "neurokit") -> np.ndarray:
    """R-peak sample indices (int64, sorted) of a raw single-lead ECG ``signal`` [n] at ``fs`` Hz.

    >>> import neurokit2 as nk                                               # doctest: +SKIP
    >>> ecg = nk.ecg_simulate(duration=20, sampling_rate=360, heart_rate=70, random_state=0)  # doctest: +SKIP
    >>> len(detect_rpeaks(ecg, 360))                                          # doctest: +SKIP
    23
    """
    sig = np.asarray(signal, dtype=np.float64)
    if sig.ndim != 1:
        raise UserError(f"detect_rpeaks: need a 1-D signal, got shape {sig.shape}")
    if not np.isfinite(sig).all():
        raise UserError(f"detect_rpeaks: signal has {int((~np.isfinite(sig)).sum())} NaN/inf samples")
    if fs <= 0 or len(sig) < 2 * fs:
        raise UserError(f"detect_rpeaks: need fs > 0 and at least 2 s of signal, got {len(sig)} samples at {fs} Hz")
    import neurokit2 as nk

    try:
        cleaned = nk.ecg_clean(sig, sampling_rate=fs, method=method)
        _, info = nk.ecg_peaks(cleaned, sampling_rate=fs, method=method)
    except ValueError as e:
        raise UserError(f"detect_rpeaks: neurokit2 method {method!r} failed: {e}") from None
    return np.unique(np.asarray(info["ECG_R_Peaks"], dtype=np.int64))


def score_detections(reference: np.ndarray, detected: np.ndarray, fs: float, tolerance_s: float = 0.15) -> dict:
    """Match detections to reference beats within ``tolerance_s`` (inclusive) and count TP/FN/FP.

    Returns ``{"n_ref", "n_det", "tp", "fn", "fp", "se", "ppv"}`` (``se``/``ppv`` are ``nan``
    when undefined: no reference beats / no detections).
    """
    from wfdb.processing import Comparitor

    ref = np.sort(np.asarray(reference, dtype=np.int64))
    det = np.sort(np.asarray(detected, dtype=np.int64))
    tol = int(np.floor(tolerance_s * fs + 1e-9))
    if len(ref) and len(det):
        comp = Comparitor(ref, det, tol + 1)  # wfdb matches |ref - det| < window_width
        comp.compare()
        tp = int(comp.tp)
    else:
        tp = 0
    fn, fp = len(ref) - tp, len(det) - tp
    return {"n_ref": int(len(ref)), "n_det": int(len(det)), "tp": tp, "fn": int(fn), "fp": int(fp),
            "se": tp / len(ref) if len(ref) else float("nan"), "ppv": tp / len(det) if len(det) else float("nan")}


def unlabelled_beats(signal: np.ndarray, fs: int, config: PrepConfig | None = None) -> dict[str, np.ndarray]:
    """Beats of a recording without annotations: ``{"x", "rr", "sample": [n]}`` (``x`` and ``rr`` as
    :func:`~ecgnas.data.preprocess.beat_inputs` gives them for ``config``).

    ``signal`` must already be at ``config.fs`` (resample first otherwise); peaks are detected on
    the raw signal, windows are cut from the signal filtered as ``config`` says.
    """
    cfg = config if config is not None else PrepConfig()
    if fs != cfg.fs:
        raise UserError(f"unlabelled_beats: signal is at {fs} Hz but config.fs is {cfg.fs}; resample it first")
    peaks = detect_rpeaks(signal, fs)
    if len(peaks) < 2:
        raise UserError(f"unlabelled_beats: found {len(peaks)} R peaks; need at least 2")
    x, rr = beat_inputs(clean_signal(signal, fs, cfg), peaks, fs, cfg)
    return {"x": x, "rr": rr, "sample": peaks}
