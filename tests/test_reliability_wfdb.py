"""A structurally broken WFDB record (truncated signal file, header claiming more samples, damaged
annotations) is one line naming the record and what is wrong, exit 2 -- also without SHA256SUMS."""

from __future__ import annotations

import shutil

import pytest

from ecgnas.cli import main as ecgnas_main
from ecgnas.data.mitdb import signal_file_samples

from conftest import real_dataset


def test_signal_file_samples_per_format():
    assert signal_file_samples(1_950_000, "212", 2) == 650_000        # MIT-BIH: 2 signals, 12 bits packed
    assert signal_file_samples(1_949_999, "212", 2) == 649_999
    assert signal_file_samples(4000, "16", 2) == 1000
    assert signal_file_samples(4010, "16", 2, byte_offset=10) == 1000
    assert signal_file_samples(400, "310", 3) == 100                  # 3 samples in 4 bytes
    assert signal_file_samples(400, "516", 1) is None                 # compressed: size says nothing


def _copy(tmp_path, names=("100", "101")):
    """Copies of real records in a folder with no SHA256SUMS (like a PhysioNet download)."""
    src = real_dataset("mitdb", "100.hea")
    db = tmp_path / "db"
    db.mkdir()
    for n in names:
        for ext in ("hea", "dat", "atr"):
            shutil.copy(src / f"{n}.{ext}", db)
            (db / f"{n}.{ext}").chmod(0o644)
    return db


def _prepare(db, tmp_path, capsys, records="100"):
    rc = ecgnas_main(["prepare", "--data", str(db), "--records", records, "--output", str(tmp_path / "o"),
                      "--cache", str(tmp_path / "cache"), "--no-progress"])
    return rc, capsys.readouterr().err


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))


@pytest.mark.realdata
def test_truncated_signal_file_is_one_line_exit_2(tmp_path, capsys):
    db = _copy(tmp_path)
    with open(db / "100.dat", "r+b") as f:
        f.truncate(1_000_000)
    rc, err = _prepare(db, tmp_path, capsys, "100,101")
    assert rc == 2 and err.count("\n") == 1 and "Traceback" not in err and "broadcast" not in err
    assert "record 100:" in err and "holds 333333 samples per signal" in err and "says 650000" in err
    assert not (tmp_path / "o" / "summary.json").exists()


@pytest.mark.realdata
def test_header_claiming_more_samples_is_one_line_exit_2(tmp_path, capsys):
    db = _copy(tmp_path)
    hea = db / "100.hea"
    hea.write_text(hea.read_text().replace("100 2 360 650000", "100 2 360 700000", 1))
    rc, err = _prepare(db, tmp_path, capsys)
    assert rc == 2 and err.count("\n") == 1
    assert "record 100:" in err and "holds 650000 samples per signal" in err and "says 700000" in err


@pytest.mark.realdata
def test_damaged_annotation_file_is_one_line_exit_2(tmp_path, capsys):
    db = _copy(tmp_path)
    with open(db / "100.atr", "r+b") as f:
        f.truncate(2001)                        # an odd byte count: wfdb fails reshaping it
    rc, err = _prepare(db, tmp_path, capsys)
    assert rc == 2 and err.count("\n") == 1 and "record 100: cannot read the annotations" in err


@pytest.mark.realdata
def test_train_on_a_truncated_record_is_one_line_exit_2(tmp_path, capsys):
    db = _copy(tmp_path)
    with open(db / "101.dat", "r+b") as f:
        f.truncate(1_500_000)
    rc = ecgnas_main(["train", "--model", "linear", "--data", str(db), "--output", str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "record 101:" in err and "holds 500000 samples per signal" in err


@pytest.mark.realdata
def test_an_intact_copy_still_prepares(tmp_path, capsys):
    db = _copy(tmp_path, ("100",))
    rc, err = _prepare(db, tmp_path, capsys)
    assert rc == 0 and (tmp_path / "o" / "summary.json").exists()
