"""The embedded space a latent-space strategy searches: every architecture with its arch2vec vector.

:class:`LatentSpace` holds ``keys`` (``space.key`` of every architecture), their embeddings
``emb [N, d]`` standardised per dimension (zero mean, unit variance: distances and Gaussian
actions then have one scale on every space) and a ``visited`` mask kept by the strategy.

>>> import numpy as np
>>> from nascore.spaces import get_space
>>> space = get_space("nb201")
>>> archs = [space.from_ops([o] * 6) for o in ("none", "skip_connect", "nor_conv_3x3")]
>>> lat = LatentSpace(space, [space.key(a) for a in archs], np.array([[0.0], [1.0], [5.0]]))
>>> lat.visit(1); lat.nearest_unvisited(np.array([-0.5]))   # standardised coordinates
0
"""

from __future__ import annotations

import numpy as np

from nascore.arch import Arch
from nascore.errors import UserError


class LatentSpace:
    def __init__(self, space, keys, emb: np.ndarray):
        emb = np.asarray(emb, np.float64)
        if emb.ndim != 2 or len(emb) != len(keys):
            raise UserError(f"embeddings must be [N, d] with N = {len(keys)} keys, got {emb.shape}")
        self.space = space
        self.keys = list(keys)
        self.index = {k: i for i, k in enumerate(self.keys)}
        self.emb = (emb - emb.mean(0)) / (emb.std(0) + 1e-8)
        self.visited = np.zeros(len(self.keys), bool)

    def __len__(self) -> int:
        return len(self.keys)

    def arch(self, i: int) -> Arch:
        return self.space.from_string(self.keys[int(i)])

    def index_of(self, arch: Arch) -> int:
        k = self.space.key(arch)
        if k not in self.index:
            raise UserError(f"architecture {k!r} is not among the {len(self.keys)} embedded {self.space.name} cells")
        return self.index[k]

    def visit(self, i: int) -> None:
        self.visited[int(i)] = True

    def unvisited(self) -> np.ndarray:
        return np.flatnonzero(~self.visited)

    def _exhausted(self) -> None:
        if self.visited.all():
            raise UserError(f"the {self.space.name} space is exhausted: all {len(self.keys)} architectures were asked")

    def random_unvisited(self, rng: np.random.Generator) -> int:
        self._exhausted()
        for _ in range(64):
            i = int(rng.integers(len(self.keys)))
            if not self.visited[i]:
                return i
        free = self.unvisited()
        return int(free[rng.integers(len(free))])

    def nearest_unvisited(self, point: np.ndarray) -> int:
        """Index of the unvisited architecture closest (L2, standardised space) to ``point``."""
        self._exhausted()
        d = np.sum((self.emb - np.asarray(point, np.float64)[None, :]) ** 2, axis=1)
        d[self.visited] = np.inf
        return int(np.argmin(d))
