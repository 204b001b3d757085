"""arch2vec: model shapes and symmetry, pretraining, DNGO uncertainty, latent-space strategies."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nascore.arch2vec.dngo import DNGO, expected_improvement
from nascore.arch2vec.metrics import reconstruction
from nascore.arch2vec.pretrain import load_embeddings, load_model, pretrain, space_dataset
from nascore.arch2vec.vgae import VGAE, decode_arch, dense_tensors
from nascore.benchmarks.nb201 import NB201Table
from nascore.cli import main as nascore_main
from nascore.encoders.gin import GINEncoder, to_batch
from nascore.errors import UserError
from nascore.evaluation import Result, TabularEvaluator
from nascore.io import read_json, read_jsonl
from nascore.run import Budget, run_search
from nascore.spaces import get_space
from nascore.strategies import get_strategy


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A small arch2vec model pretrained briefly on 600 NB201 cells (embeddings cover all 15,625)."""
    out = tmp_path_factory.mktemp("a2v")
    torch.manual_seed(0)
    pretrain(get_space("nb201"), output=out, epochs=2, hidden=32, max_archs=600, progress=False,
             quality_samples=200)
    return out / "model.pt"


@pytest.fixture
def table(synthetic_nb201_table):
    return NB201Table.read_csv(synthetic_nb201_table)


# --- model ---------------------------------------------------------------------------------------
def test_shapes_and_dense_path_equals_torch_geometric_path():
    space = get_space("nb201")
    archs = [space.sample(np.random.default_rng(k)) for k in range(5)]
    torch.manual_seed(0)
    model = VGAE(len(space.node_labels), space.max_nodes, hidden=24, layers=4, latent=16)
    ops, adj = dense_tensors(space, archs)
    for mode in (model.train, model.eval):
        mode()
        mu, logvar = model.encode(ops, adj)
        assert mu.shape == logvar.shape == (5, 8, 16)
        mu_g, logvar_g = model.encode_graph(to_batch(space, archs))
        assert mu_g.shape == (40, 16)
        assert torch.allclose(mu.reshape(-1, 16), mu_g, atol=1e-5)
        assert torch.allclose(logvar.reshape(-1, 16), logvar_g, atol=1e-5)
    op_logits, adj_logits = model.decode(mu)
    assert op_logits.shape == (5, 8, len(space.node_labels) + 1) and adj_logits.shape == (5, 8, 8)
    assert torch.allclose(adj_logits, adj_logits.transpose(1, 2))  # inner-product decoder
    assert model.embed(ops, adj).shape == (5, 16)
    gae = VGAE(len(space.node_labels), space.max_nodes, hidden=24, variational=False)
    assert gae.encode(ops, adj)[1] is None


def test_node_relabelling_permutes_latents_and_keeps_the_embedding():
    space = get_space("nb101")
    a = space.from_string("ops=conv3x3-bn-relu,conv1x1-bn-relu,maxpool3x3|adj=1100010111")
    assert a.n_nodes == 5 and space.is_valid(a)
    b = a.permute([0, 2, 1, 3, 4])  # nodes 1 and 2 are not connected: still topological
    assert b != a and space.key(b) == space.key(a)
    torch.manual_seed(1)
    model = VGAE(len(space.node_labels), space.max_nodes, hidden=16).eval()
    oa, aa = dense_tensors(space, [a])
    ob, ab = dense_tensors(space, [b])
    mu_a, _ = model.encode(oa, aa)
    mu_b, _ = model.encode(ob, ab)
    perm = [0, 2, 1, 3, 4, 5, 6]  # padding sits before the output, untouched
    assert torch.allclose(mu_a[0, perm], mu_b[0], atol=1e-5)
    assert not torch.allclose(mu_a[0, 1], mu_a[0, 2], atol=1e-3)  # the permutation did matter
    assert torch.allclose(model.embed(oa, aa), model.embed(ob, ab), atol=1e-5)


