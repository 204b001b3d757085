"""DCL-ENAS: path encoding, two-stage contrastive predictor, the dcl-enas strategy."""

import json
import math

import numpy as np
import pytest
import torch
from scipy.stats import kendalltau

from nascore.arch import Arch
from nascore.cli import main as nascore_main
from nascore.encoders.gin import GINEncoder
from nascore.encoders.path import PathEncoder, hamming, jaccard, pairwise_distance
from nascore.errors import UserError
from nascore.evaluation import Result
from nascore.io import read_json, read_jsonl
from nascore.predictors import DCLConfig, DCLPredictor, GINRegressor, PathMLPRegressor
from nascore.predictors.dcl import dead_nodes, info_nce, structure_view
from nascore.run import Budget, run_search
from nascore.spaces import get_space
from nascore.strategies import get_strategy

NB201 = get_space("nb201")
TINY = {"hidden": 16, "layers": 2, "proj_dim": 8, "head_hidden": 16, "pretrain_archs": 128, "pretrain_steps": 8,
        "pretrain_batch": 32, "finetune_epochs": 40}


def nb201_target(arch) -> float:
    """Smooth synthetic accuracy: 3x3 convs are worth most, 1x1 less, then skip; none costs."""
    ops = NB201.edge_ops(arch)
    return 70 + 4 * ops.count("nor_conv_3x3") + 2 * ops.count("nor_conv_1x1") + 0.5 * ops.count("skip_connect") \
        - 1.0 * ops.count("none")


def nb201_eval(arch) -> Result:
    v = nb201_target(arch)
    return Result(score=v, metrics={"valid_accuracy": v, "test_accuracy": v + 3})


# --- path encoding --------------------------------------------------------------------------------
def test_nb201_path_counts_and_none_breaks_paths():
    enc = PathEncoder(NB201)
    full = NB201.from_ops(["nor_conv_3x3"] * 6)
    assert enc.count_paths(full) == 4  # 0->3, 0->1->3, 0->2->3, 0->1->2->3
    assert sorted(len(p) for p in enc.paths(full)) == [1, 2, 2, 3]
    cut = NB201.from_ops(["nor_conv_3x3", "nor_conv_3x3", "none", "nor_conv_3x3", "nor_conv_3x3", "nor_conv_3x3"])
    assert enc.count_paths(cut) == 3  # the 1->2 edge is gone
    assert enc.count_paths(NB201.from_ops(["none"] * 6)) == 0
    # every path has its own index; indices are ordered by length, then label
    idx = [enc.path_index(p) for p in enc.paths(full)]
    assert idx == sorted(idx) and len(set(idx)) == 3  # the two length-2 paths are both (conv3, conv3)
    assert enc.encode(full).sum() == 3


def test_nb101_known_path_counts_and_isomorphism_invariance():
    space = get_space("nb101")
    enc = PathEncoder(space)
    assert (enc.dim, enc.max_length, enc.hashed) == (364, 5, False)  # the BANANAS nb101 size
    ops = ["input", "conv3x3-bn-relu", "maxpool3x3", "output"]
    diamond = Arch.from_edges(4, [(0, 1), (0, 2), (1, 3), (2, 3), (0, 3), (1, 2)], ops)
    assert enc.count_paths(diamond) == 4
    assert sorted(enc.paths(diamond)) == sorted([(), ("conv3x3-bn-relu",), ("maxpool3x3",),
                                                ("conv3x3-bn-relu", "maxpool3x3")])
    chain = Arch.from_edges(5, [(0, 1), (1, 2), (2, 3), (3, 4)], ["input"] + ["conv1x1-bn-relu"] * 3 + ["output"])
    assert enc.count_paths(chain) == 1 and enc.paths(chain) == [("conv1x1-bn-relu",) * 3]
    rng = np.random.default_rng(0)
    for _ in range(20):
        a = space.sample(rng)
        n = a.n_nodes
        # a random relabelling of the interior nodes that keeps the matrix upper-triangular
        for _ in range(50):
            order = [0] + list(rng.permutation(np.arange(1, n - 1))) + [n - 1]
            m = a.adjacency[np.ix_(order, order)]
            if not np.tril(m).any():
                break
        b = a.permute(order)
        assert b.hash == a.hash
        np.testing.assert_array_equal(enc.encode(a), enc.encode(b))
        np.testing.assert_array_equal(enc.sequence(a), enc.sequence(b))


