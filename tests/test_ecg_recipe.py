"""The inter-patient recipe: augmentations, RR standardisation, decision offsets, ensembles, and
the guarantee that DS2 never chooses anything (offsets, members, recipe run on DS1 only)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ecg_fakes import TEST_RECS, install_fake_loader, make_beats
from ecgnas.augment import AUGMENTATIONS, augment_batch, mixup, parse_augment
from ecgnas.cli import main as cli
from ecgnas.data import inter_patient_split, record_folds
from ecgnas.decision import _macro_f1, apply_offsets, fit_offsets
from ecgnas.ensemble import EnsembleModel, cross_validate, mean_proba
from ecgnas.evaluate import build, load_checkpoint, model_from_checkpoint, save_checkpoint
from ecgnas.models.rrnorm import RRNormed
from ecgnas.train import TrainConfig, fit, predict, predict_proba
from nascore.errors import UserError

FAST = dict(batch_size=32, samples_per_epoch=None, device="cpu", num_threads=1)
FIXED = dict(select="last", patience=None)


# --- augmentations ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", [a for a in AUGMENTATIONS if a != "mix"])
def test_each_augmentation_is_seeded_shape_preserving_and_changes_the_input(name):
    x = torch.randn(8, 2, 60)
    rr = torch.rand(8, 5) + 0.5

    def run(seed):
        return augment_batch(x.clone(), rr.clone(), (name,), peak=20, fs=180,
                             generator=torch.Generator().manual_seed(seed))

    a, b, c = run(0), run(0), run(1)
    assert a[0].shape == x.shape and a[1].shape == rr.shape
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])  # same seed, same output
    changed = a[1] if name == "rr" else a[0]
    other = c[1] if name == "rr" else c[0]
    orig = rr if name == "rr" else x
    assert not torch.equal(changed, orig) and not torch.equal(changed, other)
    if name != "rr":
        assert torch.equal(a[1], rr)  # morphology augmentations leave the RR features alone


def test_same_perturbation_on_both_channels_and_stretch_keeps_the_r_peak():
    x = torch.zeros(4, 2, 61)
    x[:, :, 30] = 1.0  # a spike at the R peak on both channels
    g = torch.Generator().manual_seed(3)
    xs, _ = augment_batch(x, torch.ones(4, 5), ("stretch",), peak=30, fs=180, generator=g)
    assert torch.allclose(xs[:, :, 30], torch.ones(4, 2))  # stretching about the peak keeps it in place
    xn, _ = augment_batch(torch.zeros(4, 2, 61), torch.ones(4, 5), ("noise", "wander", "scale"), peak=30, fs=180,
                          generator=torch.Generator().manual_seed(0))
    assert torch.equal(xn[:, 0], xn[:, 1])  # residual channel = window channel perturbation


def test_mixup_mixes_labels_like_inputs():
    g = torch.Generator().manual_seed(0)
    x = torch.arange(6, dtype=torch.float32).view(6, 1, 1).expand(6, 2, 4).clone()
    y = torch.eye(5)[torch.tensor([0, 1, 2, 3, 0, 1])]
    xm, _, ym = mixup(x, torch.zeros(6, 5), y, g)
    assert torch.allclose(ym.sum(1), torch.ones(6))
    lam = ym.max(1).values
    assert (lam >= 0.5).all()
    xm2, _, ym2 = mixup(x, torch.zeros(6, 5), y, torch.Generator().manual_seed(0))
    assert torch.equal(xm, xm2) and torch.equal(ym, ym2)


def test_parse_augment_rejects_unknown_and_duplicates():
    assert parse_augment("none") == () and parse_augment(None) == ()
    with pytest.raises(UserError, match="twice"):
        parse_augment("scale,scale")
    with pytest.raises(UserError, match="unknown augmentation"):
        TrainConfig(augment="rotate")
    assert TrainConfig(augment=" scale , noise").augment == "scale,noise"


# --- RR standardisation -----------------------------------------------------------------------------
def test_rr_norm_uses_training_statistics_at_evaluation():
    beats = make_beats(rr_set="ratios")
    split = inter_patient_split(beats)
    torch.manual_seed(0)
    net = build("linear", beats.window, 5, 5, {}, in_channels=1)
    assert isinstance(net, RRNormed)
    fit(net, beats, {"train": split["train"], "val": np.zeros(0, np.int64)},
        TrainConfig(epochs=2, **FAST, **FIXED), progress=False)
    tr = split["train"][beats.y[split["train"]] != 4]
    mean = net.rr_norm.running_mean.numpy()
    assert np.allclose(mean, beats.rr[tr].mean(0), atol=0.02)
    assert np.allclose(net.rr_norm.running_var.numpy(), beats.rr[tr].var(0), rtol=0.25, atol=1e-3)


# --- the recipe learns ------------------------------------------------------------------------------
def test_default_recipe_learns_the_synthetic_task_including_rr_only_class():
    """S differs from N only by its RR interval: the default recipe (fixed schedule, inverse class
    weights, augmentations, RR standardisation) must learn all four classes of DS2."""
    beats = make_beats(per_record=80, rr_set="ratios", residual="record")
    split = inter_patient_split(beats)
    ds1 = np.concatenate([split["train"], split["val"]])
    torch.manual_seed(0)
    net = build("resnet", beats.window, 5, 5, {"depth": 1, "width": 8}, in_channels=2)
    cfg = TrainConfig(epochs=8, batch_size=32, device="cpu", num_threads=1)
    assert cfg.select == "last" and cfg.patience is None and cfg.augment != "none"
    fit(net, beats, {"train": ds1, "val": np.zeros(0, np.int64)}, cfg, progress=False)
    te = split["test"]
    assert _macro_f1(beats.y[te], predict(net, beats, te)) > 90


def test_fixed_schedule_needs_no_hold_out_but_early_stopping_does():
    beats = make_beats()
    split = inter_patient_split(beats)
    empty = {"train": split["train"], "val": np.zeros(0, np.int64)}
    fit(build("linear", beats.window, 4, 5, {}), beats, empty, TrainConfig(epochs=1, **FAST, **FIXED), progress=False)
    with pytest.raises(UserError, match="val"):
        fit(build("linear", beats.window, 4, 5, {}), beats, empty,
            TrainConfig(epochs=1, select="best", patience=2, **{k: v for k, v in FAST.items()}), progress=False)


# --- decision offsets -------------------------------------------------------------------------------
def test_fit_offsets_raises_oof_macro_f1_and_fixes_n():
    rng = np.random.default_rng(0)
    y = rng.choice(4, 2000, p=[0.85, 0.05, 0.07, 0.03])
    logits = rng.normal(size=(2000, 5))
    logits[np.arange(2000), y] += 1.5
    logits[:, 1] -= 2.0  # a model that under-calls S
    logits[:, 4] = -20
    p = torch.softmax(torch.as_tensor(logits), 1).numpy()
    b = fit_offsets(y, p)
    assert b[0] == 0 and b[4] == 0 and b[1] >= 0.5  # S is raised back
    assert _macro_f1(y, apply_offsets(p, b).argmax(1)) > _macro_f1(y, p.argmax(1)) + 1
    with pytest.raises(UserError):
        fit_offsets(y[:5], p)


# --- ensembles --------------------------------------------------------------------------------------
def _members(beats, k=3):
    out = []
    for s in range(k):
        torch.manual_seed(s)
        out.append(build("resnet", beats.window, beats.n_rr, 5, {"depth": 1, "width": 4}).eval())
    return out


def test_ensemble_prediction_is_the_mean_of_its_members():
    beats = make_beats()
    idx = np.arange(40)
    members = _members(beats)
    ens = EnsembleModel(members).eval()
    mean = np.mean([predict_proba(m, beats, idx) for m in members], axis=0)
    assert np.allclose(predict_proba(ens, beats, idx), mean, atol=1e-5)
    assert np.allclose(mean_proba(members, beats, idx), mean)
    assert (predict(ens, beats, idx) == mean.argmax(1)).all()
    b = np.array([0.0, 2.0, 0.0, 0.0, 0.0])
    with_b = EnsembleModel(members, b).eval()
    assert (predict(with_b, beats, idx) == apply_offsets(mean, b).argmax(1)).all()


def test_checkpoint_round_trip_keeps_members_offsets_and_rr_statistics(tmp_path):
    from ecgnas.data import DataSpec

    beats = make_beats()
    members = _members(beats, 2)
    for m in members:  # give the RR standardisation some statistics
        m.train()
        m(torch.randn(16, 1, beats.window), torch.rand(16, beats.n_rr) * 3)
        m.eval()
    ens = EnsembleModel(members, [0.0, 1.0, -0.5, 0.25, 0.0]).eval()
    save_checkpoint(tmp_path / "c.pt", ens, name="resnet", hparams={"depth": 1, "width": 4}, window=beats.window,
                    n_rr=beats.n_rr, n_classes=5, spec=DataSpec())
    ckpt = load_checkpoint(tmp_path / "c.pt")
    assert ckpt["version"] == 2 and len(ckpt["members"]) == 2 and ckpt["rr_norm"] is True
    back = model_from_checkpoint(ckpt)
    idx = np.arange(30)
    assert np.allclose(predict_proba(back, beats, idx), predict_proba(ens, beats, idx), atol=1e-6)
    # a version-1 checkpoint (one state dict, no RR standardisation) is still read
    plain = build("resnet", beats.window, beats.n_rr, 5, {"depth": 1, "width": 4}, rr_norm=False)
    torch.save({**{k: v for k, v in ckpt.items() if k not in ("members", "offsets", "rr_norm")}, "version": 1,
                "state_dict": plain.state_dict()}, tmp_path / "v1.pt")
    old = model_from_checkpoint(load_checkpoint(tmp_path / "v1.pt"))
    assert not isinstance(old, RRNormed)


# --- DS2 never chooses anything ---------------------------------------------------------------------
def _scramble_ds2(beats):
    """The same beats with every DS2 beat's input and label replaced by noise."""
    rng = np.random.default_rng(123)
    te = np.isin(beats.record, TEST_RECS)
    beats.x[te] = rng.normal(size=beats.x[te].shape).astype(np.float32)
    beats.rr[te] = rng.uniform(0.1, 3, size=beats.rr[te].shape).astype(np.float32)
    beats.y[te] = rng.integers(0, 4, te.sum())
    return beats


