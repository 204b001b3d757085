"""Issue 16 (2) and (6): one writer per run folder, unique temporary names, and nothing written
by a refused command.

A second *process* is used throughout (``subprocess``): the lock is an OS file lock, which is
what stops two ``nascore search`` / ``ecgnas search`` commands started on one folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from ecg_fakes import install_fake_loader
from nascore.cli import main as nascore_main
from nascore.errors import UserError
from nascore.evaluation import Result
from nascore.io import read_jsonl
from nascore.lock import LOCK_FILE, PID_FILE, folder_lock, holder_pid, write_lock
from nascore.report import plot_curves
from nascore.run import Budget, run_search
from nascore.spaces.nb201 import NB201Space
from nascore.strategies import get_strategy

REPO = Path(__file__).resolve().parents[1]
SPACE = NB201Space()

HOLD = textwrap.dedent("""
    import pathlib, sys, time
    from nascore.lock import {kind}
    with {kind}(sys.argv[1]):
        pathlib.Path(sys.argv[2]).write_text("held")
        while not pathlib.Path(sys.argv[3]).exists():
            time.sleep(0.02)
""")

RUN = textwrap.dedent("""
    import pathlib, sys, time
    from nascore.evaluation import Result
    from nascore.run import Budget, run_search
    from nascore.spaces.nb201 import NB201Space
    from nascore.strategies import get_strategy
    out, started, go = map(pathlib.Path, sys.argv[1:4])
    space = NB201Space()

    def evaluate(arch):
        started.touch()
        while not go.exists():  # the first evaluation waits until the test has tried a second writer
            time.sleep(0.02)
        s = space.to_string(arch)
        return Result(score=float(s.count("conv")), cost=1.0)

    run_search(space=space, strategy=get_strategy("random", space, seed=0), evaluator=evaluate,
               budget=Budget(queries=5), out_dir=out, config={"seed": 0})
