"""European ST-T Database (``edb``); card ``datasets/edb.md``.

90 records of two hours, 2 leads at 250 Hz, from 79 subjects. The lead pair differs from record
to record (e.g. a modified limb lead with a precordial lead), so a record without the model's
lead uses its first signal (said in the report's notes). The record -> subject map is not pinned
here (``patients`` unknown): reports are per record and a split of EDB itself refuses.
"""

from __future__ import annotations

from ecgnas.aami import SYMBOL_TO_CLASS

from .base import Database

DATABASE = Database(
    name="edb",
    title="European ST-T Database",
    fs=250,
    lead_fallback="first",
    symbols=SYMBOL_TO_CLASS,
    patients=None,  # 79 subjects for 90 records; the map is not pinned (see the card)
    paper="Taddei A et al. The European ST-T database. Eur Heart J 13(9):1164-1172 (1992)",
    card="datasets/edb.md",
)
