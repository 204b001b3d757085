"""Property-based tests (hypothesis): whatever a user types or supplies -- seeds, budgets,
``--param`` / ``--hparam`` pairs, numeric options, architecture strings, genotypes, NAS-Bench-101
specs, benchmark tables -- the result is either success (with the documented invariants) or a
:class:`~nascore.errors.UserError` whose message is one line. Never another exception.

Generators mix free text with near-valid input (valid values edited, numbers at and beyond
their bounds, ``nan``/``inf``, huge integers), so both the parsers' front doors and their deeper
checks are reached. Kept fast: about 100-150 examples a property, no deadline.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ecgnas.spaces  # noqa: F401  (registers the ECG spaces)
from nascore.cliutil import build_parser, check_options, parse_key_values, parse_seeds
from nascore.errors import UserError
from nascore.validate import MAX_BUDGET_SECONDS, MAX_QUERIES, MAX_SEED, MAX_SEEDS, check_typed, parse_budget

#: generated tables and exports are written here, one file rewritten per example
SCRATCH = Path(tempfile.mkdtemp(prefix="nascore-properties-"))
#: examples per property (``NASCORE_PROPERTY_EXAMPLES=2000`` for a longer hunt)
EXAMPLES = int(os.environ.get("NASCORE_PROPERTY_EXAMPLES", "150"))
FAST = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(max_examples=max(1, EXAMPLES // 2), deadline=None, suppress_health_check=[HealthCheck.too_slow])


def outcome(fn, *args, **kwargs):
    """``(True, value)`` on success, ``(False, message)`` for a one-line UserError; any other
    exception propagates and fails the property."""
    try:
        return True, fn(*args, **kwargs)
    except UserError as e:
        msg = str(e)
        assert msg and len(msg.splitlines()) == 1 and "\n" not in msg, f"not one line: {msg!r}"
        return False, msg


# --- building blocks ------------------------------------------------------------------------------
NUMBER_TEXT = st.one_of(
    st.integers(-10**25, 10**25).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["nan", "NaN", "inf", "-inf", "Infinity", "1e999", "-1e999", "1e308", "0", "-0", "0.0", "1_000",
                     "0x10", "1e-400", "9" * 30, " 7 ", "", "١٢", "²"]),
)
JUNK = st.text(max_size=30)
JSON_LEAF = st.one_of(st.none(), st.booleans(), st.integers(-10**30, 10**30),
                      st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12))
JSON_VALUE = st.recursive(JSON_LEAF, lambda kids: st.one_of(st.lists(kids, max_size=4),
                                                           st.dictionaries(st.text(max_size=6), kids, max_size=4)),
                          max_leaves=10)


def edited(valid: st.SearchStrategy) -> st.SearchStrategy:
    """A valid string with up to three characters deleted, replaced or inserted."""

    @st.composite
    def _edit(draw):
        text = draw(valid)
        for _ in range(draw(st.integers(0, 3))):
            pos = draw(st.integers(0, len(text)))
            kind = draw(st.sampled_from(["del", "ins", "rep"]))
            ch = draw(st.sampled_from(list("|+~,=:()[]'\"0123456789 xe-_.") + ["conv", "none", "\n", "²"]))
            if kind == "del":
                text = text[:pos] + text[pos + 1:]
            elif kind == "ins":
                text = text[:pos] + ch + text[pos:]
            else:
                text = text[:pos] + ch + text[pos + 1:]
        return text

    return _edit()


WEIRD_NUMBERS = ["²", "٣", "9" * 5000, "9" * 40, "-1", "0", "00", "1e3", "", " 1", "0x1", "1.0", "nan", "½"]


def renumbered(valid: st.SearchStrategy) -> st.SearchStrategy:
    """A valid string with one of its numbers replaced by an odd one (a unicode digit, 5,000
    digits, a sign, nothing)."""
    import re

    @st.composite
    def _renumber(draw):
        text = draw(valid)
        spans = [m.span() for m in re.finditer(r"[0-9]+(?:\.[0-9]+)?", text)]
        if not spans:
            return text
        a, b = draw(st.sampled_from(spans))
        return text[:a] + draw(st.sampled_from(WEIRD_NUMBERS)) + text[b:]

    return _renumber()


def near(valid: list[str]) -> st.SearchStrategy:
    """Valid strings, edited ones, renumbered ones and free text."""
    base = st.sampled_from(valid)
    return st.one_of(base, edited(base), renumbered(base), JUNK)


def samples_of(space_name: str, n: int = 20, **kwargs) -> list[str]:
    from nascore.spaces import get_space

    space = get_space(space_name, **kwargs)
    rng = np.random.default_rng(0)
    return [space.to_string(space.sample(rng)) for _ in range(n)]


# --- seeds and budgets --------------------------------------------------------------------------------
SEEDS_TEXT = st.one_of(
    JUNK,
    st.lists(st.one_of(NUMBER_TEXT, st.tuples(NUMBER_TEXT, NUMBER_TEXT).map("-".join)), min_size=1,
             max_size=4).map(",".join),
    st.tuples(st.integers(0, 10**12), st.integers(0, 10**12)).map(lambda t: f"{t[0]}-{t[0] + t[1]}"),
)


@FAST
@given(SEEDS_TEXT)
def test_seeds(text):
    ok, seeds = outcome(parse_seeds, text)
    if ok:
        assert seeds == sorted(set(seeds)) and 0 < len(seeds) <= MAX_SEEDS
        assert all(isinstance(s, int) and 0 <= s <= MAX_SEED for s in seeds)


BUDGET_TEXT = st.one_of(JUNK, st.tuples(NUMBER_TEXT, st.sampled_from(["", "s", "m", "h", " s", "H", "d", "ms"])).map(
    "".join))


@FAST
@given(BUDGET_TEXT)
def test_budget(text):
    ok, b = outcome(parse_budget, text)
    if ok:
        assert (b.queries is None) != (b.seconds is None)
        if b.queries is not None:
            assert isinstance(b.queries, int) and 1 <= b.queries <= MAX_QUERIES
        else:
            assert math.isfinite(b.seconds) and 0 < b.seconds <= MAX_BUDGET_SECONDS


# --- key=value pairs and strategy parameters ---------------------------------------------------------------
ITEM = st.one_of(JUNK, st.tuples(st.text(max_size=8), st.one_of(NUMBER_TEXT, JUNK, JSON_VALUE.map(repr))).map(
    lambda kv: f"{kv[0]}={kv[1]}"))


@FAST
@given(st.lists(ITEM, max_size=5))
def test_key_values(items):
    ok, kv = outcome(parse_key_values, items, "--param")
    if ok:
        assert len(kv) == len(items) and all(k == k.strip() and k for k in kv)
        assert all(not (isinstance(v, float) and not math.isfinite(v)) for v in kv.values())
    ok2, hp = outcome(__import__("ecgnas.commands.train", fromlist=["parse_hparams"]).parse_hparams, items)
    assert ok2 == ok and (not ok or hp == kv)


STRATEGY_PARAMS = {
    "random": [],
    "evolution": ["population", "sample_size", "max_mutation_tries"],
    "dcl-enas": ["n_init", "n_infill", "t_gap", "population", "offspring", "crossover_prob", "tournament", "budget",
                 "pretrain", "predictor", "encoder_init", "pretrain_seed", "population_mode"],
    "arch2vec-bo": ["model", "init", "batch", "epochs", "hidden", "xi"],
    "arch2vec-rl": ["model", "episode", "sigma", "lr", "hidden", "baseline", "baseline_decay", "normalize",
                    "reward_scale"],
}


@st.composite
def strategy_call(draw):
    name = draw(st.sampled_from(sorted(STRATEGY_PARAMS)))
    keys = draw(st.lists(st.one_of(st.sampled_from(STRATEGY_PARAMS[name] or ["x"]), st.text(max_size=6)),
                         max_size=3, unique=True))
    near = st.one_of(JSON_VALUE, st.integers(-3, 12), st.floats(-1, 2), st.sampled_from([0.5, 1.0, 5.0, 1e9, -0.0]))
    return name, {k: draw(near) for k in keys}


@FAST
@given(strategy_call())
def test_strategy_params(call):
    import typing

    from nascore.strategies import strategy_class, strategy_params

    name, params = call
    ok, checked = outcome(strategy_params, name, params)
    if ok:
        hints = typing.get_type_hints(strategy_class(name).__init__)
        for k, v in checked.items():
            opts = typing.get_args(hints[k]) or (hints[k],)
            assert v is None or isinstance(v, opts), (k, v, opts)
            assert not (isinstance(v, float) and not math.isfinite(v))


@FEW
@given(st.dictionaries(st.sampled_from(["population", "sample_size", "max_mutation_tries", "bogus"]),
                       st.one_of(st.integers(-2, 40), JSON_LEAF), max_size=3))
def test_evolution_is_built_or_refused(params):
    from nascore.spaces.nb201 import NB201Space
    from nascore.strategies import get_strategy

    ok, s = outcome(get_strategy, "evolution", NB201Space(), seed=0, **params)
    if ok:
        assert 1 <= s.sample_size <= s.population_size and len(s.ask(3)) == 3


PREDICTOR_KEYS = ["hidden", "layers", "temperature", "views", "rank_loss", "threads", "pretrain_lr", "supcon_bins",
                  "path_metric", "refit", "margin", "contrastive_warmup", "bogus"]


@FAST
@given(st.dictionaries(st.sampled_from(PREDICTOR_KEYS), st.one_of(JSON_VALUE, st.integers(-2, 70)), max_size=3))
def test_dcl_predictor_config(d):
    from nascore.predictors.dcl import DCLConfig

    ok, cfg = outcome(DCLConfig.from_dict, d)
    if ok:
        assert isinstance(cfg.hidden, int) and cfg.hidden >= 1 and isinstance(cfg.views, tuple)
        assert cfg.temperature > 0 and math.isfinite(cfg.temperature)


# --- numeric command-line options -----------------------------------------------------------------
def _cases():
    from ecgnas.commands.baseline import BASELINE_BOUNDS
    from ecgnas.commands.search import SEARCH_BOUNDS as ECG_SEARCH
    from ecgnas.commands.train import TRAIN_BOUNDS
    from nascore.commands.arch2vec import PRETRAIN_BOUNDS
    from nascore.commands.darts import SEARCH_BOUNDS, TRAIN_BOUNDS as DARTS_TRAIN
    from nascore.commands.egnas import ES_BOUNDS

    flags = {"C": "--init-channels", "K": "--partial-channels", "ema": "--ema", "drop_path": "--drop-path"}
    table = [
        ("nascore", ["darts", "search"], SEARCH_BOUNDS),
        ("nascore", ["darts", "train", "--genotype", "x"], DARTS_TRAIN),
        ("nascore", ["egnas", "search"], {**SEARCH_BOUNDS, **ES_BOUNDS}),
        ("nascore", ["arch2vec", "pretrain"], PRETRAIN_BOUNDS),
        ("ecgnas", ["train", "--model", "resnet", "--output", "o"], TRAIN_BOUNDS),
        ("ecgnas", ["search", "--method", "random", "--output", "o"], ECG_SEARCH),
        ("ecgnas", ["baseline", "random-search", "--trials", "2", "--output", "o"], BASELINE_BOUNDS),
    ]
    return [(prog, argv, flags.get(k, "--" + k.replace("_", "-")), k, b, bounds)
            for prog, argv, bounds in table for k, b in bounds.items()]


CASES = _cases()
_PARSERS: dict = {}


def parser(prog: str):
    if prog not in _PARSERS:
        from ecgnas.cli import COMMAND_MODULES as ECG
        from nascore.cli import COMMAND_MODULES as CORE

        _PARSERS[prog] = build_parser(prog, "", CORE if prog == "nascore" else ECG)
    return _PARSERS[prog]


@FAST
@given(st.sampled_from(CASES), NUMBER_TEXT)
def test_numeric_options(case, value):
    prog, argv, flag, name, bounds, all_bounds = case
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            args = parser(prog).parse_args(argv + [f"{flag}={value}"])
    except SystemExit as e:  # argparse's own refusal (not a number at all): one line, exit 2
        assert e.code == 2 and len(err.getvalue().strip().splitlines()) == 1
        return
    ok, _ = outcome(check_options, args, all_bounds)
    if ok:
        v = getattr(args, name)
        assert v is None or (math.isfinite(v) and bounds.contains(v))


@FAST
@given(st.one_of(JSON_VALUE, st.integers(), st.floats()),
       st.sampled_from([int, float, bool, str, dict, tuple, int | None, str | float, float | None]))
def test_check_typed(value, annotation):
    from nascore.validate import integer

    ok, v = outcome(check_typed, "p", value, annotation, integer(-5, 5) if annotation in (int, int | None) else None)
    if ok and isinstance(v, float):
        assert math.isfinite(v)


# --- architecture strings, genotypes, NAS-Bench-101 specs ------------------------------------------------------
def roundtrip(space, text):
    """Parsed, or refused in one line; a parsed string's canonical form parses to itself."""
    ok, arch = outcome(space.from_string, text)
    if ok:
        again = space.to_string(arch)
        assert space.to_string(space.from_string(again)) == again