""")


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"helper process ended early: {proc.communicate()}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("helper process did not start in time")
        time.sleep(0.02)


@contextmanager
def other_process(script: str, folder: Path, tmp_path: Path):
    """Run ``script`` (argv: folder, started-flag, release-flag) in a second Python process; yield it
    once it signals ``started``; on exit release it and wait for it to end (exit status 0)."""
    started, release = tmp_path / f"started-{time.monotonic_ns()}", tmp_path / f"go-{time.monotonic_ns()}"
    proc = subprocess.Popen([sys.executable, "-c", script, str(folder), str(started), str(release)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(started, proc)
        yield proc
    finally:
        release.touch()
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err


def counting_evaluator(calls: list):
    def evaluate(arch):
        s = SPACE.to_string(arch)
        calls.append(s)
        return Result(score=float(s.count("conv")), cost=1.0)
    return evaluate


# --------------------------------------------------------------------------- the lock itself

def test_second_process_gets_one_line_user_error_naming_folder_and_pid(tmp_path):
    d = tmp_path / "run"
    with other_process(HOLD.format(kind="folder_lock"), d, tmp_path) as proc:
        with pytest.raises(UserError) as e:
            with folder_lock(d):
                pass
        msg = str(e.value)
        assert str(d) in msg and f"process {proc.pid}" in msg and "\n" not in msg
        assert holder_pid(d) == proc.pid
    with folder_lock(d):  # released when the holder ends
        assert holder_pid(d) == os.getpid()
    assert not (d / PID_FILE).exists()


def test_lock_dies_with_a_killed_holder(tmp_path):
    d = tmp_path / "run"
    started = tmp_path / "started"
    proc = subprocess.Popen([sys.executable, "-c", HOLD.format(kind="folder_lock"), str(d), str(started),
                             str(tmp_path / "never")], cwd=REPO, stderr=subprocess.PIPE)
    _wait_for(started, proc)
    proc.kill()  # SIGKILL: no clean-up code runs
    proc.wait(timeout=60)
    with folder_lock(d):  # no stale lock left behind
        pass


def test_lock_is_reentrant_in_one_thread_but_refuses_another_thread(tmp_path):
    d = tmp_path / "run"
    seen = []
    with folder_lock(d):
        with folder_lock(d):  # a helper of the same run locking again
            pass
        assert holder_pid(d) == os.getpid()  # the inner exit did not release it

        def other():
            try:
                with folder_lock(d):
                    seen.append("got it")
            except UserError as e:
                seen.append(str(e))

        t = threading.Thread(target=other)
        t.start()
        t.join()
    assert len(seen) == 1 and "another thread" in seen[0]


def test_write_lock_waits_for_the_holder_instead_of_failing(tmp_path):
    d = tmp_path / "cache"
    done = []
    with other_process(HOLD.format(kind="write_lock"), d, tmp_path):
        t = threading.Thread(target=lambda: (write_lock(d).__enter__(), done.append(1)))
        t.start()
        time.sleep(0.5)
        assert not done  # blocked while the other process writes
    t.join(timeout=60)
    assert done == [1]


# --------------------------------------------------------------------------- nascore search

def test_run_search_refuses_a_second_writer_and_resumes_cleanly_after(tmp_path):
    out = tmp_path / "run"
    with other_process(RUN, out, tmp_path) as proc:
        calls = []
        with pytest.raises(UserError, match=f"process {proc.pid}") as e:
            run_search(space=SPACE, strategy=get_strategy("random", SPACE, seed=0),
                       evaluator=counting_evaluator(calls), budget=Budget(queries=5), out_dir=out,
                       config={"seed": 0})
        assert str(out) in str(e.value) and calls == []
        assert not (out / "history.jsonl").exists()  # the refused writer wrote nothing
    calls = []  # the first run finished; the same run again replays it, evaluating nothing
    res = run_search(space=SPACE, strategy=get_strategy("random", SPACE, seed=0), evaluator=counting_evaluator(calls),
                     budget=Budget(queries=5), out_dir=out, config={"seed": 0})
    hist = read_jsonl(out / "history.jsonl")
    assert calls == [] and res["queries"] == 5
    assert sorted(r["i"] for r in hist) == list(range(5))  # no duplicate lines
    assert not (out / PID_FILE).exists()
    with other_process(HOLD.format(kind="folder_lock"), out, tmp_path) as proc:  # released: another can take it
        assert holder_pid(out) == proc.pid


def test_cli_search_on_a_busy_folder_exits_2_with_the_pid(synthetic_nb201_table, tmp_path, capsys):
    out = tmp_path / "D"
    args = ["search", "--space", "nb201", "--strategy", "random", "--budget", "12", "--seeds", "0-2", "--quiet",
            "--data", str(synthetic_nb201_table.parent), "--output", str(out)]
    with other_process(HOLD.format(kind="folder_lock"), out, tmp_path) as proc:
        rc = nascore_main(args)
        err = capsys.readouterr().err
        assert rc == 2 and str(proc.pid) in err and str(out) in err and err.count("\n") == 1
        assert sorted(p.name for p in out.iterdir()) == sorted([LOCK_FILE, PID_FILE])  # nothing else written
    assert nascore_main(args) == 0  # the lock went with its holder
    for seed in range(3):
        hist = read_jsonl(out / f"seed-{seed:04d}" / "history.jsonl")
        assert sorted(r["i"] for r in hist) == list(range(12))


def test_figures_use_unique_temporary_names(tmp_path):
    # the old fixed name: a stale (here: undeletable) ".curve.png.tmp.png" broke every later save
    (tmp_path / ".curve.png.tmp.png").mkdir()
    res = [{"trajectory": [[1, 1.0, 90.0, 91.0], [2, 2.0, 91.0, 92.0]]}]
    plot_curves({"random": res}, tmp_path / "curve.png")
    assert (tmp_path / "curve.png").read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".curve.png.tmp.png", "curve.png"]


# --------------------------------------------------------------------------- (6) refused = nothing written

def test_refused_nascore_search_writes_nothing_and_the_corrected_command_runs(synthetic_nb201_table, tmp_path,
                                                                             capsys):
    out = tmp_path / "D"
    base = ["search", "--space", "nb201", "--quiet", "--data", str(synthetic_nb201_table.parent),
            "--output", str(out)]
    assert nascore_main(base + ["--strategy", "dcl-enas", "--budget", "5"]) == 2
    assert "initial" in capsys.readouterr().err and not out.exists()
    out.mkdir()  # a pre-existing (empty) folder stays as it was
    assert nascore_main(base + ["--strategy", "dcl-enas", "--budget", "5"]) == 2
    assert list(out.iterdir()) == []
    assert nascore_main(base + ["--strategy", "random", "--budget", "5"]) == 0


@pytest.fixture
def fake(monkeypatch):
    return install_fake_loader(monkeypatch, per_record=40)


def _tiny():
    from ecgnas.data import PrepConfig
    from ecgnas.evaluator import default_fidelity
    from ecgnas.search import final_schedule

    return dict(fidelity=default_fidelity(epochs=1, samples_per_epoch=256, batch_size=64),
                final=final_schedule(epochs=1, samples_per_epoch=256, batch_size=64),
                prep=PrepConfig(before_s=0.1, after_s=0.2), progress=False, baseline="none")


@pytest.mark.parametrize("kwargs,needle", [
    (dict(method="dcl-enas", budget=2), "initial"),
    (dict(method="random", budget=2, strategy_params={"bogus": 1}), "no parameter 'bogus'"),
    (dict(method="eg-nas", budget=2, supernet={"epochs": 0}), "epochs"),
    (dict(method="eg-nas", budget=2, supernet={"epochs": 2, "colour": 1}), "colour"),
    (dict(method="random", budget=2, ensemble=3, final_patience=2), "fixed schedule"),
    (dict(method="random", budget=2, executor="slurm"), "--executor"),
])
def test_refused_ecg_search_leaves_no_folder_and_a_preexisting_one_untouched(kwargs, needle, fake, tmp_path):
    import dataclasses

    from ecgnas.search import ecg_search

    tiny = _tiny()
    kwargs = dict(kwargs)
    if "final_patience" in kwargs:
        tiny["final"] = dataclasses.replace(tiny["final"], patience=kwargs.pop("final_patience"), select="best")
    out = tmp_path / "run"
    with pytest.raises(UserError, match=needle):
        ecg_search(out, **kwargs, **tiny)
    assert not out.exists()
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(UserError, match=needle):
        ecg_search(out, **kwargs, **tiny)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_refused_ecg_search_does_not_block_the_corrected_command(fake, tmp_path):
    from ecgnas.search import ecg_search

    out = tmp_path / "run"
    with pytest.raises(UserError, match="initial"):
        ecg_search(out, method="dcl-enas", budget=2, **_tiny())
    res = ecg_search(out, method="random", budget=2, **_tiny())  # used to be "budget: 2 there, ... now"
    assert res["evaluations"] == 2 and not (out / PID_FILE).exists()


def test_cli_ecgnas_search_budget_below_initial_sample_writes_nothing(fake, tmp_path, capsys):
    from ecgnas.cli import main as ecg_main

    out = tmp_path / "run"
    rc = ecg_main(["search", "--method", "dcl-enas", "--budget", "2", "--output", str(out), "--quiet",
                   "--baseline", "none"])
    err = capsys.readouterr().err
    assert rc == 2 and "initial" in err and err.count("\n") == 1 and not out.exists()


# --------------------------------------------------------------------------- ecgnas search / train / cache

def test_ecg_search_train_and_report_refuse_a_busy_folder_with_the_pid(fake, tmp_path, capsys):
    from ecgnas.cli import main as ecg_main
    from ecgnas.run import train_run
    from ecgnas.search import ecg_search
    from ecgnas.search_report import write_search_report

    out = tmp_path / "run"
    with other_process(HOLD.format(kind="folder_lock"), out, tmp_path) as proc:
        with pytest.raises(UserError, match=f"process {proc.pid}"):
            ecg_search(out, method="random", budget=2, **_tiny())
        with pytest.raises(UserError, match=f"process {proc.pid}"):
            train_run(out, "linear", train=_tiny()["final"], prep=_tiny()["prep"], progress=False)
        rc = ecg_main(["search", "--method", "random", "--budget", "2", "--output", str(out), "--quiet",
                       "--baseline", "none"])
        err = capsys.readouterr().err
        assert rc == 2 and str(proc.pid) in err and err.count("\n") == 1
        assert sorted(p.name for p in out.iterdir()) == sorted([LOCK_FILE, PID_FILE])
    res = ecg_search(out, method="random", budget=2, **_tiny())  # free again once the holder is gone
    with other_process(HOLD.format(kind="folder_lock"), out, tmp_path) as proc:
        with pytest.raises(UserError, match=f"process {proc.pid}"):  # re-rendering a folder in use
            write_search_report(out)
    assert write_search_report(out).is_file() and res["evaluations"] == 2


def test_shared_eval_cache_first_written_entry_wins(tmp_path):
    from ecgnas.evaluator import ECGEvaluator
    from ecgnas.search import get_search_space

    ev = ECGEvaluator(get_search_space("resnet-family"), cache_dir=tmp_path / "evals", latency=False)
    cand = {"model": "resnet", "hparams": {}, "train": {}, "prep": {}}
    other = ECGEvaluator(get_search_space("resnet-family"), cache_dir=tmp_path / "evals", latency=False)
    other.evaluate = lambda arch_key, c: Result(score=1.0, cost=5.0)

    def slow(arch_key, c):  # while this run trains, another run caches the same candidate
        other.cached(arch_key, c)
        return Result(score=2.0, cost=7.0)

    ev.evaluate = slow
    res = ev.cached("a", cand)
    assert res.score == 1.0 and res.metrics["cached"] is True  # the entry already there won
    ev.evaluate = lambda arch_key, c: pytest.fail("a cached candidate is not trained again")
    assert ev.cached("a", cand).score == 1.0
    assert len(list((tmp_path / "evals").glob("*.json"))) == 1
