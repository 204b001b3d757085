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
