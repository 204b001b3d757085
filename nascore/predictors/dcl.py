"""The DCL-ENAS neural predictor: a GIN trained in two contrastive stages (Zhang, Gong, Chen &
Zhang, "Evolutionary Neural Architecture Search with Dual Contrastive Learning", 2025, §3).

No official code is public; this is a clean implementation from the method. Where the paper is
vague the choices follow its closest published relatives and are configurable in
:class:`DCLConfig`:

Soft encoder
    :class:`~nascore.encoders.gin.GINEncoder` over ``space.to_graph(arch)`` (one-hot labels,
    bidirectional message passing, mean pooling) gives the embedding ``h`` ``[B, hidden]``. Two
    heads sit on it: a projection ``g(h)`` (Linear-ReLU-Linear, L2-normalised, ``proj_dim``) for
    the contrastive losses, as in SimCLR (Chen et al., ICML 2020, §2.1), and a score head
    ``f(h)`` (Linear-ReLU-Linear -> 1) whose output ranks architectures.

Stage 1 -- contrastive self-supervised pretraining (no accuracy used)
    ``pretrain_archs`` unlabelled architectures are sampled from the space. Each step draws
    ``pretrain_batch`` of them and one *view* of each, and minimises the multi-positive InfoNCE
    loss (the supervised-contrastive form of Khosla et al., NeurIPS 2020, Eq. 2, with the labels
    replaced by hard-encoding similarity)::

        L = mean_i  -1/|P(i)| * sum_{p in P(i)} log( exp(z_i.z_p / tau) / sum_{j != i} exp(z_i.z_j / tau) )

    over the ``2B`` embeddings ``z``. The positives ``P(i)`` of an item are its own view and every
    item of the batch whose path encoding (:mod:`nascore.encoders.path`) lies within
    ``positive_distance`` (Jaccard) of it -- the hard encoder defines which architectures count as
    similar, as CATE (Yan et al., ICML 2021) and the DCL-ENAS hard encoder do. Views
    (:func:`structure_view`, tried in the order of ``views``):

    * ``relabel-dead`` -- give nodes that lie on no live input-output path (after dropping
      ``none``) another label, one node at a time with the dead set recomputed after each change
      (two dead nodes relabelled together could form a live path): a pruning-equivalent cell
      computing the same function.
    * ``add-dead`` -- insert a dead node (an input but no output), as NAS-Bench-101's unpruned
      7x7 matrices have: again the same function.
    * ``mutate`` -- a small perturbation: of ``mutation_tries`` mutations the one closest in path
      encoding.

    The two "dead node" views need one input (node 0) and one output (last node); for spaces
    with several sources and sinks (DARTS) only ``mutate`` applies.

    Isomorphic relabelling is *not* a view: the GIN (and the path encoding) are invariant to it,
    so it would give identical embeddings. The learning rate warms up linearly for
    ``warmup_steps`` then follows a cosine decay.

Stage 2 -- contrastive fine-tuning for relative performance
    On the labelled architectures the encoder and score head are fine-tuned to *rank*, not to
    regress accuracy: ``rank_loss="pairwise"`` is the RankNet logistic loss over every ordered
    pair (Burges et al., ICML 2005) ``mean_{y_i > y_j} log(1 + exp(-(s_i - s_j)))``;
    ``"listnet"`` the ListNet top-one cross-entropy (Cao et al., ICML 2007) between
    ``softmax(y_std / list_temperature)`` and ``softmax(s)``; ``"margin"`` the margin ranking
    loss the paper describes for this stage, ``mean_{y_i > y_j} max(0, margin - (s_i - s_j))``
    (:func:`margin_rank_loss`; ``y`` is standardised, so ``margin`` is in score units -- the
    paper gives no value, 0.1 is our choice). ``supcon_weight`` adds the supervised contrastive
    loss on ``z`` with performance-quantile bins as classes (architectures of similar accuracy
    pulled together); its weight ramps up linearly over the first ``contrastive_warmup`` epochs
    (:func:`contrastive_weight_at`: ``supcon_weight * min(1, (epoch + 1) / contrastive_warmup)``;
    0 = no warm-up), the warm-up of the contrastive weight the paper describes. The paper's form
    of stage 2 is therefore ``rank_loss="margin"`` with ``supcon_weight > 0`` and
    ``contrastive_warmup > 0``. The default is the margin ranking loss with the contrastive term
    off (issue 15 item 9, ``benchmarks/RESULTS.md`` "Paper's stage 2 and persistent population"):
    on NAS-Bench-201 it ranks better than RankNet at every n = 20-200 (Kendall tau +0.01 to +0.04,
    19/20 trials), the warmed-up contrastive term adds nothing on top, and the search at 100
    queries is not worse (30 paired seeds: both end on the optimum 29/30 times; the margin loss
    gets there 4.9 queries sooner on average). The previous default, RankNet, is
    ``rank_loss="pairwise"`` (``dcl-enas-pairwise`` in ``benchmarks/dcl_search.py``). Each fit restarts
    from the pretrained state (``refit="restart"``) or continues from the last fit
    (``"continue"``).

Hard encoding
    The paper's hard encoding is the sorted path-id sequence zero-padded to ``L_seq``
    (:meth:`~nascore.encoders.path.PathEncoder.sequence`). Here the hard encoder's only job is
    to say which architectures count as similar (the positives of stage 1), which needs a
    distance between two cells. On the sequence encoding a per-slot distance depends on the
    canonical order of the paths: one added or removed path shifts every later slot, so two
    cells sharing all but one path can look maximally different. The set (bag-of-paths)
    encoding (:meth:`~nascore.encoders.path.PathEncoder.encode`) with a Jaccard or Hamming
    distance is order-free and compares exactly "how many paths are shared", which is the
    similarity the paper uses the hard encoding for; so the set encoding is used and the
    sequence encoding is kept only for feature export.

``encoder_init`` (hook for arch2vec, :mod:`nascore.arch2vec`): a path to a ``state_dict`` of a
:class:`~nascore.encoders.gin.GINEncoder` of the same shape (``hidden``, ``layers``, the space's
labels); it initialises the GIN before stage 1 (set ``pretrain_steps=0`` to use it as is).

Determinism: every random draw comes from ``seed`` (numpy generators and ``torch.manual_seed``
inside :func:`torch.random.fork_rng`, so the global torch state is untouched); training runs
with ``threads`` torch threads (default 1, restored afterwards).

>>> import numpy as np
>>> from nascore.spaces import get_space
>>> space = get_space("nb201")
>>> cfg = DCLConfig(hidden=16, layers=2, pretrain_archs=64, pretrain_steps=5, pretrain_batch=16, finetune_epochs=5)
>>> p = DCLPredictor(space, cfg, seed=0)
>>> losses = p.pretrain()
>>> archs = [space.sample(np.random.default_rng(k)) for k in range(12)]
>>> y = [space.to_string(a).count("conv_3x3") + 0.1 * k for k, a in enumerate(archs)]
>>> _ = p.fit(archs, y)
>>> p.predict(archs).shape
(12,)
"""

