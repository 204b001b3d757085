"""arch2vec-BO robustness (issue 15 item 4): the pretraining's fixed torch thread count and the search options
(rank targets, mutation candidates, UCB, Thompson sampling, DNGO ensembles)."""

from __future__ import annotations

import pytest
import torch

from nascore.arch2vec import pretrain as P
from nascore.arch2vec.pretrain import load_model, pretrain
from nascore.errors import UserError
from nascore.spaces import get_space


def _tiny(out, **kw):
    return pretrain(get_space("nb201"), output=out, epochs=1, hidden=16, max_archs=200, progress=False,
                    quality_samples=50, **kw)


def test_pretraining_runs_on_a_fixed_thread_count_whatever_the_caller_uses(tmp_path):
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        a = _tiny(tmp_path / "a")                 # default: PRETRAIN_THREADS
        assert torch.get_num_threads() == 2        # the caller's setting is restored
        assert a["train"]["torch_threads"] == P.PRETRAIN_THREADS == 1
        b = _tiny(tmp_path / "b", threads=None)    # the previous behaviour: the caller's threads
        assert b["train"]["torch_threads"] == 2
        torch.set_num_threads(1)
        c = _tiny(tmp_path / "c")
        assert c["train"]["torch_threads"] == 1
    finally:
        torch.set_num_threads(old)
    ma, _ = load_model(tmp_path / "a" / "model.pt")
    mc, _ = load_model(tmp_path / "c" / "model.pt")
    for k, v in ma.state_dict().items():           # same seed, same thread count: bit-identical
        assert torch.equal(v, mc.state_dict()[k]), k


def test_thread_option_is_validated(tmp_path):
    with pytest.raises(UserError, match="threads"):
        _tiny(tmp_path / "x", threads=0)


def test_cached_embeddings_are_computed_on_the_fixed_thread_count(tmp_path, monkeypatch):
    _tiny(tmp_path / "m")
    (tmp_path / "m" / "embeddings.npz").unlink()
    seen = []
    real = P.embed_all

    def spy(*a, **kw):
        seen.append(torch.get_num_threads())
        return real(*a, **kw)

    monkeypatch.setattr(P, "embed_all", spy)
    P._EMB_CACHE.clear()
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        keys, emb = P.load_embeddings(get_space("nb201"), tmp_path / "m" / "model.pt")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(old)
        P._EMB_CACHE.clear()
    assert seen == [1] and emb.shape == (15625, 16)


def test_cli_threads_option_reaches_the_pretraining(tmp_path, monkeypatch):
    """``nascore arch2vec pretrain --threads N`` trains on N threads (not silently on the default)."""
    from nascore.cli import main

    seen = {}

    class Stop(Exception):
        pass

    def fake_pretrain(space, **kw):
        seen.update(kw)
        raise Stop

    monkeypatch.setattr(P, "pretrain", fake_pretrain)
    with pytest.raises(Stop):
        main(["arch2vec", "pretrain", "--space", "nb201", "--threads", "2", "--output", str(tmp_path / "m"), "--quiet"])
    assert seen["threads"] == 2


# --- arch2vec-BO search options (issue 15 item 4) ---------------------------------------------------
@pytest.fixture(scope="module")
def bo_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("a2v-bo")
    _tiny(out)
    return str(out / "model.pt")


def _told_bo(model, n_told=12, **params):
    """arch2vec-BO after ``n_told`` random architectures with synthetic scores (their key's count of 3x3 convs)."""
    from nascore.evaluation import Result
    from nascore.strategies import get_strategy

    space = get_space("nb201")
    params = {"target": "raw", "candidates": "all", **params}  # the previous form unless the test says otherwise
    s = get_strategy("arch2vec-bo", space, seed=3, model=model, init=n_told, batch=4, epochs=30, **params)
    archs = s.ask(n_told)
    s.tell(archs, [Result(score=float(space.key(a).count("nor_conv_3x3")) + 0.1 * k) for k, a in enumerate(archs)])
    return s


def test_bo_mixture_of_gaussians():
    import numpy as np
    from nascore.strategies.arch2vec_bo import _mixture

    one = (np.array([1.0]), np.array([0.5]))
    assert _mixture([one]) is one
    mu, sd = _mixture([(np.array([0.0, 2.0]), np.array([1.0, 0.0])), (np.array([2.0, 2.0]), np.array([1.0, 0.0]))])
    assert np.allclose(mu, [1.0, 2.0]) and np.allclose(sd, [np.sqrt(2.0), 0.0], atol=1e-9)


def test_bo_ensemble_fits_several_networks_and_changes_the_proposals(bo_model, monkeypatch):
    from nascore.arch2vec import dngo
    import nascore.strategies.arch2vec_bo as B

    seeds = []

    class Spy(dngo.DNGO):
        def fit(self, x, y):
            seeds.append(self.seed)
            return super().fit(x, y)

    monkeypatch.setattr(B, "DNGO", Spy)
    single = _told_bo(bo_model, ensemble=1)
    single.ask(1)
    assert seeds == [3 * 100003]                      # one network, seeded as before the option existed
    seeds.clear()
    ens = _told_bo(bo_model, ensemble=3)
    ens.ask(1)
    assert len(seeds) == 3 and len(set(seeds)) == 3 and seeds[0] == 3 * 100003
    assert ens.queue != single.queue                 # the mixture, not member 0 alone, ranks the candidates


