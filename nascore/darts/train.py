"""Supernet search loop (EG-NAS and first-order DARTS share it) and evaluation-network training.

Search (:func:`run_supernet_search`), per epoch ``e`` of ``epochs``:

1. EG-NAS only, ``e >= warmup``: one evolution-strategy step on a held-out batch
   (:class:`nascore.egnas.EvolutionStrategy`) moves α;
2. the weights are trained with SGD (momentum 0.9, cosine learning rate from ``lr`` to ``lr_min``,
   weight decay, gradient clipping) over the weight half of the training set, with
   ``softmax(α)`` as mixing weights; for first-order DARTS (Liu et al. 2019, §2.3, ξ = 0), when
   ``e >= warmup``, every weight step is preceded by an Adam step on α
   (``arch_lr``, betas (0.5, 0.999), ``arch_wd``) on a batch of the held-out half;
3. the supernet's accuracy with ``softmax(α)`` is measured on (up to ``eval_images`` of) the
   held-out half, the architecture is derived, and one line is appended to ``log.jsonl``: epoch,
   lr, losses/accuracies, ``alpha`` (the softmax weights), the derived ``genotype``/``arch``, the ES
   fitness components, seconds spent on the ES, on the weights and in evaluation;
4. ``checkpoint.pt`` (weights, α, optimisers, ES state, epoch; tensors and plain data only, read
   back with ``torch.load(weights_only=True)`` so a crafted file runs no code) is replaced
   atomically, ``result.json`` and ``alpha.png`` (α trajectories) are rewritten.

Data: the standard 50/50 split of the training set (:func:`nascore.data.cifar.search_split`;
``subset`` keeps the first N images), whole splits resident on the device, augmentation on
tensors, bf16 autocast on CUDA (``amp="auto"``). All randomness comes from the seed: weights
and α are initialised from it, each epoch's batch order/augmentation and ES noise from
``(seed, epoch)``. So a run killed at any point and started again with the same command resumes
from the last finished epoch and ends with the same result as an uninterrupted run (bitwise on
CPU with a fixed thread count). A folder holding another configuration is refused
(:func:`nascore.run.check_config`) before the images are loaded, and the folder is claimed for the
whole search (:func:`nascore.run.claim_folder`): a second process on it (another ``nascore darts
search`` / ``nascore egnas search`` with the same ``--output``) is refused with one line naming the
folder and the first process's PID. ``nascore darts train`` folders (:func:`train_genotype`) are
checked and claimed the same way.

Supernet fields of the configuration (:func:`supernet_config`): ``primitives`` (the α columns:
EG-NAS on DARTS cells the released 7 operations without ``none``, DARTS the 8 with it, NB-201
its 5), ``pool_bn`` (a BN after pooling operations, DARTS' and our default; the released EG-NAS
has none) and ``bn_running_stats`` (supernet BNs with running statistics, as the released
EG-NAS; default off). A folder whose ``config.json`` predates these fields (or the newer ES
fields of :class:`nascore.egnas.ESConfig`) reads a missing one as the behaviour of that time and
resumes with its own settings when the same command is run again (:func:`adopt_stored_config`).

``result.json``: ``method``, ``space``, ``genotype`` (darts) or ``arch`` + ``test_accuracy`` /
``valid_accuracy_bench`` looked up in the NAS-Bench-201 table (nb201), the last supernet
accuracy, seconds, ``finished``.

The loop itself (:func:`supernet_search_loop`: steps 1-4, checkpoint/resume, files) knows nothing
about CIFAR: a :class:`SearchTask` supplies the batches (network inputs as a tuple, ``(x,)`` here,
``(x, rr)`` for ECG beats), the held-out batches for the ES and the DARTS α steps, the loss, the
end-of-epoch metrics and the ``result.json`` dict. :class:`CifarSearchTask` is the CIFAR one
described above; :mod:`ecgnas.supernet` has the ECG one.
"""

from __future__ import annotations

from contextlib import nullcontext

import io
import json
import math
import time
from itertools import cycle
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from nascore.errors import UserError
from nascore.io import append_jsonl, atomic_write_bytes, atomic_write_json, read_jsonl, atomic_write_text
from nascore.lock import busy_error
from nascore.run import check_config, claim_folder

METHODS = ("egnas", "darts")
#: per method: the share of the epochs spent warming up before α moves (EG-NAS paper: 15 of 50;
#: DARTS: none) and the weight learning rate (EG-NAS code 0.1, DARTS code 0.025), used when a
#: search leaves them unset; the warm-up is ``round(share * epochs)`` (15 at the paper's 50 epochs)
DEFAULT_WARMUP_SHARE = {"egnas": 0.3, "darts": 0.0}
DEFAULT_LR = {"egnas": 0.1, "darts": 0.025}


def default_warmup(method: str, epochs: int) -> int:
    """Warm-up epochs when a search does not set them: the method's share of ``epochs``
    (:data:`DEFAULT_WARMUP_SHARE`), so a short run is never refused for its default warm-up.

    >>> default_warmup("egnas", 50), default_warmup("egnas", 2), default_warmup("darts", 50)
    (15, 1, 0)
    """
    return int(round(DEFAULT_WARMUP_SHARE[method] * epochs))


#: ``op_set`` names: the released EG-NAS operations (7, no ``none``) and the DARTS ones (8)
OP_SETS = ("released", "darts")


def default_primitives(method: str, space: str) -> tuple[str, ...]:
    """The α columns of a search that does not choose them: EG-NAS on a DARTS cell (``darts``,
    ``darts1d``) uses the released EG-NAS set (7 operations, ``none`` commented out in its
    ``genotypes.py``), first-order DARTS the 8 DARTS operations with ``none``; the NB-201 cell
    always has the benchmark's 5 (``none`` included: the table holds cells with it).

    >>> [len(default_primitives(m, s)) for m, s in (("egnas", "darts"), ("darts", "darts"), ("egnas", "nb201"))]
    [7, 8, 5]
    """
    from nascore.darts.ops import DARTS_PRIMITIVES, EGNAS_RELEASED_PRIMITIVES
    if space == "nb201":
        from nascore.spaces.nb201 import OPS
        return tuple(OPS)
    return EGNAS_RELEASED_PRIMITIVES if method == "egnas" else DARTS_PRIMITIVES


