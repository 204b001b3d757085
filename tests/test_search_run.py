import json

import numpy as np
import pytest

from nascore.benchmarks.nb201 import NB201Table
from nascore.cli import main as nascore_main
from nascore.errors import UserError
from nascore.evaluation import Result, TabularEvaluator
from nascore.io import read_json, read_jsonl
from nascore.run import Budget, run_search
from nascore.search import benchmark_search
from nascore.spaces.nb201 import NB201Space
from nascore.strategies import get_strategy


@pytest.fixture
def table(synthetic_nb201_table):
    return NB201Table.read_csv(synthetic_nb201_table)


@pytest.mark.parametrize("name", ["random", "evolution"])
def test_strategies_never_repeat_and_spend_exact_budget(name, table, tmp_path):
    space = NB201Space()
    res = run_search(space=space, strategy=get_strategy(name, space, seed=1), evaluator=TabularEvaluator(space, table),
                     budget=Budget(queries=300), out_dir=tmp_path / "r", config={"seed": 1}, batch_size=7)
    hist = read_jsonl(tmp_path / "r" / "history.jsonl")
    assert len(hist) == 300 == res["queries"]
    assert len({h["arch"] for h in hist}) == 300
    assert res["best"]["valid_accuracy"] == max(h["metrics"]["valid_accuracy"] for h in hist)


def test_evolution_beats_random_on_a_smooth_landscape(table, tmp_path):
    space = NB201Space()
    finals = {}
    for name in ("random", "evolution"):
        vals = []
        for seed in range(8):
            r = run_search(space=space, strategy=get_strategy(name, space, seed=seed),
                           evaluator=TabularEvaluator(space, table), budget=Budget(queries=60),
                           out_dir=tmp_path / f"{name}{seed}", config={"seed": seed})
            vals.append(r["best"]["valid_accuracy"])
        finals[name] = np.mean(vals)
    assert finals["evolution"] > finals["random"] + 1.0


def test_aging_population(table):
    space = NB201Space()
    s = get_strategy("evolution", space, seed=0, population=5, sample_size=2)
    for step in range(12):
        [a] = s.ask(1)
        s.tell([a], [Result(score=float(step))])
        assert len(s.population) == min(step + 1, 5)
    assert [sc for _, sc in s.population] == [7.0, 8.0, 9.0, 10.0, 11.0]  # oldest removed, not worst


def test_seconds_budget(table, tmp_path):
    space = NB201Space()
    r = run_search(space=space, strategy=get_strategy("random", space, seed=0), evaluator=TabularEvaluator(space, table),
                   budget=Budget.parse("2000s"), out_dir=tmp_path / "r", config={})
    costs = [row[1] for row in r["trajectory"]]
    assert costs[-1] >= 2000 > costs[-2]


class Crash(Exception):
    pass


def test_resume_after_kill_repeats_nothing_and_matches(table, tmp_path):
    space = NB201Space()
    ev = TabularEvaluator(space, table)
    full = run_search(space=space, strategy=get_strategy("evolution", space, seed=3), evaluator=ev,
                      budget=Budget(queries=80), out_dir=tmp_path / "full", config={"seed": 3})
    calls = []

    def dying(arch):
        if len(calls) == 37:
            raise Crash()
        calls.append(space.to_string(arch))
        return ev(arch)

    with pytest.raises(Crash):
        run_search(space=space, strategy=get_strategy("evolution", space, seed=3), evaluator=dying,
                   budget=Budget(queries=80), out_dir=tmp_path / "k", config={"seed": 3})
    with open(tmp_path / "k" / "history.jsonl", "a") as f:
        f.write('{"i": 37, "arch": "|nor_')  # torn line from the kill
    again = []

    def counting(arch):
        again.append(space.to_string(arch))
        return ev(arch)

    resumed = run_search(space=space, strategy=get_strategy("evolution", space, seed=3), evaluator=counting,
                         budget=Budget(queries=80), out_dir=tmp_path / "k", config={"seed": 3})
    assert len(again) == 80 - 37 and not set(again) & set(calls)
    for key in ("queries", "best", "trajectory", "simulated_seconds"):
        assert resumed[key] == full[key]


def test_foreign_output_folder_is_refused(table, tmp_path):
    space = NB201Space()
    run_search(space=space, strategy=get_strategy("random", space, seed=0), evaluator=TabularEvaluator(space, table),
               budget=Budget(queries=3), out_dir=tmp_path / "r", config={"seed": 0})
    before = (tmp_path / "r" / "history.jsonl").read_bytes()
    with pytest.raises(UserError, match="different configuration"):
        run_search(space=space, strategy=get_strategy("random", space, seed=1), evaluator=TabularEvaluator(space, table),
                   budget=Budget(queries=3), out_dir=tmp_path / "r", config={"seed": 1})
    assert (tmp_path / "r" / "history.jsonl").read_bytes() == before


