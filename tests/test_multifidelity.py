"""Multi-fidelity search (nascore.multifidelity): ASHA's promotion rule, budget accounting in
candidate-epochs, resume mid-rung without re-running finished rungs, both executors, and the
`nascore search` / `ecgnas search` options."""

from __future__ import annotations

import json
import math
import sys
import zlib

import pytest

from nascore.errors import UserError
from nascore.evaluation import Result
from nascore.io import read_jsonl
from nascore.multifidelity import ASHA, MultiFidelity
from nascore.run import Budget, run_search
from nascore.spaces import get_space
from nascore.strategies import get_strategy
from nascore.strategies.base import Strategy

SPACE = get_space("nb201")


class Recorder(Strategy):
    """Random proposals; remembers every tell (to check what the wrapped strategy hears)."""

    name = "recorder"

    def __init__(self, space, seed: int = 0):
        super().__init__(space, seed)
        self.told: list[tuple[str, float]] = []

    def ask(self, n: int = 1):
        return [self._sample_unseen() for _ in range(n)]

    def tell(self, archs, results):
        self._check_told(archs, results)
        self.told += [(self.space.to_string(a), r.score) for a, r in zip(archs, results)]


def _finish(asha, job, score):
    asha.tell([job], [Result(score)])


# --------------------------------------------------------------------------- the schedule


def test_schedule_is_validated_in_one_line():
    assert MultiFidelity.parse(None, 3, top=9).rungs == (1, 3, 9)
    assert MultiFidelity.parse([4, 12, 36, 108], 3).top == 108
    for text, msg in (("1", "at least two rungs"), ("1,x", "whole numbers"), ("0,3", r"\[1, 100000\]"),
                      ("3,3", "must increase")):
        with pytest.raises(UserError, match=msg):
            MultiFidelity.parse(text, 3)
    with pytest.raises(UserError, match="--eta"):
        MultiFidelity((1, 3), eta=1)
    with pytest.raises(UserError, match="no lower rung"):
        MultiFidelity.ladder(2, 3)


# --------------------------------------------------------------------------- promotion rule


def test_top_1_over_eta_is_promoted_as_soon_as_the_rung_holds_eta_results():
    strat = Recorder(SPACE, seed=0)
    asha = ASHA(strat, SPACE, MultiFidelity((1, 3, 9), eta=3))
    jobs = [asha.ask() for _ in range(2)]
    assert [k for _, k in jobs] == [0, 0]
    for job, s in zip(jobs, (5.0, 9.0)):
        _finish(asha, job, s)
    third = asha.ask()
    assert third[1] == 0  # 2 results: floor(2/3) = 0 promotable, so the bottom rung grows
    _finish(asha, third, 1.0)
    up = asha.ask()  # 3 results: the best (9.0) goes up at once, without waiting for anything else
    assert up[1] == 1 and SPACE.key(up[0]) == SPACE.key(jobs[1][0])
    assert asha.ask()[1] == 0  # the top third is used up: a new candidate
    # the wrapped strategy heard each candidate once, with its rung-0 score; never a higher rung
    assert [s for _, s in strat.told] == [5.0, 9.0, 1.0]
    _finish(asha, up, 7.0)
    assert [s for _, s in strat.told] == [5.0, 9.0, 1.0]


def test_a_paused_candidate_is_promoted_later_when_the_rung_grows_asynchronous_rule():
    asha = ASHA(Recorder(SPACE, seed=1), SPACE, MultiFidelity((1, 3), eta=3))
    first = [asha.ask() for _ in range(3)]
    for job, s in zip(first, (5.0, 9.0, 1.0)):
        _finish(asha, job, s)
    up = asha.ask()
    assert SPACE.key(up[0]) == SPACE.key(first[1][0])
    more = [asha.ask() for _ in range(3)]
    assert [k for _, k in more] == [0, 0, 0]
    for job, s in zip(more, (2.0, 3.0, 0.0)):
        _finish(asha, job, s)
    late = asha.ask()  # 6 results: the top 2 are 9.0 (promoted) and 5.0, paused until now
    assert late[1] == 1 and SPACE.key(late[0]) == SPACE.key(first[0][0])


