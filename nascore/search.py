"""Searches on tabular benchmarks over many seeds: the Python API behind ``nascore search``.

>>> summary = benchmark_search(space="nb201", dataset="cifar10", strategy="evolution",
...                            budget="100", seeds=range(5), output="runs/rea")   # doctest: +SKIP
>>> summary["test_accuracy"]                                                        # doctest: +SKIP
{'mean': 93.9, 'std': 0.3, 'n': 5}

Layout of ``output``: ``config.json`` (shared configuration), ``seed-0000/`` ... one run folder
per seed (see :mod:`nascore.run`), ``summary.json``, ``summary.md`` and ``curve.png``.
"""

from __future__ import annotations

import hashlib
from contextlib import nullcontext
from pathlib import Path
from typing import Iterable

from nascore.errors import UserError
from nascore.evaluation import TabularEvaluator
from nascore.io import atomic_write_json, atomic_write_text
from nascore.report import markdown_table, plot_curves, summarize_seeds
from nascore.run import Budget, claim_folder, run_search
from nascore.spaces import get_space
from nascore.strategies import get_strategy, strategy_params
from nascore.validate import check_seeds, parse_budget

TABULAR_SPACES = ("nb201", "nb101")


def load_table(space: str, dataset: str, data=None):
    if space == "nb201":
        from nascore.benchmarks.nb201 import NB201Table

        return NB201Table.load(dataset, data)
    if space == "nb101":
        from nascore.benchmarks.nb101 import NB101Table

        return NB101Table.load(data)
    raise UserError(f"space {space!r} has no tabular benchmark (choose from: {', '.join(TABULAR_SPACES)})")


