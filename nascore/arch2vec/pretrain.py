"""Pretraining arch2vec on a whole search space, checkpoints, and cached embeddings.

:func:`space_dataset` gathers the architectures of a space in the compact dense layout of
:mod:`nascore.arch2vec.vgae` (uint8 labels ``[N, M]`` and adjacency ``[N, M, M]``, about
``M + M^2`` bytes per architecture, plus one key string each): every architecture of a finite
space -- all 423,624 NAS-Bench-101 cells read vectorised from the cached enumeration, any other
finite space streamed from ``space.enumerate()`` in one pass without keeping an :class:`Arch` per
architecture -- or ``samples`` distinct random cells of an infinite space such as DARTS (drawn
vectorised when the space has ``sample_dense``, as :class:`~nascore.arch2vec.cells.DartsCellSpace`
does). Nothing here is quadratic in the number of architectures.

:func:`pretrain` trains :class:`~nascore.arch2vec.vgae.VGAE` with Adam (released settings:
batch 32, lr 1e-3, gradient-norm clipping at 5, the released loss normalisation) on a seeded
``max_archs`` sample of the architectures (all of them by default), holding out a seeded
``holdout`` fraction of that sample; it measures the quality figures of
:mod:`nascore.arch2vec.metrics` on the held-out split and writes, atomically, into ``output``:

* ``model.pt`` -- ``{"format", "space", "config", "state_dict", "train", "metrics", "latent_stats"}``;
* ``gin_encoder.pt`` -- the state_dict of the model's
  ``GINEncoder(len(space.node_labels), hidden, layers, train_eps=True)`` (``encoder_init`` for
  predictors);
* ``metrics.json`` -- training curve, timings and quality figures;
* ``embeddings.npz`` -- ``keys`` (``space.key`` strings) and ``emb`` ``[N, latent]`` float32 for
  *every* architecture of a finite space (also those left out of a ``max_archs`` sample), or of
  the sampled cells of an infinite one, and the model file's digest.

Two training schedules (``schedule``):

* ``"released"`` -- what the released pretraining scripts do (``models/pretraining_nasbench101.py``,
  ``pretraining_nasbench201.py``, ``pretraining_darts.py`` of MSU-MLSys-Lab/arch2vec): the first
  epoch in training mode, then ``model.eval()`` (called there before the end-of-epoch validity
  check, and never undone), so from epoch 2 on the model trains with :math:`z = \\mu` (no
  sampling), without decoder dropout and with frozen BatchNorm running statistics (the BatchNorm
  scales and shifts still train). Its decoder dropout defaults to the released 0.3, which is
  therefore active during epoch 1 only.
* ``"ours"`` (default) -- training mode in every epoch (sampling, dropout, BatchNorm batch
  statistics throughout); decoder dropout defaults to 0, because 0.3 in every epoch keeps the
  operation labels at the class-frequency plateau.

Per epoch the curve records the held-out whole-graph exact reconstruction and the per-node label
/ per-entry adjacency accuracies (the measures the released scripts print), and whether the
epoch ran in training mode.

The default folder is ``user_cache_root()/arch2vec/<space>[-gae]`` (:func:`default_model_dir`);
:func:`load_embeddings` loads (or computes and caches) the embeddings for a model, pretraining
with the defaults first when asked and the model is missing.

Thread count: the pretraining and the cached embeddings run on :data:`PRETRAIN_THREADS` (1) torch
threads whatever the caller's setting, so a model pretrained on first use inside a 2-thread
process is the same model as one from ``nascore arch2vec pretrain`` (with 1 and 2 threads the
weights already differ after one epoch, and a different model is a different search: arch2vec-BO
on NB201 moves by up to 0.2 points between pretraining seeds, ``benchmarks/RESULTS.md``).
``pretrain(..., threads=None)`` keeps the caller's thread count (the behaviour before issue 15).

One writer per output folder: :func:`pretrain` checks ``output`` (a folder, or creatable; none of
the files above a non-file) and takes its lock (:func:`nascore.lock.folder_lock`) *before* it
builds the data or trains, so an unusable ``--output`` or one another process is writing is a
one-line error at once rather than after the training. The automatic pretraining of
:func:`load_embeddings` waits for a process already pretraining into the model folder and then
uses its model.

>>> import tempfile
>>> from nascore.spaces import get_space
>>> out = pretrain(get_space("nb201"), epochs=1, hidden=16, max_archs=256, output=tempfile.mkdtemp(),
...                progress=False, quality_samples=100)
>>> sorted(out["metrics"]["heldout"])
['accuracy', 'adj_accuracy', 'ops_accuracy']
"""