def resolve_primitives(method: str, space: str, op_set: str | None) -> list[str]:
    """``op_set`` (None: :func:`default_primitives`; ``"released"``: the 7 released EG-NAS
    operations; ``"darts"``: the 8 DARTS ones) as the list recorded in ``config.json``. The
    NB-201 cell has only its own 5 operations: an ``op_set`` there is refused.

    >>> resolve_primitives("egnas", "darts", "darts")[0], resolve_primitives("darts", "darts", "released")[0]
    ('none', 'avg_pool_3x3')
    """
    from nascore.darts.ops import DARTS_PRIMITIVES, EGNAS_RELEASED_PRIMITIVES
    if op_set is None:
        return list(default_primitives(method, space))
    if op_set not in OP_SETS:
        raise UserError(f"--op-set must be one of {', '.join(OP_SETS)}; got {op_set!r}")
    if space == "nb201":
        raise UserError("--op-set: the NB-201 cell has its own 5 operations; the op sets are for DARTS cells")
    return list(EGNAS_RELEASED_PRIMITIVES if op_set == "released" else DARTS_PRIMITIVES)


def supernet_config(method: str, space: str, op_set: str | None = None, pool_bn: bool = True,
                    bn_running_stats: bool = False) -> dict:
    """The supernet fields of a search configuration, checked: ``primitives`` (the α columns,
    :func:`resolve_primitives`), ``pool_bn`` (a BN after pooling operations: DARTS and ours; the
    released EG-NAS has none) and ``bn_running_stats`` (supernet BNs keep running statistics:
    released EG-NAS; ours use batch statistics). Shared by the CIFAR and the ECG searches.

    >>> sorted(supernet_config("egnas", "darts"))
    ['bn_running_stats', 'pool_bn', 'primitives']
    """
    for name, v in (("pool_bn", pool_bn), ("bn_running_stats", bn_running_stats)):
        if not isinstance(v, bool):
            raise UserError(f"{name} must be true or false; got {v!r}")
    return {"primitives": resolve_primitives(method, space, op_set), "pool_bn": pool_bn,
            "bn_running_stats": bn_running_stats}


#: supernet settings added after search folders existed, with the value older folders ran with
#: (a ``config.json`` without the key); ``primitives``' old value is the space's whole op set
LEGACY_SUPERNET = {"pool_bn": True, "bn_running_stats": False}


def supernet_settings(cfg: dict) -> dict:
    """``primitives`` (tuple), ``pool_bn``, ``bn_running_stats`` of a search configuration, a
    missing key (a folder written before they existed) read as the behaviour of that time: the
    space's whole op set (8 DARTS operations with ``none``, 5 NB-201), a BN after pooling
    operations, BNs without running statistics.

    >>> supernet_settings({"method": "egnas", "space": "darts"})["primitives"][0]
    'none'
    """
    prims = cfg.get("primitives")
    if prims is None:
        prims = default_primitives("darts", "nb201" if cfg.get("space") == "nb201" else "darts")
    out = {"primitives": tuple(prims)}
    for k, v in LEGACY_SUPERNET.items():
        out[k] = bool(cfg.get(k, v))
    return out


def _new_settings(cfg: dict) -> list[tuple]:
    """Key paths of the settings added after run folders existed that apply to ``cfg``."""
    from dataclasses import fields

    from nascore.egnas import ESConfig
    paths = [("primitives",)] + [(k,) for k in LEGACY_SUPERNET]
    if isinstance(cfg.get("es"), dict):
        old = {"population", "zeta", "eta", "sigma0", "sigma_min", "step_size", "momentum", "generations", "cma"}
        paths += [("es", f.name) for f in fields(ESConfig) if f.name not in old]
    return paths


def _get(cfg: dict, path: tuple, default=None):
    for k in path[:-1]:
        cfg = cfg.get(k) or {}
    return cfg.get(path[-1], default)


def _legacy_value(cfg: dict, path: tuple):
    if path == ("primitives",):
        return list(supernet_settings({"space": cfg.get("space")})["primitives"])
    if path[0] == "es":
        from nascore.egnas import ESConfig
        return getattr(ESConfig(), path[1])
    return LEGACY_SUPERNET[path[0]]


def _with(cfg: dict, path: tuple, value) -> dict:
    out = dict(cfg)
    if len(path) == 1:
        out[path[0]] = value
    else:
        out[path[0]] = _with(dict(out.get(path[0]) or {}), path[1:], value)
    return out


def _without(cfg: dict, path: tuple) -> dict:
    out = dict(cfg)
    if len(path) == 1:
        out.pop(path[0], None)
    elif isinstance(out.get(path[0]), dict):
        out[path[0]] = _without(out[path[0]], path[1:])
    return out


def adopt_stored_config(output, cfg: dict, *, progress: bool = False) -> dict:
    """The configuration to run ``output`` with: ``cfg``, or, for a folder written before some
    settings existed (its ``config.json`` lacks them), that folder's own configuration when the
    request matches it with every such setting at its old value or left at today's default.

    So the command that made an old folder resumes it with its own settings (e.g. an EG-NAS
    search of DARTS cells keeps its 8 operations, ``none`` included, although new ones get the
    released 7), and its ``config.json`` is not rewritten. A request that differs otherwise comes
    back without the settings the folder lacks (where they are at their old value), so the
    refusal (:func:`nascore.run.check_config`) names only real differences. ``progress``: say on
    stderr that an old folder is resumed with its own settings.
    """
    import sys

    from nascore.io import read_json
    path = Path(output) / "config.json"
    if not path.is_file():
        return cfg
    try:
        stored = read_json(path)
    except (ValueError, OSError, UserError):
        return cfg  # check_config refuses it in one line
    if not isinstance(stored, dict) or stored == cfg:
        return cfg
    missing = [p for p in _new_settings(stored) if _get(stored, p, _MISSING) is _MISSING]
    if not missing:
        return cfg
    filled, request = stored, cfg
    for p in missing:
        old = _legacy_value(stored, p)
        filled = _with(filled, p, old)
        if p == ("primitives",):
            today = list(default_primitives(cfg.get("method", ""), cfg.get("space", "")))
        elif p[0] == "es":
            today = old  # the ES defaults are the old behaviour
        else:
            today = LEGACY_SUPERNET[p[0]]
        if _get(request, p, _MISSING) == today:
            request = _with(request, p, old)
    if request == filled:
        if progress:
            names = ", ".join(".".join(p) for p in missing)
            print(f"note: {output} was written before the settings {names} existed; resuming it with its own "
                  "(the behaviour of that time)", file=sys.stderr, flush=True)
        return stored
    for p in missing:
        if _get(request, p, _MISSING) == _legacy_value(stored, p):
            request = _without(request, p)
    return request


