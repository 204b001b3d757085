"""Searches that *train* every candidate on an image dataset: the API behind
``nascore search --evaluator train``.

The same run loop, run folders, executors, multi-fidelity wrapper and resume as the table
searches (:mod:`nascore.search`, :mod:`nascore.run`); only the evaluator differs: each candidate
is trained by :class:`nascore.train_evaluator.ImageTrainEvaluator` on ``data`` and scored on a
held-out split of its training images. When the space has a benchmark table for ``dataset``
(NAS-Bench-201 on CIFAR-10), each result also carries the table's 200-epoch test accuracy
(``test_accuracy``) beside the trained validation accuracy, so ``result.json``'s ``best`` shows
both; pass ``table=None`` (``--no-table``) for a dataset of your own.

>>> s = train_search(space="nb201", strategy="dcl-enas", budget="30", seeds=[0], output="runs/img",
...                  data="/data/cifar10-jpeg", recipe=Recipe(epochs=3))          # doctest: +SKIP

Layout of ``output``: ``config.json``, ``seed-XXXX/`` (``history.jsonl``, ``result.json``),
``summary.json``, ``summary.md``; the evaluator's cache in ``cache_dir`` (default
``output/eval-cache``; share one between searches of the same data and recipe, so a cell is
trained once).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping

from nascore.errors import DataMissingError, UserError
from nascore.io import atomic_write_json, atomic_write_text
from nascore.report import markdown_table, summarize_seeds
from nascore.run import Budget, claim_folder, run_search
from nascore.spaces import get_space
from nascore.strategies import get_strategy, strategy_params
from nascore.train_evaluator import ImageTrainEvaluator, Recipe
from nascore.validate import check_seeds, parse_budget

AUTO = "auto"


def find_table(space: str, dataset: str, table_data=None, table=AUTO):
    """The benchmark table to report beside trained accuracies: ``table=AUTO`` loads the space's
    table for ``dataset`` when one is found (None when the space has none or it is missing), None
    disables, an object is used as is."""
    if table is None or table is not AUTO:
        return table
    from nascore.search import TABULAR_SPACES, load_table

    if space not in TABULAR_SPACES:
        return None
    try:
        return load_table(space, dataset, table_data)
    except (DataMissingError, UserError):
        if table_data is not None:
            raise
        return None


def train_search(*, space: str, strategy: str, budget: str | Budget, seeds: Iterable[int], output, data,
                 recipe: Recipe | None = None, dataset: str = "cifar10", table=AUTO, table_data=None,
                 params: dict | None = None, eval_seed: int = 0, cache_dir=None, device: str = "cpu",
                 threads: int = 1, executor: str = "serial", executor_options: Mapping | None = None,
                 batch_size: int = 1, multi_fidelity: bool = False, rungs=None, eta: int = 3,
                 progress: bool = True) -> dict:
    """Run ``strategy`` with trained candidates once per seed; return the across-seed summary.

    ``recipe``: how each candidate trains (:class:`Recipe`; its ``epochs`` is the search fidelity);
    ``multi_fidelity``: ASHA rungs over training epochs (``rungs``, default a ladder of ratio
    ``eta`` ending at the recipe's epochs; the top rung replaces them); ``executor``: ``"serial"``
    or ``"ray"`` (``executor_options`` go to :class:`nascore.executors.RayExecutor`), with
    ``batch_size`` candidates in flight. A budget counts queries (candidates at full fidelity) or
    real seconds (``"2h"``). Every argument is checked before the output folder is claimed."""
    from nascore.executors import get_executor

    space_obj = get_space(space)
    params = strategy_params(strategy, params)
    budget = budget if isinstance(budget, Budget) else parse_budget(budget)
    seeds = check_seeds(seeds)
    if not seeds:
        raise UserError("--seeds selects no seed")
    recipe = recipe if recipe is not None else Recipe()
    schedule = None
    if multi_fidelity:
        from dataclasses import replace

        from nascore.multifidelity import MultiFidelity

        schedule = MultiFidelity.parse(rungs, eta, top=recipe.epochs)
        recipe = replace(recipe, epochs=schedule.top)
    elif rungs is not None:
        raise UserError("--rungs / --eta need --multi-fidelity")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise UserError(f"--parallel: need a positive integer, got {batch_size!r}")
    table = find_table(space, dataset, table_data, table)
    out = Path(output)
    evaluator = ImageTrainEvaluator(space_obj, data, recipe, seed=eval_seed, table=table, device=device,
                                    threads=threads, cache_dir=cache_dir if cache_dir is not None else out / "eval-cache")
    if budget.queries is not None and space_obj.size is not None and budget.queries > space_obj.size:
        raise UserError(f"budget of {budget.queries} queries exceeds the {space} space ({space_obj.size} architectures)")
    need = getattr(get_strategy(strategy, space_obj, seed=seeds[0], **params), "min_queries", 0)
    if schedule is not None:
        need = -(-need * schedule.rungs[0] // schedule.top)
    if budget.queries is not None and budget.queries < need:
        raise UserError(f"budget of {budget.queries} queries is smaller than {strategy}'s initial sample ({need})")
    base = {"space": space, "dataset": dataset, "strategy": strategy, "params": params, "evaluator": "train",
            "train": evaluator.identity(), "fidelity": recipe.epochs, "budget": budget.to_dict(),
            "table": None if table is None else str(getattr(table, "path", "given"))}
    if schedule is not None:
        base["multi_fidelity"] = schedule.to_dict()
    evaluator.prepared()  # read (and check) the images now: a bad --data is refused before the folder is written
    ex = get_executor(executor, **dict(executor_options or {}))
    try:
        with claim_folder(out, {**base, "seeds": seeds}):
            results = []
            for seed in seeds:
                strat = get_strategy(strategy, space_obj, seed=seed, **params)
                res = run_search(space=space_obj, strategy=strat, evaluator=evaluator, budget=budget,
                                 out_dir=out / f"seed-{seed:04d}", config={**base, "seed": seed}, executor=ex,
                                 batch_size=batch_size, multi_fidelity=schedule,
                                 on_result=_printer(seed) if progress else None)
                results.append(res)
            summary = {**base, "seeds": seeds, **summarize_seeds(results),
                       "best": [r["best"] for r in results]}
            optimum = table.optimum(200) if table is not None else None
            if optimum is not None:
                summary["optimum"] = optimum
            atomic_write_json(out / "summary.json", summary)
            atomic_write_text(out / "summary.md", markdown_table({strategy: summary}, optimum))
            return summary
    finally:
        ex.close()


def _printer(seed: int):
    def show(rec: dict) -> None:
        m = rec.get("metrics", {})
        score = rec.get("score")
        extra = f"  table test {m['test_accuracy']:.2f}" if "test_accuracy" in m else ""
        rung = f" rung {rec['rung']}" if "rung" in rec else ""
        print(f"seed {seed} #{rec['i']}{rung}: valid {'failed' if score is None else f'{score:.2f}'} %"
              f"{extra}  ({rec.get('cost', 0):.1f} s{', cached' if m.get('cached') else ''})", flush=True)
    return show