from __future__ import annotations

import math
import os
import typing
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from typing import Sequence

import numpy as np
import torch
from torch import nn

from nascore.arch import Arch
from nascore.encoders.gin import GINEncoder
from nascore.encoders.path import PathEncoder, pairwise_distance
from nascore.errors import UserError
from nascore.validate import check_typed, integer, number

VIEWS = ("relabel-dead", "add-dead", "mutate")


#: allowed ranges of the numeric :class:`DCLConfig` fields (types come from the annotations)
DCL_BOUNDS = {
    "hidden": integer(1, 4096), "layers": integer(1, 64), "proj_dim": integer(1, 4096), "head_hidden": integer(1, 4096),
    "pretrain_archs": integer(0, 10_000_000), "pretrain_steps": integer(0, 10_000_000),
    "pretrain_batch": integer(1, 65_536), "pretrain_lr": number(0, lo_open=True),
    "temperature": number(0, lo_open=True), "warmup_steps": integer(0, 10_000_000), "positive_distance": number(0),
    "mutation_tries": integer(0, 1000), "finetune_epochs": integer(0, 1_000_000), "finetune_lr": number(0, lo_open=True),
    "weight_decay": number(0), "list_temperature": number(0, lo_open=True), "supcon_weight": number(0),
    "supcon_bins": integer(1, 1000), "batch_limit": integer(1, 1_000_000), "threads": integer(0, 1024),
    "margin": number(0, 100), "contrastive_warmup": integer(0, 1_000_000),
}
RANK_LOSSES = ("pairwise", "listnet", "margin")


