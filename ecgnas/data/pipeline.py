"""From a WFDB folder to :class:`~ecgnas.data.beats.Beats`: per-record preparation, in parallel, cached.

:func:`load_beats` finds the folder, hashes (and verifies) the files of the records used, and
either loads the cached beats for that exact (parameters, pipeline version, data) key or prepares
every non-paced record -- one process per CPU core (``concurrent.futures`` with the ``spawn``
start method, safe after ``torch`` has started threads) -- and caches the result.

Per record (:func:`prepare_record`): read the lead, filter, keep the annotations whose symbol is
in :data:`ecgnas.aami.SYMBOL_TO_CLASS` (all of them, over the whole record, as de Chazal et al.
2004 count; other symbols are counted per symbol in the report and skipped), cut padded windows
around them and compute the RR features over those beats.

>>> beats = load_beats(progress=False)                  # doctest: +SKIP
>>> beats.x.shape, beats.class_counts()["V"]           # doctest: +SKIP
((100733, 2, 126), 7009)
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from ecgnas.aami import CLASSES
from ecgnas.datasets import DEFAULT, Database, get_database
from nascore.errors import UserError

from . import cache as _cache
from .beats import Beats
from .mitdb import LeadMissing, find_database, list_records, read_record, verify_files
from .preprocess import PIPELINE_VERSION, PrepConfig, beat_inputs, clean_signal

_CLASS_INDEX = {c: i for i, c in enumerate(CLASSES)}


def prepare_record(folder: str | os.PathLike, name: str, cfg: PrepConfig,
                   database: Database | str | None = None) -> dict:
    """Prepare one record; returns arrays ``x, rr, y, sample`` plus ``counts``, ``skipped``, ``notes``.

    ``database`` (default MIT-BIH) gives the lead map and the annotation symbol -> AAMI class map.
    A record without ``cfg.lead`` returns ``{"name", "skip_reason"}`` when ``cfg.missing_lead ==
    "skip"`` and raises :class:`~ecgnas.data.mitdb.LeadMissing` otherwise.
    """
    db = get_database(database if database is not None else DEFAULT)
    symbol_to_class = db.symbols
    try:
        rec = read_record(folder, name, cfg.lead, cfg.fs, candidates=db.signal_candidates(cfg.lead),
                          fallback=db.lead_fallback, annotator=db.annotator)
    except LeadMissing as e:
        if cfg.missing_lead == "skip":
            return {"name": name, "skip_reason": str(e)}
        raise LeadMissing(f"{e} (use --missing-lead skip / PrepConfig(missing_lead='skip') to leave such "
                          "records out, or choose another --lead)") from None
    mapped = np.array([s in symbol_to_class for s in rec.ann_symbol], dtype=bool)
    skipped = Counter(rec.ann_symbol[~mapped].tolist())
    peaks = rec.ann_sample[mapped]
    file_peaks = rec.ann_sample_file[mapped]
    y = np.array([_CLASS_INDEX[symbol_to_class[s]] for s in rec.ann_symbol[mapped]], dtype=np.int64)
    if len(peaks) < 2:
        raise UserError(f"record {name}: {len(peaks)} classifiable beat annotations; need at least 2 for RR features")
    sig = clean_signal(rec.signal, rec.fs, cfg)
    before, after = cfg.window_samples()
    x, rr = beat_inputs(sig, peaks, rec.fs, cfg)
    counts = {c: int((y == i).sum()) for i, c in enumerate(CLASSES)}
    n_padded = int((peaks < before).sum() + (peaks + after > len(sig)).sum())
    return {"name": name, "x": x, "rr": rr, "y": y, "sample": file_peaks, "counts": counts,
            "skipped": dict(skipped), "notes": rec.notes, "padded": n_padded}


def _default_jobs(n: int) -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, n))


def select_records(folder: Path, cfg: PrepConfig,
                   database: Database | str | None = None) -> tuple[list[str], dict[str, str]]:
    """Records to prepare (folder order) and {record: reason} for those left out (the database's
    ``excluded``: MIT-BIH's paced records)."""
    db = get_database(database if database is not None else DEFAULT)
    available = list_records(folder)
    if db.records is not None:
        missing = [r for r in db.records if r not in available]
        if missing:
            raise UserError(f"database {db.name}: records {', '.join(missing)} not in {folder}")
        listed = set(db.records)
        available = [r for r in available if r in listed]
    excluded = db.excluded
    if cfg.records is not None:
        missing = [r for r in cfg.records if r not in available]
        if missing:
            raise UserError(f"records: {', '.join(missing)} not in {folder}")
        paced = [r for r in cfg.records if r in excluded]
        if paced:
            why = excluded[paced[0]].split(" (")[0]
            raise UserError(f"records: {', '.join(paced)} are excluded from {db.name} ({why})"
                            if db.name != "mitdb" else
                            f"records: {', '.join(paced)} are paced records, excluded by AAMI EC57")
        wanted = set(cfg.records)
        return [r for r in available if r in wanted], {}
    skipped = {r: excluded[r] for r in available if r in excluded}
    return [r for r in available if r not in excluded], skipped


def _run(folder: Path, names: list[str], cfg: PrepConfig, jobs: int, progress: bool, db: Database) -> list[dict]:
    results: dict[str, dict] = {}
    if multiprocessing.current_process().daemon:
        jobs = 1  # a pool worker (e.g. a benchmark's parallel job) may not start processes of its own
    bar = None
    if progress:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        what = "MIT-BIH" if db.name == "mitdb" else db.name
        bar = Progress(TextColumn(f"preparing {what} beats"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        bar.start()
        task = bar.add_task("records", total=len(names))
    try:
        if jobs <= 1:
            for n in names:
                results[n] = prepare_record(str(folder), n, cfg, db)
                if bar:
                    bar.advance(task)
        else:
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as ex:
                futures = {ex.submit(prepare_record, str(folder), n, cfg, db): n for n in names}
                from concurrent.futures import as_completed

                try:
                    for fut in as_completed(futures):
                        results[futures[fut]] = fut.result()
                        if bar:
                            bar.advance(task)
                except BaseException:  # one broken record: report it now, do not prepare the rest first
                    ex.shutdown(wait=True, cancel_futures=True)
                    raise
    finally:
        if bar:
            bar.stop()
    return [results[n] for n in names]


def load_beats(data: str | os.PathLike | None = None, config: PrepConfig | None = None,
               cache_dir: str | os.PathLike | None = None, progress: bool = True, jobs: int | None = None,
               database: Database | str | None = None) -> Beats:
    """Prepared beats of every non-paced record (or ``config.records``), from cache when possible.

    ``database``: a registered name or a :class:`~ecgnas.datasets.Database` (default ``"mitdb"``);
    its lead map, symbol map and excluded records apply, and records are resampled to
    ``config.fs``. The cache key of MIT-BIH is what it always was; other databases add their
    description's :meth:`~ecgnas.datasets.Database.identity`.
    ``data``: the WFDB folder (else ``$NASCORE_DATA/<name>``, else ``~/.cache/nascore/<name>``);
    ``cache_dir``: default ``~/.cache/nascore/ecgnas-beats``; ``jobs``: worker processes for a
    cold preparation (default: one per available core; fewer than 4 records run in-process).
    ``beats.report["cache"]`` says whether the cache was hit and under which key.

    >>> from ecgnas.data import PrepConfig, load_beats
    >>> beats = load_beats("/path/to/mitdb", PrepConfig(lead="MLII"), progress=False)   # doctest: +SKIP
    """
    t0 = time.perf_counter()
    cfg = config if config is not None else PrepConfig()
    if not isinstance(cfg, PrepConfig):
        raise UserError(f"config: expected a PrepConfig, got {type(cfg).__name__}")
    db = get_database(database if database is not None else DEFAULT)
    folder = find_database(db.name, data, must_contain=db.must_contain)
    names, skipped_records = select_records(folder, cfg, db)
    if not names:
        raise UserError(f"{folder}: no records left to prepare (all are paced or excluded)")
    cdir = _cache.resolve_cache_dir(cache_dir)
    n_jobs = jobs if jobs is not None else (_default_jobs(len(names)) if len(names) >= 4 else 1)
    hashes, sums_info = verify_files(folder, names, cdir / _cache.HASH_CACHE, jobs=max(n_jobs, 2),
                                     annotator=db.annotator)
    if db.checksums is not None:
        for f, want in db.checksums.items():
            if f in hashes and hashes[f] != want:
                raise UserError(f"{folder / f}: SHA-256 differs from the {db.name} description's checksum "
                                f"(expected {want[:12]}..., got {hashes[f][:12]}...); fetch it again")
    key = _cache.cache_key(cfg, hashes, None if db.name == "mitdb" else db.identity())
    hit = _cache.load(cdir, key)
    if hit is not None:
        beats, manifest = hit
        beats.config = cfg
        beats.report["data_dir"] = str(folder)
        beats.report["database"] = db.name
        beats.report["cache"] = {"hit": True, "key": key, "dir": str(_cache.entry_dir(cdir, key))}
        beats.report["seconds"] = round(time.perf_counter() - t0, 3)
        return beats

    parts = _run(folder, names, cfg, n_jobs, progress, db)
    done = [p for p in parts if "skip_reason" not in p]
    for p in parts:
        if "skip_reason" in p:
            skipped_records[p["name"]] = p["skip_reason"]
    if not done:
        raise UserError(f"{folder}: every record was skipped ({'; '.join(skipped_records.values())})")
    skipped_symbols: Counter = Counter()
    for p in done:
        skipped_symbols.update(p["skipped"])
    report = {
        "data_dir": str(folder),
        **({} if db.name == "mitdb" else {"database": db.name}),
        "pipeline_version": PIPELINE_VERSION,
        "config": cfg.to_dict(),
        "records": [p["name"] for p in done],
        "skipped_records": skipped_records,
        "per_record": {p["name"]: p["counts"] for p in done},
        "skipped_symbols": dict(skipped_symbols.most_common()),
        "skipped_symbols_per_record": {p["name"]: p["skipped"] for p in done if p["skipped"]},
        "padded_windows": sum(p["padded"] for p in done),
        "notes": [note for p in done for note in p["notes"]],
        "checksums": sums_info,
        "workers": n_jobs,
    }
    beats = Beats(x=np.concatenate([p["x"] for p in done]), rr=np.concatenate([p["rr"] for p in done]),
                  y=np.concatenate([p["y"] for p in done]),
                  record=np.concatenate([np.full(len(p["y"]), p["name"]) for p in done]).astype(str),
                  sample=np.concatenate([p["sample"] for p in done]), fs=cfg.fs, report=report, config=cfg)
    report["prepare_seconds"] = round(time.perf_counter() - t0, 3)
    _cache.save(cdir, key, beats, {"pipeline_version": PIPELINE_VERSION, "config": cfg.to_dict(),
                                   "checksums": hashes, "report": report})
    report["cache"] = {"hit": False, "key": key, "dir": str(_cache.entry_dir(cdir, key))}
    report["seconds"] = round(time.perf_counter() - t0, 3)
    return beats
