"""NAS-Bench-101 space (nascore.spaces.nb101) and its table backend (nascore.benchmarks.nb101)."""

import itertools

import numpy as np
import pandas as pd
import pytest

from nascore.arch import Arch
from nascore.benchmarks.nb101 import FILENAME, NB101Table, export_rows
from nascore.errors import DataMissingError, UserError
from nascore.spaces import get_space
from nascore.spaces import nb101
from nascore.spaces.nb101 import (COUNTS_BY_NODES, NB101_SIZE, OPS, NB101Space, canonical_codes,
                                  canonicalize_strings, enumerate_cells, pruned_shapes)

C1, C3, MP = "conv1x1-bn-relu", "conv3x3-bn-relu", "maxpool3x3"


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """Keep the enumeration cache of these tests out of the user's cache folder."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def random_topological_relabel(arch: Arch, rng) -> Arch:
    """``arch`` with its interior nodes in a random (still topological) order."""
    n, adj = arch.n_nodes, arch.adjacency
    order, left = [0], set(range(1, n - 1))
    while left:
        ready = sorted(v for v in left if all(adj[u, v] == 0 or u in order for u in range(n)))
        v = ready[int(rng.integers(len(ready)))]
        order.append(v)
        left.remove(v)
    return arch.permute(order + [n - 1])


def cell(n, edges, interior):
    return Arch.from_edges(n, edges, ["input", *interior, "output"])


# --- identity -----------------------------------------------------------------------------------
def test_canonical_string_is_invariant_under_relabelling():
    s = NB101Space(sampler="uniform")
    rng = np.random.default_rng(1)
    changed = 0
    for _ in range(200):
        a = s.sample(rng)
        key = s.to_string(a)
        for _ in range(3):
            b = random_topological_relabel(a, rng)
            changed += b != a
            assert s.to_string(b) == key and s.canonical(b) == a
    assert changed > 100  # the relabellings really moved nodes


def test_known_canonical_form_and_roundtrip():
    s = NB101Space()
    a = s.from_string("ops=maxpool3x3,conv3x3-bn-relu|adj=110011")
    assert a.ops == ("input", C3, MP, "output") and a.n_edges == 4
    assert s.to_string(a) == "ops=conv3x3-bn-relu,maxpool3x3|adj=110011"
    # not isomorphic (different op on the node fed by the input only): different strings
    b = cell(4, [(0, 1), (1, 2), (2, 3)], [C3, MP])
    c = cell(4, [(0, 1), (1, 2), (2, 3)], [MP, C3])
    assert s.to_string(b) != s.to_string(c)
    rng = np.random.default_rng(0)
    for _ in range(100):
        x = s.sample(rng)
        assert s.from_string(s.to_string(x)) == x


def test_pruning_examples():
    s = NB101Space()
    # node 2 is a dead end (no way to the output), node 3 is unreachable from the input
    a = cell(5, [(0, 1), (1, 4), (0, 2), (3, 4)], [C3, MP, C1])
    p = s.canonical(a)
    assert p.n_nodes == 3 and p.ops == ("input", C3, "output") and p.edges == [(0, 1), (1, 2)]
    assert s.to_string(a) == "ops=conv3x3-bn-relu|adj=101"
    # a dead node may even carry the edges that would break the limit: 11 raw edges, 9 after pruning
    edges = [(0, 1), (1, 2), (2, 3), (3, 4), (4, 6), (0, 2), (0, 3), (0, 4), (0, 6), (0, 5), (1, 5)]
    big = cell(7, edges, [C3] * 5)
    assert big.n_edges == 11 and s.is_valid(big)
    assert s.canonical(big).n_nodes == 6 and s.canonical(big).n_edges == 9


def test_validity_rules():
    s = NB101Space()
    chain = [(k, k + 1) for k in range(6)]
    nine = cell(7, chain + [(0, 2), (0, 3), (0, 4)], [C3] * 5)
    ten = cell(7, chain + [(0, 2), (0, 3), (0, 4), (0, 5)], [C3] * 5)
    assert s.is_valid(nine) and not s.is_valid(ten)
    with pytest.raises(UserError, match="10 edges"):
        s.to_string(ten)
    disconnected = cell(4, [(0, 1), (2, 3)], [C1, C1])
    assert not s.is_valid(disconnected)
    with pytest.raises(UserError, match="disconnected"):
        s.validate(disconnected)
    assert not s.is_valid(cell(3, [(0, 1), (1, 2)], ["conv5x5"]))
    assert not s.is_valid(Arch.from_edges(3, [(0, 1), (1, 2)], ["output", C1, "input"]))
    assert not s.is_valid(cell(8, [(k, k + 1) for k in range(7)], [C1] * 6))
    assert s.is_valid(cell(2, [(0, 1)], [])) and not s.is_valid(cell(2, [], []))


@pytest.mark.parametrize("text, fragment", [
    ("", "malformed"),
    ("ops=conv3x3-bn-relu", "malformed"),
    ("adj=1|ops=", "malformed"),
    ("ops=conv5x5|adj=111", "'conv5x5'"),
    ("ops=conv3x3-bn-relu|adj=11", "3 characters"),
    ("ops=conv3x3-bn-relu|adj=1x1", "'1x1'"),
    ("ops=|adj=0", "disconnected"),
    ("ops=" + ",".join([C1] * 6) + "|adj=" + "1" * 28, "8 nodes"),
    ("ops=" + ",".join([C1] * 5) + "|adj=" + "1" * 21, "21 edges"),
    ("ops=conv1x1-bn-relu|adj=111|adj=111", "malformed"),
])
def test_from_string_errors_name_the_value(text, fragment):
    with pytest.raises(UserError, match=fragment) as e:
        NB101Space().from_string(text)
    assert "\n" not in str(e.value) and repr(text) in str(e.value)


# --- search operators ---------------------------------------------------------------------------
def test_sample_mutate_crossover_are_valid_and_canonical():
    s = NB101Space()
    rng = np.random.default_rng(7)
    sizes = set()
    for _ in range(150):
        a = s.sample(rng)
        b = s.mutate(a, rng)
        c = s.crossover(a, b, rng)
        for x in (a, b, c):
            assert s.is_valid(x) and s.canonical(x) == x
        assert s.to_string(b) != s.to_string(a)
        sizes.add(a.n_nodes)
    assert sizes >= {3, 4, 5, 6}
    smallest = s.from_string("ops=|adj=1")
    assert s.mutate(smallest, rng) != smallest
    # the official sampler is deterministic given the seed
    assert [s.sample(np.random.default_rng(3)) for _ in range(2)] == [s.sample(np.random.default_rng(3))] * 2


def test_official_sampler_matches_the_raw_matrix_counts():
    """The official sampler draws pruned sizes in proportion to the valid raw 7x7 matrices
    (ops do not affect validity); compare 2,000 draws with the exact proportions."""
    stats = {}
    pruned_shapes(stats=stats, workers=1)
    by_n = stats["raw_valid_by_nodes"]
    total = sum(by_n.values())
    assert total == stats["raw_valid_edge_limit_after_pruning"]
    s = NB101Space()
    rng = np.random.default_rng(11)
    draws = np.bincount([s.sample(rng).n_nodes for _ in range(2000)], minlength=8)
    for n, count in by_n.items():
        p = count / total
        assert abs(draws[n] / 2000 - p) < 4 * np.sqrt(p * (1 - p) / 2000) + 1e-3, (n, draws[n], p)


def test_strategy_never_repeats_on_nb101():
    from nascore.evaluation import Result
    from nascore.strategies import get_strategy

    space = get_space("nb101")
    strat = get_strategy("evolution", space, seed=0, population=5, sample_size=2)
    seen = set()
    for step in range(40):
        [a] = strat.ask(1)
        key = space.to_string(a)
        assert key not in seen and space.is_valid(a)
        seen.add(key)
        strat.tell([a], [Result(score=float(a.n_edges + step % 3))])


# --- encodings ----------------------------------------------------------------------------------
def test_graph_and_vector_encodings_are_padded():
    s = get_space("nb101")
    a = s.from_string("ops=conv3x3-bn-relu,maxpool3x3|adj=110011")
    g = s.to_graph(a)
    assert tuple(g.x.shape) == (4, 5) and tuple(g.edge_index.shape) == (2, 4) and g.num_nodes == 4
    assert tuple(g.adj.shape) == (1, 7, 7) and g.adj[0, :4, :4].sum() == 4 and g.adj[0, 4:].sum() == 0
    assert g.x[:, 0].tolist() == [1, 0, 0, 0] and g.x[:, 4].tolist() == [0, 0, 0, 1]
    assert g.x[1].argmax() == s.node_labels.index(C3) and g.x[2].argmax() == s.node_labels.index(MP)
    v = s.to_vector(a)
    assert v.shape == (21 + 7 * 5,) and v[:21].sum() == 4 and v[21:].sum() == 4


# --- enumeration --------------------------------------------------------------------------------
def _brute_force_strings(max_nodes):
    """Independent oracle: every full DAG (each node on an input->output path) with <= 9 edges,
    every labelling, canonical form by trying all interior permutations in plain Python."""
    out = set()
    for n in range(2, max_nodes + 1):
        pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
        perms = [(0, *q, n - 1) for q in itertools.permutations(range(1, n - 1))]
        for mask in range(1 << len(pairs)):
            edges = {p for k, p in enumerate(pairs) if mask >> (len(pairs) - 1 - k) & 1}
            if len(edges) > 9:
                continue
            if any(not any((i, j) in edges for j in range(i + 1, n)) for i in range(n - 1)):
                continue
            if any(not any((i, j) in edges for i in range(j)) for j in range(1, n)):
                continue
            for labels in itertools.product(range(3), repeat=n - 2):
                best = None
                for order in perms:
                    inv = {old: new for new, old in enumerate(order)}
                    if any(inv[i] > inv[j] for i, j in edges):
                        continue
                    new_edges = {(inv[i], inv[j]) for i, j in edges}
                    key = ("".join("1" if p in new_edges else "0" for p in pairs),
                           tuple(labels[order[a] - 1] for a in range(1, n - 1)))
                    best = key if best is None or key < best else best
                out.add(f"ops={','.join(OPS[d] for d in best[1])}|adj={best[0]}")
    return out


def test_small_enumeration_matches_brute_force_and_pinned_counts():
    cells = enumerate_cells(max_nodes=5, cache=False)
    assert cells.counts_by_nodes() == {n: COUNTS_BY_NODES[n] for n in range(2, 6)}
    assert set(cells.strings()) == _brute_force_strings(5)
    assert len(set(cells.strings())) == len(cells) == 2532


def test_orbit_labelling_agrees_with_generic_canonical_form():
    shapes = pruned_shapes(6)
    cells = enumerate_cells(max_nodes=6, cache=False)
    for n in range(2, 7):
        K = 3 ** (n - 2)
        b, c = np.repeat(shapes[n], K), np.tile(np.arange(K), len(shapes[n]))
        cb, cc = canonical_codes(n, b, c)
        sel = cells.n_nodes == n
        assert np.array_equal(np.unique(cb * K + cc), np.sort(cells.adj_bits[sel].astype(np.int64) * K + cells.op_codes[sel]))


def test_full_enumeration_and_cache(tmp_path):
    cells = enumerate_cells()  # about a second; written to the (private) cache
    assert len(cells) == NB101_SIZE == sum(COUNTS_BY_NODES.values())
    assert cells.counts_by_nodes() == COUNTS_BY_NODES
    path = nb101._cache_file(7, 9)
    assert path.exists()
    again = enumerate_cells()
    assert np.array_equal(again.adj_bits, cells.adj_bits) and np.array_equal(again.op_codes, cells.op_codes)
    # a corrupted cache is recomputed, not trusted
    path.write_bytes(b"not an npz")
    assert len(enumerate_cells()) == NB101_SIZE
    s = NB101Space()
    rng = np.random.default_rng(5)
    for i in rng.choice(len(cells), 50, replace=False):
        a = cells.arch(int(i))
        assert s.is_valid(a) and s.to_string(a) == cells.string(int(i))
    first = next(iter(s.enumerate()))
    assert s.to_string(first) == "ops=|adj=1" and s.size == NB101_SIZE


def test_enumeration_argument_errors():
    with pytest.raises(UserError, match="max_nodes"):
        enumerate_cells(max_nodes=8)
    with pytest.raises(UserError, match="max_edges"):
        enumerate_cells(max_nodes=4, max_edges=0)


# --- table backend ------------------------------------------------------------------------------
@pytest.fixture
def synthetic_table(tmp_path):
    """All 91 cells of <= 4 nodes, written in random node orders (some with a dead node);
    valid = 80 + 2 * #conv3x3 + (#edges) / 10, test = valid - 1, seconds = 100 * #nodes."""
    s = NB101Space()
    rng = np.random.default_rng(3)
    rows, truth = [], {}
    for a in enumerate_cells(max_nodes=4, cache=False).strings():
        arch = s.from_string(a)
        valid = 80 + 2 * arch.ops.count(C3) + arch.n_edges / 10
        truth[a] = valid
        written = random_topological_relabel(arch, rng)
        if written.n_nodes <= 4 and rng.random() < 0.5:  # add a dead node fed by the input
            m = np.zeros((written.n_nodes + 1,) * 2, int)
            m[:-2, :-2] = written.adjacency[:-1, :-1]
            m[:-2, -1] = written.adjacency[:-1, -1]
            m[0, -2] = 1
            written = Arch.from_numpy(m, list(written.ops[:-1]) + [MP, "output"])
        n = written.n_nodes
        bits = "".join(str(written.adjacency[i, j]) for i in range(n) for j in range(i + 1, n))
        text = f"ops={','.join(written.ops[1:-1])}|adj={bits}"
        rows.append({"arch": text, "valid_acc_108": valid, "test_acc_108": valid - 1,
                     "train_seconds_108": 100.0 * arch.n_nodes, "params_m": 0.5})
    path = tmp_path / "nasbench101" / FILENAME
    path.parent.mkdir()
    pd.DataFrame(rows).to_csv(path, index=False)
    return path, truth


