"""arch2vec-BO robustness options (issue 15 item 4): the pretraining's fixed torch thread count."""

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
