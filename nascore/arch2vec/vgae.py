"""The arch2vec variational graph isomorphism autoencoder (Yan, Zheng, Ao, Zeng & Zhang, NeurIPS 2020).

Encoder (paper §3.1, Eq. 1-3): ``layers`` GIN layers with learnable :math:`\\epsilon` (a
:class:`nascore.encoders.gin.GINEncoder`, default 4 layers of width 128) over the bidirectional
adjacency, then two linear heads give a Gaussian per node,
:math:`q(z_i \\mid X, A) = \\mathcal N(\\mu_i, \\mathrm{diag}(\\sigma_i^2))` with ``latent = 16``.

Decoder (Eq. 4-5): the operations are a linear map of each node's :math:`z_i`
(:math:`\\hat X = \\mathrm{softmax}(z W_o + b_o)`, one extra class = "no node" for padding) and the
adjacency is the inner product :math:`\\hat A = \\sigma(z z^\\top)`, read on the upper triangle.

Loss (Eq. 6): cross-entropy of the operations + binary cross-entropy of the upper-triangular
adjacency + ``kl_weight`` x the per-node KL divergence to :math:`\\mathcal N(0, I)`.
``variational=False`` gives the plain graph autoencoder (GAE) of the paper's comparison:
:math:`z = \\mu`, no KL.

Data layout ("dense"): ``ops`` LongTensor ``[B, M]`` (label index in ``space.node_labels``,
``PAD = len(node_labels)`` for absent nodes) and ``adj`` FloatTensor ``[B, M, M]`` (forward edges,
upper-triangular), ``M = space.max_nodes``. A cell with ``n < M`` nodes is padded *before its
output node* (as the official 7x7 NAS-Bench-101 matrices and arch2vec do), so the input is always
node 0 and the output node ``M-1``; padding nodes have no label and no edge.

Two forward paths use the *same* weights: :meth:`VGAE.encode` (dense batched matrix products,
used for training) and :meth:`VGAE.encode_graph` (``torch_geometric`` message passing through
``GINEncoder.forward`` on ``space.to_graph`` batches, no padding nodes). On spaces without padding
(NB201, DARTS) they give identical results (see the tests). Training uses the dense path because
it needs no per-step graph batching and handles NB101's padding slots; measured speed per step is
similar (``benchmarks/arch2vec_pretrain.py``: 0.069 s dense vs 0.057 s torch-geometric per batch
of 32 on NB201, on a heavily shared 2-core CPU -- no speed claim is made for the dense path).

The GIN part is a plain ``GINEncoder(len(space.node_labels), hidden, layers)``:
:meth:`VGAE.gin_state_dict` exports its weights for predictors (``encoder_init``).

>>> import numpy as np
>>> from nascore.spaces import get_space
>>> space = get_space("nb201")
>>> archs = [space.sample(np.random.default_rng(k)) for k in range(3)]
>>> ops, adj = dense_tensors(space, archs)
>>> model = VGAE(len(space.node_labels), space.max_nodes, hidden=32, latent=16)
>>> mu, logvar = model.encode(ops, adj)
>>> tuple(mu.shape), tuple(model.embed(ops, adj).shape)
((3, 8, 16), (3, 16))
>>> op_logits, adj_logits = model.decode(mu)
>>> tuple(op_logits.shape), tuple(adj_logits.shape)
((3, 8, 8), (3, 8, 8))
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from nascore.arch import Arch
from nascore.encoders.gin import GINEncoder

#: keys of the model configuration stored in checkpoints
CONFIG_KEYS = ("n_labels", "max_nodes", "hidden", "layers", "latent", "variational")


# --- data ---------------------------------------------------------------------------------------
def pad_positions(n: int, m: int) -> list[int]:
    """Dense slots of the ``n`` nodes of a cell padded to ``m``: all but the output first, output last."""
    return list(range(n - 1)) + [m - 1]


def dense_tensors(space, archs: Sequence[Arch]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ops [B, M] int64, adj [B, M, M] float32)`` of ``archs`` (see module docstring).

    >>> from nascore.spaces import get_space
    >>> space = get_space("nb201")
    >>> ops, adj = dense_tensors(space, [space.sample(np.random.default_rng(0))])
    >>> int(ops[0, 0]) == space.node_labels.index("input"), int(adj.sum())
    (True, 10)
    """
    m = space.max_nodes
    index = {op: k for k, op in enumerate(space.node_labels)}
    pad = len(space.node_labels)
    ops = np.full((len(archs), m), pad, np.int64)
    adj = np.zeros((len(archs), m, m), np.float32)
    for b, a in enumerate(archs):
        pos = pad_positions(a.n_nodes, m)
        ops[b, pos] = [index[o] for o in a.ops]
        adj[b][np.ix_(pos, pos)] = a.adjacency
    return torch.from_numpy(ops), torch.from_numpy(adj)


def decode_arch(space, ops_row: np.ndarray, adj_row: np.ndarray) -> Arch | None:
    """The :class:`Arch` described by one decoded ``(ops [M], adj [M, M] 0/1)``, padding nodes
    dropped; ``None`` when it is not even a DAG of labelled nodes (a node left empty mid-graph
    with edges is kept out, so the caller's ``space.is_valid`` decides the rest)."""
    pad = len(space.node_labels)
    keep = [k for k in range(len(ops_row)) if ops_row[k] != pad]
    if len(keep) < 2:
        return None
    dropped = [k for k in range(len(ops_row)) if ops_row[k] == pad]
    if dropped and (adj_row[dropped].any() or adj_row[:, dropped].any()):
        return None  # an edge into or out of an absent node
    m = np.triu(adj_row[np.ix_(keep, keep)], 1)
    return Arch.from_numpy(m, [space.node_labels[int(ops_row[k])] for k in keep])


