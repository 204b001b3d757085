"""St Petersburg INCART 12-lead Arrhythmia Database (``incartdb``); card ``datasets/incartdb.md``.

75 records of 30 minutes, 12 standard leads at 257 Hz, from 32 Holter records (patients). The
record -> patient map is not pinned here (no copy of the database was at hand to read it from and
check it), so ``patients`` is unknown:
cross-database evaluation reports per record, and a split of INCART itself refuses (records of
one patient could land on both sides). No paced patients, so nothing is excluded.
"""

from __future__ import annotations

from ecgnas.aami import SYMBOL_TO_CLASS

from .base import Database

DATABASE = Database(
    name="incartdb",
    title="St Petersburg INCART 12-lead Arrhythmia Database",
    fs=257,
    leads=("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"),
    lead_map={"MLII": ("II",)},  # modified lead II (Holter) is the model's lead; standard lead II stands in
    symbols=SYMBOL_TO_CLASS,
    patients=None,  # 32 patients; the map is not pinned (see the card)
    paper="Goldberger AL et al. Circulation 101(23):e215-e220 (2000) (PhysioNet)",
    card="datasets/incartdb.md",
)
