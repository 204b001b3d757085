"""Pretraining arch2vec on a whole search space, checkpoints, and cached embeddings.

:func:`space_dataset` gathers the architectures of a space as dense tensors (every architecture
of a finite space -- all 15,625 NAS-Bench-201 cells, all 423,624 NAS-Bench-101 cells, read
vectorised from the cached enumeration -- or ``samples`` distinct random cells of an infinite
space such as DARTS). :func:`pretrain` holds out a seeded ``holdout`` fraction, trains
:class:`~nascore.arch2vec.vgae.VGAE` with Adam (published settings: batch 32, lr 1e-3), measures
the quality figures of :mod:`nascore.arch2vec.metrics` on the held-out split and writes, atomically,
into ``output``:

* ``model.pt`` -- ``{"format", "space", "config", "state_dict", "train", "metrics"}``;
* ``gin_encoder.pt`` -- the state_dict of the model's
  ``GINEncoder(len(space.node_labels), hidden, layers, train_eps=True)`` (``encoder_init`` for
  predictors);
* ``metrics.json`` -- training curve, timings and quality figures;
* ``embeddings.npz`` -- ``keys`` (``space.key`` strings) and ``emb`` ``[N, latent]`` float32 for
  every architecture of the dataset (mean of node means), and the model file's digest.

The default folder is ``user_cache_root()/arch2vec/<space>[-gae]`` (:func:`default_model_dir`);
:func:`load_embeddings` loads (or computes and caches) the embeddings for a model, pretraining
with the defaults first when asked and the model is missing.

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
import time
from pathlib import Path

import numpy as np
import torch

from nascore.arch2vec import metrics as M
from nascore.arch2vec.vgae import VGAE, dense_tensors, pad_positions
from nascore.errors import UserError
from nascore.io import atomic_write_bytes, atomic_write_json
from nascore.paths import user_cache_root

FORMAT = "nascore-arch2vec-v1"
#: published pretraining settings (Yan et al. 2020, code release): epochs per space
DEFAULT_EPOCHS = {"nb101": 8, "nb201": 10, "darts": 10}


def default_model_dir(space_name: str, variational: bool = True) -> Path:
    return user_cache_root() / "arch2vec" / (space_name if variational else f"{space_name}-gae")


# --- data ---------------------------------------------------------------------------------------
def _nb101_dataset(space):
    """All 423,624 NB101 cells as dense tensors, vectorised from the cached enumeration."""
    from nascore.spaces.nb101 import OPS, _shift_table, enumerate_cells, n_bits

    cells = enumerate_cells()
    m = space.max_nodes
    pad = len(space.node_labels)
    label = np.array([space.node_labels.index(o) for o in OPS])
    ops = np.full((len(cells), m), pad, np.int64)
    adj = np.zeros((len(cells), m, m), np.float32)
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


def space_dataset(space, max_archs: int | None = None, samples: int = 100_000, seed: int = 0,
                  progress: bool = False):
    """``(keys, ops [N, M], adj [N, M, M])`` for pretraining (see module docstring).

    A finite space gives all its architectures (a seeded random subset of ``max_archs`` if
    smaller); an infinite one ``samples`` distinct random cells (``max_archs`` caps that too)."""
    if space.name == "nb101":
        keys, ops, adj = _nb101_dataset(space)
    elif space.size is not None:
        archs = list(space.enumerate())
        keys = [space.key(a) for a in archs]
        ops, adj = dense_tensors(space, archs)
    else:
        n = samples if max_archs is None else min(samples, max_archs)
        rng = np.random.default_rng(seed)
        seen: dict[str, object] = {}
        tries = 0
        while len(seen) < n:
            a = space.sample(rng)
            tries += 1
            seen.setdefault(space.key(a), a)
            if tries > 20 * n:
                raise UserError(f"could not draw {n} distinct {space.name} cells ({len(seen)} after {tries} draws)")
        keys = list(seen)
        ops, adj = dense_tensors(space, list(seen.values()))
    if max_archs is not None and max_archs < len(keys):
        idx = np.sort(np.random.default_rng(seed).permutation(len(keys))[:max_archs])
        keys = [keys[i] for i in idx]
        ops, adj = ops[idx], adj[idx]
    return keys, ops, adj


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
    try:
        ck = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the user's to fix
        raise UserError(f"{path}: not a readable arch2vec checkpoint ({type(e).__name__})") from None
    if not isinstance(ck, dict) or ck.get("format") != FORMAT:
        raise UserError(f"{path}: not an arch2vec checkpoint (format {ck.get('format') if isinstance(ck, dict) else None!r})")
    model = VGAE.from_config(ck["config"])
    model.load_state_dict(ck["state_dict"])
    model.eval()
    return model, ck


@torch.no_grad()
def embed_all(model: VGAE, ops, adj, batch_size: int = 8192) -> np.ndarray:
    model.eval()
    return torch.cat([model.embed(ops[s:s + batch_size], adj[s:s + batch_size])
                      for s in range(0, len(ops), batch_size)]).numpy().astype(np.float32)


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
             kl_weight: float = 0.005, hidden: int = 128, layers: int = 4, latent: int = 16,
             variational: bool = True, seed: int = 0, holdout: float = 0.1, max_archs: int | None = None,
             samples: int = 100_000, quality_samples: int = 10_000, progress: bool = True,
             data=None) -> dict:
    """Pretrain on ``space`` and write the files listed in the module docstring to ``output``.

    ``data``: a ``(keys, ops, adj)`` triple from :func:`space_dataset` (built here when None).
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
    output = Path(output)
    t0 = time.perf_counter()
    keys, ops, adj = data if data is not None else space_dataset(space, max_archs, samples, seed)
    t_data = time.perf_counter() - t0
    n = len(keys)
    perm = torch.from_numpy(np.random.default_rng(seed).permutation(n))
    n_test = max(1, int(round(holdout * n)))
    test_idx, train_idx = perm[:n_test], perm[n_test:]
    torch.manual_seed(seed)
    model = VGAE(len(space.node_labels), space.max_nodes, hidden=hidden, layers=layers, latent=latent,
                 variational=variational)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed + 1)
    curve = []
    t_train = time.perf_counter()
    with _progress(progress) as p:
        task = p.add_task(f"arch2vec {space.name}", total=epochs) if p else None
        for ep in range(epochs):
            model.train()
            order = train_idx[torch.randperm(len(train_idx), generator=g)]
            tot = {"loss": 0.0, "ops": 0.0, "adj": 0.0, "kl": 0.0}
            steps = 0
            te = time.perf_counter()
            for s in range(0, len(order), batch_size):
                idx = order[s:s + batch_size]
                if len(idx) < 2:  # BatchNorm needs two rows' worth of graphs
                    continue
                loss, parts = model.loss(ops[idx], adj[idx], kl_weight=kl_weight, generator=g)
                opt.zero_grad()
                loss.backward()
                opt.step()
                tot["loss"] += float(loss.detach())
                for k, v in parts.items():
                    tot[k] += v
                steps += 1
            rec = {"epoch": ep + 1, **{k: v / max(steps, 1) for k, v in tot.items()},
                   "seconds": time.perf_counter() - te,
                   "heldout_accuracy": M.reconstruction(model, ops[test_idx], adj[test_idx])["accuracy"]}
            curve.append(rec)
            if p:
                p.update(task, advance=1, description=f"arch2vec {space.name}: epoch {ep + 1} loss {rec['loss']:.4f} "
                         f"held-out recon {rec['heldout_accuracy']:.2f}%")
    train_seconds = time.perf_counter() - t_train
    model.eval()
    stats = M.latent_stats(model, ops[train_idx], adj[train_idx])
    quality = {"heldout": M.reconstruction(model, ops[test_idx], adj[test_idx]),
               "train": M.reconstruction(model, ops[train_idx[:50_000]], adj[train_idx[:50_000]]),
               "prior_standard": M.validity_uniqueness(model, space, quality_samples, seed, "standard"),
               "prior_fitted": M.validity_uniqueness(model, space, quality_samples, seed, "fitted", stats)}
    config = model.config
    train_info = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "kl_weight": kl_weight, "seed": seed,
                  "holdout": holdout, "n_architectures": n, "n_train": len(train_idx), "n_heldout": n_test,
                  "max_archs": max_archs, "torch_threads": torch.get_num_threads()}
    ck = {"format": FORMAT, "space": space.name, "config": config, "state_dict": model.state_dict(),
          "train": train_info, "metrics": quality,
          "latent_stats": {"mean": stats[0], "std": stats[1]}}
    atomic_write_bytes(output / "model.pt", _torch_bytes(ck))
    atomic_write_bytes(output / "gin_encoder.pt", _torch_bytes(model.gin_state_dict()))
    t_emb = time.perf_counter()
    emb = embed_all(model, ops, adj)
    _write_embeddings(output / "embeddings.npz", keys, emb, file_digest(output / "model.pt"))
    out = {"space": space.name, "config": config, "train": train_info, "curve": curve,
           "seconds": {"data": t_data, "train": train_seconds, "embed": time.perf_counter() - t_emb,
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
    (published settings) when ``pretrain_if_missing``; a missing explicit path is an error.
    """
    if space.size is None:
        raise UserError(f"arch2vec search needs a finite space with every architecture embedded; "
                        f"{space.name} is not enumerable")
    path = Path(model) if model is not None else default_model_dir(space.name) / "model.pt"
    if not path.exists():
        if model is not None or not pretrain_if_missing:
            raise UserError(f"arch2vec model {path} not found (create it with "
                            f"`nascore arch2vec pretrain --space {space.name} --output {path.parent}`)")
        pretrain(space, output=path.parent, progress=progress)
    digest = file_digest(path)
    ck_key = (str(path.resolve()), digest)
    if ck_key in _EMB_CACHE:
        return _EMB_CACHE[ck_key]
    emb_path = path.parent / "embeddings.npz"
    keys = emb = None
    if emb_path.exists():
        try:
            with np.load(emb_path) as z:
                if str(z["model_digest"]) == digest:
                    keys, emb = _str_keys(z["keys"]), z["emb"].astype(np.float32)
        except (OSError, KeyError, ValueError):
            keys = None
    if keys is None or len(keys) != space.size:
        m, ck = load_model(path)
        if ck["space"] != space.name:
            raise UserError(f"{path} was pretrained on {ck['space']}, not {space.name}")
        keys, ops, adj = space_dataset(space)
        emb = embed_all(m, ops, adj)
        _write_embeddings(emb_path, keys, emb, digest)
    _EMB_CACHE.clear()  # keep one space's table in memory at a time
    _EMB_CACHE[ck_key] = (keys, emb)
    return keys, emb
