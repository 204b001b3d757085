"""The ``ecg-cell`` 1D cell space: strings, sampling, encodings, network, exact costs, latency,
the constrained space, and the nascore strategies running on it unchanged."""

import itertools
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import ecgnas.spaces  # noqa: F401 - registers ecg-cell
from ecgnas.models import count_parameters
from ecgnas.spaces import conv1d
from ecgnas.spaces.constrained import ConstrainedSpace
from ecgnas.spaces.conv1d import (ADJACENCY, ECG_OPS, ECGCellSpace, SqueezeExcite, ecg1d_opset, live_edges,
                                  measure_latency_ms, stage_lengths)
from nascore.encoders.path import PathEncoder
from nascore.errors import UserError
from nascore.evaluation import Result
from nascore.io import read_jsonl
from nascore.run import Budget, run_search
from nascore.spaces import get_space
from nascore.strategies import get_strategy

SPACE = ECGCellSpace()
EXAMPLE = "w16d2:|conv_3~0|+|sep_conv_11~0|skip_connect~1|+|none~0|se~1|max_pool_3~2|"
CONVS = ("conv_3", "dil_conv_5", "sep_conv_11")


def uniform(width, depth, op):
    return SPACE.from_parts(width, depth, [op] * 6)


def genes(arch):
    """The 8 choices of an architecture: 6 edge operations, width, depth."""
    w, d, ops = SPACE.parts(arch)
    return list(ops) + [w, d]


def flops_of(net, in_channels=1, window=252, n_rr=4):
    net.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        net(torch.zeros(1, in_channels, window), torch.zeros(1, n_rr))
    return fc.get_total_flops()


# --- names ------------------------------------------------------------------------------------------
def test_registered_and_nascore_never_imports_ecgnas():
    assert isinstance(get_space("ecg-cell"), ECGCellSpace)
    root = Path(__file__).resolve().parents[1] / "nascore"
    offenders = [p for p in root.rglob("*.py") if re.search(r"^\s*(from|import)\s+ecgnas", p.read_text(), re.M)]
    assert offenders == []


def test_string_round_trip_and_parts():
    a = SPACE.from_string(EXAMPLE)
    assert a.ops == ("input", "width_16", "depth_2", "conv_3", "sep_conv_11", "skip_connect", "none", "se",
                     "max_pool_3", "output")
    assert SPACE.to_string(a) == SPACE.key(a) == EXAMPLE
    assert SPACE.parts(a) == (16, 2, ("conv_3", "sep_conv_11", "skip_connect", "none", "se", "max_pool_3"))
    assert SPACE.from_string("  " + EXAMPLE + "\n") == a
    rng = np.random.default_rng(0)
    for _ in range(300):
        b = SPACE.sample(rng)
        assert SPACE.is_valid(b) and SPACE.from_string(SPACE.to_string(b)) == b


@pytest.mark.parametrize("text, message", [
    ("|conv_3~0|+|none~0|none~1|+|none~0|none~1|none~2|", "malformed ecg-cell arch string"),
    ("w16:|conv_3~0|+|none~0|none~1|+|none~0|none~1|none~2|", "malformed ecg-cell arch string"),
    ("wxd1:|conv_3~0|+|none~0|none~1|+|none~0|none~1|none~2|", "macro prefix 'wxd1'"),
    ("w8d1:|conv_3~0|+|none~0|none~1|", "expected 3 cell groups"),
    ("w8d1:|conv_3~0|+|none~0|+|none~0|none~1|none~2|", "node 2's 2 input"),
    ("w8d1:|conv_3~1|+|none~0|none~1|+|none~0|none~1|none~2|", "'conv_3~1' should read from node 0"),
    ("w8d1:|conv_5~0|+|none~0|none~1|+|none~0|none~1|none~2|",
     "operation 'conv_5' is outside the ecg-cell space (choose from none, skip_connect, conv_3, dil_conv_5, "
     "sep_conv_11, max_pool_3, se)"),
    ("w32d1:|conv_3~0|+|none~0|none~1|+|none~0|none~1|none~2|",
     "width 32 is outside the ecg-cell space (choose from 8, 16)"),
    ("w8d3:|conv_3~0|+|none~0|none~1|+|none~0|none~1|none~2|",
     "depth 3 is outside the ecg-cell space (choose from 1, 2)"),
])
def test_from_string_errors_are_one_line_and_name_the_value(text, message):
    with pytest.raises(UserError) as e:
        SPACE.from_string(text)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_other_construction_errors():
    with pytest.raises(UserError, match="must be text"):
        SPACE.from_string(None)
    with pytest.raises(UserError, match="needs 6 edge operations"):
        SPACE.from_parts(8, 1, ["none"] * 5)
    with pytest.raises(UserError, match="outside the ecg-cell space"):
        SPACE.to_string(get_space("nb201").from_ops(["none"] * 6))


