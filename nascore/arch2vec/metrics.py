"""Pretraining quality of an arch2vec autoencoder (Yan et al. 2020, Table 1) and latent-space checks.

* :func:`reconstruction` -- on held-out architectures, decode the posterior means and compare:
  ``accuracy`` = % of architectures whose every node label and every upper-triangular adjacency
  entry is recovered (whole-graph exact reconstruction, the strict figure), plus per-node
  ``ops_accuracy`` (all ``M`` slots, padding included) and per-entry ``adj_accuracy`` (all
  ``M(M-1)/2`` upper-triangular entries). The per-element pair is what the released pretraining
  scripts print (``get_val_acc_vae`` / ``get_accuracy`` in ``utils/utils.py``: ``acc_ops``, the
  label argmax agreement over all nodes, and ``acc_adj``, thresholded upper-triangular agreement),
  and so the measure of the paper's reconstruction figures; whole-graph exact reconstruction is
  stricter and bounded by :func:`wl_ceiling`.
* :func:`wl_ceiling` -- the share of cells that *no* encoder bounded by the Weisfeiler-Lehman
  test (GIN included) with an inner-product adjacency decoder can reconstruct exactly.
* :func:`validity_uniqueness` -- decode ``n`` latent samples, one ``[M, latent]`` matrix each,
  exactly as the released pretraining scripts do: operations by argmax of the operation decoder,
  adjacency by :math:`\\sigma(z z^\\top) > 0.5` on the strict upper triangle. Two sampling
  distributions: ``prior="fitted"`` (the released scripts' protocol, and the figure Table 1
  reports) draws :math:`z = \\mu_{emp} + \\sigma_{emp} \\odot \\epsilon` with the per-slot mean / std
  of the training posterior means; ``prior="standard"`` draws :math:`z \\sim \\mathcal N(0, I)`.
  Each decoded graph is judged by two rule sets, both reported:

  - ``strict``: the decoded graph (isolated "no node" slots dropped) must be a cell of the space,
    ``space.is_valid``; uniqueness counts distinct ``space.key`` among the valid ones;
  - ``arch2vec``: the checks of the released scripts (:data:`ARCH2VEC_RULES`) -- NAS-Bench-201:
    only the node labels (input first, output last, nodes 2..6 operations; the released check
    starts its loop at node 2, so node 1 is not checked, and the adjacency is never looked at);
    NAS-Bench-101: the official ``nasbench`` rule (prune every node off the input-to-output paths
    *first*, whatever its label, then input/output labels, interior operations, at most 9 edges);
    DARTS cells: the input/output markers, operation labels on the 8 op nodes, and for each op
    node at least one edge from a node before its intermediate node (so any number of inputs,
    edges between the two op nodes of one intermediate node and the edges to the output are not
    checked; the released "no edge from a later node" part looks below the diagonal, where a
    decoded upper-triangular matrix has none). Uniqueness counts distinct isomorphism-invariant hashes of the *raw* decoded
    labelled graph (``nasbench``'s ``hash_module`` on the unpruned matrix there; here
    :attr:`nascore.arch.Arch.hash`). Spaces without a released rule fall back to ``strict``.

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

from nascore.arch import Arch
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
    """Per-slot mean and std ``[M, latent]`` of the posterior means over a dense batch (streamed:
    memory does not grow with the number of architectures)."""
    model.eval()
    s1 = s2 = None
    n = 0
    for s in range(0, len(ops), batch_size):
        mu = model.encode(ops[s:s + batch_size], adj[s:s + batch_size])[0].double()
        s1 = mu.sum(0) if s1 is None else s1 + mu.sum(0)
        s2 = (mu * mu).sum(0) if s2 is None else s2 + (mu * mu).sum(0)
        n += len(mu)
    mean = s1 / n
    var = (s2 - n * mean * mean) / max(n - 1, 1)
    return mean.float(), var.clamp_min(0).sqrt().float()


# --- ceiling of whole-graph exact reconstruction ------------------------------------------------
def _undirected(adj) -> np.ndarray:
    a = np.triu(np.asarray(adj) != 0, 1)
    return a | a.transpose(0, 2, 1)


def wl_colours(ops, adj, rounds: int | None = None, seed: int = 0) -> np.ndarray:
    """Weisfeiler-Lehman (1-WL colour refinement) colours ``[B, M]`` int64 of dense cells.

    ``ops [B, M]`` labels are the initial colours (padding slots included, with their own label);
    each round a node's new colour is its colour and the multiset of its neighbours' colours in
    the *undirected* graph ``adj + adj^T`` (what the arch2vec encoders aggregate over, ours and the
    released ``preprocessing`` method 4 alike). ``rounds`` None: refine until no cell's partition
    changes (at most ``M - 1`` rounds); else that many rounds (0: the labels). Colours are global
    (comparable across cells); the multiset is hashed as a wrap-around sum of random 64-bit
    weights (a collision needs two different multisets of at most ``M`` colours to sum alike).

    >>> ops = np.array([[0, 1, 1, 2]])
    >>> adj = np.array([[[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]]])
    >>> c = wl_colours(ops, adj)
    >>> bool(c[0, 1] == c[0, 2]), len(set(c[0].tolist()))
    (True, 3)
    """
    ops = np.asarray(ops, np.int64)
    und = _undirected(adj).astype(np.uint64)
    b, m = ops.shape
    rng = np.random.default_rng(seed)
    _, colours = np.unique(ops.ravel(), return_inverse=True)
    colours = colours.reshape(b, m)

    def classes(c):
        s = np.sort(c, 1)
        return 1 + (np.diff(s, axis=1) != 0).sum(1)

    k = classes(colours)
    r = 0
    while (rounds is None and r < max(m - 1, 0)) or (rounds is not None and r < rounds):
        w = rng.integers(1, np.iinfo(np.int64).max, size=int(colours.max()) + 1, dtype=np.int64).astype(np.uint64)
        sig = np.matmul(und, w[colours][..., None])[..., 0]  # uint64, wraps around
        pairs = np.stack([colours.ravel().astype(np.uint64), sig.ravel()], 1)
        _, new = np.unique(pairs, axis=0, return_inverse=True)
        new = new.reshape(b, m)
        r += 1
        k_new = classes(new)
        colours = new
        if (k_new == k).all():  # stable: no cell's partition was refined (it never can be later)
            break
        k = k_new
    return colours


def wl_ceiling(ops, adj, rounds: int | None = None, batch_size: int = 65_536) -> dict:
    """Cells that an encoder bounded by 1-WL with an inner-product adjacency decoder cannot
    reconstruct exactly, and the resulting ceiling of whole-graph exact reconstruction (percent).

    The argument. The encoder (a GIN over ``adj + adj^T`` with the labels one-hot as input, ours or
    the released one) computes node states that are functions of the node's WL colour after as
    many rounds as it has layers (4 here and in the release): two nodes ``u != v`` of one colour get
    *identical* :math:`\\mu_u = \\mu_v` (BatchNorm in eval mode is a per-feature affine map and
    keeps that). Reconstruction decodes :math:`\\mu`: the label by argmax of a linear map (so equal
    colours, which carry equal labels, are harmless there) and the edge ``{u, v}`` by
    :math:`\\mu_u^\\top \\mu_v > 0` on the upper triangle. For a DAG in topological order the upper
    triangle holds each undirected pair once, so exact reconstruction needs the *undirected*
    adjacency to equal ``[mu_u . mu_v > 0]`` for every pair. Two ways this is impossible:

    1. *Same colour, not adjacent* (``same_colour_nonadjacent``): :math:`\\mu_u^\\top \\mu_v =
       \\|\\mu_u\\|^2 \\ge 0`, so the decoder predicts the absent edge ``{u, v}`` unless
       :math:`\\mu_u = 0`; but then every logit of ``u`` is 0 and ``u`` is decoded without any
       edge, wrong unless ``u`` has none. So a cell fails if two distinct nodes of one colour are
       non-adjacent and not isolated (isolated nodes of one colour -- NB101's padding slots -- can
       all sit at :math:`\\mu = 0` and be decoded right). This is the argument of issue 15.
    2. *Colour-pair inconsistency*: the logit of ``{u, v}`` depends only on the colours of ``u``
       and ``v``, so two pairs with the same two (different) colours must be both edges or both
       non-edges. A cell with ``c(u) = c(u')``, ``c(v) = c(v')``, ``{u, v}`` an edge and
       ``{u', v'}`` not, fails even when every colour class is a clique -- e.g. the 4-cycle
       ``0->1, 0->2, 1->3, 2->3`` labelled ``a, a, b, b``, where both classes are adjacent pairs.

    ``unreconstructable`` counts cells with either defect. Conversely, a cell with neither can be
    decoded exactly from some per-colour vectors (a Gram matrix with the required off-diagonal
    signs and a large diagonal is positive definite; at most ``M <= 16 = latent`` colours), so per
    cell the condition is exact; across a data set one encoder and one decoder must serve all
    cells at once, so ``ceiling = 100 * (1 - unreconstructable / cells)`` is an upper bound on
    exact reconstruction, not a promise. ``rounds`` None uses the stable WL colours, which holds
    for any depth (a deeper or different message-passing encoder cannot separate what 1-WL does
    not); ``rounds=4`` is the bound for the 4-layer encoders (coarser colours, more cells fail).
    Per-element accuracies are not capped this way: a defective cell loses one or a few entries.

    >>> ops = np.array([[0, 1, 1, 2], [0, 1, 3, 2]])  # input, two parallel ops, output
    >>> adj = np.array([[[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]]] * 2)
    >>> r = wl_ceiling(ops, adj)
    >>> r["unreconstructable"], r["ceiling"]
    (1, 50.0)
    """
    ops = np.asarray(ops)
    n = len(ops)
    c2 = bad = 0
    for s in range(0, n, batch_size):
        o = np.asarray(ops[s:s + batch_size], np.int64)
        und = _undirected(np.asarray(adj[s:s + batch_size]))
        c = wl_colours(o, und, rounds)
        m = o.shape[1]
        same = c[:, :, None] == c[:, None, :]
        off = ~np.eye(m, dtype=bool)
        active = und.any(2)
        d2 = (same & off & ~und & active[:, :, None]).any((1, 2))
        first = same.argmax(2)  # a representative (the first node) of each node's colour class
        rows = np.arange(len(o))[:, None, None]
        rep = und[rows, first[:, :, None], first[:, None, :]]
        d1 = (~same & (und != rep)).any((1, 2))
        c2 += int(d2.sum())
        bad += int((d1 | d2).sum())
    return {"cells": n, "rounds": "stable" if rounds is None else int(rounds),
            "same_colour_nonadjacent": c2, "unreconstructable": bad,
            "ceiling_same_colour_only": 100.0 * (1 - c2 / n) if n else 100.0,
            "ceiling": 100.0 * (1 - bad / n) if n else 100.0}


# --- validity rules of the released arch2vec scripts ---------------------------------------------
def _nb201_rule(labels, adj, space) -> bool:
    from nascore.spaces.nb201 import OPS

    return labels[0] == "input" and labels[-1] == "output" and all(o in OPS for o in labels[2:-1])


def _nb101_rule(labels, adj, space) -> bool:
    from nascore.spaces.nb101 import MAX_EDGES, OP_INDEX

    arch = Arch.from_numpy(np.triu(adj, 1), labels)
    p = arch.prune()  # nasbench ModelSpec prunes first, whatever the labels of the dropped nodes
    if p.n_nodes == 2 and not p.matrix[0][1]:
        return False
    return (p.ops[0] == "input" and p.ops[-1] == "output" and p.n_edges <= MAX_EDGES
            and all(o in OP_INDEX for o in p.ops[1:-1]))


def _darts_cell_rule(labels, adj, space) -> bool:
    from nascore.spaces.darts import OPS

    if labels[0] != "c_k-2" or labels[1] != "c_k-1" or labels[-1] != "output":
        return False
    if not all(o in OPS for o in labels[2:-1]):
        return False
    a = np.triu(adj, 1)
    # op nodes 2+2b, 3+2b need an edge from a node before 2+2b; the released check also asks for
    # no edge from nodes at or after 4+2b, which lie below the diagonal and are always absent
    return all(a[:2 + 2 * b, node].any() for b in range(4) for node in (2 + 2 * b, 3 + 2 * b))


#: validity checks of the released arch2vec pretraining scripts, by space name
ARCH2VEC_RULES = {"nb201": _nb201_rule, "nb101": _nb101_rule, "darts-cell": _darts_cell_rule}
PAD_LABEL = "<none>"


@torch.no_grad()
def decode_samples(model: VGAE, n: int, seed: int = 0, prior: str = "fitted",
                   stats: tuple[torch.Tensor, torch.Tensor] | None = None, batch_size: int = 4096):
    """``(ops [n, M] int64, adj [n, M, M] 0/1 int64)`` decoded from ``n`` latent samples."""
    if prior not in ("standard", "fitted"):
        raise ValueError(f"prior must be 'standard' or 'fitted', got {prior!r}")
    if prior == "fitted" and stats is None:
        raise ValueError("prior='fitted' needs stats=(mean, std) from latent_stats()")
    model.eval()
    g = torch.Generator().manual_seed(int(seed))
    m, d = model.config["max_nodes"], model.config["latent"]
    ops, adj = [], []
    for s in range(0, n, batch_size):
        z = torch.randn((min(batch_size, n - s), m, d), generator=g)
        if prior == "fitted":
            z = z * stats[1] + stats[0]
        o, a = model.discretize(*model.decode(z))
        ops.append(o)
        adj.append(a.to(torch.int64))
    return torch.cat(ops).numpy(), torch.cat(adj).numpy()


def validity_uniqueness(model: VGAE, space, n: int = 10_000, seed: int = 0, prior: str = "fitted",
                        stats: tuple[torch.Tensor, torch.Tensor] | None = None) -> dict:
    """Validity and uniqueness (percent) of ``n`` decoded latent samples under both rule sets
    (see module docstring): ``{"strict": {...}, "arch2vec": {...}, "samples", "prior"}``."""
    ops, adj = decode_samples(model, n, seed, prior, stats)
    rule = ARCH2VEC_RULES.get(space.name)
    names = list(space.node_labels) + [PAD_LABEL]
    strict_keys: set[str] = set()
    raw_keys: set[str] = set()
    strict_valid = raw_valid = 0
    for b in range(n):
        a = decode_arch(space, ops[b], adj[b])
        if a is not None and space.is_valid(a):
            strict_valid += 1
            strict_keys.add(space.key(a))
        if rule is not None:
            labels = [names[int(k)] for k in ops[b]]
            if rule(labels, adj[b], space):
                raw_valid += 1
                raw_keys.add(Arch.from_numpy(np.triu(adj[b], 1), labels).hash)
    out = {"strict": {"validity": 100.0 * strict_valid / n,
                      "uniqueness": 100.0 * len(strict_keys) / strict_valid if strict_valid else 0.0},
           "samples": n, "prior": prior}
    if rule is not None:
        out["arch2vec"] = {"validity": 100.0 * raw_valid / n,
                           "uniqueness": 100.0 * len(raw_keys) / raw_valid if raw_valid else 0.0}
    else:
        out["arch2vec"] = {**out["strict"], "note": f"no released rule for {space.name}: strict rule used"}
    return out


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
