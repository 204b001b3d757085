"""The prepared-beats container every model and split function works with.

>>> import numpy as np
>>> b = Beats(x=np.zeros((3, 252), np.float32), rr=np.ones((3, 4), np.float32), y=np.array([0, 2, 0]),
...           record=np.array(["100", "100", "101"]), sample=np.array([10, 400, 90]), fs=360)
>>> b.subset(np.array([1, 2])).record.tolist(), b.class_counts()
(['100', '101'], {'N': 2, 'S': 0, 'V': 1, 'F': 0, 'Q': 0})
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ecgnas.aami import CLASSES


@dataclass
class Beats:
    """Single-lead beat windows with labels.

    * ``x``: float32 ``[n, C, L]`` (window and residual channels, the default) or ``[n, L]`` (one
      channel) beat windows at ``fs`` (``L = 126`` by default, R peak at index 45);
    * ``rr``: float32 ``[n, 5]`` (default ``rr_set="ratios"``) or ``[n, 4]`` RR features (see
      :mod:`ecgnas.data.preprocess`);
    * ``y``: int64 ``[n]`` class index into :data:`ecgnas.aami.CLASSES` (N, S, V, F, Q);
    * ``record``: str ``[n]`` record name (``"101"``); ``sample``: int64 ``[n]`` the R-peak
      annotation's sample index as stored in the record's files (at the record's own rate, 360 Hz
      for MIT-BIH, whatever ``fs`` the beats were prepared at), so it matches the ``.atr`` file;
    * ``fs``: sampling rate in Hz; ``report``: preparation report (skipped symbols, per-record
      counts, notes such as resampling, cache key/hit); ``config``: the :class:`PrepConfig` used.
    """

    x: np.ndarray
    rr: np.ndarray
    y: np.ndarray
    record: np.ndarray
    sample: np.ndarray
    fs: int
    report: dict = field(default_factory=dict)
    config: object = None

    def __post_init__(self):
        n = len(self.y)
        for name in ("x", "rr", "record", "sample"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"Beats.{name} has {len(getattr(self, name))} rows, y has {n}")
        self.y = np.asarray(self.y, dtype=np.int64)
        self.sample = np.asarray(self.sample, dtype=np.int64)
        self.record = np.asarray(self.record, dtype=str)

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, idx) -> "Beats":
        """The beats at ``idx`` (integer indices or a boolean mask); shares ``report`` and ``config``."""
        idx = np.asarray(idx)
        return Beats(x=self.x[idx], rr=self.rr[idx], y=self.y[idx], record=self.record[idx],
                     sample=self.sample[idx], fs=self.fs, report=self.report, config=self.config)

    def class_counts(self, idx=None) -> dict[str, int]:
        """Beats per AAMI class, in :data:`CLASSES` order (over ``idx`` if given)."""
        y = self.y if idx is None else self.y[np.asarray(idx)]
        counts = np.bincount(y, minlength=len(CLASSES))
        return {c: int(counts[i]) for i, c in enumerate(CLASSES)}

    @property
    def in_channels(self) -> int:
        """Input channels a model needs: 1 for ``x [n, L]``, ``C`` for ``x [n, C, L]``."""
        return 1 if np.ndim(self.x) == 2 else int(np.shape(self.x)[1])

    @property
    def window(self) -> int:
        """Samples per beat window ``L``."""
        return int(np.shape(self.x)[-1])

    @property
    def n_rr(self) -> int:
        """Number of RR features per beat."""
        return int(np.shape(self.rr)[1])

    def records(self) -> list[str]:
        """Distinct record names, sorted."""
        return sorted(set(self.record.tolist()))
