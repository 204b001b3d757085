import itertools
from math import comb

import numpy as np
import pytest

from nascore.arch import Arch
from nascore.errors import UserError
from nascore.spaces import get_space
from nascore.spaces.darts import (CELL_LABELS, CELL_NODES, DARTS_V1, DARTS_V2, OPS, DartsSpace, Genotype,
                                  arch_to_cell, canonical_cell, canonical_genotype, cell_to_arch,
                                  genotype_to_string, parse_genotype)

# the text exactly as printed in the DARTS code's genotypes file
V2_TEXT = ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
           "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], "
           "normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
           "('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), "
           "('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])")


def _pairs(g):
    return [tuple(p) for p in g.normal] + [tuple(p) for p in g.reduce]


def test_darts_v2_parses_to_the_published_cells():
    s = get_space("darts")
    assert isinstance(s, DartsSpace)
    g = parse_genotype(V2_TEXT)
    assert g == DARTS_V2 and repr(DARTS_V2) == V2_TEXT  # same style as the DARTS code's namedtuple
    a = s.from_string(V2_TEXT)
    assert s.is_valid(a) and a.n_nodes == 22
    # node 5 of the normal cell: skip from c_{k-2} and dil_conv_3x3 from node 2
    assert s.genotype(a).normal[6:] == [("skip_connect", 0), ("dil_conv_3x3", 2)]
    assert s.to_string(s.genotype_to_arch(DARTS_V1)) != s.to_string(a)
    # multi-line text with range(2, 6) as search logs print it
    text = V2_TEXT.replace("[2, 3, 4, 5]", "range(2, 6)").replace("), (", "),\n  (")
    assert s.from_string(text) == a


def test_text_roundtrip_and_canonical_order():
    s = DartsSpace()
    rng = np.random.default_rng(0)
    for _ in range(100):
        a = s.sample(rng)
        text = s.to_string(a)
        assert s.from_string(text) == a and s.to_string(s.from_string(text)) == text
        assert genotype_to_string(parse_genotype(text)) == text
        # swapping the two pairs of any intermediate node gives the same canonical string and Arch
        g = s.genotype(a)
        node, cell = int(rng.integers(4)), rng.choice(["normal", "reduce"])
        c = list(getattr(g, cell))
        c[2 * node], c[2 * node + 1] = c[2 * node + 1], c[2 * node]
        swapped = g._replace(**{cell: c})
        assert swapped != g
        assert genotype_to_string(swapped) == text and s.genotype_to_arch(swapped) == a


def test_canonical_string_sorts_by_input():
    text = genotype_to_string(DARTS_V2)
    # published order lists ('sep_conv_3x3', 1) before ('skip_connect', 0) in normal node 4
    assert "('skip_connect', 0), ('sep_conv_3x3', 1), ('skip_connect', 0), ('dil_conv_3x3', 2)" in text
    assert parse_genotype(text) != DARTS_V2 and canonical_genotype(parse_genotype(text)) == canonical_genotype(DARTS_V2)


