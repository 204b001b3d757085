"""EG-NAS evolution strategy, compound fitness, resumable supernet searches, CLI, one real-data check."""

from __future__ import annotations


import numpy as np
import pytest
import torch
from torch import nn

from nascore.cli import main as nascore_main
from nascore.darts.train import run_supernet_search, search_config
from nascore.egnas import ESConfig, EvolutionStrategy, compound_fitness, edge_similarity, sigma_at
from nascore.errors import UserError
from nascore.io import read_json, read_jsonl

from conftest import real_dataset
from toy_supernet import ToyNet


def test_compound_fitness_sign_rule():
    # at least as accurate: similarity to α is penalised; less accurate: rewarded (minimised fitness)
    assert compound_fitness(1.0, 0.75, True, zeta=1.0, eta=0.4) == pytest.approx(1.3)
    assert compound_fitness(1.0, 0.75, False, zeta=1.0, eta=0.4) == pytest.approx(0.7)
    assert compound_fitness(2.0, 0.5, True, zeta=0.5, eta=0.0) == pytest.approx(1.0)
    m = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    assert edge_similarity(m, m) == pytest.approx(1.0)
    assert edge_similarity(m, -m) == pytest.approx(0.0)
    assert edge_similarity(m, torch.tensor([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]])) == pytest.approx(0.75)
    assert sigma_at(0, ESConfig()) == 1.0 and sigma_at(3, ESConfig()) == 0.25 and sigma_at(500, ESConfig()) == 0.02
    with pytest.raises(UserError, match="population"):
        ESConfig(population=1)


def test_es_step_moves_alpha_toward_the_better_candidate():
    net = ToyNet()
    y = torch.arange(4) % 3
    x = nn.functional.one_hot(y, 3).float()
    before = torch.softmax(net.alpha.detach(), -1).clone()
    es = EvolutionStrategy(ESConfig(population=20, eta=0.0, sigma0=0.5, step_size=1.0), seed=0)
    log = es.step(net, x, y, epoch=0)["es"][0]
    after = torch.softmax(net.alpha.detach(), -1)
    assert log["best_ce"] <= log["ce_mean"]                      # the winner is the lowest-CE candidate (η = 0)
    assert after[..., 2].mean() > before[..., 2].mean() + 0.01   # α moved toward the good op (what the net rewards)
    # move() is the update rule: α += λ · softmax(z*), so α gains most where the candidate is largest
    net2 = ToyNet()
    best = torch.softmax(torch.tensor([[0.0, 0.0, 3.0, 0.0]] * 3).view(1, 3, 4), -1)
    EvolutionStrategy(ESConfig(step_size=0.5)).move(net2, best)
    assert torch.allclose(net2.alpha.detach(), 0.5 * best)
    cos_before = nn.functional.cosine_similarity(torch.full((3, 4), 0.25), best.view(3, 4), -1).mean()
    cos_after = nn.functional.cosine_similarity(torch.softmax(net2.alpha.detach(), -1).view(3, 4), best.view(3, 4), -1).mean()
    assert cos_after > cos_before


class _TwoInputNet(ToyNet):
    """Same logits as ToyNet, from two inputs (like the ECG supernet's beats and RR features); has dropout."""

    def __init__(self):
        super().__init__()
        self.drop = nn.Dropout(0.5)

    def forward(self, x, scale, w=None):
        return self.drop(super().forward(x, w) * scale)


def test_es_step_accepts_tuple_inputs_and_scores_in_eval_mode():
    y = torch.arange(6) % 3
    x = nn.functional.one_hot(y, 3).float()
    a, b = ToyNet(), _TwoInputNet()
    b.train()
    la = EvolutionStrategy(ESConfig(population=5), seed=1).step(a, x, y, epoch=0)
    lb = EvolutionStrategy(ESConfig(population=5), seed=1).step(b, (x, torch.ones(())), y, epoch=0)
    assert la == lb and torch.equal(a.alpha, b.alpha)          # tuple inputs, no dropout while scoring
    assert b.training                                         # the network's mode is restored