def test_cross_validation_offsets_and_members_never_read_ds2():
    cfg = TrainConfig(epochs=2, **FAST, **FIXED)
    runs = []
    for scramble in (False, True):
        beats = make_beats(rr_set="ratios")
        if scramble:
            beats = _scramble_ds2(beats)
        folds = record_folds(beats, 3)
        assert not any(np.isin(beats.record[f], TEST_RECS).any() for f in folds)
        cv = cross_validate(lambda k: build("resnet", beats.window, 5, 5, {"depth": 1, "width": 4}), beats, folds, cfg)
        y = beats.y[cv["index"]]
        runs.append((cv, fit_offsets(y, cv["proba"])))
    (a, ba), (b, bb) = runs
    assert np.array_equal(a["index"], b["index"]) and np.allclose(a["proba"], b["proba"])
    assert np.array_equal(ba, bb)
    for ma, mb in zip(a["members"], b["members"]):
        assert all(torch.equal(x, y) for x, y in zip(ma.state_dict().values(), mb.state_dict().values()))
    with pytest.raises(UserError, match="fixed schedule"):
        cross_validate(lambda k: None, make_beats(), record_folds(make_beats(), 2),
                       TrainConfig(select="best", patience=2, **FAST))


ARGS = ["train", "--model", "resnet", "--epochs", "2", "--batch-size", "32", "--window", "0.05,0.1",
        "--hparam", "depth=1", "--hparam", "width=4", "--threads", "1", "--device", "cpu", "--quiet",
        "--folds", "3"]