from __future__ import annotations

import hashlib
import io
import math
import sys
import time
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from nascore.arch2vec import metrics as M
from nascore.arch2vec.vgae import LOSS_FORMS, SIGMA_HEADS, VGAE, pad_positions
from nascore.errors import UserError
from nascore.io import atomic_write_bytes, atomic_write_json
from nascore.lock import folder_lock
from nascore.paths import user_cache_root

FORMAT = "nascore-arch2vec-v1"
#: published pretraining settings (Yan et al. 2020, code release): epochs per space
DEFAULT_EPOCHS = {"nb101": 8, "nb201": 10, "darts": 10, "darts-cell": 10}
#: training schedules of :func:`pretrain` (see module docstring)
SCHEDULES = ("ours", "released")
#: decoder dropout of the released scripts (``--dropout`` default 0.3 in all three)
RELEASED_DROPOUT = 0.3
#: torch threads of :func:`pretrain` and of the embeddings :func:`load_embeddings` computes. The
#: result of a pretraining depends on the thread count (float reductions are split differently:
#: seed 0 with 1 and with 2 threads gives different weights after one epoch, while two 1-thread
#: runs are bit-identical; benchmarks/RESULTS.md, arch2vec "Search"), so it is fixed, not inherited.
PRETRAIN_THREADS = 1
#: the files :func:`pretrain` writes into its output folder
OUTPUT_FILES = ("model.pt", "gin_encoder.pt", "metrics.json", "embeddings.npz")


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads (None: unchanged), restoring the setting after."""
    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def default_dropout(schedule: str) -> float:
    """Decoder dropout when none is given: released 0.3 under the released schedule, else 0."""
    return RELEASED_DROPOUT if schedule == "released" else 0.0


def default_model_dir(space_name: str, variational: bool = True) -> Path:
    """The model folder the strategies look in: ``user_cache_root()/arch2vec/<space>[-gae]``."""
    return user_cache_root() / "arch2vec" / (space_name if variational else f"{space_name}-gae")


@contextmanager
def claimed_output(output, *, wait: bool = False) -> Iterator[Path]:
    """Check ``output`` and hold its folder lock for the block (the folder is created).

    A file where the folder should be, or a non-file (a folder, say) where one of
    :data:`OUTPUT_FILES` goes, is a :class:`UserError`; so is a folder another process is writing
    (``wait=False``, the lock's one-line message with its PID) -- with ``wait=True`` that process
    is waited for instead. A folder that cannot be created is the ``OSError`` of ``mkdir``."""
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise UserError(f"arch2vec output {output} exists and is not a folder; choose another --output")
    for name in OUTPUT_FILES:
        if (output / name).exists() and not (output / name).is_file():
            raise UserError(f"arch2vec output {output / name} exists and is not a file; choose another --output")
    with folder_lock(output, what="arch2vec output folder", wait=wait,
                     on_wait=lambda m: print(f"{m}; waiting for it", file=sys.stderr, flush=True)):
        yield output


# --- data ---------------------------------------------------------------------------------------
def _nb101_dataset(space):
    """All 423,624 NB101 cells as compact dense arrays, vectorised from the cached enumeration."""
    from nascore.spaces.nb101 import OPS, _shift_table, enumerate_cells, n_bits

    cells = enumerate_cells()
    m = space.max_nodes
    pad = len(space.node_labels)
    label = np.array([space.node_labels.index(o) for o in OPS], np.uint8)
    ops = np.full((len(cells), m), pad, np.uint8)
    adj = np.zeros((len(cells), m, m), np.uint8)
    for n in np.unique(cells.n_nodes):
        n = int(n)
        rows = np.flatnonzero(cells.n_nodes == n)
        pos = np.array(pad_positions(n, m))
        iu = np.triu_indices(n, 1)
        sh = _shift_table(n)[iu]
        bits = cells.adj_bits[rows].astype(np.int64)
        ent = (bits[:, None] >> sh[None, :]) & 1
        r = np.repeat(rows, n_bits(n))
        adj[r, np.tile(pos[iu[0]], len(rows)), np.tile(pos[iu[1]], len(rows))] = ent.ravel()
        ops[rows, 0] = space.node_labels.index("input")
        ops[rows, m - 1] = space.node_labels.index("output")
        code = cells.op_codes[rows].astype(np.int64)
        for k in range(n - 2):  # first interior node = most significant base-3 digit
            ops[rows, k + 1] = label[(code // 3 ** (n - 3 - k)) % 3]
    return cells.strings(), torch.from_numpy(ops), torch.from_numpy(adj)


def _fill_rows(space, archs, ops: np.ndarray, adj: np.ndarray, start: int, index: dict) -> None:
    m = space.max_nodes
    for b, a in enumerate(archs, start):
        pos = pad_positions(a.n_nodes, m)
        ops[b, pos] = [index[o] for o in a.ops]
        adj[b][np.ix_(pos, pos)] = a.adjacency


def _finite_dataset(space):
    """Every architecture of a finite space, streamed from ``space.enumerate()`` into compact arrays."""
    n, m = int(space.size), space.max_nodes
    index = {op: k for k, op in enumerate(space.node_labels)}
    ops = np.full((n, m), len(space.node_labels), np.uint8)
    adj = np.zeros((n, m, m), np.uint8)
    keys: list[str] = []
    for a in space.enumerate():
        if len(keys) >= n:
            raise UserError(f"{space.name}.enumerate() yields more than its size {n}")
        _fill_rows(space, (a,), ops, adj, len(keys), index)
        keys.append(space.key(a))
    if len(keys) != n:
        raise UserError(f"{space.name}.enumerate() yielded {len(keys)} architectures, its size is {n}")
    return keys, torch.from_numpy(ops), torch.from_numpy(adj)


def _sampled_dataset(space, n: int, seed: int):
    """``n`` distinct random architectures of an infinite space, compact."""
    rng = np.random.default_rng(seed)
    m = space.max_nodes
    if hasattr(space, "sample_dense"):
        seen: set[int] = set()
        keys: list[str] = []
        ops_parts, adj_parts = [], []
        draws = 0
        while len(keys) < n:
            k, codes, o, a = space.sample_dense(rng, min(max(2 * (n - len(keys)), 1024), 1 << 18))
            draws += len(codes)
            _, first = np.unique(codes, return_index=True)
            take = [i for i in np.sort(first).tolist() if int(codes[i]) not in seen][: n - len(keys)]
            seen.update(int(codes[i]) for i in take)
            keys += [k[i] for i in take]
            ops_parts.append(o[take])
            adj_parts.append(a[take])
            if draws > 20 * n:
                raise UserError(f"could not draw {n} distinct {space.name} cells ({len(keys)} after {draws} draws)")
        return keys, torch.from_numpy(np.concatenate(ops_parts)), torch.from_numpy(np.concatenate(adj_parts))
    index = {op: k for k, op in enumerate(space.node_labels)}
    ops = np.full((n, m), len(space.node_labels), np.uint8)
    adj = np.zeros((n, m, m), np.uint8)
    keys = []
    seen_keys: set[str] = set()
    tries = 0
    while len(keys) < n:
        a = space.sample(rng)
        tries += 1
        k = space.key(a)
        if k not in seen_keys:
            seen_keys.add(k)
            _fill_rows(space, (a,), ops, adj, len(keys), index)
            keys.append(k)
        if tries > 20 * n:
            raise UserError(f"could not draw {n} distinct {space.name} cells ({len(keys)} after {tries} draws)")
    return keys, torch.from_numpy(ops), torch.from_numpy(adj)


def space_dataset(space, max_archs: int | None = None, samples: int = 100_000, seed: int = 0):
    """``(keys list[str], ops [N, M] uint8, adj [N, M, M] uint8)`` (see module docstring).

    A finite space gives all its architectures (a seeded random subset of ``max_archs`` if
    smaller, in enumeration order); an infinite one ``samples`` distinct random cells
    (``max_archs`` caps that too)."""
    if space.name == "nb101":
        keys, ops, adj = _nb101_dataset(space)
    elif space.size is not None:
        keys, ops, adj = _finite_dataset(space)
    else:
        n = samples if max_archs is None else min(samples, max_archs)
        return _sampled_dataset(space, n, seed)
    if max_archs is not None and max_archs < len(keys):
        idx = sample_indices(len(keys), max_archs, seed)
        keys = [keys[i] for i in idx.tolist()]
        ops, adj = ops[idx], adj[idx]
    return keys, ops, adj


def sample_indices(n: int, k: int, seed: int) -> torch.Tensor:
    """A seeded random subset of ``k`` of ``range(n)``, sorted (O(n) time, no n x n anything)."""
    return torch.from_numpy(np.sort(np.random.default_rng(seed).permutation(n)[:k]))


# --- checkpoints --------------------------------------------------------------------------------
def _torch_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def file_digest(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def load_model(path) -> tuple[VGAE, dict]:
    """``(model in eval mode, checkpoint dict)``; a missing or foreign file is a :class:`UserError`."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"arch2vec model {path} not found (create it with `nascore arch2vec pretrain`)")
    from nascore.safeload import torch_load
    ck = torch_load(path, "arch2vec checkpoint")
    if not isinstance(ck, dict) or ck.get("format") != FORMAT:
        raise UserError(f"{path}: not an arch2vec checkpoint (format {ck.get('format') if isinstance(ck, dict) else None!r})")
    model = VGAE.from_config(ck["config"])
    model.load_state_dict(ck["state_dict"])
    model.eval()
    return model, ck


@torch.no_grad()
def embed_all(model: VGAE, ops, adj, batch_size: int = 8192) -> np.ndarray:
    """Embeddings ``[N, latent]`` float32 of a dense dataset, in batches (output preallocated)."""
    model.eval()
    out = np.empty((len(ops), model.config["latent"]), np.float32)
    for s in range(0, len(ops), batch_size):
        out[s:s + batch_size] = model.embed(ops[s:s + batch_size], adj[s:s + batch_size]).numpy()
    return out


def _str_keys(arr) -> list[str]:
    return [k.decode() if isinstance(k, bytes) else str(k) for k in arr.tolist()]


def _write_embeddings(path: Path, keys, emb: np.ndarray, digest: str) -> None:
    buf = io.BytesIO()
    np.savez_compressed(buf, keys=np.array([k.encode() for k in keys]), emb=emb, model_digest=np.array(digest))
    atomic_write_bytes(path, buf.getvalue())


# --- training -----------------------------------------------------------------------------------
def _progress(enabled: bool):
    from contextlib import nullcontext

    if not enabled:
        return nullcontext()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())


