"""Pretraining quality of an arch2vec autoencoder (Yan et al. 2020, Table 1) and latent-space checks.

* :func:`reconstruction` -- on held-out architectures, decode the posterior means and compare:
  ``accuracy`` = % of architectures whose every node label and every upper-triangular adjacency
  entry is recovered (the strict figure), plus per-node ``ops_accuracy`` and per-entry
  ``adj_accuracy``.
* :func:`validity_uniqueness` -- decode ``n`` latent samples (one ``[M, latent]`` matrix per
  sample); ``validity`` = % decoded graphs that are valid cells of the space
  (``space.is_valid``), ``uniqueness`` = % distinct (``space.key``) among the valid ones.
  ``prior="standard"`` samples :math:`z \\sim \\mathcal N(0, I)` as the paper states;
  ``prior="fitted"`` samples :math:`z = \\mu_{emp} + \\sigma_{emp} \\odot \\epsilon` with the per-slot
  mean / std of the training posterior means, as arch2vec's released pretraining scripts do.
* :func:`distance_correlation` -- Spearman / Pearson correlation between the L2 distance of two
  architectures' embeddings and their edit distance (:func:`edit_distance`) on random pairs.

>>> import numpy as np
>>> from nascore.spaces import get_space
>>> from nascore.arch2vec.vgae import VGAE, dense_tensors
>>> space = get_space("nb201")
>>> ops, adj = dense_tensors(space, [space.sample(np.random.default_rng(k)) for k in range(4)])
>>> model = VGAE(len(space.node_labels), space.max_nodes, hidden=16)
>>> sorted(reconstruction(model, ops, adj))
['accuracy', 'adj_accuracy', 'ops_accuracy']
"""

from __future__ import annotations

import numpy as np
import torch

from nascore.arch2vec.vgae import VGAE, decode_arch


@torch.no_grad()
def reconstruction(model: VGAE, ops: torch.Tensor, adj: torch.Tensor, batch_size: int = 4096) -> dict:
    """Reconstruction accuracies (percent) of the dense batch ``(ops [B, M], adj [B, M, M])``."""
    model.eval()
    m = ops.shape[1]
    iu = torch.triu_indices(m, m, 1)
    exact = op_ok = adj_ok = 0
    for s in range(0, len(ops), batch_size):
        o, a = ops[s:s + batch_size], adj[s:s + batch_size]
        ro, ra = model.reconstruct(o, a)
        ok_o = ro == o
        ok_a = ra[:, iu[0], iu[1]] == a[:, iu[0], iu[1]]
        exact += int((ok_o.all(1) & ok_a.all(1)).sum())
        op_ok += int(ok_o.sum())
        adj_ok += int(ok_a.sum())
    n = len(ops)
    return {"accuracy": 100.0 * exact / n, "ops_accuracy": 100.0 * op_ok / (n * m),
            "adj_accuracy": 100.0 * adj_ok / (n * iu.shape[1])}


@torch.no_grad()
def latent_stats(model: VGAE, ops: torch.Tensor, adj: torch.Tensor, batch_size: int = 4096):
    """Per-slot mean and std ``[M, latent]`` of the posterior means over a dense batch."""
    model.eval()
    mus = torch.cat([model.encode(ops[s:s + batch_size], adj[s:s + batch_size])[0]
                     for s in range(0, len(ops), batch_size)])
    return mus.mean(0), mus.std(0)


@torch.no_grad()
def validity_uniqueness(model: VGAE, space, n: int = 10_000, seed: int = 0, prior: str = "standard",
                        stats: tuple[torch.Tensor, torch.Tensor] | None = None) -> dict:
    """Validity and uniqueness (percent) of ``n`` decoded latent samples (see module docstring)."""
    if prior not in ("standard", "fitted"):
        raise ValueError(f"prior must be 'standard' or 'fitted', got {prior!r}")
    if prior == "fitted" and stats is None:
        raise ValueError("prior='fitted' needs stats=(mean, std) from latent_stats()")
    model.eval()
    g = torch.Generator().manual_seed(int(seed))
    m, d = model.config["max_nodes"], model.config["latent"]
    z = torch.randn((n, m, d), generator=g)
    if prior == "fitted":
        z = z * stats[1] + stats[0]
    ops, adj = model.discretize(*model.decode(z))
    ops, adj = ops.numpy(), adj.numpy().astype(np.int64)
    keys = set()
    valid = 0
    for b in range(n):
        a = decode_arch(space, ops[b], adj[b])
        if a is not None and space.is_valid(a):
            valid += 1
            keys.add(space.key(a))
    return {"validity": 100.0 * valid / n, "uniqueness": 100.0 * len(keys) / valid if valid else 0.0,
            "samples": n, "prior": prior}


def edit_distance(ops_a, adj_a, ops_b, adj_b) -> int:
    """Node-label substitutions + adjacency insertions/deletions between two dense cells, nodes
    matched by position. An upper bound on the graph edit distance; exact for NAS-Bench-201,
    whose cells share one adjacency (it counts the edges whose operation differs).

    >>> edit_distance(np.array([0, 1, 2]), np.eye(3, k=1), np.array([0, 2, 2]), np.eye(3, k=1))
    1
    """
    return int((np.asarray(ops_a) != np.asarray(ops_b)).sum()
               + (np.triu(np.asarray(adj_a), 1) != np.triu(np.asarray(adj_b), 1)).sum())


def distance_correlation(emb: np.ndarray, ops: np.ndarray, adj: np.ndarray, pairs: int = 20_000,
                         seed: int = 0) -> dict:
    """Correlation of embedding L2 distance with :func:`edit_distance` on ``pairs`` random pairs,
    plus the mean latent distance at each edit distance."""
    from scipy.stats import pearsonr, spearmanr

    rng = np.random.default_rng(seed)
    i = rng.integers(0, len(emb), pairs)
    j = rng.integers(0, len(emb), pairs)
    keep = i != j
    i, j = i[keep], j[keep]
    d_lat = np.linalg.norm(emb[i] - emb[j], axis=1)
    iu = np.triu_indices(adj.shape[1], 1)
    d_ged = (ops[i] != ops[j]).sum(1) + (adj[i][:, iu[0], iu[1]] != adj[j][:, iu[0], iu[1]]).sum(1)
    by = {int(k): float(d_lat[d_ged == k].mean()) for k in np.unique(d_ged)}
    return {"pairs": int(len(i)), "spearman": float(spearmanr(d_lat, d_ged)[0]),
            "pearson": float(pearsonr(d_lat, d_ged)[0]), "mean_latent_distance_by_edit_distance": by}