def test_train_run_choices_are_identical_whatever_ds2_holds(tmp_path, monkeypatch):
    """Recipe, offsets, ensemble members and the out-of-fold score of `ecgnas train` come out
    bit-identical when every DS2 beat is replaced by noise: DS2 only feeds the final report."""
    import ecgnas.data as ecgdata

    install_fake_loader(monkeypatch)
    clean_loader = ecgdata.load_beats
    outs = []
    for scramble in (False, True):
        monkeypatch.setattr(ecgdata, "load_beats",
                            (lambda *a, **k: _scramble_ds2(clean_loader(*a, **k))) if scramble else clean_loader)
        run = tmp_path / f"run{int(scramble)}"
        assert cli(ARGS + ["--ensemble", "3", "--decision", "cv", "--output", str(run)]) == 0
        outs.append(run)
    a, b = (load_checkpoint(r / "checkpoint.pt") for r in outs)
    assert a["offsets"] == b["offsets"]
    for sa, sb in zip(a["members"], b["members"]):
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    cva, cvb = (json.loads((r / "cv_metrics.json").read_text()) for r in outs)
    assert cva["macro_f1"] == cvb["macro_f1"]
    ma, mb = (json.loads((r / "metrics.json").read_text()) for r in outs)
    assert ma["confusion"] != mb["confusion"]  # ... while the DS2 report itself did change