# --- model --------------------------------------------------------------------------------------
class VGAE(nn.Module):
    """arch2vec's variational graph isomorphism autoencoder (see module docstring).

    ``n_labels``: ``len(space.node_labels)``; ``max_nodes``: ``space.max_nodes``.
    """

    def __init__(self, n_labels: int, max_nodes: int, hidden: int = 128, layers: int = 4, latent: int = 16,
                 variational: bool = True):
        super().__init__()
        self.config = {"n_labels": int(n_labels), "max_nodes": int(max_nodes), "hidden": int(hidden),
                       "layers": int(layers), "latent": int(latent), "variational": bool(variational)}
        self.gin = GINEncoder(n_labels, hidden=hidden, layers=layers, train_eps=True, bidirectional=True, pool="mean")
        self.fc_mu = nn.Linear(hidden, latent)
        self.fc_logvar = nn.Linear(hidden, latent) if variational else None
        self.op_decoder = nn.Linear(latent, n_labels + 1)  # last class: no node (padding)
        self.n_labels = int(n_labels)
        self.variational = bool(variational)

    # --- encoder ----------------------------------------------------------------------------
    def _node_states_dense(self, ops: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        b, m = ops.shape
        x = F.one_hot(ops, self.n_labels + 1)[..., : self.n_labels].float()
        a = adj + adj.transpose(1, 2)  # both directions, as GINEncoder(bidirectional=True)
        convs = self.gin.convs
        for k, conv in enumerate(convs):
            h = (1 + conv.eps) * x + torch.bmm(a, x)
            x = conv.nn(h.reshape(b * m, -1)).reshape(b, m, -1)
            if k < len(convs) - 1:
                x = torch.relu(x)
        return x

    def _heads(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        mu = self.fc_mu(h)
        return mu, (self.fc_logvar(h) if self.fc_logvar is not None else None)

    def encode(self, ops: torch.Tensor, adj: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Dense path: ``(mu, logvar)`` each ``[B, M, latent]`` (``logvar`` None for a GAE)."""
        return self._heads(self._node_states_dense(ops, adj))

    def encode_graph(self, batch) -> tuple[torch.Tensor, torch.Tensor | None]:
        """torch_geometric path on a ``Batch`` of ``space.to_graph``: ``(mu, logvar)`` each ``[N, latent]``."""
        h, _ = self.gin(batch)
        return self._heads(h)

    def reparameterize(self, mu, logvar, generator: torch.Generator | None = None):
        if logvar is None or not self.training:
            return mu
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype)
        return mu + eps * torch.exp(0.5 * logvar)

    # --- decoder ----------------------------------------------------------------------------
    def decode(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``z [B, M, latent]`` -> ``(op_logits [B, M, n_labels+1], adj_logits [B, M, M])``."""
        return self.op_decoder(z), torch.bmm(z, z.transpose(1, 2))

    # --- training ---------------------------------------------------------------------------
    def loss(self, ops, adj, kl_weight: float = 0.005, generator: torch.Generator | None = None):
        """``(total, parts)`` for a dense batch; ``parts``: ops / adj / kl as floats."""
        mu, logvar = self.encode(ops, adj)
        z = self.reparameterize(mu, logvar, generator)
        op_logits, adj_logits = self.decode(z)
        m = ops.shape[1]
        l_ops = F.cross_entropy(op_logits.reshape(-1, op_logits.shape[-1]), ops.reshape(-1))
        iu = torch.triu_indices(m, m, 1)
        l_adj = F.binary_cross_entropy_with_logits(adj_logits[:, iu[0], iu[1]], adj[:, iu[0], iu[1]])
        if logvar is not None:
            kl = -0.5 * torch.mean(torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=-1))
        else:
            kl = torch.zeros(())
        total = l_ops + l_adj + kl_weight * kl
        return total, {"ops": float(l_ops.detach()), "adj": float(l_adj.detach()), "kl": float(kl.detach())}

    # --- inference --------------------------------------------------------------------------
    @torch.no_grad()
    def reconstruct(self, ops, adj) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode the posterior means: ``(ops [B, M] int64, adj [B, M, M] 0/1 upper-triangular)``."""
        mu, _ = self.encode(ops, adj)
        return self.discretize(*self.decode(mu))

    @staticmethod
    def discretize(op_logits, adj_logits) -> tuple[torch.Tensor, torch.Tensor]:
        m = adj_logits.shape[-1]
        return op_logits.argmax(-1), (torch.triu(adj_logits, 1) > 0).float() * torch.ones(m, m).triu(1)

    @torch.no_grad()
    def embed(self, ops, adj) -> torch.Tensor:
        """Architecture embedding ``[B, latent]``: the mean of the node means over the real nodes."""
        mu, _ = self.encode(ops, adj)
        real = (ops != self.n_labels).float().unsqueeze(-1)
        return (mu * real).sum(1) / real.sum(1)

    def gin_state_dict(self) -> dict:
        """Weights of the GIN part: load into ``GINEncoder(n_labels, hidden, layers)`` (train_eps=True)."""
        return {k: v.detach().clone() for k, v in self.gin.state_dict().items()}

    # --- checkpoints ------------------------------------------------------------------------
    @classmethod
    def from_config(cls, config: dict) -> "VGAE":
        return cls(**{k: config[k] for k in CONFIG_KEYS})