def test_es_noise_depends_on_seed_and_epoch_only():
    net = ToyNet()
    y = torch.arange(6) % 3
    x = nn.functional.one_hot(y, 3).float()
    a = EvolutionStrategy(ESConfig(population=5), seed=1)
    b = EvolutionStrategy(ESConfig(population=5), seed=1)
    mean = np.full(12, 0.25)
    assert np.array_equal(a._candidates(mean, 4, 0), b._candidates(mean, 4, 0))
    assert not np.array_equal(a._candidates(mean, 4, 0), a._candidates(mean, 5, 0))
    cma = EvolutionStrategy(ESConfig(population=6, cma=True), seed=2)
    cma.step(net, x, y, epoch=2)
    cma.step(net, x, y, epoch=3)
    assert cma.cma.generation == 2                              # one persistent CMA object, told twice
    restored = EvolutionStrategy(ESConfig(population=6, cma=True), seed=2)
    restored.load_state_dict(cma.state_dict())
    assert restored.cma.generation == 2 and np.allclose(restored.cma._C, cma.cma._C)
    assert not np.allclose(cma.cma._C, np.eye(12))                # covariance adaptation acted
    assert np.array_equal(restored._candidates(np.full(12, 0.25), 4, 0), cma._candidates(np.full(12, 0.25), 4, 0))


def _images(n=24, size=8, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g), torch.arange(n) % classes


def _cfg(method, space="nb201", **kw):
    es = {"population": 3, **kw.pop("es", {})} if method == "egnas" else None
    return search_config(method=method, space=space, dataset="synthetic", epochs=3, warmup=1, C=4,
                         layers=1 if space == "nb201" else 3, K=2, batch_size=8, es=es, **kw)


class _Killed(Exception):
    pass


@pytest.mark.parametrize("method,space,es", [("egnas", "nb201", {}), ("egnas", "nb201", {"cma": True, "population": 6}),
                                             ("darts", "nb201", {}), ("egnas", "darts", {})])
def test_resume_after_kill_equals_uninterrupted(method, space, es, tmp_path):
    torch.set_num_threads(1)
    imgs = _images()
    kw = {"es": es} if method == "egnas" else {}
    full = run_supernet_search(_cfg(method, space, **kw), tmp_path / "full", images=imgs, progress=False)

    def kill(rec):
        if rec["epoch"] == 1:
            raise _Killed

    with pytest.raises(_Killed):
        run_supernet_search(_cfg(method, space, **kw), tmp_path / "res", images=imgs, progress=False, on_epoch=kill)
    assert read_json(tmp_path / "res" / "result.json")["finished"] is False
    resumed = run_supernet_search(_cfg(method, space, **kw), tmp_path / "res", images=imgs, progress=False)
    assert resumed["finished"] and resumed["epochs_done"] == 3
    assert resumed["alpha"] == full["alpha"]
    key = "arch" if space == "nb201" else "genotype"
    assert resumed[key] == full[key]
    strip = lambda r: {k: v for k, v in r.items() if k != "seconds"}  # noqa: E731
    assert [strip(r) for r in read_jsonl(tmp_path / "res" / "log.jsonl")] == \
           [strip(r) for r in read_jsonl(tmp_path / "full" / "log.jsonl")]
    if method == "egnas":
        log = read_jsonl(tmp_path / "full" / "log.jsonl")
        assert "es" not in log[0] and len(log[1]["es"]) == 1     # ES only after the warm-up epoch
        e = log[1]["es"][0]
        assert e["best_fitness"] == pytest.approx(
            compound_fitness(e["best_ce"], e["best_similarity"], e["best_at_least_as_accurate"]))
    else:
        log = read_jsonl(tmp_path / "full" / "log.jsonl")
        assert log[0]["arch_loss"] is None and log[-1]["arch_loss"] is not None   # α steps after warm-up
    assert (tmp_path / "full" / "alpha.png").stat().st_size > 1000


def test_alpha_changes_only_after_warmup_and_other_config_refused(tmp_path):
    imgs = _images()
    cfg = _cfg("egnas")
    run_supernet_search(cfg, tmp_path / "r", images=imgs, progress=False)
    log = read_jsonl(tmp_path / "r" / "log.jsonl")
    assert log[0]["alpha"] != log[1]["alpha"] != log[2]["alpha"]
    with pytest.raises(UserError, match="different configuration"):
        run_supernet_search(_cfg("egnas", es={"eta": 0.1}), tmp_path / "r", images=imgs, progress=False)
    with pytest.raises(UserError, match="--warmup"):
        search_config(method="egnas", space="nb201", epochs=3, warmup=5)
    with pytest.raises(UserError, match="unknown space"):
        search_config(method="egnas", space="nb101")


