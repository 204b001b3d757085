"""Beat-annotated WFDB databases: one description per database (:class:`~ecgnas.datasets.base.Database`)
and the registry the pipeline looks them up in.

Adding a database is one new file here, ``ecgnas/datasets/<name>.py`` holding
``DATABASE = Database(...)``, plus its card ``datasets/<name>.md``; nothing else changes: every
module of this package but :mod:`~ecgnas.datasets.base` is a description and is registered when the
package is imported (:func:`_builtin`, the default first, then by name). Code outside the package
(a test, a notebook, a plug-in) can also :func:`register` one at run time.

>>> sorted(names())[:2], [d.name for d in parse_dataset("mitdb+svdb")]
(['edb', 'incartdb'], ['mitdb', 'svdb'])
"""

from __future__ import annotations

import importlib
import pkgutil

from nascore.errors import UserError

from .base import Database

__all__ = ["Database", "DATABASES", "register", "get_database", "names", "parse_dataset", "DEFAULT"]

#: the database used when none is named (every figure of benchmarks/RESULTS.md is on it)
DEFAULT = "mitdb"


def _builtin() -> tuple[Database, ...]:
    """The ``DATABASE`` of every module of this package (its files are the list: no second place
    to edit), the default first; a module without one, or one named unlike its file, is an error."""
    found = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: (m.name != DEFAULT, m.name)):
        if info.name == "base" or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        db = getattr(module, "DATABASE", None)
        if not isinstance(db, Database) or db.name != info.name:
            raise ImportError(f"{module.__name__}: a database description must hold DATABASE = Database("
                              f"name={info.name!r}, ...)")
        found.append(db)
    return tuple(found)


#: built-in descriptions: one file each in this package
BUILTIN = _builtin()

DATABASES: dict[str, Database] = {}


def register(db: Database, replace: bool = False) -> Database:
    """Add ``db`` to the registry (``replace=True`` to overwrite an entry of the same name)."""
    if not isinstance(db, Database):
        raise UserError(f"register: expected a Database, got {type(db).__name__}")
    if db.name in DATABASES and not replace and DATABASES[db.name] is not db:
        raise UserError(f"database {db.name!r} is already registered (pass replace=True to overwrite it)")
    DATABASES[db.name] = db
    return db


def unregister(name: str) -> None:
    """Remove a database registered at run time (tests); built-in ones stay."""
    if name in {d.name for d in BUILTIN}:
        raise UserError(f"database {name!r} is built in and cannot be removed")
    DATABASES.pop(name, None)


def names() -> list[str]:
    return list(DATABASES)


def get_database(name) -> Database:
    """The registered database ``name`` (a :class:`Database` is returned as it is)."""
    if isinstance(name, Database):
        return name
    try:
        return DATABASES[str(name)]
    except KeyError:
        raise UserError(f"--dataset: unknown database {name!r} (known: {', '.join(DATABASES)})") from None


def parse_dataset(text) -> tuple[Database, ...]:
    """``"mitdb+svdb"`` -> the databases in that order (the first is the main one, the others are
    extra training data); a repeated name is an error."""
    if isinstance(text, Database):
        return (text,)
    if isinstance(text, (tuple, list)):
        parts = [p if isinstance(p, Database) else str(p) for p in text]
    else:
        parts = [p.strip() for p in str(text or DEFAULT).split("+")]
    if any(p == "" for p in parts):
        raise UserError(f"--dataset: cannot read {text!r} (use NAME or NAME+NAME, e.g. mitdb+svdb)")
    dbs = tuple(get_database(p) for p in parts)
    seen = [d.name for d in dbs]
    dup = sorted({n for n in seen if seen.count(n) > 1})
    if dup:
        raise UserError(f"--dataset: {', '.join(dup)} named twice in {text!r}")
    return dbs


for _db in BUILTIN:
    register(_db)
