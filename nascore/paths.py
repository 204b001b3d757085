"""Where datasets are found.

A dataset named ``name`` (the folder name used under ``../shared/data``: ``nasbench201``,
``mitdb``, ``cifar10-jpeg`` ...) is looked for, in order:

1. the folder given explicitly (``--data DIR``: the dataset's own folder);
2. ``$NASCORE_DATA/<name>`` (``NASCORE_DATA`` names the root that holds them all);
3. the user cache folder ``$XDG_CACHE_HOME/nascore/<name>`` (default ``~/.cache/nascore/<name>``).

>>> str(candidate_dirs("mitdb", "/my/mitdb")[0])
'/my/mitdb'
"""

from __future__ import annotations

import os
from pathlib import Path

from nascore.errors import DataMissingError


def user_cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "nascore"


def candidate_dirs(name: str, data: str | os.PathLike | None = None) -> list[Path]:
    if data is not None:
        return [Path(data)]
    out = []
    root = os.environ.get("NASCORE_DATA")
    if root:
        out.append(Path(root) / name)
    out.append(user_cache_root() / name)
    return out


def find_dataset(name: str, data: str | os.PathLike | None = None, *, must_contain: str | None = None,
                 how_to_get: str = "") -> Path:
    """Return the first existing candidate folder (holding ``must_contain`` if given).

    Raises :class:`DataMissingError` with a one-line message listing where it looked and
    ``how_to_get``.
    """
    cands = candidate_dirs(name, data)
    for d in cands:
        if d.is_dir() and (must_contain is None or (d / must_contain).exists()):
            return d
    looked = ", ".join(str(d / must_contain) if must_contain else str(d) for d in cands)
    hint = f"; {how_to_get}" if how_to_get else ""
    raise DataMissingError(f"{name} data not found (looked in {looked}){hint}")