def test_bo_ucb_ranks_by_mean_plus_kappa_sd(bo_model):
    import numpy as np
    from nascore.arch2vec.dngo import DNGO

    s = _told_bo(bo_model, acq="ucb", kappa=3.0)
    cand = s.latent.unvisited()
    m = DNGO(hidden=s.hidden, epochs=s.epochs, seed=3 * 100003).fit(s.latent.emb[s.obs_idx], np.asarray(s.obs_y))
    mu, sd = m.predict(s.latent.emb[cand])
    [first] = s.ask(1)
    want = [int(cand[j]) for j in np.argsort(-(mu + 3.0 * sd), kind="stable")[:4]]
    assert [s.latent.index_of(first)] + s.queue == want
    ei = _told_bo(bo_model, acq="ei")
    ei.ask(1)
    assert ei.queue != s.queue


def test_bo_unknown_acquisition_is_a_user_error(bo_model):
    with pytest.raises(UserError, match="acq"):
        _told_bo(bo_model, acq="pi")


def test_bo_rank_target_fits_the_gaussian_ranks_of_the_scores(bo_model, monkeypatch):
    import numpy as np
    from nascore.arch2vec import dngo
    import nascore.strategies.arch2vec_bo as B

    seen = []

    class Spy(dngo.DNGO):
        def fit(self, x, y):
            seen.append(np.asarray(y, float))
            return super().fit(x, y)

    monkeypatch.setattr(B, "DNGO", Spy)
    for target in ("raw", "rank"):
        s = _told_bo(bo_model, target=target)
        s.ask(1)
        want = np.asarray(s.obs_y) if target == "raw" else B.gaussian_ranks(s.obs_y)
        assert np.array_equal(seen[-1], want), target
    assert not np.array_equal(seen[0], seen[1])
    g = B.gaussian_ranks([5.0, -100.0, 4.0, 6.0])
    assert list(np.argsort(g)) == [1, 2, 0, 3] and abs(g.mean()) < 1e-12 and g.max() < 1.2


def test_bo_mutation_candidates_are_unvisited_one_edit_neighbours_of_the_best(bo_model):
    import numpy as np

    space = get_space("nb201")
    s = _told_bo(bo_model, candidates="mutation", parents=3, mutations=40)
    got = []
    real = s._mutation_candidates
    s._mutation_candidates = lambda: got.append(real()) or got[-1]
    [first] = s.ask(1)
    [cand] = got
    assert 0 < len(cand) <= 3 * 40 and not s.latent.visited[[i for i in cand if i != s.latent.index_of(first)]].any()
    best = [space.edge_ops(s.latent.arch(s.obs_idx[o])) for o in np.argsort(-np.asarray(s.obs_y))[:3]]
    for i in cand:
        ops = space.edge_ops(s.latent.arch(i))
        assert min(sum(a != b for a, b in zip(ops, p)) for p in best) == 1
    proposals = [s.latent.index_of(first)] + [int(i) for i in s.queue]
    assert len(proposals) == 4 and set(proposals) <= set(int(i) for i in cand)
    everywhere = _told_bo(bo_model, candidates="all", parents=3, mutations=40)
    everywhere.ask(1)
    assert len(everywhere.latent.unvisited()) > 10 * len(cand)   # the option shrinks the candidate set


def test_bo_search_options_are_validated(bo_model):
    for bad in ({"target": "log"}, {"candidates": "local"}, {"parents": 0}):
        with pytest.raises(UserError):
            _told_bo(bo_model, **bad)


def test_bo_defaults_are_the_robust_settings(bo_model):
    """The default is the setting chosen on the tuning seeds (issue 15 item 4): rank targets, mutation candidates."""
    from nascore.strategies import get_strategy

    s = get_strategy("arch2vec-bo", get_space("nb201"), seed=0, model=bo_model)
    assert (s.target, s.candidates, s.acq, s.ensemble, s.batch, s.init) == ("rank", "mutation", "ei", 1, 5, 16)


def test_dngo_predicts_on_one_thread_whatever_the_caller_uses():
    """The search does not depend on the caller's torch thread count: DNGO fits and predicts on one thread."""
    import numpy as np
    from nascore.arch2vec import dngo

    seen = []
    m = dngo.DNGO(epochs=5, seed=0).fit(np.random.default_rng(0).normal(size=(10, 3)), np.arange(10.0))
    real = m._basis
    m._basis = lambda x: (seen.append(torch.get_num_threads()), real(x))[1]
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        m.predict(np.zeros((4, 3)))
        m.predict_samples(np.zeros((4, 3)), m.sample_weights(2, np.random.default_rng(0)))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(old)
    assert seen == [1, 1]
