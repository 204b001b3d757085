"""Graph Isomorphism Network encoder over a space's graph encoding (Xu et al., ICLR 2019).

One GIN layer (``torch_geometric.nn.GINConv``) updates every node as

.. math::  h_v^{(k)} = \\mathrm{MLP}^{(k)}\\big((1 + \\epsilon^{(k)})\\, h_v^{(k-1)} + \\sum_{u \\in \\mathcal N(v)} h_u^{(k-1)}\\big)

with a learnable :math:`\\epsilon` (Eq. 4.1 of the paper). Architectures are DAGs; with
``bidirectional=True`` (default) a node hears both its predecessors and its successors (each
edge is used in both directions), so information from the output reaches the input side too.
The graph embedding is the mean (or sum) of the final node states.

Inputs: a :class:`torch_geometric.data.Batch` of ``space.to_graph(arch)`` objects (``x``:
one-hot labels ``[N, L]``, ``edge_index`` ``[2, E]``, ``batch`` ``[N]``). Output:
``(node_states [N, hidden], graph_embedding [B, hidden])``.

>>> import numpy as np
>>> from nascore.spaces import get_space
>>> space = get_space("nb201")
>>> archs = [space.sample(np.random.default_rng(k)) for k in range(3)]
>>> enc = GINEncoder(len(space.node_labels), hidden=16, layers=2)
>>> nodes, graphs = enc(to_batch(space, archs))
>>> tuple(nodes.shape), tuple(graphs.shape)
((24, 16), (3, 16))
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch_geometric.data import Batch
from torch_geometric.nn import GINConv, global_add_pool, global_mean_pool


def to_batch(space, archs: Sequence) -> Batch:
    """Batch the graph encodings of ``archs`` for a GNN."""
    return Batch.from_data_list([space.to_graph(a) for a in archs])


def _mlp(i: int, o: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(i, o), nn.BatchNorm1d(o), nn.ReLU(), nn.Linear(o, o))


class GINEncoder(nn.Module):
    def __init__(self, in_dim: int, hidden: int = 128, layers: int = 4, train_eps: bool = True,
                 bidirectional: bool = True, pool: str = "mean", dropout: float = 0.0):
        super().__init__()
        if pool not in ("mean", "sum"):
            raise ValueError(f"pool must be 'mean' or 'sum', got {pool!r}")
        self.convs = nn.ModuleList(GINConv(_mlp(in_dim if k == 0 else hidden, hidden), train_eps=train_eps)
                                   for k in range(layers))
        self.bidirectional = bidirectional
        self.pool = global_mean_pool if pool == "mean" else global_add_pool
        self.dropout = dropout
        self.out_dim = hidden

    def forward(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        x, ei = batch.x, batch.edge_index
        if self.bidirectional:
            ei = torch.cat([ei, ei.flip(0)], dim=1)
        for k, conv in enumerate(self.convs):
            x = conv(x, ei)
            if k < len(self.convs) - 1:
                x = torch.relu(x)
                x = nn.functional.dropout(x, self.dropout, self.training)
        return x, self.pool(x, batch.batch)
