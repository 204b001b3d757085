"""The released EG-NAS choices (issue 15, items 5-7): σ schedule, the 7-operation set, the ES
fitness evaluation (running BN statistics in eval mode, half batch, double softmax, noise on the
mean), the ``--released`` preset, resume with them, and older run folders without the new fields."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from nascore.cliutil import build_parser
from nascore.darts.ops import DARTS_PRIMITIVES, EGNAS_RELEASED_PRIMITIVES
from nascore.darts.supernet import DartsSupernet, build_supernet, derive_darts
from nascore.darts.train import (adopt_stored_config, default_primitives, run_supernet_search, search_config,
                                 supernet_settings)
from nascore.egnas import RELEASED_ES, ESConfig, EvolutionStrategy, released_settings, sigma_at
from nascore.errors import UserError
from nascore.io import read_json, read_jsonl
from nascore.spaces.darts import parse_genotype
from toy_supernet import ToyNet

torch.set_num_threads(1)


# --- item 5: σ schedule ----------------------------------------------------------------------------
def test_sigma_stays_at_sigma0_under_released_and_decays_under_paper():
    rel, paper = ESConfig(sigma_schedule="released"), ESConfig(sigma_schedule="paper")
    assert ESConfig().sigma_schedule == "paper"                                 # default: the paper's
    assert [sigma_at(e, rel) for e in range(0, 60, 7)] == [1.0] * 9
    assert sigma_at(15, paper) == 1 / 16 and sigma_at(49, paper) == 0.02       # 0.0625 -> 0.02 after warm-up
    assert [sigma_at(e, paper) for e in (0, 1, 3)] == [1.0, 0.5, 0.25]
    assert sigma_at(20, ESConfig(sigma_schedule="released", sigma0=0.3)) == 0.3
    with pytest.raises(UserError, match="sigma_schedule"):
        ESConfig(sigma_schedule="constant")
    # the ES really samples with it: the logged σ, and the spread of the candidates
    net, x, y = _toy()
    for epoch in (15, 30):
        es = EvolutionStrategy(ESConfig(population=40, sigma_schedule="released"), seed=0)
        assert es.step(net, x, y, epoch)["es"][0]["sigma"] == 1.0
        spread = es._candidates(np.full(12, 0.25), epoch, 0).std()
        assert 0.8 < spread < 1.2
    es = EvolutionStrategy(ESConfig(population=40), seed=0)
    assert es.step(net, x, y, 15)["es"][0]["sigma"] == 1 / 16


# --- item 6: the operation set ---------------------------------------------------------------------
def test_egnas_searches_the_released_seven_operations_and_derivation_never_picks_none():
    assert "none" not in EGNAS_RELEASED_PRIMITIVES and len(EGNAS_RELEASED_PRIMITIVES) == 7
    assert set(EGNAS_RELEASED_PRIMITIVES) == set(DARTS_PRIMITIVES) - {"none"}
    assert default_primitives("egnas", "darts") == EGNAS_RELEASED_PRIMITIVES
    assert default_primitives("egnas", "darts1d") == EGNAS_RELEASED_PRIMITIVES
    assert default_primitives("darts", "darts") == DARTS_PRIMITIVES               # DARTS keeps its 8
    assert "none" in default_primitives("egnas", "nb201")                        # the NB-201 cell: its own 5
    cfg = search_config(method="egnas", space="darts", epochs=2)
    assert cfg["primitives"] == list(EGNAS_RELEASED_PRIMITIVES) and "none" not in cfg["primitives"]
    assert search_config(method="darts", space="darts", epochs=2)["primitives"] == list(DARTS_PRIMITIVES)
    assert search_config(method="egnas", space="darts", epochs=2, op_set="darts")["primitives"][0] == "none"
    with pytest.raises(UserError, match="NB-201 cell has its own"):
        search_config(method="egnas", space="nb201", epochs=2, op_set="released")
    net = build_supernet("darts", C=4, layers=3, K=2, primitives=EGNAS_RELEASED_PRIMITIVES)
    assert tuple(net.alpha.shape) == (2, 14, 7) and net.ops_set.primitives == EGNAS_RELEASED_PRIMITIVES
    assert net(torch.randn(2, 3, 8, 8)).shape == (2, 10)
    for seed in range(20):                              # any α: a valid DARTS genotype without 'none'
        w = torch.softmax(3 * torch.randn(2, 14, 7, generator=torch.Generator().manual_seed(seed)), -1)
        text = net.derive(w)
        g = parse_genotype(text)
        assert "none" not in text and len(g.normal) == 8 and len(g.reduce) == 8
    # the same α layout in the 8-op set: the DARTS rule skips 'none' even where it is the largest
    w8 = torch.zeros(2, 14, 8)
    w8[..., 0] = 1.0
    w8[..., 4] = 0.5
    assert "none" not in str(derive_darts(w8, DARTS_PRIMITIVES))


def test_pool_bn_option_drops_the_bn_after_pooling():
    with_bn = DartsSupernet(C=4, layers=3, K=2)
    without = DartsSupernet(C=4, layers=3, K=2, pool_bn=False, ops=None)
    pool = DARTS_PRIMITIVES.index("max_pool_3x3")
    assert isinstance(with_bn.cells[0].edges[0].ops[pool], nn.Sequential)
    assert isinstance(without.cells[0].edges[0].ops[pool], nn.MaxPool2d)
    assert without(torch.randn(2, 3, 8, 8)).shape == (2, 10)


# --- item 7: the ES fitness evaluation ---------------------------------------------------------------
def _toy():
    y = torch.arange(8) % 3
    return ToyNet(), nn.functional.one_hot(y, 3).float(), y


def test_double_softmax_update_and_mean_noise_are_the_released_rule_and_reproducible():
    cfg = ESConfig(population=6, **RELEASED_ES)
    runs = []
    for _ in range(2):
        net, x, y = _toy()
        es = EvolutionStrategy(cfg, seed=4)
        before = net.alpha.detach().clone()
        log = es.step(net, x, y, epoch=20)["es"][0]
        runs.append((net.alpha.detach().clone(), log))
        # recompute the released update from the logged winner: α += 0.1·softmax(softmax(z*/‖z*‖))
        m = torch.softmax(before, -1)
        mean = es.sampling_mean(m, 20, 0)
        assert not np.allclose(mean, m.numpy().ravel()) and np.abs(mean - 0.25).max() < 0.06   # 0.01·N(0, 1)
        z = es._candidates(mean, 20, 0)[log["best"]].reshape(1, 3, 4)
        zn = torch.as_tensor(z, dtype=torch.float32)
        zn = zn / zn.norm(dim=-1, keepdim=True)
        expected = before + 0.1 * torch.softmax(torch.softmax(zn, -1), -1)
        assert torch.allclose(net.alpha.detach(), expected, atol=1e-6)
        assert log["sigma"] == 1.0 and log["batch"] == 4                      # σ0 kept; half of the 8 examples
    assert torch.equal(runs[0][0], runs[1][0]) and runs[0][1] == runs[1][1]   # seeded: bitwise the same
    other = EvolutionStrategy(cfg, seed=5)
    assert not np.array_equal(other.sampling_mean(torch.full((1, 3, 4), 0.25), 20, 0),
                              EvolutionStrategy(cfg, seed=4).sampling_mean(torch.full((1, 3, 4), 0.25), 20, 0))
    # the noise on the mean is its own stream: the candidates' noise is the same with or without it
    base = EvolutionStrategy(ESConfig(population=6), seed=4)
    noisy = EvolutionStrategy(ESConfig(population=6, mean_noise=0.01), seed=4)
    mean = np.full(12, 0.25)
    assert np.array_equal(base._candidates(mean, 20, 0), noisy._candidates(mean, 20, 0))
    # default (ours): single softmax, whole batch, no noise on the mean
    d = EvolutionStrategy(ESConfig())
    assert d.sampling_mean(torch.full((1, 3, 4), 0.25), 3, 0).tolist() == [0.25] * 12
    w = torch.tensor([[0.7, 0.1, 0.1, 0.1]])
    assert torch.equal(d.direction_of(w), w)
    for bad in ({"batch_fraction": 0.0}, {"batch_fraction": 1.5}, {"mean_noise": -0.1}, {"double_softmax": 1}):
        with pytest.raises(UserError):
            ESConfig(**bad)


def _bns(net):
    return [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def test_released_scoring_is_eval_mode_with_running_bn_statistics():
    net = build_supernet("nb201", C=4, layers=1, K=2, seed=0, bn_running_stats=True, pool_bn=False)
    assert _bns(net) and all(b.track_running_stats for b in _bns(net))
    assert all(not b.track_running_stats for b in _bns(build_supernet("nb201", C=4, layers=1, K=2)))   # ours
    g = torch.Generator().manual_seed(0)
    net.train()
    with torch.no_grad():
        for _ in range(3):                                                     # weight training fills them
            net(torch.randn(16, 3, 8, 8, generator=g) * 2 + 1)
    stats = [(b.running_mean.clone(), b.running_var.clone(), int(b.num_batches_tracked)) for b in _bns(net)]
    x, y = torch.randn(8, 3, 8, 8, generator=g), torch.arange(8) % 10
    es = EvolutionStrategy(ESConfig(population=3, batch_fraction=0.5), seed=0)
    seen_modes = []
    hook = net.stem[1].register_forward_hook(lambda m, i, o: seen_modes.append(m.training))
    alpha0 = net.alpha.detach().clone()
    log = es.step(net, x, y, epoch=5)["es"][0]
    hook.remove()
    assert seen_modes and not any(seen_modes)                                  # every BN call in eval mode
    assert net.training                                                        # mode restored
    for b, (mean, var, n) in zip(_bns(net), stats):                            # scoring leaves them as they were
        assert torch.equal(b.running_mean, mean) and torch.equal(b.running_var, var) and int(b.num_batches_tracked) == n
    # α's CE in the log is the one with the running statistics on the first half of the batch
    net.alpha.data.copy_(alpha0)
    net.eval()
    with torch.no_grad():
        ce_running = float(nn.functional.cross_entropy(net(x[:4]), y[:4]))
        net.train()
        ce_batch = float(nn.functional.cross_entropy(net(x[:4]), y[:4]))
    assert log["batch"] == 4 and log["alpha_ce"] == pytest.approx(ce_running, abs=1e-5)
    assert abs(ce_running - ce_batch) > 1e-4                                   # running ≠ batch statistics


# --- the preset, resume, old folders ---------------------------------------------------------------
def _images(n=24, size=8, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g), torch.arange(n) % classes


def _cfg(space="darts", es=None, **kw):
    return search_config(method="egnas", space=space, dataset="synthetic", epochs=3, warmup=1, C=4,
                         layers=1 if space == "nb201" else 3, K=2, batch_size=8,
                         es={"population": 3, **(es or {})}, **kw)


def _released_cfg(space="darts"):
    es, sn = released_settings(space, {"population": 3})
    return _cfg(space, es=es, **sn)


def test_cli_released_preset_and_explicit_overrides():
    from nascore.commands.egnas import es_settings
    parser = build_parser("nascore", "", ["nascore.commands.egnas", "nascore.commands.darts"])
    args = parser.parse_args(["egnas", "search", "--space", "darts", "--released"])
    es, sn = es_settings(args)
    assert {k: es[k] for k in RELEASED_ES} == RELEASED_ES
    assert sn == {"op_set": "released", "pool_bn": False, "bn_running_stats": True}
    args = parser.parse_args(["egnas", "search", "--released", "--sigma-schedule", "paper", "--pool-bn",
                              "--es-batch-fraction", "1"])
    es, sn = es_settings(args)
    assert es["sigma_schedule"] == "paper" and es["batch_fraction"] == 1 and es["double_softmax"] is True
    assert sn == {"op_set": None, "pool_bn": True, "bn_running_stats": True}    # nb201: its own op set
    es, sn = es_settings(parser.parse_args(["egnas", "search"]))              # no preset: ours
    assert {k: es[k] for k in RELEASED_ES} == {k: getattr(ESConfig(), k) for k in RELEASED_ES}
    assert sn == {"op_set": None, "pool_bn": True, "bn_running_stats": False}
    cfg = search_config(method="egnas", space="darts", epochs=2, es=es_settings(
        parser.parse_args(["egnas", "search", "--released", "--space", "darts"]))[0],
        **es_settings(parser.parse_args(["egnas", "search", "--released", "--space", "darts"]))[1])
    assert cfg["es"]["sigma_schedule"] == "released" and cfg["bn_running_stats"] and not cfg["pool_bn"]


class _Killed(Exception):
    pass


def _kill_at(epoch):
    def kill(rec):
        if rec["epoch"] == epoch:
            raise _Killed
    return kill


def _strip(r):
    return {k: v for k, v in r.items() if k != "seconds"}


@pytest.mark.parametrize("space", ["darts", "nb201"])
def test_resume_with_released_options_equals_uninterrupted(space, tmp_path):
    imgs = _images()
    cfg = _released_cfg(space)
    full = run_supernet_search(cfg, tmp_path / "full", images=imgs, progress=False)
    with pytest.raises(_Killed):
        run_supernet_search(_released_cfg(space), tmp_path / "res", images=imgs, progress=False, on_epoch=_kill_at(1))
    resumed = run_supernet_search(_released_cfg(space), tmp_path / "res", images=imgs, progress=False)
    assert resumed["finished"] and resumed["alpha"] == full["alpha"]
    key = "genotype" if space == "darts" else "arch"
    assert resumed[key] == full[key]
    assert [_strip(r) for r in read_jsonl(tmp_path / "res" / "log.jsonl")] == \
           [_strip(r) for r in read_jsonl(tmp_path / "full" / "log.jsonl")]
    log = read_jsonl(tmp_path / "full" / "log.jsonl")
    assert [r["es"][0]["sigma"] for r in log[1:]] == [1.0, 1.0] and log[1]["es"][0]["batch"] == 4
    n_ops = 7 if space == "darts" else 5
    assert np.array(full["alpha"]).shape[-1] == n_ops
    if space == "darts":
        assert "none" not in full["genotype"]
        st = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=True)
        assert st["primitives"] == list(EGNAS_RELEASED_PRIMITIVES)
        assert any(k.endswith("running_mean") for k in st["model"])             # running statistics saved
    assert read_json(tmp_path / "full" / "config.json")["es"]["double_softmax"] is True


def _make_old_folder(folder, imgs):
    """A run folder as written before the new settings existed: 8 operations, a BN after pooling,
    batch statistics, the ES without the new fields; killed after epoch 1."""
    cfg = _cfg("darts", op_set="darts")
    with pytest.raises(_Killed):
        run_supernet_search(cfg, folder, images=imgs, progress=False, on_epoch=_kill_at(1))
    old = json.loads((folder / "config.json").read_text())
    for k in ("primitives", "pool_bn", "bn_running_stats"):
        del old[k]
    for k in RELEASED_ES:
        del old["es"][k]
    (folder / "config.json").write_text(json.dumps(old))
    return old


def test_old_folder_without_the_new_fields_resumes_with_its_own_settings(tmp_path, capsys):
    imgs = _images()
    old = _make_old_folder(tmp_path / "old", imgs)
    assert supernet_settings(old) == {"primitives": DARTS_PRIMITIVES, "pool_bn": True, "bn_running_stats": False}
    assert ESConfig(**old["es"]) == ESConfig(population=3)                    # missing ES fields: the old behaviour
    today = _cfg("darts")                                                      # today's command: 7 ops by default
    assert today["primitives"] == list(EGNAS_RELEASED_PRIMITIVES)
    assert adopt_stored_config(tmp_path / "old", today) == old
    res = run_supernet_search(today, tmp_path / "old", images=imgs, progress=True)
    assert "resuming it with its own" in capsys.readouterr().err
    assert json.loads((tmp_path / "old" / "config.json").read_text()) == old   # not rewritten
    ref = run_supernet_search(_cfg("darts", op_set="darts"), tmp_path / "ref", images=imgs, progress=False)
    assert res["finished"] and res["alpha"] == ref["alpha"] and res["genotype"] == ref["genotype"]
    assert np.array(res["alpha"]).shape[-1] == 8
    # explicit old values are the same request; a real difference is refused and named alone
    assert adopt_stored_config(tmp_path / "old", _cfg("darts", op_set="darts", es={"sigma_schedule": "paper"})) == old
    with pytest.raises(UserError, match="different configuration") as e:
        run_supernet_search(_cfg("darts", seed=1), tmp_path / "old", images=imgs, progress=False)
    assert "seed: 0 there, 1 now" in str(e.value) and "primitives" not in str(e.value)
    with pytest.raises(UserError, match="es.sigma_schedule: \\(missing\\) there, 'released' now"):
        run_supernet_search(_cfg("darts", es={"sigma_schedule": "released"}), tmp_path / "old", images=imgs,
                            progress=False)
    # a new folder of today's command is a 7-operation search
    new = run_supernet_search(today, tmp_path / "new", images=imgs, progress=False)
    assert np.array(new["alpha"]).shape[-1] == 7


def test_derive_cli_reads_the_op_set_from_the_checkpoint(tmp_path, capsys):
    from nascore.cli import main as nascore_main
    res = run_supernet_search(_cfg("darts"), tmp_path / "r", images=_images(), progress=False)
    assert nascore_main(["darts", "derive", "--checkpoint", str(tmp_path / "r" / "checkpoint.pt"), "--space",
                         "darts"]) == 0
    assert capsys.readouterr().out.strip() == res["genotype"]


def test_ecg_egnas_search_uses_seven_operations_and_old_ecg_folder_resumes(tmp_path):
    from test_ecg_supernet import SMALL, _beats, _split

    from ecgnas.supernet import egnas_ecg_search
    kw = dict(method="egnas", epochs=2, warmup=1, es={"population": 2}, progress=False, **SMALL)
    beats = _beats()
    res = egnas_ecg_search(beats, _split(), tmp_path / "new", **kw)
    assert np.array(res["alpha"]).shape == (2, 14, 7) and "none" not in res["genotype"]
    assert res["config"]["primitives"] == list(EGNAS_RELEASED_PRIMITIVES)
    darts = egnas_ecg_search(beats, _split(), tmp_path / "darts", **{**kw, "method": "darts", "es": None})
    assert np.array(darts["alpha"]).shape == (2, 14, 8)                        # DARTS keeps its 8
    # an ECG folder from before the op-set field: killed after epoch 0, resumed with 8 operations
    with pytest.raises(_Killed):
        egnas_ecg_search(beats, _split(), tmp_path / "old", op_set="darts", on_epoch=_kill_at(0), **kw)
    old = json.loads((tmp_path / "old" / "config.json").read_text())
    for k in ("primitives", "pool_bn", "bn_running_stats"):
        del old[k]
    for k in RELEASED_ES:
        del old["es"][k]
    (tmp_path / "old" / "config.json").write_text(json.dumps(old))
    resumed = egnas_ecg_search(beats, _split(), tmp_path / "old", **kw)
    ref = egnas_ecg_search(beats, _split(), tmp_path / "ref", op_set="darts", **kw)
    assert resumed["finished"] and resumed["alpha"] == ref["alpha"] and resumed["genotype"] == ref["genotype"]
