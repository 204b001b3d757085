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

import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from nascore.errors import UserError
from nascore.evaluation import Result, is_score
from nascore.executors import SerialExecutor
from nascore.io import append_jsonl, atomic_write_json, read_json, read_jsonl
from nascore.lock import busy_error, folder_lock, is_lock_file
from nascore.validate import Budget  # noqa: F401  (defined there, beside parse_budget; re-exported)


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


def check_config(out_dir: Path, config: dict, what: str = "output folder",
                 identity: Callable[[dict], dict] | None = None) -> bool:
    """Refuse (UserError) a folder that belongs to another configuration; write nothing.

    The one folder-reuse rule of both command lines (``nascore`` run folders, ``ecgnas search``,
    ``ecgnas train`` through :func:`ecgnas.run.check_output`). Returns True when
    ``out_dir/config.json`` already records ``config`` (a resume), False when the folder is
    missing or empty (lock files aside). A file where the folder should be, a non-empty folder
    without ``config.json``, an unreadable ``config.json`` and one whose configuration differs are
    refused. ``identity``: the part of a configuration that defines the run (applied to both the
    stored and the requested one; default: all of it), so runtime settings such as a device or a
    data path may change between a run and its resume. Call it before taking the folder's lock
    (so a refused folder is left untouched) and again under the lock (another process may have
    written in between), as :func:`claim_folder` does.

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> check_config(d, {"seed": 0})
    False
    >>> _ = (d / "config.json").write_text('{"seed": 0, "device": "cpu"}')
    >>> check_config(d, {"seed": 0, "device": "cuda"}, identity=lambda c: {"seed": c.get("seed")})
    True
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
        if not isinstance(old, dict):
            raise UserError(f"{path} does not hold a configuration (a JSON object); refusing to reuse {out_dir}")
        if identity is not None:
            old, config = identity(old), identity(config)
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
               executor=None, batch_size: int = 1, on_result: Callable | None = None,
               multi_fidelity=None) -> dict:
    """Run (or resume) one search in ``out_dir`` and return the ``result.json`` dict.

    Everything is validated first; then the folder is claimed (:func:`claim_folder`: refused if
    it belongs to another configuration, locked against a second writer -- a UserError naming
    the holder's PID -- for the whole run). A torn last history line is cut off and its
    evaluation redone.

    ``multi_fidelity``: a :class:`nascore.multifidelity.MultiFidelity` rung schedule: the
    strategy runs inside asynchronous successive halving (:class:`nascore.multifidelity.ASHA`),
    the evaluator is called as ``evaluator(arch, fidelity=epochs)``, each history line is one
    (candidate, rung) evaluation with ``"rung"`` and ``"epochs"``, a budget of queries counts
    full-fidelity evaluations' worth of candidate-epochs, and ``result.json`` gains
    ``multi_fidelity`` (rungs, η, candidate-epochs spent and budgeted, evaluations per rung,
    candidates, the evaluations' seconds -- wall seconds for trained candidates, simulated for
    a table -- and this call's wall seconds); ``best`` is the best score at the highest rung reached. Put the
    schedule in ``config`` too, so that a folder is not resumed under another one."""
    out_dir = Path(out_dir)
    need = getattr(strategy, "min_queries", 0)
    if multi_fidelity is not None:
        from nascore.multifidelity import check_evaluator

        check_evaluator(evaluator)
        epochs = None if budget.queries is None else budget.queries * multi_fidelity.top
        if epochs is not None and epochs < need * multi_fidelity.rungs[0]:
            raise UserError(f"budget of {budget.queries} queries ({epochs} candidate-epochs) cannot pay for the "
                            f"{strategy.name} strategy's initial sample ({need} candidates at "
                            f"{multi_fidelity.rungs[0]} epochs)")
    elif budget.queries is not None and budget.queries < need:
        raise UserError(f"budget of {budget.queries} queries is smaller than the {strategy.name} strategy's "
                        f"initial sample ({need})")
    with claim_folder(out_dir, config):
        if multi_fidelity is not None:
            return _run_multi_fidelity(space, strategy, evaluator, budget, out_dir, config,
                                       executor or SerialExecutor(), batch_size, on_result, multi_fidelity)
        return _run_locked(space, strategy, evaluator, budget, out_dir, config, executor or SerialExecutor(),
                           batch_size, on_result)


def _run_locked(space, strategy, evaluator, budget, out_dir: Path, config, executor, batch_size, on_result) -> dict:
    """The run loop of :func:`run_search`, under the folder's lock with ``config.json`` in place."""
    hist_path = out_dir / "history.jsonl"
    by_index = _read_history(hist_path)
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
        results = _replay_or_evaluate(hist_path, by_index, n_asked, strings, None, executor, evaluator,
                                      archs, t0)
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


def _replay_or_evaluate(hist_path: Path, by_index: dict[int, dict], first: int, strings: list[str],
                        rungs: list[tuple[int, int]] | None, executor, call, args: list, t0: float) -> list:
    """The results of one batch of asks numbered ``first, first + 1, ...`` (``strings``: their
    architectures; ``rungs``: ``(rung, epochs)`` per ask in a multi-fidelity run, else None).

    An ask already in the history (same index, architecture and rung) is replayed; the others
    are evaluated by ``call(args[j])`` through ``executor``, and each result is appended to the
    history as soon as it arrives, so a crash loses at most the evaluations in flight. A recorded
    ask that differs from the one made now is an error (the folder was written by other code)."""
    results: list[Result | None] = [None] * len(strings)
    todo = []
    for j, s in enumerate(strings):
        rec = by_index.get(first + j)
        if rec is None:
            todo.append(j)
            continue
        rung = None if rungs is None else rungs[j][0]
        if rec["arch"] != s or rec.get("rung") != rung:
            was = "" if rungs is None else f" at rung {rec.get('rung')}"
            now = "" if rungs is None else f" at rung {rung}"
            raise UserError(f"{hist_path}: evaluation {first + j} recorded {rec['arch']!r}{was} but the search now "
                            f"asks for {s!r}{now}; the folder was written with other code or settings")
        results[j] = Result.from_dict(rec)
    for m, res in executor.map(call, [args[j] for j in todo]):
        j = todo[m]
        results[j] = res
        fidelity = {} if rungs is None else {"rung": rungs[j][0], "epochs": rungs[j][1]}
        rec = {"i": first + j, "arch": strings[j], **fidelity, **res.to_dict(),
               "wall": round(time.perf_counter() - t0, 4)}
        append_jsonl(hist_path, [rec])
        by_index[rec["i"]] = rec
    return results


def _read_history(hist_path: Path) -> dict[int, dict]:
    """The history's records by ask index (a torn last line cut off: the caller holds the lock)."""
    history = read_jsonl(hist_path, repair=True)
    by_index = {rec["i"]: rec for rec in history}
    if len(by_index) != len(history):
        raise UserError(f"{hist_path}: an ask index appears twice (edited by hand, or written by two runs at once?)")
    return by_index


def _run_multi_fidelity(space, strategy, evaluator, budget: Budget, out_dir: Path, config, executor, batch_size,
                        on_result, schedule) -> dict:
    """The run loop of :func:`run_search` with a multi-fidelity ``schedule`` (under the lock).

    Jobs ``(arch, rung)`` come from :class:`~nascore.multifidelity.ASHA`, up to ``batch_size``
    at a time while the candidate-epochs spent and in flight stay below the budget; each
    finished job is appended to the history (fsynced) before the next result is awaited, and the
    batch is told to the scheduler in ask order. Resume = replay, as in the single-fidelity loop:
    a recorded (index, arch, rung) is told back instead of evaluated."""
    from nascore.multifidelity import ASHA, AtFidelity

    hist_path = out_dir / "history.jsonl"
    by_index = _read_history(hist_path)
    sched = ASHA(strategy, space, schedule)
    call = AtFidelity(evaluator)
    epoch_budget = None if budget.queries is None else budget.queries * schedule.top
    done: list[dict] = []
    n_asked, cum_cost, spent = 0, 0.0, 0
    t0 = time.perf_counter()

    def exhausted(pending: int = 0) -> bool:
        return ((epoch_budget is not None and spent + pending >= epoch_budget)
                or (budget.seconds is not None and cum_cost >= budget.seconds))

    while not exhausted():
        jobs: list[tuple] = []
        pending = 0
        while len(jobs) < batch_size and not exhausted(pending):
            arch, k = sched.ask()
            jobs.append((arch, k))
            pending += schedule.rungs[k]
        strings = [space.to_string(a) for a, _ in jobs]
        rungs = [(k, schedule.rungs[k]) for _, k in jobs]
        results = _replay_or_evaluate(hist_path, by_index, n_asked, strings, rungs, executor, call,
                                      [(a, epochs) for (a, _), (_, epochs) in zip(jobs, rungs)], t0)
        for j in range(len(jobs)):
            rec = by_index[n_asked + j]
            cum_cost += float(rec["cost"])
            spent += schedule.rungs[jobs[j][1]]
            done.append({**rec, "cum_cost": cum_cost})
            if on_result is not None:
                on_result(done[-1])
        n_asked += len(jobs)
        sched.tell(jobs, results)
        atomic_write_json(out_dir / "result.json", summarize(done, config, finished=False,
                                                             schedule=schedule, epoch_budget=epoch_budget))
    result = summarize(done, config, finished=True, schedule=schedule, epoch_budget=epoch_budget)
    result["wall_seconds"] = round(time.perf_counter() - t0, 4)
    result["multi_fidelity"]["wall_seconds_this_call"] = result["wall_seconds"]
    atomic_write_json(out_dir / "result.json", result)
    return result


def summarize(done: list[dict], config: dict, finished: bool, schedule=None, epoch_budget: int | None = None) -> dict:
    """The ``result.json`` dict of the history records ``done`` (in ask order, with ``cum_cost``).

    ``best`` is the record with the highest finite score (first found on ties); failed
    evaluations (score ``null``/NaN) count as queries and cost but are never the best. While no
    evaluation has succeeded, ``best`` is None and the trajectory's best columns are ``null``.
    """
    best = None
    trajectory = []
    for rec in done:  # multi-fidelity: a higher rung beats any score of a lower one
        if is_score(rec["score"]) and (best is None or (rec.get("rung", 0), rec["score"])
                                       > (best.get("rung", 0), best["score"])):
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
    if schedule is not None:
        per_rung = [sum(1 for r in done if r.get("rung") == k) for k in range(len(schedule.rungs))]
        out["multi_fidelity"] = {**schedule.to_dict(), "candidate_epochs": sum(int(r["epochs"]) for r in done),
                                 "epoch_budget": epoch_budget, "evaluations_per_rung": per_rung,
                                 "candidates": per_rung[0], "best_rung": None if best is None else best.get("rung"),
                                 "evaluation_seconds": round(done[-1]["cum_cost"], 3) if done else 0.0}
        out["best"] = None if best is None else {**out["best"], "rung": best.get("rung"), "epochs": best.get("epochs")}
    return out