# --- sampling --------------------------------------------------------------------------------------------
def test_sample_is_uniform_over_choices():
    rng = np.random.default_rng(1)
    g = [genes(SPACE.sample(rng)) for _ in range(4000)]
    macros = {m: sum(1 for x in g if tuple(x[6:]) == m) for m in itertools.product((8, 16), (1, 2))}
    assert all(850 < c < 1150 for c in macros.values()), macros  # 1000 expected each
    ops = [x[e] for x in g for e in range(6)]
    assert all(3000 < ops.count(o) < 3860 for o in ECG_OPS)  # 3428.6 expected each


def test_mutate_changes_exactly_one_choice_and_reaches_every_kind():
    rng = np.random.default_rng(2)
    kinds = set()
    for _ in range(600):
        a = SPACE.sample(rng)
        b = SPACE.mutate(a, rng)
        diff = [k for k, (x, y) in enumerate(zip(genes(a), genes(b))) if x != y]
        assert SPACE.is_valid(b) and len(diff) == 1 and b != a
        kinds.add(diff[0])
    assert kinds == set(range(8))  # every edge, the width and the depth get mutated


def test_crossover_takes_each_choice_from_a_parent():
    rng = np.random.default_rng(3)
    mixed = 0
    for _ in range(200):
        a, b = SPACE.sample(rng), SPACE.sample(rng)
        c = SPACE.crossover(a, b, rng)
        assert SPACE.is_valid(c)
        ga, gb, gc = genes(a), genes(b), genes(c)
        assert all(z in (x, y) for x, y, z in zip(ga, gb, gc))
        mixed += gc != ga and gc != gb
    assert mixed > 150


# --- size, enumeration ----------------------------------------------------------------------------------
def test_size_enumerate_and_all_strings_agree():
    assert SPACE.size == 7 ** 6 * 4 == 470_596
    strings = SPACE.all_strings()
    assert len(strings) == len(set(strings)) == SPACE.size
    n = 0
    for k, a in enumerate(SPACE.enumerate()):
        if k % 9973 == 0:
            assert SPACE.to_string(a) == strings[k]
        n += 1
    assert n == SPACE.size
    assert strings[0] == "w8d1:|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    assert strings[-1] == "w16d2:|se~0|+|se~0|se~1|+|se~0|se~1|se~2|"