_MISSING = object()


def method_settings(method: str, epochs: int, warmup: int | None, amp: str, es) -> tuple[int, dict | None]:
    """Checks shared by every supernet search configuration (CIFAR here, ECG beats in
    :mod:`ecgnas.supernet`): the method, the warm-up (default :func:`default_warmup`, between 0 and
    ``epochs``), the autocast mode, and the EG-NAS settings (an :class:`~nascore.egnas.ESConfig` or
    its dict, normalised to a dict; None for DARTS). Returns ``(warmup, es)``.

    >>> method_settings("darts", 10, None, "auto", {"population": 4})
    (0, None)
    """
    if method not in METHODS:
        raise UserError(f"unknown search method {method!r} (choose from {', '.join(METHODS)})")
    warmup = default_warmup(method, epochs) if warmup is None else warmup
    if isinstance(warmup, bool) or not isinstance(warmup, int) or not 0 <= warmup <= epochs:
        raise UserError(f"--warmup must be an integer between 0 and --epochs ({epochs}); got {warmup!r}")
    if amp not in ("auto", "bf16", "off"):
        raise UserError(f"--amp must be auto, bf16 or off; got {amp!r}")
    if method != "egnas":
        return warmup, None
    from nascore.egnas import ESConfig

    if isinstance(es, ESConfig):
        es = es.to_dict()
    try:
        return warmup, ESConfig(**(es or {})).to_dict()
    except TypeError as e:
        raise UserError(f"EG-NAS settings: {e}") from None


def search_config(*, method: str, space: str = "nb201", dataset: str = "cifar10", epochs: int = 50, warmup: int | None = None,
                  subset: int | None = None, seed: int = 0, batch_size: int = 256, lr: float | None = None,
                  lr_min: float = 0.0, momentum: float = 0.9, weight_decay: float = 3e-4, grad_clip: float = 5.0,
                  C: int = 16, layers: int | None = None, K: int = 4, eval_images: int = 10000, amp: str = "auto",
                  channels_last: bool = False, arch_lr: float = 6e-4, arch_wd: float = 1e-3,
                  es: dict | None = None, op_set: str | None = None, pool_bn: bool = True,
                  bn_running_stats: bool = False) -> dict:
    """The configuration that defines a search run (written to ``config.json``), checked.

    Defaults: EG-NAS lr 0.1 (its code), DARTS lr 0.025 (DARTS code); warm-up 15 for EG-NAS (paper),
    0 for DARTS; ``layers``: 8 cells (darts) or 5 cells per stage (nb201). Supernet
    (:func:`supernet_config`): ``op_set`` None = EG-NAS on DARTS cells the released 7 operations,
    DARTS the 8 with ``none``, NB-201 its 5; a BN after pooling; BNs without running statistics.

    >>> search_config(method="darts", space="nb201", epochs=3)["warmup"]
    0
    """
    if method not in METHODS:
        raise UserError(f"unknown search method {method!r} (choose from {', '.join(METHODS)})")
    from nascore.darts.supernet import SUPERNET_SPACES
    if space not in SUPERNET_SPACES:
        raise UserError(f"--space: unknown space {space!r} for a supernet search (choose from {', '.join(SUPERNET_SPACES)})")
    if dataset not in ("cifar10", "cifar100", "synthetic"):
        raise UserError(f"--dataset: unknown dataset {dataset!r} (cifar10 or cifar100)")
    for name, v in (("epochs", epochs), ("batch_size", batch_size), ("C", C), ("K", K), ("eval_images", eval_images)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise UserError(f"--{name.replace('_', '-')} must be a positive integer; got {v!r}")
    warmup, es = method_settings(method, epochs, warmup, amp, es)
    if subset is not None and subset < 2:
        raise UserError(f"--subset must be at least 2 images; got {subset}")
    return {"method": method, "space": space, "dataset": dataset, "epochs": epochs, "warmup": warmup,
            "subset": subset, "seed": int(seed), "batch_size": batch_size,
            "lr": DEFAULT_LR[method] if lr is None else float(lr), "lr_min": float(lr_min),
            "momentum": momentum, "weight_decay": weight_decay, "grad_clip": grad_clip, "C": C,
            "layers": layers or (8 if space == "darts" else 5), "K": K, "eval_images": eval_images, "amp": amp,
            "channels_last": bool(channels_last), "arch_lr": arch_lr if method == "darts" else None,
            "arch_wd": arch_wd if method == "darts" else None, "es": es,
            **supernet_config(method, space, op_set, pool_bn, bn_running_stats)}


def cosine_lr(epoch: int, epochs: int, lr: float, lr_min: float) -> float:
    """``lr_min + (lr - lr_min)(1 + cos(π e / E)) / 2`` (SGDR without restarts, as DARTS uses).

    >>> cosine_lr(0, 10, 0.1, 0.0), round(cosine_lr(5, 10, 0.1, 0.0), 6)
    (0.1, 0.05)
    """
    return lr_min + (lr - lr_min) * (1 + math.cos(math.pi * epoch / epochs)) / 2


def autocast_factory(device: torch.device, amp: str):
    """A zero-argument callable returning the autocast context (or None for full precision)."""
    use = amp == "bf16" or (amp == "auto" and device.type == "cuda")
    if not use:
        return None
    return lambda: torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def save_checkpoint(path: Path, state: dict) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: Path, space: str, alpha_shape) -> dict:
    """Read a search checkpoint and check it belongs to ``space`` with α of ``alpha_shape``
    (None: any shape; the caller checks it against the checkpoint's ``primitives``).

    Read with ``torch.load(weights_only=True)`` (:func:`nascore.safeload.torch_load`): the
    checkpoint holds only tensors and plain data (the ES state included, see
    :meth:`nascore.egnas.EvolutionStrategy.state_dict`), so a crafted file runs no code; one that
    needs more is refused in one line naming the file.
    """
    from nascore.safeload import torch_load
    state = torch_load(path, "checkpoint")
    if not isinstance(state, dict) or "alpha" not in state or "space" not in state:
        raise UserError(f"{path}: not a supernet search checkpoint (no 'alpha'/'space')")
    shape = list(getattr(state["alpha"], "shape", []))
    if state["space"] != space or (alpha_shape is not None and shape != list(alpha_shape)):
        wanted = "" if alpha_shape is None else f" with shape {list(alpha_shape)}"
        raise UserError(f"{path}: α checkpoint is from space {state['space']!r} with shape {shape}; this search "
                        f"uses space {space!r}{wanted}")
    return state