def test_distances():
    x = np.array([[1, 1, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]], np.float32)
    assert hamming(x[0], x[1]) == 2 and jaccard(x[0], x[1]) == pytest.approx(2 / 3)
    assert jaccard(x[2], x[2]) == 0.0 and jaccard(x[0], x[2]) == 1.0
    d = pairwise_distance(x)
    assert d.shape == (3, 3) and np.allclose(np.diag(d), 0) and np.allclose(d, d.T)
    with pytest.raises(UserError, match="unknown path distance"):
        pairwise_distance(x, metric="cosine")


def test_darts_paths_are_hashed_and_deterministic():
    pytest.importorskip("nascore.spaces.darts")
    space = get_space("darts")
    enc = PathEncoder(space)
    a = space.sample(np.random.default_rng(0))
    assert enc.endpoints == "sources-sinks" and enc.hashed and enc.dim == 4096
    v = enc.encode(a)
    assert v.sum() > 0 and enc.count_paths(a) >= 8  # 8 op nodes per cell reach their cell output
    np.testing.assert_array_equal(v, PathEncoder(space).encode(a))
    # the predictor runs there too (only the "mutate" view applies: several inputs and outputs)
    assert structure_view(space, a, np.random.default_rng(0), encoder=enc)[1] == "mutate"
    p = DCLPredictor(space, dict(TINY, pretrain_archs=32, pretrain_steps=2, pretrain_batch=8, finetune_epochs=3), seed=0)
    p.pretrain()
    archs = [space.sample(np.random.default_rng(k)) for k in range(6)]
    p.fit(archs, np.arange(6.0))
    assert p.predict(archs).shape == (6,)


# --- views ------------------------------------------------------------------------------------------
def test_relabel_dead_view_keeps_the_function():
    enc = PathEncoder(NB201)
    rng = np.random.default_rng(1)
    n_dead = 0
    for _ in range(200):
        a = NB201.sample(rng)
        v, kind = structure_view(NB201, a, rng, views=("relabel-dead", "mutate"), encoder=enc)
        assert NB201.is_valid(v) and NB201.to_string(v) != NB201.to_string(a)
        if kind == "relabel-dead":
            n_dead += 1
            assert NB201.equivalence_hash(v) == NB201.equivalence_hash(a)
            np.testing.assert_array_equal(enc.encode(v), enc.encode(a))
    assert n_dead > 20


def test_add_dead_view_on_nb101():
    space = get_space("nb101")
    rng = np.random.default_rng(0)
    a = space.from_string("ops=conv3x3-bn-relu|adj=111")
    v, kind = structure_view(space, a, rng, views=("relabel-dead", "add-dead"))
    assert kind == "add-dead" and v.n_nodes == 4 and dead_nodes(v) == [2]
    assert space.to_string(v) == space.to_string(a)  # pruning removes the dead node again


# --- the predictor ------------------------------------------------------------------------------------
def test_info_nce_prefers_true_positives():
    torch.manual_seed(0)
    z = torch.nn.functional.normalize(torch.randn(8, 4), dim=1)
    zz = torch.cat([z, z + 0.01])
    zz = torch.nn.functional.normalize(zz, dim=1)
    ar = torch.arange(8)
    pos = torch.zeros(16, 16, dtype=torch.bool)
    pos[ar, ar + 8] = pos[ar + 8, ar] = True
    assert info_nce(zz, pos, 0.1) < info_nce(zz, pos.roll(3, 1), 0.1)


def test_pretraining_loss_decreases_and_separates_similar_architectures():
    cfg = dict(TINY, pretrain_archs=512, pretrain_steps=60, pretrain_batch=64, views=("relabel-dead", "mutate"))
    p = DCLPredictor(NB201, cfg, seed=0)
    losses = p.pretrain()
    assert len(losses) == 60 and np.mean(losses[-10:]) < 0.8 * np.mean(losses[:10])
    rng = np.random.default_rng(5)
    anchors, views = [], []
    while len(anchors) < 60:
        a = NB201.sample(rng)
        v, kind = structure_view(NB201, a, rng, views=("relabel-dead",))
        if kind == "relabel-dead":
            anchors.append(a)
            views.append(v)
    za, zv = p.embed(anchors, projected=True), p.embed(views, projected=True)
    similar = np.sum(za * zv, 1).mean()
    others = [NB201.sample(rng) for _ in range(60)]
    zo = p.embed(others, projected=True)
    dissimilar = np.sum(za * zo, 1).mean()
    assert similar > dissimilar + 0.3
    # an untrained encoder does not separate them as well
    q = DCLPredictor(NB201, cfg, seed=0)
    gap0 = np.sum(q.embed(anchors, True) * q.embed(views, True), 1).mean() - \
        np.sum(q.embed(anchors, True) * q.embed(others, True), 1).mean()
    assert similar - dissimilar > gap0


