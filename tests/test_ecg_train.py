"""Trainer and the train/evaluate CLI, on small synthetic beats (seconds on a CPU).

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

from ecgnas.cli import main as cli
from ecgnas.data import inter_patient_split
from ecgnas.models import build_model
from ecgnas.train import TrainConfig, class_weights, fit, predict, seed_everything
from nascore.errors import UserError
from nascore.io import read_jsonl

from ecg_fakes import install_fake_loader, make_beats


@pytest.fixture
def fake_data(monkeypatch):
    """Replace the MIT-BIH pipeline by synthetic beats of the requested window; counts the calls."""
    return install_fake_loader(monkeypatch)


def tiny_model(window=54, seed=0, **hp):
    seed_everything(seed)
    return build_model("resnet", window=window, **{"depth": 1, "width": 8, "kernel_size": 5, "dropout": 0.0, **hp})


FAST = dict(batch_size=32, lr=1e-2, num_threads=1, device="cpu", samples_per_epoch=None)  # one pass over the training beats


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
    res = fit(m, beats, split, TrainConfig(epochs=20, patience=2, select="best", schedule="constant", **{**FAST, "lr": 1e-12}),
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
             "predictions.csv", "train_summary.json")
TRAIN_ARGS = ["train", "--model", "resnet", "--epochs", "3", "--batch-size", "32", "--window", "0.05,0.1",
              "--samples-per-epoch", "0",
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
    assert ckpt["model"] == "resnet" and ckpt["window"] == 27 and ckpt["prep_key"] == cfg["prep_key"]
    m = json.loads((run / "metrics.json").read_text())
    assert m["n_beats"] == 2 * 60  # DS2 records only
    assert not (run / "cv_metrics.json").exists()  # no cross-validation unless asked for (--cv, --ensemble)
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


def test_q_beats_left_out_of_training_unless_asked():
    beats = make_beats()
    split = inter_patient_split(beats)
    tr = split["train"]
    beats.y[tr[:5]] = 4  # five Q beats in training
    cfg = TrainConfig(epochs=1, **FAST)
    res = fit(tiny_model(), beats, split, cfg, progress=False)
    assert res.n_train == len(tr) - 5 and res.class_weights[4] == 0.0
    res_q = fit(tiny_model(), beats, split, TrainConfig(epochs=1, train_q=True, **FAST), progress=False)
    assert res_q.n_train == len(tr) and res_q.class_weights[4] > 0


def test_ema_weights_are_the_ones_scored_and_kept():
    beats = make_beats()
    split = inter_patient_split(beats)
    plain = tiny_model(seed=0)
    fit(plain, beats, split, TrainConfig(epochs=2, patience=None, **FAST), progress=False)
    ema = tiny_model(seed=0)
    res = fit(ema, beats, split, TrainConfig(epochs=2, patience=None, ema_decay=0.9, **FAST), progress=False)
    # same seed and batches: only the averaging differs, so the kept weights differ
    assert not all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(), ema.state_dict().values()))
    assert res.best_val_macro_f1 == pytest.approx(res.history[res.best_epoch - 1]["val_macro_f1"])
    from ecgnas.metrics import classification_report

    va = split["val"]
    assert classification_report(beats.y[va], predict(ema, beats, va))["macro_f1"] == pytest.approx(res.best_val_macro_f1)
    with pytest.raises(UserError, match="ema_decay"):
        TrainConfig(ema_decay=1.5)