def test_higher_rungs_promote_first_failures_never_and_nothing_is_promoted_twice():
    asha = ASHA(Recorder(SPACE, seed=2), SPACE, MultiFidelity((1, 2, 4), eta=2))
    a, b = asha.ask(), asha.ask()
    _finish(asha, a, 3.0)
    _finish(asha, b, float("nan"))  # a failed evaluation counts in the rung but is never promoted
    a1 = asha.ask()
    assert a1[1] == 1 and SPACE.key(a1[0]) == SPACE.key(a[0])
    c = asha.ask()
    assert c[1] == 0
    _finish(asha, a1, 4.0)
    _finish(asha, c, 1.0)
    # rung 1 holds 1 result (floor(1/2) = 0), rung 0 holds 3 (top 1 = a, already promoted): new
    d = asha.ask()
    assert d[1] == 0
    _finish(asha, d, 8.0)
    # rung 0 now holds 4: top 2 = d (8.0), a (3.0, promoted) -> d goes up
    e = asha.ask()
    assert e[1] == 1 and SPACE.key(e[0]) == SPACE.key(d[0])
    _finish(asha, e, 6.0)
    # rung 1 holds 2: top 1 = d (6.0) -> rung 2 is served before rung 0
    f = asha.ask()
    assert f[1] == 2 and SPACE.key(f[0]) == SPACE.key(d[0])
    with pytest.raises(ValueError, match="told twice"):
        _finish(asha, e, 6.0)


# --------------------------------------------------------------------------- run loop


class RungEvaluator:
    """Score = #conv ops + a rung-dependent perturbation; cost = epochs; counts (arch, rung) calls.
    ``fail_at``: raise KeyboardInterrupt on that call (a kill)."""

    def __init__(self, fail_at: int | None = None):
        self.calls: list[tuple[str, int]] = []
        self.fail_at = fail_at

    def __call__(self, arch, fidelity=None):
        s = SPACE.to_string(arch)
        self.calls.append((s, fidelity))
        if self.fail_at is not None and len(self.calls) == self.fail_at:
            raise KeyboardInterrupt
        base = s.count("conv") + 0.1 * s.count("3x3")
        noise = (zlib.crc32(s.encode()) % 7) / (1.0 + fidelity)  # lower fidelity: noisier (same in any process)
        return Result(score=float(base + noise), metrics={"epochs_trained": fidelity}, cost=float(fidelity))


MF = MultiFidelity((1, 3, 9), eta=3)


def _run(tmp, ev, budget=6, executor=None, batch_size=1, strategy="evolution", seed=0):
    return run_search(space=SPACE, strategy=get_strategy(strategy, SPACE, seed=seed, **(
        {"population": 4, "sample_size": 2} if strategy == "evolution" else {})), evaluator=ev,
        budget=Budget(queries=budget), out_dir=tmp, config={"seed": seed, "mf": MF.to_dict()},
        multi_fidelity=MF, executor=executor, batch_size=batch_size)


def test_budget_is_counted_in_candidate_epochs_and_reported(tmp_path):
    ev = RungEvaluator()
    res = _run(tmp_path / "r", ev, budget=6)
    hist = read_jsonl(tmp_path / "r" / "history.jsonl")
    epochs = [r["epochs"] for r in hist]
    mf = res["multi_fidelity"]
    assert mf["epoch_budget"] == 6 * 9 and mf["candidate_epochs"] == sum(epochs)
    assert sum(epochs[:-1]) < 6 * 9 <= sum(epochs)  # asked while below the budget; the last one crosses it
    assert mf["evaluations_per_rung"] == [sum(1 for r in hist if r["rung"] == k) for k in range(3)]
    assert mf["candidates"] == len({r["arch"] for r in hist}) > 6  # more candidates than 6 full evaluations
    assert mf["evaluations_per_rung"][2] >= 1 and res["queries"] == len(hist)
    assert res["simulated_seconds"] == pytest.approx(sum(epochs)) and mf["evaluation_seconds"] == pytest.approx(
        sum(epochs))
    assert res["wall_seconds"] >= 0 and mf["wall_seconds_this_call"] == res["wall_seconds"]
    top = [r for r in hist if r["rung"] == 2]
    best = max(top, key=lambda r: r["score"])
    assert res["best"]["arch"] == best["arch"] and res["best"]["rung"] == 2 and res["best"]["epochs"] == 9
    # each evaluation is one line: (candidate, rung) once, with its epochs
    assert len({(r["arch"], r["rung"]) for r in hist}) == len(hist)
    assert [(s, f) for s, f in ev.calls] == [(r["arch"], r["epochs"]) for r in sorted(hist, key=lambda r: r["i"])]
    # a promoted candidate was first evaluated on every rung below
    for r in hist:
        for k in range(r["rung"]):
            assert any(q["arch"] == r["arch"] and q["rung"] == k and q["i"] < r["i"] for q in hist)


