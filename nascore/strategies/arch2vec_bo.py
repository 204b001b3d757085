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
pretrain`` does the same ahead of time). Deterministic given the seed and what it was told: the
DNGO network of fit ``k`` is seeded with ``seed * 100003 + k``.

>>> from nascore.spaces import get_space
>>> s = Arch2vecBO(get_space("nb201"), seed=0, model="model.pt")   # doctest: +SKIP
>>> archs = s.ask(16)                                                # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np

from nascore.arch2vec.dngo import DNGO, expected_improvement
from nascore.arch2vec.latent import LatentSpace
from nascore.arch2vec.pretrain import load_embeddings
from nascore.errors import UserError
from nascore.strategies.base import Strategy


class Arch2vecBO(Strategy):
    name = "arch2vec-bo"

    def __init__(self, space, seed: int = 0, model: str | None = None, init: int = 16, batch: int = 5,
                 epochs: int = 200, hidden: int = 50, xi: float = 0.0):
        super().__init__(space, seed)
        if init < 2:
            raise UserError(f"arch2vec-bo init must be >= 2 random architectures, got {init}")
        if batch < 1 or epochs < 1 or hidden < 1:
            raise UserError(f"arch2vec-bo batch, epochs and hidden must be >= 1, got {batch}, {epochs}, {hidden}")
        keys, emb = load_embeddings(space, model)
        self.latent = LatentSpace(space, keys, emb)
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
        mu, sd = model.predict(emb[cand])
        ei = expected_improvement(mu, sd, max(self.obs_y), self.xi)
        order = np.argsort(-ei, kind="stable")[: self.batch]
        self.queue = [int(cand[k]) for k in order]

    def tell(self, archs, results) -> None:
        self._check_told(archs, results)
        for a, r in zip(archs, results):
            self.obs_idx.append(self.latent.index_of(a))
            self.obs_y.append(float(r.score))
