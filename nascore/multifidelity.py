"""Multi-fidelity search: asynchronous successive halving (ASHA) around any ask/tell strategy.

ASHA (Li, Jamieson, Rostamizadeh, Gonina, Ben-tzur, Hardt, Recht and Talwalkar, "A System for
Massively Parallel Hyperparameter Tuning", MLSys 2020, Algorithm 2). Rungs ``k = 0 .. K`` train a
candidate with a growing resource ``r_k`` (here: training epochs; the paper's
``r_k = r · η^(s+k)``, given here as any increasing list, by default the geometric ladder
:meth:`MultiFidelity.ladder` ending at the search fidelity). Whenever a worker is free it gets a
job from ``get_job``:

.. code-block:: text

    for k = K-1, ..., 1, 0:
        candidates = top_k(rung k, ⌊|rung k| / η⌋)        # the best 1/η of those finished at rung k
        promotable = {c in candidates : c not yet promoted}
        if promotable: return (best of promotable, k + 1)   # promote it one rung up
    return (a new configuration, 0)                          # grow the bottom rung

so no rung waits for another to fill ("asynchronous": a candidate is promoted as soon as it is in
the top 1/η of the results its rung holds *so far*, and a paused candidate may still be promoted
later, when enough worse ones have joined its rung). Here the new configurations come from any
:class:`~nascore.strategies.base.Strategy` (``ask(1)``), and a rung's "training" is a fresh
evaluation at ``r_k`` epochs (``evaluator(arch, fidelity=r_k)``; the paper's promotions may also
resume from a checkpoint -- ours retrain, which keeps every evaluation independent, cacheable and
replayable, at the cost of ``r_k`` rather than ``r_k - r_(k-1)`` epochs per promotion).

**What the strategy is told.** Each candidate once, with its rung-0 score, as soon as that is
known. Rung-0 scores are all measured at the same fidelity, so a strategy's model (a predictor,
a population) learns from one consistent objective and never waits for promotions that may come
much later or never; a candidate is never told twice. The higher rungs decide which candidates
get the low-noise, full-fidelity score the search finally selects by: the **best** of a
multi-fidelity run is the highest score at the highest rung any candidate reached.

**Budget.** Counted in candidate-epochs: a budget of ``n`` queries is ``n`` full-fidelity
evaluations' worth, ``n · r_K`` epochs; evaluations are asked while the epochs spent and in
flight stay below it (the one that crosses it is kept, as with a seconds budget). A seconds
budget counts the evaluations' (simulated) cost as before. ``result.json`` reports both the
candidate-epochs and the wall time (:func:`nascore.run.run_search`).

Why not Ray Tune's ``ASHAScheduler`` or Optuna's ``SuccessiveHalvingPruner``: Tune's scheduler
drives Tune trials that report intermediate results from inside a running trainable, in Tune's
own controller loop with its own experiment state and resume; it would replace this package's run
loop, executors and append-only history rather than sit between them. Optuna's pruner is the
"Optuna-flavoured" ASHA (optuna/optuna#404): a trial is judged once, when it reports a rung, and a
pruned trial is never promoted later; it also needs a study storage holding every trial. The
rules above are a few dozen lines with no dependency, run under both executors, and resume by the
same replay as every other search (:mod:`nascore.run`).

>>> from nascore.spaces import get_space
>>> from nascore.strategies import get_strategy
>>> from nascore.evaluation import Result
>>> space = get_space("nb201")
>>> asha = ASHA(get_strategy("random", space, seed=0), space, MultiFidelity((1, 3), eta=2))
>>> jobs = [asha.ask() for _ in range(2)]
>>> [k for _, k in jobs]                           # nothing finished yet: two new candidates
[0, 0]
>>> asha.tell(jobs, [Result(1.0), Result(2.0)])
>>> a, k = asha.ask(); k, space.key(a) == space.key(jobs[1][0])   # the better half goes up
(1, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from nascore.errors import UserError
from nascore.evaluation import Result

#: the largest rung (epochs) and reduction factor accepted
MAX_RUNG = 100_000
MAX_ETA = 100


@dataclass(frozen=True)
class MultiFidelity:
    """The rung schedule: ``rungs`` = training epochs per rung (strictly increasing, ≥ 2 rungs;
    the last is the full search fidelity), ``eta`` = the reduction factor η (the top ``1/η`` of a
    rung is promoted).

    >>> MultiFidelity.parse("1,3,9", 3).to_dict()
    {'rungs': [1, 3, 9], 'eta': 3}
    >>> MultiFidelity.ladder(9, 3).rungs, MultiFidelity.ladder(3, 3).rungs, MultiFidelity.ladder(10, 3).rungs
    ((1, 3, 9), (1, 3), (1, 3, 10))
    >>> MultiFidelity.parse("3,1", 3)
    Traceback (most recent call last):
    ...
    nascore.errors.UserError: --rungs: epochs must increase from rung to rung, got 3,1
    """

    rungs: tuple[int, ...]
    eta: int = 3

    def __post_init__(self):
        r = tuple(self.rungs)
        if isinstance(self.eta, bool) or not isinstance(self.eta, int) or not 2 <= self.eta <= MAX_ETA:
            raise UserError(f"--eta: need an integer in [2, {MAX_ETA}], got {self.eta!r}")
        if len(r) < 2:
            raise UserError(f"--rungs: need at least two rungs (epochs per rung, e.g. 1,3,9), got {_show(r)}")
        if any(isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_RUNG for v in r):
            raise UserError(f"--rungs: each rung is a whole number of epochs in [1, {MAX_RUNG}], got {_show(r)}")
        if any(b <= a for a, b in zip(r, r[1:])):
            raise UserError(f"--rungs: epochs must increase from rung to rung, got {_show(r)}")
        object.__setattr__(self, "rungs", r)

    @property
    def top(self) -> int:
        """Epochs of the top rung (the full search fidelity)."""
        return self.rungs[-1]

    def to_dict(self) -> dict:
        return {"rungs": list(self.rungs), "eta": self.eta}

    @classmethod
    def parse(cls, text: str | Sequence[int] | None, eta: int = 3, top: int | None = None) -> "MultiFidelity":
        """``"1,3,9"`` (or a list) -> a schedule; ``None`` -> :meth:`ladder` ``(top, eta)``."""
        if text is None:
            if top is None:
                raise UserError("--rungs: give the epochs per rung (e.g. 1,3,9)")
            return cls.ladder(top, eta)
        if isinstance(text, str):
            try:
                vals = tuple(int(v) for v in text.split(","))
            except ValueError:
                raise UserError(f"--rungs: expected whole numbers of epochs separated by commas (e.g. 1,3,9), "
                                f"got {text[:60]!r}") from None
        else:
            vals = tuple(text)
        return cls(vals, eta)

    @classmethod
    def ladder(cls, top: int, eta: int = 3) -> "MultiFidelity":
        """The geometric rungs ``⌊top / η^k⌋`` (``k = 0, 1, ...``, each ≥ 1, duplicates dropped),
        lowest first, ending at ``top``."""
        if isinstance(eta, bool) or not isinstance(eta, int) or eta < 2:
            raise UserError(f"--eta: need an integer in [2, {MAX_ETA}], got {eta!r}")
        out, r = [], int(top)
        while r >= 1:
            if not out or r < out[-1]:
                out.append(r)
            r = r // eta
        if len(out) < 2:
            raise UserError(f"--multi-fidelity: a search fidelity of {top} epoch(s) leaves no lower rung; "
                            f"give --rungs or more epochs")
        return cls(tuple(reversed(out)), eta)


def _show(r) -> str:
    text = ",".join(str(v) for v in r)
    return text if len(text) <= 60 else text[:57] + "..."


class ASHA:
    """The ASHA job scheduler around the ask/tell ``strategy`` (see the module docstring).

    :meth:`ask` returns one job ``(arch, rung)``; :meth:`tell` takes finished jobs and their
    results (in any grouping). Deterministic given the strategy's seed and the order of what it is
    told, so a run resumes by replaying its history (:func:`nascore.run.run_search`). A failed
    evaluation (non-finite score) counts in its rung's size but is never promoted.
    """

    def __init__(self, strategy, space, schedule: MultiFidelity):
        self.strategy = strategy
        self.space = space
        self.schedule = schedule
        n = len(schedule.rungs)
        self.scores: list[dict[str, tuple[float, int]]] = [{} for _ in range(n)]  # key -> (score, arrival)
        self.promoted: list[set[str]] = [set() for _ in range(n)]  # keys sent from rung k to k + 1
        self.archs: dict[str, object] = {}
        self._arrivals = 0

    def promotable(self, k: int) -> list[str]:
        """Rung ``k``'s candidates in the top ``⌊|rung k| / η⌋`` not yet promoted, best first
        (ties: the earlier result first)."""
        rung = self.scores[k]
        n_top = len(rung) // self.schedule.eta
        ranked = sorted((kv for kv in rung.items() if math.isfinite(kv[1][0])), key=lambda kv: (-kv[1][0], kv[1][1]))
        return [key for key, _ in ranked[:n_top] if key not in self.promoted[k]]

    def ask(self) -> tuple[object, int]:
        for k in range(len(self.schedule.rungs) - 2, -1, -1):
            ready = self.promotable(k)
            if ready:
                self.promoted[k].add(ready[0])
                return self.archs[ready[0]], k + 1
        [arch] = self.strategy.ask(1)
        self.archs[self.space.key(arch)] = arch
        return arch, 0

    def tell(self, jobs: Sequence[tuple[object, int]], results: Sequence[Result]) -> None:
        if len(jobs) != len(results):
            raise ValueError(f"tell() got {len(jobs)} jobs but {len(results)} results")
        new = []
        for (arch, k), res in zip(jobs, results):
            key = self.space.key(arch)
            if key in self.scores[k]:
                raise ValueError(f"{self.space.to_string(arch)!r} was told twice at rung {k}")
            self.scores[k][key] = (-math.inf if res.failed else float(res.score), self._arrivals)
            self._arrivals += 1
            if k == 0:
                new.append((arch, res))
        if new:
            self.strategy.tell([a for a, _ in new], [r for _, r in new])


class AtFidelity:
    """``job -> evaluator(arch, fidelity=epochs)`` for an executor (picklable: it travels to Ray
    workers with the evaluator)."""

    def __init__(self, evaluator):
        self.evaluator = evaluator

    def __call__(self, job) -> Result:
        arch, epochs = job
        return self.evaluator(arch, fidelity=epochs)


def check_evaluator(evaluator) -> None:
    """Refuse (UserError) an evaluator that takes no ``fidelity`` argument."""
    import inspect

    try:
        params = inspect.signature(evaluator).parameters
    except (TypeError, ValueError):
        return  # no signature to read (a builtin): it will say so itself when called
    if "fidelity" not in params and not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        raise UserError(f"--multi-fidelity: the evaluator {type(evaluator).__name__} takes no fidelity argument "
                        "(evaluator(arch, fidelity=epochs)), so it cannot train a candidate for a rung's epochs")