NB201_TOKENS = st.sampled_from(["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3", "conv", ""])


@st.composite
def nb201_like(draw):
    groups = []
    for t in range(draw(st.integers(1, 4))):
        parts = [f"{draw(NB201_TOKENS)}~{draw(st.sampled_from(['0', '1', '2', '3', '', 'x', '00']))}"
                 for _ in range(draw(st.integers(0, 4)))]
        groups.append("|" + "|".join(parts) + "|")
    return "+".join(groups)


@FAST
@given(st.one_of(nb201_like(), near(samples_of("nb201"))))
def test_nb201_strings(text):
    from nascore.spaces.nb201 import NB201Space

    roundtrip(NB201Space(), text)


NB101_OPS = st.sampled_from(["conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3", "input", "output", "", "conv"])


@st.composite
def nb101_like(draw):
    ops = ",".join(draw(st.lists(NB101_OPS, max_size=7)))
    bits = "".join(draw(st.lists(st.sampled_from("01"), max_size=30)))
    return f"ops={ops}|adj={bits}"


@FAST
@given(st.one_of(nb101_like(), near(samples_of("nb101"))))
def test_nb101_strings(text):
    from nascore.spaces.nb101 import NB101Space, canonicalize_strings

    space = NB101Space()
    roundtrip(space, text)
    ok, canon = outcome(canonicalize_strings, [text])
    if ok:
        assert canon == [space.to_string(space.from_string(text))]


