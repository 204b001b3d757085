"""Run folders: one search, written so that a crash loses nothing and a rerun resumes.

A run folder holds

* ``config.json`` — the configuration that defines the run (written first, atomically). A folder
  whose ``config.json`` differs from the requested configuration is refused: nothing is
  overwritten.
* ``history.jsonl`` — append-only, one line per finished evaluation, written (and fsynced)
  before the strategy hears of the result: ``{"i": ask index, "arch": canonical string,
  "score", "metrics", "cost", "cum_cost", "wall"}``; a failed evaluation (a NaN or infinite
  score) has ``"score": null``, read back as NaN (:class:`~nascore.evaluation.Result`).
* ``result.json`` — the summary, rewritten atomically after every batch: ``seed``, ``queries``,
  ``simulated_seconds``, ``best`` = ``{"arch", "score", **metrics}`` (for benchmarks that
  includes ``valid_accuracy`` and ``test_accuracy`` in percent; best = highest finite score, i.e.
  validation accuracy, first found on ties; None while every evaluation failed), ``trajectory`` and ``finished``.
* ``.nascore.lock`` / ``.nascore.pid`` — the folder's lock (:mod:`nascore.lock`) and its holder's
  PID while a run writes it: a second process running the same folder is refused (UserError
  naming that PID, exit status 2) instead of interleaving its writes.

Resume = replay. A fresh strategy with the same seed is asked again; while its asks are found in
the history, the recorded results are told back instead of evaluating (and checked: a history
that the strategy does not reproduce is an error, not a silent mix). The first ask not in the
history is evaluated for real. Strategies are deterministic given their seed and what they were
told, so a resumed run ends exactly where an uninterrupted one would.

>>> from nascore.spaces import get_space
>>> from nascore.strategies import get_strategy
>>> import tempfile
>>> space = get_space("nb201")
>>> ev = lambda a: Result(score=float(space.to_string(a).count("conv")))
>>> res = run_search(space=space, strategy=get_strategy("random", space, seed=0), evaluator=ev,
...                  budget=Budget(queries=5), out_dir=tempfile.mkdtemp(), config={"seed": 0})
>>> res["queries"]
5
"""

from __future__ import annotations

import math
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from nascore.errors import UserError
from nascore.evaluation import Result, is_score
from nascore.executors import SerialExecutor
from nascore.io import append_jsonl, atomic_write_json, read_json, read_jsonl
from nascore.lock import busy_error, folder_lock, is_lock_file
from nascore.validate import MAX_BUDGET_SECONDS, MAX_QUERIES


@dataclass(frozen=True)
class Budget:
    """Stop after ``queries`` evaluations or once ``seconds`` of (simulated) cost are spent,
    whichever comes first. The evaluation that crosses a seconds budget is kept and counted."""

    queries: int | None = None
    seconds: float | None = None

    def __post_init__(self):
        if self.queries is None and self.seconds is None:
            raise UserError("a budget needs queries or seconds")
        if self.queries is not None and self.queries <= 0:
            raise UserError(f"budget must be positive, got {self.queries} queries")
        if self.seconds is not None and not (self.seconds > 0 and math.isfinite(self.seconds)):
            raise UserError(f"budget must be positive, got {self.seconds} seconds")

    @classmethod
    def parse(cls, text: str | int) -> "Budget":
        """``"100"`` -> 100 queries; ``"20000s"``, ``"90m"``, ``"5.5h"`` -> simulated seconds.

        Bounded like :func:`nascore.validate.parse_budget` (at most
        :data:`~nascore.validate.MAX_QUERIES` queries or :data:`~nascore.validate.MAX_BUDGET_SECONDS`
        seconds); a non-finite or overflowing number (``1e999``) is a one-line UserError."""
        s = str(text).strip().lower()
        m = re.fullmatch(r"([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*(s|m|h)?", s)
        if not m:
            raise UserError(f"--budget: cannot read {text!r} (use a query count like 100, or seconds like 20000s / 6h)")
        value, unit = float(m.group(1)), m.group(2)
        if not math.isfinite(value):  # "1e999": int(inf) would be an OverflowError
            raise UserError(f"--budget: {_short_repr(text)} is not a finite number")
        if unit is None:
            if value != int(value):
                raise UserError(f"--budget: a query count must be a whole number, got {text!r}")
            if value > MAX_QUERIES:
                raise UserError(f"--budget: {_short_repr(text)} is more than the {MAX_QUERIES:,} queries allowed")
            return cls(queries=int(value))
        seconds = value * {"s": 1, "m": 60, "h": 3600}[unit]
        if seconds > MAX_BUDGET_SECONDS:
            raise UserError(f"--budget: {_short_repr(text)} is more than the {MAX_BUDGET_SECONDS:g} "
                            "simulated seconds allowed")
        return cls(seconds=seconds)

    def exhausted(self, queries: int, seconds: float) -> bool:
        return ((self.queries is not None and queries >= self.queries)
                or (self.seconds is not None and seconds >= self.seconds))

    def remaining_queries(self, queries: int) -> int | None:
        return None if self.queries is None else self.queries - queries

    def to_dict(self) -> dict:
        return {"queries": self.queries, "seconds": self.seconds}