def test_table_lookup_canonicalises(synthetic_table, monkeypatch):
    path, truth = synthetic_table
    raw = pd.read_csv(path)["arch"].tolist()
    assert sum(r not in truth for r in raw) > 20  # the file really holds non-canonical strings
    monkeypatch.setenv("NASCORE_DATA", str(path.parent.parent))
    table = NB101Table.load()
    assert len(table) == 91 and table.path == path
    s = NB101Space()
    for key, valid in truth.items():
        row = table.lookup(key)
        assert row["arch"] == key and row["valid_acc_108"] == pytest.approx(valid)
        assert row["test_acc_108"] == pytest.approx(valid - 1)
    a = s.from_string("ops=maxpool3x3,conv3x3-bn-relu|adj=110011")
    q = table.query(s.to_string(a), 108)
    assert q["valid_accuracy"] == pytest.approx(truth[s.to_string(a)]) and q["cost_seconds"] == 400.0
    assert table.lookup(a) == table.lookup("ops=maxpool3x3,conv3x3-bn-relu|adj=110011")
    best = table.optimum()
    assert best["valid_accuracy"] == pytest.approx(max(truth.values()))
    assert best["arch"] == max(truth, key=truth.get)
    assert table.cost_column_available(108) and not table.cost_column_available(12)
    with pytest.raises(UserError, match="fidelity"):
        table.signal_column(36)
    with pytest.raises(UserError, match="not in"):
        table.lookup("ops=conv1x1-bn-relu,conv1x1-bn-relu,conv1x1-bn-relu|adj=1110110011")