def test_finetuned_predictor_ranks_a_monotone_target():
    rng = np.random.default_rng(0)
    archs = [NB201.sample(rng) for _ in range(360)]
    y = np.array([nb201_target(a) for a in archs])
    for cfg in (TINY, dict(TINY, rank_loss="listnet", supcon_weight=0.1),
                dict(TINY, rank_loss="margin", margin=0.1, supcon_weight=0.1, contrastive_warmup=10)):
        p = DCLPredictor(NB201, cfg, seed=1)
        p.pretrain()
        losses = p.fit(archs[:60], y[:60])
        if not cfg.get("contrastive_warmup"):  # a warm-up raises the loss's weight as it trains
            assert losses[-1] < losses[0]
        tau = kendalltau(p.predict(archs[60:]), y[60:])[0]
        assert tau > 0.6, (cfg, tau)
    for m in (GINRegressor(NB201, seed=0, hidden=16, layers=2, epochs=60), PathMLPRegressor(NB201, seed=0, epochs=100)):
        m.fit(archs[:60], y[:60])
        assert kendalltau(m.predict(archs[60:]), y[60:])[0] > 0.4


def test_predictor_rejects_degenerate_labels_and_is_deterministic():
    rng = np.random.default_rng(0)
    archs = [NB201.sample(rng) for _ in range(10)]
    p = DCLPredictor(NB201, TINY, seed=0)
    with pytest.raises(UserError, match="all 10 labels are equal"):
        p.fit(archs, [1.0] * 10)
    with pytest.raises(UserError, match="finite"):
        p.fit(archs, [1.0] * 9 + [float("nan")])
    with pytest.raises(UserError, match="at least 2"):
        p.fit(archs[:1], [1.0])
    with pytest.raises(UserError, match="no option 'hiden'"):
        DCLConfig.from_dict({"hiden": 3})
    y = [nb201_target(a) for a in archs]
    preds = []
    for _ in range(2):
        q = DCLPredictor(NB201, TINY, seed=3)
        q.pretrain(archs=archs)
        q.fit(archs, y, seed=11)
        preds.append(q.predict(archs))
    np.testing.assert_array_equal(preds[0], preds[1])


def test_encoder_init_hook(tmp_path):
    enc = GINEncoder(len(NB201.node_labels), hidden=16, layers=2)
    torch.nn.init.constant_(enc.convs[0].nn[0].weight, 0.123)
    path = tmp_path / "gin.pt"
    torch.save(enc.state_dict(), path)
    p = DCLPredictor(NB201, TINY, seed=0, encoder_init=str(path))
    assert torch.allclose(p.model.encoder.convs[0].nn[0].weight, torch.full_like(enc.convs[0].nn[0].weight, 0.123))
    with pytest.raises(UserError, match="does not fit"):
        DCLPredictor(NB201, dict(TINY, hidden=32), seed=0, encoder_init=str(path))
    with pytest.raises(UserError, match="not found"):
        DCLPredictor(NB201, TINY, seed=0, encoder_init=str(tmp_path / "missing.pt"))


# --- the strategy ------------------------------------------------------------------------------------------
def dcl(space=NB201, seed=0, **kw):
    params = dict(n_init=10, n_infill=5, t_gap=2, population=10, offspring=20, predictor=TINY)
    params.update(kw)
    return get_strategy("dcl-enas", space, seed=seed, **params)


def test_spends_exactly_its_budget_never_repeats_and_beats_random(tmp_path):
    res = run_search(space=NB201, strategy=dcl(seed=1), evaluator=nb201_eval, budget=Budget(queries=40),
                     out_dir=tmp_path / "d", config={"seed": 1}, batch_size=3)
    hist = read_jsonl(tmp_path / "d" / "history.jsonl")
    assert len(hist) == 40 == res["queries"] and len({h["arch"] for h in hist}) == 40
    rnd = run_search(space=NB201, strategy=get_strategy("random", NB201, seed=1), evaluator=nb201_eval,
                     budget=Budget(queries=40), out_dir=tmp_path / "r", config={"seed": 1})
    assert res["best"]["score"] > rnd["best"]["score"]
    # the predictor-chosen infills are better than the random initial sample
    assert np.mean([h["score"] for h in hist[10:]]) > np.mean([h["score"] for h in hist[:10]]) + 2


