"""Signal preprocessing for beat classification: filtering, beat windows, RR-interval features.

Everything here works on one single-lead signal (1-D ``float`` array in mV, sampled at ``fs`` Hz)
and the sample indices of its R peaks; :class:`PrepConfig` holds every parameter, so the beat
cache (:mod:`ecgnas.data.cache`) can key on all of them.

Defaults and where they come from
---------------------------------
* **Filter** ``"median"`` (default): baseline wander removal with two cascaded median filters of
  200 ms and 600 ms whose output (the baseline estimate) is subtracted from the signal, then a
  zero-phase Butterworth low-pass at 35 Hz (order 3, ``scipy.signal.sosfiltfilt``) against mains
  and muscle noise -- the scheme of de Chazal, O'Dwyer & Reilly, IEEE TBME 51(7):1196-1206 (2004),
  Sec. II-B (they used a 12-tap FIR low-pass; a zero-phase IIR keeps the R peak in place). Other
  choices: ``"bandpass"`` (zero-phase Butterworth band-pass, 0.5-40 Hz by default), ``"neurokit"``
  (``neurokit2.ecg_clean``, method "neurokit": 0.5 Hz high-pass + 50 Hz notch), ``"none"``.
* **Beat window**: ``before_s=0.25`` s before to ``after_s=0.45`` s after the R peak, i.e. samples
  ``[r - 45, r + 81)`` at 180 Hz, so ``L = 126`` and the R peak sits at index 45 (252 samples,
  peak at 90, at 360 Hz).
  Windows that run past either end of the record are **padded, never dropped**: with
  ``pad="edge"`` (default) the first/last sample of the filtered signal is repeated, with
  ``pad="zero"`` zeros are used. So every annotated beat gets a window.
* **Sampling rate** ``fs=180``: MIT-BIH is recorded at 360 Hz; records are resampled to ``fs``
  (``scipy.signal.resample_poly``, anti-aliased) before filtering, so a 0.7 s window is 126 samples.
  On the DS1 hold-out 180 Hz and 360 Hz score within noise of each other (macro-F1 57.1 ± 2.0 vs
  59.4 ± 4.0, ``benchmarks/ecg_recipe.py``, 3 seeds) and 180 Hz trains about 1.5 times faster;
  ``fs=360`` keeps the original rate.
* **Beat normalisation** ``beat_norm="none"`` (default: filtered mV as is), ``"zscore"`` (each
  window minus its mean, divided by its standard deviation) or ``"record"`` (every window of a
  record divided by the peak-to-peak amplitude of the record's median window, at least 0.05 mV: a
  patient-level amplitude normalisation that keeps the differences between a patient's beats;
  measured in ``benchmarks/ecg_recipe_cv.py``).
* **Residual channel** ``residual="record"`` (default): every window gets a second channel, the
  window minus the median window of its record (the record's template beat, computed from the
  unlabelled windows only, so it is available for any recording). It shows how a beat differs
  from this patient's usual beat, which carries over from patient to patient far better than
  raw morphology: on the DS1 hold-out macro-F1 drops from 57.1 ± 2.0 to 49.4 ± 1.6 without it
  (``benchmarks/ecg_recipe.py``, 3 seeds).
  ``x`` is then ``[n, 2, L]``; ``residual="none"`` gives ``[n, L]`` (the window), ``"only"``
  ``[n, L]`` (the residual alone: hold-out 55.7 ± 2.7, within noise of the default).
  ``template="all"`` (default) takes the median over all the record's windows. That assumes the
  patient's usual beat is the majority, which fails for a record whose ectopic beats outnumber
  its normal ones (MIT-BIH 232: 1,382 atrial premature beats, 397 normal): its template is then
  the ectopic beat, which gets a near-zero residual. ``template="regular"`` takes the median over
  the beats that are not premature (``pre/local >= 0.9``, the same prematurity measure as the RR
  features; the classical "dominant rhythm" template), falling back to all windows when fewer
  than ten beats qualify. Still unlabelled, so available for any recording.
* **RR features** (shape ``[n, 4]``, Eq. below, intervals in seconds over the record's beats):

  - ``pre[i]  = (r[i] - r[i-1]) / fs``; the first beat uses its next interval;
  - ``post[i] = (r[i+1] - r[i]) / fs``; the last beat uses its previous interval;
  - ``local[i]`` = mean of ``pre`` over the ``local_rr_beats`` (10) beats centred on ``i``
    (``i-4 .. i+5`` for 10; truncated at the record ends);
  - ``avg`` = mean of all RR intervals of the record.

  With ``rr_norm="record"`` (default) the first three columns are divided by the record's ``avg``
  (so 1.0 means "as long as this patient's mean RR", which removes inter-patient heart-rate
  differences; a premature beat has ``pre < 1``), and the fourth column is ``avg`` in seconds
  (the only column that keeps the absolute rate). With ``rr_norm="none"`` all four are seconds.
  ``rr_set="ratios"`` (default) gives five columns instead: ``[pre, post, local, pre/local,
  post/pre]`` (the first three normalised as above). It drops the absolute record average --
  with 17 training records it names the patient, which a network can memorise -- and adds the
  prematurity ``pre/local`` and the compensatory-pause ratio ``post/pre`` that separate
  supraventricular ectopic beats (de Chazal et al. 2004; Mondéjar-Guerra et al. 2019). Hold-out
  macro-F1 57.1 ± 2.0 with it, 54.1 ± 1.4 with the basic set (``benchmarks/ecg_recipe.py``).
  ``rr_set="basic"`` is the four-column form.

>>> import numpy as np
>>> cfg = PrepConfig()
>>> cfg.window_samples()
(45, 81)
>>> sig = np.sin(np.linspace(0, 60, 3600))
>>> x = beat_windows(sig, np.array([0, 1800, 3599]), 90, 162)
>>> x.shape, float(x[0, 0]) == float(sig[0])        # padded with the first sample
((3, 252), True)
>>> rr_features(np.array([0, 360, 720, 1260]), 360, local_rr_beats=10, rr_set="basic").round(3)[:, [0, 1, 3]]
array([[0.857, 0.857, 1.167],
       [0.857, 0.857, 1.167],
       [0.857, 1.286, 1.167],
       [1.286, 1.286, 1.167]], dtype=float32)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field

import numpy as np

from nascore.errors import UserError
from nascore.validate import integer, number

# Bump whenever the meaning of prepared beats changes (code, not parameters): old caches are ignored.
# 2: ``sample`` is the annotation's sample index in the record file (at its own rate); residual channel, rr_set.
PIPELINE_VERSION = "2"

FILTERS = ("median", "bandpass", "neurokit", "none")
PADS = ("edge", "zero")
RR_NORMS = ("record", "none")
RR_SETS = ("ratios", "basic")
RESIDUALS = ("record", "only", "none")
TEMPLATES = ("all", "regular")
#: ``template="regular"``: a beat whose ``pre / local`` RR ratio is below this is premature.
REGULAR_MIN_PREMATURITY = 0.9
#: fields added after pipeline version 2, with the default that reproduces the earlier beats
LATER_FIELDS = {"template": "all"}
BEAT_NORMS = ("none", "zscore", "record")
MISSING_LEAD = ("error", "skip")
#: highest sampling rate :class:`PrepConfig` accepts (Hz; MIT-BIH is recorded at 360)
MAX_FS = 2000
#: longest beat-window side (seconds before or after the R peak) :class:`PrepConfig` accepts
MAX_WINDOW_S = 5.0
#: widest baseline median filter (seconds) :class:`PrepConfig` accepts
MAX_MEDIAN_WINDOW_S = 10.0
#: most beats the local RR average may span
MAX_LOCAL_RR_BEATS = 1000


@dataclass(frozen=True)
class PrepConfig:
    """Every parameter of beat preparation (frozen; :meth:`key` hashes them all).

    ``records`` restricts preparation to these record names (``None``: every non-paced record in
    the folder). ``missing_lead``: what to do with a record that lacks ``lead`` -- ``"error"``
    (default: the inter-patient benchmark needs every record, so a silent drop would change it)
    or ``"skip"`` (the record is left out and listed in the report under ``skipped_records``).

    Every number is checked on construction, a bad one being a one-line :class:`UserError` that
    names the field and the value: finite, ``fs`` at most :data:`MAX_FS` Hz, window sides at
    most :data:`MAX_WINDOW_S` s, median filters positive and at most :data:`MAX_MEDIAN_WINDOW_S` s,
    filter frequencies below Nyquist.

    >>> PrepConfig(before_s=0.1, after_s=0.2).window_samples()     # at the default 180 Hz
    (18, 36)
    >>> PrepConfig(filter="fancy")
    Traceback (most recent call last):
    ...
    nascore.errors.UserError: filter: unknown value 'fancy' (choose from: median, bandpass, neurokit, none)
    >>> PrepConfig(before_s=float("nan"))
    Traceback (most recent call last):
    ...
    nascore.errors.UserError: window: before_s=nan: expected a number in [0, 5]
    """

    lead: str = "MLII"
    fs: int = 180
    before_s: float = 0.25
    after_s: float = 0.45
    filter: str = "median"
    median_windows_s: tuple[float, float] = (0.2, 0.6)
    lowpass_hz: float | None = 35.0
    bandpass_hz: tuple[float, float] = (0.5, 40.0)
    filter_order: int = 3
    pad: str = "edge"
    beat_norm: str = "none"
    local_rr_beats: int = 10
    rr_norm: str = "record"
    rr_set: str = "ratios"
    residual: str = "record"
    template: str = "all"
    missing_lead: str = "error"
    records: tuple[str, ...] | None = None
    version: str = field(default=PIPELINE_VERSION, init=False)

    def __post_init__(self):
        for name, allowed in (("filter", FILTERS), ("pad", PADS), ("rr_norm", RR_NORMS), ("rr_set", RR_SETS),
                              ("residual", RESIDUALS), ("template", TEMPLATES), ("beat_norm", BEAT_NORMS), ("missing_lead", MISSING_LEAD)):
            val = getattr(self, name)
            if val not in allowed:
                raise UserError(f"{name}: unknown value {val!r} (choose from: {', '.join(allowed)})")
        if not isinstance(self.fs, int) or self.fs < 50 or self.fs > MAX_FS:
            raise UserError(f"fs: must be an integer in [50, {MAX_FS}] Hz, got {self.fs!r}")
        # finite and bounded before any arithmetic: nan or 1e308 seconds would otherwise reach
        # round() / int() below as a ValueError or OverflowError traceback
        number(0, MAX_WINDOW_S).check("window: before_s", self.before_s)
        number(0, MAX_WINDOW_S, lo_open=True).check("window: after_s", self.after_s)
        if sum(self.window_samples()) < 2:
            raise UserError(f"window: {self.before_s},{self.after_s} s is shorter than 2 samples at {self.fs} Hz")
        for w in _pair("median_windows_s", self.median_windows_s, "two positive widths"):
            number(0, MAX_MEDIAN_WINDOW_S, lo_open=True).check("median_windows_s", w)
        for f in _pair("bandpass_hz", self.bandpass_hz, "two frequencies (low, high)"):
            number().check("bandpass_hz", f)
        if self.lowpass_hz is not None:
            number().check("lowpass_hz", self.lowpass_hz)
        integer().check("filter_order", self.filter_order)
        integer(1, MAX_LOCAL_RR_BEATS).check("local_rr_beats", self.local_rr_beats)
        lo, hi = self.bandpass_hz
        if not 0 < lo < hi < self.fs / 2:
            raise UserError(f"bandpass_hz: need 0 < low < high < {self.fs / 2} Hz, got {lo},{hi}")
        if self.lowpass_hz is not None and not 0 < self.lowpass_hz < self.fs / 2:
            raise UserError(f"lowpass_hz: need 0 < f < {self.fs / 2} Hz, got {self.lowpass_hz}")
        if not 1 <= self.filter_order <= 8:
            raise UserError(f"filter_order: need 1..8, got {self.filter_order}")
        if self.local_rr_beats < 1:
            raise UserError(f"local_rr_beats: need >= 1, got {self.local_rr_beats}")
        if self.records is not None:
            object.__setattr__(self, "records", tuple(str(r) for r in self.records))
            if not self.records:
                raise UserError("records: empty list (leave it unset to use every non-paced record)")
        object.__setattr__(self, "median_windows_s", tuple(float(v) for v in self.median_windows_s))
        object.__setattr__(self, "bandpass_hz", tuple(float(v) for v in self.bandpass_hz))

    def window_samples(self) -> tuple[int, int]:
        """(samples before the R peak, samples from the R peak on); window length is their sum."""
        return int(round(self.before_s * self.fs)), int(round(self.after_s * self.fs))

    def input_shape(self) -> tuple[int, int, int]:
        """``(in_channels, window, n_rr)`` of the beats this configuration prepares.

        >>> PrepConfig().input_shape(), PrepConfig(residual="none", rr_set="basic", fs=360).input_shape()
        ((2, 126, 5), (1, 252, 4))
        """
        return (2 if self.residual == "record" else 1, sum(self.window_samples()), 5 if self.rr_set == "ratios" else 4)

    def to_dict(self) -> dict:
        """Every field, JSON-ready; a field added after pipeline version 2 (:data:`LATER_FIELDS`)
        only when it differs from its default, so the configs and cache keys of earlier runs and
        checkpoints stay valid."""
        d = dataclasses.asdict(self)
        for k, default in LATER_FIELDS.items():
            if d.get(k) == default:
                del d[k]
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = list(v)
        return d

    def key(self) -> str:
        """SHA-256 (hex) of every parameter plus :data:`PIPELINE_VERSION`.

        >>> PrepConfig().key() == PrepConfig().key() != PrepConfig(lead="V1").key()
        True
        """
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()


def _pair(name: str, value, what: str) -> tuple:
    """``value`` as a 2-tuple, else a one-line UserError ``"<name>: need <what>, got <value>"``."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise UserError(f"{name}: need {what}, got {value!r}")
    return tuple(value)


