"""Operating-system errors at the command line: one line naming the path and the reason, exit 3.

An :class:`OSError` that reaches a command-line entry point (``nascore``, ``ecgnas``) -- an
``--output`` that is a file, a folder without write permission, a full disk, a file system
remounted read-only during a run, an I/O error -- is printed as one line::

    nascore: error: /runs/a/checkpoint.pt: No space left on device (ENOSPC); free some space, then run the same command again to resume

and the command exits with :data:`EXIT_OS_ERROR` (3). Exit 2 stays what it was: bad input
(:class:`nascore.errors.UserError`). Every run folder is written atomically and appended with
fsync (:mod:`nascore.io`), so what finished before the error is kept and the same command resumes.

The path is the error's own (``filename``, and ``filename2`` for a rename). A failed ``write`` or
``fsync`` carries none; the path is then taken from the innermost ``nascore``/``ecgnas`` frame
of the traceback that holds one in a variable named like a path (``path``, ``tmp``, ``out``...),
else from the command's ``--output``.

>>> import errno
>>> os_error_line(OSError(errno.ENOSPC, "No space left on device"), "/runs/a")
'/runs/a: No space left on device (ENOSPC); free some space, then run the same command again to resume'
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
from pathlib import Path
from typing import Sequence

from nascore.cliutil import run

#: exit status of a command stopped by an operating-system error (2: bad input, 130: interrupted)
EXIT_OS_ERROR = 3

_RESUME = "run the same command again to resume"
_HINTS = {
    errno.ENOSPC: f"free some space, then {_RESUME}",
    errno.EDQUOT: f"disk quota exceeded: free some space, then {_RESUME}",
    errno.EROFS: f"the file system is read-only; once it is writable, {_RESUME}",
    errno.EACCES: "check the permissions or choose another folder",
    errno.EPERM: "check the permissions or choose another folder",
    errno.EIO: f"the disk reported an I/O error; check it, then {_RESUME}",
}
_PATH_NAMES = ("path", "tmp", "target", "file", "filename", "dest", "out", "output", "folder", "directory")


def _not_a_folder(path: str) -> str | None:
    """The first component of ``path`` that exists but is not a folder (the usual cause of
    ENOTDIR / EEXIST from ``mkdir``), or None."""
    p = Path(path)
    for q in list(reversed(p.parents)) + [p]:
        if q.exists() and not q.is_dir():
            return str(q)
    return None


def path_from_traceback(e: BaseException) -> str | None:
    """The path being worked on when ``e`` was raised: the innermost frame of this project's
    code (``nascore``/``ecgnas`` modules) with a str/PathLike local named like a path."""
    frames = []
    tb = e.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    for frame in reversed(frames):
        mod = frame.f_globals.get("__name__", "")
        if not (mod.startswith("nascore") or mod.startswith("ecgnas")) or mod == __name__:
            continue
        for name in _PATH_NAMES:
            v = frame.f_locals.get(name)
            if isinstance(v, (str, os.PathLike)) and str(v):
                return str(v)
    return None


def os_error_line(e: OSError, fallback: str | None = None) -> str:
    """One line for ``e``: ``"<path>: <reason> (<ERRNO>)[; <what to do>]"``; ``fallback`` is used
    as the path when neither the error nor the traceback names one."""
    path = e.filename if e.filename is not None else (path_from_traceback(e) or fallback)
    if e.filename2 is not None:
        path = f"{path} -> {e.filename2}"
    reason = e.strerror or str(e) or type(e).__name__
    code = errno.errorcode.get(e.errno, "") if e.errno is not None else ""
    line = f"{path}: {reason}" if path else reason
    if code:
        line += f" ({code})"
    hint = _HINTS.get(e.errno)
    if e.errno in (errno.ENOTDIR, errno.EEXIST) and e.filename is not None:
        blocker = _not_a_folder(str(e.filename))
        if blocker is not None:
            hint = f"{blocker} is a file, not a folder; choose another --output"
    return f"{line}; {hint}" if hint else line


def run_cli(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> int:
    """:func:`nascore.cliutil.run` (``UserError`` -> exit 2, Ctrl-C -> 130) plus: an
    :class:`OSError` becomes one line on stderr (:func:`os_error_line`) and exit :data:`EXIT_OS_ERROR`."""
    try:
        return run(parser, argv)
    except OSError as e:
        fallback = None
        try:
            fallback = getattr(parser.parse_known_args(argv)[0], "output", None)
        except SystemExit:  # pragma: no cover - the same arguments parsed a moment ago
            pass
        print(f"{parser.prog}: error: {os_error_line(e, fallback)}", file=sys.stderr)
        return EXIT_OS_ERROR