def _lookup_nb201(arch: str, dataset: str, bench_data) -> dict:
    from nascore.benchmarks.nb201 import NB201Table
    try:
        table = NB201Table.load(dataset, bench_data)
    except UserError as e:
        return {"test_accuracy": None, "lookup_error": str(e)}
    q = table.query(arch, 200 if "valid_acc_200" in table.frame.columns else 12)
    return {"test_accuracy": q.get("test_accuracy"), "valid_accuracy_bench": q.get("valid_accuracy")}


def plot_alpha(log: list[dict], path: Path, primitives, title: str = "") -> None:
    """α trajectories: one panel per edge (rows: cell types), softmax weight of each op over epochs."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    if not log:
        return
    a = np.array([rec["alpha"] for rec in log])  # [epochs, types, edges, ops]
    ep = [rec["epoch"] for rec in log]
    n_types, n_edges, n_ops = a.shape[1:]
    cols = min(n_edges, 7)
    rows_per = -(-n_edges // cols)
    fig, axes = plt.subplots(n_types * rows_per, cols, figsize=(2.2 * cols, 1.8 * n_types * rows_per), squeeze=False,
                             sharex=True, sharey=True)
    for t in range(n_types):
        for e in range(n_edges):
            ax = axes[t * rows_per + e // cols][e % cols]
            for o in range(n_ops):
                ax.plot(ep, a[:, t, e, o], label=primitives[o], lw=1)
            ax.set_title(f"{['normal', 'reduce'][t] if n_types == 2 else 'cell'} edge {e}", fontsize=7)
            ax.tick_params(labelsize=6)
    for k in range(n_types * rows_per * cols):
        r, c = divmod(k, cols)
        if (r % rows_per) * cols + c >= n_edges:
            axes[r][c].axis("off")
    axes[0][0].legend(fontsize=5, loc="upper left")
    fig.suptitle(title or "softmax(α) per edge", fontsize=9)
    fig.supxlabel("epoch", fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def _load_images(cfg: dict, data, images):
    if images is not None:
        return images
    from nascore.data.cifar import load_cifar
    if cfg["dataset"] == "synthetic":
        raise UserError("dataset 'synthetic' needs images passed in (tests only)")
    x, y, _ = load_cifar(cfg["dataset"], data, "train")
    return x, y


class SearchTask:
    """What the search loop (:func:`supernet_search_loop`) needs from a dataset; subclass it.

    A batch is ``(inputs, y)``: ``inputs`` a tuple of tensors passed to the network as
    ``net(*inputs)`` / ``net(*inputs, weights)`` (CIFAR: ``(x,)``; ECG: ``(x, rr)``), ``y`` int64
    labels. Every method must be deterministic given ``(seed, epoch)`` so that a resumed run
    repeats the batches of an uninterrupted one.

    * ``space``: the tag written into (and checked against) ``checkpoint.pt``, also in titles;
    * ``arch_key``: the log/result key of the derived architecture (``"genotype"`` or ``"arch"``);
    * :meth:`train_batches` (epoch): the weight-training batches of the epoch;
    * :meth:`held_batches` (epoch): held-out batches for the DARTS α steps (cycled if shorter);
    * :meth:`es_batch` (epoch): the one held-out batch the ES scores its candidates on;
    * :meth:`loss` (logits, y): the training loss (also the DARTS α loss);
    * :meth:`evaluate` (net, autocast, epoch): end-of-epoch metrics, a dict merged into the log record;
    * :meth:`result` (cfg, log, finished): the ``result.json`` dict;
    * :meth:`postfix` (record): progress-bar fields.
    """

    space: str = ""
    arch_key: str = "genotype"

    def train_batches(self, epoch: int):  # pragma: no cover - interface
        raise NotImplementedError

    def held_batches(self, epoch: int):  # pragma: no cover - interface
        raise NotImplementedError

    def es_batch(self, epoch: int):  # pragma: no cover - interface
        raise NotImplementedError

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.float(), y)

    def evaluate(self, net, autocast, epoch: int) -> dict:  # pragma: no cover - interface
        raise NotImplementedError

    def result(self, cfg: dict, log: list[dict], finished: bool) -> dict:  # pragma: no cover - interface
        raise NotImplementedError

    def postfix(self, rec: dict) -> dict:
        return {}


class CifarSearchTask(SearchTask):
    """CIFAR (or synthetic images): the 50/50 search split, augmented batches, held-out accuracy."""

    def __init__(self, cfg: dict, x: torch.Tensor, y: torch.Tensor, dev: torch.device, bench_data=None, data=None):
        from nascore.data.cifar import MEAN, STD, DeviceLoader, search_split
        self.space = cfg["space"]
        self.arch_key = "genotype" if cfg["space"] == "darts" else "arch"
        self.bench_data, self.data = bench_data, data
        self.n_classes = (int(y.max()) + 1 if cfg["dataset"] == "synthetic"
                          else (10 if cfg["dataset"] == "cifar10" else 100))
        tr, ho = search_split(len(y), cfg["subset"])
        ds = "cifar100" if cfg["dataset"] == "cifar100" else "cifar10"
        kw = dict(device=dev, mean=MEAN[ds], std=STD[ds], channels_last=cfg["channels_last"])
        pad = 4 if x.shape[-1] >= 32 else max(1, x.shape[-1] // 8)
        self.train_dl = DeviceLoader(x[tr], y[tr], cfg["batch_size"], seed=cfg["seed"], augment=True, pad=pad, **kw)
        self.held_dl = DeviceLoader(x[ho], y[ho], cfg["batch_size"], seed=cfg["seed"] + 7919, augment=True, pad=pad,
                                    **kw)
        self.n_eval = min(len(ho), cfg["eval_images"])
        self.eval_dl = DeviceLoader(x[ho[:self.n_eval]], y[ho[:self.n_eval]], cfg["batch_size"], seed=0,
                                    shuffle=False, **kw)

    def train_batches(self, epoch):
        return (((xb,), yb) for xb, yb in self.train_dl.epoch(epoch))

    def held_batches(self, epoch):
        return (((xb,), yb) for xb, yb in self.held_dl.epoch(epoch))

    def es_batch(self, epoch):
        xb, yb = next(iter(self.held_dl.epoch(10_000 + epoch)))
        return (xb,), yb

    def evaluate(self, net, autocast, epoch: int = 0) -> dict:
        """Held-out accuracy in eval mode (as the released ``infer``): batch-statistics BNs are the
        same in both modes; BNs with running statistics (``bn_running_stats``) use them and are
        not updated by the held-out images."""
        v_correct = v_loss = 0.0
        was = net.training
        net.eval()
        try:
            with torch.no_grad(), (autocast or nullcontext)():
                for xb, yb in self.eval_dl.epoch(0):
                    logits = net(xb)
                    v_loss += float(F.cross_entropy(logits.float(), yb, reduction="sum"))
                    v_correct += float((logits.argmax(1) == yb).sum())
        finally:
            net.train(was)
        return {"valid_loss": v_loss / self.n_eval, "valid_acc": 100 * v_correct / self.n_eval}

    def result(self, cfg, log, finished):
        return _result(cfg, log, finished=finished, bench_data=self.bench_data, data=self.data)

    def postfix(self, rec):
        return {"valid": f"{rec['valid_acc']:.1f}"}


def run_supernet_search(cfg: dict, output, *, data=None, device: str = "cpu", progress: bool = True,
                        images=None, bench_data=None, on_epoch=None) -> dict:
    """Run (or resume) the CIFAR search ``cfg`` (from :func:`search_config`) in ``output``.

    ``images``: optional ``(uint8 [N, 3, H, W], int64 [N])`` used instead of loading CIFAR (tests);
    ``on_epoch(record)``: called after each epoch's checkpoint (tests kill a run from it).
    Returns the ``result.json`` dict. The loop itself is :func:`supernet_search_loop`. A folder
    written before some settings existed resumes with its own (:func:`adopt_stored_config`).
    """
    from nascore.darts.supernet import build_supernet

    dev = check_device(device)
    cfg = adopt_stored_config(output, cfg, progress=progress)  # an older folder resumes with its own settings
    check_free(output, cfg, "search folder")  # refused before the images are loaded
    x, y = _load_images(cfg, data, images)
    task = CifarSearchTask(cfg, x, y, dev, bench_data=bench_data, data=data)
    net = build_supernet(cfg["space"], C=cfg["C"], layers=cfg["layers"], num_classes=task.n_classes, K=cfg["K"],
                         seed=cfg["seed"], **supernet_settings(cfg)).to(dev)
    if cfg["channels_last"]:
        net = net.to(memory_format=torch.channels_last)
    return supernet_search_loop(cfg, output, net, task, device=dev, progress=progress, on_epoch=on_epoch)


def egnas_search(*, output, space: str = "nb201", data=None, epochs: int = 50, warmup: int | None = None, subset=None,
                 seed: int = 0, device: str = "cpu", es: ESConfig | dict | None = None, progress: bool = True,
                 released: bool = False, **kwargs) -> dict:
    """Run (or resume) an EG-NAS search in ``output``; returns the ``result.json`` dict (the
    Python API of ``nascore egnas search``; it lives here, beside the loop it drives, so that
    :mod:`nascore.egnas` -- the algorithm -- imports nothing of the training loop).

    ``kwargs`` go to :func:`nascore.darts.train.search_config` (``C``, ``layers``, ``K``,
    ``batch_size``, ``lr``, ``op_set``, ``pool_bn``, ``bn_running_stats`` ...); ``released``: every
    released choice not set in ``es`` / ``kwargs`` (:func:`nascore.egnas.released_settings`). Example (real
    data, minutes on a CPU)::

        egnas_search(output="runs/eg", space="nb201", epochs=4, warmup=1, subset=1000, C=8, layers=1)
    """
    from nascore.egnas import ESConfig, released_settings

    es = es.to_dict() if isinstance(es, ESConfig) else dict(es or {})
    if released:
        sn_keys = ("op_set", "pool_bn", "bn_running_stats")
        es, sn = released_settings(space, es, **{k: kwargs.pop(k) for k in sn_keys if k in kwargs})
        kwargs.update(sn)
    cfg = search_config(method="egnas", space=space, epochs=epochs, warmup=warmup, subset=subset, seed=seed,
                        es=es, **kwargs)
    return run_supernet_search(cfg, output, data=data, device=device, progress=progress)


def check_free(output, cfg: dict, what: str) -> None:
    """Refuse ``output`` early (a :class:`UserError`, nothing written) when it belongs to another
    configuration or another process is writing it; the authoritative check is repeated under
    the folder's lock (:func:`nascore.run.claim_folder`)."""
    out = Path(output)
    try:
        check_config(out, cfg, what)
    except UserError:
        busy = busy_error(out, what)  # half-written by a run in progress: say so, not "not a run folder"
        if busy is not None:
            raise busy from None
        raise
    busy = busy_error(out, what)
    if busy is not None:
        raise busy