def test_table_with_tabular_evaluator(synthetic_table):
    from nascore.evaluation import TabularEvaluator

    path, truth = synthetic_table
    space = get_space("nb101")
    ev = TabularEvaluator(space, NB101Table.read_csv(path))
    key = next(iter(truth))
    r = ev(space.from_string(key))
    assert r.score == pytest.approx(truth[key]) and r.metrics["test_accuracy"] == pytest.approx(truth[key] - 1)


def test_missing_table_says_how_to_export(tmp_path, monkeypatch):
    monkeypatch.setenv("NASCORE_DATA", str(tmp_path))
    with pytest.raises(DataMissingError) as e:
        NB101Table.load()
    msg = str(e.value)
    assert "no NAS-Bench-101 accuracy table ships" in msg and "nasbench_only108.tfrecord" in msg
    assert "export_rows" in msg and "\n" not in msg
    with pytest.raises(DataMissingError, match="nasbench_only108"):
        NB101Table.read_csv(tmp_path / "none.csv")


@pytest.mark.parametrize("content, fragment", [
    ("arch,valid_acc_108\nops=|adj=1,80\n", "missing required column.*test_acc_108"),
    ("arch,valid_acc_108,test_acc_108\n", "no rows"),
    ("arch,valid_acc_108,test_acc_108\nops=|adj=1,80,79\nops=conv5x5|adj=111,80,79\n", "line 3, column arch.*conv5x5"),
    ("arch,valid_acc_108,test_acc_108\nops=|adj=1,80,79\nops=|adj=0,80,79\n", "line 3, column arch.*disconnected"),
    ("arch,valid_acc_108,test_acc_108\nops=|adj=1,eighty,79\n", "line 2, column valid_acc_108.*'eighty'"),
    ("arch,valid_acc_108,test_acc_108\nops=|adj=1,80,\n", "line 2, column test_acc_108: empty"),
    ("arch,valid_acc_108,test_acc_108\nops=|adj=1,0.8,0.79\n", "fractions"),
    ("arch,valid_acc_108,test_acc_108\nops=|adj=1,180,79\n", "line 2, column valid_acc_108.*percentage"),
    ('arch,valid_acc_108,test_acc_108\nops=|adj=1,80,79\n"ops=maxpool3x3,conv3x3-bn-relu|adj=110011",80,79\n'
     '"ops=conv3x3-bn-relu,maxpool3x3|adj=110011",81,80\n', "lines 3 and 4, column arch: the same cell twice"),
    ("arch,valid_acc_108,test_acc_108\nops=maxpool3x3,conv3x3-bn-relu|adj=110011,80,79\n", "must be quoted"),
    ("arch,valid_acc_108,test_acc_108\nops=|adj=1,80,79\nops=maxpool3x3,conv3x3-bn-relu|adj=110011,80,79\n",
     "must be quoted"),
])
def test_malformed_tables_name_line_and_field(tmp_path, content, fragment):
    p = tmp_path / FILENAME
    p.write_text(content)
    with pytest.raises(UserError, match=fragment) as e:
        NB101Table.read_csv(p)
    assert "\n" not in str(e.value)


