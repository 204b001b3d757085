"""Train / validation / test splits of prepared beats.

**Inter-patient** (:func:`inter_patient_split`, the honest protocol): de Chazal, O'Dwyer & Reilly,
IEEE TBME 51(7), 2004 -- train on DS1, test on DS2 (:data:`ecgnas.aami.DS1`, :data:`~ecgnas.aami.DS2`),
no patient in both. Model selection (NAS, early stopping) must never see DS2, so validation is a
record-level hold-out **inside DS1**: ``train`` = DS1 minus the hold-out records, ``val`` = the
hold-out records, ``test`` = DS2 (to be used only for the final report).

:data:`DEFAULT_HOLDOUT` = 114, 124, 201, 205, 223 was chosen from the MIT-BIH reference counts
(all DS1 subsets of 3-7 records searched) to hold about a fifth of DS1's beats while keeping a
similar share of each ectopic class: 10,722 of 51,021 DS1 beats (21.0 %) -- N 9,607 (20.9 %),
S 247 (26.2 %), V 832 (22.0 %), F 36, Q 0. Record 208, which holds 373 of DS1's 415 fusion (F)
beats, is deliberately kept in training: moving it to validation would leave training with
42 F beats. Pass ``holdout=(...)`` (DS1 record names) to choose another set.

**Record folds inside DS1** (:func:`record_folds`): ``k`` disjoint groups of DS1 records for
grouped cross-validation (every DS1 record is validated once, by a model that never saw it): it
scores all 944 S and 415 F beats of DS1 instead of the hold-out's 247 and 36. Records are dealt greedily, most S beats first, each to the fold with the
smallest load so far, a record's load being its share of DS1's S beats plus its share of the V
beats plus its share of all beats; the assignment is deterministic.

**Intra-patient** (:func:`intra_patient_split`): a random beat-level split, stratified by class,
over all beats given (normally the 44 non-paced records). Beats of one patient land in train and
test alike, so scores are **optimistic** and not comparable with inter-patient results; the
function warns every time it is called.

>>> import numpy as np
>>> from ecgnas.data.beats import Beats
>>> recs = np.array(["101"] * 4 + ["114"] * 4 + ["100"] * 4)
>>> b = Beats(x=np.zeros((12, 4), np.float32), rr=np.zeros((12, 4), np.float32), y=np.zeros(12, np.int64),
...           record=recs, sample=np.arange(12), fs=360)
>>> {k: v.tolist() for k, v in inter_patient_split(b, holdout=("114",)).items()}
{'train': [0, 1, 2, 3], 'val': [4, 5, 6, 7], 'test': [8, 9, 10, 11]}
"""

from __future__ import annotations

import warnings

import numpy as np

from ecgnas.aami import DS1, DS2
from nascore.errors import UserError

from .beats import Beats

DEFAULT_HOLDOUT: tuple[str, ...] = ("114", "124", "201", "205", "223")


class IntraPatientWarning(UserWarning):
    """Raised (as a warning) whenever an intra-patient split is made: its scores are optimistic."""


def _check_nonempty(split: dict[str, np.ndarray], what: str) -> dict[str, np.ndarray]:
    for name, idx in split.items():
        if len(idx) == 0:
            raise UserError(f"{what}: the {name!r} split is empty (check the records prepared and the hold-out)")
    return split


def inter_patient_split(beats: Beats, holdout: tuple[str, ...] | list[str] | None = None,
                        database=None) -> dict[str, np.ndarray]:
    """``{"train": DS1 minus hold-out, "val": DS1 hold-out, "test": DS2}`` as int64 index arrays.

    ``holdout``: DS1 record names for validation (default :data:`DEFAULT_HOLDOUT`). A name that
    is not a DS1 record, or an empty split, is a :class:`UserError`. ``database`` (default
    MIT-BIH): another description's standard split (``train_split`` / ``test_split`` / ``holdout``)
    is used the same way.
    """
    train_recs, test_recs, default_hold, tname = DS1, DS2, DEFAULT_HOLDOUT, "DS1"
    if database is not None:
        from ecgnas.datasets import get_database

        db = get_database(database)
        if db.name != "mitdb":
            if db.train_split is None or db.test_split is None:
                raise UserError(f"database {db.name}: no standard train / test split (use the patient-grouped split)")
            train_recs, test_recs = tuple(db.splits[db.train_split]), tuple(db.splits[db.test_split])
            default_hold, tname = tuple(db.holdout or ()), db.train_split
    hold = tuple(str(r) for r in (default_hold if holdout is None else holdout))
    not_ds1 = [r for r in hold if r not in train_recs]
    if not_ds1:
        raise UserError(f"holdout: {', '.join(not_ds1)} not in {tname} (the validation records must come from "
                        f"{tname}; {tname} = {', '.join(train_recs)})")
    rec = beats.record
    in_hold = np.isin(rec, hold)
    in_ds1 = np.isin(rec, train_recs)
    split = {"train": np.flatnonzero(in_ds1 & ~in_hold), "val": np.flatnonzero(in_hold),
             "test": np.flatnonzero(np.isin(rec, test_recs))}
    return _check_nonempty(split, "inter-patient split")


