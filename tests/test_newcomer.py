"""Issue 16, newcomer friction: help texts without reST markup and with defaults and choice lists
generated from the registries, one summary line for resampled records, the real cache path in
the missing-data hint, a configuration mismatch named by its differing keys, and a search curve
whose y-axis shows the first queries."""

from __future__ import annotations

import numpy as np
import pytest

from nascore.report import plot_curves, y_limits


def _trajectory(values):
    return {"trajectory": [[i + 1, 100.0 * (i + 1), v - 3, v] for i, v in enumerate(values)]}


def test_search_curve_y_axis_shows_the_first_queries(tmp_path, monkeypatch):
    import matplotlib.axes

    seen = []
    real = matplotlib.axes.Axes.set_ylim
    monkeypatch.setattr(matplotlib.axes.Axes, "set_ylim",
                        lambda self, *a, **k: (seen.append(a), real(self, *a, **k))[1])
    # a NB-201 search curve starts far below the 92.5 the axis used to start at
    curves = {"random": [_trajectory([70.0, 88.0, 93.0, 93.5]), _trajectory([78.0, 91.0, 93.2, 94.0])],
              "evolution": [_trajectory([85.0, 92.0, 94.0, 94.2])]}
    plot_curves(curves, tmp_path / "curve.png", optimum=94.37)
    lo, hi = seen[-1]  # the limits the figure ends with
    assert lo <= 74.0 and hi >= 94.37  # the first mean point (74) and the optimum are inside
    assert (tmp_path / "curve.png").read_bytes()[:4] == b"\x89PNG"


def test_y_limits_cover_every_line_and_the_optimum():
    lo, hi = y_limits([np.array([60.0, np.nan, 90.0]), [91.0, 92.0]], optimum=94.37)
    assert lo < 60.0 and hi > 94.37
    assert y_limits([[np.nan]]) is None
    lo, hi = y_limits([[5.0, 5.0]])
    assert lo < 5.0 < hi


# --------------------------------------------------------------------------- configuration mismatch

def test_a_different_configuration_names_the_differing_nested_keys_only(tmp_path):
    from nascore.errors import UserError
    from nascore.run import check_config, check_or_write_config

    train = {"epochs": 1, "batch_size": 256, "lr": 0.002, "augment": "scale,wander,noise,shift,stretch"}
    check_or_write_config(tmp_path, {"method": "random", "final": train, "fidelity": train, "seed": 0})
    with pytest.raises(UserError) as e:
        check_config(tmp_path, {"method": "random", "final": {**train, "epochs": 2}, "fidelity": train, "seed": 0})
    msg = str(e.value)
    assert "final.epochs: 1 there, 2 now" in msg
    assert "{" not in msg and "batch_size" not in msg and "augment" not in msg  # no whole dicts


def test_cli_ecg_search_with_a_changed_option_names_the_option(monkeypatch, tmp_path, capsys):
    from ecg_fakes import install_fake_loader

    from ecgnas.cli import main as ecg_main

    install_fake_loader(monkeypatch, per_record=40)
    out = tmp_path / "run"
    base = ["search", "--method", "random", "--budget", "2", "--output", str(out), "--quiet", "--baseline", "none",
            "--search-epochs", "1", "--search-samples", "256", "--samples-per-epoch", "256"]
    assert ecg_main(base + ["--epochs", "1"]) == 0
    capsys.readouterr()
    assert ecg_main(base + ["--epochs", "2"]) == 2
    err = capsys.readouterr().err
    assert "final.epochs: 1 there, 2 now" in err and "{" not in err and err.count("\n") == 1


# --------------------------------------------------------------------------- help texts

def _parsers():
    """``(command words, parser)`` of every command and sub-command of ``nascore`` and ``ecgnas``."""
    import argparse

    from ecgnas.cli import COMMAND_MODULES as ECG_MODULES
    from nascore.cli import COMMAND_MODULES as CORE_MODULES
    from nascore.cliutil import build_parser

    todo = [(("nascore",), build_parser("nascore", "x", CORE_MODULES)),
            (("ecgnas",), build_parser("ecgnas", "x", ECG_MODULES))]
    while todo:
        words, parser = todo.pop()
        yield words, parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                todo += [(words + (name,), sub) for name, sub in action.choices.items()]


