"""What the pipeline needs to know about one beat-annotated WFDB database: :class:`Database`.

One frozen object per database (``ecgnas/datasets/<name>.py``), registered in
:mod:`ecgnas.datasets`. The preparation (:func:`ecgnas.data.load_beats`), the splits and the
cross-database evaluation read everything database-specific from it:

``name``            PhysioNet slug and folder name (``$NASCORE_DATA/<name>``, ``wfdb.dl_database(name, DIR)``)
``title``           human-readable name (reports, cards)
``fs``              sampling rate of the files (Hz; informative -- each header's own rate is what is read)
``must_contain``    a file the default folder must hold (``None``: any ``*.hea``)
``records``         the records to use (``None``: the folder's ``RECORDS`` file, else its ``*.hea``)
``excluded``        ``{record: reason}`` left out of every split (MIT-BIH: the four paced records)
``leads``           the database's signal names, informative (``None`` when they vary per record)
``lead_map``        ``{model lead: (signal names to try, in order)}``: which signal stands in for the
                    lead a model was trained on (INCART: ``MLII -> II``); a lead not in the map is
                    looked up by its own name
``lead_fallback``   ``"error"`` (a record without the lead is an error / a counted skip, as
                    ``PrepConfig.missing_lead`` says) or ``"first"`` (use the record's first signal
                    and say so in the report's notes; for databases whose signal names vary)
``symbols``         annotation symbol -> AAMI class (``N S V F Q``); symbols not in it are skipped and
                    counted. Databases mark the same class with different symbols (SVDB's ``S`` is
                    MIT-BIH's ``A``): beats are merged on the AAMI class, never on the symbol
``annotator``       annotation file extension (``atr``)
``patients``        ``{record: patient}`` when several records come from one patient (``None``: unknown;
                    every record is then its own patient, and a split that needs patient groups refuses)
``splits``          standard splits ``{name: records}`` (MIT-BIH: DS1, DS2 of de Chazal et al. 2004)
``train_split`` / ``test_split``   which of ``splits`` trains and tests in the inter-patient protocol
``holdout``         validation records inside ``train_split`` (``None``: none pinned)
``checksums``       ``{file: sha256}`` when known (``None``: not pinned; a ``SHA256SUMS`` in the folder
                    is still checked)
``published_counts``  ``{split: {class: beats}}`` when published, else ``None``
``paper``           citation(s) for the card and the reports

>>> from ecgnas.datasets import get_database
>>> db = get_database("mitdb")
>>> db.fs, db.signal_candidates("MLII"), db.symbols["A"], len(db.splits["DS1"])
(360, ('MLII',), 'S', 22)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

from ecgnas.aami import CLASSES, SYMBOL_TO_CLASS
from nascore.errors import UserError

LEAD_FALLBACKS = ("error", "first")


def _frozen(d):
    return MappingProxyType(dict(d)) if d is not None else None


@dataclass(frozen=True)
class Database:
    """One beat-annotated WFDB database (see the module docstring for every field)."""

    name: str
    title: str
    fs: float
    must_contain: str | None = None
    records: tuple[str, ...] | None = None
    excluded: Mapping[str, str] = field(default_factory=dict)
    leads: tuple[str, ...] | None = None
    lead_map: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    lead_fallback: str = "error"
    symbols: Mapping[str, str] = field(default_factory=lambda: dict(SYMBOL_TO_CLASS))
    annotator: str = "atr"
    patients: Mapping[str, str] | None = None
    splits: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    train_split: str | None = None
    test_split: str | None = None
    holdout: tuple[str, ...] | None = None
    checksums: Mapping[str, str] | None = None
    published_counts: Mapping[str, Mapping[str, int]] | None = None
    paper: str = ""
    card: str = ""

    def __post_init__(self):
        if not self.name or not all(c.isalnum() or c in "_-" for c in self.name):
            raise UserError(f"database name: {self.name!r} must be letters, digits, '-' or '_'")
        bad = sorted({c for c in self.symbols.values() if c not in CLASSES})
        if bad:
            raise UserError(f"database {self.name}: symbols map to {', '.join(bad)}, not AAMI classes "
                            f"({', '.join(CLASSES)})")
        if self.lead_fallback not in LEAD_FALLBACKS:
            raise UserError(f"database {self.name}: lead_fallback {self.lead_fallback!r} is not one of "
                            f"{', '.join(LEAD_FALLBACKS)}")
        for which in ("train_split", "test_split"):
            s = getattr(self, which)
            if s is not None and s not in self.splits:
                raise UserError(f"database {self.name}: {which} {s!r} is not one of its splits "
                                f"({', '.join(self.splits) or 'none'})")
        if self.holdout is not None and self.train_split is not None:
            out = [r for r in self.holdout if r not in self.splits[self.train_split]]
            if out:
                raise UserError(f"database {self.name}: holdout records {', '.join(out)} not in {self.train_split}")
        for name in ("excluded", "lead_map", "symbols", "patients", "splits", "checksums", "published_counts"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))
        if self.records is not None:
            object.__setattr__(self, "records", tuple(str(r) for r in self.records))

    def __reduce__(self):  # mapping proxies do not pickle: rebuild from plain fields (worker processes)
        from dataclasses import fields

        def plain(v):
            if isinstance(v, Mapping):
                return {k: plain(x) for k, x in v.items()}
            return v

        return (_rebuild, ({f.name: plain(getattr(self, f.name)) for f in fields(self)},))

    # ---------------------------------------------------------------------------------------------
    def signal_candidates(self, lead: str) -> tuple[str, ...]:
        """Signal names that stand in for ``lead`` in this database, tried in order."""
        return tuple(self.lead_map.get(lead, (lead,)))

    def patient_of(self, record: str) -> str:
        """The patient of ``record`` (the record itself when the database has no patient map)."""
        if self.patients is None:
            return str(record)
        return str(self.patients.get(str(record), record))

    def identity(self) -> dict:
        """What changes the prepared beats besides the files and the PrepConfig (part of the
        beat-cache key of every database but MIT-BIH, whose keys predate this and stay as they were)."""
        return {"name": self.name, "symbols": dict(sorted(self.symbols.items())), "annotator": self.annotator,
                "lead_map": {k: list(v) for k, v in sorted(self.lead_map.items())},
                "lead_fallback": self.lead_fallback, "excluded": sorted(self.excluded)}

    def describe(self) -> dict:
        """Every field, JSON-ready (``ecgnas prepare`` writes it into summary.json)."""
        out = {}
        for k in ("name", "title", "fs", "must_contain", "records", "excluded", "leads", "lead_map", "lead_fallback",
                  "symbols", "annotator", "patients", "splits", "train_split", "test_split", "holdout", "checksums",
                  "published_counts", "paper", "card"):
            v = getattr(self, k)
            if isinstance(v, MappingProxyType):
                v = {a: (list(b) if isinstance(b, tuple) else (dict(b) if isinstance(b, Mapping) else b))
                     for a, b in v.items()}
            elif isinstance(v, tuple):
                v = list(v)
            out[k] = v
        return out


def _rebuild(kwargs: dict) -> Database:
    return Database(**kwargs)
