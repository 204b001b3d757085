"""The arch2vec variational graph isomorphism autoencoder (Yan, Zheng, Ao, Zeng & Zhang, NeurIPS 2020).

Encoder (paper §3.1, Eq. 1-3): ``layers`` GIN layers with learnable :math:`\\epsilon` (a
:class:`nascore.encoders.gin.GINEncoder`, default 4 layers of width 128) over the bidirectional
adjacency, then two linear heads give a Gaussian per node,
:math:`q(z_i \\mid X, A) = \\mathcal N(\\mu_i, \\mathrm{diag}(\\sigma_i^2))` with ``latent = 16``.

Decoder (Eq. 4-5): the operations are a linear map of each node's :math:`z_i`
(logits :math:`z W_o + b_o`, one extra class = "no node" for padding; decoded by argmax) and the
adjacency is the inner product :math:`\\hat A = \\sigma(z z^\\top)`, read on the upper triangle
(decoded as :math:`\\hat A > 0.5`).

Loss (Eq. 6), normalised as in the released pretraining code (``form="arch2vec"``, default):
binary cross-entropy of :math:`\\sigma(zW_o + b_o)` against the one-hot operations (mean over
nodes and classes) + binary cross-entropy of :math:`\\sigma(zz^\\top)` on the upper triangle,
summed and divided by all :math:`M^2` entries (the released code masks the lower triangle to
zero on both sides and takes the mean) + the per-node KL divergence to :math:`\\mathcal N(0, I)`
times ``kl_weight``, which defaults to :math:`1/(BM)` as there (``B`` = batch, ``M`` = nodes).
Gradient norms are clipped at 5 there and here (:func:`nascore.arch2vec.pretrain.pretrain`).
``dropout`` applies dropout to :math:`z` before the decoder in training mode. The released
scripts pass 0.3 (their "decoder implicit regularisation"), but they call ``model.eval()`` after
the first epoch's training steps and never ``model.train()`` again, so the released model uses
the dropout -- and samples :math:`z`, and updates the BatchNorm running statistics -- in epoch 1
only (``schedule="released"`` of :func:`nascore.arch2vec.pretrain.pretrain`, which defaults the
dropout to 0.3). Under this package's schedule (``schedule="ours"``, training mode every epoch)
dropout 0.3 is active for all epochs and, with this package's GIN, the operations did not train
on NAS-Bench-201 (operation accuracy at the 40 % class-frequency plateau, exact reconstruction 0 %
after 10 epochs; with the released GIN layout they do train, slowly: 63 % exact after 10 epochs),
so that schedule defaults to dropout 0. Under the released schedule dropout 0.3 reaches 100 % on
NAS-Bench-201 by epoch 5-6 (measurements of both in ``benchmarks/RESULTS.md``).
``form="mean"`` is the plain variant this package used first:
softmax cross-entropy of the operations + mean BCE over the upper triangle + ``kl_weight``
(default 0.005) x KL; it gets off the plateau faster on tiny data. ``variational=False`` gives
the plain graph autoencoder (GAE) of the paper's comparison: :math:`z = \\mu`, no KL (same
decoder and loss otherwise).

Standard deviation: ``sigma_head="logvar"`` (default) reads the second head as
:math:`\\log\\sigma^2`, :math:`\\sigma = \\exp(\\tfrac12 \\mathrm{head})`; ``sigma_head="logstd"`` is the
released parameterisation, :math:`\\sigma = \\exp(\\mathrm{head})` (the released ``reparameterize``
uses ``std = exp(logvar)`` and its KL ``1 + 2 logvar - mu^2 - exp(logvar)^2``). The same family of
distributions and the same KL as a function of :math:`(\\mu, \\sigma)`; the head differs by a
factor 2, which changes the initial :math:`\\sigma` spread and the gradient scale. Internally
``"logstd"`` is turned into :math:`\\log\\sigma^2 = 2\\,\\mathrm{head}` right after the head, so
``encode`` always returns :math:`(\\mu, \\log\\sigma^2)`.

Differences from the released model, kept deliberately: the GIN is this package's
:class:`~nascore.encoders.gin.GINEncoder` (Linear-BN-ReLU-Linear per layer, ReLU between layers;
the released one adds BatchNorm + ReLU after every layer, the last included) so that its weights
can initialise predictors; one extra "no node" class for padding slots, where the released
NB-101 data have an all-zero label row.

Data layout ("dense"): ``ops`` integer tensor ``[B, M]`` (label index in ``space.node_labels``,
``PAD = len(node_labels)`` for absent nodes) and ``adj`` ``[B, M, M]`` 0/1 (forward edges,
upper-triangular), ``M = space.max_nodes``. :func:`dense_tensors` gives int64 / float32; the
pretraining datasets hold uint8 for both (about ``M + M^2`` bytes per architecture) and every
method here converts a batch on the fly. A cell with ``n < M`` nodes is padded *before its
output node*, so the input is always node 0 and the output node ``M-1`` (the released NB-101
data append the padding after the output instead); padding nodes have the "no node" label and no
edge.

Two forward paths use the *same* weights: :meth:`VGAE.encode` (dense batched matrix products,
used for training) and :meth:`VGAE.encode_graph` (``torch_geometric`` message passing through
``GINEncoder.forward`` on ``space.to_graph`` batches, no padding nodes). On spaces without padding
(NB201, DARTS) they give identical results (see the tests). Training uses the dense path because
it needs no per-step graph batching and handles NB101's padding slots (measured per training
step of the encoder, batch 32, one thread, ``benchmarks/arch2vec_pretrain.py``: 4.9 ms dense vs
8.7 ms torch-geometric including the batching, on a loaded 2-core CPU).

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
CONFIG_KEYS = ("n_labels", "max_nodes", "hidden", "layers", "latent", "variational", "dropout", "sigma_head")
#: values of keys that checkpoints written before the key existed lack
CONFIG_DEFAULTS = {"dropout": 0.0, "sigma_head": "logvar"}
#: readings of the second encoder head: ``"logvar"`` (ours, sigma = exp(head / 2)) and ``"logstd"``
#: (released, sigma = exp(head))
SIGMA_HEADS = ("logvar", "logstd")
LOSS_FORMS = ("arch2vec", "mean")


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
    dropped; ``None`` when a padding ("no node") slot has an edge or fewer than two real nodes
    remain (the caller's ``space.is_valid`` decides the rest)."""
    pad = len(space.node_labels)
    ops_row = np.asarray(ops_row)
    adj_row = np.triu(np.asarray(adj_row), 1)
    real = ops_row != pad
    if real.sum() < 2:
        return None
    if (~real).any() and (adj_row[~real].any() or adj_row[:, ~real].any()):
        return None  # an edge into or out of an absent node
    keep = np.flatnonzero(real)
    return Arch.from_numpy(adj_row[np.ix_(keep, keep)], [space.node_labels[int(ops_row[k])] for k in keep])