def test_resume_after_a_kill_mid_rung_reruns_no_finished_rung(tmp_path):
    full = _run(tmp_path / "full", RungEvaluator(), budget=5)
    n_full = len(read_jsonl(tmp_path / "full" / "history.jsonl"))
    killed = RungEvaluator(fail_at=9)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path / "part", killed, budget=5)
    partial = read_jsonl(tmp_path / "part" / "history.jsonl")
    assert len(partial) == 8 and any(r["rung"] > 0 for r in partial)
    again = RungEvaluator()
    res = _run(tmp_path / "part", again, budget=5)
    done_before = {(r["arch"], r["epochs"]) for r in partial}
    assert not done_before & set(again.calls)  # no finished (candidate, rung) ran again
    assert len(again.calls) == n_full - 8
    strip = ("wall", "wall_seconds", "wall_seconds_this_call")

    def clean(d):
        return {k: (clean(v) if isinstance(v, dict) else v) for k, v in d.items() if k not in strip}
    assert clean(res) == clean(full)
    # a torn last line (killed mid-write) is cut off and only that evaluation is redone
    path = tmp_path / "part" / "history.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])
    (tmp_path / "part" / "result.json").unlink()
    once_more = RungEvaluator()
    assert clean(_run(tmp_path / "part", once_more, budget=5)) == clean(full)
    last = json.loads(lines[-1])
    assert once_more.calls == [(last["arch"], last["epochs"])]


def test_history_of_other_settings_is_refused(tmp_path):
    _run(tmp_path / "r", RungEvaluator(), budget=2)
    path = tmp_path / "r" / "history.jsonl"
    recs = read_jsonl(path)
    recs[0]["rung"] = 1
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    with pytest.raises(UserError, match="at rung 1 but the search now asks"):
        _run(tmp_path / "r", RungEvaluator(), budget=3)


def test_an_evaluator_without_fidelity_and_a_budget_below_the_initial_sample_are_refused(tmp_path):
    with pytest.raises(UserError, match="takes no fidelity argument"):
        run_search(space=SPACE, strategy=get_strategy("random", SPACE), evaluator=lambda a: Result(1.0),
                   budget=Budget(queries=3), out_dir=tmp_path / "x", config={}, multi_fidelity=MF)
    needy = Recorder(SPACE)
    needy.min_queries = 50  # an initial sample of 50 candidates at 1 epoch > 5 x 9 candidate-epochs
    with pytest.raises(UserError, match="initial sample"):
        run_search(space=SPACE, strategy=needy, evaluator=RungEvaluator(), budget=Budget(queries=5),
                   out_dir=tmp_path / "x", config={}, multi_fidelity=MF)
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_ray_executor_gives_the_serial_history(tmp_path):
    ray = pytest.importorskip("ray")
    from nascore.executors import get_executor

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import test modules
    serial = _run(tmp_path / "serial", RungEvaluator(), budget=4, batch_size=2)
    ex = get_executor("ray", num_cpus=2)
    try:
        par = _run(tmp_path / "ray", RungEvaluator(), budget=4, executor=ex, batch_size=2)
    finally:
        ex.close()

    def key(p):
        return sorted((r["i"], r["arch"], r["rung"], r["score"]) for r in read_jsonl(p / "history.jsonl"))
    assert key(tmp_path / "ray") == key(tmp_path / "serial")
    assert par["best"] == serial["best"] and par["multi_fidelity"]["candidate_epochs"] == \
        serial["multi_fidelity"]["candidate_epochs"]


# --------------------------------------------------------------------------- nascore search


