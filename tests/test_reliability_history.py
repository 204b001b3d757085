"""Issue 16 (4): a history torn at any byte of its last record -- even just its final newline --
is recognised, cut off, and the record re-evaluated; appends always start on a fresh line."""

from __future__ import annotations

import pytest

from nascore.errors import UserError
from nascore.evaluation import Result
from nascore.io import append_jsonl, read_jsonl
from nascore.run import Budget, run_search
from nascore.spaces.nb201 import NB201Space
from nascore.strategies import get_strategy

SPACE = NB201Space()
BUDGET = 6
KILL_AFTER = 3


class Crash(Exception):
    pass


def evaluate(arch) -> Result:
    """A deterministic synthetic landscape (cost included, so cum_cost is checked too)."""
    s = SPACE.to_string(arch)
    return Result(score=float(s.count("conv_3x3") * 2 + s.count("conv_1x1")), metrics={"n": len(s)},
                  cost=10.0 + s.count("conv"))


def run(out, evaluator=evaluate, batch_size=1):
    return run_search(space=SPACE, strategy=get_strategy("evolution", SPACE, seed=7, population=4, sample_size=2),
                      evaluator=evaluator, budget=Budget(queries=BUDGET), out_dir=out, config={"seed": 7},
                      batch_size=batch_size)


def history(out) -> list[dict]:
    """The history without wall-clock times (the only field a resume may change)."""
    return [{k: v for k, v in rec.items() if k != "wall"} for rec in read_jsonl(out / "history.jsonl")]


def killed_run(out):
    """A run killed while evaluating its 4th architecture: three complete history lines."""
    calls = []

    def dying(arch):
        if len(calls) == KILL_AFTER:
            raise Crash()
        calls.append(arch)
        return evaluate(arch)

    with pytest.raises(Crash):
        run(out, dying)
    return (out / "history.jsonl").read_bytes()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    run(out)
    return history(out)


def test_every_tear_offset_in_the_last_record_resumes_to_the_uninterrupted_history(reference, tmp_path):
    raw = killed_run(tmp_path / "probe")
    start = raw.rstrip(b"\n").rfind(b"\n") + 1  # first byte of the last record
    assert raw.endswith(b"\n") and 0 < start < len(raw)
    # every cut from the record's first byte to just after its newline (len(raw): nothing torn)
    for cut in range(start, len(raw) + 1):
        out = tmp_path / f"cut-{cut}"
        out.mkdir()
        (out / "config.json").write_bytes((tmp_path / "probe" / "config.json").read_bytes())
        (out / "history.jsonl").write_bytes(raw[:cut])
        evaluated = []

        def counting(arch):
            evaluated.append(SPACE.to_string(arch))
            return evaluate(arch)

        res = run(out, counting)
        assert history(out) == reference, f"tear at byte {cut - start} of the last record"
        assert res["queries"] == BUDGET
        text = (out / "history.jsonl").read_bytes()
        assert text.endswith(b"\n") and text.count(b"\n") == BUDGET  # one record a line, none glued
        # complete records are replayed, the torn one (if any) and the rest evaluated
        kept = KILL_AFTER if cut == len(raw) else KILL_AFTER - 1
        assert len(evaluated) == BUDGET - kept, f"tear at byte {cut - start}"


def test_a_history_missing_only_its_final_newline_is_redone_not_glued(reference, tmp_path):
    out = tmp_path / "r"
    run(out)
    path = out / "history.jsonl"
    path.write_bytes(path.read_bytes()[:-1])  # the exact tear of the issue
    assert len(read_jsonl(path)) == BUDGET - 1  # a final line without its newline is torn
    run(out)
    assert history(out) == reference
    run(out)  # and the folder keeps resuming (the glued file used to be refused here)
    assert history(out) == reference


def test_repair_truncates_to_the_last_complete_line_and_plain_reads_do_not_touch_the_file(tmp_path):
    path = tmp_path / "h.jsonl"
    append_jsonl(path, [{"i": 0}, {"i": 1}])
    path.write_bytes(path.read_bytes() + b'{"i": 2}')
    before = path.read_bytes()
    assert read_jsonl(path) == [{"i": 0}, {"i": 1}]
    assert path.read_bytes() == before  # a reader never truncates
    assert read_jsonl(path, repair=True) == [{"i": 0}, {"i": 1}]
    assert path.read_bytes() == b'{"i": 0}\n{"i": 1}\n'


@pytest.mark.parametrize("tail", [b'{"i": 2}', b'{"i"', b"{", b'\xe2\x82'])
def test_append_starts_on_a_fresh_line_after_a_torn_tail(tail, tmp_path):
    path = tmp_path / "h.jsonl"
    append_jsonl(path, [{"i": 0}])
    path.write_bytes(path.read_bytes() + tail)
    append_jsonl(path, [{"i": 1}, {"i": 2}])
    assert path.read_bytes() == b'{"i": 0}\n{"i": 1}\n{"i": 2}\n'
    path.write_bytes(b'{"i": 9')  # a file that is nothing but a torn line
    append_jsonl(path, [{"i": 0}])
    assert read_jsonl(path) == [{"i": 0}]


def test_a_bad_line_before_the_last_is_corruption_not_a_tear(tmp_path):
    path = tmp_path / "h.jsonl"
    path.write_bytes(b'{"i": 0}{"i": 1}\n{"i": 2}\n')
    with pytest.raises(UserError, match="line 1"):
        read_jsonl(path, repair=True)
    assert path.read_bytes() == b'{"i": 0}{"i": 1}\n{"i": 2}\n'  # left as it is for a human to look at


def test_batched_run_with_a_torn_record_resumes_to_the_same_history(tmp_path):
    full = tmp_path / "full"
    run(full, batch_size=4)
    torn = tmp_path / "torn"
    run(torn, batch_size=4)
    path = torn / "history.jsonl"
    raw = path.read_bytes()
    lines = raw.splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:5]) + lines[5][:7])  # kill in the second batch
    run(torn, batch_size=4)
    assert history(torn) == history(full)
