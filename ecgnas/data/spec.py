"""What data a model is trained and evaluated on: :class:`DataSpec` (database, preparation, split).

``database`` names one registered database (:mod:`ecgnas.datasets`) or several joined by ``+``:
``"mitdb+svdb"`` trains on MIT-BIH's training records **and every record of SVDB** (extra
training data: validation and test stay MIT-BIH's, and every report says so, as the literature
must). ``prep`` is the :class:`~ecgnas.data.PrepConfig` (lead, rate, window, filters): lead
selection (through each database's lead map) and resampling to ``prep.fs`` happen in
preparation, so a model trained at 180 Hz on MLII can be evaluated on any database. ``split`` is
``"inter"`` (patients never on both sides: the database's standard split, e.g. MIT-BIH DS1/DS2,
else :func:`patient_split` over its patient groups) or ``"intra"`` (optimistic).

``data`` says *where* the files are: ``None`` (``$NASCORE_DATA/<name>``, then the user cache), one
folder (the main database's) or ``"name=DIR,name=DIR"`` / a ``{name: DIR}`` mapping
(:func:`data_dirs`). It travels inside the spec, so loading, training, evaluation and search take
one argument, but it is **not part of the identity**: two copies of MIT-BIH in different folders
hold the same beats (the beat cache is keyed by content and PrepConfig, and a folder's checksums
are checked), so ``data`` is left out of equality, hashing and :meth:`DataSpec.to_dict` -- a run
folder moved to another machine, or the same run pointed at another copy, is the same run.

The library below the entry points takes only a spec; :meth:`DataSpec.of` is the one place where
the separate keywords ``dataset`` / ``prep`` / ``split`` / ``data`` of the entry points
(:func:`ecgnas.run.train_run`, :func:`ecgnas.search.ecg_search`) become one.

Run folders and checkpoints record ``dataset`` (the database string); those written before it
existed hold none and are read as MIT-BIH (:meth:`DataSpec.from_config`).

>>> from ecgnas.data import PrepConfig
>>> s = DataSpec("mitdb+svdb", PrepConfig(), "inter")
>>> s.main.name, [d.name for d in s.extra], s.extra_training_note()
('mitdb', ['svdb'], 'extra training data: svdb (every record, training only)')
>>> DataSpec.from_config({"prep": {}, "split": "inter"}).database
'mitdb'
>>> DataSpec(data="/a") == DataSpec(data="/b"), DataSpec(data="/a").to_dict() == DataSpec().to_dict()
(True, True)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

import numpy as np

from ecgnas.datasets import DEFAULT, Database, parse_dataset
from nascore.errors import UserError

from .preprocess import PrepConfig

SPLITS = ("inter", "intra")
#: separates an extra database's name from its record names in joined beats (``svdb:800``)
RECORD_SEP = ":"


@dataclass(frozen=True)
class DataSpec:
    """(database, preparation, split); see the module docstring."""

    database: str = DEFAULT
    prep: PrepConfig = field(default_factory=PrepConfig)
    split: str = "inter"
    #: where the files are (not part of the identity; see the module docstring)
    data: str | Mapping[str, str | None] | None = field(default=None, compare=False)

    def __post_init__(self):
        dbs = parse_dataset(self.database)
        object.__setattr__(self, "database", "+".join(d.name for d in dbs))
        if not isinstance(self.prep, PrepConfig):
            raise UserError(f"prep: expected a PrepConfig, got {type(self.prep).__name__}")
        if self.split not in SPLITS:
            raise UserError(f"split: {self.split!r} is not one of {', '.join(SPLITS)}")
        if self.data is not None:  # a plain str / dict: pickles to worker processes, prints in config.json
            data = ({str(k): (None if v is None else os.fspath(v)) for k, v in self.data.items()}
                    if isinstance(self.data, Mapping) else os.fspath(self.data))
            data_dirs(data, dbs)  # a folder for a database not in the spec is refused here, once
            object.__setattr__(self, "data", data)

    @classmethod
    def of(cls, spec: DataSpec | None = None, *, dataset: str | None = None, prep: PrepConfig | None = None,
           split: str | None = None, data=None) -> DataSpec:
        """The spec of an entry point called either with ``spec`` or with the separate keywords
        (``None``: the default -- MIT-BIH, ``PrepConfig()``, ``"inter"``, the usual folders).
        Giving ``spec`` and one of ``dataset`` / ``prep`` / ``split`` is refused (which one would
        win?); ``data`` with a spec that has none fills it in."""
        if spec is None:
            return cls(dataset or DEFAULT, PrepConfig() if prep is None else prep, split or "inter", data)
        if not isinstance(spec, DataSpec):
            raise UserError(f"spec: expected a DataSpec, got {type(spec).__name__}")
        given = [k for k, v in (("dataset", dataset), ("prep", prep), ("split", split)) if v is not None]
        if given:
            raise UserError(f"spec: give a DataSpec or {', '.join(given)}, not both (the spec holds them)")
        if data is None:
            return spec
        if spec.data is not None and spec.data != (os.fspath(data) if not isinstance(data, Mapping) else data):
            raise UserError(f"data: the spec's folder is {spec.data!r}, the data argument {data!r}; give one")
        return replace(spec, data=data)

    def with_prep(self, prep: PrepConfig) -> DataSpec:
        """The same database, split and folders with another preparation (a candidate's window)."""
        return self if prep == self.prep else replace(self, prep=prep)

    @property
    def dirs(self) -> dict[str, str | None]:
        """The folder of each database (:func:`data_dirs`; ``None``: the usual places)."""
        return data_dirs(self.data, self.databases)

    @property
    def databases(self) -> tuple[Database, ...]:
        return parse_dataset(self.database)

    @property
    def main(self) -> Database:
        """The database whose validation and test patients are used."""
        return self.databases[0]

    @property
    def extra(self) -> tuple[Database, ...]:
        """Databases used as extra training data only."""
        return self.databases[1:]

    def extra_training_note(self) -> str | None:
        """The label every report carries when extra training data were used (else None)."""
        if not self.extra:
            return None
        return f"extra training data: {', '.join(d.name for d in self.extra)} (every record, training only)"

    def to_dict(self) -> dict:
        return {"database": self.database, "prep": self.prep.to_dict(), "split": self.split}

    @classmethod
    def from_config(cls, config: Mapping[str, Any], prep: PrepConfig | None = None, data=None) -> DataSpec:
        """From a config.json / checkpoint dict (``dataset`` absent: MIT-BIH, as every earlier run);
        ``data``: where the files are now (not recorded in the identity)."""
        if prep is None:
            from dataclasses import fields

            known = {f.name for f in fields(PrepConfig) if f.init}
            prep = PrepConfig(**{k: (tuple(v) if isinstance(v, list) else v)
                                 for k, v in dict(config.get("prep") or {}).items() if k in known})
        return cls(config.get("dataset") or DEFAULT, prep, config.get("split") or "inter", data)


def extra_rows(beats) -> np.ndarray:
    """Sorted indices of the rows of joined ``beats`` that come from an extra training database
    (record names ``<database>:<record>``, :data:`RECORD_SEP`; :func:`ecgnas.evaluate.load_data`
    appends them to ``train`` only). Empty for one database. Cross-validation keeps them out of
    every fold and in every fold's training set (:func:`ecgnas.ensemble.cross_validate`).

    >>> from ecgnas.data.beats import Beats
    >>> b = Beats(x=np.zeros((3, 4), np.float32), rr=np.zeros((3, 4), np.float32), y=np.zeros(3, int),
    ...           record=np.array(["101", "svdb:800", "106"]), sample=np.arange(3), fs=360)
    >>> extra_rows(b).tolist()
    [1]
    """
    rec = np.asarray(beats.record).astype(str)
    return np.flatnonzero(np.char.find(rec, RECORD_SEP) >= 0).astype(np.int64)


def data_dirs(data, dbs: tuple[Database, ...]) -> dict[str, str | None]:
    """``--data`` for each database: ``None`` (the usual places), one folder (the first database's),
    or ``"name=DIR,name=DIR"`` / a ``{name: DIR}`` mapping."""
    out: dict[str, str | None] = {d.name: None for d in dbs}
    if data is None:
        return out
    if isinstance(data, Mapping):
        items = {str(k): (None if v is None else str(v)) for k, v in data.items()}
    else:
        text = os.fspath(data)
        if "=" not in text:
            out[dbs[0].name] = text
            return out
        items = {}
        for part in text.split(","):
            name, sep, path = part.partition("=")
            if not sep or not name.strip() or not path.strip():
                raise UserError(f"--data: cannot read {part!r} (use DIR, or NAME=DIR,NAME=DIR)")
            items[name.strip()] = path.strip()
    unknown = [k for k in items if k not in out]
    if unknown:
        raise UserError(f"--data: {', '.join(unknown)} is not one of the databases used ({', '.join(out)})")
    out.update(items)
    return out


def patient_split(beats, database: Database, fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
                  seed: int = 0) -> dict[str, np.ndarray]:
    """Train / val / test beat indices with **whole patients** on one side each: the patients of
    ``database`` (:meth:`Database.patient_of`) present in ``beats``, in a seeded random order, dealt
    into three groups holding about ``fractions`` of the patients (each group at least one).

    A database whose record -> patient map is unknown (``patients is None``) is refused: two
    records of one patient could land on both sides.
    """
    if database.patients is None:
        raise UserError(f"database {database.name}: no record -> patient map, so a patient-grouped split cannot "
                        "be made (records of one patient could be on both sides); use it for cross-database "
                        "evaluation, or give its description a patients map")
    rec = np.asarray(beats.record).astype(str)
    pat = np.array([database.patient_of(r) for r in rec])
    uniq = sorted(set(pat.tolist()))
    if len(uniq) < 3:
        raise UserError(f"database {database.name}: {len(uniq)} patients; a train / val / test split needs at least 3")
    order = [uniq[i] for i in np.random.default_rng(seed).permutation(len(uniq))]
    n_val = max(1, int(round(fractions[1] * len(uniq))))
    n_test = max(1, int(round(fractions[2] * len(uniq))))
    n_train = len(uniq) - n_val - n_test
    if n_train < 1:
        n_train, n_val = 1, len(uniq) - 1 - n_test
    groups = {"train": order[:n_train], "val": order[n_train:n_train + n_val], "test": order[n_train + n_val:]}
    return {k: np.flatnonzero(np.isin(pat, v)) for k, v in groups.items()}
