"""MIT-BIH Arrhythmia Database (``mitdb``): the reference entry; card ``datasets/mitdb.md``.

Every value comes from :mod:`ecgnas.aami` and :mod:`ecgnas.data.splits` as before, so every
prepared beat, cache key and figure is what it was before databases became descriptions.
"""

from __future__ import annotations

from ecgnas.aami import DS1, DS2, PACED_RECORDS, PUBLISHED_COUNTS, SYMBOL_TO_CLASS

from .base import Database

DATABASE = Database(
    name="mitdb",
    title="MIT-BIH Arrhythmia Database",
    fs=360,
    must_contain="100.hea",
    excluded={r: "paced record (excluded, AAMI EC57)" for r in PACED_RECORDS},
    leads=("MLII", "V1", "V2", "V4", "V5"),
    symbols=SYMBOL_TO_CLASS,
    # 48 records of 47 subjects: 201 and 202 come from the same subject (de Chazal's split, kept as
    # published, puts 201 in DS1 and 202 in DS2); every other record is its own patient
    patients={"201": "201+202", "202": "201+202"},
    splits={"DS1": DS1, "DS2": DS2},
    train_split="DS1",
    test_split="DS2",
    holdout=("114", "124", "201", "205", "223"),
    published_counts=PUBLISHED_COUNTS,
    paper="Moody GB, Mark RG. IEEE Eng Med Biol 20(3):45-50 (2001); splits: de Chazal P et al. IEEE TBME "
          "51(7):1196-1206 (2004)",
    card="datasets/mitdb.md",
)
