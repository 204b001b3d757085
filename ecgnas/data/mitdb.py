"""Reading WFDB records with ``wfdb`` (MIT-BIH and every database of :mod:`ecgnas.datasets`):
finding the folder, checksums, lead choice, resampling.

* :func:`find_mitdb` -- the data folder: ``--data DIR``, else ``$NASCORE_DATA/mitdb``, else
  ``$XDG_CACHE_HOME/nascore/mitdb`` (default ``~/.cache/nascore/mitdb``;
  :func:`nascore.paths.find_dataset`); :func:`download_mitdb` fetches it from PhysioNet with
  ``wfdb.dl_database("mitdb", DIR)``. :func:`find_database` / :func:`download_database` do the
  same for any database name.
* :func:`verify_files` -- SHA-256 of exactly the files of the records used (header, signal and
  ``.atr``), compared with ``SHA256SUMS`` when the folder has one. Hashes are cached in a JSON
  file keyed by path + size + mtime, so a warm run stats the files and hashes nothing.
* :func:`read_record` -- one lead chosen **by signal name** (record 114 stores ``V5, MLII``, all
  other non-paced records ``MLII`` first; another database's lead map gives the names to try, and
  its fallback may take the first signal, said in a note) in mV, resampled to the target rate with
  ``scipy.signal.resample_poly`` when the header gives another rate (annotation samples are
  rescaled and a note says so), plus the reference annotations. NaN samples (wfdb's "invalid
  sample" value) are an error naming the record, lead and first bad sample: filtering would spread
  a NaN over the whole record, so neither silent use nor a quiet drop is safe. A structurally
  broken record -- a truncated signal file, a header claiming more samples than the file holds
  (:func:`check_signal_files`), a damaged header or annotation file -- is one :class:`UserError`
  line naming the record and what is wrong, also when no ``SHA256SUMS`` file would have caught it.

>>> from fractions import Fraction
>>> resample_ratio(250, 360)
Fraction(36, 25)
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from nascore.errors import UserError
from nascore.io import atomic_write_json, read_json
from nascore.paths import find_dataset, user_cache_root

SUMS_FILE = "SHA256SUMS"


def how_to_get(name: str = "mitdb") -> str:
    """The hint appended to a missing-data error; it names the real download folder (the user
    cache, ``$XDG_CACHE_HOME`` respected), not a fixed ``~/.cache`` path."""
    opt = "" if name == "mitdb" else f" --dataset {name}"
    return (f"get it with python -c \"import wfdb; wfdb.dl_database('{name}', 'DIR')\" or "
            f"`ecgnas prepare{opt} --download` (into {user_cache_root() / name}), then pass --data DIR or set "
            "$NASCORE_DATA")


class LeadMissing(UserError):
    """A record has no signal with the requested name (the caller decides: error or counted skip)."""


def find_mitdb(data: str | os.PathLike | None = None) -> Path:
    """The MIT-BIH folder: ``data`` if given (must hold ``.hea`` files), else the usual places.

    >>> find_mitdb("/nonexistent/mitdb")
    Traceback (most recent call last):
    ...
    nascore.errors.DataMissingError: mitdb data not found (looked in /nonexistent/mitdb); get it with ...
    """
    return find_database("mitdb", data, must_contain="100.hea")


def find_database(name: str, data: str | os.PathLike | None = None, must_contain: str | None = None) -> Path:
    """The WFDB folder of database ``name``: ``data`` if given (must hold ``.hea`` files), else
    ``$NASCORE_DATA/<name>``, else the user cache (holding ``must_contain``, or any ``*.hea``)."""
    if data is not None:
        folder = find_dataset(name, data, how_to_get=how_to_get(name))
        if not any(folder.glob("*.hea")):
            raise UserError(f"{folder}: no WFDB header files (*.hea) here; {how_to_get(name)}")
        return folder
    folder = find_dataset(name, None, must_contain=must_contain, how_to_get=how_to_get(name))
    if must_contain is None and not any(folder.glob("*.hea")):
        raise UserError(f"{folder}: no WFDB header files (*.hea) here; {how_to_get(name)}")
    return folder


def download_mitdb(target: str | os.PathLike | None = None) -> Path:
    """Fetch all 48 records from PhysioNet into ``target`` (default ``~/.cache/nascore/mitdb``).

    Needs internet access; any failure becomes a one-line :class:`UserError`. PhysioNet's
    download carries no ``SHA256SUMS`` file here, so the files are hashed (for the cache key) but
    not verified against published sums.
    """
    return download_database("mitdb", target)


def download_database(name: str, target: str | os.PathLike | None = None) -> Path:
    """Fetch PhysioNet database ``name`` with ``wfdb.dl_database`` into ``target`` (default the
    user cache, ``~/.cache/nascore/<name>``); any failure is a one-line :class:`UserError`."""
    target = Path(target) if target is not None else user_cache_root() / name
    try:
        import wfdb

        target.mkdir(parents=True, exist_ok=True)
        wfdb.dl_database(name, str(target))
    except Exception as e:  # network, HTTP, disk: all reported in one line
        msg = str(e).splitlines()[0] if str(e) else ""
        raise UserError(f"downloading {name} from PhysioNet into {target} failed: {type(e).__name__}: {msg}") from None
    if not any(target.glob("*.hea")):
        raise UserError(f"downloading {name} into {target} produced no WFDB records")
    return target


def list_records(folder: Path) -> list[str]:
    """Record names from the folder's ``RECORDS`` file, else from its ``*.hea`` files (sorted)."""
    rec_file = folder / "RECORDS"
    if rec_file.exists():
        names = [ln.strip() for ln in rec_file.read_text().splitlines() if ln.strip()]
    else:
        names = sorted(p.stem for p in folder.glob("*.hea"))
    if not names:
        raise UserError(f"{folder}: no records found (no RECORDS file and no *.hea files)")
    return names