def pretrain(space, *, output, epochs: int | None = None, batch_size: int = 32, lr: float = 1e-3,
             kl_weight: float | None = None, hidden: int = 128, layers: int = 4, latent: int = 16,
             variational: bool = True, dropout: float | None = None, clip: float | None = 5.0,
             loss_form: str = "arch2vec", seed: int = 0, holdout: float = 0.1, max_archs: int | None = None,
             samples: int = 100_000, quality_samples: int = 10_000, progress: bool = True,
             data=None, schedule: str = "ours", sigma_head: str = "logvar",
             threads: int | None = PRETRAIN_THREADS) -> dict:
    """Pretrain on ``space`` and write the files listed in the module docstring to ``output``.

    ``data``: a ``(keys, ops, adj)`` triple from :func:`space_dataset` covering the architectures
    to embed (built here when None: all of a finite space, ``samples`` random cells of an
    infinite one). ``max_archs``: train (and hold out) on a seeded random sample of that many of
    them; the embeddings still cover all of ``data``. ``kl_weight`` None: the loss form's default
    (released: 1/(batch x nodes)); ``clip`` None: no gradient clipping. ``schedule``: "ours"
    (training mode every epoch) or "released" (eval mode from epoch 2 on, see the module
    docstring); ``dropout`` None: :func:`default_dropout` of the schedule. ``sigma_head``:
    "logvar" (sigma = exp(head/2), ours) or "logstd" (sigma = exp(head), released).
    ``threads``: torch intra-op threads for the training, the quality figures and the embeddings
    (default :data:`PRETRAIN_THREADS` = 1, restored afterwards), so the model does not depend on
    the caller's thread count; None keeps the caller's setting (the behaviour before issue 15: a
    model pretrained on first use inside a 2-thread process differed from a 1-thread one).
    ``output`` is checked and locked (:func:`claimed_output`) before anything is built or trained.
    Returns the ``metrics.json`` dict plus ``"output"``.
    """
    if epochs is None:
        epochs = DEFAULT_EPOCHS.get(space.name, 10)
    if epochs < 1 or batch_size < 1:
        raise UserError(f"epochs and batch size must be >= 1, got {epochs} and {batch_size}")
    if min(hidden, layers, latent) < 1:
        raise UserError(f"hidden, layers and latent must be >= 1, got {hidden}, {layers}, {latent}")
    if not 0 < holdout < 1:
        raise UserError(f"holdout must be a fraction in (0, 1), got {holdout}")
    if schedule not in SCHEDULES:
        raise UserError(f"schedule must be one of {', '.join(SCHEDULES)}, got {schedule!r}")
    if sigma_head not in SIGMA_HEADS:
        raise UserError(f"sigma head must be one of {', '.join(SIGMA_HEADS)}, got {sigma_head!r}")
    if dropout is None:
        dropout = default_dropout(schedule)
    if not 0 <= dropout < 1:
        raise UserError(f"decoder dropout must be in [0, 1), got {dropout}")
    if loss_form not in LOSS_FORMS:
        raise UserError(f"loss form must be one of {', '.join(LOSS_FORMS)}, got {loss_form!r}")
    if max_archs is not None and max_archs < 2:
        raise UserError(f"max_archs must be >= 2, got {max_archs}")
    if threads is not None and not 1 <= int(threads) <= 1024:
        raise UserError(f"pretraining threads must be in [1, 1024] (or None: the caller's setting), got {threads}")
    with claimed_output(output), torch_threads(threads):  # an unusable or busy --output is refused before the training
        return _pretrain_locked(space, Path(output), epochs=epochs, batch_size=batch_size, lr=lr,
                                kl_weight=kl_weight, hidden=hidden, layers=layers, latent=latent,
                                variational=variational, dropout=dropout, clip=clip, loss_form=loss_form, seed=seed,
                                holdout=holdout, max_archs=max_archs, samples=samples,
                                quality_samples=quality_samples, progress=progress, data=data,
                                schedule=schedule, sigma_head=sigma_head)


