"""NATS-Bench files are unpickled with a restricted unpickler (issue 16: no code from user files)."""

from __future__ import annotations

import bz2
import pathlib
import pickle
from collections import OrderedDict

import numpy as np
import pytest

import nats_bench.api_utils as api_utils
from nascore.benchmarks.nb201 import export_from_nats
from nascore.errors import UserError
from nascore.safeload import load_nats_pickle, restricted_nats_pickles


class _Touch:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.path),))


def _write(path, obj):
    with bz2.BZ2File(path, "wb") as f:
        pickle.dump(obj, f, protocol=4)


def test_plain_nats_data_loads_and_a_crafted_file_runs_nothing(tmp_path):
    good = tmp_path / "meta.pickle.pbz2"
    data = {"meta_archs": ["|nor_conv_3x3~0|"], "arch2infos": OrderedDict(a={"loss": [0.1, 0.2]}),
            "x": np.arange(3)}
    _write(good, data)
    out = load_nats_pickle(str(good))
    assert out["meta_archs"] == data["meta_archs"] and out["arch2infos"]["a"]["loss"] == [0.1, 0.2]
    assert out["x"].tolist() == [0, 1, 2]
    assert load_nats_pickle(str(tmp_path / "meta.pickle"))["meta_archs"] == data["meta_archs"]  # ext added

    marker = tmp_path / "ran"
    evil = tmp_path / "evil.pickle.pbz2"
    _write(evil, {"meta_archs": _Touch(marker)})
    with pytest.raises(UserError, match="refused to unpickle") as e:
        load_nats_pickle(str(evil))
    assert "\n" not in str(e.value) and not marker.exists()


def test_nats_bench_uses_the_restricted_loader_only_inside_the_context(tmp_path):
    original = api_utils.pickle_load
    with restricted_nats_pickles():
        assert api_utils.pickle_load is load_nats_pickle
        import nats_bench.api_topology as topo

        assert topo.pickle_load is load_nats_pickle
    assert api_utils.pickle_load is original


@pytest.mark.parametrize("layout", ["file", "folder"])
def test_export_from_a_crafted_nats_file_is_one_line_and_runs_nothing(tmp_path, layout):
    marker = tmp_path / "ran"
    if layout == "file":
        evil = tmp_path / "NATS-tss-v1_0-3ffb9-full.pickle.pbz2"
        _write(evil, {"meta_archs": _Touch(marker)})
    else:
        evil = tmp_path / "NATS-tss-v1_0-3ffb9-simple"
        evil.mkdir()
        _write(evil / "meta.pickle.pbz2", {"meta_archs": _Touch(marker)})
    with pytest.raises(UserError, match="refused to unpickle") as e:
        export_from_nats(evil, "cifar10", tmp_path / "out.csv", progress=False)
    assert "\n" not in str(e.value) and not marker.exists() and not (tmp_path / "out.csv").exists()
