"""Issue 16 leftovers: the CIFAR supernet searches (``nascore darts`` / ``nascore egnas``), the
DARTS evaluation training and arch2vec pretraining take the run-folder lock (a second writer is
refused with one line naming the holder's PID), an unusable ``arch2vec pretrain --output`` is
refused before any training, and the benchmark scripts save figures atomically under unique
temporary names.

A second *process* holds the lock where it matters (the lock is an OS file lock), with the
helpers of ``tests/test_reliability_locks.py``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time

import pytest
import torch

from nascore.cli import main as nascore_main
from nascore.errors import UserError
from nascore.io import read_json
from nascore.lock import LOCK_FILE, PID_FILE, holder_pid

from test_reliability_locks import HOLD, REPO, other_process


def _images(n=24, size=8, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g), torch.arange(n) % classes


def _search_cfg(method="egnas", epochs=2):
    from nascore.darts.train import search_config

    es = {"population": 3} if method == "egnas" else None
    return search_config(method=method, space="nb201", dataset="synthetic", epochs=epochs, warmup=0, C=4, layers=1,
                         K=2, batch_size=8, es=es)


def _only_lock_files(folder):
    return sorted(p.name for p in folder.iterdir()) == sorted([LOCK_FILE, PID_FILE])


# --------------------------------------------------------------------------- darts / egnas search

@pytest.mark.parametrize("method", ["egnas", "darts"])
def test_supernet_search_refuses_a_second_writer_with_the_pid(method, tmp_path):
    from nascore.darts.train import run_supernet_search

    out = tmp_path / "run"
    with other_process(HOLD.format(kind="folder_lock"), out, tmp_path) as proc:
        with pytest.raises(UserError, match=f"process {proc.pid}") as e:
            run_supernet_search(_search_cfg(method), out, images=_images(), progress=False)
        assert str(out) in str(e.value) and "\n" not in str(e.value)
        assert _only_lock_files(out)  # the refused search wrote nothing
    res = run_supernet_search(_search_cfg(method), out, images=_images(), progress=False)
    assert res["finished"] and not (out / PID_FILE).exists()


def test_supernet_search_holds_its_folder_while_it_runs(tmp_path):
    from nascore.darts.train import run_supernet_search

    out = tmp_path / "run"
    seen = []
    probe = ("import sys\nfrom nascore.lock import folder_lock\nwith folder_lock(sys.argv[1]):\n"
             "    print('got it')\n")

    def second_writer(rec):  # another process tries the folder while the search is between epochs
        seen.append(holder_pid(out))
        r = subprocess.run([sys.executable, "-c", probe, str(out)], cwd=REPO, capture_output=True, text=True,
                           timeout=120)
        seen.append((r.returncode, r.stderr.strip().splitlines()[-1] if r.stderr.strip() else ""))

    run_supernet_search(_search_cfg("egnas", epochs=1), out, images=_images(), progress=False,
                        on_epoch=second_writer)
    assert seen[0] == os.getpid()
    rc, last = seen[1]
    assert rc != 0 and f"process {os.getpid()}" in last and "got it" not in last


def test_cli_egnas_search_on_a_busy_folder_exits_2_before_loading_images(tmp_path, capsys):
    out = tmp_path / "run"
    common = ["--space", "nb201", "--data", str(tmp_path / "no-images-here"), "--epochs", "1", "--warmup", "0",
              "-C", "4", "-K", "2", "--layers", "1", "--batch-size", "8", "--output", str(out), "--quiet"]
    with other_process(HOLD.format(kind="folder_lock"), out, tmp_path) as proc:
        for argv in (["egnas", "search", "--population", "2"] + common, ["darts", "search"] + common):
            assert nascore_main(argv) == 2
            err = capsys.readouterr().err
            assert str(proc.pid) in err and str(out) in err and err.count("\n") == 1
            assert _only_lock_files(out)
    assert nascore_main(["darts", "search"] + common) == 2  # free now: the missing images are the error
    assert "no such folder" in capsys.readouterr().err and not (out / "config.json").exists()


def test_supernet_search_refuses_another_configuration_before_loading_images(tmp_path):
    from nascore.darts.train import run_supernet_search

    out = tmp_path / "run"
    run_supernet_search(_search_cfg("egnas", epochs=1), out, images=_images(), progress=False)
    with pytest.raises(UserError, match="different configuration"):  # data=None: CIFAR would be loaded next
        run_supernet_search(_search_cfg("darts", epochs=1), out, data=tmp_path / "none", progress=False)


def test_darts_evaluation_training_refuses_a_second_writer(tmp_path):
    from nascore.darts.train import train_config, train_genotype
    from nascore.spaces.darts import DARTS_V2

    cfg = train_config(genotype=repr(DARTS_V2), dataset="synthetic", epochs=1, C=4, layers=3, batch_size=8, amp="off")
    out = tmp_path / "t"
    imgs = _images(n=16, size=32)  # the auxiliary head needs CIFAR-sized images
    with other_process(HOLD.format(kind="folder_lock"), out, tmp_path) as proc:
        with pytest.raises(UserError, match=f"process {proc.pid}") as e:
            train_genotype(cfg, out, images=imgs, test_images=imgs, progress=False)
        assert "training folder" in str(e.value) and _only_lock_files(out)
    res = train_genotype(cfg, out, images=imgs, test_images=imgs, progress=False)
    assert res["finished"] and not (out / PID_FILE).exists()


# --------------------------------------------------------------------------- arch2vec pretrain

@pytest.fixture
def no_training(monkeypatch):
    """Make any data building / training fail loudly: a refusal must come before it."""
    from nascore.arch2vec import pretrain as P

    def boom(*a, **k):
        raise AssertionError("pretraining started")

    monkeypatch.setattr(P, "space_dataset", boom)
    monkeypatch.setattr(P, "VGAE", boom)


PRETRAIN = ["arch2vec", "pretrain", "--space", "nb201", "--epochs", "1", "--max-archs", "200", "--hidden", "16",
            "--quiet", "--output"]


def test_pretrain_refuses_an_unusable_output_before_training(tmp_path, capsys, no_training):
    a_file = tmp_path / "file"
    a_file.write_text("not a folder")
    assert nascore_main(PRETRAIN + [str(a_file)]) == 2
    err = capsys.readouterr().err
    assert "is not a folder" in err and err.count("\n") == 1
    blocked = tmp_path / "m"
    (blocked / "model.pt").mkdir(parents=True)  # the model cannot be written there
    assert nascore_main(PRETRAIN + [str(blocked)]) == 2
    err = capsys.readouterr().err
    assert "model.pt exists and is not a file" in err and err.count("\n") == 1
    under_file = a_file / "sub"  # cannot be created: an OS error, exit 3, before training
    assert nascore_main(PRETRAIN + [str(under_file)]) == 3
    assert str(a_file) in capsys.readouterr().err


def test_pretrain_refuses_a_busy_output_with_the_pid(tmp_path, capsys, no_training):
    out = tmp_path / "m"
    with other_process(HOLD.format(kind="folder_lock"), out, tmp_path) as proc:
        assert nascore_main(PRETRAIN + [str(out)]) == 2
        err = capsys.readouterr().err
        assert f"process {proc.pid}" in err and str(out) in err and err.count("\n") == 1
        assert _only_lock_files(out)


def test_automatic_pretraining_waits_for_the_process_pretraining_and_uses_its_model(tmp_path, monkeypatch):
    from nascore.arch2vec import pretrain as P
    from nascore.spaces import get_space

    space = get_space("nb201")
    made = tmp_path / "made"
    P.pretrain(space, output=made, epochs=1, hidden=16, max_archs=200, quality_samples=50, progress=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    model_dir = P.default_model_dir("nb201")
    monkeypatch.setattr(P, "pretrain", lambda *a, **k: pytest.fail("pretrained a second time"))
    got = []
    with other_process(HOLD.format(kind="folder_lock"), model_dir, tmp_path):  # "pretraining" there now
        t = threading.Thread(target=lambda: got.append(P.load_embeddings(space)))
        t.start()
        time.sleep(1.0)
        assert t.is_alive() and not got  # waits instead of pretraining into the same folder
        shutil.copy(made / "model.pt", model_dir / "model.pt")  # what the other process wrote
    t.join(timeout=120)
    keys, emb = got[0]
    assert len(keys) == space.size and emb.shape == (space.size, 16)
    assert read_json(made / "metrics.json")["train"]["n_architectures"] == 200


# --------------------------------------------------------------------------- benchmark figures

def _benchmark(name: str, monkeypatch):
    """Import ``benchmarks/<name>.py`` as a module (its folder on sys.path, as when run)."""
    import importlib

    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    return importlib.import_module(name)


def _trajectory(values):
    return {"trajectory": [[i + 1, 100.0 * (i + 1), v - 3, v] for i, v in enumerate(values)]}


def test_benchmark_figures_are_written_atomically_under_unique_names(tmp_path, monkeypatch):
    # the old fixed names: a stale (here: undeletable) ".X.tmp.png" broke every later save
    results = tmp_path / "benchmarks" / "results"
    results.mkdir(parents=True)
    dcl = _benchmark("dcl_predictor", monkeypatch)
    monkeypatch.setattr(dcl, "RESULTS", results)
    (results / ".dcl_predictor.tmp.png").mkdir()
    stat = {"kendall_tau": {"mean": 0.5, "std": 0.1}}
    dcl._plot({"20": {m: stat for m in dcl.METHODS}, "50": {m: stat for m in dcl.METHODS}}, [20, 50], 2)
    assert (results / "dcl_predictor.png").read_bytes()[:4] == b"\x89PNG"

    search = _benchmark("arch2vec_search", monkeypatch)
    (results / ".time.png.tmp.png").mkdir()
    curves = {"random": [_trajectory([80.0, 90.0, 93.0])], "evolution": [_trajectory([85.0, 94.0])]}
    search._plot_time(curves, results / "time.png", "t", optimum=94.37, seconds=400.0)
    assert (results / "time.png").read_bytes()[:4] == b"\x89PNG"

    pre = _benchmark("arch2vec_pretrain", monkeypatch)
    monkeypatch.setattr(pre, "RESULTS", results)

    class FakeTable:  # the real NB-201 table is not needed to test the save
        def query(self, key, fidelity):
            return {"valid_accuracy": 90.0}

    class FakeTSNE:
        def __init__(self, **kwargs):
            pass

        def fit_transform(self, emb):
            return emb[:, :2]

    import sklearn.manifold

    from nascore.benchmarks.nb201 import NB201Table

    monkeypatch.setattr(NB201Table, "load", classmethod(lambda cls, *a, **k: FakeTable()))
    monkeypatch.setattr(sklearn.manifold, "TSNE", FakeTSNE)
    (results / ".tsne.png.tmp.png").mkdir()
    emb = torch.randn(50, 4).numpy()
    pre.tsne_plot(None, emb, [str(k) for k in range(50)], results / "tsne.png")
    assert (results / "tsne.png").read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in results.iterdir() if p.is_file()) == ["dcl_predictor.png", "time.png", "tsne.png"]


# --------------------------------------------------------------------------- budgets and failed evaluations

@pytest.mark.parametrize("text, shown", [("1e999", "not a finite number"), ("1e999h", "not a finite number"),
                                         ("1e8", "10,000,000 queries"), ("1e12h", "simulated seconds")])
def test_budget_parse_refuses_non_finite_and_huge_budgets_in_one_line(text, shown):
    from nascore.run import Budget

    with pytest.raises(UserError, match=shown) as e:  # 1e999 was an OverflowError from int(inf)
        Budget.parse(text)
    assert "--budget" in str(e.value) and "\n" not in str(e.value)
    assert Budget.parse("1e3") == Budget(queries=1000) and Budget.parse("6h") == Budget(seconds=21600.0)


def test_failed_evaluations_are_null_in_the_history_and_never_the_best(tmp_path):
    import json
    import math

    from nascore.evaluation import Result
    from nascore.io import read_jsonl
    from nascore.run import Budget, run_search
    from nascore.spaces import get_space
    from nascore.strategies import get_strategy

    space = get_space("nb201")

    def ev(arch):  # every architecture with an avg_pool fails (NaN), the others score their conv count
        s = space.to_string(arch)
        return Result(score=float("nan") if "avg_pool" in s else float(s.count("conv")), cost=1.0)

    out = tmp_path / "r"
    kw = dict(space=space, evaluator=ev, budget=Budget(queries=30), out_dir=out, config={"seed": 3})
    res = run_search(strategy=get_strategy("random", space, seed=3), **kw)
    hist = read_jsonl(out / "history.jsonl")
    failed = [h for h in hist if "avg_pool" in h["arch"]]
    assert failed and all(h["score"] is None for h in failed)
    assert "NaN" not in (out / "history.jsonl").read_text() and "NaN" not in (out / "result.json").read_text()
    finite = [h["score"] for h in hist if h["score"] is not None]
    assert res["queries"] == 30 and res["best"]["score"] == max(finite)
    assert all(row[2] is None or math.isfinite(row[2]) for row in res["trajectory"])
    assert Result.from_dict(failed[0]).failed and math.isnan(Result.from_dict(failed[0]).score)
    # resume = replay: the null scores are read back (as NaN) and the run ends where it did
    again = run_search(strategy=get_strategy("random", space, seed=3), **kw)
    assert {k: v for k, v in again.items() if k != "wall_seconds"} == {k: v for k, v in res.items()
                                                                       if k != "wall_seconds"}
    assert json.loads((out / "result.json").read_text())["best"]["score"] == max(finite)


def test_summarize_with_only_failed_evaluations_has_no_best():
    from nascore.run import summarize

    done = [{"arch": "a", "score": None, "cum_cost": 1.0}, {"arch": "b", "score": float("nan"), "cum_cost": 2.0}]
    s = summarize(done, {"seed": 0}, finished=True)
    assert s["best"] is None and s["queries"] == 2 and [r[2] for r in s["trajectory"]] == [None, None]
    done.append({"arch": "c", "score": 5.0, "cum_cost": 3.0})
    assert summarize(done, {}, finished=True)["best"]["arch"] == "c"


# --------------------------------------------------------------------------- ecg_search (the library entry)

def test_ecg_search_checks_strategy_params_ensemble_and_seed_before_writing(tmp_path):
    from ecgnas.search import ecg_search

    out = tmp_path / "run"
    cases = [(dict(method="evolution", strategy_params={"population": "abc"}), "population='abc'"),
             (dict(method="evolution", strategy_params={"nonsense": 1}), "has no parameter 'nonsense'"),
             (dict(method="evolution", ensemble="abc"), "--ensemble"),
             (dict(method="evolution", ensemble=2.5), "--ensemble"),
             (dict(method="evolution", seed=-1), "--seed=-1"),
             (dict(method="evolution", seed="abc"), "--seed='abc'"),
             (dict(method="random", constraints={"max_params": float("nan")}), "--max-params=nan"),
             (dict(method="eg-nas", strategy_params={"population": 4}), "eg-nas takes no strategy parameters")]
    for kw, msg in cases:
        with pytest.raises(UserError, match=msg) as e:
            ecg_search(out, budget=12, progress=False, **kw)
        assert "\n" not in str(e.value)
        assert not out.exists(), kw  # refused before the first byte


def test_ecg_search_records_strategy_params_as_checked(tmp_path, monkeypatch):
    import nascore.run

    from ecgnas.search import ecg_search

    seen = {}

    class Stop(Exception):
        pass

    def claim(out, config, **kw):  # the configuration about to be written, then stop
        seen.update(config)
        raise Stop

    monkeypatch.setattr(nascore.run, "claim_folder", claim)
    with pytest.raises(Stop):
        ecg_search(tmp_path / "run", method="evolution", budget=12, progress=False,
                   strategy_params={"population": 6.0, "sample_size": 3})
    assert seen["strategy_params"] == {"population": 6, "sample_size": 3}
    assert isinstance(seen["strategy_params"]["population"], int)  # as `ecgnas search --param` records it


# --------------------------------------------------------------------------- beat preparation settings

@pytest.mark.parametrize("kw, field", [(dict(before_s=float("nan")), "before_s=nan"),
                                       (dict(before_s=1e308, after_s=1.0), "before_s=1e+308"),
                                       (dict(after_s=float("inf")), "after_s=inf"),
                                       (dict(after_s=6.0), "after_s=6.0"),
                                       (dict(fs=100_000), "fs: must be an integer in [50, 2000] Hz, got 100000"),
                                       (dict(median_windows_s=(0.2, float("nan"))), "median_windows_s=nan"),
                                       (dict(median_windows_s=(0.2, -1.0)), "median_windows_s=-1.0"),
                                       (dict(median_windows_s=0.2), "median_windows_s: need two"),
                                       (dict(lowpass_hz=float("nan")), "lowpass_hz=nan"),
                                       (dict(bandpass_hz=(0.5, float("inf"))), "bandpass_hz=inf"),
                                       (dict(filter_order=2.5), "filter_order=2.5"),
                                       (dict(local_rr_beats=10**12), "local_rr_beats=")])
def test_prep_config_refuses_non_finite_and_absurd_values_naming_the_field(kw, field):
    from ecgnas.data import PrepConfig

    with pytest.raises(UserError) as e:
        PrepConfig(**kw)
    assert str(e.value).startswith(field) or field in str(e.value)
    assert "\n" not in str(e.value)


def test_prep_config_defaults_and_to_dict_are_unchanged():
    from ecgnas.data import PrepConfig

    d = PrepConfig().to_dict()
    assert "template" not in d  # a later field at its default stays out of the dict (cache keys)
    assert (d["fs"], d["before_s"], d["after_s"], d["median_windows_s"], d["lowpass_hz"], d["bandpass_hz"]) == \
        (180, 0.25, 0.45, [0.2, 0.6], 35.0, [0.5, 40.0])
    assert PrepConfig(before_s=0, after_s=5).window_samples() == (0, 900)  # the ends of the range are allowed
    assert PrepConfig(fs=2000).fs == 2000


@pytest.mark.parametrize("window", ["nan,0.45", "1e308,1", "0.25,inf"])
def test_ecgnas_prepare_refuses_a_bad_window_in_one_line(window, tmp_path, capsys):
    from ecgnas.cli import main as ecgnas_main

    out = tmp_path / "prep"
    assert ecgnas_main(["prepare", "--window", window, "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and ("before_s=" in err or "after_s=" in err)
    assert not out.exists()


# --------------------------------------------------------------------------- ECG training: seed, divergence

def test_train_config_seed_is_capped_at_2_32_minus_1():
    from ecgnas.train import TrainConfig

    assert TrainConfig(seed=2**32 - 1).seed == 2**32 - 1
    for bad in (2**32, 10**20, -1, True, 1.5):
        with pytest.raises(UserError, match=r"seed: must be an integer in \[0, 4294967295\]"):
            TrainConfig(seed=bad)
    assert TrainConfig() == TrainConfig(seed=0)  # the default is untouched


def _nan_loss(monkeypatch):
    import ecgnas.train

    real = ecgnas.train._loss
    monkeypatch.setattr(ecgnas.train, "_loss", lambda *a, **k: real(*a, **k) * float("nan"))


def test_fit_raises_a_one_line_diverged_error_that_is_also_a_floating_point_error(monkeypatch):
    import numpy as np

    from ecg_fakes import make_beats
    from ecgnas.evaluate import build
    from ecgnas.train import TrainConfig, TrainingDiverged, fit

    beats = make_beats(window=27, per_record=20)
    net = build("resnet", 27, beats.rr.shape[1], 5, {"depth": 1, "width": 4, "kernel_size": 3})
    _nan_loss(monkeypatch)
    logged = []
    with pytest.raises(TrainingDiverged) as e:
        fit(net, beats, {"train": np.arange(80), "val": np.zeros(0, np.int64)},
            TrainConfig(epochs=2, batch_size=16, device="cpu", num_threads=1), progress=False, log=logged.append)
    assert isinstance(e.value, UserError) and isinstance(e.value, FloatingPointError)  # the ECG evaluator catches it
    assert str(e.value).startswith("training diverged at epoch 1 (loss nan); lower --lr (now 0.002)")
    assert logged == []  # nothing logged for the diverged epoch


def test_ecgnas_train_diverging_is_one_line_exit_2(tmp_path, monkeypatch, capsys):
    from ecg_fakes import install_fake_loader
    from ecgnas.cli import main as ecgnas_main

    install_fake_loader(monkeypatch)
    _nan_loss(monkeypatch)
    out = tmp_path / "run"
    rc = ecgnas_main(["train", "--model", "resnet", "--epochs", "2", "--batch-size", "32", "--window", "0.05,0.1",
                      "--hparam", "depth=1", "--hparam", "width=4", "--threads", "1", "--device", "cpu", "--quiet",
                      "--output", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "training diverged at epoch 1 (loss nan); lower --lr" in err and str(out) in err
    assert not (out / "checkpoint.pt").exists()


def test_ensemble_member_seeds_stay_within_the_seed_range():
    from ecgnas.run import check_ensemble
    from ecgnas.train import TrainConfig

    with pytest.raises(UserError, match="member seeds would pass 4294967295"):
        check_ensemble(3, "seeds", "none", 5, TrainConfig(seed=2**32 - 2))
    check_ensemble(3, "seeds", "none", 5, TrainConfig(seed=2**32 - 3))
    check_ensemble(1, "folds", "none", 5, TrainConfig(seed=2**32 - 1))


# --------------------------------------------------------------------------- DARTS training divergence

def _nan_cross_entropy(monkeypatch):
    import types

    import torch.nn.functional as F

    import nascore.darts.train

    fake = types.SimpleNamespace(**{k: getattr(F, k) for k in dir(F) if not k.startswith("__")})
    fake.cross_entropy = lambda *a, **k: F.cross_entropy(*a, **k) * float("nan")
    monkeypatch.setattr(nascore.darts.train, "F", fake)


def test_darts_train_divergence_is_one_line_before_the_log(tmp_path, monkeypatch):
    from nascore.darts.train import train_config, train_genotype
    from nascore.spaces.darts import DARTS_V2

    cfg = train_config(genotype=repr(DARTS_V2), dataset="synthetic", epochs=2, C=4, layers=3, batch_size=8, amp="off")
    imgs = _images(n=16, size=32)
    _nan_cross_entropy(monkeypatch)
    out = tmp_path / "t"
    with pytest.raises(UserError, match=r"^training diverged at epoch 0 \(loss nan\); lower --lr \(now 0.025\)$"):
        train_genotype(cfg, out, images=imgs, test_images=imgs, progress=False)
    assert not (out / "log.jsonl").exists() and not (out / "result.json").exists()


def test_supernet_search_divergence_is_one_line_before_the_log(tmp_path, monkeypatch):
    import nascore.darts.train as dt

    real = dt._search_epoch

    def nan_epoch(cfg, net, task, *a, **k):  # the task's training loss turns NaN
        loss = task.loss
        monkeypatch.setattr(task, "loss", lambda logits, y: loss(logits, y) * float("nan"))
        return real(cfg, net, task, *a, **k)

    monkeypatch.setattr(dt, "_search_epoch", nan_epoch)
    out = tmp_path / "s"
    with pytest.raises(UserError, match=r"^training diverged at epoch 0 \(loss nan\)") as e:
        dt.run_supernet_search(_search_cfg("egnas", epochs=2), out, images=_images(), progress=False)
    assert "\n" not in str(e.value)
    assert not (out / "log.jsonl").exists() or "NaN" not in (out / "log.jsonl").read_text()


# --------------------------------------------------------------------------- atomic writes on a failing disk

def test_atomic_write_reports_the_first_error_when_the_cleanup_fails_too(tmp_path, monkeypatch):
    import errno

    import nascore.io as nio

    def replace(src, dst):
        raise OSError(errno.EROFS, "Read-only file system", str(dst))

    def unlink(path):
        raise PermissionError(errno.EROFS, "Read-only file system (cleanup)", str(path))

    monkeypatch.setattr(nio.os, "replace", replace)
    monkeypatch.setattr(nio.os, "unlink", unlink)
    with pytest.raises(OSError) as e:
        nio.atomic_write_json(tmp_path / "a.json", {"x": 1})
    assert e.value.errno == errno.EROFS and "cleanup" not in str(e.value)  # the write's error, not the cleanup's
    assert not (tmp_path / "a.json").exists()