def check_device(device) -> torch.device:
    """``torch.device(device)``; a CUDA device on a machine without CUDA is a :class:`UserError`."""
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {device}: CUDA is not available on this machine")
    return dev


def supernet_search_loop(cfg: dict, output, net, task: SearchTask, *, device="cpu", progress: bool = True,
                         on_epoch=None) -> dict:
    """The dataset-independent search loop (module docstring, steps 1-4) of ``net`` on ``task``.

    ``net``: a supernet with ``alpha``, ``weights()``, ``weight_parameters()``, ``derive()``,
    ``ops_set.primitives`` and ``net(*inputs, weights=None)``. ``cfg`` keys used: ``method``
    (``egnas``/``darts``), ``epochs``, ``warmup``, ``seed``, ``lr``, ``lr_min``, ``momentum``,
    ``weight_decay``, ``grad_clip``, ``arch_lr``, ``arch_wd`` (darts), ``es`` (egnas), ``amp``; the
    whole ``cfg`` is the run's identity in ``config.json``. Any other randomness inside the
    network (dropout) comes from the global torch RNG, re-seeded from ``(seed, epoch)`` at the
    start of every epoch (the caller's RNG state is restored on return), so resuming stays exact.
    ``output`` is claimed for the whole loop (:func:`nascore.run.claim_folder`; re-entered when
    the caller already holds its lock): a second process on it gets a one-line UserError.
    Returns the ``result.json`` dict (:meth:`SearchTask.result`).
    """
    out = Path(output)
    # one writer: a second process is refused (its PID named); re-entered when the caller holds it
    with claim_folder(out, cfg, what="search folder"):
        return _search_locked(cfg, out, net, task, torch.device(device), progress, on_epoch)