MATRIX = st.lists(st.lists(st.one_of(st.integers(-1, 2), st.floats(0, 1), st.booleans()), min_size=0, max_size=8),
                  min_size=0, max_size=8)


@FEW
@given(MATRIX, st.lists(NB101_OPS, max_size=8),
       st.dictionaries(st.sampled_from(["valid_acc_108", "test_acc_108", "train_seconds_108", "params_m", "x"]),
                       st.one_of(st.floats(-10, 200), st.floats(allow_nan=True, allow_infinity=True), JSON_LEAF),
                       max_size=4))
def test_nb101_export_rows(matrix, ops, metrics):
    from nascore.benchmarks.nb101 import NB101Table, export_rows

    ok, text = outcome(export_rows, [(matrix, ops, metrics)])
    if ok:
        path = SCRATCH / "export" / "nb101-cifar10.csv"
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
        ok2, table = outcome(NB101Table.read_csv, path)  # what export writes, the loader reads (or
        if ok2:                                            # refuses as a whole-column matter: fractions)
            assert len(table) == 1


DARTS_OPS = st.sampled_from(["sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5", "max_pool_3x3",
                             "avg_pool_3x3", "skip_connect", "none", "conv"])
PAIR = st.tuples(DARTS_OPS, st.one_of(st.integers(-2, 6), st.just(True), st.floats(0, 2), st.just(10**40)))