@dataclass
class DCLConfig:
    """Hyper-parameters of :class:`DCLPredictor` (see the module docstring for their meaning)."""

    # soft encoder
    hidden: int = 64
    layers: int = 3
    proj_dim: int = 32
    head_hidden: int = 64
    # stage 1: contrastive pretraining
    pretrain_archs: int = 2048
    pretrain_steps: int = 200
    pretrain_batch: int = 128
    pretrain_lr: float = 2e-3
    temperature: float = 0.2
    warmup_steps: int = 20
    positive_distance: float = 0.0
    path_metric: str = "jaccard"
    views: tuple = VIEWS
    mutation_tries: int = 4
    # stage 2: contrastive fine-tuning
    finetune_epochs: int = 150
    finetune_lr: float = 2e-3
    weight_decay: float = 1e-4
    rank_loss: str = "margin"  # issue 15 item 9; before: "pairwise" (RankNet)
    list_temperature: float = 1.0
    margin: float = 0.1
    supcon_weight: float = 0.0
    contrastive_warmup: int = 0
    supcon_bins: int = 4
    refit: str = "restart"
    batch_limit: int = 256
    # execution
    threads: int | None = 1

    def __post_init__(self):
        hints = typing.get_type_hints(type(self))
        for f in fields(self):  # types from the annotations, ranges from BOUNDS: one-line errors
            setattr(self, f.name, check_typed(f"DCL predictor {f.name}", getattr(self, f.name), hints[f.name],
                                              DCL_BOUNDS.get(f.name)))
        for v in self.views:
            if v not in VIEWS:
                raise UserError(f"unknown DCL view {v!r} (choose from: {', '.join(VIEWS)})")
        if self.rank_loss not in RANK_LOSSES:
            raise UserError(f"rank_loss must be one of {', '.join(RANK_LOSSES)}, got {self.rank_loss!r}")
        if self.refit not in ("restart", "continue"):
            raise UserError(f"refit must be 'restart' or 'continue', got {self.refit!r}")
        if self.path_metric not in ("jaccard", "hamming"):
            raise UserError(f"path_metric must be 'jaccard' or 'hamming', got {self.path_metric!r}")

    @classmethod
    def from_dict(cls, d: dict | None) -> "DCLConfig":
        """Build from overrides; an unknown key is a one-line error listing the valid ones."""
        d = dict(d or {})
        names = [f.name for f in fields(cls)]
        for k in d:
            if k not in names:
                raise UserError(f"DCL predictor has no option {k!r} (valid: {', '.join(names)})")
        return cls(**d)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["views"] = list(self.views)
        return d


# --- torch helpers -----------------------------------------------------------------------------
@contextmanager
def torch_context(seed: int, threads: int | None):
    """Seeded torch RNG (global state restored afterwards) and a fixed number of CPU threads."""
    old = torch.get_num_threads()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        if threads:
            torch.set_num_threads(int(threads))
        try:
            yield
        finally:
            if threads:
                torch.set_num_threads(old)


class GraphCache:
    """Graph tensors of architectures, cached by ``space.key``; :meth:`batch` collates them for
    :class:`~nascore.encoders.gin.GINEncoder` (``x``, ``edge_index``, ``batch``) without the
    per-object overhead of :meth:`torch_geometric.data.Batch.from_data_list`."""

    def __init__(self, space, max_size: int = 200_000):
        self.space = space
        self.max_size = max_size
        self._cache: dict = {}

    def _get(self, arch: Arch):
        k = (arch.matrix, arch.ops)
        hit = self._cache.get(k)
        if hit is None:
            x = torch.from_numpy(self.space.node_features(arch))
            e = arch.edges
            ei = torch.tensor(e, dtype=torch.long).t() if e else torch.zeros(2, 0, dtype=torch.long)
            hit = (x, ei)
            if len(self._cache) < self.max_size:
                self._cache[k] = hit
        return hit

    def batch(self, archs: Sequence[Arch]):
        from torch_geometric.data import Batch

        items = [self._get(a) for a in archs]
        sizes = torch.tensor([x.shape[0] for x, _ in items])
        offsets = torch.cumsum(sizes, 0) - sizes
        x = torch.cat([x for x, _ in items])
        ei = torch.cat([e + int(o) for (_, e), o in zip(items, offsets)], dim=1)
        b = torch.repeat_interleave(torch.arange(len(items)), sizes)
        return Batch(x=x, edge_index=ei, batch=b)