def test_ask_returns_exactly_n_even_across_rounds():
    s = dcl(seed=2)
    first = s.ask(10)
    s.tell(first, [nb201_eval(a) for a in first])
    got = s.ask(13)  # more than one round's infill
    assert len(got) == 13 and len({NB201.key(a) for a in first + got}) == 23
    assert s.rounds >= 3


class Crash(Exception):
    pass


def test_resume_by_replay_is_identical(tmp_path):
    full = run_search(space=NB201, strategy=dcl(seed=3), evaluator=nb201_eval, budget=Budget(queries=30),
                      out_dir=tmp_path / "full", config={"seed": 3}, batch_size=2)
    calls = []

    def dying(arch):
        if len(calls) == 17:
            raise Crash()
        calls.append(NB201.to_string(arch))
        return nb201_eval(arch)

    with pytest.raises(Crash):
        run_search(space=NB201, strategy=dcl(seed=3), evaluator=dying, budget=Budget(queries=30),
                   out_dir=tmp_path / "k", config={"seed": 3}, batch_size=2)
    again = []

    def counting(arch):
        again.append(NB201.to_string(arch))
        return nb201_eval(arch)

    resumed = run_search(space=NB201, strategy=dcl(seed=3), evaluator=counting, budget=Budget(queries=30),
                         out_dir=tmp_path / "k", config={"seed": 3}, batch_size=2)
    assert len(again) == 30 - 17 and not set(again) & set(calls)
    assert [h["arch"] for h in read_jsonl(tmp_path / "k" / "history.jsonl")] == \
        [h["arch"] for h in read_jsonl(tmp_path / "full" / "history.jsonl")]
    for key in ("queries", "best", "trajectory"):
        assert resumed[key] == full[key]


def test_budget_smaller_than_initial_sample_is_refused():
    with pytest.raises(UserError, match="smaller than its initial random sample"):
        get_strategy("dcl-enas", NB201, seed=0, n_init=20, budget=10)
    assert get_strategy("dcl-enas", NB201, seed=0, n_init=20, budget=20).min_queries == 20
    with pytest.raises(UserError, match="no parameter 'ninit'"):
        get_strategy("dcl-enas", NB201, seed=0, ninit=3)
    with pytest.raises(UserError, match="no option 'bogus'"):
        get_strategy("dcl-enas", NB201, seed=0, predictor={"bogus": 1})


def test_constant_scores_fall_back_gracefully(tmp_path):
    s = dcl(seed=4)
    res = run_search(space=NB201, strategy=s, evaluator=lambda arch: Result(score=5.0), budget=Budget(queries=16),
                     out_dir=tmp_path / "c", config={}, batch_size=4)
    hist = read_jsonl(tmp_path / "c" / "history.jsonl")
    assert res["queries"] == 16 and len({h["arch"] for h in hist}) == 16
    assert s.fallbacks >= 6 and s.predictor is None  # never trained on unusable labels


def test_failed_scores_fall_back_gracefully():
    s = dcl(seed=4)
    seen = set()
    for _ in range(4):
        archs = s.ask(4)
        seen |= {NB201.to_string(a) for a in archs}
        s.tell(archs, [Result(score=float("nan"))] * 4)
    assert len(seen) == 16
    assert s.fallbacks >= 6 and s.predictor is None  # never trained on unusable labels


def test_run_search_records_failed_scores_as_null(tmp_path):
    res = run_search(space=NB201, strategy=dcl(seed=4), evaluator=lambda arch: Result(score=float("nan")),
                     budget=Budget(queries=16), out_dir=tmp_path / "c", config={}, batch_size=4)
    hist = read_jsonl(tmp_path / "c" / "history.jsonl")
    assert res["queries"] == 16 and all(h["score"] is None for h in hist) and res["best"] is None