def clean_signal(sig: np.ndarray, fs: int, cfg: PrepConfig) -> np.ndarray:
    """Filter one lead (1-D, mV) as ``cfg.filter`` says (see the module docstring); returns float64 [n]."""
    from scipy import ndimage, signal as sps  # imported here: a warm cache load needs no scipy

    sig = np.asarray(sig, dtype=np.float64)
    if cfg.filter == "none":
        return sig.copy()
    if cfg.filter == "median":
        base = sig
        for w in cfg.median_windows_s:
            size = int(round(w * fs)) | 1  # odd width, centred
            base = ndimage.median_filter(base, size=size, mode="nearest")
        out = sig - base
        if cfg.lowpass_hz is not None:
            sos = sps.butter(cfg.filter_order, cfg.lowpass_hz, btype="low", fs=fs, output="sos")
            out = _filtfilt(sos, out)
        return out
    if cfg.filter == "bandpass":
        sos = sps.butter(cfg.filter_order, cfg.bandpass_hz, btype="band", fs=fs, output="sos")
        return _filtfilt(sos, sig)
    import neurokit2 as nk  # slow import (~2 s): only when asked for

    return np.asarray(nk.ecg_clean(sig, sampling_rate=fs, method="neurokit"), dtype=np.float64)


def _filtfilt(sos: np.ndarray, x: np.ndarray) -> np.ndarray:
    from scipy import signal as sps

    # sosfiltfilt needs a signal longer than its default edge padding; shorten the padding for short inputs
    padlen = min(3 * (2 * len(sos) + 1), max(len(x) - 1, 0))
    return sps.sosfiltfilt(sos, x, padlen=padlen)