def test_export_rows_roundtrip_and_errors(tmp_path):
    rows = [
        ([[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]], ["input", MP, C3, "output"],
         {"valid_acc_108": 90.0, "test_acc_108": 89.0, "params_m": 1.25}),
        (np.array([[0, 1], [0, 0]]), ["input", "output"], {"valid_acc_108": 70.0, "test_acc_108": 69.0}),
    ]
    out = tmp_path / FILENAME
    text = export_rows(rows, out)
    assert out.read_text() == text and text.splitlines()[0] == "arch,valid_acc_108,test_acc_108,params_m"
    table = NB101Table.read_csv(out)
    assert table.lookup("ops=conv3x3-bn-relu,maxpool3x3|adj=110011") == {
        "arch": "ops=conv3x3-bn-relu,maxpool3x3|adj=110011", "valid_acc_108": 90.0, "test_acc_108": 89.0,
        "params_m": 1.25}
    assert "params_m" not in table.lookup("ops=|adj=1")
    with pytest.raises(UserError, match="row 0, metrics: missing 'test_acc_108'"):
        export_rows([([[0, 1], [0, 0]], ["input", "output"], {"valid_acc_108": 1.0})])
    with pytest.raises(UserError, match="row 1, matrix"):
        export_rows([rows[1], ([[0, 1], [1, 0]], ["input", "output"], rows[1][2])])
    with pytest.raises(UserError, match="row 0, ops"):
        export_rows([([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", "conv7x7", "output"], rows[1][2])])
    with pytest.raises(UserError, match="unknown column 'acc'"):
        export_rows([([[0, 1], [0, 0]], ["input", "output"], {"acc": 1.0, **rows[1][2]})])
    with pytest.raises(UserError, match="row 1: cell 'ops=|adj=1' appears twice"):
        export_rows([rows[1], rows[1]])


def test_canonicalize_strings_is_a_fixed_point_on_canonical_strings():
    strings = enumerate_cells(max_nodes=6, cache=False).strings()
    assert canonicalize_strings(strings) == strings
