"""arch2vec-BO: Bayesian optimisation with DNGO in arch2vec's latent space (Yan et al. 2020, §3.3).

Every architecture of the (finite) space is represented by its pretrained arch2vec embedding
(:func:`nascore.arch2vec.pretrain.load_embeddings`, cached on disk). The first ``init``
architectures are drawn uniformly at random; afterwards, whenever its queue is empty, the
strategy fits :class:`~nascore.arch2vec.dngo.DNGO` on the (embedding, score) pairs told so far,
scores every unvisited architecture by expected improvement over the best score and queues the
``batch`` best (arch2vec's defaults: 16 initial points, top-5 per iteration). Queued proposals
are handed out by the following asks, so one fit serves ``batch`` queries however the run loop
batches its asks. Asked-but-untold architectures are never proposed again.

``model``: path of an arch2vec ``model.pt``; default ``~/.cache/nascore/arch2vec/<space>/model.pt``,
pretrained there with the published settings on first use when missing (``nascore arch2vec
pretrain`` does the same ahead of time).

Constrained spaces (hardware-aware search): when ``space`` wraps a finite space as
``space.inner``, the model and embeddings are those of ``space.inner``; when it has
``feasible_mask(keys)``, the infeasible architectures are marked visited at construction and
never proposed (:func:`nascore.arch2vec.latent.feasible_latent_space`). Each acquisition step is
linear in the number of unvisited architectures (predictions in chunks of 65,536, top-``batch``
by partial sort; ``benchmarks/arch2vec_pretrain.py`` measures it on a synthetic space of 470,000
architectures). Deterministic given the seed and what it was told: the
DNGO network of fit ``k`` is seeded with ``seed * 100003 + k``.

>>> from nascore.spaces import get_space
>>> s = Arch2vecBO(get_space("nb201"), seed=0, model="model.pt")   # doctest: +SKIP
>>> archs = s.ask(16)                                                # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np

from nascore.arch2vec.dngo import DNGO, expected_improvement
from nascore.arch2vec.latent import feasible_latent_space
from nascore.errors import UserError
from nascore.strategies.base import Strategy
from nascore.validate import integer, number


class Arch2vecBO(Strategy):
    name = "arch2vec-bo"
    param_bounds = {"init": integer(2, 1_000_000), "batch": integer(1, 100_000), "epochs": integer(1, 100_000),
                    "hidden": integer(1, 4096), "xi": number()}

    def __init__(self, space, seed: int = 0, model: str | None = None, init: int = 16, batch: int = 5,
                 epochs: int = 200, hidden: int = 50, xi: float = 0.0):
        super().__init__(space, seed)
        if init < 2:
            raise UserError(f"arch2vec-bo init must be >= 2 random architectures, got {init}")
        if batch < 1 or epochs < 1 or hidden < 1:
            raise UserError(f"arch2vec-bo batch, epochs and hidden must be >= 1, got {batch}, {epochs}, {hidden}")
        self.latent = feasible_latent_space(space, self.name, model)
        self.init, self.batch, self.epochs, self.hidden, self.xi = int(init), int(batch), int(epochs), int(hidden), float(xi)
        self.asked = 0
        self.queue: list[int] = []
        self.obs_idx: list[int] = []
        self.obs_y: list[float] = []
        self.fits = 0

    def _take(self, i: int):
        arch = self.latent.arch(i)
        if not self._mark(arch):  # cannot happen: visited mask and seen set move together
            raise RuntimeError(f"arch2vec-bo proposed {self.latent.keys[i]} twice")
        self.latent.visit(i)
        return arch

    def ask(self, n: int = 1):
        out = []
        for _ in range(n):
            self._check_not_exhausted()
            self.latent.check_not_exhausted()
            if self.asked < self.init or len(self.obs_y) < 2:
                i = self.latent.random_unvisited(self.rng)
            else:
                if not self.queue:
                    self._propose()
                i = self.queue.pop(0)
            out.append(self._take(i))
            self.asked += 1
        return out

    def _propose(self) -> None:
        model = DNGO(hidden=self.hidden, epochs=self.epochs, seed=self.seed * 100003 + self.fits)
        self.fits += 1
        emb = self.latent.emb
        model.fit(emb[self.obs_idx], np.asarray(self.obs_y))
        cand = self.latent.unvisited()
        ei = np.empty(len(cand))
        best = max(self.obs_y)
        for s in range(0, len(cand), 65536):  # bounded memory on large spaces
            mu, sd = model.predict(emb[cand[s:s + 65536]])
            ei[s:s + 65536] = expected_improvement(mu, sd, best, self.xi)
        k = min(self.batch, len(cand))
        top = np.argpartition(-ei, k - 1)[:k] if k < len(cand) else np.arange(len(cand))
        top = top[np.lexsort((top, -ei[top]))]  # best first, ties by index: deterministic
        self.queue = [int(cand[j]) for j in top]

    def tell(self, archs, results) -> None:
        self._check_told(archs, results)
        for a, r in zip(archs, results):
            self.obs_idx.append(self.latent.index_of(a))
            self.obs_y.append(float(r.score))