def _search_locked(cfg: dict, out: Path, net, task: SearchTask, dev: torch.device, progress: bool,
                   on_epoch) -> dict:
    """:func:`supernet_search_loop` under the folder's lock, with ``config.json`` in place."""
    primitives = net.ops_set.primitives
    opt = torch.optim.SGD(net.weight_parameters(), lr=cfg["lr"], momentum=cfg["momentum"],
                          weight_decay=cfg["weight_decay"])
    arch_opt = None
    es = None
    if cfg["method"] == "darts":
        arch_opt = torch.optim.Adam([net.alpha], lr=cfg["arch_lr"], betas=(0.5, 0.999), weight_decay=cfg["arch_wd"])
    else:
        from nascore.egnas import ESConfig, EvolutionStrategy
        es = EvolutionStrategy(ESConfig(**cfg["es"]), seed=cfg["seed"])
    autocast = autocast_factory(dev, cfg["amp"])

    ckpt_path, log_path = out / "checkpoint.pt", out / "log.jsonl"
    start = 0
    if ckpt_path.exists():
        st = load_checkpoint(ckpt_path, task.space, net.alpha.shape)
        try:
            net.load_state_dict(st["model"])
            opt.load_state_dict(st["optimizer"])
            if arch_opt is not None:
                arch_opt.load_state_dict(st["arch_optimizer"])
            if es is not None:
                es.load_state_dict(st["es"])
            start = int(st["epoch"]) + 1
        except (KeyError, RuntimeError, ValueError, TypeError, AttributeError) as e:
            raise UserError(f"{ckpt_path}: not a checkpoint of this supernet ({type(e).__name__})") from None
    log = [r for r in read_jsonl(log_path, repair=True) if r["epoch"] < start]
    if log_path.exists():  # drop records of an epoch that was logged but not checkpointed
        atomic_write_text(log_path, "".join(json.dumps(r) + "\n" for r in log))

    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=cfg["epochs"], initial=start, desc=f"{cfg['method']} {task.space}", unit="epoch")
    rng_devices = [dev.index if dev.index is not None else torch.cuda.current_device()] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=rng_devices):
        for epoch in range(start, cfg["epochs"]):
            torch.manual_seed(int(cfg["seed"]) * 1_000_003 + epoch)  # dropout etc.: reproducible per epoch
            rec = _search_epoch(cfg, net, task, opt, arch_opt, es, autocast, epoch)
            append_jsonl(log_path, [rec])
            state = {"space": task.space, "alpha": net.alpha.detach().cpu(), "epoch": epoch,
                     "model": net.state_dict(), "optimizer": opt.state_dict(),
                     "arch_optimizer": arch_opt.state_dict() if arch_opt is not None else None,
                     "es": es.state_dict() if es is not None else None, "primitives": list(primitives)}
            save_checkpoint(ckpt_path, state)
            log.append(rec)
            atomic_write_json(out / "result.json", task.result(cfg, log, finished=epoch == cfg["epochs"] - 1))
            plot_alpha(log, out / "alpha.png", primitives,
                       title=f"{cfg['method']} on {task.space}: softmax(α) per edge")
            if bar is not None:
                bar.update(1)
                bar.set_postfix(**task.postfix(rec))
            if on_epoch is not None:
                on_epoch(rec)
    if bar is not None:
        bar.close()
    from nascore.io import read_json
    return read_json(out / "result.json")