def record_files(folder: Path, name: str, annotator: str = "atr") -> list[str]:
    """File names (relative to ``folder``) that make up record ``name``: header, signal file(s), annotations."""
    import wfdb

    hea = folder / f"{name}.hea"
    if not hea.exists():
        raise UserError(f"record {name}: header file {hea} is missing")
    atr = folder / f"{name}.{annotator}"
    if not atr.exists():
        raise UserError(f"record {name}: reference annotation file {atr} is missing (for recordings without "
                        "annotations use ecgnas.data.rpeaks.unlabelled_beats)")
    try:
        header = wfdb.rdheader(str(folder / name))
    except Exception as e:
        raise UserError(f"record {name}: cannot read header {hea}: {type(e).__name__}: {e}") from None
    files = [hea.name]
    for f in dict.fromkeys(header.file_name or []):
        if not (folder / f).exists():
            raise UserError(f"record {name}: signal file {folder / f} is missing")
        files.append(f)
    files.append(atr.name)
    return files


def read_sums(folder: Path) -> dict[str, str] | None:
    """``SHA256SUMS`` as {file name: hex digest}, or ``None`` when the folder has none."""
    path = folder / SUMS_FILE
    if not path.exists():
        return None
    sums = {}
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=1)
        if len(parts) != 2 or len(parts[0]) != 64:
            raise UserError(f"{path}: line {i} is not '<sha256>  <file>': {line[:60]!r}")
        sums[parts[1].strip().lstrip("*")] = parts[0].lower()
    return sums


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def file_hashes(folder: Path, names: list[str], hash_cache: Path | None = None, jobs: int = 2) -> dict[str, str]:
    """SHA-256 of each file, reusing ``hash_cache`` entries whose path, size and mtime are unchanged."""
    cache: dict = {}
    if hash_cache is not None and hash_cache.exists():
        try:
            cache = read_json(hash_cache)
            if not isinstance(cache, dict):
                cache = {}
        except (OSError, ValueError):
            cache = {}  # a damaged cache only costs a re-hash
    out: dict[str, str] = {}
    todo: list[tuple[str, Path, os.stat_result]] = []
    for n in names:
        p = (folder / n).resolve()
        st = p.stat()
        ent = cache.get(str(p))
        if isinstance(ent, dict) and ent.get("size") == st.st_size and ent.get("mtime_ns") == st.st_mtime_ns:
            out[n] = ent["sha256"]
        else:
            todo.append((n, p, st))
    if todo:
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as ex:  # hashlib releases the GIL
            digests = list(ex.map(lambda t: _sha256(t[1]), todo))
        for (n, p, st), d in zip(todo, digests):
            out[n] = d
            cache[str(p)] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": d}
        if hash_cache is not None:
            atomic_write_json(hash_cache, cache)
    return out


def verify_files(folder: Path, records: list[str], hash_cache: Path | None = None,
                 jobs: int = 2, annotator: str = "atr") -> tuple[dict[str, str], dict]:
    """Hash the files of ``records`` and check them against ``SHA256SUMS`` if present.

    Returns ``({file: sha256}, info)`` where ``info`` says whether sums were checked and which
    files they do not list. A mismatch is a :class:`UserError` naming the file.
    """
    names = [f for r in records for f in record_files(folder, r, annotator)]
    hashes = file_hashes(folder, names, hash_cache, jobs)
    sums = read_sums(folder)
    info = {"sums_file": None, "verified": 0, "unlisted": []}
    if sums is not None:
        info["sums_file"] = str(folder / SUMS_FILE)
        for n in names:
            want = sums.get(n)
            if want is None:
                info["unlisted"].append(n)
            elif want != hashes[n]:
                raise UserError(f"{folder / n}: SHA-256 mismatch with {SUMS_FILE} (expected {want[:12]}..., "
                                f"got {hashes[n][:12]}...); the file is damaged or modified, fetch it again")
            else:
                info["verified"] += 1
    return hashes, info