@st.composite
def genotype_like(draw):
    def cell():
        return repr(draw(st.lists(PAIR, min_size=6, max_size=9)))

    def concat():
        return draw(st.sampled_from(["[2, 3, 4, 5]", "range(2, 6)", "[2, 3]", "range(10**9)", "[2, 3, 4, 5, 5]",
                                     "range(2, 6, 1)", "()", "x"]))

    fields = [f"normal={cell()}", f"normal_concat={concat()}", f"reduce={cell()}", f"reduce_concat={concat()}"]
    if draw(st.booleans()):
        fields = fields[:draw(st.integers(0, 4))] + [draw(st.sampled_from(["extra=1", "normal=[]", "*a", "**k"]))]
    return f"{draw(st.sampled_from(['Genotype', 'genotype', 'G', '']))}({', '.join(fields)})"


@FAST
@given(st.one_of(genotype_like(), near(samples_of("darts", 5))))
def test_darts_genotypes(text):
    from nascore.spaces.darts import DartsSpace, genotype_to_string, parse_genotype

    ok, g = outcome(parse_genotype, text)
    if ok:
        assert parse_genotype(genotype_to_string(g)) is not None
        roundtrip(DartsSpace(), text)


@FEW
@given(near(samples_of("ecg-cell")))
def test_ecg_cell_strings(text):
    from nascore.spaces import get_space

    roundtrip(get_space("ecg-cell"), text)


