"""Issue 16 (reliability): non-finite table values, unchecked strategy parameters, unbounded
numeric options. Each test fails on the code before the fix."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from nascore.benchmarks.nb101 import NB101Table, export_rows
from nascore.benchmarks.nb201 import NB201Table, export_from_nats
from nascore.cli import main as nascore_main
from nascore.cliutil import parse_key_values, parse_seeds
from nascore.errors import NonFiniteError, UserError
from nascore.io import append_jsonl, atomic_write_json, read_json
from nascore.predictors.dcl import DCLConfig
from nascore.spaces.nb201 import NB201Space
from nascore.strategies import get_strategy, strategy_params
from nascore.validate import MAX_SEEDS, parse_budget


def small_nb201(tmp_path, n=6, **cells) -> "pd.DataFrame":
    """``n`` rows of a valid nb201 table; ``cells`` = {(row, column): text} overrides."""
    space = NB201Space()
    archs = [space.to_string(a) for a, _ in zip(space.enumerate(), range(n))]
    df = pd.DataFrame({"index": range(n), "arch": archs, "valid_acc_200": [80.0 + k for k in range(n)],
                       "test_acc_200": [79.0 + k for k in range(n)], "train_seconds_200": [100.0] * n})
    return df.astype(object)


def write(df, path):
    df.to_csv(path, index=False)
    return path


def one_line(e) -> str:
    msg = str(e.value)
    assert "\n" not in msg
    return msg


# --- (3) an empty accuracy cell must not become the reported best --------------------------------------
@pytest.mark.parametrize("column,value,needle", [
    ("valid_acc_200", "", "empty"), ("valid_acc_200", "nan", "empty"), ("test_acc_200", "inf", "not a finite"),
    ("train_seconds_200", "", "empty"), ("train_seconds_200", "-5", "negative"), ("valid_acc_200", "-inf", "not a finite"),
])
def test_nb201_table_with_a_non_finite_cell_is_refused(tmp_path, column, value, needle):
    df = small_nb201(tmp_path)
    df.loc[3, column] = value
    path = write(df, tmp_path / "nb201-cifar10.csv")
    with pytest.raises(UserError) as e:
        NB201Table.read_csv(path)
    msg = one_line(e)
    assert str(path) in msg and "line 5" in msg and f"column {column}" in msg and needle in msg


def test_nb201_search_on_a_table_with_an_empty_cell_stops_before_writing(tmp_path, capsys):
    df = small_nb201(tmp_path)
    df.loc[0, "valid_acc_200"] = ""
    write(df, tmp_path / "nb201-cifar10.csv")
    rc = nascore_main(["search", "--data", str(tmp_path), "--budget", "3", "--strategy", "random", "--quiet",
                       "--output", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and "line 2, column valid_acc_200: empty" in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("arch,needle", [("", "empty"), ("|none~0|+|x~0|", "malformed"),
                                         ("|none~0|+|none~0|none~1|+|none~0|none~1|zero~2|", "outside")])
def test_nb201_table_rows_must_name_cells(tmp_path, arch, needle):
    df = small_nb201(tmp_path)
    df.loc[2, "arch"] = arch
    with pytest.raises(UserError) as e:
        NB201Table.read_csv(write(df, tmp_path / "t.csv"))
    assert "line 4, column arch" in one_line(e) and needle in str(e.value)


def test_nb101_accuracy_gaps_are_refused_duration_gaps_only_disable_seconds_budgets(tmp_path):
    rows = [([[0, 1], [0, 0]], ["input", "output"], {"valid_acc_108": 80.0, "test_acc_108": 79.0,
                                                      "train_seconds_108": 10.0}),
            ([[0, 1, 1], [0, 0, 1], [0, 0, 0]], ["input", "maxpool3x3", "output"],
             {"valid_acc_108": 85.0, "test_acc_108": 84.0})]
    path = tmp_path / "nb101-cifar10.csv"
    export_rows(rows, path)
    table = NB101Table.read_csv(path)
    assert table.has("train_seconds_108") and not table.cost_column_available(108)  # a gap: not "free"
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    df.loc[1, "valid_acc_108"] = ""
    with pytest.raises(UserError) as e:
        NB101Table.read_csv(write(df, path))
    assert "line 3, column valid_acc_108: empty" in one_line(e)
    df.loc[1, "valid_acc_108"] = "inf"
    with pytest.raises(UserError, match="not a finite number"):
        NB101Table.read_csv(write(df, path))


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "85", True, None])
def test_nb101_export_refuses_non_finite_or_non_numeric_accuracies(tmp_path, value):
    with pytest.raises(UserError, match=r"row 0, metrics: valid_acc_108="):
        export_rows([([[0, 1], [0, 0]], ["input", "output"], {"valid_acc_108": value, "test_acc_108": 79.0})],
                    tmp_path / "t.csv")
    assert not (tmp_path / "t.csv").exists()


def test_nb201_export_refuses_missing_figures_before_writing(tmp_path):
    class Api:
        """Two cells; the second has no validation accuracy."""

        def __len__(self):
            return 2

        def arch(self, i):
            return small_nb201(tmp_path, 2)["arch"][i]

        def get_more_info(self, i, dataset, hp, is_random):
            return {"valid-accuracy": None if i == 1 else 80.0, "test-accuracy": 81.0, "train-per-time": 1.0,
                    "train-all-time": 200.0}

        def get_cost_info(self, i, dataset):
            return {"params": 0.1}

    with pytest.raises(UserError, match="line 3, column valid_acc_200: empty"):
        export_from_nats(None, "cifar10", tmp_path / "nb201-cifar10.csv", progress=False, api=Api())
    assert not (tmp_path / "nb201-cifar10.csv").exists()


# --- strict JSON ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad,place", [({"best": {"score": float("nan")}}, "best.score"),
                                       ({"t": [[1, 2.0], [3, float("inf")]]}, "t[1][1]"),
                                       ({"a": np.float32("nan")}, "a"), ({"a": np.array([1.0, np.nan])}, "a[1]")])
def test_json_writers_refuse_nan_naming_file_and_place(tmp_path, bad, place):
    with pytest.raises(NonFiniteError) as e:
        atomic_write_json(tmp_path / "r.json", bad)
    assert str(tmp_path / "r.json") in one_line(e) and f"at {place}" in str(e.value)
    assert not (tmp_path / "r.json").exists()
    append_jsonl(tmp_path / "h.jsonl", [{"i": 0, "score": 1.0}])
    before = (tmp_path / "h.jsonl").read_bytes()
    with pytest.raises(NonFiniteError, match="h.jsonl"):
        append_jsonl(tmp_path / "h.jsonl", [bad])
    assert (tmp_path / "h.jsonl").read_bytes() == before


def test_json_writers_keep_none_and_finite_numpy_values(tmp_path):
    atomic_write_json(tmp_path / "r.json", {"a": None, "b": np.float64(1.5), "c": np.arange(2)})
    assert read_json(tmp_path / "r.json") == {"a": None, "b": 1.5, "c": [0, 1]}
    assert "NaN" not in (tmp_path / "r.json").read_text()


def test_ecg_evaluator_writes_undefined_statistics_as_null(monkeypatch, tmp_path):
    """A class absent from the hold-out and never predicted has an undefined F1: it is None in the
    result and the cache, never NaN (strict JSON would refuse the cache entry)."""
    from ecg_fakes import make_beats
    import ecgnas.train as T
    from ecgnas.data import DataSpec, PrepConfig, inter_patient_split
    from ecgnas.evaluator import ECGEvaluator, default_fidelity
    from ecgnas.spaces.handdesigned import HandDesignedSpace

    def loader(spec, progress=False):
        b = make_beats(window=sum(spec.prep.window_samples()), per_record=20)
        b.y[b.y == 3] = 0  # no F beat anywhere
        return b, inter_patient_split(b)

    monkeypatch.setattr(T, "predict", lambda net, beats, idx, bs: np.zeros(len(idx), np.int64))
    space = HandDesignedSpace(depth=(2,), width=(8,), kernel_size=(3,))
    ev = ECGEvaluator(space, default_fidelity(epochs=1, samples_per_epoch=64, batch_size=32),
                      spec=DataSpec(prep=PrepConfig(before_s=0.1, after_s=0.2)), latency=False, loader=loader,
                      cache_dir=tmp_path / "cache")
    res = ev(space.sample(np.random.default_rng(0)))
    assert res.metrics["val_F_f1"] is None and math.isfinite(res.score)
    [entry] = (tmp_path / "cache").glob("*.json")
    assert json.loads(entry.read_text())["result"]["metrics"]["val_F_f1"] is None


# --- (8) strategy parameters ----------------------------------------------------------------------------
@pytest.mark.parametrize("strategy,params,needle", [
    ("evolution", {"population": "abc"}, "population='abc': expected an integer in [1, 1000000]"),
    ("evolution", {"population": 5.5}, "population=5.5: expected an integer"),
    ("evolution", {"population": True}, "population=True: expected an integer"),
    ("evolution", {"population": 0}, "population=0: expected an integer in [1, 1000000]"),
    ("evolution", {"population": 10**30}, "expected an integer in [1, 1000000]"),
    ("dcl-enas", {"crossover_prob": float("nan")}, "crossover_prob=nan: expected a number in [0, 1]"),
    ("dcl-enas", {"predictor": [1]}, "predictor=[1]: expected a JSON object or null"),
    ("dcl-enas", {"pretrain": "yes"}, "pretrain='yes': expected true or false"),
    ("arch2vec-rl", {"baseline": [0.4]}, "baseline=[0.4]: expected a string or a finite number"),
    ("arch2vec-bo", {"model": 3}, "model=3: expected a string or null"),
])
def test_strategy_parameters_are_type_and_range_checked(strategy, params, needle):
    with pytest.raises(UserError) as e:
        strategy_params(strategy, params)
    assert needle in one_line(e) and f"strategy {strategy!r}" in str(e.value)


def test_integral_floats_become_ints_and_reach_the_strategy():
    assert strategy_params("evolution", {"population": 6.0, "sample_size": 2}) == {"population": 6, "sample_size": 2}
    s = get_strategy("evolution", NB201Space(), seed=0, population=6.0)
    assert s.population_size == 6 and isinstance(s.population_size, int)


@pytest.mark.parametrize("override,needle", [({"hidden": "abc"}, "hidden='abc': expected an integer"),
                                             ({"hidden": 5.5}, "hidden=5.5"), ({"views": 5}, "views=5: expected a list"),
                                             ({"temperature": "x"}, "temperature='x': expected a number > 0"),
                                             ({"pretrain_lr": float("inf")}, "pretrain_lr=inf")])
def test_dcl_predictor_options_are_type_checked(override, needle):
    with pytest.raises(UserError) as e:
        DCLConfig.from_dict(override)
    assert needle in one_line(e)


@pytest.mark.parametrize("param,needle", [("population=abc", "population='abc'"), ("population=5.5", "population=5.5"),
                                          ("population=NaN", "population='NaN'"),
                                          ("population=1e999", "population='1e999'")])
def test_cli_bad_param_is_one_line_and_writes_nothing(tmp_path, capsys, param, needle):
    rc = nascore_main(["search", "--budget", "10", "--quiet", "--param", param, "--data", str(tmp_path / "none"),
                       "--output", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and needle in err and err.count("\n") == 1 and not (tmp_path / "o").exists()


def test_key_values_refuse_repeats_and_keep_non_json_numbers_as_text():
    assert parse_key_values(["a=NaN", "b=Infinity", "c=1e999", "d=True", "e=[1, 2]"]) == {
        "a": "NaN", "b": "Infinity", "c": "1e999", "d": True, "e": [1, 2]}
    with pytest.raises(UserError, match="'a' is given twice"):
        parse_key_values(["a=1", "a=2"])
    with pytest.raises(UserError, match="nested too deeply"):
        parse_key_values(["a=" + "[" * 100_000])


def test_ecg_search_checks_its_params_before_writing(tmp_path, capsys):
    from ecgnas.cli import main as ecg_cli

    out = tmp_path / "run"
    assert ecg_cli(["search", "--method", "evolution", "--param", "population=5.5", "--output", str(out),
                    "--quiet"]) == 2
    assert "population=5.5: expected an integer" in capsys.readouterr().err and not out.exists()


# --- (9) numeric options ------------------------------------------------------------------------------
@pytest.mark.parametrize("budget,needle", [("1e999", "not a finite number"), ("1e999s", "not a finite number"),
                                           ("1e308h", "too large"), ("1e12", "more than the 10,000,000"),
                                           ("9" * 400, "not a finite number")])
def test_budget_is_bounded(budget, needle):
    with pytest.raises(UserError) as e:
        parse_budget(budget)
    assert needle in one_line(e)


@pytest.mark.parametrize("seeds,needle", [("0-1000000000", "more than 10,000 seeds"),
                                          ("0-5000,6000-12000", "more than 10,000 seeds"),
                                          ("0-99999999999999999999", "must be in 0..4294967295"), ("-1", "must be in")])
def test_seeds_are_sized_before_they_are_expanded(seeds, needle):
    with pytest.raises(UserError) as e:
        parse_seeds(seeds)
    assert needle in one_line(e)
    assert len(parse_seeds(f"0-{MAX_SEEDS - 1}")) == MAX_SEEDS


@pytest.mark.parametrize("argv,needle", [
    (["search", "--budget", "1e999"], "--budget: '1e999' is not a finite number"),
    (["search", "--seeds", "0-1000000000"], "selects more than 10,000 seeds"),
    (["egnas", "search", "--sigma0", "nan"], "--sigma0=nan: expected a number > 0"),
    (["darts", "search", "--lr", "inf"], "--lr=inf"),
    (["darts", "train", "--genotype", "x", "--seed", "99999999999999999999"], "--seed=99999999999999999999"),
    (["arch2vec", "pretrain", "--hidden", "100000000"], "--hidden=100000000: expected an integer in [1, 4096]"),
])
def test_nascore_numeric_options_are_one_line_errors(tmp_path, capsys, argv, needle):
    rc = nascore_main(argv + ["--output", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and needle in err and err.count("\n") == 1 and not (tmp_path / "o").exists()


@pytest.mark.parametrize("argv,needle", [
    (["train", "--model", "resnet", "--seed", "99999999999999999999"], "--seed=99999999999999999999"),
    (["train", "--model", "resnet", "--window", "nan,0.45"], "--window: need 0 <= BEFORE"),
    (["train", "--model", "resnet", "--window", "1e308,1"], "--window: need 0 <= BEFORE"),
    (["train", "--model", "resnet", "--lr", "nan"], "--lr=nan"),
    (["train", "--model", "resnet", "--folds", "1000"], "--folds=1000: expected an integer in [2, 22]"),
    (["search", "--method", "random", "--ensemble", "0"], "--ensemble=0: expected an integer in [1, 20]"),
    (["search", "--method", "random", "--max-params", "nan"], "--max-params=nan: expected a number > 0"),
    (["search", "--method", "random", "--budget", "10000000000"], "--budget=10000000000"),
    (["baseline", "random-search", "--trials", "3", "--epochs", "10000000000"], "--epochs=10000000000"),
])
def test_ecgnas_numeric_options_are_checked_before_anything_runs(tmp_path, capsys, argv, needle):
    from ecgnas.cli import main as ecg_cli

    rc = ecg_cli(argv + ["--output", str(tmp_path / "o"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and needle in err and err.count("\n") == 1 and not (tmp_path / "o").exists()


def test_diverging_arch2vec_pretraining_stops_before_writing(tmp_path):
    from nascore.arch2vec.pretrain import pretrain
    from nascore.spaces import get_space

    with pytest.raises(UserError) as e:
        pretrain(get_space("nb201"), output=tmp_path / "m", epochs=2, hidden=16, lr=1e30, clip=None, max_archs=120,
                 progress=False, quality_samples=50)
    assert "diverged" in one_line(e) and not (tmp_path / "m" / "metrics.json").exists()
