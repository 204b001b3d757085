import os

import numpy as np
import pytest

from nascore.arch import Arch
from nascore.errors import UserError
from nascore.io import append_jsonl, atomic_write_json, read_json, read_jsonl
from nascore.paths import find_dataset


def random_dag(rng, n):
    m = np.triu(rng.integers(0, 2, (n, n)), 1)
    ops = ["input"] + [str(x) for x in rng.choice(["a", "b", "c"], n - 2)] + ["output"]
    return Arch.from_numpy(m, ops)


def random_topological_relabel(arch, rng):
    """A random topological order of the DAG, used as a relabelling."""
    m = arch.adjacency
    indeg = m.sum(0).copy()
    ready = [k for k in range(arch.n_nodes) if indeg[k] == 0]
    order = []
    while ready:
        k = ready.pop(int(rng.integers(len(ready))))
        order.append(k)
        for j in np.flatnonzero(m[k]):
            indeg[j] -= 1
            if indeg[j] == 0:
                ready.append(int(j))
    return arch.permute(order)


def test_hash_is_isomorphism_invariant_and_discriminates():
    rng = np.random.default_rng(0)
    hashes = set()
    for _ in range(200):
        a = random_dag(rng, 6)
        b = random_topological_relabel(a, rng)
        assert b.hash == a.hash
        hashes.add(a.hash)
    assert len(hashes) > 150  # different graphs get different hashes


def test_hash_depends_on_labels_and_edges():
    a = Arch.from_edges(3, [(0, 1), (1, 2)], ["input", "x", "output"])
    assert a.hash != Arch.from_edges(3, [(0, 1), (1, 2)], ["input", "y", "output"]).hash
    assert a.hash != Arch.from_edges(3, [(0, 1), (1, 2), (0, 2)], ["input", "x", "output"]).hash


def test_arch_rejects_backward_edges():
    with pytest.raises(ValueError, match="forward"):
        Arch(((0, 0), (1, 0)), ("input", "output"))


def test_prune_removes_dead_and_dropped_nodes():
    # 0 -> 1 -> 3, 0 -> 2 (2 is dead: no path to output), node 1 labelled none
    a = Arch.from_edges(4, [(0, 1), (1, 3), (0, 2), (0, 3)], ["input", "x", "y", "output"])
    p = a.prune()
    assert p.ops == ("input", "x", "output") and p.edges == [(0, 1), (0, 2), (1, 2)]
    q = a.prune(drop_ops=["x"])
    assert q.ops == ("input", "output") and q.edges == [(0, 1)]


def test_atomic_json_and_jsonl_torn_tail(tmp_path):
    atomic_write_json(tmp_path / "c.json", {"a": np.float32(1.5), "b": np.arange(2)})
    assert read_json(tmp_path / "c.json") == {"a": 1.5, "b": [0, 1]}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "c.json").stat().st_mode & 0o777 == 0o666 & ~mask  # not mkstemp's 0600
    h = tmp_path / "h.jsonl"
    append_jsonl(h, [{"i": 0}, {"i": 1}])
    with open(h, "a") as f:
        f.write('{"i": 2, "arch": "tor')  # a crash mid-append
    assert read_jsonl(h) == [{"i": 0}, {"i": 1}]
    read_jsonl(h, repair=True)
    append_jsonl(h, [{"i": 2}])
    assert [r["i"] for r in read_jsonl(h)] == [0, 1, 2]


def test_jsonl_corruption_in_the_middle_is_an_error(tmp_path):
    h = tmp_path / "h.jsonl"
    h.write_text('{"i": 0}\nnot json\n{"i": 2}\n')
    with pytest.raises(UserError, match="line 2"):
        read_jsonl(h)


def test_find_dataset_order(tmp_path, monkeypatch):
    (tmp_path / "root" / "mitdb").mkdir(parents=True)
    monkeypatch.setenv("NASCORE_DATA", str(tmp_path / "root"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert find_dataset("mitdb") == tmp_path / "root" / "mitdb"
    explicit = tmp_path / "elsewhere"
    explicit.mkdir()
    assert find_dataset("mitdb", explicit) == explicit
    with pytest.raises(UserError, match="wfdb.dl_database") as e:
        find_dataset("nasbench201", how_to_get="get it with wfdb.dl_database")
    assert "\n" not in str(e.value)