def _short_repr(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def config_diff(old, new, prefix: str = "") -> list[str]:
    """The differing keys of two configurations, nested dicts followed down to the differing
    leaves (dotted names), each as ``"key: OLD there, NEW now"`` with long values shortened, so a
    refusal names what changed instead of printing two whole dicts.

    >>> config_diff({"seed": 0, "final": {"epochs": 1, "lr": 0.1}}, {"seed": 0, "final": {"epochs": 2, "lr": 0.1}})
    ['final.epochs: 1 there, 2 now']
    >>> config_diff({"a": 1}, {"b": 1})
    ['a: 1 there, (missing) now', 'b: (missing) there, 1 now']
    """
    out = []
    missing = object()
    for k in sorted(set(old) | set(new), key=str):
        a, b = old.get(k, missing), new.get(k, missing)
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_diff(a, b, f"{prefix}{k}.")
        elif a != b:
            shown = ["(missing)" if v is missing else _short_repr(v) for v in (a, b)]
            out.append(f"{prefix}{k}: {shown[0]} there, {shown[1]} now")
    return out


def check_config(out_dir: Path, config: dict, what: str = "output folder") -> bool:
    """Refuse (UserError) a folder that belongs to another configuration; write nothing.

    Returns True when ``out_dir/config.json`` already records ``config`` (a resume), False when
    the folder is missing or empty (lock files aside). A file where the folder should be, a
    non-empty folder without ``config.json`` and one whose ``config.json`` differs are refused.
    Call it before taking the folder's lock (so a refused folder is left untouched) and again
    under the lock (another process may have written in between), as :func:`claim_folder` does.
    """
    out_dir = Path(out_dir)
    path = out_dir / "config.json"
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"{what} {out_dir} exists and is not a folder; choose another --output")
    if path.exists():
        try:
            old = read_json(path)
        except (ValueError, OSError):
            raise UserError(f"{path} is not valid JSON; refusing to reuse {out_dir}") from None
        if old != config:
            diffs = config_diff(old, config)
            shown = "; ".join(diffs[:3]) + (f"; {len(diffs) - 3} more" if len(diffs) > 3 else "")
            raise UserError(f"{what} {out_dir} belongs to a different configuration ({shown}); "
                            "choose another --output")
        return True
    if out_dir.is_dir() and any(p.name != ".DS_Store" and not is_lock_file(p.name) for p in out_dir.iterdir()):
        raise UserError(f"{what} {out_dir} is not empty and holds no config.json; choose another --output")
    return False


def check_or_write_config(out_dir: Path, config: dict) -> None:
    """Refuse a folder that belongs to another configuration; otherwise record ours.

    Takes no lock: callers that write the folder afterwards hold :func:`nascore.lock.folder_lock`
    around it (see :func:`claim_folder`)."""
    if not check_config(out_dir, config):
        atomic_write_json(Path(out_dir) / "config.json", config)


@contextmanager
def claim_folder(out_dir, config: dict, *, what: str = "output folder", wait: bool = False,
                 on_wait: Callable[[str], None] | None = None) -> Iterator[Path]:
    """Check, lock and record a run folder for the ``with`` block: the one entry to writing it.

    1. :func:`check_config` without the lock: a foreign folder is refused before anything is
       written (not even the lock file) -- unless another process holds the folder now, whose
       half-written files are no reason to refuse: that is reported as the folder being in use
       (with ``wait``: waited for, then checked again under the lock);
    2. :func:`nascore.lock.folder_lock` (non-blocking: a second writer gets a UserError with the
       holder's PID; ``wait``/``on_wait`` as there);
    3. under the lock, the check again and ``config.json`` written if new.

    Validate every argument before entering it: a refusal after this point leaves a folder.
    """
    out_dir = Path(out_dir)
    try:
        check_config(out_dir, config, what)
    except UserError as refusal:  # seen without the lock: a run in progress may be mid-write
        busy = busy_error(out_dir, what)
        if busy is not None and not wait:
            raise busy from None
        if busy is None:
            raise refusal
    with folder_lock(out_dir, what=what, wait=wait, on_wait=on_wait):
        check_or_write_config(out_dir, config)
        yield out_dir