def record_folds(beats: Beats, k: int = 4, records: tuple[str, ...] | list[str] | None = None) -> list[np.ndarray]:
    """``k`` disjoint beat-index arrays, one per group of whole records of ``records`` (default DS1)
    present in ``beats``, balanced by S and V beats and size as the module docstring says.

    >>> import numpy as np
    >>> from ecgnas.data.beats import Beats
    >>> y = np.array([1, 1, 1, 0, 1, 0, 2, 0])
    >>> recs = np.array(["101", "101", "101", "106", "106", "108", "108", "109"])
    >>> b = Beats(x=np.zeros((8, 4), np.float32), rr=np.zeros((8, 4), np.float32), y=y, record=recs,
    ...           sample=np.arange(8), fs=360)
    >>> [f.tolist() for f in record_folds(b, 2)]
    [[0, 1, 2, 7], [3, 4, 5, 6]]
    """
    recs = [str(r) for r in (DS1 if records is None else records)]
    present = [r for r in recs if r in set(beats.record.tolist())]
    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise UserError(f"folds: need an integer >= 2, got {k!r}")
    if len(present) < k:
        raise UserError(f"folds: {k} folds need at least {k} records, {len(present)} of them are in the beats")
    y = beats.y
    counts = {r: (int(((beats.record == r) & (y == 1)).sum()), int(((beats.record == r) & (y == 2)).sum()),
                  int((beats.record == r).sum())) for r in present}
    total = [max(sum(c[j] for c in counts.values()), 1) for j in range(3)]
    load = [0.0] * k
    members: list[list[str]] = [[] for _ in range(k)]
    for r in sorted(present, key=lambda r: (-counts[r][0], -counts[r][1], -counts[r][2], r)):
        f = min(range(k), key=lambda i: (load[i], i))
        members[f].append(r)
        load[f] += sum(c / n for c, n in zip(counts[r], total))
    return [np.flatnonzero(np.isin(beats.record, m)) for m in members]


def intra_patient_split(beats: Beats, seed: int = 0,
                        fractions: tuple[float, float, float] = (0.7, 0.1, 0.2)) -> dict[str, np.ndarray]:
    """Random stratified beat-level split (optimistic; see the module docstring), same keys as above.

    Uses ``sklearn.model_selection.train_test_split`` twice with ``stratify=y`` and ``seed``;
    classes too small to stratify (fewer than 2 beats in a part) fall back to an unstratified split.
    """
    warnings.warn("intra-patient split: beats of the same patients are in train and test, so its scores are "
                  "optimistic and not comparable with the inter-patient (DS1/DS2) protocol", IntraPatientWarning,
                  stacklevel=2)
    from sklearn.model_selection import train_test_split

    fr = np.asarray(fractions, dtype=float)
    if fr.shape != (3,) or (fr <= 0).any() or abs(fr.sum() - 1) > 1e-6:
        raise UserError(f"fractions: need three positive numbers summing to 1 (train, val, test), got {fractions}")
    idx = np.arange(len(beats))
    if len(idx) < 3:
        raise UserError(f"intra-patient split: need at least 3 beats, got {len(idx)}")
    y = beats.y

    def _split(ix, test_size: int, rs):
        strat = y[ix]
        counts = np.bincount(strat)
        ok = (counts[counts > 0] >= 2).all()
        try:
            return train_test_split(ix, test_size=test_size, random_state=rs, stratify=strat if ok else None)
        except ValueError as e:
            raise UserError(f"intra-patient split: {e}") from None

    n_test = max(1, int(round(fr[2] * len(idx))))
    n_val = max(1, int(round(fr[1] * len(idx))))
    rest, test = _split(idx, n_test, seed)
    train, val = _split(rest, n_val, seed + 1)
    split = {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}
    return _check_nonempty(split, "intra-patient split")