def _pretrain_locked(space, output: Path, *, epochs, batch_size, lr, kl_weight, hidden, layers, latent, variational,
                     dropout, clip, loss_form, seed, holdout, max_archs, samples, quality_samples, progress,
                     data, schedule, sigma_head) -> dict:
    """:func:`pretrain` (arguments checked) with the lock of ``output`` held."""
    t0 = time.perf_counter()
    if data is None:
        finite = space.size is not None
        data = space_dataset(space, None if finite else max_archs, samples, seed)
    keys, ops, adj = data
    t_data = time.perf_counter() - t0
    n_all = len(keys)
    pool = sample_indices(n_all, max_archs, seed) if max_archs is not None and max_archs < n_all \
        else torch.arange(n_all)
    n = len(pool)
    perm = pool[torch.from_numpy(np.random.default_rng(seed).permutation(n))]
    n_test = max(1, int(round(holdout * n)))
    test_idx, train_idx = perm[:n_test], perm[n_test:]
    torch.manual_seed(seed)
    model = VGAE(len(space.node_labels), space.max_nodes, hidden=hidden, layers=layers, latent=latent,
                 variational=variational, dropout=dropout, sigma_head=sigma_head)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed + 1)
    curve = []
    test_ops, test_adj = ops[test_idx], adj[test_idx]
    t_train = time.perf_counter()
    with _progress(progress) as p:
        task = p.add_task(f"arch2vec {space.name}", total=epochs) if p else None
        for ep in range(epochs):
            # released: model.eval() after epoch 1 and never model.train() again
            model.train(schedule == "ours" or ep == 0)
            train_mode = model.training
            order = train_idx[torch.randperm(len(train_idx), generator=g)]
            tot = {"loss": 0.0, "ops": 0.0, "adj": 0.0, "kl": 0.0}
            steps = 0
            te = time.perf_counter()
            for s in range(0, len(order), batch_size):
                idx = order[s:s + batch_size]
                if len(idx) < 2:  # BatchNorm needs two rows' worth of graphs
                    continue
                loss, parts = model.loss(ops[idx], adj[idx], kl_weight=kl_weight, generator=g, form=loss_form)
                opt.zero_grad()
                loss.backward()
                if clip is not None:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
                opt.step()
                tot["loss"] += float(loss.detach())
                for k, v in parts.items():
                    tot[k] += v
                steps += 1
            rq = M.reconstruction(model, test_ops, test_adj)
            rec = {"epoch": ep + 1, **{k: v / max(steps, 1) for k, v in tot.items()},
                   "seconds": time.perf_counter() - te, "train_mode": train_mode,
                   "heldout_accuracy": rq["accuracy"], "heldout_ops_accuracy": rq["ops_accuracy"],
                   "heldout_adj_accuracy": rq["adj_accuracy"]}
            if not math.isfinite(rec["loss"]):  # before any file is written; NaN has no place in metrics.json
                raise UserError(f"arch2vec pretraining diverged: loss {rec['loss']} in epoch {ep + 1} "
                                f"(lower --lr, now {lr}, or clip gradients with --clip)")
            curve.append(rec)
            if p:
                p.update(task, advance=1, description=f"arch2vec {space.name}: epoch {ep + 1} loss {rec['loss']:.4f} "
                         f"held-out exact {rec['heldout_accuracy']:.2f}% labels {rec['heldout_ops_accuracy']:.2f}% "
                         f"adj {rec['heldout_adj_accuracy']:.2f}%")
    train_seconds = time.perf_counter() - t_train
    model.eval()
    t_q = time.perf_counter()
    stats = M.latent_stats(model, ops[train_idx], adj[train_idx])
    sub = train_idx[:50_000]
    quality = {"heldout": M.reconstruction(model, test_ops, test_adj),
               "train": M.reconstruction(model, ops[sub], adj[sub]),
               "prior_fitted": M.validity_uniqueness(model, space, quality_samples, seed, "fitted", stats),
               "prior_standard": M.validity_uniqueness(model, space, quality_samples, seed, "standard")}
    t_q = time.perf_counter() - t_q
    config = model.config
    train_info = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "loss_form": loss_form,
                  "kl_weight": kl_weight if kl_weight is not None else
                  ("1/(batch*nodes)" if loss_form == "arch2vec" else 0.005),
                  "dropout": dropout, "clip": clip, "seed": seed, "holdout": holdout, "schedule": schedule,
                  "sigma_head": sigma_head,
                  "n_architectures": n, "n_embedded": n_all, "n_train": len(train_idx), "n_heldout": n_test,
                  "max_archs": max_archs, "torch_threads": torch.get_num_threads()}
    ck = {"format": FORMAT, "space": space.name, "config": config, "state_dict": model.state_dict(),
          "train": train_info, "metrics": quality,
          "latent_stats": {"mean": stats[0], "std": stats[1]}}
    atomic_write_bytes(output / "model.pt", _torch_bytes(ck))
    atomic_write_bytes(output / "gin_encoder.pt", _torch_bytes(model.gin_state_dict()))
    t_emb = time.perf_counter()
    emb = embed_all(model, ops, adj)
    t_emb = time.perf_counter() - t_emb
    _write_embeddings(output / "embeddings.npz", keys, emb, file_digest(output / "model.pt"))
    out = {"space": space.name, "config": config, "train": train_info, "curve": curve,
           "seconds": {"data": t_data, "train": train_seconds, "quality": t_q, "embed": t_emb,
                       "total": time.perf_counter() - t0},
           "metrics": quality,
           "gin_encoder": {"file": "gin_encoder.pt", "class": "nascore.encoders.gin.GINEncoder",
                           "kwargs": {"in_dim": len(space.node_labels), "hidden": hidden, "layers": layers,
                                      "train_eps": True, "bidirectional": True}}}
    atomic_write_json(output / "metrics.json", out)
    return {**out, "output": str(output)}