# --- encodings -------------------------------------------------------------------------------------------
def test_graph_encoding_shape_labels_and_edges():
    assert SPACE.max_nodes == 10
    assert SPACE.node_labels == ("input", "width_8", "width_16", "depth_1", "depth_2") + ECG_OPS + ("output",)
    # written out by hand: macro chain, depth -> ops leaving cell node 0, the NB-201 op graph, ops -> output
    expected = [(0, 1), (1, 2), (2, 3), (2, 4), (2, 6), (3, 5), (3, 7), (4, 8), (5, 8), (6, 9), (7, 9), (8, 9)]
    a = SPACE.from_string(EXAMPLE)
    assert a.edges == expected
    assert np.array_equal(a.adjacency, ADJACENCY) and not a.adjacency.flags.writeable  # shared, read-only
    assert [(i, j) for i, j in zip(*np.nonzero(ADJACENCY))] == expected
    g = SPACE.to_graph(a)
    assert tuple(g.x.shape) == (10, 13) and g.edge_index.shape[1] == 12 and tuple(g.adj.shape) == (1, 10, 10)
    assert [SPACE.node_labels[int(k)] for k in g.x.argmax(1)] == list(a.ops)
    # every input -> output path passes the width and the depth node
    enc = PathEncoder(SPACE, drop_ops=())
    paths = enc.paths(a)
    assert len(paths) == 4 and all(p[:2] == ("width_16", "depth_2") for p in paths)


def test_to_vector_is_one_hot_of_edges_and_macro():
    a = SPACE.from_string(EXAMPLE)
    v = SPACE.to_vector(a)
    assert v.shape == (46,) and v.sum() == 8
    assert [ECG_OPS[int(k)] for k in v[:42].reshape(6, 7).argmax(1)] == list(SPACE.edge_ops(a))
    assert v[42:].tolist() == [0, 1, 0, 1]  # width 16, depth 2


def test_path_encoding_sees_the_macro_and_breaks_at_none():
    enc = PathEncoder(SPACE)
    assert enc.endpoints == "first-last" and enc.max_length == 5  # width, depth, then up to 3 operations
    assert enc.hashed and enc.dim == 4096  # 10 interior labels: the exact index (111,111) exceeds max_index
    full = uniform(8, 1, "conv_3")
    assert enc.count_paths(full) == 4 and all(p[:2] == ("width_8", "depth_1") for p in enc.paths(full))
    assert enc.count_paths(uniform(8, 1, "none")) == 0
    assert not np.array_equal(enc.encode(full), enc.encode(uniform(16, 1, "conv_3")))
    assert not np.array_equal(enc.encode(full), enc.encode(uniform(8, 2, "conv_3")))
    assert enc.sequence(full, l_seq=4).shape == (4 * 5 * 10,)