@pytest.mark.parametrize("text,expected", [("100", Budget(queries=100)), ("20000s", Budget(seconds=20000.0)),
                                           ("1.5h", Budget(seconds=5400.0))])
def test_budget_parse(text, expected):
    assert Budget.parse(text) == expected


@pytest.mark.parametrize("text", ["0", "-3", "0s", "abc", "2.5"])
def test_budget_parse_rejects(text):
    with pytest.raises(UserError):
        Budget.parse(text)


def test_multi_seed_api_writes_summary_and_curve(synthetic_nb201_table, tmp_path):
    s = benchmark_search(space="nb201", strategy="evolution", budget="40", seeds=range(3), output=tmp_path / "o",
                         data=synthetic_nb201_table.parent, progress=False)
    assert s["test_accuracy"]["n"] == 3 and (tmp_path / "o" / "curve.png").stat().st_size > 1000
    r0 = read_json(tmp_path / "o" / "seed-0000" / "result.json")
    assert set(r0) >= {"seed", "queries", "simulated_seconds", "best"}
    assert set(r0["best"]) >= {"arch", "valid_accuracy", "test_accuracy"}
    assert r0["best"]["test_accuracy"] == pytest.approx(r0["best"]["valid_accuracy"] + 3)


def run_cli(argv, capsys):
    rc = nascore_main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def test_cli_search_and_resume(synthetic_nb201_table, tmp_path, capsys):
    args = ["search", "--space", "nb201", "--strategy", "random", "--budget", "30", "--seeds", "0-2", "--quiet",
            "--data", str(synthetic_nb201_table.parent), "--output", str(tmp_path / "o")]
    rc, out, _ = run_cli(args, capsys)
    assert rc == 0 and "test accuracy of the best" in out
    first = (tmp_path / "o" / "summary.json").read_text()
    hist = (tmp_path / "o" / "seed-0001" / "history.jsonl").read_bytes()
    rc, _, _ = run_cli(args, capsys)  # rerun = resume of finished runs: nothing re-evaluated, same summary
    second = json.loads((tmp_path / "o" / "summary.json").read_text())
    first = json.loads(first)
    second.pop("wall_seconds"), first.pop("wall_seconds")
    assert rc == 0 and second == first
    assert (tmp_path / "o" / "seed-0001" / "history.jsonl").read_bytes() == hist


@pytest.mark.parametrize("extra,needle", [
    (["--space", "nb999"], "unknown space 'nb999'"),
    (["--dataset", "mnist"], "unknown dataset 'mnist'"),
    (["--strategy", "magic"], "unknown strategy 'magic'"),
    (["--budget", "0"], "budget must be positive"),
    (["--seeds", "5-1"], "--seeds"),
    (["--param", "population=3", "--param", "bogus=1"], "no parameter 'bogus'"),
])
def test_cli_bad_input_exit_2_one_line(extra, needle, synthetic_nb201_table, tmp_path, capsys):
    args = ["search", "--budget", "10", "--quiet", "--data", str(synthetic_nb201_table.parent),
            "--output", str(tmp_path / "o")] + extra
    rc, _, err = run_cli(args, capsys)
    assert rc == 2 and needle in err and err.count("\n") == 1
    assert not (tmp_path / "o" / "seed-0000").exists()


def test_cli_foreign_output_refused(synthetic_nb201_table, tmp_path, capsys):
    base = ["search", "--budget", "10", "--quiet", "--data", str(synthetic_nb201_table.parent),
            "--output", str(tmp_path / "o")]
    assert run_cli(base + ["--strategy", "random"], capsys)[0] == 0
    rc, _, err = run_cli(base + ["--strategy", "evolution"], capsys)
    assert rc == 2 and "different configuration" in err


def test_budget_below_initial_sample_is_refused(synthetic_nb201_table, tmp_path, capsys):
    class NeedsTen:
        """A strategy that needs 10 evaluations before it can do anything."""

        name = "needs-ten"
        min_queries = 10

    with pytest.raises(UserError, match="smaller than the needs-ten strategy's initial sample"):
        run_search(space=NB201Space(), strategy=NeedsTen(), evaluator=None, budget=Budget(queries=5),
                   out_dir=tmp_path / "r", config={})
    assert not (tmp_path / "r").exists()
