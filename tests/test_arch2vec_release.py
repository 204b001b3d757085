"""arch2vec options that reproduce the released code (issue 15): the released training schedule
(eval mode from epoch 2 on) with its decoder dropout, the released sigma = exp(head), the
per-element reconstruction measures, and the WL ceiling of whole-graph exact reconstruction."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nascore.arch2vec import metrics as M
from nascore.arch2vec.cells import DartsCellSpace
from nascore.arch2vec.pretrain import load_model, pretrain, space_dataset
from nascore.arch2vec.vgae import VGAE
from nascore.cli import main as nascore_main
from nascore.errors import UserError
from nascore.spaces import get_space


# --- training schedule ------------------------------------------------------------------------------
def _record_modes(monkeypatch):
    """Patch VGAE.loss to record, per call, the training flag, the first BatchNorm's running mean
    and whether two forward passes of the same batch agree (no sampling, no dropout)."""
    calls = []
    real = VGAE.loss

    def loss(self, ops, adj, *a, **kw):
        bn = next(m for m in self.modules() if isinstance(m, torch.nn.BatchNorm1d))
        mean = bn.running_mean.clone()
        with torch.no_grad():
            g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)
            state = {k: v.clone() for k, v in self.state_dict().items()}  # keep BN statistics untouched
            z1 = real(self, ops, adj, generator=g1)[0]
            z2 = real(self, ops, adj, generator=g2)[0]
            self.load_state_dict(state)
        calls.append({"training": self.training, "bn_mean": mean, "deterministic": bool(torch.equal(z1, z2))})
        return real(self, ops, adj, *a, **kw)

    monkeypatch.setattr(VGAE, "loss", loss)
    return calls


def test_released_schedule_is_eval_mode_from_epoch_two(monkeypatch, tmp_path):
    calls = _record_modes(monkeypatch)
    # 100 architectures, 10 held out: 90 train = 3 steps of batch 32 per epoch
    out = pretrain(get_space("nb201"), output=tmp_path, epochs=3, hidden=8, max_archs=100, progress=False,
                   quality_samples=20, schedule="released")
    assert len(calls) == 9
    assert [c["training"] for c in calls] == [True] * 3 + [False] * 6
    assert [r["train_mode"] for r in out["curve"]] == [True, False, False]
    # epoch 1 samples z and applies the dropout; from epoch 2 on z = mu without dropout ...
    assert not any(c["deterministic"] for c in calls[:3]) and all(c["deterministic"] for c in calls[3:])
    # ... and the BatchNorm running statistics stay frozen at their end-of-epoch-1 values
    for c in calls[4:]:
        assert torch.equal(c["bn_mean"], calls[3]["bn_mean"])
    assert not torch.equal(calls[1]["bn_mean"], calls[0]["bn_mean"])
    assert out["train"]["schedule"] == "released" and out["train"]["dropout"] == 0.3  # released default
    assert out["config"]["dropout"] == 0.3


def test_our_schedule_trains_every_epoch_without_dropout_by_default(monkeypatch, tmp_path):
    calls = _record_modes(monkeypatch)
    out = pretrain(get_space("nb201"), output=tmp_path, epochs=2, hidden=8, max_archs=100, progress=False,
                   quality_samples=20)
    assert [c["training"] for c in calls] == [True] * 6
    assert [r["train_mode"] for r in out["curve"]] == [True, True]
    assert out["train"]["schedule"] == "ours" and out["train"]["dropout"] == 0.0
    assert not any(c["deterministic"] for c in calls)  # z is sampled in every epoch
    for r in out["curve"]:  # per-epoch figures carry both measures
        assert {"heldout_accuracy", "heldout_ops_accuracy", "heldout_adj_accuracy"} <= set(r)


def test_explicit_dropout_overrides_the_schedule_default_and_bad_values_are_refused(tmp_path):
    out = pretrain(get_space("nb201"), output=tmp_path / "a", epochs=1, hidden=8, max_archs=60, progress=False,
                   quality_samples=10, schedule="released", dropout=0.0)
    assert out["train"]["dropout"] == 0.0
    with pytest.raises(UserError, match="schedule"):
        pretrain(get_space("nb201"), output=tmp_path / "b", epochs=1, schedule="sometimes")
    with pytest.raises(UserError, match="sigma head"):
        pretrain(get_space("nb201"), output=tmp_path / "c", epochs=1, sigma_head="std")


# --- sigma parameterisation --------------------------------------------------------------------------
def test_released_sigma_head_is_exp_head_with_the_released_kl():
    space = get_space("nb201")
    ops, adj = space_dataset(space, max_archs=5, seed=0)[1:]
    torch.manual_seed(0)
    ours = VGAE(len(space.node_labels), space.max_nodes, hidden=16).eval()
    rel = VGAE(len(space.node_labels), space.max_nodes, hidden=16, sigma_head="logstd").eval()
    rel.load_state_dict(ours.state_dict())
    mu, logvar = ours.encode(ops, adj)
    head = logvar  # our head *is* log sigma^2; the released one reads the same output as log sigma
    mu_r, logvar_r = rel.encode(ops, adj)
    assert torch.equal(mu, mu_r) and torch.allclose(logvar_r, 2 * head)
    rel.train()
    g = torch.Generator().manual_seed(3)
    eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(3))
    z = rel.reparameterize(mu_r, logvar_r, g)
    assert torch.allclose(z, mu + eps * torch.exp(head), atol=1e-6)  # released: std = exp(head)
    # the released KL: -0.5 / (B M) * mean_{B,M} sum_d (1 + 2 head - mu^2 - exp(head)^2)
    b, m = ops.shape
    kl_rel = -0.5 * torch.mean(torch.sum(1 + 2 * head - mu.pow(2) - head.exp().pow(2), 2))
    rel.eval()
    total0 = rel.loss(ops, adj, kl_weight=0.0)[0]
    total = rel.loss(ops, adj)[0]
    assert torch.allclose(total - total0, kl_rel / (b * m), atol=1e-6)
    again = VGAE.from_config(rel.config)
    assert again.config["sigma_head"] == "logstd"
    old = {k: v for k, v in rel.config.items() if k != "sigma_head"}  # a checkpoint written before the key
    assert VGAE.from_config(old).sigma_head == "logvar"
    with pytest.raises(ValueError, match="sigma_head"):
        VGAE(7, 8, sigma_head="std")


# --- per-element reconstruction measures ---------------------------------------------------------------
class _FixedDecoder:
    """Stands in for a model: ``reconstruct`` returns fixed predictions."""

    def __init__(self, ops, adj):
        self.ops, self.adj = ops, adj

    def eval(self):
        return self

    def reconstruct(self, o, a):
        return self.ops[: len(o)], self.adj[: len(o)]


def test_reconstruction_reports_whole_graph_and_per_element_accuracy():
    ops = torch.tensor([[0, 1, 2], [0, 1, 2]])
    adj = torch.zeros(2, 3, 3)
    adj[:, 0, 1] = adj[:, 1, 2] = 1
    pred_ops = ops.clone()
    pred_ops[1, 1] = 0  # one wrong label in cell 1
    pred_adj = adj.clone()
    pred_adj[1, 0, 2] = 1  # one false edge in cell 1
    pred_adj[0, 2, 0] = 1  # below the diagonal: not read
    r = M.reconstruction(_FixedDecoder(pred_ops, pred_adj), ops, adj)
    assert r["accuracy"] == pytest.approx(50.0)  # cell 0 exact, cell 1 not
    assert r["ops_accuracy"] == pytest.approx(100 * 5 / 6)  # 5 of 6 node labels
    assert r["adj_accuracy"] == pytest.approx(100 * 5 / 6)  # 5 of 6 upper-triangular entries


# --- WL ceiling ----------------------------------------------------------------------------------------
def _cells(*graphs):
    m = max(len(o) for o, _ in graphs)
    ops = np.full((len(graphs), m), 9, np.int64)
    adj = np.zeros((len(graphs), m, m), np.int64)
    for b, (o, edges) in enumerate(graphs):
        ops[b, : len(o)] = o
        for i, j in edges:
            adj[b, i, j] = 1
    return ops, adj


def test_wl_ceiling_on_hand_made_cells():
    parallel_same = ([0, 1, 1, 2], [(0, 1), (0, 2), (1, 3), (2, 3)])  # two same ops side by side
    parallel_diff = ([0, 1, 3, 2], [(0, 1), (0, 2), (1, 3), (2, 3)])
    chain = ([0, 1, 1, 2], [(0, 1), (1, 2), (2, 3)])  # same labels, told apart by their neighbours
    square = ([1, 1, 3, 3], [(0, 1), (0, 2), (1, 3), (2, 3)])  # two adjacent pairs, crossing edges differ
    ops, adj = _cells(parallel_same, parallel_diff, chain, square)
    r = M.wl_ceiling(ops, adj)
    assert r["cells"] == 4 and r["rounds"] == "stable"
    assert r["same_colour_nonadjacent"] == 1  # parallel_same only
    assert r["unreconstructable"] == 2  # + square, by the colour-pair argument
    assert r["ceiling"] == pytest.approx(50.0) and r["ceiling_same_colour_only"] == pytest.approx(75.0)
    c = M.wl_colours(ops, adj)
    assert c[0, 1] == c[0, 2] and c[2, 1] != c[2, 2] and c[3, 0] == c[3, 1] and c[3, 2] == c[3, 3]
    # the chain's two 1-labelled nodes need one round to be told apart
    assert M.wl_ceiling(ops[2:3], adj[2:3], rounds=0)["unreconstructable"] == 1
    assert M.wl_ceiling(ops[2:3], adj[2:3], rounds=1)["unreconstructable"] == 0


def test_wl_ceiling_exempts_isolated_padding_and_is_batch_independent():
    # input -> op -> output, padded with 3 isolated "no node" slots (label 9) before the output
    ops = np.array([[0, 1, 9, 9, 9, 2]])
    adj = np.zeros((1, 6, 6), np.int64)
    adj[0, 0, 1] = adj[0, 1, 5] = 1
    assert M.wl_ceiling(ops, adj)["unreconstructable"] == 0
    ds = DartsCellSpace()
    _, o, a = space_dataset(ds, samples=500, seed=0)
    whole = M.wl_ceiling(o.numpy(), a.numpy())
    parts = M.wl_ceiling(o.numpy(), a.numpy(), batch_size=64)
    assert whole == parts and 0 < whole["unreconstructable"] < 500


def test_wl_ceiling_nb201_is_100_percent():
    _, o, a = space_dataset(get_space("nb201"))
    r = M.wl_ceiling(o.numpy(), a.numpy())
    assert r["cells"] == 15_625 and r["unreconstructable"] == 0 and r["ceiling"] == 100.0


def test_same_wl_colour_means_identical_mu_so_flagged_cells_are_never_exact():
    """The premise of the ceiling: nodes of one WL colour get identical posterior means from the
    encoder (eval mode), so a flagged cell is never reconstructed exactly."""
    ds = DartsCellSpace()
    _, o, a = space_dataset(ds, samples=300, seed=1)
    c = M.wl_colours(o.numpy(), a.numpy())
    torch.manual_seed(0)
    model = VGAE(len(ds.node_labels), ds.max_nodes, hidden=16).eval()
    mu = model.encode(o, a)[0]
    b, u, v = np.nonzero((c[:, :, None] == c[:, None, :]) & ~np.eye(ds.max_nodes, dtype=bool))
    assert len(b) > 0
    assert torch.allclose(mu[b, u], mu[b, v], atol=1e-5)
    bad = np.zeros(len(o), bool)
    for k in range(len(o)):
        bad[k] = M.wl_ceiling(o.numpy()[k:k + 1], a.numpy()[k:k + 1])["unreconstructable"] == 1
    ro, ra = model.reconstruct(o, a)
    iu = torch.triu_indices(ds.max_nodes, ds.max_nodes, 1)
    exact = ((ro == o.long()).all(1) & (ra[:, iu[0], iu[1]] == a.float()[:, iu[0], iu[1]]).all(1)).numpy()
    assert not (exact & bad).any()


# --- CLI ----------------------------------------------------------------------------------------------
def test_cli_released_schedule_and_sigma(tmp_path, capsys):
    rc = nascore_main(["arch2vec", "pretrain", "--space", "nb201", "--epochs", "2", "--max-archs", "120",
                       "--hidden", "8", "--output", str(tmp_path / "m"), "--quiet", "--schedule", "released",
                       "--sigma-head", "logstd"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "released schedule, decoder dropout 0.3" in out and "per node label" in out
    _, ck = load_model(tmp_path / "m" / "model.pt")
    assert ck["train"]["schedule"] == "released" and ck["config"]["sigma_head"] == "logstd"
    with pytest.raises(SystemExit) as e:  # argparse refuses an unknown choice
        nascore_main(["arch2vec", "pretrain", "--schedule", "other", "--output", str(tmp_path / "x")])
    assert e.value.code == 2