def _search_epoch(cfg, net, task: SearchTask, opt, arch_opt, es, autocast, epoch: int) -> dict:
    """One search epoch (ES step, weight/α steps, evaluation); returns its log record."""
    lr = cosine_lr(epoch, cfg["epochs"], cfg["lr"], cfg["lr_min"])
    for g in opt.param_groups:
        g["lr"] = lr
    rec = {"epoch": epoch, "lr": lr}
    net.train()
    t0 = time.perf_counter()
    if es is not None and epoch >= cfg["warmup"]:
        inputs, yb = task.es_batch(epoch)
        rec.update(es.step(net, tuple(inputs), yb, epoch, autocast))
    t_es = time.perf_counter() - t0
    t1 = time.perf_counter()
    loss_sum = correct = seen = 0.0
    arch_on = arch_opt is not None and epoch >= cfg["warmup"]
    held_iter = cycle(task.held_batches(epoch)) if arch_on else None
    arch_loss_sum, arch_steps = 0.0, 0
    for inputs, yb in task.train_batches(epoch):
        if arch_on:
            xv, yv = next(held_iter)
            arch_opt.zero_grad(set_to_none=True)
            with (autocast or nullcontext)():
                lv = task.loss(net(*xv), yv)
            lv.backward()
            arch_opt.step()
            arch_loss_sum += float(lv.detach())
            arch_steps += 1
        opt.zero_grad(set_to_none=True)
        with (autocast or nullcontext)():
            logits = net(*inputs)
            loss = task.loss(logits, yb)
        loss.backward()
        net.alpha.grad = None
        torch.nn.utils.clip_grad_norm_(net.weight_parameters(), cfg["grad_clip"])
        opt.step()
        loss_sum += float(loss.detach()) * len(yb)
        correct += float((logits.argmax(1) == yb).sum())
        seen += len(yb)
    t_w = time.perf_counter() - t1
    if seen == 0:
        raise UserError("the search task yielded no training batch (training split smaller than one batch?)")
    for name, value in (("loss", loss_sum / seen), ("architecture loss", arch_loss_sum)):
        if not math.isfinite(value):  # stop here, one line, before the log gets a NaN it cannot hold
            raise UserError(f"training diverged at epoch {epoch} ({name} {value}); lower the weight "
                            f"learning rate (--lr, now {cfg['lr']:g})")
    t2 = time.perf_counter()
    metrics = task.evaluate(net, autocast, epoch)
    t_ev = time.perf_counter() - t2
    rec.update({"train_loss": loss_sum / seen, "train_acc": 100 * correct / seen})
    rec.update(metrics)
    rec.update({"arch_loss": arch_loss_sum / arch_steps if arch_steps else None,
                "alpha": net.weights().detach().float().cpu().numpy().round(6).tolist(),
                task.arch_key: net.derive(),
                "seconds": {"es": round(t_es, 4), "weights": round(t_w, 4), "eval": round(t_ev, 4)}})
    return rec


def search_seconds(log: list[dict]) -> dict:
    """Total seconds spent on the ES, on the weights and in evaluation over the logged epochs."""
    return {k: round(sum(r["seconds"][k] for r in log), 3) for k in ("es", "weights", "eval")}


def _result(cfg: dict, log: list[dict], finished: bool, bench_data=None, data=None) -> dict:
    last = log[-1]
    secs = search_seconds(log)
    res = {"method": cfg["method"], "space": cfg["space"], "seed": cfg["seed"], "epochs_done": len(log),
           "valid_accuracy_supernet": last["valid_acc"], "seconds": secs}
    if cfg["space"] == "darts":
        res["genotype"] = last["genotype"]
    else:
        res["arch"] = last["arch"]
        if finished and cfg["dataset"] in ("cifar10", "cifar100"):
            res.update(_lookup_nb201(last["arch"], cfg["dataset"], bench_data))
    res["alpha"] = last["alpha"]
    res["data"] = None if data is None else str(data)
    res["config"] = cfg
    res["finished"] = finished
    return res