def resample_ratio(fs_in: float, fs_out: int) -> Fraction:
    """``fs_out / fs_in`` as a small fraction (up / down factors for ``resample_poly``)."""
    return Fraction(fs_out) / Fraction(fs_in).limit_denominator(1000)


@dataclass
class RecordData:
    """One lead of one record plus its annotations, at ``fs`` Hz.

    ``signal``: float64 [n] in mV; ``ann_sample``: int64 [m] (sorted, at ``fs``); ``ann_symbol``: str [m];
    ``ann_sample_file``: int64 [m], the same annotations' sample indices as stored in the file (at
    ``fs_original``; equal to ``ann_sample`` when no resampling happened).
    """

    name: str
    signal: np.ndarray
    fs: int
    fs_original: float
    lead: str
    lead_index: int
    sig_names: list[str]
    ann_sample: np.ndarray
    ann_symbol: np.ndarray
    notes: list[str] = field(default_factory=list)
    ann_sample_file: np.ndarray | None = None

    def __post_init__(self):
        if self.ann_sample_file is None:
            self.ann_sample_file = self.ann_sample


#: bytes per sample of the WFDB signal formats (212: two 12-bit samples in 3 bytes; 310/311: three
#: 10-bit samples in 4 bytes). Compressed formats (508, 516, 524) are not listed: their size says nothing.
FORMAT_BYTES = {"8": Fraction(1), "16": Fraction(2), "24": Fraction(3), "32": Fraction(4), "61": Fraction(2),
                "80": Fraction(1), "160": Fraction(2), "212": Fraction(3, 2), "310": Fraction(4, 3),
                "311": Fraction(4, 3)}


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0][:160]}" if text else type(e).__name__


def signal_file_samples(size: int, fmt: str, signals_per_frame: int, byte_offset: int = 0) -> int | None:
    """Complete samples per signal in a signal file of ``size`` bytes holding ``signals_per_frame``
    interleaved samples per frame in WFDB format ``fmt``; None for a format whose size is not
    fixed (compressed).

    >>> signal_file_samples(1_950_000, "212", 2), signal_file_samples(1_000_000, "212", 2)
    (650000, 333333)
    """
    per = FORMAT_BYTES.get(str(fmt))
    if per is None or signals_per_frame < 1:
        return None
    total = int(Fraction(max(size - byte_offset, 0)) / per)
    return total // signals_per_frame


def check_signal_files(folder: Path, name: str, header) -> None:
    """Each signal file of record ``name`` holds at least the samples its header (``sig_len``) claims.

    A truncated ``.dat`` or a header claiming more samples than the file holds is a one-line
    :class:`UserError` naming the record, the file and both sample counts (wfdb itself fails on
    it with a numpy broadcasting error). Checksums catch this when the folder has a
    ``SHA256SUMS`` file; a PhysioNet download has none.
    """
    if not header.sig_len:
        return
    files: dict[str, list[int]] = {}
    for k, f in enumerate(header.file_name or []):
        files.setdefault(f, []).append(k)
    for f, sigs in files.items():
        path = folder / f
        if not path.is_file():
            raise UserError(f"record {name}: signal file {path} is missing")
        spf = sum(int((header.samps_per_frame or [1] * header.n_sig)[k] or 1) for k in sigs)
        offset = int((header.byte_offset or [None] * header.n_sig)[sigs[0]] or 0)
        found = signal_file_samples(path.stat().st_size, header.fmt[sigs[0]], spf, offset)
        if found is not None and found < header.sig_len:
            raise UserError(f"record {name}: signal file {path} holds {found} samples per signal, its header "
                            f"{name}.hea says {header.sig_len}; the file is truncated or the header is wrong "
                            "(fetch the record again)")