# --- embeddings for strategies ------------------------------------------------------------------
_EMB_CACHE: dict = {}


def load_embeddings(space, model=None, *, pretrain_if_missing: bool = True, progress: bool = False):
    """``(keys list[str], emb [N, latent] float32)`` for every architecture of ``space``.

    ``model``: a ``model.pt`` path (default ``default_model_dir(space.name)/model.pt``). Embeddings
    are read from ``embeddings.npz`` beside it when its digest matches the model, else computed for
    the whole space and cached there (atomically). A missing default model is pretrained first
    (published settings) when ``pretrain_if_missing``, under the model folder's lock: a process
    already pretraining there is waited for and its model used; a missing explicit path is an error.
    For a constrained wrapper pass its unconstrained ``space.inner`` (the strategies do).
    """
    if space.size is None:
        raise UserError(f"arch2vec search needs a finite space with every architecture embedded; "
                        f"{space.name} is not enumerable")
    path = Path(model) if model is not None else default_model_dir(space.name) / "model.pt"
    if not path.exists():
        if model is not None or not pretrain_if_missing:
            raise UserError(f"arch2vec model {path} not found (create it with "
                            f"`nascore arch2vec pretrain --space {space.name} --output {path.parent}`)")
        with claimed_output(path.parent, wait=True):
            if not path.exists():  # not pretrained meanwhile by the process waited for
                pretrain(space, output=path.parent, progress=progress)
    digest = file_digest(path)
    ck_key = (str(path.resolve()), digest)
    if ck_key in _EMB_CACHE:
        return _EMB_CACHE[ck_key]
    m, ck = load_model(path)
    if ck["space"] != space.name:
        raise UserError(f"{path} was pretrained on {ck['space']}, not {space.name}")
    emb_path = path.parent / "embeddings.npz"
    keys = emb = None
    if emb_path.exists():
        try:
            with np.load(emb_path) as z:
                if str(z["model_digest"]) == digest:
                    keys, emb = _str_keys(z["keys"]), z["emb"].astype(np.float32)
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):  # damaged cache: recomputed
            keys = None
    if keys is None or len(keys) != space.size:
        keys, ops, adj = space_dataset(space)
        with torch_threads(PRETRAIN_THREADS):
            emb = embed_all(m, ops, adj)
        _write_embeddings(emb_path, keys, emb, digest)
    _EMB_CACHE.clear()  # keep one space's table in memory at a time
    _EMB_CACHE[ck_key] = (keys, emb)
    return keys, emb