# --- evaluation network --------------------------------------------------------------------------
def train_config(*, genotype: str, dataset: str = "cifar10", epochs: int = 600, subset: int | None = None,
                 test_subset: int | None = None, seed: int = 0, batch_size: int = 96, lr: float = 0.025,
                 momentum: float = 0.9, weight_decay: float = 3e-4, grad_clip: float = 5.0, C: int = 36,
                 layers: int = 20, auxiliary_weight: float = 0.4, drop_path_prob: float = 0.2, cutout: int = 16,
                 amp: str = "auto", channels_last: bool = False) -> dict:
    """Configuration of ``nascore darts train`` (DARTS §3.2 defaults: 600 epochs, batch 96, lr 0.025,
    C = 36, 20 cells, auxiliary weight 0.4, drop-path 0.2, cutout 16)."""
    from nascore.spaces.darts import genotype_to_string, parse_genotype
    text = genotype_to_string(parse_genotype(genotype))
    if dataset not in ("cifar10", "cifar100", "synthetic"):
        raise UserError(f"--dataset: unknown dataset {dataset!r} (cifar10 or cifar100)")
    for name, v in (("epochs", epochs), ("batch_size", batch_size), ("C", C), ("layers", layers)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise UserError(f"--{name.replace('_', '-')} must be a positive integer; got {v!r}")
    if layers < 3:
        raise UserError(f"--layers must be at least 3 (two reduction cells); got {layers}")
    if not 0 <= drop_path_prob < 1:
        raise UserError(f"--drop-path must be in [0, 1); got {drop_path_prob}")
    if amp not in ("auto", "bf16", "off"):
        raise UserError(f"--amp must be auto, bf16 or off; got {amp!r}")
    return {"genotype": text, "dataset": dataset, "epochs": epochs, "subset": subset, "test_subset": test_subset,
            "seed": int(seed), "batch_size": batch_size, "lr": lr, "momentum": momentum,
            "weight_decay": weight_decay, "grad_clip": grad_clip, "C": C, "layers": layers,
            "auxiliary_weight": auxiliary_weight, "drop_path_prob": drop_path_prob, "cutout": cutout, "amp": amp,
            "channels_last": bool(channels_last)}


def train_genotype(cfg: dict, output, *, data=None, device: str = "cpu", progress: bool = True, images=None,
                   test_images=None) -> dict:
    """Train (or resume) the evaluation network of ``cfg["genotype"]`` on the training set and test it
    on the test set after every epoch; per-epoch atomic checkpoint, ``log.jsonl``, ``result.json``.

    The folder is claimed for the whole training (:func:`nascore.run.claim_folder`): another
    configuration's folder is refused before the images are loaded, a second process on it is
    refused with one line naming the holder's PID."""
    from nascore.data.cifar import load_cifar

    out = Path(output)
    dev = check_device(device)
    check_free(out, cfg, "training folder")  # refused before the images are loaded
    if images is None:
        x, y, _ = load_cifar(cfg["dataset"], data, "train")
        xt, yt, _ = load_cifar(cfg["dataset"], data, "test")
    else:
        (x, y), (xt, yt) = images, test_images
    # one writer: a second process is refused (its PID named) for the whole training
    with claim_folder(out, cfg, what="training folder"):
        return _train_locked(cfg, out, dev, x, y, xt, yt, progress)


def _train_locked(cfg: dict, out: Path, dev: torch.device, x, y, xt, yt, progress: bool) -> dict:
    """:func:`train_genotype` under the folder's lock, with ``config.json`` in place."""
    from nascore.data.cifar import MEAN, STD, DeviceLoader
    from nascore.darts.evalnet import EvalNet

    if cfg["subset"]:
        x, y = x[:cfg["subset"]], y[:cfg["subset"]]
    if cfg["test_subset"]:
        xt, yt = xt[:cfg["test_subset"]], yt[:cfg["test_subset"]]
    n_classes = 100 if cfg["dataset"] == "cifar100" else (int(y.max()) + 1 if cfg["dataset"] == "synthetic" else 10)
    ds = "cifar100" if cfg["dataset"] == "cifar100" else "cifar10"
    kw = dict(device=dev, mean=MEAN[ds], std=STD[ds], channels_last=cfg["channels_last"])
    train_dl = DeviceLoader(x, y, cfg["batch_size"], seed=cfg["seed"], augment=True, cutout=cfg["cutout"],
                            pad=4 if x.shape[-1] >= 32 else 1, **kw)
    test_dl = DeviceLoader(xt, yt, 256, shuffle=False, **kw)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg["seed"])
        net = EvalNet(cfg["genotype"], C=cfg["C"], layers=cfg["layers"], num_classes=n_classes,
                      auxiliary=cfg["auxiliary_weight"] > 0).to(dev)
    opt = torch.optim.SGD(net.parameters(), lr=cfg["lr"], momentum=cfg["momentum"], weight_decay=cfg["weight_decay"])
    autocast = autocast_factory(dev, cfg["amp"])
    ckpt_path, log_path = out / "checkpoint.pt", out / "log.jsonl"
    start = 0
    if ckpt_path.exists():
        from nascore.safeload import torch_load
        st = torch_load(ckpt_path, "checkpoint of this network")
        try:
            net.load_state_dict(st["model"])
            opt.load_state_dict(st["optimizer"])
        except Exception as e:  # noqa: BLE001
            raise UserError(f"{ckpt_path}: not a checkpoint of this network ({type(e).__name__})") from None
        start = int(st["epoch"]) + 1
    log = [r for r in read_jsonl(log_path, repair=True) if r["epoch"] < start]
    if log_path.exists():
        atomic_write_text(log_path, "".join(json.dumps(r) + "\n" for r in log))
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=cfg["epochs"], initial=start, desc="darts train", unit="epoch")
    for epoch in range(start, cfg["epochs"]):
        lr = cosine_lr(epoch, cfg["epochs"], cfg["lr"], 0.0)
        for g in opt.param_groups:
            g["lr"] = lr
        net.drop_path_prob = cfg["drop_path_prob"] * epoch / cfg["epochs"]
        torch.manual_seed(cfg["seed"] * 1_000_003 + epoch)  # drop-path masks: reproducible per epoch
        net.train()
        t0 = time.perf_counter()
        loss_sum = correct = seen = 0.0
        for xb, yb in train_dl.epoch(epoch):
            opt.zero_grad(set_to_none=True)
            with (autocast or nullcontext)():
                logits, aux = net(xb)
                loss = F.cross_entropy(logits.float(), yb)
                if aux is not None:
                    loss = loss + cfg["auxiliary_weight"] * F.cross_entropy(aux.float(), yb)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), cfg["grad_clip"])
            opt.step()
            loss_sum += float(loss.detach()) * len(yb)
            correct += float((logits.argmax(1) == yb).sum())
            seen += len(yb)
        if not math.isfinite(loss_sum):  # stop here, one line, before the log gets a NaN it cannot hold
            raise UserError(f"training diverged at epoch {epoch} (loss {loss_sum / max(seen, 1)}); lower "
                            f"--lr (now {cfg['lr']:g})")
        net.eval()
        t_correct = 0.0
        with torch.no_grad(), (autocast or nullcontext)():
            for xb, yb in test_dl.epoch(0):
                t_correct += float((net(xb)[0].argmax(1) == yb).sum())
        rec = {"epoch": epoch, "lr": lr, "drop_path_prob": net.drop_path_prob, "train_loss": loss_sum / seen,
               "train_acc": 100 * correct / seen, "test_acc": 100 * t_correct / len(yt),
               "seconds": round(time.perf_counter() - t0, 3)}
        append_jsonl(log_path, [rec])
        save_checkpoint(ckpt_path, {"epoch": epoch, "model": net.state_dict(), "optimizer": opt.state_dict()})
        log.append(rec)
        atomic_write_json(out / "result.json", {
            "genotype": cfg["genotype"], "epochs_done": len(log), "test_accuracy": rec["test_acc"],
            "params": sum(p.numel() for n, p in net.named_parameters() if not n.startswith("aux.")),
            "seconds": round(sum(r["seconds"] for r in log), 3), "config": cfg,
            "finished": epoch == cfg["epochs"] - 1})
        if bar is not None:
            bar.update(1)
            bar.set_postfix(test=f"{rec['test_acc']:.1f}")
    if bar is not None:
        bar.close()
    from nascore.io import read_json
    return read_json(out / "result.json")