def test_sample_is_valid_and_covers_the_choices():
    s = DartsSpace()
    seen_ops, seen_inputs, strings = set(), set(), set()
    for seed in range(300):
        a = s.sample(np.random.default_rng(seed))
        assert s.is_valid(a)
        g = s.genotype(a)
        for k, (op, j) in enumerate(_pairs(g)):
            seen_ops.add(op)
            seen_inputs.add((k % 8 // 2, j))
        strings.add(s.to_string(a))
    assert seen_ops == set(OPS)
    assert seen_inputs == {(i, j) for i in range(4) for j in range(i + 2)}
    assert len(strings) == 300
    r1 = s.sample(np.random.default_rng(7))
    assert r1 == s.sample(np.random.default_rng(7))  # seeded


def test_node_choice_count_behind_the_space_size():
    # distinct canonical options of intermediate node 2+i = 7^2 * C(i+2, 2) (module docstring)
    for i in range(4):
        options = set()
        for (o1, j1), (o2, j2) in itertools.product(itertools.product(OPS, range(i + 2)), repeat=2):
            if j1 == j2:
                continue
            cell = [("skip_connect", 0), ("skip_connect", 1)] * 4
            cell[2 * i], cell[2 * i + 1] = (o1, j1), (o2, j2)
            options.add(tuple(canonical_cell(cell)))
        assert len(options) == 49 * comb(i + 2, 2)
    assert DartsSpace().size is None


def test_mutate_and_crossover_stay_valid():
    s = DartsSpace()
    rng = np.random.default_rng(1)
    for _ in range(100):
        a, b = s.sample(rng), s.sample(rng)
        m = s.mutate(a, rng)
        assert s.is_valid(m) and m != a and s.to_string(m) != s.to_string(a)
        ga, gm = s.genotype(a), s.genotype(m)
        # exactly one node of one cell changed, and in it exactly one pair
        diff = [(c, i) for c, (x, y) in enumerate(((ga.normal, gm.normal), (ga.reduce, gm.reduce)))
                for i in range(4) if x[2 * i: 2 * i + 2] != y[2 * i: 2 * i + 2]]
        assert len(diff) == 1
        c, i = diff[0]
        old, new = (ga.normal, ga.reduce)[c][2 * i: 2 * i + 2], (gm.normal, gm.reduce)[c][2 * i: 2 * i + 2]
        assert len(set(old) & set(new)) == 1
        child = s.crossover(a, b, rng)
        assert s.is_valid(child)
        gb, gc = s.genotype(b), s.genotype(child)
        for cell in ("normal", "reduce"):
            for i in range(4):
                node = getattr(gc, cell)[2 * i: 2 * i + 2]
                assert node in (getattr(ga, cell)[2 * i: 2 * i + 2], getattr(gb, cell)[2 * i: 2 * i + 2])
    # crossover mixes: over many draws the child differs from both parents
    a, b = s.genotype_to_arch(DARTS_V1), s.genotype_to_arch(DARTS_V2)
    kids = {s.to_string(s.crossover(a, b, np.random.default_rng(k))) for k in range(30)}
    assert len(kids - {s.to_string(a), s.to_string(b)}) > 5


def test_neighbours_are_all_single_edits():
    s = DartsSpace()
    a = s.genotype_to_arch(DARTS_V2)
    nb = s.neighbours(a)
    # per pair: 6 other ops + (i + 2 - 2) other inputs; 2 pairs per node, 4 nodes, 2 cells
    assert len(nb) == 2 * 2 * sum(6 + i for i in range(4)) == 120
    strings = {s.to_string(n) for n in nb}
    assert len(strings) == 120 and s.to_string(a) not in strings
    assert all(s.is_valid(n) for n in nb)


def test_graph_encoding_shapes_and_edges():
    s = DartsSpace()
    a = s.genotype_to_arch(DARTS_V2)
    assert a.adjacency.shape == (22, 22) and s.max_nodes == 22
    assert len(s.node_labels) == 13 and len(set(s.node_labels)) == 13
    assert a.ops[0] == "normal_c_k-2" and a.ops[1] == "normal_c_k-1" and a.ops[10] == "normal_output"
    assert a.ops[11] == "reduce_c_k-2" and a.ops[21] == "reduce_output"
    assert not a.adjacency[:11, 11:].any()  # block diagonal
    # normal node 5 = (skip_connect, 0), (dil_conv_3x3, 2): op node 9 reads both op nodes of node 2
    assert a.ops[9] == "dil_conv_3x3" and list(np.flatnonzero(a.adjacency[:, 9])) == [2, 3]
    assert list(np.flatnonzero(a.adjacency[:, 8])) == [0]
    assert list(np.flatnonzero(a.adjacency[:, 10])) == list(range(2, 10))
    # every op node reads one marker or two op nodes; all feed the output
    assert a.n_edges == 2 * 8 + sum(1 if j < 2 else 2 for _, j in _pairs(DARTS_V2))
    g = s.to_graph(a)
    assert g.x.shape == (22, 13) and g.edge_index.shape == (2, a.n_edges) and g.adj.shape == (1, 22, 22)
    assert s.to_vector(a).shape == (22 * 21 // 2 + 22 * 13,)
    cell = cell_to_arch(DARTS_V2.normal)
    assert cell.n_nodes == CELL_NODES == 11 and set(cell.ops) <= set(CELL_LABELS)
    assert np.array_equal(cell.adjacency, a.adjacency[:11, :11])
    assert arch_to_cell(cell) == canonical_cell(DARTS_V2.normal)
    n, r = s.cell_archs(a)
    assert n == cell and r == cell_to_arch(DARTS_V2.reduce)


def test_isomorphic_relabelling_keeps_hash():
    s = DartsSpace()
    rng = np.random.default_rng(3)
    for _ in range(20):
        a = s.sample(rng)
        # reduce cell first, then normal: still a topological order of the same graph
        order = list(range(11, 22)) + list(range(11))
        assert a.permute(order).hash == a.hash
        # swap the two op nodes of intermediate node 3 (nodes 4, 5): same graph, other listing
        order = [0, 1, 2, 3, 5, 4] + list(range(6, 22))
        p = a.permute(order)
        assert p.hash == a.hash and s.is_valid(p) and s.to_string(p) == s.to_string(a)
        assert s.mutate(a, rng).hash != a.hash
    # swapping the two cells is a different genotype: markers carry the cell type
    g = canonical_genotype(DARTS_V1)
    swapped = Genotype(g.reduce, g.normal_concat, g.normal, g.reduce_concat)
    assert s.genotype_to_arch(swapped).hash != s.genotype_to_arch(g).hash
    # the single-cell graph tells c_{k-2} from c_{k-1}
    c = [("sep_conv_3x3", 0), ("skip_connect", 1)] * 4
    c2 = [("sep_conv_3x3", 1), ("skip_connect", 0)] * 4
    assert cell_to_arch(c).hash != cell_to_arch(c2).hash


def test_is_valid_rejects_other_graphs():
    s = DartsSpace()
    a = s.genotype_to_arch(DARTS_V1)
    # swap op nodes of two different intermediate nodes of the reduce cell: not the layout
    assert not s.is_valid(a.permute(list(range(14)) + [15, 14] + list(range(16, 22))))
    m = a.adjacency.copy()
    m[2, 10] = 0  # an op node that feeds nothing
    assert not s.is_valid(Arch.from_numpy(m, a.ops))
    m = a.adjacency.copy()
    m[5, 13] = 1  # an edge across the cells
    assert not s.is_valid(Arch.from_numpy(m, a.ops))
    ops = list(a.ops)
    ops[3] = "conv_7x1_1x7"
    assert not s.is_valid(Arch.from_numpy(a.adjacency, ops))
    assert not s.is_valid(get_space("nb201").sample(np.random.default_rng(0)))
    with pytest.raises(UserError):
        s.to_string(Arch.from_numpy(a.adjacency, ops))


BAD = [
    ("", "malformed"),
    ("Genotype(normal=[('sep_conv_3x3', 0)", "malformed"),
    ("__import__('os').system('true')", "malformed"),
    ("Genotype(normal=__import__('os'), normal_concat=[2, 3, 4, 5], reduce=[], reduce_concat=[2, 3, 4, 5])",
     "not a literal"),
    (V2_TEXT.replace("normal_concat", "normal_cat"), "unknown field 'normal_cat'"),
    (V2_TEXT.replace(", reduce_concat=[2, 3, 4, 5]", ""), "missing field"),
    (V2_TEXT.replace("'dil_conv_3x3'", "'conv_7x1_1x7'"), "unknown operation 'conv_7x1_1x7'"),
    (V2_TEXT.replace("'dil_conv_3x3'", "'none'"), "'none'"),
    (V2_TEXT.replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', 5)"), "node 5 can only read nodes 0..4"),
    (V2_TEXT.replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', -1)"), "can only read"),
    (V2_TEXT.replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', 0)"), "reads node 0 twice"),
    (V2_TEXT.replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', '2')"), "pair"),
    (V2_TEXT.replace("('dil_conv_3x3', 2)]", "('dil_conv_3x3', 2), ('skip_connect', 3)]", 1), "8 (op, input)"),
    (V2_TEXT.replace("normal_concat=[2, 3, 4, 5]", "normal_concat=[4, 5]"), "normal_concat"),
    (V2_TEXT.replace("reduce_concat=[2, 3, 4, 5]", "reduce_concat=['2', '3', '4', '5']"), "reduce_concat"),
]


@pytest.mark.parametrize("bad,msg", BAD)
def test_malformed_strings_raise_one_line_user_error(bad, msg):
    with pytest.raises(UserError) as e:
        DartsSpace().from_string(bad)
    assert msg in str(e.value) and "\n" not in str(e.value)


def test_bad_cells_and_graphs_raise_user_error():
    with pytest.raises(UserError, match="8 .op, input. pairs"):
        cell_to_arch(DARTS_V2.normal[:6])
    with pytest.raises(UserError, match="11 nodes"):
        arch_to_cell(DartsSpace().genotype_to_arch(DARTS_V2))
    with pytest.raises(UserError, match="22 nodes"):
        DartsSpace().arch_to_genotype(cell_to_arch(DARTS_V2.normal))
