"""Versioned on-disk cache of prepared beats.

The key is the SHA-256 of (all :class:`~ecgnas.data.preprocess.PrepConfig` fields, which include
:data:`~ecgnas.data.preprocess.PIPELINE_VERSION`, and the SHA-256 of every data file used), so a
changed parameter, a new pipeline version or a changed data file never reuses old beats.

Layout: ``<cache_dir>/<key[:24]>/`` holds uncompressed ``.npy`` files -- ``x.npy`` (float32
``[n, L]``; float32 rather than float16 so a warm load returns exactly what a cold run computes,
about 100 MB for MIT-BIH), ``rr.npy`` (float32 ``[n, 4]``), ``y.npy`` and ``sample.npy`` (int64),
``record.npy`` (fixed-width unicode, no pickle) -- and ``manifest.json`` (full key, parameters,
checksums, shapes, preparation report). Every file is written atomically and the manifest last,
so a folder without a valid manifest is an unfinished write and is rebuilt. The default folder
is ``~/.cache/nascore/ecgnas-beats`` (``$XDG_CACHE_HOME`` respected); ``--cache DIR`` overrides it.
The same folder holds ``file-hashes.json``, the data-file hash cache of :mod:`ecgnas.data.mitdb`.

>>> from ecgnas.data.preprocess import PrepConfig
>>> k1 = cache_key(PrepConfig(), {"100.dat": "ab"})
>>> k1 != cache_key(PrepConfig(after_s=0.5), {"100.dat": "ab"}) and k1 != cache_key(PrepConfig(), {"100.dat": "cd"})
True
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import numpy as np

from nascore.io import atomic_write_bytes, atomic_write_json, read_json
from nascore.paths import user_cache_root

from .beats import Beats

ARRAYS = ("x", "rr", "y", "record", "sample")
MANIFEST = "manifest.json"
HASH_CACHE = "file-hashes.json"


def default_cache_dir() -> Path:
    return user_cache_root() / "ecgnas-beats"


def resolve_cache_dir(cache_dir: str | os.PathLike | None) -> Path:
    return Path(cache_dir) if cache_dir is not None else default_cache_dir()


def cache_key(config, checksums: dict[str, str], database: dict | None = None) -> str:
    """SHA-256 hex of the preparation parameters (with pipeline version) and the data-file checksums,
    plus ``database`` (a description's identity) when given: MIT-BIH passes none, so its keys are
    those of every earlier cache."""
    content = {"config": config.to_dict(), "data": sorted(checksums.items())}
    if database is not None:
        content["database"] = database
    blob = json.dumps(content, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def entry_dir(cache_dir: Path, key: str) -> Path:
    return Path(cache_dir) / key[:24]


def save(cache_dir: Path, key: str, beats: Beats, manifest: dict) -> Path:
    """Write ``beats`` under the key's folder (arrays first, manifest last, each atomically)."""
    folder = entry_dir(cache_dir, key)
    for name in ARRAYS:
        arr = getattr(beats, name)
        if name == "record":
            arr = np.asarray(arr, dtype=str)
        buf = io.BytesIO()
        np.save(buf, arr, allow_pickle=False)
        atomic_write_bytes(folder / f"{name}.npy", buf.getbuffer())
    shapes = {name: list(np.shape(getattr(beats, name))) for name in ARRAYS}
    atomic_write_json(folder / MANIFEST, {**manifest, "key": key, "fs": beats.fs, "n": len(beats), "shapes": shapes})
    return folder


def load(cache_dir: Path, key: str) -> tuple[Beats, dict] | None:
    """The cached beats and manifest for ``key``, or ``None`` on a miss or an incomplete/damaged entry."""
    folder = entry_dir(cache_dir, key)
    try:
        manifest = read_json(folder / MANIFEST)
        if manifest.get("key") != key:
            return None
        arrays = {name: np.load(folder / f"{name}.npy", allow_pickle=False) for name in ARRAYS}
    except (OSError, ValueError, AttributeError):
        return None
    if any(list(arrays[n].shape) != manifest.get("shapes", {}).get(n) for n in ARRAYS):
        return None
    beats = Beats(**arrays, fs=int(manifest["fs"]), report=manifest.get("report", {}))
    return beats, manifest