def test_dense_padding_round_trips_through_decode_arch():
    space = get_space("nb101")
    keys, ops, adj = space_dataset(space, max_archs=300, seed=3)
    for k in range(0, 300, 37):
        arch = decode_arch(space, ops[k].numpy(), adj[k].numpy().astype(int))
        assert space.key(arch) == keys[k]
    assert (ops[:, 0] == 0).all() and (ops[:, -1] == len(space.node_labels) - 1).all()


def test_short_pretraining_improves_heldout_reconstruction(tmp_path):
    space = get_space("nb201")
    keys, ops, adj = space_dataset(space, max_archs=800, seed=0)
    torch.manual_seed(0)
    before = reconstruction(VGAE(len(space.node_labels), space.max_nodes, hidden=32), ops[:80], adj[:80])
    out = pretrain(space, output=tmp_path, epochs=4, batch_size=16, lr=3e-3, hidden=32, data=(keys, ops, adj),
                   progress=False, quality_samples=300, holdout=0.1)
    after = out["metrics"]["heldout"]
    assert after["ops_accuracy"] > before["ops_accuracy"] + 25
    assert after["adj_accuracy"] > before["adj_accuracy"] + 5
    assert out["curve"][-1]["loss"] < out["curve"][0]["loss"]
    for f in ("model.pt", "gin_encoder.pt", "metrics.json", "embeddings.npz"):
        assert (tmp_path / f).exists()
    q = read_json(tmp_path / "metrics.json")["metrics"]["prior_fitted"]
    assert 0 <= q["validity"] <= 100 and q["samples"] == 300


def test_exported_gin_encoder_loads_into_a_plain_GINEncoder(tiny_model):
    model, ck = load_model(tiny_model)
    space = get_space("nb201")
    enc = GINEncoder(len(space.node_labels), hidden=ck["config"]["hidden"], layers=ck["config"]["layers"])
    enc.load_state_dict(torch.load(tiny_model.parent / "gin_encoder.pt"), strict=True)
    enc.eval()
    batch = to_batch(space, [space.sample(np.random.default_rng(k)) for k in range(4)])
    assert torch.allclose(enc(batch)[0], model.gin(batch)[0], atol=1e-6)


