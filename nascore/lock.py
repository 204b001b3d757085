"""One writer per folder: an exclusive, non-blocking lock on a run folder, and short write locks.

Two processes writing one run folder corrupt it (interleaved history lines, one process's
temporary file replaced by the other's, reruns refused afterwards). Every library function that
writes a run folder therefore holds :func:`folder_lock` on it for as long as it writes:

* the lock is an OS file lock (``filelock``: ``flock`` on POSIX) on ``FOLDER/.nascore.lock``, so
  it disappears with the process that held it -- a killed run leaves no stale lock;
* it does not wait: a second writer gets a one-line :class:`~nascore.errors.UserError` naming
  the folder and the PID of the holder (recorded, with its host name, in ``FOLDER/.nascore.pid``
  while the lock is held), which the command lines turn into exit status 2;
* it is re-entrant within one thread of one process (a search that holds its folder may call
  helpers that lock it again), and per folder: locking ``D`` does not lock ``D/sub``.

:func:`write_lock` is the other kind: a *blocking* lock held only around one short write into a
folder that several runs share on purpose (the ECG evaluation cache), see
:meth:`ecgnas.evaluator.ECGEvaluator.cached`.

>>> import tempfile
>>> d = tempfile.mkdtemp()
>>> with folder_lock(d):
...     holder_pid(d) == os.getpid()
True
>>> holder_pid(d) is None
True
"""

from __future__ import annotations

import os
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from filelock import FileLock, Timeout

from nascore.errors import UserError
from nascore.io import atomic_write_text

#: the lock file and the file naming its holder, inside the locked folder
LOCK_FILE = ".nascore.lock"
PID_FILE = ".nascore.pid"
WRITE_LOCK_FILE = ".nascore-write.lock"


def is_lock_file(name: str) -> bool:
    """True for the files this module keeps in a folder (and their transient temporary copies),
    which do not make a folder "not empty" for the purpose of choosing an output folder.

    >>> is_lock_file(".nascore.pid"), is_lock_file(".nascore.pid.abc123.tmp"), is_lock_file("config.json")
    (True, True, False)
    """
    return name in (LOCK_FILE, PID_FILE, WRITE_LOCK_FILE) or (name.startswith(PID_FILE + ".") and name.endswith(".tmp"))


class _Held:
    """A lock this process holds: the filelock object and how many times it was entered."""

    def __init__(self, lock: FileLock, thread: int, pid: int):
        self.lock, self.thread, self.pid, self.count = lock, thread, pid, 1


_held: dict[str, _Held] = {}
_guard = threading.Lock()


def _key(folder: Path) -> str:
    return os.path.realpath(folder)


def _holder(folder: Path, wait_s: float = 0.0) -> tuple[int | None, str | None]:
    """``(pid, host)`` recorded in ``folder``'s PID file, ``(None, None)`` when none is."""
    path = folder / PID_FILE
    deadline = time.monotonic() + wait_s
    while True:
        try:
            parts = path.read_text(encoding="utf-8").split()
            if parts:
                return int(parts[0]), (parts[1] if len(parts) > 1 else None)
        except (OSError, ValueError):
            pass
        if time.monotonic() >= deadline:
            return None, None
        time.sleep(0.05)


def holder_pid(folder: str | os.PathLike, wait_s: float = 0.0) -> int | None:
    """PID recorded by the process holding ``folder``'s lock (None when none is recorded).

    ``wait_s``: keep looking that long for a PID that is not written yet (a holder records it
    right after it acquires the lock)."""
    return _holder(Path(folder), wait_s)[0]


def _busy_message(folder: Path, what: str) -> str:
    pid, host = _holder(folder, wait_s=1.0)
    if pid is None:
        who = "another process (PID not recorded yet)"
    elif pid == os.getpid() and host in (None, socket.gethostname()):
        who = f"this process ({pid}, another thread)"
    else:
        who = f"process {pid}" + (f" on {host}" if host and host != socket.gethostname() else "")
    return (f"{what} {folder} is in use by {who}; wait for it to finish, stop it, or choose another folder "
            f"(two writers would corrupt it)")


@contextmanager
def folder_lock(folder: str | os.PathLike, *, what: str = "output folder", wait: bool = False,
                on_wait: Callable[[str], None] | None = None) -> Iterator[Path]:
    """Hold the exclusive lock of ``folder`` (created if missing) for the ``with`` block.

    Raises :class:`UserError` (folder and holder's PID in the message) when another process, or
    another thread of this one, holds it. ``wait=True`` waits for the holder to finish instead
    (``on_wait(message)`` is called once first): for a folder that several runs share on purpose
    and reuse once it is finished, such as an ECG search baseline. Only validate *before* calling
    this: the folder is created here.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{what} {folder} exists and is not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    key = _key(folder)
    me, pid = threading.get_ident(), os.getpid()
    with _guard:
        held = _held.get(key)
        if held is not None and held.pid == pid and held.thread == me:
            held.count += 1
        else:
            held = None
    if held is not None:  # re-entered by the thread that holds it
        try:
            yield folder
        finally:
            with _guard:
                held.count -= 1
        return
    lock = FileLock(str(folder / LOCK_FILE), timeout=0)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        message = _busy_message(folder, what)
        if not wait:
            raise UserError(message) from None
        if on_wait is not None:
            on_wait(message)
        lock.acquire(timeout=-1)
    try:
        atomic_write_text(folder / PID_FILE, f"{pid} {socket.gethostname()}\n")
        with _guard:
            _held[key] = _Held(lock, me, pid)
        try:
            yield folder
        finally:
            with _guard:
                _held.pop(key, None)
            try:
                (folder / PID_FILE).unlink()
            except OSError:
                pass
    finally:
        lock.release()


def busy_error(folder: str | os.PathLike, what: str = "output folder") -> UserError | None:
    """The UserError :func:`folder_lock` would raise if another process (or thread) holds
    ``folder``'s lock right now; None if nobody else does.

    Creates nothing: a folder without a lock file is not probed. Use it to explain a refusal
    that was decided without the lock (a folder seen half-written by a run in progress is
    "in use by process N", not "not a run folder")."""
    folder = Path(folder)
    if not (folder / LOCK_FILE).is_file():
        return None
    with _guard:
        held = _held.get(_key(folder))
        if held is not None and held.pid == os.getpid() and held.thread == threading.get_ident():
            return None
    probe = FileLock(str(folder / LOCK_FILE), timeout=0)
    try:
        probe.acquire(timeout=0)
    except Timeout:
        return UserError(_busy_message(folder, what))
    probe.release()
    return None


@contextmanager
def write_lock(folder: str | os.PathLike, *, timeout: float = 300.0, what: str = "folder") -> Iterator[Path]:
    """Hold ``folder``'s short write lock (blocking, at most ``timeout`` seconds) for the block.

    Meant for one quick read-check-write into a folder shared by several concurrent runs; it is
    independent of :func:`folder_lock`. A lock not obtained in time is a :class:`UserError`.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(folder / WRITE_LOCK_FILE), timeout=timeout)
    try:
        lock.acquire()
    except Timeout:
        raise UserError(f"{what} {folder}: could not get its write lock within {timeout:g} s "
                        f"({folder / WRITE_LOCK_FILE} held by another process)") from None
    try:
        yield folder
    finally:
        lock.release()