def test_runs_on_nb101_with_a_synthetic_target(tmp_path):
    space = get_space("nb101")

    def target(arch):
        c = space.canonical(arch)
        return 80 + 3 * c.ops.count("conv3x3-bn-relu") + c.ops.count("conv1x1-bn-relu") + 0.5 * c.n_edges

    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(260)]
    y = np.array([target(a) for a in archs])
    p = DCLPredictor(space, TINY, seed=0)
    p.pretrain()
    p.fit(archs[:60], y[:60])
    assert kendalltau(p.predict(archs[60:]), y[60:])[0] > 0.5
    res = run_search(space=space, strategy=dcl(space, seed=0), evaluator=lambda a: Result(score=target(a)),
                     budget=Budget(queries=25), out_dir=tmp_path / "n", config={})
    hist = read_jsonl(tmp_path / "n" / "history.jsonl")
    assert res["queries"] == 25 and len({h["arch"] for h in hist}) == 25
    assert all(space.is_valid(space.from_string(h["arch"])) for h in hist)


def test_cli_search_with_dcl_enas(synthetic_nb201_table, tmp_path, capsys):
    args = ["search", "--space", "nb201", "--strategy", "dcl-enas", "--budget", "20", "--seeds", "0-1", "--quiet",
            "--data", str(synthetic_nb201_table.parent), "--output", str(tmp_path / "o"),
            "--param", "n_init=10", "--param", "n_infill=5", "--param", "t_gap=2", "--param", "budget=20",
            "--param", "predictor=" + json.dumps(TINY)]
    rc = nascore_main(args)
    out = capsys.readouterr().out
    assert rc == 0 and "dcl-enas on nb201-cifar10" in out and "test accuracy of the best" in out
    s = read_json(tmp_path / "o" / "summary.json")
    assert s["test_accuracy"]["n"] == 2 and s["queries"]["mean"] == 20
    assert math.isfinite(s["valid_accuracy"]["mean"]) and (tmp_path / "o" / "curve.png").exists()


# --- issue 15 items 9-10: the paper's stage-2 loss and the persistent population ---------------------------
def test_margin_rank_loss_on_a_hand_made_example():
    from nascore.predictors.dcl import margin_rank_loss
    y = torch.tensor([1.0, 2.0, 3.0])
    # better-first pairs (1,0), (2,0), (2,1): score gaps 0.05, 1.0, 0.95 -> hinge 0.05, 0, 0 with margin 0.1
    s = torch.tensor([0.0, 0.05, 1.0])
    assert margin_rank_loss(s, y, 0.1).item() == pytest.approx(0.05 / 3, abs=1e-7)
    # reversed scores: gaps -0.05, -1, -0.95 -> 0.15, 1.1, 1.05 with margin 0.1
    assert margin_rank_loss(-s, y, 0.1).item() == pytest.approx((0.15 + 1.1 + 1.05) / 3, abs=1e-6)
    assert margin_rank_loss(s, y, 0.0).item() == 0.0
    assert margin_rank_loss(s, torch.ones(3), 0.1).item() == 0.0  # no ordered pair


def test_contrastive_weight_warm_up_schedule():
    from nascore.predictors.dcl import contrastive_weight_at
    assert [contrastive_weight_at(e, 0.2, 4) for e in range(6)] == pytest.approx([0.05, 0.1, 0.15, 0.2, 0.2, 0.2])
    assert [contrastive_weight_at(e, 0.2, 0) for e in range(3)] == [0.2, 0.2, 0.2]
    assert contrastive_weight_at(0, 0.0, 5) == 0.0


def test_stage2_options_are_validated_and_the_default_is_the_margin_loss():
    cfg = DCLConfig()
    # issue 15 item 9: the paper's margin ranking loss is the default, the contrastive term off
    assert (cfg.rank_loss, cfg.margin, cfg.supcon_weight, cfg.contrastive_warmup) == ("margin", 0.1, 0.0, 0)
    assert DCLConfig(rank_loss="pairwise").rank_loss == "pairwise"  # the previous default stays available
    assert DCLConfig(rank_loss="margin", margin=0.5, contrastive_warmup=10).margin == 0.5
    with pytest.raises(UserError, match="rank_loss must be one of pairwise, listnet, margin"):
        DCLConfig(rank_loss="hinge")
    with pytest.raises(UserError, match="margin"):
        DCLConfig(margin=-1.0)
    with pytest.raises(UserError, match="contrastive_warmup"):
        DCLConfig(contrastive_warmup=2.5)
    with pytest.raises(UserError, match="contrastive_warmup"):
        DCLConfig(contrastive_warmup=-1)


