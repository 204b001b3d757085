"""Crash-safe file writes shared by every run folder.

* :func:`atomic_write_text` / :func:`atomic_write_json` write to a temporary file with a unique
  name (``tempfile.mkstemp``) in the same folder, ``fsync`` it and ``os.replace`` it over the
  target, so a reader (or a resumed run) sees either the old file or the new one, never half of
  one, and two writers never share a temporary file.
* :func:`append_jsonl` appends JSON records, one a line, in one write, and flushes + fsyncs it.
  A record is complete only with its final ``\n``: a run killed mid-write leaves at most one torn
  last line -- whatever byte the tear is at, even just before the newline -- which
  :func:`read_jsonl` drops (``repair=True`` also cuts it off the file) and :func:`append_jsonl`
  cuts off before it appends, so every record starts on a fresh line.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> atomic_write_json(d / "a.json", {"x": 1}); read_json(d / "a.json")
{'x': 1}
>>> append_jsonl(d / "h.jsonl", [{"i": 0}, {"i": 1}])
>>> with open(d / "h.jsonl", "ab") as f: _ = f.write(b'{"i": 2}')   # torn: no newline yet
>>> read_jsonl(d / "h.jsonl")
[{'i': 0}, {'i': 1}]
>>> append_jsonl(d / "h.jsonl", [{"i": 2}]); read_jsonl(d / "h.jsonl")
[{'i': 0}, {'i': 1}, {'i': 2}]
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable

from nascore.jsonsafe import dumps

_log = logging.getLogger("nascore")


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (unique temporary file, fsync, ``os.replace``).

    On failure the temporary file is removed if it can be; a cleanup that fails too (a
    read-only or vanished file system) is ignored, so the caller sees the first error, the one
    that says what went wrong, not the cleanup's."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):  # never hide the first error behind the cleanup's
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, dumps(obj, path=path, indent=2, sort_keys=False, default=_jsonable) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def append_jsonl(path: str | os.PathLike, records: Iterable[dict]) -> None:
    """Append records, one JSON object a line, durably (flush + fsync before returning).

    A torn last line already in the file (bytes after the last newline: a record whose write was
    cut) is truncated away first, so the new records never glue onto it. Callers that must
    re-do the torn record read the file with :func:`read_jsonl` first, as the run loops do.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(dumps(rec, path=path, default=_jsonable) + "\n" for rec in records).encode("utf-8")
    with open(path, "ab+") as f:
        size = f.seek(0, os.SEEK_END)
        good = complete_length(f, size)
        if good != size:
            _log.warning("%s: dropped a torn last line (%d bytes) before appending", path, size - good)
            f.truncate(good)
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def complete_length(f, size: int | None = None) -> int:
    """Bytes of the binary file ``f`` up to and including its last newline (0 if it has none).

    Checks the last byte, then scans backwards in blocks only when the last line is torn.
    """
    if size is None:
        size = f.seek(0, os.SEEK_END)
    if size:  # the usual case, a complete file: one byte read
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return size
    pos = size
    block = 1 << 16
    while pos > 0:
        start = max(0, pos - block)
        f.seek(start)
        chunk = f.read(pos - start)
        nl = chunk.rfind(b"\n")
        if nl >= 0:
            return start + nl + 1
        pos = start
    return 0


def read_jsonl(path: str | os.PathLike, *, repair: bool = False) -> list[dict]:
    """Read a JSON-lines file; a torn final line (a crash mid-append) is dropped.

    The final line is torn when the file does not end with a newline, whatever its bytes are
    (a record cut just before its ``\n`` is still valid JSON, yet an append would glue the next
    record onto it). With ``repair=True`` the torn tail is also cut off the file (truncated to
    its last complete line and fsynced) so later appends stay valid; only the process that
    writes the file may repair it (run loops do so under their folder lock), a mere reader must
    not. A malformed line anywhere else is corruption, not a crash artefact, and raises
    :class:`~nascore.errors.UserError`.
    """
    path = Path(path)
    if not path.exists():
        return []
    raw = path.read_bytes()
    good = raw.rfind(b"\n") + 1  # bytes of complete lines
    if good < len(raw):
        if repair:
            with open(path, "r+b") as f:
                f.truncate(good)
                f.flush()
                os.fsync(f.fileno())
            _log.warning("%s: dropped a torn last line (%d bytes); that record will be redone",
                         path, len(raw) - good)
    out: list[dict] = []
    for i, line in enumerate(raw[:good].split(b"\n")[:-1]):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            rec = None
        if not isinstance(rec, dict):
            from nascore.errors import UserError

            raise UserError(f"{path}: line {i + 1} is not a valid JSON record (file corrupted?)") from None
        out.append(rec)
    return out


def _jsonable(obj: Any):
    try:
        import numpy as np

        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