def read_record(folder: str | os.PathLike, name: str, lead: str = "MLII", fs: int = 360, *,
                candidates: tuple[str, ...] | None = None, fallback: str = "error",
                annotator: str = "atr") -> RecordData:
    """Read lead ``lead`` (by signal name) and the ``atr`` annotations of record ``name``.

    ``candidates``: signal names standing in for ``lead``, tried in order (a database's lead map;
    default ``(lead,)``); ``fallback="first"``: a record with none of them uses its first signal
    (a note says so) instead of raising :class:`LeadMissing`; ``annotator``: the annotation file's
    extension.

    Raises :class:`LeadMissing` if the record has no such lead, :class:`UserError` for NaN
    samples, annotations outside the signal, a signal file shorter than its header says
    (:func:`check_signal_files`) or any other damaged file wfdb cannot read.

    >>> rec = read_record(find_mitdb(), "114")                      # doctest: +SKIP
    >>> rec.lead_index, rec.sig_names                               # doctest: +SKIP
    (1, ['V5', 'MLII'])
    """
    import wfdb

    folder = Path(folder)
    path = str(folder / name)
    try:
        header = wfdb.rdheader(path)
    except FileNotFoundError:
        raise UserError(f"record {name}: header file {folder / name}.hea is missing") from None
    except OSError:
        raise  # permission or I/O: the command line reports it as an operating-system error
    except Exception as e:  # noqa: BLE001 - wfdb raises many types for a damaged header
        raise UserError(f"record {name}: cannot read header {folder / name}.hea ({_first_line(e)})") from None
    names = list(header.sig_name or [])
    wanted = tuple(candidates) if candidates else (lead,)
    found = [c for c in wanted if c in names]
    lead_notes = []
    if found:
        idx = names.index(found[0])
        if found[0] != lead:
            lead_notes.append(f"record {name}: lead {lead} read from signal {found[0]!r} (the database's lead map)")
    elif fallback == "first" and names:
        idx = 0
        lead_notes.append(f"record {name}: no lead {lead} ({', '.join(wanted)}); used its first signal "
                          f"{names[0]!r} (the database's lead fallback)")
    else:
        alt = "" if wanted == (lead,) else f" nor {', '.join(w for w in wanted if w != lead)}"
        raise LeadMissing(f"record {name}: no lead {lead!r}{alt} (it has {', '.join(names)})")
    check_signal_files(folder, name, header)
    try:
        rec = wfdb.rdrecord(path, channels=[idx])
    except FileNotFoundError as e:
        raise UserError(f"record {name}: file missing: {e.filename or e}") from None
    except OSError:
        raise
    except Exception as e:  # noqa: BLE001 - wfdb's own errors on a damaged signal file are not one line
        raise UserError(f"record {name}: cannot read the signals ({_first_line(e)})") from None
    try:
        ann = wfdb.rdann(path, annotator)
    except FileNotFoundError as e:
        raise UserError(f"record {name}: file missing: {e.filename or e}") from None
    except OSError:
        raise
    except Exception as e:  # noqa: BLE001 - e.g. a truncated .atr: "cannot reshape array ..."
        raise UserError(f"record {name}: cannot read the annotations {folder / name}.{annotator} ({_first_line(e)}); "
                        "the file is damaged, fetch the record again") from None
    sig = rec.p_signal[:, 0].astype(np.float64)
    bad = np.flatnonzero(np.isnan(sig))
    if bad.size:
        raise UserError(f"record {name} lead {lead}: {bad.size} NaN (invalid) samples, first at sample {bad[0]}; "
                        "NaN samples are not supported, repair or leave out this record")
    samples = np.asarray(ann.sample, dtype=np.int64)
    symbols = np.asarray(ann.symbol, dtype=str)
    order = np.argsort(samples, kind="stable")
    samples, symbols = samples[order], symbols[order]
    if samples.size and (samples[0] < 0 or samples[-1] >= len(sig)):
        raise UserError(f"record {name}: annotation at sample {samples[0] if samples[0] < 0 else samples[-1]} "
                        f"lies outside the signal (0..{len(sig) - 1})")
    notes = lead_notes
    if idx != 0 and not lead_notes:
        notes.append(f"record {name}: lead {lead} is signal {idx} (stored order: {', '.join(names)})")
    fs_in = float(rec.fs)
    file_samples = samples
    if abs(fs_in - fs) > 1e-9:
        ratio = resample_ratio(fs_in, fs)
        from scipy.signal import resample_poly

        n_in = len(sig)
        sig = resample_poly(sig, ratio.numerator, ratio.denominator)
        samples = np.clip(np.round(samples * (fs / fs_in)).astype(np.int64), 0, len(sig) - 1)
        notes.append(f"record {name}: resampled {fs_in:g} Hz -> {fs} Hz (scipy resample_poly up={ratio.numerator} "
                     f"down={ratio.denominator}; {n_in} -> {len(sig)} samples; annotation samples rescaled)")
    return RecordData(name=name, signal=sig, fs=fs, fs_original=fs_in, lead=lead, lead_index=idx, sig_names=names,
                      ann_sample=samples, ann_symbol=symbols, notes=notes, ann_sample_file=file_samples)
