"""DCL-ENAS: evolutionary search guided by the dual-contrastive predictor (Zhang, Gong, Chen &
Zhang, 2025, Algorithm 1), as an ask/tell strategy.

1. Stage 1: the predictor (:class:`~nascore.predictors.dcl.DCLPredictor`) is pretrained on
   unlabelled architectures (skipped with ``pretrain=False``).
2. The first ``n_init`` asks are random unseen architectures (truly evaluated).
3. Then, in rounds: the predictor is fine-tuned (stage 2) on every architecture told so far; a
   population -- the ``population`` best evaluated architectures -- evolves for ``t_gap``
   generations with the predictor as fitness: each generation makes ``offspring`` children
   (with probability ``crossover_prob`` a crossover of two tournament winners, then mutated;
   otherwise a mutation of one tournament winner; tournaments of ``tournament`` members) and keeps
   the ``population`` best of parents and children by predicted score (the (mu + lambda)
   environmental selection of NPENAS / DCL-ENAS). The ``n_infill`` unseen children with the
   highest predicted scores (ties broken by canonical string) are queued for true evaluation and
   returned by the following asks. When the queue runs dry the next round starts.

``population_mode``: where each round's population comes from.

* ``"rebuild"`` (default, today's behaviour): the ``population`` best *evaluated* architectures
  by true score, rebuilt every round; the predicted population of the previous round is dropped.
* ``"persistent"`` (Algorithm 1 as the paper describes it): one population lives across rounds.
  The first round starts from the best evaluated architectures as above; every later round
  starts from the previous round's final population plus the architectures evaluated since
  then, re-scored by the freshly fine-tuned predictor and cut to the ``population`` best by
  predicted score (ties by canonical string), and evolves on from there.

Either way the predictor's stage 2 restarts from the stage-1 state each round unless
``predictor={"refit": "continue"}`` (it then continues from the previous round's fit).

Never repeats an architecture (identity = ``space.key``); ``ask(n)`` returns exactly ``n``
(random unseen architectures top up a round that found too few unseen children). Deterministic
given the seed and what it was told, so a run resumes by replay (:mod:`nascore.run`).

Budget: ``ask`` cannot know the run's budget. Pass ``budget`` (queries) to have a budget smaller
than ``n_init`` refused at construction with a :class:`~nascore.errors.UserError`;
:attr:`DCLENAS.min_queries` (= ``n_init``) lets a run loop make the same check.

Degenerate labels: results with a non-finite score are kept as seen but not used to train; while
fewer than two *different* finite scores are known (e.g. every told score equal) the predictor
cannot rank, so the strategy falls back to mutating a random evaluated architecture (or sampling
at random when none is known) -- it never crashes mid-run.

``predictor``: overrides of :class:`~nascore.predictors.dcl.DCLConfig` (e.g.
``{"hidden": 32, "pretrain_steps": 100}``; CLI: ``--param predictor='{"hidden": 32}'``).
``encoder_init``: path to a GINEncoder ``state_dict`` (e.g. from arch2vec) that initialises the
predictor's GIN. ``pretrain_seed``: seed of stage 1 (default: the search seed); a fixed value
lets many search seeds share one pretrained encoder (it is cached in-process).

>>> from nascore.spaces import get_space
>>> from nascore.evaluation import Result
>>> space = get_space("nb201")
>>> s = DCLENAS(space, seed=0, n_init=4, n_infill=2, pretrain=False, predictor={"hidden": 8, "finetune_epochs": 3})
>>> first = s.ask(4)
>>> s.tell(first, [Result(score=float(k)) for k in range(4)])
>>> len(s.ask(3))
3
"""

from __future__ import annotations

import math


from nascore.errors import UserError
from nascore.predictors.dcl import DCLConfig, DCLPredictor
from nascore.strategies.base import Strategy
from nascore.validate import MAX_SEED, integer, number