def test_load_model_rejects_foreign_files(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_model(tmp_path / "nope.pt")
    torch.save({"hello": 1}, tmp_path / "x.pt")
    with pytest.raises(UserError, match="not an arch2vec checkpoint"):
        load_model(tmp_path / "x.pt")


# --- DNGO ------------------------------------------------------------------------------------------
def test_dngo_uncertainty_grows_away_from_the_data():
    x = np.linspace(-1, 1, 25)[:, None]
    y = np.sin(3 * x[:, 0])
    m = DNGO(epochs=400, seed=0).fit(x, y)
    mu, sd = m.predict(np.array([[0.0], [0.5], [2.5], [5.0]]))
    assert abs(mu[0] - 0.0) < 0.15 and abs(mu[1] - np.sin(1.5)) < 0.15
    assert sd[2] > 2 * max(sd[0], sd[1])
    assert sd[3] > sd[2]
    ei = expected_improvement(mu, sd, best=float(y.max()))
    assert ei[3] > ei[0]  # far from the data, uncertainty earns improvement


# --- strategies ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["arch2vec-bo", "arch2vec-rl"])
def test_strategy_spends_budget_without_repeats_and_resumes_identically(name, tiny_model, table, tmp_path):
    space = get_space("nb201")
    ev = TabularEvaluator(space, table)
    params = {"model": str(tiny_model)}
    if name == "arch2vec-bo":
        params.update(init=8, batch=4, epochs=100)
    else:
        params.update(episode=6)
    full = run_search(space=space, strategy=get_strategy(name, space, seed=4, **params), evaluator=ev,
                      budget=Budget(queries=40), out_dir=tmp_path / "full", config={"seed": 4}, batch_size=3)
    hist = read_jsonl(tmp_path / "full" / "history.jsonl")
    assert full["queries"] == len(hist) == 40
    assert len({h["arch"] for h in hist}) == 40

    calls = []

    def dying(arch):
        if len(calls) == 23:
            raise RuntimeError("killed")
        calls.append(1)
        return ev(arch)

    with pytest.raises(RuntimeError):
        run_search(space=space, strategy=get_strategy(name, space, seed=4, **params), evaluator=dying,
                   budget=Budget(queries=40), out_dir=tmp_path / "cut", config={"seed": 4}, batch_size=3)
    resumed = run_search(space=space, strategy=get_strategy(name, space, seed=4, **params), evaluator=ev,
                         budget=Budget(queries=40), out_dir=tmp_path / "cut", config={"seed": 4}, batch_size=3)
    cut = read_jsonl(tmp_path / "cut" / "history.jsonl")
    assert [h["arch"] for h in cut] == [h["arch"] for h in hist]
    assert resumed["best"] == full["best"]


@pytest.mark.parametrize("name", ["arch2vec-bo", "arch2vec-rl"])
def test_strategy_respects_a_simulated_time_budget(name, tiny_model, table, tmp_path):
    space = get_space("nb201")
    r = run_search(space=space, strategy=get_strategy(name, space, seed=0, model=str(tiny_model)),
                   evaluator=TabularEvaluator(space, table), budget=Budget.parse("3000s"), out_dir=tmp_path / "r",
                   config={})
    costs = [row[1] for row in r["trajectory"]]
    assert costs[-1] >= 3000 > costs[-2]


def test_bo_exploits_a_smooth_landscape(tiny_model, table, tmp_path):
    """After its random start, BO's proposals beat random proposals on the synthetic table."""
    space = get_space("nb201")
    ev = TabularEvaluator(space, table)
    bo = get_strategy("arch2vec-bo", space, seed=0, model=str(tiny_model), init=10, batch=5, epochs=200)
    r = run_search(space=space, strategy=bo, evaluator=ev, budget=Budget(queries=40), out_dir=tmp_path / "bo",
                   config={})
    scores = [h["score"] for h in read_jsonl(tmp_path / "bo" / "history.jsonl")]
    assert np.mean(scores[10:]) > np.mean(scores[:10]) + 2.0
    assert r["best"]["score"] == max(scores)


def test_rl_policy_learns(tiny_model):
    """The REINFORCE update moves the policy: action means change after an episode is told."""
    space = get_space("nb201")
    s = get_strategy("arch2vec-rl", space, seed=0, model=str(tiny_model), episode=4)
    before = [p.detach().clone() for p in s.policy.parameters()]
    archs = s.ask(5)  # the random initial state + one episode of 4 actions
    s.tell(archs, [Result(score=float(k)) for k in range(5)])
    assert s.updates == 1
    assert any(not torch.equal(a, b) for a, b in zip(before, s.policy.parameters()))


def test_missing_model_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="not found"):
        get_strategy("arch2vec-bo", get_space("nb201"), seed=0, model=str(tmp_path / "none.pt"))
    with pytest.raises(UserError, match="not enumerable"):
        load_embeddings(get_space("darts"), str(tmp_path / "none.pt"))


# --- CLI --------------------------------------------------------------------------------------------
def test_cli_pretrain(tmp_path, capsys):
    rc = nascore_main(["arch2vec", "pretrain", "--space", "nb201", "--epochs", "1", "--max-archs", "200",
                       "--hidden", "16", "--layers", "3", "--output", str(tmp_path / "m"), "--quiet"])
    assert rc == 0
    assert "held-out reconstruction" in capsys.readouterr().out
    assert load_model(tmp_path / "m" / "model.pt")[1]["train"]["n_architectures"] == 200
    # the export fits a predictor's GIN of that shape (encoder_init)
    GINEncoder(len(get_space("nb201").node_labels), hidden=16, layers=3).load_state_dict(
        torch.load(tmp_path / "m" / "gin_encoder.pt", weights_only=True), strict=True)
    assert nascore_main(["arch2vec", "pretrain", "--threads", "0", "--output", str(tmp_path / "x")]) == 2