def test_train_cli_single_and_ensemble_runs_and_evaluate_applies_offsets(tmp_path, monkeypatch):
    install_fake_loader(monkeypatch)
    run = tmp_path / "single"
    assert cli(ARGS + ["--cv", "--output", str(run)]) == 0
    summary = json.loads((run / "train_summary.json").read_text())
    assert summary["members"] == 1 and summary["offsets"] is None and len(summary["offsets_not_applied"]) == 5
    assert {"cv", "cv_ensemble_test", "test_offsets"} <= set(summary)
    assert load_checkpoint(run / "checkpoint.pt")["offsets"] == []  # the default decision: plain argmax
    log = (run / "train_log.jsonl").read_text()
    assert "NaN" not in log and json.loads(log.splitlines()[0])["val_macro_f1"] is None  # no hold-out, no score
    for name in ("checkpoint.pt", "cv_metrics.json", "oof.npz", "cv_ensemble.pt", "metrics.json"):
        assert (run / name).is_file(), name
    oof = np.load(run / "oof.npz")
    assert not np.isin(oof["index"], np.flatnonzero(np.isin(make_beats().record, TEST_RECS))).any()

    ens = tmp_path / "ens"
    assert cli(ARGS + ["--ensemble", "3", "--decision", "cv", "--output", str(ens)]) == 0
    ckpt = load_checkpoint(ens / "checkpoint.pt")
    assert len(ckpt["members"]) == 3 and len(ckpt["offsets"]) == 5
    assert cli(["evaluate", str(ens), "--quiet", "--device", "cpu"]) == 0
    again = json.loads((ens / "eval-test" / "metrics.json").read_text())
    first = json.loads((ens / "metrics.json").read_text())
    assert again["confusion"] == first["confusion"]  # offsets travel with the checkpoint

    assert cli(ARGS + ["--ensemble", "2", "--members", "seeds", "--output", str(tmp_path / "seeds")]) == 0
    assert len(load_checkpoint(tmp_path / "seeds" / "checkpoint.pt")["members"]) == 2
    assert cli(ARGS + ["--ensemble", "0", "--output", str(tmp_path / "bad")]) == 2
    assert cli(ARGS + ["--ensemble", "2", "--patience", "3", "--output", str(tmp_path / "bad2")]) == 2
    assert not (tmp_path / "bad").exists() and not (tmp_path / "bad2").exists()


