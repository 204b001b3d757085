"""``ecgnas prepare``: prepare (or load from cache) the beats of a database (MIT-BIH by default) and write ``summary.json``.

``summary.json`` (in ``--output``) starts with the beat counts per inter-patient set and class,
``{"DS1": {"N": .., "S": .., "V": .., "F": .., "Q": ..}, "DS2": {...}}``, then: whether they equal
the published counts, the train/val (DS1 hold-out) counts, per-record counts, skipped symbols
and records, notes (lead order, resampling), parameters, cache key and hit, seconds taken.

Another database: ``--dataset incartdb`` (any registered in :mod:`ecgnas.datasets`); its summary
gives the counts per class over all its records (and per standard split, when it has one) and its
description. ``--dataset mitdb+svdb`` prepares each and writes one summary per database.

Example::

    ecgnas prepare --data ../shared/data/mitdb --output runs/prep
    ecgnas prepare --dataset svdb --data /data/svdb --output runs/prep-svdb
    ecgnas prepare --output runs/prep --window 0.3,0.5 --filter bandpass --cache /tmp/beats
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

from nascore.errors import UserError


def _pair(text: str, what: str) -> tuple[float, float]:
    try:
        a, b = (float(v) for v in text.split(","))
    except ValueError:
        raise UserError(f"{what}: cannot read {text!r} (use two numbers like 0.25,0.45)") from None
    return a, b


def _names(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    names = tuple(t.strip() for t in text.split(",") if t.strip())
    if not names:
        raise UserError(f"empty record list {text!r}")
    return names


def register(sub) -> None:
    from nascore.helptext import doc_paragraph
    from nascore.paths import user_cache_root

    from .preprocess import BEAT_NORMS, FILTERS, RESIDUALS, RR_NORMS, RR_SETS, TEMPLATES, PrepConfig

    cache = user_cache_root()  # the real folder ($XDG_CACHE_HOME respected), not a fixed ~/.cache
    p = sub.add_parser("prepare", help="prepare MIT-BIH beats (filter, windows, RR features, AAMI labels) and cache them",
                       description=doc_paragraph(__doc__, 0))
    p.add_argument("--dataset", default="mitdb",
                   help="database(s) from ecgnas.datasets, e.g. mitdb, incartdb, svdb, edb, or mitdb+svdb (default mitdb)")
    p.add_argument("--data", default=None,
                   help=f"WFDB folder (default $NASCORE_DATA/<dataset>, then {cache / '<dataset>'}); several "
                        "databases: NAME=DIR,NAME=DIR")
    p.add_argument("--download", action="store_true",
                   help=f"first fetch the database from PhysioNet with wfdb.dl_database into --data "
                        f"(or {cache / 'mitdb'})")
    p.add_argument("--output", required=True, help="folder for summary.json")
    p.add_argument("--cache", default=None, help=f"beat cache folder (default {cache / 'ecgnas-beats'})")
    d = PrepConfig()  # one source of defaults: the dataclass; each help states its default once
    p.add_argument("--lead", default=d.lead, help=f"signal name of the lead to use (default {d.lead})")
    p.add_argument("--missing-lead", default=d.missing_lead, choices=["error", "skip"],
                   help="a record without --lead: stop with an error, or skip it (listed in the summary) "
                        f"(default {d.missing_lead})")
    p.add_argument("--window", default=f"{d.before_s},{d.after_s}",
                   help=f"seconds before,after the R peak (default {d.before_s},{d.after_s})")
    p.add_argument("--filter", default=d.filter, choices=FILTERS,
                   help=f"baseline/noise filter (see ecgnas.data.preprocess; default {d.filter})")
    p.add_argument("--lowpass", type=float, default=d.lowpass_hz or 0.0,
                   help=f"low-pass cut-off (Hz) after the median filters; 0 = off (default {d.lowpass_hz or 0:g})")
    band = ",".join(f"{v:g}" for v in d.bandpass_hz)
    p.add_argument("--band", default=band, help=f"band-pass edges in Hz for --filter bandpass (default {band})")
    p.add_argument("--beat-norm", default=d.beat_norm, choices=BEAT_NORMS,
                   help=f"per-window normalisation (default {d.beat_norm})")
    p.add_argument("--residual", default=d.residual, choices=RESIDUALS,
                   help=f"add a second channel: the window minus its record's median window (default {d.residual})")
    p.add_argument("--template", default=d.template, choices=TEMPLATES,
                   help="median window over all beats, or over the non-premature beats only (regular) "
                        f"(default {d.template})")
    p.add_argument("--local-rr", type=int, default=d.local_rr_beats,
                   help=f"beats in the local RR average (default {d.local_rr_beats})")
    p.add_argument("--rr-norm", default=d.rr_norm, choices=RR_NORMS,
                   help=f"divide pre/post/local RR by the record's mean RR, or keep seconds (default {d.rr_norm})")
    p.add_argument("--rr-set", default=d.rr_set, choices=RR_SETS,
                   help="RR features: ratios = pre, post, local, pre/local, post/pre; basic = pre, post, local, "
                        f"mean (default {d.rr_set})")
    p.add_argument("--fs", type=int, default=d.fs,
                   help=f"sampling rate to work at (MIT-BIH's 360 Hz is resampled to it; default {d.fs})")
    p.add_argument("--records", default=None, help="comma-separated record names (default: all non-paced records)")
    p.add_argument("--holdout", default=None,
                   help="comma-separated DS1 records for validation (default ecgnas.data.DEFAULT_HOLDOUT)")
    p.add_argument("--jobs", type=int, default=None, help="worker processes (default: one per core)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--no-progress", dest="quiet", action="store_true", help=argparse.SUPPRESS)  # the old name
    p.set_defaults(func=main)


def config_from_args(args):
    from .preprocess import PrepConfig

    before, after = _pair(args.window, "--window")
    return PrepConfig(lead=args.lead, fs=args.fs, before_s=before, after_s=after, filter=args.filter,
                      lowpass_hz=args.lowpass if args.lowpass and args.lowpass > 0 else None,
                      bandpass_hz=_pair(args.band, "--band"), beat_norm=args.beat_norm, local_rr_beats=args.local_rr,
                      rr_norm=args.rr_norm, rr_set=args.rr_set, residual=args.residual, template=args.template,
                      missing_lead=args.missing_lead, records=_names(args.records))


def summarize_database(beats, db) -> dict:
    """The ``summary.json`` dictionary of a database other than MIT-BIH: counts over all its records
    (and per standard split), per record and per patient, the preparation report and its description."""
    import numpy as np

    rep = beats.report
    out: dict = {"database": db.name, "title": db.title, "all": beats.class_counts(), "n_beats": len(beats)}
    for name, recs in db.splits.items():
        out[name] = beats.class_counts(np.flatnonzero(np.isin(beats.record, recs)))
    if db.published_counts:
        out["matches_published_counts"] = {k: out.get(k) == dict(v) for k, v in db.published_counts.items()}
    out["patients"] = (sorted({db.patient_of(r) for r in beats.record.tolist()}) if db.patients is not None
                       else "unknown (no record -> patient map)")
    for k in ("per_record", "skipped_symbols", "skipped_records", "notes", "checksums"):
        out[k] = rep.get(k, {} if k != "notes" else [])
    out["parameters"] = rep.get("config", beats.config.to_dict() if beats.config else {})
    out["input_shape"] = {"in_channels": beats.in_channels, "window": beats.window, "n_rr": beats.n_rr}
    out["fs"] = beats.fs
    out["data_dir"] = rep.get("data_dir")
    out["cache"] = rep.get("cache", {})
    out["description"] = db.describe()
    return out


def summarize(beats, holdout=None) -> dict:
    """The ``summary.json`` dictionary for prepared ``beats`` (counts by DS1/DS2 and class first)."""
    import numpy as np

    from ecgnas.aami import DS1, DS2, PUBLISHED_COUNTS

    from .splits import DEFAULT_HOLDOUT, inter_patient_split

    rep = beats.report
    out: dict = {}
    for name, recs in (("DS1", DS1), ("DS2", DS2)):
        out[name] = beats.class_counts(np.flatnonzero(np.isin(beats.record, recs)))
    out["matches_published_counts"] = {k: out[k] == PUBLISHED_COUNTS[k] for k in ("DS1", "DS2")}
    out["n_beats"] = len(beats)
    hold = tuple(holdout) if holdout is not None else DEFAULT_HOLDOUT
    try:
        split = inter_patient_split(beats, hold)
        out["inter_patient"] = {"holdout_records": list(hold),
                                **{k: beats.class_counts(v) for k, v in split.items()}}
    except UserError as e:  # e.g. a --records subset without DS2: the counts above still stand
        out["inter_patient"] = {"holdout_records": list(hold), "error": str(e)}
    out["other_records"] = beats.class_counts(np.flatnonzero(~np.isin(beats.record, DS1 + DS2)))
    out["per_record"] = rep.get("per_record", {})
    out["skipped_symbols"] = rep.get("skipped_symbols", {})
    out["skipped_records"] = rep.get("skipped_records", {})
    out["padded_windows"] = rep.get("padded_windows")
    out["notes"] = rep.get("notes", [])
    out["checksums"] = rep.get("checksums", {})
    out["parameters"] = rep.get("config", beats.config.to_dict() if beats.config else {})
    out["window_length"] = beats.window
    out["input_shape"] = {"in_channels": beats.in_channels, "window": beats.window, "n_rr": beats.n_rr}
    out["fs"] = beats.fs
    out["data_dir"] = rep.get("data_dir")
    out["cache"] = rep.get("cache", {})
    out["load_seconds"] = rep.get("seconds")
    return out


_RESAMPLED = re.compile(r"record (?P<record>\S+): resampled (?P<rates>.+? Hz -> .+? Hz) \((?P<how>[^;]*);")


def console_notes(notes: list[str]) -> list[str]:
    """The notes of a preparation as printed: the per-record "resampled" notes (one per record,
    every run, also from the cache) become one line per rate change; the others stay as they are.
    ``summary.json`` keeps them all.

    >>> console_notes(["record 100: resampled 360 Hz -> 180 Hz (scipy resample_poly up=1 down=2; "
    ...                "650000 -> 325000 samples; annotation samples rescaled)",
    ...                "record 114: lead MLII is signal 1 (stored order: V5, MLII)",
    ...                "record 101: resampled 360 Hz -> 180 Hz (scipy resample_poly up=1 down=2; "
    ...                "650000 -> 325000 samples; annotation samples rescaled)"])  # doctest: +NORMALIZE_WHITESPACE
    ['2 records resampled 360 Hz -> 180 Hz (scipy resample_poly up=1 down=2; annotation samples rescaled;
      per record in summary.json)', 'record 114: lead MLII is signal 1 (stored order: V5, MLII)']
    """
    groups: dict[tuple[str, str], list[str]] = {}
    others = []
    for note in notes:
        m = _RESAMPLED.match(note)
        if m:
            groups.setdefault((m["rates"], m["how"]), []).append(m["record"])
        else:
            others.append(note)
    summary = [f"{len(recs)} record{'s' if len(recs) != 1 else ''} resampled {rates} ({how}; annotation samples "
               f"rescaled; per record in summary.json)" for (rates, how), recs in groups.items()]
    return summary + others


def main(args) -> int:
    from ecgnas.datasets import parse_dataset
    from nascore.io import atomic_write_json

    from .mitdb import download_database
    from .pipeline import load_beats
    from .spec import data_dirs

    t0 = time.perf_counter()
    cfg = config_from_args(args)
    dbs = parse_dataset(args.dataset)
    holdout = _names(args.holdout)
    if holdout is not None:
        from ecgnas.aami import DS1

        if dbs[0].name != "mitdb":
            raise UserError(f"--holdout: only for MIT-BIH (the first --dataset is {dbs[0].name})")
        bad = [r for r in holdout if r not in DS1]
        if bad:
            raise UserError(f"--holdout: {', '.join(bad)} not in DS1 (validation records must come from DS1)")
    if args.jobs is not None and args.jobs < 1:
        raise UserError(f"--jobs: need >= 1, got {args.jobs}")
    dirs = data_dirs(args.data, dbs)
    out = Path(args.output)
    summaries = {}
    for db in dbs:
        data = dirs[db.name]
        if args.download:
            data = download_database(db.name, data)
            print(f"downloaded {db.name} into {data}")
        kw = {} if db.name == "mitdb" else {"database": db}
        beats = load_beats(data, cfg, cache_dir=args.cache, progress=not args.quiet, jobs=args.jobs, **kw)
        summary = summarize(beats, holdout) if db.name == "mitdb" else summarize_database(beats, db)
        summary["seconds"] = round(time.perf_counter() - t0, 3)
        summaries[db.name] = summary
        hit = "loaded from cache" if summary["cache"].get("hit") else "prepared"
        where = (f"DS1 {sum(summary['DS1'].values())}, DS2 {sum(summary['DS2'].values())}" if db.name == "mitdb"
                 else f"{db.name}: {len(set(beats.record.tolist()))} records")
        print(f"{len(beats)} beats {hit} in {summary['seconds']:.1f} s ({where})")
        for note in console_notes(summary["notes"]):
            print(f"note: {note}")
        for rec, why in summary["skipped_records"].items():
            print(f"skipped record {rec}: {why}")
    first = summaries[dbs[0].name]
    if len(dbs) > 1:
        first = {**first, "extra_training_data": {d.name: summaries[d.name] for d in dbs[1:]}}
    atomic_write_json(out / "summary.json", first)
    print(f"wrote {out / 'summary.json'}")
    return 0
