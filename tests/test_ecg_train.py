"""Trainer, train/evaluate CLI and random-search baseline, on small synthetic beats (seconds on a CPU).

The synthetic beats use real DS1 / hold-out / DS2 record names, so the real
:func:`ecgnas.data.inter_patient_split` applies; ``load_beats`` is replaced by a generator that
honours the PrepConfig window. N, V and F differ by shape; S looks like N and differs only by a
premature RR interval, so learning it needs the RR branch.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ecgnas import data as ecgdata
from ecgnas.baselines import SearchSpace, random_search, sample_trials
from ecgnas.cli import main as cli
from ecgnas.data import Beats, inter_patient_split
from ecgnas.models import build_model
from ecgnas.train import TrainConfig, class_weights, fit, predict, seed_everything
from nascore.errors import UserError
from nascore.io import read_jsonl

TRAIN_RECS = ("101", "106", "108", "109")  # DS1, not in the default hold-out
VAL_RECS = ("114", "124")  # DS1 hold-out records
TEST_RECS = ("100", "103")  # DS2


def make_beats(window: int = 54, per_record: int = 60, seed: int = 0, fs: int = 360) -> Beats:
    rng = np.random.default_rng(seed)
    t = np.arange(window, dtype=np.float64)
    r = window // 3

    def bump(width, amp):
        return amp * np.exp(-0.5 * ((t - r) / width) ** 2)

    shapes = {0: bump(2, 1.0), 1: bump(2, 1.0), 2: bump(7, -1.0), 3: bump(2, 0.6) + bump(6, -0.6)}
    xs, rrs, ys, recs, samples = [], [], [], [], []
    for rec in TRAIN_RECS + VAL_RECS + TEST_RECS:
        y = rng.choice(4, per_record, p=[0.55, 0.15, 0.15, 0.15])
        for i, c in enumerate(y):
            xs.append(shapes[int(c)] + rng.normal(0, 0.05, window))
            premature = c == 1  # S: short RR before, compensatory pause after
            rrs.append([rng.normal(0.5 if premature else 1.0, 0.05), rng.normal(1.4 if premature else 1.0, 0.05),
                        rng.normal(1.0, 0.02), 0.8])
            ys.append(int(c))
            recs.append(rec)
            samples.append(300 * (i + 1))
    return Beats(x=np.asarray(xs, np.float32), rr=np.asarray(rrs, np.float32), y=np.asarray(ys),
                 record=np.asarray(recs), sample=np.asarray(samples), fs=fs)


@pytest.fixture
def fake_data(monkeypatch):
    """Replace the MIT-BIH pipeline by synthetic beats of the requested window; counts the calls."""
    calls = []

    def fake_load_beats(data=None, config=None, cache_dir=None, progress=True, jobs=None):
        cfg = config or ecgdata.PrepConfig()
        calls.append(cfg)
        b = make_beats(window=sum(cfg.window_samples()))
        b.config = cfg
        return b

    monkeypatch.setattr(ecgdata, "load_beats", fake_load_beats)
    return calls


def tiny_model(window=54, seed=0, **hp):
    seed_everything(seed)
    return build_model("resnet", window=window, **{"depth": 1, "width": 8, "kernel_size": 5, "dropout": 0.0, **hp})


FAST = dict(batch_size=32, lr=1e-2, num_threads=1, device="cpu")


def test_fit_learns_separable_data_and_uses_rr():
    beats = make_beats()
    split = inter_patient_split(beats)
    model = tiny_model()
    res = fit(model, beats, split, TrainConfig(epochs=15, patience=None, **FAST), progress=False)
    assert res.epochs_run == 15 and len(res.history) == 15 and not res.stopped_early
    assert res.best_val_macro_f1 > 90
    assert res.best_val_macro_f1 == max(h["val_macro_f1"] for h in res.history)
    assert res.throughput > 0 and res.n_train == 4 * 60 and res.n_val == 2 * 60
    y_pred = predict(model, beats, split["test"])
    te = beats.y[split["test"]]
    assert (y_pred == te).mean() > 0.9
    assert (y_pred[te == 1] == 1).mean() > 0.8  # S beats: only the RR features tell them from N
    # the model holds the best epoch's weights
    best = res.best_state
    assert all(torch.equal(best[k], v) for k, v in model.state_dict().items())


def test_same_seed_same_weights_and_predictions():
    beats = make_beats()
    split = inter_patient_split(beats)
    cfg = TrainConfig(epochs=3, sampler="sqrt_balanced", **FAST)
    runs = []
    for seed in (0, 0, 1):
        m = tiny_model(seed=seed, dropout=0.3)
        fit(m, beats, split, TrainConfig(**{**cfg.to_dict(), "seed": seed}), progress=False)
        runs.append((m.state_dict(), predict(m, beats)))
    (s0, p0), (s1, p1), (s2, _) = runs
    assert all(torch.equal(s0[k], s1[k]) for k in s0)
    assert np.array_equal(p0, p1)
    assert not all(torch.equal(s0[k], s2[k]) for k in s0)


def test_early_stopping_stops_after_patience():
    beats = make_beats()
    split = inter_patient_split(beats)
    m = tiny_model()
    # a learning rate this small cannot change a prediction: no epoch after the first improves
    res = fit(m, beats, split, TrainConfig(epochs=20, patience=2, schedule="constant", **{**FAST, "lr": 1e-12}),
              progress=False)
    assert res.stopped_early and res.epochs_run == 3 and res.best_epoch == 1
    assert [h["best"] for h in res.history] == [True, False, False]


def test_class_weights():
    y = np.array([0] * 6 + [1] * 3 + [2])  # counts 6, 3, 1, 0, 0
    inv = class_weights(y, "inverse")
    np.testing.assert_allclose(inv, np.array([1 / 6, 1 / 3, 1, 0, 0]) * 10 / 3)
    sq = class_weights(y, "sqrt_inverse")
    raw = np.array([6 ** -0.5, 3 ** -0.5, 1, 0, 0])
    np.testing.assert_allclose(sq, raw * 10 / (6 * raw[0] + 3 * raw[1] + 1))
    np.testing.assert_allclose(class_weights(y, "none"), [1, 1, 1, 0, 0])
    for w in (inv, sq):  # mean weight over the training beats is 1
        assert np.isclose(w[y].mean(), 1.0)
    with pytest.raises(UserError, match="class_weight"):
        class_weights(y, "balanced")


def test_train_config_rejects_bad_values():
    with pytest.raises(UserError, match="lr"):
        TrainConfig(lr=-1)
    with pytest.raises(UserError, match="sampler"):
        TrainConfig(sampler="oversample")


RUN_FILES = ("config.json", "checkpoint.pt", "train_log.jsonl", "metrics.json", "per_record.csv", "confusion.png",
             "predictions.csv", "val_metrics.json", "train_summary.json")
TRAIN_ARGS = ["train", "--model", "resnet", "--epochs", "3", "--batch-size", "32", "--window", "0.05,0.1",
              "--hparam", "depth=1", "--hparam", "width=8", "--hparam", "kernel_size=5", "--threads", "1",
              "--device", "cpu", "--quiet"]


def test_train_cli_writes_run_and_evaluate_reproduces(tmp_path, fake_data, capsys):
    run = tmp_path / "run"
    assert cli(TRAIN_ARGS + ["--output", str(run)]) == 0
    for name in RUN_FILES:
        assert (run / name).is_file(), name
    log = read_jsonl(run / "train_log.jsonl")
    assert [r["epoch"] for r in log] == [1, 2, 3]
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["hparams"] == {"depth": 1, "width": 8, "kernel_size": 5} and cfg["train"]["epochs"] == 3
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    assert ckpt["model"] == "resnet" and ckpt["window"] == 54 and ckpt["prep_key"] == cfg["prep_key"]
    m = json.loads((run / "metrics.json").read_text())
    assert m["n_beats"] == 2 * 60  # DS2 records only
    assert json.loads((run / "val_metrics.json").read_text())["n_beats"] == 2 * 60
    pred = (run / "predictions.csv").read_text().splitlines()
    assert pred[0] == "record,sample,true,pred" and len(pred) == 1 + 120

    assert cli(["evaluate", str(run), "--quiet", "--device", "cpu"]) == 0
    again = json.loads((run / "eval-test" / "metrics.json").read_text())
    assert {k: v for k, v in again.items() if k != "title"} == {k: v for k, v in m.items() if k != "title"}
    assert (run / "eval-test" / "predictions.csv").read_text() == (run / "predictions.csv").read_text()

    # the same configuration again: finished run kept, not retrained
    n_loads = len(fake_data)
    assert cli(TRAIN_ARGS + ["--output", str(run)]) == 0
    assert len(fake_data) == n_loads


def test_train_cli_refuses_other_config_and_bad_inputs(tmp_path, fake_data, capsys):
    run = tmp_path / "run"
    assert cli(TRAIN_ARGS + ["--output", str(run)]) == 0
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    capsys.readouterr()
    assert cli(TRAIN_ARGS + ["--lr", "0.01", "--output", str(run)]) == 2
    err = capsys.readouterr().err
    assert "different configuration" in err and "lr" in err and len(err.strip().splitlines()) == 1
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before

    assert cli(TRAIN_ARGS + ["--hparam", "depthh=2", "--output", str(tmp_path / "x")]) == 2
    assert not (tmp_path / "x").exists()
    assert cli(["evaluate", str(tmp_path / "nothing"), "--quiet"]) == 2
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    torch.save({"weights": torch.zeros(2)}, foreign / "checkpoint.pt")
    assert cli(["evaluate", str(foreign), "--quiet"]) == 2
    (foreign / "checkpoint.pt").write_bytes(b"not a checkpoint")
    capsys.readouterr()
    assert cli(["evaluate", str(foreign), "--quiet"]) == 2
    assert "checkpoint" in capsys.readouterr().err


TINY_SPACE = SearchSpace(depth=(1, 2), width=(4, 8), kernel_size=(3, 5), windows=((0.05, 0.1), (0.05, 0.08)),
                         lr=(1e-3, 5e-3))
TINY_BASE = TrainConfig(epochs=2, batch_size=32, patience=None, num_threads=1, device="cpu")


def _comparable(res: dict) -> dict:
    """A result without its wall-clock timings."""
    return {"best": {k: v for k, v in res["best"].items() if k not in ("train_seconds", "throughput")},
            "val": res["val"], "test_metrics": res["test_metrics"],
            "trials": [(t["trial"], t["val_macro_f1"], t["params"]) for t in res["trials"]]}


def test_random_search_resume_repeats_nothing_and_matches_uninterrupted(tmp_path, fake_data, monkeypatch):
    import ecgnas.baselines as bl

    full = random_search(tmp_path / "full", 4, seed=3, base=TINY_BASE, space=TINY_SPACE, progress=False)
    assert full["complete"] and full["n_trials"] == 4

    trained = []
    real_run_trial = bl.run_trial

    def counting(cfg, *a, **k):
        trained.append(cfg["trial"])
        return real_run_trial(cfg, *a, **k)

    monkeypatch.setattr(bl, "run_trial", counting)
    part = random_search(tmp_path / "part", 4, seed=3, base=TINY_BASE, space=TINY_SPACE, progress=False,
                         max_new_trials=2)  # the "kill" after two trials
    assert not part["complete"] and part["n_done"] == 2
    assert [r["trial"] for r in read_jsonl(tmp_path / "part" / "history.jsonl")] == [0, 1]
    assert not (tmp_path / "part" / "result.json").exists()
    with open(tmp_path / "part" / "history.jsonl", "a") as f:  # a crash in the middle of an append
        f.write('{"trial": 2, "val_ma')
    resumed = random_search(tmp_path / "part", 4, seed=3, base=TINY_BASE, space=TINY_SPACE, progress=False)
    assert trained == [0, 1, 2, 3]  # each trial trained exactly once over both invocations
    assert [r["trial"] for r in read_jsonl(tmp_path / "part" / "history.jsonl")] == [0, 1, 2, 3]
    assert _comparable(resumed) == _comparable(full)
    assert json.loads((tmp_path / "part" / "result.json").read_text())["best"]["trial"] == full["best"]["trial"]
    for name in ("checkpoint.pt", "metrics.json", "val_metrics.json", "predictions.csv", "confusion.png"):
        assert (tmp_path / "part" / "best" / name).is_file()
    assert (tmp_path / "part" / "best" / "predictions.csv").read_text() == \
        (tmp_path / "full" / "best" / "predictions.csv").read_text()
    # the best checkpoint is an ordinary run checkpoint
    assert cli(["evaluate", str(tmp_path / "part" / "best"), "--quiet", "--device", "cpu"]) == 0
    # a finished search asked again trains nothing
    trained.clear()
    assert _comparable(random_search(tmp_path / "part", 4, seed=3, base=TINY_BASE, space=TINY_SPACE,
                                     progress=False)) == _comparable(full)
    assert trained == []


def test_random_search_refuses_other_config(tmp_path, fake_data):
    random_search(tmp_path / "rs", 1, seed=0, base=TINY_BASE, space=TINY_SPACE, progress=False)
    with pytest.raises(UserError, match="different configuration"):
        random_search(tmp_path / "rs", 1, seed=1, base=TINY_BASE, space=TINY_SPACE, progress=False)
    assert cli(["baseline", "random-search", "--trials", "1", "--seed", "0", "--output", str(tmp_path / "rs"),
                "--quiet"]) == 2  # the CLI's default space and epochs differ too


def test_sample_trials_reproducible_and_extendable():
    a = sample_trials(6, seed=5)
    assert a == sample_trials(6, seed=5) and a[:4] == sample_trials(4, seed=5)
    assert a != sample_trials(6, seed=6)
    sp = SearchSpace()
    for c in a:
        assert c["hparams"]["depth"] in sp.depth and sp.lr[0] <= c["train"]["lr"] <= sp.lr[1]
        assert tuple(c["window"]) in sp.windows
    assert len({c["train"]["seed"] for c in a}) == 6