def beat_windows(sig: np.ndarray, peaks: np.ndarray, before: int, after: int, pad: str = "edge") -> np.ndarray:
    """Cut ``[r - before, r + after)`` around every peak ``r``; returns float32 ``[len(peaks), before + after]``.

    Windows that cross the record's ends are padded (``"edge"``: repeat the end sample;
    ``"zero"``: zeros) so no beat is dropped. ``peaks`` must lie inside ``[0, len(sig))``.
    """
    sig = np.asarray(sig)
    peaks = np.asarray(peaks, dtype=np.int64)
    if peaks.size and (peaks.min() < 0 or peaks.max() >= len(sig)):
        raise UserError(f"R-peak sample outside the signal (0..{len(sig) - 1}): {peaks.min()}..{peaks.max()}")
    mode = "edge" if pad == "edge" else "constant"
    padded = np.pad(sig, (before, after), mode=mode)
    idx = peaks[:, None] + np.arange(before + after)[None, :]  # shifted by `before` through the padding
    return padded[idx].astype(np.float32)


def normalise_beats(x: np.ndarray, how: str) -> np.ndarray:
    """``"none"``: unchanged; ``"zscore"``: per window ``(x - mean) / max(std, 1e-6)``; ``"record"``:
    all windows (of one record) over the peak-to-peak amplitude of their median window (>= 0.05).

    >>> normalise_beats(np.array([[0., 2.], [0., 4.], [0., 6.]]), "record").tolist()
    [[0.0, 0.5], [0.0, 1.0], [0.0, 1.5]]
    """
    if how == "none":
        return x
    if how == "record":
        ptp = float(np.ptp(np.median(x, axis=0))) if len(x) else 1.0
        return (x / max(ptp, 0.05)).astype(np.float32)
    mu = x.mean(axis=1, keepdims=True)
    sd = np.maximum(x.std(axis=1, keepdims=True), 1e-6)
    return ((x - mu) / sd).astype(np.float32)