def test_warm_up_changes_the_fit_and_margin_differs_from_ranknet():
    rng = np.random.default_rng(5)
    archs = [NB201.sample(rng) for _ in range(30)]
    y = [nb201_target(a) for a in archs]
    out = {}
    for name, over in (("ranknet", {"rank_loss": "pairwise"}), ("margin", {}),
                       ("sc", {"rank_loss": "margin", "supcon_weight": 0.5}),
                       ("sc-warm", {"rank_loss": "margin", "supcon_weight": 0.5, "contrastive_warmup": 20})):
        p = DCLPredictor(NB201, dict(TINY, finetune_epochs=10, **over), seed=0)
        p.pretrain(archs=archs)
        out[name] = p.fit(archs, y, seed=1)
    assert out["ranknet"] != out["margin"]
    # the first epoch's contrastive weight is 1/20 of the full weight: same model, smaller loss
    assert out["sc-warm"][0] < out["sc"][0]


def test_population_mode_is_validated():
    with pytest.raises(UserError, match="population_mode must be one of rebuild, persistent"):
        get_strategy("dcl-enas", NB201, seed=0, population_mode="keep")
    assert get_strategy("dcl-enas", NB201, seed=0).population_mode == "rebuild"


def _round_start_populations(strategy, n_rounds):
    """Drive ``strategy`` for ``n_rounds`` predictor rounds and return the population each round
    starts from (the first ``predict`` after each ``fit``)."""
    starts, state = [], {"fresh": False}
    pred = strategy._get_predictor()
    fit, predict = pred.fit, pred.predict

    def fit_hook(*a, **k):
        state["fresh"] = True
        return fit(*a, **k)

    def predict_hook(archs, *a, **k):
        if state["fresh"]:
            starts.append([NB201.key(x) for x in archs])
            state["fresh"] = False
        return predict(archs, *a, **k)

    pred.fit, pred.predict = fit_hook, predict_hook
    first = strategy.ask(strategy.n_init)
    strategy.tell(first, [nb201_eval(a) for a in first])
    while len(starts) < n_rounds:
        got = strategy.ask(strategy.n_infill)
        strategy.tell(got, [nb201_eval(a) for a in got])
    return starts


def test_persistent_population_keeps_survivors_across_rounds():
    s = dcl(seed=6, population_mode="persistent")
    starts = _round_start_populations(s, 3)
    for r in (1, 2):
        told = {NB201.key(a) for a, _ in s.labelled}
        # later rounds start from predicted (never evaluated) survivors of the previous round
        assert any(k not in told for k in starts[r]), r
    r = dcl(seed=6)  # rebuild: every round starts from evaluated architectures only
    starts_r = _round_start_populations(r, 3)
    told_r = {NB201.key(a) for a, _ in r.labelled}
    assert all(k in told_r for st in starts_r for k in st)
    assert len(starts_r[1]) == r.population_size


def test_persistent_population_resumes_by_replay_identically(tmp_path):
    kw = dict(population_mode="persistent")
    full = run_search(space=NB201, strategy=dcl(seed=3, **kw), evaluator=nb201_eval, budget=Budget(queries=26),
                      out_dir=tmp_path / "full", config={"seed": 3}, batch_size=2)
    calls = []

    def dying(arch):
        if len(calls) == 19:
            raise Crash()
        calls.append(NB201.to_string(arch))
        return nb201_eval(arch)

    with pytest.raises(Crash):
        run_search(space=NB201, strategy=dcl(seed=3, **kw), evaluator=dying, budget=Budget(queries=26),
                   out_dir=tmp_path / "k", config={"seed": 3}, batch_size=2)
    resumed = run_search(space=NB201, strategy=dcl(seed=3, **kw), evaluator=nb201_eval, budget=Budget(queries=26),
                         out_dir=tmp_path / "k", config={"seed": 3}, batch_size=2)
    assert [h["arch"] for h in read_jsonl(tmp_path / "k" / "history.jsonl")] == \
        [h["arch"] for h in read_jsonl(tmp_path / "full" / "history.jsonl")]
    for key in ("queries", "best", "trajectory"):
        assert resumed[key] == full[key]
    # and it is a different search from the rebuild default
    other = run_search(space=NB201, strategy=dcl(seed=3), evaluator=nb201_eval, budget=Budget(queries=26),
                       out_dir=tmp_path / "rb", config={"seed": 3}, batch_size=2)
    assert [h["arch"] for h in read_jsonl(tmp_path / "rb" / "history.jsonl")] != \
        [h["arch"] for h in read_jsonl(tmp_path / "full" / "history.jsonl")]
