"""Regularised (aging) evolution, Real, Aggarwal, Huang & Le, AAAI 2019, Algorithm 1.

The population is a queue of the ``population`` most recently evaluated architectures. Until it
is full, architectures are sampled at random. Afterwards each cycle draws ``sample_size`` members
uniformly without replacement, mutates the best of them (highest score) and evaluates the child;
the child joins the queue and the *oldest* member leaves, whatever its score ("aging").

Defaults follow the NATS-Bench REA baseline (population 10, sample size 3). A child that was
evaluated before is mutated again (up to ``max_mutation_tries``); if every try lands on a seen
architecture, an unseen random architecture is used instead, so no query is ever repeated.

>>> from nascore.spaces import get_space
>>> s = RegularizedEvolution(get_space("nb201"), seed=0, population=4, sample_size=2)
>>> archs = s.ask(4)
"""

from __future__ import annotations

from collections import deque

from nascore.errors import UserError
from nascore.strategies.base import Strategy
from nascore.validate import integer


class RegularizedEvolution(Strategy):
    name = "evolution"
    param_bounds = {"population": integer(1, 1_000_000), "sample_size": integer(1, 1_000_000),
                    "max_mutation_tries": integer(0, 1_000_000)}

    def __init__(self, space, seed: int = 0, population: int = 10, sample_size: int = 3,
                 max_mutation_tries: int = 100):
        super().__init__(space, seed)
        if population < 1:
            raise UserError(f"population must be >= 1, got {population}")
        if not 1 <= sample_size <= population:
            raise UserError(f"sample_size must be between 1 and population ({population}), got {sample_size}")
        self.population_size = int(population)
        self.sample_size = int(sample_size)
        self.max_mutation_tries = int(max_mutation_tries)
        self.population: deque = deque()   # (arch, score), oldest first
        self.pending = 0                   # asked, not yet told

    def ask(self, n: int = 1):
        out = []
        for _ in range(n):
            if len(self.population) + self.pending + len(out) < self.population_size or not self.population:
                out.append(self._sample_unseen())
            else:
                out.append(self._child())
        self.pending += len(out)
        return out

    def _child(self):
        idx = self.rng.choice(len(self.population), size=min(self.sample_size, len(self.population)), replace=False)
        parent = max((self.population[int(i)] for i in idx), key=lambda p: p[1])[0]
        for _ in range(self.max_mutation_tries):
            child = self.space.mutate(parent, self.rng)
            if self._mark(child):
                return child
        return self._sample_unseen()

    def tell(self, archs, results) -> None:
        self._check_told(archs, results)
        for a, r in zip(archs, results):
            self.population.append((a, r.score))
            if len(self.population) > self.population_size:
                self.population.popleft()
        self.pending = max(0, self.pending - len(archs))
