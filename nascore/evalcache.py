"""A write-once on-disk cache of evaluation results, shared by runs and workers.

Training evaluators (:class:`nascore.train_evaluator.ImageTrainEvaluator`,
:class:`ecgnas.evaluator.ECGEvaluator`) key a result by everything that determines it (the
architecture and the evaluator's identity) and keep one JSON file per key in a folder.

The folder may be shared by several runs at once (the methods of one seed, Ray workers), so it
is *not* locked for a whole run -- that would serialise or refuse the very runs it is shared
between. Instead each entry is write-once: the result is computed without any lock, then
:func:`nascore.lock.write_lock` is held only around the check-and-write of its file. If another
run wrote the entry meanwhile, that entry wins and is returned (every run that asks agrees on one
result per key); otherwise ours is written atomically (unique temporary name + ``os.replace``), so
a reader never sees half a file and needs no lock. The worst case of a race is one evaluation
done twice, never a damaged or contradictory cache. A damaged entry reads as a miss.

>>> import tempfile
>>> from nascore.evaluation import Result
>>> cache = ResultCache(tempfile.mkdtemp())
>>> cache.get_or_compute("k" * 64, lambda: Result(0.5), arch="a").score
0.5
>>> hit = cache.get_or_compute("k" * 64, lambda: Result(0.9), arch="a")   # not recomputed
>>> hit.score, hit.metrics["cached"]
(0.5, True)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Mapping

from nascore.evaluation import Result
from nascore.io import atomic_write_json, read_json


class ResultCache:
    """One JSON file per key under ``folder`` (``None``: no cache, every call computes)."""

    def __init__(self, folder: str | os.PathLike | None):
        self.folder = None if folder is None else Path(folder)

    def path(self, key: str) -> Path | None:
        return None if self.folder is None else self.folder / f"{key[:32]}.json"

    def read(self, key: str) -> Result | None:
        """The cached result for ``key`` (``metrics["cached"]`` set), or ``None``."""
        path = self.path(key)
        if path is None or not path.is_file():
            return None
        try:
            rec = read_json(path)
            if rec.get("key") == key:
                res = Result.from_dict(rec["result"])
                res.metrics["cached"] = True
                return res
        except (ValueError, KeyError, OSError):
            pass  # a damaged entry is recomputed
        return None

    def get_or_compute(self, key: str, compute: Callable[[], Result], **record: Any) -> Result:
        """The cached result for ``key``, else ``compute()`` written once (``record``: extra
        fields of the entry, e.g. the architecture string)."""
        hit = self.read(key)
        if hit is not None:
            return hit
        res = compute()
        if self.folder is None:
            return res
        from nascore.lock import write_lock

        with write_lock(self.folder, what="evaluation cache"):
            hit = self.read(key)
            if hit is not None:  # written by another run while we computed: the first result wins
                return hit
            atomic_write_json(self.path(key), {"key": key, **_plain(record), "result": res.to_dict()})
        return res


def _plain(record: Mapping[str, Any]) -> dict:
    return {k: v for k, v in record.items() if k not in ("key", "result")}