def _as_batch(ops: torch.Tensor, adj: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Compact (uint8) or dense storage -> int64 labels and float32 adjacency."""
    return (ops if ops.dtype == torch.int64 else ops.long()), (adj if adj.dtype == torch.float32 else adj.float())


# --- model --------------------------------------------------------------------------------------
class VGAE(nn.Module):
    """arch2vec's variational graph isomorphism autoencoder (see module docstring).

    ``n_labels``: ``len(space.node_labels)``; ``max_nodes``: ``space.max_nodes``.
    """

    def __init__(self, n_labels: int, max_nodes: int, hidden: int = 128, layers: int = 4, latent: int = 16,
                 variational: bool = True, dropout: float = 0.0, sigma_head: str = "logvar"):
        super().__init__()
        if not 0 <= dropout < 1:
            raise ValueError(f"decoder dropout must be in [0, 1), got {dropout}")
        if sigma_head not in SIGMA_HEADS:
            raise ValueError(f"sigma_head must be one of {SIGMA_HEADS}, got {sigma_head!r}")
        self.config = {"n_labels": int(n_labels), "max_nodes": int(max_nodes), "hidden": int(hidden),
                       "layers": int(layers), "latent": int(latent), "variational": bool(variational),
                       "dropout": float(dropout), "sigma_head": sigma_head}
        self.dropout = float(dropout)
        self.sigma_head = sigma_head
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
        """``(mu, log sigma^2)``; the released ``"logstd"`` head is log sigma, doubled here."""
        mu = self.fc_mu(h)
        if self.fc_logvar is None:
            return mu, None
        head = self.fc_logvar(h)
        return mu, (2 * head if self.sigma_head == "logstd" else head)

    def encode(self, ops: torch.Tensor, adj: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Dense path: ``(mu, logvar)`` each ``[B, M, latent]`` (``logvar`` None for a GAE)."""
        return self._heads(self._node_states_dense(*_as_batch(ops, adj)))

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
        """``z [B, M, latent]`` -> ``(op_logits [B, M, n_labels+1], adj_logits [B, M, M])``
        (``z`` goes through the decoder dropout in training mode)."""
        z = F.dropout(z, self.dropout, self.training)
        return self.op_decoder(z), torch.bmm(z, z.transpose(1, 2))

    # --- training ---------------------------------------------------------------------------
    def loss(self, ops, adj, kl_weight: float | None = None, generator: torch.Generator | None = None,
             form: str = "arch2vec"):
        """``(total, parts)`` for a dense batch; ``parts``: ops / adj / kl as floats (see the
        module docstring for ``form``; ``kl_weight`` None: 1/(B M) for "arch2vec", 0.005 for "mean")."""
        if form not in LOSS_FORMS:
            raise ValueError(f"loss form must be one of {LOSS_FORMS}, got {form!r}")
        ops, adj = _as_batch(ops, adj)
        mu, logvar = self.encode(ops, adj)
        z = self.reparameterize(mu, logvar, generator)
        op_logits, adj_logits = self.decode(z)
        b, m = ops.shape
        iu = torch.triu_indices(m, m, 1)
        up_logits, up_target = adj_logits[:, iu[0], iu[1]], adj[:, iu[0], iu[1]]
        if form == "arch2vec":
            target = F.one_hot(ops, op_logits.shape[-1]).float()
            l_ops = F.binary_cross_entropy_with_logits(op_logits, target)
            l_adj = F.binary_cross_entropy_with_logits(up_logits, up_target, reduction="sum") / (b * m * m)
            w = 1.0 / (b * m) if kl_weight is None else kl_weight
        else:
            l_ops = F.cross_entropy(op_logits.reshape(-1, op_logits.shape[-1]), ops.reshape(-1))
            l_adj = F.binary_cross_entropy_with_logits(up_logits, up_target)
            w = 0.005 if kl_weight is None else kl_weight
        if logvar is not None:
            kl = -0.5 * torch.mean(torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=-1))
        else:
            kl = torch.zeros(())
        total = l_ops + l_adj + w * kl
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
        ops, adj = _as_batch(ops, adj)
        mu, _ = self.encode(ops, adj)
        real = (ops != self.n_labels).float().unsqueeze(-1)
        return (mu * real).sum(1) / real.sum(1)

    def gin_state_dict(self) -> dict:
        """Weights of the GIN part: load into ``GINEncoder(n_labels, hidden, layers)`` (train_eps=True)."""
        return {k: v.detach().clone() for k, v in self.gin.state_dict().items()}

    # --- checkpoints ------------------------------------------------------------------------
    @classmethod
    def from_config(cls, config: dict) -> "VGAE":
        return cls(**{k: config.get(k, CONFIG_DEFAULTS.get(k)) for k in CONFIG_KEYS})