def _file_digest(path) -> str | None:
    if path is None:
        return None
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def benchmark_search(*, space: str, strategy: str, budget: str | Budget, seeds: Iterable[int], output,
                     dataset: str = "cifar10", data=None, fidelity: int | None = None, params: dict | None = None,
                     progress: bool = True, table=None, multi_fidelity: bool = False, rungs=None,
                     eta: int = 3) -> dict:
    """Run ``strategy`` on a tabular benchmark once per seed; return the across-seed summary.

    ``multi_fidelity``: run the strategy inside asynchronous successive halving
    (:mod:`nascore.multifidelity`) whose rungs read the table's epoch columns: ``rungs`` (epochs,
    e.g. ``"12,200"`` on NAS-Bench-201, ``"4,12,36,108"`` on NAS-Bench-101; default: every epoch
    column up to the fidelity), the top rung being the search fidelity; ``eta``: the reduction
    factor. A query budget then counts full-fidelity evaluations' worth of candidate-epochs.

    Every argument is checked (space, strategy and its parameters, budget against the space and
    the strategy's initial sample, the table) before anything is written; then ``output`` is
    claimed for the whole call (:func:`nascore.run.claim_folder`: a folder of another
    configuration is refused untouched, a second process on it gets a UserError naming the
    PID of the first)."""
    space_obj = get_space(space)
    params = strategy_params(strategy, params)  # name, types and ranges checked before any file is touched
    budget = budget if isinstance(budget, Budget) else parse_budget(budget)
    seeds = check_seeds(seeds)
    if not seeds:
        raise UserError("--seeds selects no seed")
    table = table if table is not None else load_table(space, dataset, data)
    schedule = None
    if multi_fidelity:
        schedule = tabular_schedule(table, space, fidelity, rungs, eta)
        fidelity = schedule.top
    elif rungs is not None:
        raise UserError("--rungs / --eta need --multi-fidelity")
    fidelity = table.default_fidelity() if fidelity is None else int(fidelity)
    evaluator = TabularEvaluator(space_obj, table, fidelity)
    if budget.seconds is not None and not all(table.cost_column_available(f) for f in
                                              (schedule.rungs if schedule is not None else (fidelity,))):
        raise UserError(f"{table.path}: no training-time column for fidelity {fidelity} "
                        "(or one with empty cells), so the budget must count queries")
    if budget.queries is not None and space_obj.size is not None and budget.queries > space_obj.size:
        raise UserError(f"budget of {budget.queries} queries exceeds the {space} space ({space_obj.size} architectures)")
    base = {"space": space, "dataset": dataset, "strategy": strategy, "params": params, "fidelity": fidelity,
            "budget": budget.to_dict(), "table_sha256_16": _file_digest(getattr(table, "path", None))}
    if schedule is not None:  # absent without it: earlier run folders keep resuming
        base["multi_fidelity"] = schedule.to_dict()
    need = getattr(get_strategy(strategy, space_obj, seed=seeds[0], **params), "min_queries", 0)
    if schedule is not None:
        need = -(-need * schedule.rungs[0] // schedule.top)  # candidate-epochs of the initial sample, in queries
    if budget.queries is not None and budget.queries < need:
        raise UserError(f"budget of {budget.queries} queries is smaller than {strategy}'s initial sample ({need})")
    out = Path(output)
    with claim_folder(out, {**base, "seeds": seeds}):  # one writer: a second process is refused (its PID named)
        return _run_seeds(out, base, seeds, strategy, space_obj, evaluator, budget, params, table, progress, schedule)


def tabular_schedule(table, space: str, fidelity: int | None, rungs, eta: int):
    """The rung schedule of a multi-fidelity search on ``table``: ``rungs`` (text or list; default
    every epoch column of the table up to ``fidelity``), each one an epoch column of the table,
    the top one equal to ``fidelity`` when that is given."""
    from nascore.multifidelity import MultiFidelity

    have = table.fidelities()
    if rungs is None:
        top = table.default_fidelity() if fidelity is None else int(fidelity)
        rungs = [f for f in have if f <= top]
        if len(rungs) < 2:
            raise UserError(f"--multi-fidelity: the {space} table has validation columns for "
                            f"{', '.join(map(str, have))} epochs only, so there is no lower rung below {top}")
    schedule = MultiFidelity.parse(rungs, eta)
    bad = [r for r in schedule.rungs if r not in have]
    if bad:
        raise UserError(f"--rungs: the {space} table has no valid_acc_{bad[0]} column (its epoch columns: "
                        f"{', '.join(map(str, have))})")
    if fidelity is not None and int(fidelity) != schedule.top:
        raise UserError(f"--fidelity {fidelity} differs from the top rung {schedule.top}; the top rung is the "
                        "search fidelity (leave --fidelity out or make them equal)")
    return schedule


def _run_seeds(out: Path, base: dict, seeds: list, strategy: str, space_obj, evaluator, budget: Budget,
               params: dict, table, progress: bool, schedule=None) -> dict:
    """The seeds of :func:`benchmark_search` and the summary files, in the claimed folder ``out``."""
    space, dataset, fidelity = base["space"], base["dataset"], base["fidelity"]
    results = []
    prog = _progress() if progress else nullcontext()
    with prog as p:
        task = p.add_task(f"{strategy} on {space}-{dataset}", total=len(seeds)) if p else None
        for seed in seeds:
            strat = get_strategy(strategy, space_obj, seed=seed, **params)
            res = run_search(space=space_obj, strategy=strat, evaluator=evaluator, budget=budget,
                             out_dir=out / f"seed-{seed:04d}", config={**base, "seed": seed},
                             multi_fidelity=schedule)
            results.append(res)
            if p:
                p.update(task, advance=1, description=f"{strategy} on {space}-{dataset}: seed {seed} "
                         f"test {(res['best'] or {}).get('test_accuracy', float('nan')):.2f}")
    summary = {**base, "seeds": seeds, **summarize_seeds(results), "optimum": table.optimum(fidelity)}
    if schedule is not None:
        spent = [r["multi_fidelity"]["candidate_epochs"] for r in results]
        summary["multi_fidelity"] = {**schedule.to_dict(), "candidate_epochs_mean": sum(spent) / len(spent),
                                     "candidates_mean": sum(r["multi_fidelity"]["candidates"] for r in results)
                                     / len(results)}
    atomic_write_json(out / "summary.json", summary)
    atomic_write_text(out / "summary.md", markdown_table({strategy: summary}, summary["optimum"]))
    plot_curves({strategy: results}, out / "curve.png", title=f"{space} {dataset}, fidelity {fidelity}",
                optimum=summary["optimum"]["test_accuracy"])
    return summary


def _progress():
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