@FEW
@given(near(["depth=2,width=8,kernel_size=3,dropout=0.1,use_rr=0,lr=0.001,weight_decay=0.0001,window=0.3:0.6,"
             "imbalance=sqrt_balanced"]))
def test_hand_designed_strings(text):
    from ecgnas.spaces.handdesigned import HandDesignedSpace

    roundtrip(HandDesignedSpace(), text)


# --- benchmark tables -------------------------------------------------------------------------------------
CELL = st.one_of(st.floats(-5, 120), st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**20, 10**20),
                 st.sampled_from(["", "nan", "NA", "inf", "-inf", "abc", "1e999", " 5 ", "0.5"]), st.text(max_size=5))
NB201_ARCHS = samples_of("nb201", 8)


@st.composite
def nb201_csv(draw):
    from nascore.benchmarks.nb201 import OPTIONAL, REQUIRED

    cols = draw(st.lists(st.sampled_from(list(REQUIRED + OPTIONAL) + ["junk"]), min_size=1, max_size=6, unique=True))
    if draw(st.booleans()):  # mostly well-formed: the required columns and a signal are there
        cols = list(dict.fromkeys(list(REQUIRED) + ["valid_acc_200"] + cols))
    rows = []
    for k in range(draw(st.integers(0, 4))):
        row = []
        for c in cols:
            if c == "arch":
                row.append(draw(near(NB201_ARCHS)))
            elif c == "index":
                row.append(k)
            else:
                row.append(draw(st.one_of(st.floats(1.5, 99), CELL)))
        rows.append(row)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(cols)
    w.writerows(rows)
    text = buf.getvalue()
    if draw(st.integers(0, 9)) == 0:  # now and then a damaged file
        cut = draw(st.integers(0, len(text)))
        text = text[:cut] + draw(st.sampled_from(['"', ",,", "\n", "\x00", "\ufeff"])) + text[cut:]
    return text