def rr_features(peaks: np.ndarray, fs: float, local_rr_beats: int = 10, rr_norm: str = "record",
                rr_set: str = "basic") -> np.ndarray:
    """RR features for sorted R-peak samples: ``[pre, post, local, avg]`` (float32 ``[n, 4]``,
    ``rr_set="basic"``) or ``[pre, post, local, pre/local, post/pre]`` (``[n, 5]``, ``"ratios"``).

    See the module docstring for the definitions and the per-record normalisation. Needs at
    least two beats (one RR interval).

    >>> rr_features(np.array([0, 360, 540, 1080]), 360, rr_set="ratios").round(2)[2]
    array([0.5, 1.5, 1. , 0.5, 3. ], dtype=float32)
    """
    peaks = np.asarray(peaks, dtype=np.int64)
    n = len(peaks)
    if n < 2:
        raise UserError(f"RR features need at least 2 beats in a record, got {n}")
    rr = np.diff(peaks) / float(fs)  # n-1 intervals
    pre = np.concatenate([rr[:1], rr])
    post = np.concatenate([rr, rr[-1:]])
    half_lo = (local_rr_beats - 1) // 2
    half_hi = local_rr_beats - 1 - half_lo
    csum = np.concatenate([[0.0], np.cumsum(pre)])
    i = np.arange(n)
    lo = np.maximum(i - half_lo, 0)
    hi = np.minimum(i + half_hi, n - 1) + 1
    local = (csum[hi] - csum[lo]) / (hi - lo)
    avg = float(rr.mean())
    out = np.stack([pre, post, local, np.full(n, avg)], axis=1)
    if rr_norm == "record":
        out[:, :3] /= avg
    if rr_set == "ratios":
        out = np.concatenate([out[:, :3], (pre / local)[:, None], (post / pre)[:, None]], axis=1)
    elif rr_set != "basic":
        raise UserError(f"rr_set: unknown value {rr_set!r} (choose from: {', '.join(RR_SETS)})")
    return out.astype(np.float32)


