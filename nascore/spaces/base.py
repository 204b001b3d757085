"""The :class:`SearchSpace` interface shared by every space.

A space turns random numbers into architectures (:meth:`sample`, :meth:`mutate`,
:meth:`crossover`), checks them (:meth:`is_valid`, :meth:`validate`), names them
(:meth:`to_string` / :meth:`from_string`: the canonical string written to run folders and
looked up in benchmark tables) and encodes them (:meth:`to_graph` for torch-geometric models,
:meth:`to_vector` for flat models). Finite spaces also :meth:`enumerate`; trainable spaces
:meth:`build_model`.

Randomness always comes from a :class:`numpy.random.Generator` passed in, so a seed fixes a run.

>>> from nascore.spaces import get_space
>>> import numpy as np
>>> space = get_space("nb201")
>>> arch = space.sample(np.random.default_rng(0))
>>> space.from_string(space.to_string(arch)) == arch
True
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Iterator

import numpy as np

from nascore.arch import Arch
from nascore.errors import UserError


class SearchSpace(ABC):
    #: short name used on the command line (``--space``)
    name: str = ""
    #: vocabulary of node labels, in one-hot order (includes ``input`` / ``output`` markers)
    node_labels: tuple[str, ...] = ()
    #: largest number of nodes an architecture can have (graph encodings are padded to it)
    max_nodes: int = 0

    # --- sampling ---------------------------------------------------------------------------
    @abstractmethod
    def sample(self, rng: np.random.Generator) -> Arch:
        """A uniformly random valid architecture."""

    @abstractmethod
    def mutate(self, arch: Arch, rng: np.random.Generator) -> Arch:
        """A valid architecture one elementary change away from ``arch`` (never ``arch`` itself)."""

    @abstractmethod
    def crossover(self, a: Arch, b: Arch, rng: np.random.Generator) -> Arch:
        """A valid child mixing the choices of two parents."""

    # --- identity ---------------------------------------------------------------------------
    @abstractmethod
    def is_valid(self, arch: Arch) -> bool: ...

    def validate(self, arch: Arch) -> Arch:
        if not self.is_valid(arch):
            raise UserError(f"architecture is outside the {self.name} space: {arch}")
        return arch

    @abstractmethod
    def to_string(self, arch: Arch) -> str:
        """The canonical string (isomorphic architectures of this space give the same string)."""

    @abstractmethod
    def from_string(self, text: str) -> Arch:
        """Parse a canonical string; raises :class:`UserError` for malformed or outside strings."""

    def key(self, arch: Arch) -> str:
        """What "already seen" means to a strategy: by default the canonical string."""
        return self.to_string(arch)

    # --- encodings --------------------------------------------------------------------------
    def node_features(self, arch: Arch) -> np.ndarray:
        """One-hot node labels, float32 [n_nodes, len(node_labels)]."""
        idx = {op: k for k, op in enumerate(self.node_labels)}
        x = np.zeros((arch.n_nodes, len(self.node_labels)), np.float32)
        for k, op in enumerate(arch.ops):
            x[k, idx[op]] = 1.0
        return x

    def to_graph(self, arch: Arch):
        """A :class:`torch_geometric.data.Data` with ``x`` (one-hot labels, [n, L]),
        ``edge_index`` ([2, E], directed, forward), ``adj`` (dense [1, max_nodes, max_nodes],
        zero-padded) and ``num_nodes``. The one encoding used by GIN, VGAE and DCL models."""
        import torch
        from torch_geometric.data import Data

        x = torch.from_numpy(self.node_features(arch))
        e = arch.edges
        edge_index = torch.tensor(e, dtype=torch.long).t().contiguous() if e else torch.zeros(2, 0, dtype=torch.long)
        adj = torch.zeros(1, self.max_nodes, self.max_nodes)
        adj[0, : arch.n_nodes, : arch.n_nodes] = torch.from_numpy(arch.adjacency.astype(np.float32))
        return Data(x=x, edge_index=edge_index, adj=adj, num_nodes=arch.n_nodes)

    def to_vector(self, arch: Arch) -> np.ndarray:
        """Flat float32 vector: padded upper-triangular adjacency, then padded one-hot labels."""
        n, m = arch.n_nodes, self.max_nodes
        adj = np.zeros((m, m), np.float32)
        adj[:n, :n] = arch.adjacency
        feats = np.zeros((m, len(self.node_labels)), np.float32)
        feats[:n] = self.node_features(arch)
        iu = np.triu_indices(m, 1)
        return np.concatenate([adj[iu], feats.ravel()])

    # --- finite / trainable spaces ------------------------------------------------------------
    @property
    def size(self) -> int | None:
        """Number of distinct architectures (by :meth:`key`), or ``None`` if not enumerated."""
        return None

    def enumerate(self) -> Iterator[Arch]:
        raise UserError(f"the {self.name} space is not enumerable")

    def build_model(self, arch: Arch, **kwargs):
        raise UserError(f"the {self.name} space has no trainable network in nascore")
