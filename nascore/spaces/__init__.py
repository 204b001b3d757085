"""Search spaces, by name.

>>> from nascore.spaces import get_space, SPACES
>>> {"darts", "nb101", "nb201"} <= set(SPACES)      # other packages may register more (ecgnas: ecg-cell)
True
>>> get_space("nb201").size
15625
"""

from __future__ import annotations

import importlib

from nascore.errors import UserError
from nascore.spaces.base import SearchSpace

#: name -> "module:Class"; imported on demand so one space's dependencies never burden another
SPACES: dict[str, str] = {
    "nb101": "nascore.spaces.nb101:NB101Space",
    "nb201": "nascore.spaces.nb201:NB201Space",
    "darts": "nascore.spaces.darts:DartsSpace",
}


def register_space(name: str, target: str) -> None:
    """Add a space from another package (e.g. ``ecgnas``) as ``"module:Class"``."""
    SPACES[name] = target


def get_space(name: str, **kwargs) -> SearchSpace:
    if name not in SPACES:
        raise UserError(f"unknown space {name!r} (choose from: {', '.join(sorted(SPACES))})")
    mod, cls = SPACES[name].split(":")
    return getattr(importlib.import_module(mod), cls)(**kwargs)


__all__ = ["SearchSpace", "SPACES", "get_space", "register_space"]