class DCLModel(nn.Module):
    """GIN encoder + projection head (contrastive) + score head (ranking)."""

    def __init__(self, in_dim: int, cfg: DCLConfig):
        super().__init__()
        self.encoder = GINEncoder(in_dim, hidden=cfg.hidden, layers=cfg.layers)
        self.proj = nn.Sequential(nn.Linear(cfg.hidden, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, cfg.proj_dim))
        self.head = nn.Sequential(nn.Linear(cfg.hidden, cfg.head_hidden), nn.ReLU(), nn.Linear(cfg.head_hidden, 1))

    def embed(self, batch) -> torch.Tensor:
        return self.encoder(batch)[1]

    def project(self, h: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.proj(h), dim=1)

    def score(self, h: torch.Tensor) -> torch.Tensor:
        return self.head(h).squeeze(1)


# --- losses ----------------------------------------------------------------------------------------
def info_nce(z: torch.Tensor, pos: torch.Tensor, temperature: float) -> torch.Tensor:
    """Multi-positive InfoNCE (SupCon, Khosla et al. 2020, Eq. 2).

    ``z``: L2-normalised embeddings ``[N, d]``; ``pos``: bool ``[N, N]`` positives (diagonal
    ignored; rows without a positive are skipped).

    >>> z = nn.functional.normalize(torch.tensor([[1., 0], [1., .1], [0, 1.], [.1, 1.]]), dim=1)
    >>> pos = torch.tensor([[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]], dtype=torch.bool)
    >>> bool(info_nce(z, pos, 0.1) < info_nce(z, pos.roll(1, 1), 0.1))
    True
    """
    n = z.shape[0]
    eye = torch.eye(n, dtype=torch.bool)
    logits = (z @ z.t()) / temperature
    logits = logits.masked_fill(eye, float("-inf"))
    logp = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    pos = pos & ~eye
    cnt = pos.sum(1)
    keep = cnt > 0
    if not keep.any():
        return z.sum() * 0.0
    per = -(logp.masked_fill(~pos, 0.0).sum(1)[keep] / cnt[keep])
    return per.mean()


def pairwise_rank_loss(s: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """RankNet logistic loss over every pair with ``y_i > y_j``: mean ``softplus(-(s_i - s_j))``.

    >>> y = torch.tensor([1., 2., 3.])
    >>> bool(pairwise_rank_loss(y, y) < pairwise_rank_loss(-y, y))
    True
    """
    better = (y[:, None] - y[None, :]) > 0
    if not better.any():
        return s.sum() * 0.0
    diff = s[:, None] - s[None, :]
    return nn.functional.softplus(-diff[better]).mean()


def margin_rank_loss(s: torch.Tensor, y: torch.Tensor, margin: float = 0.1) -> torch.Tensor:
    """Margin ranking loss over every pair with ``y_i > y_j``: mean ``max(0, margin - (s_i - s_j))``
    (:class:`torch.nn.MarginRankingLoss` with target 1 on the better-first pairs).

    >>> round(margin_rank_loss(torch.tensor([0.0, 0.05, 1.0]), torch.tensor([1., 2., 3.]), margin=0.1).item(), 5)
    0.01667
    """
    better = (y[:, None] - y[None, :]) > 0
    if not better.any():
        return s.sum() * 0.0
    diff = s[:, None] - s[None, :]
    return torch.clamp(margin - diff[better], min=0.0).mean()


def contrastive_weight_at(epoch: int, weight: float, warmup: int) -> float:
    """Weight of the stage-2 contrastive term at ``epoch`` (0-based): linear warm-up to ``weight``
    over ``warmup`` epochs (``warmup=0``: constant).

    >>> [contrastive_weight_at(e, 0.5, 4) for e in range(6)]
    [0.125, 0.25, 0.375, 0.5, 0.5, 0.5]
    """
    if warmup <= 0:
        return float(weight)
    return float(weight) * min(1.0, (epoch + 1) / warmup)


def listnet_loss(s: torch.Tensor, y: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """ListNet top-one cross-entropy between ``softmax(y / temperature)`` and ``softmax(s)``."""
    target = torch.softmax(y / temperature, 0)
    return -(target * torch.log_softmax(s, 0)).sum()


def _cosine_warmup(step: int, total: int, warmup: int) -> float:
    if warmup and step < warmup:
        return (step + 1) / warmup
    if total <= warmup:
        return 1.0
    t = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * t))