def add_residual(x: np.ndarray, how: str = "record", keep: np.ndarray | None = None) -> np.ndarray:
    """``"record"``: ``[n, L]`` windows of one record -> ``[n, 2, L]`` = (window, window minus the
    record's median window); ``"only"``: ``[n, L]`` = the window minus the record's median window
    (the raw window dropped); ``"none"``: unchanged. ``keep`` (boolean ``[n]``): the median is
    taken over these windows only (all of them when fewer than ten are kept).

    >>> x = np.array([[0., 1.], [2., 3.], [4., 9.]])
    >>> add_residual(x)[:, 1].tolist(), add_residual(x, "only").tolist()
    ([[-2.0, -2.0], [0.0, 0.0], [2.0, 6.0]], [[-2.0, -2.0], [0.0, 0.0], [2.0, 6.0]])
    """
    if how == "none":
        return x
    if how not in RESIDUALS:
        raise UserError(f"residual: unknown value {how!r} (choose from: {', '.join(RESIDUALS)})")
    base = x if keep is None or int(np.sum(keep)) < 10 else x[np.asarray(keep, bool)]
    template = np.median(base, axis=0, keepdims=True)
    if how == "only":
        return (x - template).astype(np.float32)
    return np.stack([x, x - template], axis=1).astype(np.float32)


def regular_beats(peaks: np.ndarray, fs: float, local_rr_beats: int = 10) -> np.ndarray:
    """Boolean ``[n]``: the beats that are not premature, ``pre / local >= 0.9``
    (:data:`REGULAR_MIN_PREMATURITY`; the RR definitions of :func:`rr_features`).

    >>> regular_beats(np.array([0, 360, 720, 900, 1260, 1620]), 360).tolist()
    [True, True, True, False, True, True]
    """
    ratio = rr_features(peaks, fs, local_rr_beats, "none", "ratios")[:, 3]
    return ratio >= REGULAR_MIN_PREMATURITY


def beat_inputs(sig: np.ndarray, peaks: np.ndarray, fs: int, cfg: "PrepConfig") -> tuple[np.ndarray, np.ndarray]:
    """What a classifier sees for the beats of one filtered record: ``(x, rr)``.

    ``x``: float32 ``[n, L]`` windows (``residual="none"``), residuals (``"only"``) or
    ``[n, 2, L]`` (window, residual);
    ``rr``: float32 ``[n, 4]`` or ``[n, 5]`` (``cfg.rr_set``). ``sig`` must be at ``fs == cfg.fs``.
    """
    before, after = cfg.window_samples()
    x = normalise_beats(beat_windows(sig, peaks, before, after, cfg.pad), cfg.beat_norm)
    keep = regular_beats(peaks, fs, cfg.local_rr_beats) if cfg.template == "regular" else None
    x = add_residual(x, cfg.residual, keep)
    return x, rr_features(peaks, fs, cfg.local_rr_beats, cfg.rr_norm, cfg.rr_set)