def test_equivalence_hash_prunes_dead_edges_but_keeps_the_macro():
    dead = SPACE.from_string("w8d1:|conv_3~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    assert SPACE.equivalence_hash(dead) == SPACE.equivalence_hash(uniform(8, 1, "none"))
    assert SPACE.equivalence_hash(dead) != SPACE.equivalence_hash(uniform(16, 1, "none"))
    a = SPACE.from_string("w8d1:|conv_3~0|+|none~0|none~1|+|none~0|skip_connect~1|none~2|")
    b = SPACE.from_string("w8d1:|none~0|+|conv_3~0|none~1|+|none~0|none~1|skip_connect~2|")
    assert SPACE.equivalence_hash(a) == SPACE.equivalence_hash(b) != SPACE.equivalence_hash(dead)


def test_arch2vec_validity_accepts_exactly_this_graph_form():
    from nascore.arch2vec.vgae import decode_arch

    pad = len(SPACE.node_labels)
    a = SPACE.from_string(EXAMPLE)
    ops = np.array([SPACE.node_labels.index(o) for o in a.ops])
    adj = ADJACENCY.copy()
    assert SPACE.is_valid(decode_arch(SPACE, ops, adj))

    def decoded(ops_row, adj_row):
        d = decode_arch(SPACE, ops_row, adj_row)
        return d is not None and SPACE.is_valid(d)

    swapped = ops.copy()
    swapped[[1, 2]] = swapped[[2, 1]]  # depth label where the width goes
    assert not decoded(swapped, adj)
    op_in_macro = ops.copy()
    op_in_macro[1] = SPACE.node_labels.index("conv_3")
    assert not decoded(op_in_macro, adj)
    macro_in_cell = ops.copy()
    macro_in_cell[5] = SPACE.node_labels.index("width_8")
    assert not decoded(macro_in_cell, adj)
    for i, j in [(0, 1), (2, 6), (8, 9)]:  # a missing edge
        cut = adj.copy()
        cut[i, j] = 0
        assert not decoded(ops, cut)
    extra = adj.copy()
    extra[0, 9] = 1
    assert not decoded(ops, extra)
    short, short_adj = ops.copy(), adj.copy()
    short[8] = pad  # node 8 absent (padding, no edges): a 9-node graph
    short_adj[8, :] = short_adj[:, 8] = 0
    assert decode_arch(SPACE, short, short_adj).n_nodes == 9 and not decoded(short, short_adj)


# --- operations --------------------------------------------------------------------------------------------
def test_opset_builds_every_operation_in_order():
    ops = ecg1d_opset()
    assert ops.name == "ecg1d" and ops.dim == 1 and ops.primitives == ECG_OPS
    x = torch.randn(2, 8, 25)
    for name in ECG_OPS:
        assert ops.build(name, 8, 1, True)(x).shape == (2, 8, 25)
        assert ops.build(name, 8, 2, False)(x).shape == (2, 8, 13)
    conv = ops.build("conv_3", 8, 1, True)
    assert conv[1].kernel_size == (3,) and conv[2].track_running_stats
    dil = ops.build("dil_conv_5", 8, 1, True)
    assert dil[1].kernel_size == (5,) and dil[1].dilation == (2,) and dil[1].groups == 8
    sep = ops.build("sep_conv_11", 8, 1, True)
    assert len(sep) == 2 and sep[0][1].kernel_size == (11,) and sep[1][1].groups == 8


def test_squeeze_excite_formula():
    torch.manual_seed(0)
    se = SqueezeExcite(16)
    assert (se.fc1.in_features, se.fc1.out_features) == (16, 4)
    assert SqueezeExcite(64).fc1.out_features == 16
    x = torch.randn(3, 16, 9)
    w = torch.sigmoid(se.fc2(torch.relu(se.fc1(x.mean(2)))))
    torch.testing.assert_close(se(x), x * w[:, :, None])


def test_supernet_accepts_the_op_set():
    from nascore.darts.supernet import NB201Supernet

    net = NB201Supernet(C=8, N=1, num_classes=5, K=1, ops=ecg1d_opset(), in_channels=1)
    assert net.alpha.shape == (1, 6, 7) and net(torch.randn(2, 1, 32)).shape == (2, 5)


# --- network ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("window, in_channels", [(16, 1), (17, 3), (101, 2), (252, 1)])
def test_forward_shapes_and_stage_lengths(window, in_channels):
    torch.manual_seed(0)
    a = SPACE.from_string("w8d2:|conv_3~0|+|dil_conv_5~0|se~1|+|sep_conv_11~0|max_pool_3~1|skip_connect~2|")
    net = SPACE.build_model(a, in_channels=in_channels, window=window, n_rr=3, n_classes=4)
    seen = []
    for cell in net.cells:
        cell.register_forward_hook(lambda m, i, o: seen.append(tuple(o.shape[1:])))
    net.train()
    out = net(torch.randn(2, in_channels, window), torch.randn(2, 3))
    assert out.shape == (2, 4)
    out.sum().backward()
    l0, l1, l2 = stage_lengths(window)
    # 2 cells, reduction, 2 cells, reduction, 2 cells
    assert seen == [(8, l0), (8, l0), (16, l1), (16, l1), (16, l1), (32, l2), (32, l2), (32, l2)]
    net.eval()
    assert net(torch.randn(1, in_channels, window), torch.randn(1, 3)).shape == (1, 4)


def test_bad_shapes_are_user_errors():
    a = uniform(8, 1, "conv_3")
    for kw, msg in [({"window": 15}, "window=15 must be an integer >= 16"), ({"in_channels": 0}, "in_channels=0"),
                    ({"n_rr": 0}, "n_rr=0"), ({"dropout": 1.0}, "dropout=1.0"), ({"window": 100.0}, "window=100.0")]:
        with pytest.raises(UserError, match=re.escape(msg)):
            SPACE.build_model(a, **kw)


def test_empty_cell_outputs_zeros_and_rr_still_classifies():
    torch.manual_seed(0)
    dead = SPACE.from_string("w8d1:|conv_3~0|+|none~0|none~1|+|none~0|none~1|none~2|")  # conv_3 is dead
    net = SPACE.build_model(dead).eval()
    cells = [m for m in net.cells if isinstance(m, conv1d.ECGCell)]
    assert len(cells) == 3 and all(len(c.edges) == 0 and not list(c.parameters()) for c in cells)
    assert float(cells[0](torch.randn(2, 8, 30)).abs().sum()) == 0.0
    rr = torch.randn(2, 4)
    with torch.no_grad():
        y1, y2 = net(torch.randn(2, 1, 252), rr), net(torch.randn(2, 1, 252), rr)
        y3 = net(torch.randn(2, 1, 252), rr + 1)
    torch.testing.assert_close(y1, y2)  # nothing of the signal gets through
    assert not torch.allclose(y1, y3)   # the RR branch does


def test_live_edges_follow_paths_without_none():
    codes = np.array([[2, 2, 2, 2, 2, 2],   # all live
                      [0, 2, 2, 0, 2, 2],   # node 1 unreachable: 1->2 and 1->3 dead
                      [2, 2, 2, 0, 0, 0],   # nothing reaches node 3
                      [2, 0, 2, 0, 0, 2]])  # 0->1->2->3 only
    assert live_edges(codes).astype(int).tolist() == [[1, 1, 1, 1, 1, 1], [0, 1, 0, 0, 0, 1],
                                                      [0, 0, 0, 0, 0, 0], [1, 0, 1, 0, 0, 1]]
    cell = conv1d.ECGCell(ecg1d_opset(), 8, ["conv_3", "none", "conv_3", "none", "none", "conv_3"])
    assert [e for e, _, _ in cell.plan] == [0, 2, 5]


# --- cost model ----------------------------------------------------------------------------------------------
def test_cost_is_exact_for_random_archs_and_extremes():
    rng = np.random.default_rng(4)
    archs = [SPACE.sample(rng) for _ in range(28)]
    archs += [uniform(w, d, "conv_3") for w, d in [(8, 2), (16, 2)]]
    archs += [uniform(8, 1, "none"), uniform(16, 2, "sep_conv_11")]
    assert {SPACE.parts(a)[:2] for a in archs} == set(itertools.product((8, 16), (1, 2)))
    params, flops = SPACE.cost_arrays(archs)
    for k, a in enumerate(archs):
        torch.manual_seed(k)
        net = SPACE.build_model(a)
        assert SPACE.cost(a) == {"params": count_parameters(net), "flops": flops_of(net)} \
            == {"params": params[k], "flops": flops[k]}, SPACE.to_string(a)
    p_all, f_all = SPACE.cost_arrays(None)
    low = SPACE.cost(uniform(8, 1, "none"))
    assert SPACE.min_cost() == low == {"params": int(p_all.min()), "flops": int(f_all.min())}
    # conv_3 is the heaviest edge of width 16 (3 C^2 weights per stage against 2 (11 C + C^2) for
    # sep_conv_11: 16,128 against 13,216 over C = 16, 32, 64)
    high = SPACE.cost(uniform(16, 2, "conv_3"))
    assert (high["params"], high["flops"]) == (int(p_all.max()), int(f_all.max()))


def test_cost_at_other_shapes_and_array_forms_agree():
    shape = dict(in_channels=3, window=37, n_rr=2, n_classes=3)
    for s in ["w16d1:|se~0|+|dil_conv_5~0|conv_3~1|+|max_pool_3~0|sep_conv_11~1|skip_connect~2|",
              "w8d2:|sep_conv_11~0|+|none~0|se~1|+|conv_3~0|none~1|dil_conv_5~2|"]:
        a = SPACE.from_string(s)
        net = SPACE.build_model(a, **shape)
        assert SPACE.cost(a, **shape) == {"params": count_parameters(net), "flops": flops_of(net, 3, 37, 2)}
    strings = SPACE.all_strings()
    idx = np.random.default_rng(5).choice(len(strings), 500, replace=False)
    p_all, f_all = SPACE.cost_arrays(None, **shape)
    p, f = SPACE.cost_arrays([strings[i] for i in idx], **shape)
    assert p.dtype == f.dtype == np.int64
    np.testing.assert_array_equal(p, p_all[idx])
    np.testing.assert_array_equal(f, f_all[idx])
    with pytest.raises(UserError, match="outside the ecg-cell space"):
        SPACE.cost_arrays(["w8d1:|conv_5~0|+|none~0|none~1|+|none~0|none~1|none~2|"])
    with pytest.raises(UserError, match="sequence"):
        SPACE.cost_arrays(EXAMPLE)


def test_cost_tables_leave_the_global_rng_alone():
    conv1d.cost_table.cache_clear()
    torch.manual_seed(7)
    SPACE.cost(uniform(8, 1, "se"), window=64)
    after = torch.rand(1)
    torch.manual_seed(7)
    assert torch.equal(after, torch.rand(1))


# --- latency ---------------------------------------------------------------------------------------------------
def test_latency_estimate_is_cached_and_measurement_restores_state(tmp_path, monkeypatch):
    # timings themselves are not asserted here (a loaded CI machine makes any bound flaky); how
    # close the estimate is to measured latency is a benchmark figure, not a test
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(conv1d, "_LATENCY", {})
    small, mid, big = uniform(8, 1, "skip_connect"), uniform(8, 1, "conv_3"), uniform(16, 2, "sep_conv_11")
    est = SPACE.estimate_latency_ms([small, mid, big], window=128)
    assert (est > 0).all() and np.isfinite(est).all()
    [cached] = (tmp_path / "nascore" / "ecgnas" / "latency").glob("ecg-cell-*.json")
    doc = json.loads(cached.read_text())
    assert doc["key"]["torch"] == torch.__version__ and doc["key"]["window"] == 128 and doc["key"]["cpu"]
    # a fresh process reads the file instead of measuring again
    monkeypatch.setattr(conv1d, "_LATENCY", {})
    monkeypatch.setattr(conv1d, "_measure_latency_table", lambda *a: pytest.fail("measured again"))
    np.testing.assert_allclose(SPACE.estimate_latency_ms([small, mid, big], window=128), est)
    rng = np.random.default_rng(6)
    for a in [small, big, SPACE.sample(rng), SPACE.sample(rng)]:
        net = SPACE.build_model(a, window=128).train()
        torch.set_num_threads(2)
        try:
            measured = measure_latency_ms(net, window=128, repeats=7, warmup=2, threads=1)
            assert torch.get_num_threads() == 2 and net.training  # both restored
        finally:
            torch.set_num_threads(1)
        assert measured > 0


def test_latency_argument_errors():
    net = SPACE.build_model(uniform(8, 1, "none"))
    with pytest.raises(UserError, match="repeats=0"):
        measure_latency_ms(net, repeats=0)
    with pytest.raises(UserError, match="batch=0"):
        measure_latency_ms(net, batch=0)


# --- constrained space -----------------------------------------------------------------------------------------
P_ALL, F_ALL = SPACE.cost_arrays(None)
P_LIM = int(np.percentile(P_ALL, 20))
F_LIM = int(np.percentile(F_ALL, 30))


def test_constrained_space_counts_and_delegates():
    c = ConstrainedSpace(SPACE, max_params=P_LIM, max_flops=F_LIM)
    mask = (P_ALL <= P_LIM) & (F_ALL <= F_LIM)
    assert c.size == int(mask.sum()) and 0 < c.size < SPACE.size
    strings = SPACE.all_strings()
    assert c.all_strings() == [s for s, ok in zip(strings, mask) if ok]
    first = list(itertools.islice(c.enumerate(), 50))
    assert [c.to_string(a) for a in first] == c.all_strings()[:50]
    idx = np.random.default_rng(7).choice(len(strings), 300, replace=False)
    np.testing.assert_array_equal(c.feasible_mask([strings[i] for i in idx]), mask[idx])
    assert c.describe() == {"space": "ecg-cell", "max_params": P_LIM, "max_flops": F_LIM, "max_latency_ms": None,
                            "latency": "additive lookup-table estimate", "shape": {}, "size": c.size}
    a = c.from_string(c.all_strings()[0])
    assert c.name == "ecg-cell" and c.node_labels == SPACE.node_labels and c.max_nodes == 10
    assert c.key(a) == SPACE.key(a) and np.array_equal(c.to_vector(a), SPACE.to_vector(a))
    assert c.equivalence_hash(a) == SPACE.equivalence_hash(a)
    infeasible = uniform(16, 2, "sep_conv_11")
    assert SPACE.is_valid(infeasible) and not c.is_valid(infeasible)
    with pytest.raises(UserError, match="exceeds the constraints"):
        c.build_model(infeasible)
    p, f = c.cost_arrays()
    assert len(p) == c.size and p.max() <= P_LIM and f.max() <= F_LIM
    assert c.min_cost() == SPACE.min_cost()


def test_constrained_sampling_operators_stay_feasible():
    c = ConstrainedSpace(SPACE, max_params=P_LIM, max_flops=F_LIM)
    rng = np.random.default_rng(8)
    pool = [c.sample(rng) for _ in range(60)]
    for a in pool:
        m = c.mutate(a, rng)
        x = c.crossover(a, pool[int(rng.integers(len(pool)))], rng)
        assert m != a
        for b in (a, m, x):
            cost = SPACE.cost(b)
            assert c.is_valid(b) and cost["params"] <= P_LIM and cost["flops"] <= F_LIM
    # with one try per call the finite fallbacks still give feasible results
    tight = ConstrainedSpace(SPACE, max_params=int(P_ALL.min()), max_tries=1)
    for _ in range(30):
        a = tight.sample(rng)
        b = tight.mutate(a, rng)
        assert tight.is_valid(a) and tight.is_valid(b) and b != a


def test_constrained_shape_is_passed_to_the_cost_model():
    lim = int(np.percentile(F_ALL, 40))
    c = ConstrainedSpace(SPACE, max_flops=lim, window=500, in_channels=2)
    _, f500 = SPACE.cost_arrays(None, window=500, in_channels=2)
    assert c.size == int((f500 <= lim).sum()) < int((F_ALL <= lim).sum())
    a = c.sample(np.random.default_rng(9))
    assert c.build_model(a).eval()(torch.randn(1, 2, 500), torch.randn(1, 4)).shape == (1, 5)
    assert c.cost(a)["flops"] == SPACE.cost(a, window=500, in_channels=2)["flops"] <= lim


def test_constrained_latency_uses_the_estimate(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    est = SPACE.estimate_latency_ms(None, window=64)
    lim = float(np.percentile(est, 25))
    c = ConstrainedSpace(SPACE, max_latency_ms=lim, window=64)
    assert c.size == int((est <= lim).sum())
    a = c.sample(np.random.default_rng(10))
    assert SPACE.estimate_latency_ms([a], window=64)[0] <= lim
    assert (c.estimate_latency_ms() <= lim).all()


@pytest.mark.parametrize("kw, message", [
    ({"max_params": 100}, "max_params=100 admits no ecg-cell architecture (the smallest has 11,373 parameters)"),
    ({"max_flops": 10}, "max_flops=10 admits no ecg-cell architecture (the smallest needs 268,960 FLOPs)"),
    ({"max_params": 0}, "max_params=0 must be a positive number"),
    ({"max_flops": -5.0}, "max_flops=-5.0 must be a positive number"),
    ({"max_params": "10k"}, "max_params='10k' must be a positive number"),
    ({"max_params": True}, "max_params=True must be a positive number"),
    ({"max_latency_ms": float("nan")}, "max_latency_ms=nan must be a positive number"),
    ({"max_params": 50_000, "windw": 100}, "unknown shape argument 'windw' for the ecg-cell cost model"),
    ({"max_params": 50_000, "max_tries": 0}, "max_tries=0 must be an integer >= 1"),
])
def test_constrained_errors(kw, message):
    with pytest.raises(UserError) as e:
        ConstrainedSpace(SPACE, **kw)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_infeasible_latency_names_the_fastest(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    fastest = float(SPACE.estimate_latency_ms(None, window=64).min())
    with pytest.raises(UserError, match=rf"max_latency_ms=1e-06 admits no ecg-cell architecture \(the fastest is "
                                        rf"estimated at {fastest:.3f} ms\)"):
        ConstrainedSpace(SPACE, max_latency_ms=1e-6, window=64)


class _Unlisted(ECGCellSpace):
    """The ecg-cell space posing as an infinite one (no enumeration)."""

    @property
    def size(self):
        return None


def test_constrained_infinite_space_checks_each_architecture():
    c = ConstrainedSpace(_Unlisted(), max_params=P_LIM)
    assert c.size is None
    rng = np.random.default_rng(11)
    for _ in range(20):
        a = c.sample(rng)
        assert c.is_valid(a) and SPACE.cost(a)["params"] <= P_LIM and c.is_valid(c.mutate(a, rng))
    assert c.feasible_mask([uniform(8, 1, "none"), uniform(16, 2, "sep_conv_11")]).tolist() == [True, False]
    with pytest.raises(UserError, match="not enumerable"):
        next(c.enumerate())
    with pytest.raises(UserError, match="the smallest has 11,373 parameters"):
        ConstrainedSpace(_Unlisted(), max_params=1000)


# --- strategies run unchanged ------------------------------------------------------------------------------------
def n_convs(space, arch) -> Result:
    return Result(score=float(sum(o in CONVS for o in space.edge_ops(arch))))


TINY_DCL = dict(n_init=2, n_infill=2, t_gap=1, population=4, offspring=8, pretrain=False,
                predictor={"hidden": 8, "layers": 1, "proj_dim": 4, "head_hidden": 8, "finetune_epochs": 3})


@pytest.mark.parametrize("name, params", [("random", {}), ("evolution", {"population": 2, "sample_size": 1}),
                                          ("dcl-enas", TINY_DCL)])
def test_strategies_run_on_the_space(tmp_path, name, params):
    res = run_search(space=SPACE, strategy=get_strategy(name, SPACE, seed=0, **params),
                     evaluator=lambda a: n_convs(SPACE, a), budget=Budget(queries=4), out_dir=tmp_path / name,
                     config={"seed": 0, "strategy": name})
    hist = read_jsonl(tmp_path / name / "history.jsonl")
    assert res["queries"] == 4 and len({h["arch"] for h in hist}) == 4
    assert all(SPACE.is_valid(SPACE.from_string(h["arch"])) for h in hist)


@pytest.mark.parametrize("name", ["random", "evolution"])
def test_strategies_on_the_constrained_space_only_propose_feasible(tmp_path, name):
    c = ConstrainedSpace(SPACE, max_params=P_LIM, max_flops=F_LIM)
    params = {"population": 5, "sample_size": 2} if name == "evolution" else {}
    run_search(space=c, strategy=get_strategy(name, c, seed=1, **params), evaluator=lambda a: n_convs(c, a),
               budget=Budget(queries=30), out_dir=tmp_path / name, config={"seed": 1})
    archs = [h["arch"] for h in read_jsonl(tmp_path / name / "history.jsonl")]
    p, f = SPACE.cost_arrays(archs)
    assert len(set(archs)) == 30 and p.max() <= P_LIM and f.max() <= F_LIM