# --- views ---------------------------------------------------------------------------------------------
def dead_nodes(arch: Arch, drop_ops: Sequence[str] = ("none",)) -> list[int]:
    """Interior nodes on no live input-to-output path (a node's own label does not count: a dead
    node stays dead whatever label it gets, so relabelling it keeps the cell's function).

    >>> from nascore.spaces import get_space
    >>> s = get_space("nb201")
    >>> dead_nodes(s.from_string("|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|nor_conv_1x1~2|"))
    [1, 6]
    """
    m = arch.adjacency
    n = arch.n_nodes
    drop = set(drop_ops)
    passable = [k == 0 or k == n - 1 or arch.ops[k] not in drop for k in range(n)]
    fwd = np.zeros(n, bool)
    fwd[0] = True
    for j in range(1, n):
        fwd[j] = any(m[i, j] and fwd[i] and passable[i] for i in range(j))
    bwd = np.zeros(n, bool)
    bwd[n - 1] = True
    for i in range(n - 2, -1, -1):
        bwd[i] = any(m[i, j] and bwd[j] and passable[j] for j in range(i + 1, n))
    return [k for k in range(1, n - 1) if not (fwd[k] and bwd[k])]


def structure_view(space, arch: Arch, rng: np.random.Generator, views: Sequence[str] = VIEWS,
                   encoder: PathEncoder | None = None, mutation_tries: int = 4) -> tuple[Arch, str]:
    """A positive view of ``arch`` and the name of the view used (see the module docstring)."""
    if encoder is not None:  # labels an interior node may carry, in the space's order
        allowed = set(encoder.interior) | set(encoder.drop_ops)
        interior = [lab for lab in space.node_labels if lab in allowed]
    else:
        interior = list(space.node_labels[1:-1])
    single_io = encoder is None or encoder.endpoints == "first-last"
    for v in views:
        if v in ("relabel-dead", "add-dead") and not single_io:
            continue  # "dead" is defined for one input (node 0) and one output (last node) only
        if v == "relabel-dead":
            dead = dead_nodes(arch)
            if dead:
                # one dead node at a time, re-checking: relabelling two jointly could revive both
                cur, done = arch, set()
                for _ in range(len(dead)):
                    free = [k for k in dead_nodes(cur) if k not in done]
                    if not free:
                        break
                    k = free[int(rng.integers(len(free)))]
                    ops = list(cur.ops)
                    choices = [lab for lab in interior if lab != ops[k]]
                    ops[k] = choices[int(rng.integers(len(choices)))]
                    cur, _ = Arch(cur.matrix, tuple(ops)), done.add(k)
                return cur, v
        elif v == "add-dead":
            n = arch.n_nodes
            if 2 <= n < space.max_nodes:
                m = np.zeros((n + 1, n + 1), np.int64)
                m[:n - 1, :n - 1] = arch.adjacency[:n - 1, :n - 1]
                m[:n - 1, n] = arch.adjacency[:n - 1, n - 1]
                m[int(rng.integers(n - 1)), n - 1] = 1  # the new node n-1 reads an earlier node, feeds nothing
                ops = list(arch.ops[:-1]) + [interior[int(rng.integers(len(interior)))], arch.ops[-1]]
                return Arch.from_numpy(m, ops), v
        elif v == "mutate":
            cands = [space.mutate(arch, rng) for _ in range(max(1, mutation_tries))]
            if encoder is None or len(cands) == 1:
                return cands[0], v
            d = pairwise_distance(encoder.encode(arch)[None], encoder.encode_many(cands))[0]
            return cands[int(np.argmin(d))], v
    return arch, "identity"


# --- the predictor -------------------------------------------------------------------------------------
_PRETRAINED: dict = {}  # (space, config, seed, encoder_init) -> (state_dict, losses); stage 1 uses no labels


