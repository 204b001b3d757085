"""The MIT-BIH beat pipeline (ecgnas.data): small generated WFDB records, and the real database."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np
import pytest
import wfdb

from ecgnas.aami import CLASSES, DS1, DS2, PUBLISHED_COUNTS
from ecgnas.data import (DEFAULT_HOLDOUT, PIPELINE_VERSION, Beats, IntraPatientWarning, PrepConfig,
                         inter_patient_split, intra_patient_split, record_folds, load_beats)
from ecgnas.data import mitdb as mitdb_mod
from ecgnas.data.preprocess import beat_windows, rr_features
from ecgnas.data.rpeaks import score_detections
from nascore.errors import UserError

from conftest import real_dataset

# windows equal the stored 360 Hz signal, one channel, the four basic RR features: easy to check exactly
RAW = PrepConfig(filter="none", fs=360, residual="none", rr_set="basic")


# --------------------------------------------------------------------------- generated records

def _ecg(n: int, fs: float, peaks, seed: int = 0) -> np.ndarray:
    """A crude ECG: a Gaussian 'QRS' at every peak on a slow baseline, plus a little noise."""
    t = np.arange(n)
    rng = np.random.default_rng(seed)
    sig = 0.1 * np.sin(2 * np.pi * 0.3 * t / fs) + 0.01 * rng.standard_normal(n)
    for p in peaks:
        sig += 1.5 * np.exp(-0.5 * ((t - p) / (0.01 * fs)) ** 2)
    return sig


def write_record(folder: Path, name: str, samples, symbols, *, fs: float = 360, seconds: float = 20,
                 leads=("MLII", "V1"), nan_at: int | None = None, seed: int = 0) -> np.ndarray:
    """Write a two-lead WFDB record + .atr into ``folder``; returns the [n, 2] physical signal written."""
    n = int(seconds * fs)
    beat_like = [s for s, sym in zip(samples, symbols) if sym not in "+~x|"]
    a = _ecg(n, fs, beat_like, seed)
    b = -0.5 * a + 0.2  # the other lead: clearly different values
    sig = np.stack([a, b], axis=1) if leads[0] == "MLII" or "MLII" not in leads else np.stack([b, a], axis=1)
    if nan_at is not None:
        sig[nan_at, list(leads).index("MLII") if "MLII" in leads else 0] = np.nan
    wfdb.wrsamp(name, fs=fs, units=["mV", "mV"], sig_name=list(leads), p_signal=sig, fmt=["16", "16"],
                write_dir=str(folder))
    wfdb.wrann(name, "atr", np.asarray(samples, dtype=np.int64), np.asarray(symbols), fs=fs, write_dir=str(folder))
    return wfdb.rdrecord(str(folder / name)).p_signal


def regular_beats(n_samples: int, fs: float, symbols: str, start: float = 0.5):
    step = int(0.8 * fs)
    samples = [int(start * fs) + i * step for i in range(len(symbols))]
    assert samples[-1] < n_samples
    return samples, list(symbols)


def write_sums(folder: Path) -> None:
    lines = [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}" for p in sorted(folder.iterdir())
             if p.suffix in (".hea", ".dat", ".atr")]
    (folder / "SHA256SUMS").write_text("\n".join(lines) + "\n")


@pytest.fixture
def small_db(tmp_path) -> Path:
    """Records 101 (DS1), 114 (DS1, leads stored V5, MLII) and 100 (DS2), with SHA256SUMS."""
    db = tmp_path / "mitdb"
    db.mkdir()
    # 101: a beat 5 samples after the start and 3 before the end (padding), unmapped '+' and 'x'
    fs, n = 360, 20 * 360
    samples = [5, 300, 500, 700, 900, 1100, 2000, 2400, 2800, 3200, 3600, 4000, n - 3]
    symbols = ["N", "+", "N", "V", "A", "x", "F", "Q", "N", "L", "/", "+", "N"]
    write_record(db, "101", samples, symbols, fs=fs)
    s114, y114 = regular_beats(n, fs, "NNVNNSNNNNNNNNNNNNVN")
    write_record(db, "114", s114, y114, leads=("V5", "MLII"), seed=1)
    s100, y100 = regular_beats(n, fs, "NNNNANNNNNNVNNNNNNNN")
    write_record(db, "100", s100, y100, seed=2)
    (db / "RECORDS").write_text("100\n101\n114\n")
    write_sums(db)
    return db


# --------------------------------------------------------------------------- reading and windows

def test_labels_unmapped_symbols_and_edge_padding(small_db, tmp_path):
    beats = load_beats(small_db, RAW, cache_dir=tmp_path / "c", progress=False)
    m = beats.record == "101"
    # every mapped annotation is a beat, including the ones 5 samples from the start and 3 from the end
    assert beats.sample[m].tolist() == [5, 500, 700, 900, 2000, 2400, 2800, 3200, 3600, 20 * 360 - 3]
    assert [CLASSES[i] for i in beats.y[m]] == ["N", "N", "V", "S", "F", "Q", "N", "N", "Q", "N"]
    assert beats.report["skipped_symbols"] == {"+": 2, "x": 1}
    assert beats.report["per_record"]["101"] == {"N": 5, "S": 1, "V": 1, "F": 1, "Q": 2}
    assert beats.x.shape[1] == 252 and beats.x.dtype == np.float32 and beats.rr.shape == (len(beats), 4)
    sig = wfdb.rdrecord(str(small_db / "101")).p_signal[:, 0]
    first, last = beats.x[m][0], beats.x[m][-1]
    # window [r-90, r+162): r=5 needs 85 samples of left padding = the first sample repeated
    np.testing.assert_allclose(first[:85], sig[0], rtol=1e-6)
    np.testing.assert_allclose(first[85:], sig[:167], rtol=1e-6)
    assert first[90] == pytest.approx(sig[5], rel=1e-6)  # the R peak sits at index `before`
    # r = n-3: 3 real samples after the peak, then the last sample repeated
    np.testing.assert_allclose(last[:93], sig[-93:], rtol=1e-6)
    np.testing.assert_allclose(last[93:], sig[-1], rtol=1e-6)
    assert beats.report["padded_windows"] == 2  # the two edge beats of 101; the other records start later


def test_zero_padding_and_window_parameters():
    sig = np.arange(1.0, 101.0)
    x = beat_windows(sig, np.array([2, 98]), before=5, after=4, pad="zero")
    assert x.tolist() == [[0, 0, 0, 1, 2, 3, 4, 5, 6], [94, 95, 96, 97, 98, 99, 100, 0, 0]]
    assert PrepConfig(before_s=0.1, after_s=0.3, fs=250).window_samples() == (25, 75)


def test_lead_chosen_by_name_when_stored_second(small_db, tmp_path):
    beats = load_beats(small_db, RAW, cache_dir=tmp_path / "c", progress=False)
    raw = wfdb.rdrecord(str(small_db / "114")).p_signal
    m = beats.record == "114"
    peaks = beats.sample[m]
    np.testing.assert_allclose(beats.x[m][:, 90], raw[peaks, 1], rtol=1e-6)  # MLII = stored channel 1
    assert not np.allclose(beats.x[m][:, 90], raw[peaks, 0])
    assert any("114" in n and "signal 1" in n for n in beats.report["notes"])
    rec = mitdb_mod.read_record(small_db, "114")
    assert rec.lead_index == 1 and rec.sig_names == ["V5", "MLII"]


def test_missing_lead_is_error_by_default_and_counted_skip_on_request(small_db, tmp_path):
    s, y = regular_beats(20 * 360, 360, "NNNNNNNN")
    write_record(small_db, "103", s, y, leads=("V1", "V2"))
    (small_db / "RECORDS").write_text("100\n101\n103\n114\n")
    with pytest.raises(UserError, match=r"record 103: no lead 'MLII' \(it has V1, V2\).*missing-lead skip"):
        load_beats(small_db, RAW, cache_dir=tmp_path / "c", progress=False, jobs=1)
    beats = load_beats(small_db, PrepConfig(filter="none", missing_lead="skip"), cache_dir=tmp_path / "c",
                       progress=False, jobs=1)
    assert "103" in beats.report["skipped_records"] and "103" not in set(beats.record)
    assert beats.records() == ["100", "101", "114"]


def test_nan_sample_is_an_error_naming_the_record(tmp_path):
    db = tmp_path / "db"
    db.mkdir()
    s, y = regular_beats(20 * 360, 360, "NNNNNNNN")
    write_record(db, "200", s, y, nan_at=1234)
    with pytest.raises(UserError, match=r"record 200 lead MLII: 1 NaN .*first at sample 1234"):
        load_beats(db, RAW, cache_dir=tmp_path / "c", progress=False)


def test_other_sampling_rate_is_resampled_to_360(tmp_path):
    db = tmp_path / "db"
    db.mkdir()
    s, y = regular_beats(20 * 250, 250, "NNVNNNNNNNNNNNN")
    write_record(db, "201", s, y, fs=250)
    beats = load_beats(db, RAW, cache_dir=tmp_path / "c", progress=False)
    assert beats.fs == 360 and beats.x.shape == (15, 252)
    # `sample` stays the annotation's index in the record's own files (250 Hz), so predictions.csv
    # lines up with the .atr file; the windows are cut around the rescaled peaks
    np.testing.assert_array_equal(beats.sample, s)
    assert any("resampled 250 Hz -> 360 Hz" in n for n in beats.report["notes"])
    # the QRS bump (1.5 mV Gaussian) is still at the rescaled peak after resampling
    assert (beats.x[:, 90] > 1.3).all()
    # RR features in seconds are unchanged by the rate: 0.8 s between beats
    raw = load_beats(db, PrepConfig(filter="none", rr_norm="none"), cache_dir=tmp_path / "c", progress=False)
    np.testing.assert_allclose(raw.rr[:, :3], 0.8, atol=1 / 360)


def test_record_without_annotations_points_to_the_detector(tmp_path):
    db = tmp_path / "db"
    db.mkdir()
    s, y = regular_beats(20 * 360, 360, "NNNN")
    write_record(db, "205", s, y)
    (db / "205.atr").unlink()
    with pytest.raises(UserError, match=r"205.atr is missing.*unlabelled_beats"):
        load_beats(db, RAW, cache_dir=tmp_path / "c", progress=False)


# --------------------------------------------------------------------------- checksums and cache

def test_checksum_mismatch_and_missing_file_are_named(small_db, tmp_path):
    sums = (small_db / "SHA256SUMS").read_text().replace(
        hashlib.sha256((small_db / "114.atr").read_bytes()).hexdigest(), "0" * 64)
    (small_db / "SHA256SUMS").write_text(sums)
    with pytest.raises(UserError, match=r"114\.atr: SHA-256 mismatch"):
        load_beats(small_db, RAW, cache_dir=tmp_path / "c", progress=False)
    write_sums(small_db)
    (small_db / "100.dat").unlink()
    with pytest.raises(UserError, match=r"record 100: signal file .*100\.dat is missing"):
        load_beats(small_db, RAW, cache_dir=tmp_path / "c", progress=False)


def test_hashes_are_cached_by_size_and_mtime(small_db, tmp_path, monkeypatch):
    calls = []
    real = mitdb_mod._sha256
    monkeypatch.setattr(mitdb_mod, "_sha256", lambda p: calls.append(p.name) or real(p))
    b1 = load_beats(small_db, RAW, cache_dir=tmp_path / "c", progress=False)
    assert sorted(calls) == sorted(f"{r}.{e}" for r in ("100", "101", "114") for e in ("hea", "dat", "atr"))
    assert b1.report["checksums"]["verified"] == 9
    calls.clear()
    b2 = load_beats(small_db, RAW, cache_dir=tmp_path / "c", progress=False)
    assert calls == [] and b2.report["cache"]["hit"]
    # new content in one file: only that file is hashed again, and the beats cache misses
    s, y = regular_beats(20 * 360, 360, "NNNNANNNNNNVNNNNNNNV")
    write_record(small_db, "100", s, y, seed=2)
    write_sums(small_db)
    calls.clear()
    b3 = load_beats(small_db, RAW, cache_dir=tmp_path / "c", progress=False)
    assert sorted(calls) == ["100.atr", "100.dat", "100.hea"]
    assert not b3.report["cache"]["hit"] and b3.report["per_record"]["100"]["V"] == 2


def test_cache_hit_returns_identical_beats_and_any_changed_parameter_misses(small_db, tmp_path):
    cdir = tmp_path / "c"
    cold = load_beats(small_db, PrepConfig(), cache_dir=cdir, progress=False)
    warm = load_beats(small_db, PrepConfig(), cache_dir=cdir, progress=False)
    assert not cold.report["cache"]["hit"] and warm.report["cache"]["hit"]
    for name in ("x", "rr", "y", "record", "sample"):
        np.testing.assert_array_equal(getattr(cold, name), getattr(warm, name))
    assert warm.x.dtype == np.float32 and warm.y.dtype == np.int64 and warm.record.dtype.kind == "U"
    for changed in (PrepConfig(after_s=0.5), PrepConfig(filter="bandpass"), PrepConfig(lowpass_hz=30.0),
                    PrepConfig(local_rr_beats=5), PrepConfig(beat_norm="zscore"), PrepConfig(residual="none"),
                    PrepConfig(rr_set="basic"), PrepConfig(fs=360)):
        b = load_beats(small_db, changed, cache_dir=cdir, progress=False)
        assert not b.report["cache"]["hit"], changed
        assert b.report["cache"]["key"] != cold.report["cache"]["key"]
    assert load_beats(small_db, PrepConfig(after_s=0.5), cache_dir=cdir, progress=False).window == 45 + 90
    # a damaged entry (manifest gone) is rebuilt, not trusted
    entry = Path(cold.report["cache"]["dir"])
    (entry / "manifest.json").unlink()
    again = load_beats(small_db, PrepConfig(), cache_dir=cdir, progress=False)
    assert not again.report["cache"]["hit"]
    np.testing.assert_array_equal(again.x, cold.x)


def test_pipeline_version_is_part_of_the_key():
    from ecgnas.data.cache import cache_key

    cfg, bumped = PrepConfig(), PrepConfig()
    assert cfg.version == PIPELINE_VERSION and cfg.key() == bumped.key()
    object.__setattr__(bumped, "version", PIPELINE_VERSION + "-next")  # what a code change would do
    assert cfg.key() != bumped.key() and cache_key(cfg, {"a": "1"}) != cache_key(bumped, {"a": "1"})


def test_parallel_preparation_equals_serial(small_db, tmp_path):
    s, y = regular_beats(20 * 360, 360, "NNNVNNNNSNNN")
    write_record(small_db, "105", s, y, seed=5)
    serial = load_beats(small_db, PrepConfig(), cache_dir=tmp_path / "a", progress=False, jobs=1)
    par = load_beats(small_db, PrepConfig(), cache_dir=tmp_path / "b", progress=False, jobs=2)
    assert par.report["workers"] == 2
    for name in ("x", "rr", "y", "record", "sample"):
        np.testing.assert_array_equal(getattr(serial, name), getattr(par, name))


# --------------------------------------------------------------------------- features

def test_rr_features_definitions():
    fs = 100
    peaks = np.array([0, 100, 200, 250, 400, 500])  # RR = 1, 1, 0.5, 1.5, 1 s; mean 1.0
    rr = rr_features(peaks, fs, local_rr_beats=3, rr_norm="none")
    np.testing.assert_allclose(rr[:, 0], [1, 1, 1, 0.5, 1.5, 1])   # pre (first beat copies its next)
    np.testing.assert_allclose(rr[:, 1], [1, 1, 0.5, 1.5, 1, 1])   # post (last beat copies its previous)
    np.testing.assert_allclose(rr[:, 2], [1, 1, 2.5 / 3, 1, 1, 1.25], rtol=1e-6)  # mean of pre over i-1..i+1
    np.testing.assert_allclose(rr[:, 3], 1.0)
    peaks2 = peaks * 2  # same rhythm, half the heart rate
    norm = rr_features(peaks2, fs, local_rr_beats=3)
    np.testing.assert_allclose(norm[:, :3], rr[:, :3], rtol=1e-6)  # normalised columns do not see the rate
    np.testing.assert_allclose(norm[:, 3], 2.0)
    with pytest.raises(UserError, match="at least 2 beats"):
        rr_features(np.array([5]), fs)


def test_bad_parameters_are_one_line_errors():
    with pytest.raises(UserError, match="rr_norm: unknown value 'x'"):
        PrepConfig(rr_norm="x")
    with pytest.raises(UserError, match="bandpass_hz"):
        PrepConfig(bandpass_hz=(40, 0.5))
    with pytest.raises(UserError, match="window"):
        PrepConfig(before_s=-0.1)


# --------------------------------------------------------------------------- splits

def _toy_beats(per_record: dict[str, str]) -> Beats:
    recs, ys = [], []
    for r, labels in per_record.items():
        recs += [r] * len(labels)
        ys += [CLASSES.index(c) for c in labels]
    n = len(ys)
    return Beats(x=np.zeros((n, 8), np.float32), rr=np.zeros((n, 4), np.float32), y=np.array(ys),
                 record=np.array(recs), sample=np.arange(n), fs=360)


def test_inter_patient_split_keeps_patients_apart_and_ds2_for_test():
    b = _toy_beats({"101": "NNNS", "114": "NVNF", "201": "NSVN", "100": "NNNV", "203": "NN", "999": "NN"})
    sp = inter_patient_split(b, holdout=("114", "201"))
    assert set(b.record[sp["train"]]) == {"101", "203"}
    assert set(b.record[sp["val"]]) == {"114", "201"}
    assert set(b.record[sp["test"]]) == {"100"}
    assert set(b.record[sp["train"]]).isdisjoint(DS2) and set(b.record[sp["val"]]) <= set(DS1)
    default = inter_patient_split(b)  # DEFAULT_HOLDOUT holds 114 and 201 among others
    assert set(b.record[default["val"]]) == {"114", "201"} and set(DEFAULT_HOLDOUT) <= set(DS1)
    with pytest.raises(UserError, match="holdout: 100 not in DS1"):
        inter_patient_split(b, holdout=("100",))
    with pytest.raises(UserError, match="'train' split is empty"):
        inter_patient_split(b, holdout=("101", "114", "201", "203"))
    with pytest.raises(UserError, match="'test' split is empty"):
        inter_patient_split(_toy_beats({"101": "NN", "114": "NN"}), holdout=("114",))


def test_record_folds_partition_ds1_by_whole_records():
    b = _toy_beats({"101": "NNSS", "106": "NVNN", "108": "NS", "109": "NNNN", "112": "SN", "100": "NNNS"})
    folds = record_folds(b, 3)
    assert len(folds) == 3 and all(len(f) for f in folds)
    allidx = np.concatenate(folds)
    assert sorted(allidx.tolist()) == np.flatnonzero(b.record != "100").tolist()  # DS1 only, each beat once
    recs = [set(b.record[f]) for f in folds]
    assert all(recs[i].isdisjoint(recs[j]) for i in range(3) for j in range(i + 1, 3))  # whole records
    assert [f.tolist() for f in record_folds(b, 3)] == [f.tolist() for f in folds]  # deterministic
    with pytest.raises(UserError, match="folds: 6 folds need at least 6 records, 5"):
        record_folds(b, 6)
    with pytest.raises(UserError, match="folds: need an integer >= 2"):
        record_folds(b, 1)


def test_intra_patient_split_is_stratified_seeded_and_warns():
    rng = np.random.default_rng(0)
    labels = "".join(rng.choice(list("NNNNNNNNSV"), size=1000))
    b = _toy_beats({"100": labels[:500], "101": labels[500:]})
    with pytest.warns(IntraPatientWarning, match="optimistic"):
        sp = intra_patient_split(b, seed=3)
    allidx = np.concatenate([sp["train"], sp["val"], sp["test"]])
    assert sorted(allidx.tolist()) == list(range(1000))
    assert [len(sp[k]) for k in ("train", "val", "test")] == [700, 100, 200]
    for k in ("train", "val", "test"):  # each part keeps the class proportions (stratified)
        frac_v = (b.y[sp[k]] == CLASSES.index("V")).mean()
        assert abs(frac_v - (b.y == CLASSES.index("V")).mean()) < 0.01
    with pytest.warns(IntraPatientWarning):
        same = intra_patient_split(b, seed=3)
        other = intra_patient_split(b, seed=4)
    assert np.array_equal(same["test"], sp["test"]) and not np.array_equal(other["test"], sp["test"])
    with pytest.warns(IntraPatientWarning), pytest.raises(UserError, match="fractions"):
        intra_patient_split(b, fractions=(0.5, 0.5, 0.5))


# --------------------------------------------------------------------------- R-peak detector

def test_score_detections_counts_matches_within_tolerance():
    ref = np.array([1000, 2000, 3000, 4000])
    det = np.array([1054, 1990, 3055, 3999, 5000])  # 54 samples = 150 ms at 360 Hz is in, 55 is out
    s = score_detections(ref, det, fs=360, tolerance_s=0.15)
    assert (s["tp"], s["fn"], s["fp"]) == (3, 1, 2)
    assert s["se"] == pytest.approx(0.75) and s["ppv"] == pytest.approx(0.6)
    assert score_detections(ref, np.array([], dtype=int), 360)["se"] == 0.0


def test_detector_finds_simulated_beats():
    import neurokit2 as nk

    from ecgnas.data.rpeaks import detect_rpeaks, unlabelled_beats

    ecg = nk.ecg_simulate(duration=30, sampling_rate=360, heart_rate=75, random_state=1)
    peaks = detect_rpeaks(ecg, 360)
    assert 35 <= len(peaks) <= 40  # 75 bpm over 30 s
    rr = np.diff(peaks) / 360
    assert np.median(rr) == pytest.approx(0.8, abs=0.05)
    out = unlabelled_beats(ecg, 360, RAW)
    assert out["x"].shape == (len(peaks), 252) and out["rr"].shape == (len(peaks), 4)
    out = unlabelled_beats(ecg, 360, PrepConfig(fs=360))  # the default inputs: residual channel, 5 RR features
    assert out["x"].shape == (len(peaks), 2, 252) and out["rr"].shape == (len(peaks), 5)
    with pytest.raises(UserError, match="resample it first"):
        unlabelled_beats(ecg, 360)  # the default config works at 180 Hz
    with pytest.raises(UserError, match="NaN"):
        detect_rpeaks(np.full(3600, np.nan), 360)


# --------------------------------------------------------------------------- command line

def test_prepare_cli_on_generated_records(small_db, tmp_path, capsys):
    from ecgnas.cli import main

    out = tmp_path / "out"
    rc = main(["prepare", "--data", str(small_db), "--output", str(out), "--cache", str(tmp_path / "c"),
               "--no-progress", "--holdout", "114", "--window", "0.2,0.3"])
    assert rc == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["DS1"] == {"N": 5 + 17, "S": 1 + 1, "V": 1 + 2, "F": 1, "Q": 2}
    assert s["DS2"] == {"N": 18, "S": 1, "V": 1, "F": 0, "Q": 0}
    assert s["inter_patient"]["val"] == {"N": 17, "S": 1, "V": 2, "F": 0, "Q": 0}
    assert s["skipped_symbols"] == {"+": 2, "x": 1} and s["window_length"] == 36 + 54  # 0.2 s + 0.3 s at 180 Hz
    assert s["input_shape"] == {"in_channels": 2, "window": 90, "n_rr": 5}
    assert s["cache"]["hit"] is False and s["parameters"]["before_s"] == 0.2


def test_prepare_cli_errors_are_one_line(tmp_path, capsys, monkeypatch):
    from ecgnas.cli import main

    monkeypatch.delenv("NASCORE_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert main(["prepare", "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "mitdb data not found" in err and "dl_database" in err
    assert main(["prepare", "--output", str(tmp_path / "o"), "--window", "0.25"]) == 2
    assert "--window: cannot read '0.25'" in capsys.readouterr().err
    assert main(["prepare", "--output", str(tmp_path / "o"), "--holdout", "100"]) == 2
    assert "--holdout: 100 not in DS1" in capsys.readouterr().err
    assert not (tmp_path / "o" / "summary.json").exists()


# --------------------------------------------------------------------------- real MIT-BIH

@pytest.fixture(scope="module")
def real_prepared(tmp_path_factory):
    """One cold `ecgnas prepare` over the real database into a fresh cache (once per module)."""
    from ecgnas.cli import main

    db = real_dataset("mitdb", "100.hea")
    cache = tmp_path_factory.mktemp("beats-cache")
    out = tmp_path_factory.mktemp("prep-out")
    t = time.perf_counter()
    assert main(["prepare", "--data", str(db), "--output", str(out), "--cache", str(cache), "--no-progress"]) == 0
    cold = time.perf_counter() - t
    return db, cache, json.loads((out / "summary.json").read_text()), cold


@pytest.mark.realdata
def test_real_summary_matches_published_counts(real_prepared):
    _, _, s, cold = real_prepared
    assert s["DS1"] == PUBLISHED_COUNTS["DS1"] and s["DS2"] == PUBLISHED_COUNTS["DS2"]
    assert list(s["DS1"]) == list(CLASSES) and s["matches_published_counts"] == {"DS1": True, "DS2": True}
    assert set(s["skipped_records"]) == {"102", "104", "107", "217"}
    assert s["checksums"]["verified"] == 44 * 3 and s["checksums"]["unlisted"] == []
    assert s["cache"]["hit"] is False and cold < 60  # goal: < 30 s on 2 idle cores


@pytest.mark.realdata
def test_real_warm_load_and_default_holdout(real_prepared):
    db, cache, s, _ = real_prepared
    t = time.perf_counter()
    beats = load_beats(db, PrepConfig(), cache_dir=cache, progress=False)
    warm = time.perf_counter() - t
    assert beats.report["cache"]["hit"] and warm < 2.0
    assert beats.x.shape == (sum(PUBLISHED_COUNTS["DS1"].values()) + sum(PUBLISHED_COUNTS["DS2"].values()), 2, 126)
    assert np.isfinite(beats.x).all() and np.isfinite(beats.rr).all()
    split = inter_patient_split(beats)
    assert beats.class_counts(split["test"]) == PUBLISHED_COUNTS["DS2"]
    val = beats.class_counts(split["val"])
    ds1_total = sum(PUBLISHED_COUNTS["DS1"].values())
    assert 0.20 <= len(split["val"]) / ds1_total <= 0.25
    assert val["S"] >= 100 and val["V"] >= 300 and val["F"] >= 20
    assert s["inter_patient"]["val"] == val


@pytest.mark.realdata
def test_real_record_folds_cover_ds1_with_ectopic_beats_in_every_fold(real_prepared):
    db, cache, _, _ = real_prepared
    beats = load_beats(db, PrepConfig(), cache_dir=cache, progress=False)
    folds = record_folds(beats, 4)
    assert sum(len(f) for f in folds) == sum(PUBLISHED_COUNTS["DS1"].values())
    assert set().union(*(set(beats.record[f]) for f in folds)) == set(DS1)
    for f in folds:
        c = beats.class_counts(f)
        assert c["S"] >= 100 and c["V"] >= 300 and 0.1 <= len(f) / len(np.concatenate(folds)) <= 0.4


@pytest.mark.realdata
def test_real_record_114_uses_mlii_stored_second(real_prepared):
    db, _, s, _ = real_prepared
    rec = mitdb_mod.read_record(db, "114")
    assert rec.sig_names == ["V5", "MLII"] and rec.lead_index == 1
    raw = wfdb.rdrecord(str(db / "114")).p_signal
    np.testing.assert_array_equal(rec.signal, raw[:, 1])
    assert any("114" in n for n in s["notes"])
    assert all(mitdb_mod.read_record(db, r).lead_index == 0 for r in ("100", "101", "234"))


def test_download_failure_is_one_line(tmp_path, monkeypatch, capsys):
    from ecgnas.cli import main

    def offline(db, dl_dir, **kw):
        raise ConnectionError("Max retries exceeded with url: /mitdb/RECORDS\n(more lines)")

    monkeypatch.setattr(wfdb, "dl_database", offline)
    assert main(["prepare", "--download", "--data", str(tmp_path / "dl"), "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [f"ecgnas: error: downloading mitdb from PhysioNet into {tmp_path / 'dl'} failed: "
                                "ConnectionError: Max retries exceeded with url: /mitdb/RECORDS"]


def test_config_round_trips_through_json():
    cfg = PrepConfig(records=["100", "101"], bandpass_hz=[1, 30], after_s=0.5)
    d = json.loads(json.dumps(cfg.to_dict()))
    assert d["version"] == PIPELINE_VERSION
    back = PrepConfig(**{k: v for k, v in d.items() if k != "version"})
    assert back == cfg and back.key() == cfg.key() and back.records == ("100", "101")


def _load_in_worker(args):
    folder, cache = args
    beats = load_beats(Path(folder), RAW, cache_dir=Path(cache), progress=False, jobs=2)
    return beats.x.shape, beats.y.tolist()


def test_load_beats_inside_a_pool_worker_prepares_serially(small_db, tmp_path):
    """A benchmark's parallel job (a daemonic pool worker) cannot start the record-preparation
    pool; with a cold cache it prepares the records in its own process instead of failing."""
    import multiprocessing

    with multiprocessing.get_context("fork").Pool(1) as pool:
        shape, y = pool.map(_load_in_worker, [(str(small_db), str(tmp_path / "c"))])[0]
    here = load_beats(small_db, RAW, cache_dir=tmp_path / "c2", progress=False, jobs=1)
    assert shape == here.x.shape and y == here.y.tolist()
