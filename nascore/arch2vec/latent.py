"""The embedded space a latent-space strategy searches: every architecture with its arch2vec vector.

:class:`LatentSpace` holds ``keys`` (``space.key`` of every architecture), their embeddings
``emb [N, d]`` standardised per dimension (zero mean, unit variance: distances and Gaussian
actions then have one scale on every space) and a ``visited`` mask kept by the strategy.

Scale: memory is the ``[N, d]`` table, the key list and a few ``N``-vectors; every operation is
at most linear in ``N`` (a nearest-neighbour query is one ``[N, d]`` matrix-vector product). No
key-to-index dictionary of the whole space is built: indices of visited architectures are
remembered as they are visited, and a lookup of any other key scans the key list once.

Constrained spaces: :meth:`restrict` marks architectures outside a feasibility mask as visited,
so no query ever returns them (see :func:`feasible_latent_space`).

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
        self.keys = keys if isinstance(keys, list) else list(keys)
        self.emb = (emb - emb.mean(0)) / (emb.std(0) + 1e-8)
        self._sq = np.einsum("nd,nd->n", self.emb, self.emb)
        self.visited = np.zeros(len(self.keys), bool)
        self.n_infeasible = 0
        self._index: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self.keys)

    def arch(self, i: int) -> Arch:
        return self.space.from_string(self.keys[int(i)])

    def index_of(self, arch: Arch) -> int:
        k = self.space.key(arch)
        i = self._index.get(k)
        if i is None:
            try:
                i = self.keys.index(k)  # one linear scan, only for architectures never visited here
            except ValueError:
                raise UserError(f"architecture {k!r} is not among the {len(self.keys)} embedded "
                                f"{self.space.name} cells") from None
            self._index[k] = i
        return i

    def visit(self, i: int) -> None:
        i = int(i)
        self.visited[i] = True
        self._index[self.keys[i]] = i

    def restrict(self, feasible: np.ndarray) -> None:
        """Mark every architecture where ``feasible`` is False as visited (never proposed)."""
        feasible = np.asarray(feasible)
        if feasible.shape != (len(self.keys),) or feasible.dtype != bool:
            raise UserError(f"feasible_mask must return a bool array of shape ({len(self.keys)},), "
                            f"got {feasible.dtype} {feasible.shape}")
        self.visited |= ~feasible
        self.n_infeasible = int((~feasible).sum())

    def unvisited(self) -> np.ndarray:
        return np.flatnonzero(~self.visited)

    def check_not_exhausted(self) -> None:
        """A :class:`UserError` when every architecture is visited or excluded."""
        if self.visited.all():
            extra = f" ({self.n_infeasible} of them infeasible)" if self.n_infeasible else ""
            raise UserError(f"the {self.space.name} space is exhausted: all {len(self.keys)} architectures "
                            f"were asked or excluded{extra}")

    def random_unvisited(self, rng: np.random.Generator) -> int:
        self.check_not_exhausted()
        for _ in range(64):
            i = int(rng.integers(len(self.keys)))
            if not self.visited[i]:
                return i
        free = self.unvisited()
        return int(free[rng.integers(len(free))])

    def nearest_unvisited(self, point: np.ndarray) -> int:
        """Index of the unvisited architecture closest (L2, standardised space) to ``point``."""
        self.check_not_exhausted()
        p = np.asarray(point, np.float64)
        d = self._sq - 2.0 * (self.emb @ p)  # |e - p|^2 - |p|^2: the same order
        d[self.visited] = np.inf
        return int(np.argmin(d))


def feasible_latent_space(space, strategy: str, model) -> LatentSpace:
    """The :class:`LatentSpace` a latent-space strategy searches on ``space``.

    A constrained wrapper of a finite space exposes its unconstrained space as ``space.inner``:
    the pretrained model and its cached embeddings are those of ``space.inner`` (found under its
    name), so one pretraining serves every constraint. If ``space`` has
    ``feasible_mask(keys) -> bool array``, every infeasible architecture is marked visited here,
    once, so it is never proposed; none feasible is a :class:`UserError`.
    """
    from nascore.arch2vec.pretrain import load_embeddings

    inner = getattr(space, "inner", None) or space
    keys, emb = load_embeddings(inner, model)
    latent = LatentSpace(inner, keys, emb)
    if hasattr(space, "feasible_mask"):
        latent.restrict(np.asarray(space.feasible_mask(keys)))
        if latent.visited.all():
            raise UserError(f"{strategy}: no architecture of {space.name} satisfies its constraints "
                            f"(0 of {len(keys)} feasible)")
    return latent
