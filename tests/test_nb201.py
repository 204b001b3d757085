import numpy as np
import pandas as pd
import pytest

from conftest import real_dataset
from nascore.benchmarks.nb201 import NB201Table, export_from_nats
from nascore.errors import DataMissingError, UserError
from nascore.spaces import get_space
from nascore.spaces.nb201 import ADJACENCY, NB201Space

BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


def test_space_roundtrip_and_encodings():
    s = NB201Space()
    rng = np.random.default_rng(0)
    for _ in range(50):
        a = s.sample(rng)
        assert s.is_valid(a) and s.from_string(s.to_string(a)) == a
        m = s.mutate(a, rng)
        assert s.is_valid(m) and sum(x != y for x, y in zip(s.edge_ops(a), s.edge_ops(m))) == 1
        c = s.crossover(a, m, rng)
        assert all(o in (x, y) for o, x, y in zip(s.edge_ops(c), s.edge_ops(a), s.edge_ops(m)))
    g = s.to_graph(s.from_string(BEST))
    assert g.x.shape == (8, 7) and g.edge_index.shape == (2, int(ADJACENCY.sum()))
    assert s.to_vector(a).shape == (30,)
    assert len({s.to_string(a) for a in s.enumerate()}) == 15625


def test_operation_graph_follows_the_cell():
    # op on edge 0->1 (node 1) feeds the ops leaving node 1: edges 1->2 (node 3) and 1->3 (node 5)
    assert list(np.flatnonzero(ADJACENCY[1])) == [3, 5]
    assert list(np.flatnonzero(ADJACENCY[:, 7])) == [4, 5, 6]
    assert list(np.flatnonzero(ADJACENCY[0])) == [1, 2, 4]


def test_equivalence_hash_ignores_dead_branches():
    s = NB201Space()
    a = s.from_string("|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")
    b = s.from_string("|avg_pool_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")
    assert s.to_string(a) != s.to_string(b)
    assert s.equivalence_hash(a) == s.equivalence_hash(b)  # node 1 feeds nothing alive
    c = s.from_string("|avg_pool_3x3~0|+|none~0|none~1|+|skip_connect~0|skip_connect~1|none~2|")
    assert s.equivalence_hash(c) != s.equivalence_hash(b)


@pytest.mark.parametrize("bad", ["", "|conv~0|+|a~0|b~1|+|a~0|b~1|c~2|",
                                 "|none~0|+|none~0|+|none~0|none~1|none~2|",
                                 "|none~1|+|none~0|none~1|+|none~0|none~1|none~2|",
                                 "|none~0|+|none~0|none~1|"])
def test_malformed_strings(bad):
    with pytest.raises(UserError) as e:
        NB201Space().from_string(bad)
    assert "\n" not in str(e.value)


def test_unknown_space():
    with pytest.raises(UserError, match="unknown space 'nb999'"):
        get_space("nb999")


def test_table_fidelity_and_optimum(synthetic_nb201_table):
    t = NB201Table.read_csv(synthetic_nb201_table)
    assert t.default_fidelity() == 200
    opt = t.optimum(200)
    assert opt["arch"].count("nor_conv_3x3") >= 5
    q = t.query(opt["arch"], 12)
    assert q["valid_accuracy"] == pytest.approx(opt["valid_accuracy"] - 10)
    assert q["test_accuracy"] == pytest.approx(opt["valid_accuracy"] + 3)  # always test_acc_200
    assert q["cost_seconds"] == pytest.approx(12 * (1 + opt["arch"].count("conv") / 10))


def test_table_with_only_required_columns_plus_valid12(synthetic_nb201_table, tmp_path):
    df = pd.read_csv(synthetic_nb201_table)[["index", "arch", "test_acc_200", "valid_acc_12"]]
    p = tmp_path / "nb201-imagenet16-120.csv"
    df.to_csv(p, index=False)
    t = NB201Table.load("imagenet16-120", tmp_path)
    assert t.default_fidelity() == 12
    assert t.query(df.arch[0])["cost_seconds"] is None
    with pytest.raises(UserError, match="valid_acc_200"):
        t.signal_column(200)


def test_table_errors(tmp_path, synthetic_nb201_table):
    with pytest.raises(DataMissingError, match="nascore bench export"):
        NB201Table.load("cifar100", tmp_path)
    with pytest.raises(UserError, match="unknown dataset 'mnist'"):
        NB201Table.load("mnist", tmp_path)
    df = pd.read_csv(synthetic_nb201_table)
    df["test_acc_200"] = df["test_acc_200"].astype(object)
    df.loc[5, "test_acc_200"] = "abc"
    bad = tmp_path / "bad.csv"
    df.to_csv(bad, index=False)
    with pytest.raises(UserError, match="line 7, column test_acc_200"):
        NB201Table.read_csv(bad)
    df.drop(columns=["test_acc_200"]).to_csv(bad, index=False)
    with pytest.raises(UserError, match="missing required column"):
        NB201Table.read_csv(bad)
    with pytest.raises(UserError, match="not in"):
        NB201Table.read_csv(synthetic_nb201_table).query("|none~0|+|x~0|")


class FakeNats:
    """The few nats_bench API methods the exporter uses, over a tiny table."""

    def __init__(self, archs):
        self.archs = archs

    def __len__(self):
        return len(self.archs)

    def arch(self, i):
        return self.archs[i]

    def get_more_info(self, i, dataset, hp, is_random):
        base = 80 + i + (5 if hp == "200" else 0)
        return {"valid-accuracy": base if dataset == "cifar10-valid" else None,
                "test-accuracy": base + 1, "train-per-time": 2.0, "train-all-time": 2.0 * int(hp)}

    def get_cost_info(self, i, dataset):
        return {"params": 0.1 * (i + 1)}


def test_export_writes_a_table_the_backend_reads(tmp_path):
    s = NB201Space()
    archs = [s.to_string(a) for a, _ in zip(s.enumerate(), range(3))]
    out = export_from_nats(None, "cifar10", tmp_path / "nb201-cifar10.csv", progress=False, api=FakeNats(archs))
    t = NB201Table.load("cifar10", tmp_path)
    assert str(t.path) == str(out)
    assert t.query(archs[2], 200) == {"valid_accuracy": 87.0, "test_accuracy": 88.0, "cost_seconds": 400.0,
                                      "params_m": pytest.approx(0.3)}
    assert t.query(archs[2], 12)["valid_accuracy"] == 82.0


@pytest.mark.realdata
def test_real_table_matches_published_optimum():
    t = NB201Table.load("cifar10", real_dataset("nasbench201", "nb201-cifar10.csv"))
    assert len(t) == 15625
    opt = t.optimum(200)
    assert opt["arch"] == BEST
    assert round(opt["valid_accuracy"], 2) == 91.61 and round(opt["test_accuracy"], 2) == 94.37
    s = NB201Space()
    assert all(s.to_string(s.from_string(a)) == a for a in t.frame["arch"])
