import os

import pytest

from nascore.benchmarks.nb201 import NB201Table
from nascore.errors import UserError
from nascore.evaluation import TabularEvaluator
from nascore.executors import get_executor
from nascore.io import read_jsonl
from nascore.run import Budget, run_search
from nascore.spaces.nb201 import NB201Space
from nascore.strategies import get_strategy


class SlowFirst:
    """Picklable evaluator whose first item of each batch finishes last, to exercise out-of-order completion."""

    def __init__(self, inner):
        self.inner = inner

    def __call__(self, arch):
        import time

        res = self.inner(arch)
        if res.score > 0 and hash(str(arch)) % 2 == 0:
            time.sleep(0.05)
        return res


class DiesOnce:
    """Kills its worker process the first time it sees the marked architecture."""

    def __init__(self, inner, marker_dir, target):
        self.inner, self.marker_dir, self.target = inner, marker_dir, target

    def __call__(self, arch):
        s = NB201Space().to_string(arch)
        flag = os.path.join(self.marker_dir, "died")
        if s == self.target and not os.path.exists(flag):
            open(flag, "w").close()
            os._exit(1)
        return self.inner(arch)


def test_unknown_executor():
    with pytest.raises(UserError, match="unknown executor 'spark'"):
        get_executor("spark")


def test_ray_executor_matches_serial_and_survives_a_dead_worker(synthetic_nb201_table, tmp_path):
    ray = pytest.importorskip("ray")
    import sys

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import test modules
    space = NB201Space()
    ev = TabularEvaluator(space, NB201Table.read_csv(synthetic_nb201_table))
    serial = run_search(space=space, strategy=get_strategy("evolution", space, seed=5), evaluator=ev,
                        budget=Budget(queries=24), out_dir=tmp_path / "serial", config={"seed": 5}, batch_size=4)
    ex = get_executor("ray", num_cpus=2)
    try:
        par = run_search(space=space, strategy=get_strategy("evolution", space, seed=5), evaluator=SlowFirst(ev),
                         budget=Budget(queries=24), out_dir=tmp_path / "ray", config={"seed": 5}, batch_size=4,
                         executor=ex)
        assert par["best"] == serial["best"] and par["trajectory"] == serial["trajectory"]
        target = read_jsonl(tmp_path / "serial" / "history.jsonl")[6]["arch"]
        dying = DiesOnce(ev, str(tmp_path), target)
        again = run_search(space=space, strategy=get_strategy("evolution", space, seed=5), evaluator=dying,
                           budget=Budget(queries=24), out_dir=tmp_path / "ray2", config={"seed": 5}, batch_size=4,
                           executor=ex)
        assert (tmp_path / "died").exists()  # the worker really died once
        hist = read_jsonl(tmp_path / "ray2" / "history.jsonl")
        assert len(hist) == 24 and len({h["i"] for h in hist}) == 24  # retried, neither lost nor duplicated
        assert again["best"] == serial["best"]
    finally:
        ex.close()