def _option(parser, flag):
    return next((a for a in parser._actions if flag in a.option_strings), None)


MARKUP = ("``", ":mod:", ":class:", ":func:", ":meth:", ":data:", ":attr:", ":ref:")


def test_no_rest_markup_in_any_help():
    seen = set()
    for words, parser in _parsers():
        text = parser.format_help()
        leaks = [m for m in MARKUP if m in text]
        assert not leaks, f"{' '.join(words)} --help shows {leaks}"
        seen.add(" ".join(words))
    assert {"ecgnas train", "ecgnas search", "ecgnas baseline random-search", "ecgnas evaluate", "ecgnas prepare",
            "nascore search", "nascore darts search", "nascore egnas search", "nascore arch2vec pretrain"} <= seen


def test_every_seed_option_has_help():
    for words, parser in _parsers():
        seed = _option(parser, "--seed")
        if seed is not None:
            assert seed.help and "default" in seed.help, f"{' '.join(words)} --seed has no help"


def test_nascore_search_help_lists_the_registries_and_states_defaults():
    from nascore.benchmarks.nb201 import DATASETS
    from nascore.search import TABULAR_SPACES
    from nascore.strategies import STRATEGIES

    parser = dict((" ".join(w), p) for w, p in _parsers())["nascore search"]
    strategy, dataset, space, budget = (_option(parser, f) for f in ("--strategy", "--dataset", "--space", "--budget"))
    assert all(name in strategy.help for name in STRATEGIES) and "later modules" not in strategy.help
    assert all(name in dataset.help for name in DATASETS) and all(name in space.help for name in TABULAR_SPACES)
    for action in (strategy, dataset, space, budget):
        assert f"default {action.default}" in action.help


def test_ecgnas_train_model_help_lists_every_registered_model():
    from ecgnas.models import MODELS

    parser = dict((" ".join(w), p) for w, p in _parsers())["ecgnas train"]
    help_text = _option(parser, "--model").help
    assert {"linear", "darts1d"} <= set(MODELS)
    assert all(name in help_text for name in MODELS)


def test_prepare_help_states_each_default_once_and_says_quiet(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    parser = dict((" ".join(w), p) for w, p in _parsers())["ecgnas prepare"]
    text = parser.format_help()
    assert "--quiet" in text and "--no-progress" not in text
    assert "(default: None)" not in text and "(default: False)" not in text  # the formatter's second copy
    for action in parser._actions:
        assert (action.help or "").count("default") <= 1, action.option_strings
    unwrapped = "".join(text.split())  # long paths are wrapped across lines
    assert str(tmp_path / "xdg" / "nascore" / "mitdb") in unwrapped and "~/.cache" not in text
    assert parser.parse_args(["--output", "o", "--no-progress"]).quiet  # the old name still works


# --------------------------------------------------------------------------- ecgnas prepare output

from test_ecg_data import small_db  # noqa: E402,F401  (fixture: three generated 360 Hz records)


def test_prepare_prints_one_line_for_all_resampled_records(small_db, tmp_path, capsys):  # noqa: F811
    import json

    from ecgnas.cli import main

    out = tmp_path / "out"
    args = ["prepare", "--data", str(small_db), "--output", str(out), "--cache", str(tmp_path / "c"), "--quiet"]
    for _ in range(2):  # prepared, then from the cache: the same one line
        assert main(args) == 0
        lines = [line for line in capsys.readouterr().out.splitlines() if "resampled" in line]
        assert lines == ["note: 3 records resampled 360 Hz -> 180 Hz (scipy resample_poly up=1 down=2; "
                         "annotation samples rescaled; per record in summary.json)"]
    notes = json.loads((out / "summary.json").read_text())["notes"]
    assert sum("resampled" in n for n in notes) == 3  # summary.json keeps the per-record notes


def test_missing_data_hint_names_the_real_cache_folder(monkeypatch, tmp_path, capsys):
    from ecgnas.cli import main

    monkeypatch.delenv("NASCORE_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert main(["prepare", "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert f"--download` (into {tmp_path / 'xdg' / 'nascore' / 'mitdb'})" in err and "~/.cache" not in err