def test_nascore_search_multi_fidelity_reads_the_tables_epoch_columns(synthetic_nb201_table, tmp_path, capsys):
    from nascore.cli import main as cli

    data = str(synthetic_nb201_table.parent)
    out = tmp_path / "mf"
    rc = cli(["search", "--space", "nb201", "--strategy", "random", "--budget", "5", "--seeds", "0-1", "--data", data,
              "--output", str(out), "--multi-fidelity", "--eta", "2", "--quiet"])
    assert rc == 0 and "multi-fidelity rungs 12,200 (eta 2)" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["multi_fidelity"]["rungs"] == [12, 200] and summary["fidelity"] == 200
    hist = read_jsonl(out / "seed-0000" / "history.jsonl")
    assert {r["epochs"] for r in hist} == {12, 200}
    import pandas as pd

    table = pd.read_csv(synthetic_nb201_table).set_index("arch")
    for r in hist:  # each rung reads its own column, and costs its own training time
        assert r["score"] == pytest.approx(table.loc[r["arch"], f"valid_acc_{r['epochs']}"])
        want = table.loc[r["arch"], "train_seconds_200"] if r["epochs"] == 200 else \
            12 * table.loc[r["arch"], "train_seconds_per_epoch"]
        assert r["cost"] == pytest.approx(want)
    res = json.loads((out / "seed-0000" / "result.json").read_text())
    assert res["multi_fidelity"]["candidate_epochs"] >= 5 * 200 > res["multi_fidelity"]["candidate_epochs"] - 200
    assert res["best"]["rung"] == 1
    # a rung the table has no column for, and rungs without --multi-fidelity, are one-line errors
    for extra, msg in ((["--multi-fidelity", "--rungs", "9,200"], "no valid_acc_9 column"),
                       (["--rungs", "12,200"], "need --multi-fidelity"),
                       (["--multi-fidelity", "--rungs", "12,200", "--fidelity", "12"], "differs from the top rung")):
        rc = cli(["search", "--space", "nb201", "--budget", "5", "--data", data, "--output", str(tmp_path / "bad"),
                  "--quiet", *extra])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and msg in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "bad").exists()


# --------------------------------------------------------------------------- ecgnas search


def test_ecgnas_search_multi_fidelity_end_to_end(tmp_path, monkeypatch, capsys):
    from ecg_fakes import install_fake_loader
    from ecgnas.cli import main as cli
    from ecgnas.data import PrepConfig
    from ecgnas.evaluator import default_fidelity
    from ecgnas.search import ecg_search, final_schedule

    install_fake_loader(monkeypatch, per_record=40)
    kw = dict(budget=2, seed=0, prep=PrepConfig(before_s=0.1, after_s=0.2), progress=False, latency=False,
              fidelity=default_fidelity(epochs=3, samples_per_epoch=128, batch_size=64),
              final=final_schedule(epochs=1, samples_per_epoch=128, batch_size=64), baseline="none")
    res = ecg_search(tmp_path / "mf", method="random", multi_fidelity={"rungs": "1,2", "eta": 2}, **kw)
    hist = read_jsonl(tmp_path / "mf" / "search" / "history.jsonl")
    assert {r["epochs"] for r in hist} == {1, 2}
    assert all(r["metrics"]["epochs_run"] == r["epochs"] for r in hist)  # a rung trains its epochs
    mf = res["multi_fidelity"]
    assert mf["rungs"] == [1, 2] and mf["candidate_epochs"] == sum(r["epochs"] for r in hist) >= 2 * 2
    assert res["config"]["multi_fidelity"] == {"rungs": [1, 2], "eta": 2} and res["config"]["fidelity"]["epochs"] == 2
    top = [r for r in hist if r["rung"] == 1]
    assert res["best_arch"] == max(top, key=lambda r: r["score"])["arch"]
    csv = (tmp_path / "mf" / "pareto.csv").read_text().splitlines()
    assert len(csv) == 1 + mf["candidates"]  # one row per candidate, at its highest rung
    # a finished run asked again trains nothing; the supernet method refuses the option
    import ecgnas.evaluator as E

    monkeypatch.setattr(E.ECGEvaluator, "evaluate", lambda *a: pytest.fail("evaluated again"))
    assert ecg_search(tmp_path / "mf", method="random", multi_fidelity={"rungs": "1,2", "eta": 2}, **kw)["best_arch"] \
        == res["best_arch"]
    with pytest.raises(UserError, match="trains one supernet"):
        ecg_search(tmp_path / "eg", method="eg-nas", multi_fidelity=True, **kw)
    assert cli(["search", "--method", "random", "--eta", "2", "--output", str(tmp_path / "c"), "--quiet"]) == 2
    assert "need --multi-fidelity" in capsys.readouterr().err
    assert cli(["search", "--method", "random", "--multi-fidelity", "--search-epochs", "2", "--eta", "3",
                "--output", str(tmp_path / "c"), "--quiet"]) == 2
    assert "no lower rung" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()
    assert math.isfinite(res["search_val_macro_f1"])
