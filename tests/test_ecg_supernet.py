"""ECG supernet (1D DARTS body + RR head), EG-NAS / DARTS search on beats, evaluation network of a genotype."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from ecgnas.spaces.darts1d import darts1d_opset
from ecgnas.supernet import ECGEvalNet, ECGSearchTask, ECGSupernet, ecg_search_config, egnas_ecg_search
from nascore.darts.train import save_checkpoint
from nascore.egnas import ESConfig, EvolutionStrategy, compound_fitness
from nascore.errors import UserError
from nascore.io import read_json, read_jsonl
from nascore.spaces.darts import parse_genotype

L = 64


def _beats(n=300, channels=1, seed=0):
    """3 classes (N, S, V) that differ in the bump position and the RR features; N is the majority."""
    rng = np.random.default_rng(seed)
    y = rng.choice(3, n, p=[0.6, 0.2, 0.2]).astype(np.int64)
    t = np.arange(L)
    pos = np.array([20, 32, 44])[y] + rng.integers(-2, 3, n)
    x = np.exp(-0.5 * ((t[None] - pos[:, None]) / 3.0) ** 2) + 0.1 * rng.standard_normal((n, L))
    if channels == 2:
        x = np.stack([x, x - x.mean(0, keepdims=True)], axis=1)
    rr = np.stack([1.0 - 0.3 * (y == 1), 1.0 + 0.2 * (y == 2), np.ones(n), np.ones(n)], axis=1)
    rr = rr + 0.05 * rng.standard_normal(rr.shape)
    return SimpleNamespace(x=x.astype(np.float32), rr=rr.astype(np.float32), y=y)


def _split(n=300):
    return {"train": np.arange(0, 200), "val": np.arange(200, 260), "test": np.arange(260, n)}


SMALL = dict(C=4, layers=3, K=2, batch_size=32, samples_per_epoch=64, eval_batch_size=64)


def test_supernet_forward_with_tuple_inputs_and_alpha_api():
    torch.manual_seed(0)
    net = ECGSupernet(in_channels=2, n_rr=4, C=4, layers=3, K=2, seed=1)
    x, rr = torch.randn(5, 2, L), torch.randn(5, 4)
    assert tuple(net.alpha.shape) == (2, 14, 8) and net.space == "darts1d"
    assert net(x, rr).shape == (5, 5)
    assert net(x, rr, torch.softmax(torch.zeros(2, 14, 8), -1)).shape == (5, 5)
    assert net.features(x).shape == (5, net.body.feature_dim)
    with pytest.raises(UserError, match="shape"):
        net(x, rr, torch.ones(1, 6, 5))
    with pytest.raises(UserError, match="RR features"):
        net(x, torch.randn(5, 3))
    assert all(p is not net.alpha for p in net.weight_parameters())
    assert len(net.weight_parameters()) == len(list(net.parameters())) - 1
    assert any(p is net.head.head[0].weight for p in net.weight_parameters())     # the head is trained too
    one = ECGSupernet(in_channels=1, n_rr=4, C=4, layers=3, K=2)
    assert one(torch.randn(3, L), torch.randn(3, 4)).shape == (3, 5)              # [B, L] gets its channel axis
    a, b = ECGSupernet(C=4, layers=3, K=2, seed=3), ECGSupernet(C=4, layers=3, K=2, seed=3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert len(parse_genotype(net.derive()).normal) == len(net.genotype().reduce) == 8
    with pytest.raises(UserError, match="K=3"):
        ECGSupernet(C=4, layers=3, K=3)
    assert darts1d_opset().primitives == net.ops_set.primitives


def test_es_step_with_tuple_inputs_moves_alpha_only():
    beats = _beats()
    net = ECGSupernet(in_channels=1, n_rr=4, C=4, layers=3, K=2, seed=0)
    net.train()
    x = torch.as_tensor(beats.x[:32]).unsqueeze(1)
    rr, y = torch.as_tensor(beats.rr[:32]), torch.as_tensor(beats.y[:32])
    before = {k: v.clone() for k, v in net.state_dict().items()}
    log = EvolutionStrategy(ESConfig(population=4), seed=0).step(net, (x, rr), y, epoch=0)["es"][0]
    after = net.state_dict()
    assert not torch.equal(before["body.alpha"], after["body.alpha"])
    assert all(torch.equal(before[k], after[k]) for k in before if k != "body.alpha")
    assert net.training                                                        # mode restored
    assert log["best_fitness"] == pytest.approx(compound_fitness(log["best_ce"], log["best_similarity"],
                                                                 log["best_at_least_as_accurate"]))


def test_genotype_builds_an_eval_net_that_fit_trains():
    from ecgnas.train import TrainConfig, fit
    net = ECGSupernet(C=4, layers=3, K=2, seed=0)
    w = torch.zeros(2, 14, 8)
    w[..., 5] = 1.0                                                            # sep_conv_5x5 everywhere
    text = net.derive(w)
    g = parse_genotype(text)
    assert all(op == "sep_conv_5x5" for op, _ in g.normal + g.reduce) and "none" not in net.derive()
    beats = _beats(channels=2)
    torch.manual_seed(0)
    model = ECGEvalNet(text, in_channels=2, window=L, n_rr=4, C=4, layers=3, dropout=0.1)
    assert model(torch.randn(3, 2, L), torch.randn(3, 4)).shape == (3, 5)
    res = fit(model, beats, _split(), TrainConfig(epochs=1, batch_size=32, samples_per_epoch=64, device="cpu",
                                                            amp=False), progress=False)
    assert res.epochs_run == 1 and np.isfinite(res.history[0]["train_loss"])
    with pytest.raises(UserError, match="unknown operation"):
        ECGEvalNet(text.replace("'sep_conv_5x5'", "'conv_9x9'"), window=L)


def test_es_batch_is_balanced():
    cfg = ecg_search_config(epochs=2, warmup=1, **SMALL)
    task = ECGSearchTask(_beats(), _split(), cfg, "cpu")
    (xb, rrb), yb = task.es_batch(1)
    counts = np.bincount(yb.numpy(), minlength=3)
    assert xb.shape == (32, 1, L) and rrb.shape == (32, 4)
    assert counts.min() >= 5                                                  # natural mix would be ~60 % N
    assert torch.equal(task.es_batch(1)[1], yb) and not torch.equal(task.es_batch(2)[1], yb)
    q = _beats()
    q.y[[0, 1, 250]] = 4                                                      # Q beats: out of every drawn batch
    task = ECGSearchTask(q, _split(), cfg, "cpu")
    assert task.identity["n_train"] == 198 and task.identity["n_val"] == 60
    assert all(4 not in yb.tolist() for _, yb in task.train_batches(0)) and 4 not in task.es_batch(0)[1].tolist()


class _Killed(Exception):
    pass


def _strip(r):
    return {k: v for k, v in r.items() if k != "seconds"}


def test_search_resumes_after_a_kill_to_the_same_result_and_never_reads_test(tmp_path, capsys):
    torch.set_num_threads(1)
    beats = _beats()
    beats.x[260:] = np.nan                                                    # DS2 stand-in: any use would show
    kw = dict(method="egnas", epochs=3, warmup=1, es={"population": 3}, progress=False, **SMALL)
    full = egnas_ecg_search(beats, _split(), tmp_path / "full", **kw)

    def kill(rec):
        if rec["epoch"] == 1:
            raise _Killed

    with pytest.raises(_Killed):
        egnas_ecg_search(beats, _split(), tmp_path / "res", on_epoch=kill, **kw)
    assert read_json(tmp_path / "res" / "result.json")["finished"] is False
    resumed = egnas_ecg_search(beats, _split(), tmp_path / "res", **kw)
    assert resumed["finished"] and resumed["epochs_done"] == 3
    assert resumed["alpha"] == full["alpha"] and resumed["genotype"] == full["genotype"]
    assert resumed["valid_macro_f1_supernet"] == full["valid_macro_f1_supernet"]
    assert [_strip(r) for r in read_jsonl(tmp_path / "res" / "log.jsonl")] == \
           [_strip(r) for r in read_jsonl(tmp_path / "full" / "log.jsonl")]
    assert full["method"] == "egnas" and full["space"] == "darts1d" and parse_genotype(full["genotype"])
    assert 0 <= full["valid_macro_f1_supernet"] <= 100 and set(full["seconds"]) == {"es", "weights", "eval"}
    assert full["config"]["data"]["n_val"] == 60 and full["config"]["data"]["window"] == L
    log = read_jsonl(tmp_path / "full" / "log.jsonl")
    assert "es" not in log[0] and len(log[1]["es"]) == 1                     # ES only after the warm-up
    assert all(np.isfinite(r["train_loss"]) and np.isfinite(r["valid_loss"]) for r in log)
    assert log[1]["alpha"] != log[0]["alpha"]
    for name in ("config.json", "checkpoint.pt", "alpha.png"):
        assert (tmp_path / "full" / name).stat().st_size > 0
    with pytest.raises(UserError, match="different configuration"):       # another config is refused
        egnas_ecg_search(beats, _split(), tmp_path / "full", **{**kw, "seed": 1})
    from nascore.cli import main as nascore_main                              # the core CLI derives from it
    assert nascore_main(["darts", "derive", "--checkpoint", str(tmp_path / "full" / "checkpoint.pt"),
                         "--space", "darts1d"]) == 0
    assert capsys.readouterr().out.strip() == full["genotype"]


def test_darts_method_runs_on_two_channel_beats(tmp_path):
    res = egnas_ecg_search(_beats(channels=2), _split(), tmp_path / "d", method="darts", epochs=2, progress=False,
                           eval_bn_batches=0, **SMALL)                     # hold-out batch statistics
    assert res["finished"] and res["method"] == "darts" and res["config"]["data"]["in_channels"] == 2
    log = read_jsonl(tmp_path / "d" / "log.jsonl")
    assert all(r["arch_loss"] is not None for r in log)                      # α steps from epoch 0 (warm-up 0)
    assert log[0]["alpha"] != log[1]["alpha"]


def _one_line(excinfo):
    assert "\n" not in str(excinfo.value)
    return str(excinfo.value)


def test_bad_inputs_are_one_line_user_errors(tmp_path):
    beats = _beats()
    with pytest.raises(UserError, match="unknown search method 'bogus'") as e:
        egnas_ecg_search(beats, _split(), tmp_path / "a", method="bogus", epochs=1, **SMALL)
    _one_line(e)
    with pytest.raises(UserError, match=r"split\['val'\] is empty") as e:
        egnas_ecg_search(beats, {"train": np.arange(200), "val": np.arange(0)}, tmp_path / "b", epochs=1, warmup=0,
                         **SMALL)
    _one_line(e)
    assert not (tmp_path / "b").exists()                                       # nothing written
    with pytest.raises(UserError, match="warmup") as e:
        ecg_search_config(epochs=2, warmup=3)
    _one_line(e)
    # an α checkpoint from another space / of another shape in the run folder
    kw = dict(method="darts", epochs=2, progress=False, **SMALL)
    run = tmp_path / "c"
    with pytest.raises(_Killed):
        egnas_ecg_search(beats, _split(), run, on_epoch=lambda r: (_ for _ in ()).throw(_Killed()), **kw)
    save_checkpoint(run / "checkpoint.pt", {"space": "nb201", "alpha": torch.zeros(1, 6, 5), "epoch": 0})
    with pytest.raises(UserError, match="from space 'nb201' with shape \\[1, 6, 5\\]") as e:
        egnas_ecg_search(beats, _split(), run, **kw)
    _one_line(e)
    save_checkpoint(run / "checkpoint.pt", {"space": "darts1d", "alpha": torch.zeros(2, 14, 5), "epoch": 0})
    with pytest.raises(UserError, match="shape \\[2, 14, 5\\]") as e:
        egnas_ecg_search(beats, _split(), run, **kw)
    _one_line(e)
