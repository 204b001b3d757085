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