def run_search(*, space, strategy, evaluator: Callable, budget: Budget, out_dir, config: dict,
               executor=None, batch_size: int = 1, on_result: Callable | None = None) -> dict:
    """Run (or resume) one search in ``out_dir`` and return the ``result.json`` dict.

    Everything is validated first; then the folder is claimed (:func:`claim_folder`: refused if
    it belongs to another configuration, locked against a second writer -- a UserError naming
    the holder's PID -- for the whole run). A torn last history line is cut off and its
    evaluation redone."""
    out_dir = Path(out_dir)
    need = getattr(strategy, "min_queries", 0)
    if budget.queries is not None and budget.queries < need:
        raise UserError(f"budget of {budget.queries} queries is smaller than the {strategy.name} strategy's "
                        f"initial sample ({need})")
    with claim_folder(out_dir, config):
        return _run_locked(space, strategy, evaluator, budget, out_dir, config, executor or SerialExecutor(),
                           batch_size, on_result)


def _run_locked(space, strategy, evaluator, budget, out_dir: Path, config, executor, batch_size, on_result) -> dict:
    """The run loop of :func:`run_search`, under the folder's lock with ``config.json`` in place."""
    hist_path = out_dir / "history.jsonl"
    history = read_jsonl(hist_path, repair=True)
    by_index = {rec["i"]: rec for rec in history}
    if len(by_index) != len(history):
        raise UserError(f"{hist_path}: an ask index appears twice (edited by hand, or written by two runs at once?)")
    done: list[dict] = []          # records in ask order, as the strategy saw them
    n_asked = 0
    cum_cost = 0.0
    t0 = time.perf_counter()

    while not budget.exhausted(len(done), cum_cost):
        n = batch_size
        rem = budget.remaining_queries(len(done))
        if rem is not None:
            n = min(n, rem)
        archs = strategy.ask(n)
        strings = [space.to_string(a) for a in archs]
        results: list[Result | None] = [None] * len(archs)
        todo = []
        for k, s in enumerate(strings):
            rec = by_index.get(n_asked + k)
            if rec is None:
                todo.append(k)
                continue
            if rec["arch"] != s:
                raise UserError(f"{hist_path}: evaluation {n_asked + k} recorded {rec['arch']!r} but the strategy "
                                f"now proposes {s!r}; the folder was written with other code or settings")
            results[k] = Result.from_dict(rec)
        for j, res in executor.map(evaluator, [archs[k] for k in todo]):
            k = todo[j]
            results[k] = res
            rec = {"i": n_asked + k, "arch": strings[k], **res.to_dict(),
                   "wall": round(time.perf_counter() - t0, 4)}
            append_jsonl(hist_path, [rec])
            by_index[rec["i"]] = rec
        for k in range(len(archs)):
            rec = by_index[n_asked + k]
            cum_cost += float(rec["cost"])
            done.append({**rec, "cum_cost": cum_cost})
            if on_result is not None:
                on_result(done[-1])
        n_asked += len(archs)
        strategy.tell(archs, results)
        atomic_write_json(out_dir / "result.json", summarize(done, config, finished=False))
    result = summarize(done, config, finished=True)
    result["wall_seconds"] = round(time.perf_counter() - t0, 4)
    atomic_write_json(out_dir / "result.json", result)
    return result


def summarize(done: list[dict], config: dict, finished: bool) -> dict:
    """The ``result.json`` dict of the history records ``done`` (in ask order, with ``cum_cost``).

    ``best`` is the record with the highest finite score (first found on ties); failed
    evaluations (score ``null``/NaN) count as queries and cost but are never the best. While no
    evaluation has succeeded, ``best`` is None and the trajectory's best columns are ``null``.
    """
    best = None
    trajectory = []
    for rec in done:
        if is_score(rec["score"]) and (best is None or rec["score"] > best["score"]):
            best = rec
        m = {} if best is None else best.get("metrics", {})
        trajectory.append([len(trajectory) + 1, round(rec["cum_cost"], 3), None if best is None else best["score"],
                           m.get("test_accuracy")])
    out = {
        "seed": config.get("seed"),
        "queries": len(done),
        "simulated_seconds": round(done[-1]["cum_cost"], 3) if done else 0.0,
        "best": None if best is None else {"arch": best["arch"], "score": best["score"], **best.get("metrics", {})},
        "config": config,
        "finished": finished,
        "trajectory_columns": ["queries", "simulated_seconds", "best_score", "test_accuracy_of_best"],
        "trajectory": trajectory,
    }
    return out
