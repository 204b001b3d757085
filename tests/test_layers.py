"""The shape of the code: no import cycles, the core never imports the ECG package, library code
never imports the command-line layer, and a search method is one registry entry (a method added
here, in the test suite, is searchable without touching ecgnas/search.py)."""

from __future__ import annotations

import pytest

from import_graph import cycles, import_graph
from nascore.errors import UserError
from nascore.strategies.base import Strategy

CLI_MODULES = ("ecgnas.cli", "nascore.cli")


@pytest.fixture(scope="module")
def graph():
    return import_graph()


def test_import_graph_reader_sees_imports_inside_functions_and_finds_cycles(tmp_path):
    for pkg in ("nascore", "ecgnas"):
        (tmp_path / pkg).mkdir()
        (tmp_path / pkg / "__init__.py").write_text("")
    (tmp_path / "nascore" / "a.py").write_text("from nascore import b\n")
    (tmp_path / "nascore" / "b.py").write_text("def f():\n    from nascore.a import g\n")
    (tmp_path / "nascore" / "c.py").write_text("from . import a\n")
    g = import_graph(tmp_path)
    assert g["nascore.a"] == {"nascore.b"} and g["nascore.b"] == {"nascore.a"} and g["nascore.c"] == {"nascore.a"}
    assert cycles(g) == [["nascore.a", "nascore.b"]]


def test_no_import_cycles(graph):
    assert cycles(graph) == []


def test_nascore_never_imports_ecgnas(graph):
    bad = sorted(f"{m} -> {t}" for m, ts in graph.items() if m.startswith("nascore") for t in ts
                 if t.startswith("ecgnas"))
    assert bad == []


def test_library_code_never_imports_the_command_line_layer(graph):
    def is_cli(m):
        return m in CLI_MODULES or ".commands" in m

    bad = sorted(f"{m} -> {t}" for m, ts in graph.items() if not is_cli(m) for t in ts if is_cli(t))
    assert bad == []


# --------------------------------------------------------------------------- the method registry

class FirstSeen(Strategy):
    """A toy ask/tell strategy for the registry test: samples, then mutates the best told."""

    name = "toy-first-seen"

    def __init__(self, space, seed: int = 0, n_init: int = 2):
        super().__init__(space, seed)
        self.n_init = n_init
        self.told: list = []

    def ask(self, n: int = 1):
        out = []
        for _ in range(n):
            if len(self.told) < self.n_init:
                out.append(self._sample_unseen())
                continue
            best = max(self.told, key=lambda t: t[1])[0]
            for _ in range(1000):
                a = self.space.mutate(best, self.rng)
                if self._mark(a):
                    break
            else:
                a = self._sample_unseen()
            out.append(a)
        return out

    def tell(self, archs, results) -> None:
        self._check_told(archs, results)
        self.told += [(a, r.score) for a, r in zip(archs, results) if not r.failed]


@pytest.fixture
def toy_method(monkeypatch):
    """Register ``toy`` the way a new method is added: one strategy (above) plus one registry line."""
    from ecgnas import methods
    from nascore import strategies

    monkeypatch.setattr(methods, "METHODS", dict(methods.METHODS))  # undone after the test
    monkeypatch.setitem(strategies.STRATEGIES, "toy", "")  # so that monkeypatch removes it afterwards

    methods.register_method(methods.SearchMethod("toy", strategy=f"{__name__}:FirstSeen"))  # the one line
    assert strategies.STRATEGIES["toy"] == f"{__name__}:FirstSeen" and methods.METHODS["toy"].strategy == "toy"
    return "toy"


def test_a_method_registered_in_the_test_suite_is_searchable(toy_method, tmp_path, monkeypatch, capsys):
    import json

    from ecg_fakes import install_fake_loader
    from ecgnas.cli import main as cli
    from ecgnas.data import PrepConfig
    from ecgnas.evaluator import default_fidelity
    from ecgnas.search import ecg_search, final_schedule
    from nascore.io import read_jsonl

    install_fake_loader(monkeypatch, per_record=40)
    prep = PrepConfig(before_s=0.1, after_s=0.2)
    res = ecg_search(tmp_path / "toy", method="toy", budget=3, seed=0, baseline="none", prep=prep, progress=False,
                     fidelity=default_fidelity(epochs=1, samples_per_epoch=128, batch_size=64),
                     final=final_schedule(epochs=1, samples_per_epoch=128, batch_size=64), latency=False,
                     strategy_params={"n_init": 2})
    assert res["method"] == "toy" and res["space"] == "ecg-cell" and res["evaluations"] == 3
    hist = read_jsonl(tmp_path / "toy" / "search" / "history.jsonl")
    assert len({r["arch"] for r in hist}) == 3 and res["best_arch"] in {r["arch"] for r in hist}
    assert json.loads((tmp_path / "toy" / "config.json").read_text())["strategy_params"] == {"n_init": 2}
    # its parameters are checked like any strategy's, before anything is written
    with pytest.raises(UserError, match="n_init"):
        ecg_search(tmp_path / "bad", method="toy", budget=3, strategy_params={"n_init": "x"}, progress=False)
    assert not (tmp_path / "bad").exists()
    # and the command line offers it
    assert cli(["search", "--method", "toy", "--budget", "0", "--output", str(tmp_path / "c"), "--quiet"]) == 2
    assert "--budget" in capsys.readouterr().err


def test_registry_entries_are_checked_and_name_their_spaces():
    from ecgnas.methods import METHODS, SearchMethod, all_spaces, get_method

    assert all_spaces() == ["ecg-cell", "resnet-family", "darts1d"]
    with pytest.raises(UserError, match="kind 'grid'"):
        SearchMethod("x", kind="grid", strategy="random")
    with pytest.raises(UserError, match="needs a strategy"):
        SearchMethod("x")
    with pytest.raises(UserError, match="unknown input 'gpu'"):
        SearchMethod("x", strategy="random", inputs={"n": "gpu"})
    with pytest.raises(UserError, match="searched by --method eg-nas only"):
        get_method("random").check_space("darts1d")
    with pytest.raises(UserError, match="eg-nas searches 1D DARTS cells"):
        get_method("eg-nas").check_space("ecg-cell")
    with pytest.raises(UserError, match="takes no strategy parameters"):
        get_method("eg-nas").check_params({"population": 3})
    assert [m.kind for m in METHODS.values()].count("supernet") == 1
