"""MIT-BIH Supraventricular Arrhythmia Database (``svdb``); card ``datasets/svdb.md``.

78 records of 30 minutes, 2 leads at 128 Hz, rich in supraventricular ectopic beats: the
literature uses it as extra S training data or as a cross-database test. Its annotations mark
supraventricular ectopic beats ``S`` where MIT-BIH uses ``A``; both map to the AAMI class S.
The signal names are not pinned here, so a record without the model's lead uses its first
signal (said in the report's notes).
"""

from __future__ import annotations

from ecgnas.aami import SYMBOL_TO_CLASS

from .base import Database

DATABASE = Database(
    name="svdb",
    title="MIT-BIH Supraventricular Arrhythmia Database",
    fs=128,
    lead_fallback="first",
    symbols=SYMBOL_TO_CLASS,
    paper="Greenwald SD. Improved detection and classification of arrhythmias in noise-stressed ECGs using "
          "a multilayer perceptron. MIT thesis (1990); Goldberger AL et al. Circulation 101(23) (2000)",
    card="datasets/svdb.md",
)