def _write_tree(folder, n=12):
    from PIL import Image
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for c in range(10):
            d = folder / split / f"c{c}"
            d.mkdir(parents=True)
            for k in range(n // 10 + 1):
                Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(d / f"{k}.png")


def test_cli_egnas_search_with_nb201_lookup(tmp_path, synthetic_nb201_table, capsys):
    _write_tree(tmp_path / "img")
    out = tmp_path / "run"
    argv = ["egnas", "search", "--space", "nb201", "--data", str(tmp_path / "img"), "--bench-data",
            str(synthetic_nb201_table.parent), "--subset", "16", "--epochs", "1", "--warmup", "0", "-C", "4", "-K", "2",
            "--layers", "1", "--population", "2", "--batch-size", "8", "--output", str(out), "--quiet"]
    assert nascore_main(argv) == 0
    res = read_json(out / "result.json")
    assert res["finished"] and res["test_accuracy"] is not None
    from nascore.benchmarks.nb201 import NB201Table
    assert res["test_accuracy"] == pytest.approx(NB201Table.read_csv(synthetic_nb201_table).query(res["arch"], 200)["test_accuracy"])
    assert "NB-201 test accuracy" in capsys.readouterr().out
    # derive from the α checkpoint; the wrong space is a one-line error
    assert nascore_main(["darts", "derive", "--checkpoint", str(out / "checkpoint.pt"), "--space", "nb201"]) == 0
    assert capsys.readouterr().out.strip() == res["arch"]
    assert nascore_main(["darts", "derive", "--checkpoint", str(out / "checkpoint.pt"), "--space", "darts"]) == 2
    assert "from space 'nb201'" in capsys.readouterr().err
    assert nascore_main(argv[:-3] + ["--output", str(tmp_path / "bad"), "--data", str(tmp_path)]) == 2
    assert "is not a cifar10 folder" in capsys.readouterr().err


def test_cli_darts_train_short(tmp_path, capsys):
    _write_tree(tmp_path / "img")
    from nascore.spaces.darts import DARTS_V1, genotype_to_string
    (tmp_path / "g.txt").write_text(genotype_to_string(DARTS_V1))
    argv = ["darts", "train", "--genotype", str(tmp_path / "g.txt"), "--data", str(tmp_path / "img"), "--epochs", "1",
            "-C", "4", "--layers", "3", "--batch-size", "8", "--output", str(tmp_path / "t"), "--quiet"]
    assert nascore_main(argv) == 0
    res = read_json(tmp_path / "t" / "result.json")
    assert res["finished"] and 0 <= res["test_accuracy"] <= 100 and res["params"] > 0
    assert nascore_main(argv[:3] + ["Genotype(normal=[('sep_conv_3x3', 0)])"] + argv[4:]) == 2
    assert "malformed DARTS genotype" in capsys.readouterr().err


@pytest.mark.realdata
def test_real_jpeg_cifar10_search_smoke(tmp_path, monkeypatch):
    folder = real_dataset("cifar10-jpeg", "test.tar.gz")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    x, y, classes = __import__("nascore.data.cifar", fromlist=["load_cifar"]).load_cifar("cifar10", folder, "test")
    assert x.shape == (10000, 3, 32, 32) and classes[0] == "airplane" and classes[-1] == "truck"
    assert torch.equal(torch.bincount(y), torch.full((10,), 1000))
    # official test order: cat, ship, ship, airplane, frog
    assert y[:5].tolist() == [3, 8, 8, 0, 6]
    assert 100 < x.float().mean() < 140                           # real photos, not blank
    cfg = search_config(method="egnas", space="nb201", epochs=2, warmup=1, subset=300, C=8, layers=1, K=4,
                        batch_size=50, eval_images=150, es={"population": 4})
    res = run_supernet_search(cfg, tmp_path / "run", images=(x, y), progress=False)
    assert res["finished"] and res["arch"].count("~") == 6
    log = read_jsonl(tmp_path / "run" / "log.jsonl")
    assert log[-1]["train_acc"] > 10.0 or log[-1]["valid_acc"] > 10.0   # better than chance on 10 classes
    bench = real_dataset("nasbench201", "nb201-cifar10.csv")
    assert res["test_accuracy"] is not None or "lookup_error" in res or bench is None


def test_default_warmup_is_the_papers_share_so_short_runs_are_not_refused():
    from nascore.darts.train import search_config

    assert search_config(method="egnas", space="nb201", epochs=50)["warmup"] == 15   # the paper's 15 of 50
    assert search_config(method="egnas", space="nb201", epochs=2)["warmup"] == 1     # was an error (15 > 2)
    assert search_config(method="darts", space="nb201", epochs=2)["warmup"] == 0
    with pytest.raises(UserError, match="warmup"):
        search_config(method="egnas", space="nb201", epochs=2, warmup=3)