class DCLENAS(Strategy):
    name = "dcl-enas"
    param_bounds = {"n_init": integer(2, 1_000_000), "n_infill": integer(1, 1_000_000), "t_gap": integer(1, 10_000),
                    "population": integer(1, 100_000), "offspring": integer(1, 1_000_000),
                    "crossover_prob": number(0, 1), "tournament": integer(1, 100_000), "budget": integer(1, 10_000_000),
                    "pretrain_seed": integer(0, MAX_SEED)}
    population_modes = ("rebuild", "persistent")

    def __init__(self, space, seed: int = 0, n_init: int = 10, n_infill: int = 10, t_gap: int = 5,
                 population: int = 30, offspring: int = 60, crossover_prob: float = 0.3, tournament: int = 2,
                 budget: int | None = None, pretrain: bool = True, predictor: dict | None = None,
                 encoder_init: str | None = None, pretrain_seed: int | None = None,
                 population_mode: str = "rebuild"):
        super().__init__(space, seed)
        for name, v, lo in (("n_init", n_init, 2), ("n_infill", n_infill, 1), ("t_gap", t_gap, 1),
                            ("population", population, 1), ("offspring", offspring, 1), ("tournament", tournament, 1)):
            if int(v) < lo:
                raise UserError(f"dcl-enas {name} must be >= {lo}, got {v}")
        if not 0.0 <= float(crossover_prob) <= 1.0:
            raise UserError(f"dcl-enas crossover_prob must be in [0, 1], got {crossover_prob}")
        if population_mode not in self.population_modes:
            raise UserError(f"dcl-enas population_mode must be one of {', '.join(self.population_modes)}, "
                            f"got {population_mode!r}")
        if budget is not None and int(budget) < int(n_init):
            raise UserError(f"dcl-enas budget of {budget} queries is smaller than its initial random sample "
                            f"n_init={n_init}; lower n_init or raise the budget")
        self.n_init, self.n_infill, self.t_gap = int(n_init), int(n_infill), int(t_gap)
        self.population_size, self.offspring, self.tournament = int(population), int(offspring), int(tournament)
        self.crossover_prob = float(crossover_prob)
        self.budget = None if budget is None else int(budget)
        self.min_queries = self.n_init
        self.cfg = DCLConfig.from_dict(predictor)
        self.pretrain = bool(pretrain)
        self.pretrain_seed = self.seed if pretrain_seed is None else int(pretrain_seed)
        self.encoder_init = encoder_init
        self.predictor: DCLPredictor | None = None
        self.labelled: list = []        # (arch, score) in tell order
        self.queue: list = []           # proposals waiting to be asked
        self.n_asked = 0
        self.rounds = 0
        self.fallbacks = 0
        self.population_mode = population_mode
        self.population: list | None = None  # persistent mode: the final population of the last round
        self._n_told_at_round = 0            # persistent mode: len(labelled) when that round ran

    # --- predictor --------------------------------------------------------------------------------
    def _get_predictor(self) -> DCLPredictor:
        if self.predictor is None:
            self.predictor = DCLPredictor(self.space, self.cfg, seed=self.pretrain_seed, encoder_init=self.encoder_init)
            if self.pretrain:
                self.predictor.pretrain()
        return self.predictor

    # --- ask / tell -----------------------------------------------------------------------------------
    def ask(self, n: int = 1):
        out = []
        while len(out) < n:
            if self.n_asked + len(out) < self.n_init:
                out.append(self._sample_unseen())
                continue
            if not self.queue:
                self._new_round()
            a = self.queue.pop(0)
            if self._mark(a):
                out.append(a)
        self.n_asked += len(out)
        return out

    def tell(self, archs, results) -> None:
        self._check_told(archs, results)
        for a, r in zip(archs, results):
            self.labelled.append((a, float(r.score)))

    # --- one round of predictor-guided evolution -----------------------------------------------------
    def _usable(self):
        return [(a, s) for a, s in self.labelled if math.isfinite(s)]

    def _new_round(self) -> None:
        self.rounds += 1
        self._check_not_exhausted()
        data = self._usable()
        if len({s for _, s in data}) < 2:
            self.fallbacks += 1
            self.queue = [self._fallback_candidate()]
            return
        pred = self._get_predictor()
        pred.fit([a for a, _ in data], [s for _, s in data], seed=self.seed * 7919 + self.rounds)
        if self.population_mode == "persistent" and self.population is not None:
            pop, keys = [], set()
            new = [a for a, s in self.labelled[self._n_told_at_round:] if math.isfinite(s)]
            for a in self.population + new:
                k = self.space.key(a)
                if k not in keys:
                    keys.add(k)
                    pop.append(a)
            fit = list(pred.predict(pop))
            order = sorted(range(len(pop)), key=lambda i: (-fit[i], self.space.to_string(pop[i])))[: self.population_size]
            pop, fit = [pop[i] for i in order], [float(fit[i]) for i in order]
        else:
            data.sort(key=lambda t: -t[1])
            pop = [a for a, _ in data[: self.population_size]]
            fit = list(pred.predict(pop))
        keys = {self.space.key(a) for a in pop}
        cand: dict[str, tuple] = {}
        for _ in range(self.t_gap):
            children = []
            for _ in range(self.offspring):
                if len(pop) >= 2 and self.rng.random() < self.crossover_prob:
                    child = self.space.crossover(self._tournament(pop, fit), self._tournament(pop, fit), self.rng)
                    child = self.space.mutate(child, self.rng)
                else:
                    child = self.space.mutate(self._tournament(pop, fit), self.rng)
                children.append(child)
            scores = pred.predict(children)
            for c, sc in zip(children, scores):
                k = self.space.key(c)
                if k not in self.seen and k not in cand:
                    cand[k] = (c, float(sc))
                if k not in keys:
                    keys.add(k)
                    pop.append(c)
                    fit.append(float(sc))
            order = sorted(range(len(pop)), key=lambda i: (-fit[i], self.space.to_string(pop[i])))[: self.population_size]
            pop, fit = [pop[i] for i in order], [fit[i] for i in order]
            keys = {self.space.key(a) for a in pop}
        self.population, self._n_told_at_round = pop, len(self.labelled)
        best = sorted(cand.items(), key=lambda kv: (-kv[1][1], kv[0]))[: self.n_infill]
        self.queue = [c for _, (c, _) in best]
        while len(self.queue) < self.n_infill:  # too few unseen children: top up at random
            a = self._unseen_sample_not_in(self.queue)
            if a is None:
                break
            self.queue.append(a)
        if not self.queue:
            self.queue = [self._fallback_candidate()]

    def _tournament(self, pop, fit):
        idx = self.rng.choice(len(pop), size=min(self.tournament, len(pop)), replace=False)
        return pop[int(max(idx, key=lambda i: fit[int(i)]))]

    def _unseen_sample_not_in(self, queued, tries: int = 10_000):
        qk = {self.space.key(a) for a in queued}
        for _ in range(tries):
            a = self.space.sample(self.rng)
            k = self.space.key(a)
            if k not in self.seen and k not in qk:
                return a
        return None

    def _fallback_candidate(self):
        """Without a usable predictor: mutate a random evaluated architecture, else sample."""
        if self.labelled:
            for _ in range(100):
                parent = self.labelled[int(self.rng.integers(len(self.labelled)))][0]
                child = self.space.mutate(parent, self.rng)
                if self.space.key(child) not in self.seen:
                    return child
        a = self._unseen_sample_not_in([])
        if a is None:
            self._check_not_exhausted()
            raise UserError(f"could not find an unseen architecture in {self.space.name}")
        return a
