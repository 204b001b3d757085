"""Operating-system errors at the command line: one line naming the path and the reason, exit 3,
and a rerun resumes (nascore.oserror)."""

from __future__ import annotations

import errno
import json
import os
import shutil

import pytest

from ecgnas.cli import main as ecgnas_main
from nascore.cli import main as nascore_main
from nascore.io import read_jsonl
from nascore.oserror import EXIT_OS_ERROR, os_error_line

from conftest import real_dataset


def _search(table, out, budget="30"):
    return ["search", "--space", "nb201", "--strategy", "random", "--budget", budget, "--seeds", "0", "--quiet",
            "--data", str(table.parent), "--output", str(out)]


def _run(main, argv, capsys):
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def test_output_below_a_file_is_one_line_exit_3(synthetic_nb201_table, tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    rc, _, err = _run(nascore_main, _search(synthetic_nb201_table, tmp_path / "afile" / "o"), capsys)
    assert rc == EXIT_OS_ERROR == 3 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("nascore: error: ") and "Not a directory (ENOTDIR)" in err
    assert f"{tmp_path / 'afile'} is a file, not a folder" in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_read_only_output_folder_is_one_line_exit_3(synthetic_nb201_table, tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        rc, _, err = _run(nascore_main, _search(synthetic_nb201_table, ro / "o"), capsys)
    finally:
        ro.chmod(0o755)
    assert rc == 3 and err.count("\n") == 1 and str(ro / "o") in err and "Permission denied (EACCES)" in err


def test_permission_denied_is_one_line_exit_3_also_as_root(synthetic_nb201_table, tmp_path, monkeypatch, capsys):
    # the read-only-folder case where the test above is skipped: mkdir below `ro` fails as the kernel would
    ro, real_mkdir = tmp_path / "ro", os.mkdir

    def mkdir(path, *a, **kw):
        if str(path).startswith(str(ro)):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real_mkdir(path, *a, **kw)

    monkeypatch.setattr(os, "mkdir", mkdir)
    rc, _, err = _run(nascore_main, _search(synthetic_nb201_table, ro / "o"), capsys)
    assert rc == 3 and err.count("\n") == 1 and "Permission denied (EACCES); check the permissions" in err
    assert str(ro) in err


@pytest.mark.parametrize("code,needle", [(errno.ENOSPC, "No space left on device (ENOSPC); free some space"),
                                         (errno.EROFS, "Read-only file system (EROFS)")])
def test_disk_full_or_read_only_mid_run_is_one_line_and_a_rerun_resumes(code, needle, synthetic_nb201_table,
                                                                        tmp_path, monkeypatch, capsys):
    assert _run(nascore_main, _search(synthetic_nb201_table, tmp_path / "full"), capsys)[0] == 0
    real_fsync, calls = os.fsync, []

    def failing_fsync(fd):
        calls.append(fd)
        if len(calls) == 6:          # a few evaluations in: the disk fills up / is remounted read-only
            raise OSError(code, os.strerror(code))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", failing_fsync)
    out = tmp_path / "o"
    rc, _, err = _run(nascore_main, _search(synthetic_nb201_table, out), capsys)
    assert rc == 3 and err.count("\n") == 1 and "Traceback" not in err and needle in err
    assert str(out) in err                       # the file being written (write/fsync errors carry no name)
    assert "run the same command again to resume" in err or code == errno.EROFS
    monkeypatch.setattr(os, "fsync", real_fsync)
    rc, _, _ = _run(nascore_main, _search(synthetic_nb201_table, out), capsys)
    assert rc == 0
    hist = [h["arch"] for h in read_jsonl(out / "seed-0000" / "history.jsonl")]
    assert hist == [h["arch"] for h in read_jsonl(tmp_path / "full" / "seed-0000" / "history.jsonl")]
    best = json.loads((out / "seed-0000" / "result.json").read_text())["best"]
    assert best == json.loads((tmp_path / "full" / "seed-0000" / "result.json").read_text())["best"]


def test_os_error_line_names_both_paths_of_a_rename_and_falls_back_to_output():
    e = OSError(errno.EXDEV, os.strerror(errno.EXDEV), "/a/x.tmp", None, "/b/x")
    assert os_error_line(e) == f"/a/x.tmp -> /b/x: {os.strerror(errno.EXDEV)} (EXDEV)"
    assert os_error_line(OSError(errno.EIO, "Input/output error"), "runs/o").startswith(
        "runs/o: Input/output error (EIO); the disk reported an I/O error")


@pytest.mark.realdata
def test_ecgnas_output_that_is_a_file_is_one_line_exit_3(tmp_path, capsys, monkeypatch):
    src = real_dataset("mitdb", "101.hea")
    db = tmp_path / "db"
    db.mkdir()
    for ext in ("hea", "dat", "atr"):
        shutil.copy(src / f"101.{ext}", db)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    (tmp_path / "afile").write_text("x")
    args = ["prepare", "--data", str(db), "--records", "101", "--cache", str(tmp_path / "c"), "--no-progress"]
    rc, _, err = _run(ecgnas_main, args + ["--output", str(tmp_path / "afile")], capsys)
    assert rc == 3 and err.count("\n") == 1 and err.startswith("ecgnas: error: ")
    assert f"{tmp_path / 'afile'} is a file, not a folder" in err
    rc, _, _ = _run(ecgnas_main, args + ["--output", str(tmp_path / "o")], capsys)   # the cache was kept: warm
    assert rc == 0 and json.loads((tmp_path / "o" / "summary.json").read_text())["cache"]["hit"] is True