class DCLPredictor:
    """The two-stage contrastive predictor (module docstring). ``fit`` then ``predict`` higher =
    better; scores are relative (only their order means anything)."""

    def __init__(self, space, config: DCLConfig | dict | None = None, seed: int = 0,
                 encoder_init: str | None = None, path_encoder: PathEncoder | None = None):
        self.space = space
        self.cfg = config if isinstance(config, DCLConfig) else DCLConfig.from_dict(config)
        self.seed = int(seed)
        self.encoder_init = None if encoder_init is None else str(encoder_init)
        self.paths = path_encoder or PathEncoder(space)
        self.graphs = GraphCache(space)
        with torch_context(self.seed, self.cfg.threads):
            self.model = DCLModel(len(space.node_labels), self.cfg)
        if self.encoder_init is not None:
            load_encoder_init(self.model.encoder, self.encoder_init)
        self._base_state = _clone_state(self.model)
        self.pretrain_losses: list[float] = []
        self.n_fits = 0

    # --- stage 1 ------------------------------------------------------------------------------
    def pretrain(self, archs: Sequence[Arch] | None = None, progress: bool = False) -> list[float]:
        """Stage 1 on ``archs`` (default: ``pretrain_archs`` sampled from the space). Returns the
        loss per step. Results are cached per (space, config, seed, encoder_init) in this process
        when ``archs`` is None, since they depend on nothing else."""
        cfg = self.cfg
        key = None
        if archs is None:
            key = (self.space.name, repr(sorted(cfg.to_dict().items())), self.seed, self.encoder_init)
            if key in _PRETRAINED:
                state, losses = _PRETRAINED[key]
                self.model.load_state_dict(state)
                self._base_state = _clone_state(self.model)
                self.pretrain_losses = list(losses)
                return list(losses)
        rng = np.random.default_rng([self.seed, 1])
        if archs is None:
            pool, seen = [], set()
            for _ in range(cfg.pretrain_archs * 20):
                if len(pool) >= cfg.pretrain_archs:
                    break
                a = self.space.sample(rng)
                k = self.space.key(a)
                if k not in seen:
                    seen.add(k)
                    pool.append(a)
        else:
            pool = list(archs)
        losses: list[float] = []
        if len(pool) >= 2 and cfg.pretrain_steps > 0:
            views = [structure_view(self.space, a, rng, cfg.views, self.paths, cfg.mutation_tries)[0] for a in pool]
            P = self.paths.encode_many(pool)
            V = self.paths.encode_many(views)
            B = min(cfg.pretrain_batch, len(pool))
            with torch_context(self.seed + 1, cfg.threads):
                model = self.model
                model.train()
                opt = torch.optim.AdamW(list(model.encoder.parameters()) + list(model.proj.parameters()),
                                        lr=cfg.pretrain_lr, weight_decay=cfg.weight_decay)
                sched = torch.optim.lr_scheduler.LambdaLR(
                    opt, lambda s: _cosine_warmup(s, cfg.pretrain_steps, cfg.warmup_steps))
                steps = range(cfg.pretrain_steps)
                if progress:
                    from tqdm import tqdm
                    steps = tqdm(steps, desc="DCL stage 1", leave=False)
                for _ in steps:
                    idx = rng.choice(len(pool), size=B, replace=False)
                    batch_archs = [pool[i] for i in idx] + [views[i] for i in idx]
                    enc = np.concatenate([P[idx], V[idx]])
                    pos = torch.from_numpy(pairwise_distance(enc, metric=cfg.path_metric) <= cfg.positive_distance)
                    ar = torch.arange(B)
                    pos[ar, ar + B] = True
                    pos[ar + B, ar] = True
                    z = model.project(model.embed(self.graphs.batch(batch_archs)))
                    loss = info_nce(z, pos, cfg.temperature)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    sched.step()
                    losses.append(loss.item())
            model.eval()
        self._base_state = _clone_state(self.model)
        self.pretrain_losses = losses
        if key is not None:
            _PRETRAINED[key] = (self._base_state, list(losses))
            while len(_PRETRAINED) > 8:
                _PRETRAINED.pop(next(iter(_PRETRAINED)))
        return losses

    # --- stage 2 ------------------------------------------------------------------------------
    def fit(self, archs: Sequence[Arch], y: Sequence[float], seed: int | None = None) -> list[float]:
        """Stage 2 on labelled ``archs`` (``y``: higher = better). Returns the loss per epoch.
        Raises :class:`UserError` for fewer than 2 labels, non-finite labels or constant labels."""
        archs = list(archs)
        y = np.asarray(y, np.float64)
        if len(archs) != len(y):
            raise UserError(f"fit got {len(archs)} architectures but {len(y)} labels")
        if len(archs) < 2:
            raise UserError(f"the predictor needs at least 2 labelled architectures, got {len(archs)}")
        if not np.isfinite(y).all():
            raise UserError("the predictor's labels must be finite numbers (got NaN or inf)")
        if np.ptp(y) == 0:
            raise UserError(f"all {len(y)} labels are equal ({y[0]}); a ranking predictor needs different values")
        cfg = self.cfg
        seed = self.seed + 1000 + self.n_fits if seed is None else int(seed)
        self.n_fits += 1
        if cfg.refit == "restart" or self.n_fits == 1:
            self.model.load_state_dict(self._base_state)
        ys = torch.tensor((y - y.mean()) / y.std(), dtype=torch.float32)
        bins = None
        if cfg.supcon_weight > 0:
            q = np.quantile(y, np.linspace(0, 1, cfg.supcon_bins + 1)[1:-1])
            bins = torch.from_numpy(np.searchsorted(q, y, side="right"))
        rng = np.random.default_rng([seed, 2])
        losses = []
        with torch_context(seed, cfg.threads):
            model = self.model
            model.train()
            opt = torch.optim.AdamW(model.parameters(), lr=cfg.finetune_lr, weight_decay=cfg.weight_decay)
            full = self.graphs.batch(archs) if len(archs) <= cfg.batch_limit else None
            for epoch in range(cfg.finetune_epochs):
                if full is not None:
                    idx, batch = np.arange(len(archs)), full
                else:
                    idx = rng.choice(len(archs), size=cfg.batch_limit, replace=False)
                    batch = self.graphs.batch([archs[i] for i in idx])
                ti = torch.from_numpy(idx)
                h = model.embed(batch)
                s = model.score(h)
                if cfg.rank_loss == "pairwise":
                    loss = pairwise_rank_loss(s, ys[ti])
                elif cfg.rank_loss == "margin":
                    loss = margin_rank_loss(s, ys[ti], cfg.margin)
                else:
                    loss = listnet_loss(s, ys[ti], cfg.list_temperature)
                if bins is not None:
                    b = bins[ti]
                    w = contrastive_weight_at(epoch, cfg.supcon_weight, cfg.contrastive_warmup)
                    loss = loss + w * info_nce(model.project(h), b[:, None] == b[None, :],
                                                               cfg.temperature)
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses.append(loss.item())
            model.eval()
        return losses

    # --- inference ----------------------------------------------------------------------------
    @torch.no_grad()
    def predict(self, archs: Sequence[Arch], chunk: int = 4096) -> np.ndarray:
        """Scores ``[len(archs)]`` (float64; higher = predicted better)."""
        archs = list(archs)
        if not archs:
            return np.zeros(0)
        self.model.eval()
        out = []
        with torch_context(self.seed, self.cfg.threads):
            for i in range(0, len(archs), chunk):
                h = self.model.embed(self.graphs.batch(archs[i:i + chunk]))
                out.append(self.model.score(h).double().numpy())
        return np.concatenate(out)

    @torch.no_grad()
    def embed(self, archs: Sequence[Arch], projected: bool = False) -> np.ndarray:
        """Embeddings ``[len(archs), hidden]`` (or the normalised projections ``[.., proj_dim]``)."""
        self.model.eval()
        with torch_context(self.seed, self.cfg.threads):
            h = self.model.embed(self.graphs.batch(list(archs)))
            return (self.model.project(h) if projected else h).double().numpy()


def _clone_state(model: nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def load_encoder_init(encoder: GINEncoder, path: str) -> None:
    """Load a GINEncoder ``state_dict`` saved with ``torch.save`` (e.g. by arch2vec) into ``encoder``;
    a missing file or a shape mismatch is a one-line :class:`UserError` naming the file."""
    if not os.path.exists(path):
        raise UserError(f"encoder_init {path} not found (a torch.save'd GINEncoder state_dict)")
    from nascore.safeload import torch_load
    state = torch_load(path, "torch state_dict (encoder_init)")
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise UserError(f"encoder_init {path}: expected a state_dict, got {type(state).__name__}")
    own = encoder.state_dict()
    missing = [k for k in own if k not in state]
    bad = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or bad:
        k = (missing or bad)[0]
        what = "missing" if missing else f"shape {tuple(state[k].shape)} instead of {tuple(own[k].shape)}"
        raise UserError(f"encoder_init {path}: does not fit the predictor's GIN ({k}: {what}); "
                        "use the same hidden/layers and space")
    encoder.load_state_dict({k: state[k] for k in own})