def test_rr_skip_starts_as_the_plain_model_and_survives_a_checkpoint(tmp_path):
    from ecgnas.data import DataSpec

    beats = make_beats()
    torch.manual_seed(0)
    plain = build("resnet", beats.window, beats.n_rr, 5, {"depth": 1, "width": 4}).eval()
    torch.manual_seed(0)
    skip = build("resnet", beats.window, beats.n_rr, 5, {"depth": 1, "width": 4, "rr_skip": True}).eval()
    idx = np.arange(20)
    assert np.allclose(predict_proba(plain, beats, idx), predict_proba(skip, beats, idx), atol=1e-6)  # W = 0
    fit(skip, beats, {"train": np.arange(len(beats.y)), "val": np.zeros(0, np.int64)},
        TrainConfig(epochs=2, **FAST, **FIXED), progress=False)
    assert skip.rr_skip.weight.abs().sum() > 0  # the path learns
    save_checkpoint(tmp_path / "c.pt", skip, name="resnet", hparams={"depth": 1, "width": 4, "rr_skip": True},
                    window=beats.window, n_rr=beats.n_rr, n_classes=5, spec=DataSpec())
    back = model_from_checkpoint(load_checkpoint(tmp_path / "c.pt"))
    assert np.allclose(predict_proba(back, beats, idx), predict_proba(skip.eval(), beats, idx), atol=1e-6)
    with pytest.raises(UserError, match="rr_skip"):
        build("resnet", beats.window, beats.n_rr, 5, {"rr_skip": 1})


def test_regular_template_ignores_premature_beats_and_old_configs_keep_their_key():
    from ecgnas.data import PrepConfig
    from ecgnas.data.preprocess import add_residual, beat_inputs, regular_beats

    # 11 regular beats at 1 s, then 20 x (a beat after a 1.5 s pause, two premature beats 0.6 s
    # apart): 40 premature beats against 31 regular ones, an ectopic majority like record 232
    rr = [1.0] * 10 + [1.5, 0.6, 0.6] * 20
    peaks = np.round(np.cumsum([0.5] + rr) * 180).astype(int)
    keep = regular_beats(peaks, 180)
    assert keep[:12].all() and keep[11::3].all() and not keep[12::3].any() and not keep[13::3].any()
    n = len(peaks)
    rng = np.random.default_rng(0)
    x = rng.normal(0, 0.01, (n, 20))
    x[~keep] += 1.0                                          # the premature beats have another shape
    res_all = add_residual(x, "record")[:, 1]
    res_reg = add_residual(x, "record", keep)[:, 1]
    assert np.abs(res_all[~keep]).mean() < 0.1               # median of all windows = the ectopic beat
    assert np.abs(res_reg[~keep]).mean() > 0.9               # template of regular beats shows them
    assert np.abs(res_reg[keep]).mean() < 0.1
    few = np.zeros(n, bool)
    few[:5] = True                                           # fewer than ten kept: all windows used
    assert np.allclose(add_residual(x, "record", few), add_residual(x, "record"))
    sig = np.sin(np.linspace(0, 200, int(peaks[-1]) + 200))
    xa, _ = beat_inputs(sig, peaks, 180, PrepConfig())
    xr, _ = beat_inputs(sig, peaks, 180, PrepConfig(template="regular"))
    assert np.array_equal(xa[:, 0], xr[:, 0]) and not np.array_equal(xa[:, 1], xr[:, 1])
    assert "template" not in PrepConfig().to_dict()          # earlier runs' configs and cache keys hold
    assert PrepConfig(template="regular").key() != PrepConfig().key()
    with pytest.raises(UserError, match="template"):
        PrepConfig(template="mean")


def test_train_cli_template_option_reaches_the_run_config_and_evaluate(tmp_path, monkeypatch):
    install_fake_loader(monkeypatch)
    run = tmp_path / "regular"
    assert cli(ARGS + ["--template", "regular", "--output", str(run)]) == 0
    assert json.loads((run / "config.json").read_text())["prep"]["template"] == "regular"
    assert load_checkpoint(run / "checkpoint.pt")["prep"]["template"] == "regular"
    assert cli(["evaluate", str(run), "--quiet", "--device", "cpu"]) == 0   # same prep key rebuilt
    plain = tmp_path / "plain"
    assert cli(ARGS + ["--output", str(plain)]) == 0
    assert "template" not in json.loads((plain / "config.json").read_text())["prep"]
    assert cli(ARGS + ["--template", "regular", "--output", str(plain)]) == 2   # another configuration