@FAST
@given(nb201_csv())
def test_nb201_table_loader(text):
    from nascore.benchmarks.nb201 import NB201Table

    path = SCRATCH / "nb201-cifar10.csv"
    path.write_text(text, encoding="utf-8")
    ok, table = outcome(NB201Table.read_csv, path)
    if ok:
        assert len(table) > 0
        for col, values in table._cols.items():
            assert np.isfinite(values).all(), col
        opt = table.optimum()
        assert all(math.isfinite(opt[k]) for k in ("valid_accuracy", "test_accuracy", "best_test_accuracy"))
        q = table.query(opt["arch"])
        assert math.isfinite(q["valid_accuracy"]) and math.isfinite(q["test_accuracy"])


NB101_ARCHS = samples_of("nb101", 8)


@st.composite
def nb101_csv(draw):
    from nascore.benchmarks.nb101 import OPTIONAL, REQUIRED

    cols = list(dict.fromkeys(list(REQUIRED) + draw(st.lists(st.sampled_from(list(OPTIONAL)), max_size=3))))
    if draw(st.integers(0, 4)) == 0:
        cols = draw(st.permutations(cols))[: draw(st.integers(1, len(cols)))]
    rows = []
    archs = draw(st.lists(near(NB101_ARCHS), max_size=4))
    for a in archs:
        rows.append([a if c == "arch" else draw(st.one_of(st.floats(1.5, 99), CELL)) for c in cols])
    buf = io.StringIO()
    csv.writer(buf).writerows([cols] + rows)
    return buf.getvalue()


@FAST
@given(nb101_csv())
def test_nb101_table_loader(text):
    from nascore.benchmarks.nb101 import NB101Table

    path = SCRATCH / "nb101-cifar10.csv"
    path.write_text(text, encoding="utf-8")
    ok, table = outcome(NB101Table.read_csv, path)
    if ok:
        for col in ("valid_acc_108", "test_acc_108"):
            assert np.isfinite(table._cols[col]).all()
        for col, values in table._cols.items():
            assert not np.isinf(values).any(), col
        opt = table.optimum()
        assert math.isfinite(opt["valid_accuracy"]) and math.isfinite(opt["test_accuracy"])
        cost = table.cost(0, 108)
        assert cost is None or (math.isfinite(cost) and cost >= 0)


@pytest.fixture(autouse=True, scope="module")
def _scratch_and_private_cache():
    """One scratch folder for the generated files (rewritten by every example), and the user
    cache kept out of reach (NB-101 canonical forms may cache an enumeration)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("XDG_CACHE_HOME", str(SCRATCH / "cache"))
    yield
    mp.undo()
    shutil.rmtree(SCRATCH, ignore_errors=True)


# --- strict JSON writers -------------------------------------------------------------------------------------
@FEW
@given(st.recursive(st.one_of(JSON_LEAF, st.floats(width=32, allow_nan=True, allow_infinity=True).map(np.float32),
                              st.integers(-5, 5).map(np.int64)),
                    lambda kids: st.one_of(st.lists(kids, max_size=4), st.dictionaries(st.text(max_size=5), kids,
                                                                                      max_size=4)),
                    max_leaves=12))
def test_json_writers_write_strict_json_or_refuse_in_one_line(obj):
    import json

    from nascore.io import append_jsonl, atomic_write_json
    from nascore.jsonsafe import find_nonfinite

    path = SCRATCH / "out.json"
    path.unlink(missing_ok=True)
    ok, _ = outcome(atomic_write_json, path, obj)
    assert ok == (find_nonfinite(obj, lambda o: o.item()) is None)
    if ok:  # strict readers accept it: no NaN / Infinity tokens
        json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"{c} written"))
    else:
        assert not path.exists()
    ok2, _ = outcome(append_jsonl, SCRATCH / "out.jsonl", [{"v": obj}])
    assert ok2 == ok
