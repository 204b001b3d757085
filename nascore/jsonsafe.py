"""Strict JSON text: ``NaN`` and ``±Infinity`` are refused, never written.

Python's :func:`json.dumps` writes ``NaN`` / ``Infinity`` by default, which is not JSON: other
readers (``jq``, JavaScript, most languages) reject the file, and a ``NaN`` score silently wins or
loses every comparison it takes part in. :func:`dumps` serialises with ``allow_nan=False``; when
the object holds a non-finite float it raises :class:`~nascore.errors.NonFiniteError`, one line
that names the file and the place of the value (``best.score``, ``trajectory[3][2]``), so the
caller that produced it can be fixed. A value that may legitimately be undefined is written as
``None`` (``null``) by whoever builds the record, where that is its documented meaning.

>>> dumps({"a": [1.5, None]})
'{"a": [1.5, null]}'
>>> dumps({"best": {"score": float("nan")}}, path="result.json")
Traceback (most recent call last):
...
nascore.errors.NonFiniteError: result.json: refusing to write nan at best.score (JSON has no NaN or Infinity)
"""

from __future__ import annotations

import json
import math
from typing import Any, Callable

from nascore.errors import NonFiniteError


def _place(where: str, key: Any) -> str:
    """``where.key`` for a plain key, ``where['odd key']`` for any other (one line, unambiguous)."""
    if isinstance(key, str) and key and key.isprintable() and not any(c in key for c in ".[]'\" "):
        return f"{where}.{key}" if where else key
    return f"{where}[{key!r}]"


def find_nonfinite(obj: Any, default: Callable[[Any], Any] | None = None, where: str = "") -> tuple[str, float] | None:
    """``(place, value)`` of the first non-finite float in ``obj`` (depth first), else None.

    ``default`` is the same converter given to :func:`json.dumps` (numpy scalars and arrays are
    looked into through it). The top level is ``"(top level)"``.
    """
    if isinstance(obj, float):
        return None if math.isfinite(obj) else (where or "(top level)", obj)
    if isinstance(obj, (str, int, bool)) or obj is None:
        return None
    if isinstance(obj, dict):
        for k, v in obj.items():
            hit = find_nonfinite(v, default, _place(where, k))
            if hit:
                return hit
        return None
    if isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            hit = find_nonfinite(v, default, f"{where}[{i}]")
            if hit:
                return hit
        return None
    if default is not None:
        try:
            return find_nonfinite(default(obj), None, where)
        except TypeError:
            return None
    return None


def dumps(obj: Any, *, path: Any = None, default: Callable[[Any], Any] | None = None, **kwargs) -> str:
    """:func:`json.dumps` with ``allow_nan=False``; a non-finite float raises
    :class:`~nascore.errors.NonFiniteError` naming ``path`` (the file about to be written) and
    the value's place."""
    try:
        return json.dumps(obj, allow_nan=False, default=default, **kwargs)
    except ValueError as e:
        hit = find_nonfinite(obj, default)
        if hit is None:  # another ValueError (e.g. a circular reference): not ours to reword
            raise
        place, value = hit
        where = str(path or "JSON")
        where = where if where.isprintable() else repr(where)
        raise NonFiniteError(f"{where}: refusing to write {value} at {place} "
                             "(JSON has no NaN or Infinity)") from e
