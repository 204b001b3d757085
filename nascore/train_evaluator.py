"""Train-and-score evaluator for image classification: a cell's network trained on your images.

:class:`ImageTrainEvaluator` is an evaluator (``evaluator(arch, fidelity=None) -> Result``) for the
cell spaces with a network in :data:`NETWORKS` (space name -> builder; adding a space is one entry):

* ``nb201``: the NAS-Bench-201 network of the cell (:func:`nascore.models.build_nb201_net`): stem,
  three stages of ``N`` cells with ``C``, ``2C``, ``4C`` channels joined by residual reduction
  blocks (the benchmark's C=16, N=5);
* ``darts``: the DARTS evaluation network of the genotype (:class:`nascore.darts.evalnet.EvalNet`,
  DARTS §3.2) with ``C`` initial channels and ``3N + 2`` cells -- ``N`` normal cells per stage, a
  reduction cell between stages (DARTS's CIFAR network is C=36, 20 cells, i.e. N=6). Trained with the
  same recipe as NB201 below; DARTS's evaluation extras (auxiliary head, drop-path, cutout, 600
  epochs) are left out to keep a candidate cheap (whether they would change the ranking is not
  measured). One cell at the defaults: 80 CPU-s on one thread here, 62,610 parameters
  (``benchmarks/RESULTS.md``, "one DARTS cell").

For one architecture it

1. builds the network with ``C`` channels and ``N`` cells per stage (the benchmark's sizes, or
   reduced ones for a cheap search signal; the defaults C=8, N=1 for both spaces) and
   ``num_classes`` outputs;
2. trains it on ``subset`` training images (a fixed random subset, :func:`nascore.data.images.holdout_split`)
   for ``epochs`` epochs -- the **recipe** (:class:`Recipe`), the NAS-Bench-201 one scaled down:
   SGD with Nesterov momentum 0.9, learning rate ``lr`` (0.1) decayed by a cosine to 0 over all
   steps, weight decay 5e-4, batch ``batch_size``, cross-entropy; augmentation (``augment``,
   ``"crop-flip"`` by default, ``"none"`` to switch it off) = the standard CIFAR random crop with
   ``S/8`` zero-padding (4 pixels at S=32) + horizontal flip, a different crop and flip per image:
   torchvision ``v2.RandomCrop(S, padding=S//8)`` + ``v2.RandomHorizontalFlip()`` applied to each
   image, done with ``torchvision.transforms.v2.functional`` ops on the device's batches
   (:func:`nascore.data.cifar.crop_flip_v2` in :class:`nascore.data.cifar.DeviceLoader`; offsets and
   flips drawn from a generator seeded by ``(seed, epoch)``, so a training is reproducible); inputs
   normalised with the training subset's per-channel mean/std;
3. scores it: ``Result.score`` = top-1 accuracy (%) on ``val_size`` held-out *training* images
   (the dataset's test split is never read); ``metrics``: ``valid_accuracy``, the last epoch's
   training accuracy and loss, ``params``, ``flops`` (multiply-adds x 2 of one image, torch's
   ``FlopCounterMode``), ``train_seconds``, ``cpu_seconds``, ``epochs``, ``seed``, ``device``;
   ``cost`` = wall seconds. A diverged training (non-finite loss) is a failed evaluation (NaN score,
   ``metrics["error"]``).

With a benchmark ``table`` (e.g. :class:`nascore.benchmarks.nb201.NB201Table` of CIFAR-10) the
table's figures for the cell are added beside the trained ones, never replacing them:
``test_accuracy`` = the table's 200-epoch test accuracy, ``table_valid_accuracy`` its 200-epoch
validation accuracy. They are looked up after the cache, so they are not part of a cached result.

**Fidelity.** ``evaluator(arch, fidelity=E)`` trains for ``E`` epochs instead of the recipe's (a
rung of a multi-fidelity search, :mod:`nascore.multifidelity`; the cosine spans the ``E`` epochs).

**Seeds and cache.** A candidate's training seed is derived from the evaluator ``seed`` and the
architecture's canonical string (:func:`candidate_seed`), not from the order a strategy asks in,
so the same cell under the same settings gets the same result in any search. Results are cached
as JSON files under ``cache_dir``, keyed by a hash of (space, architecture, recipe, data, seed);
a cached result keeps its original cost and says ``cached: true``. Entries are write-once under a
short write lock, so searches (and the fidelity study) may share one cache while they run.

**Device.** ``device="cpu"`` (default; ``threads`` torch threads, 1 by default), ``"cuda"`` or
``"auto"``. The training and held-out images live on the device for the whole training
(:class:`~nascore.data.cifar.DeviceLoader`); images are loaded lazily and dropped when the
evaluator is pickled (Ray workers load their own copy).

>>> ev = ImageTrainEvaluator(get_space("nb201"), data="cifar10-jpeg", recipe=Recipe(epochs=3))  # doctest: +SKIP
>>> ev(arch).score, ev(arch).metrics["params"]                                                  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

from nascore.errors import UserError
from nascore.evaluation import Result

#: version of the training code in the cache key: bump when a change alters results
TRAIN_VERSION = 1

#: ``--augment`` names -> :attr:`Recipe.augment`
AUGMENT = {"crop-flip": True, "none": False}


def _nb201_network(space, arch, *, C: int, N: int, num_classes: int):
    return space.build_model(arch, C=C, N=N, num_classes=num_classes)


def _darts_network(space, arch, *, C: int, N: int, num_classes: int):
    from nascore.darts.evalnet import EvalNet

    return EvalNet(space.genotype(arch), C=C, layers=3 * N + 2, num_classes=num_classes, auxiliary=False)


#: the network of an architecture, per space name: ``builder(space, arch, C=, N=, num_classes=)`` ->
#: a module mapping images ``[B, 3, S, S]`` to logits (or to a tuple whose first item is the logits,
#: as the DARTS EvalNet's ``(logits, aux)``). The one place that says which spaces can be trained.
NETWORKS = {"nb201": _nb201_network, "darts": _darts_network}


def network_builder(space):
    """The :data:`NETWORKS` builder of ``space``; a one-line error for a space without one."""
    name = getattr(space, "name", space)
    if name not in NETWORKS:
        raise UserError(f"the {name} space has no trainable network in the train evaluator "
                        f"(spaces with one: {', '.join(NETWORKS)})")
    return NETWORKS[name]


def build_network(space, arch, *, C: int, N: int, num_classes: int):
    """The network of ``arch`` in ``space`` (:data:`NETWORKS`); a one-line error for other spaces."""
    return network_builder(space)(space, arch, C=C, N=N, num_classes=num_classes)


def _logits(out):
    return out[0] if isinstance(out, tuple) else out


@dataclass(frozen=True)
class Recipe:
    """How a candidate is trained and scored (see the module docstring). The defaults are the
    short CPU schedule ``s16e3`` of ``benchmarks/nb201_train_fidelity.py`` (16 x 16 images, 5,000
    training and 2,000 held-out images, C=8, N=1, 3 epochs, batch 64; about 9 CPU-seconds per
    cell on one thread here): the cheapest of the schedules piloted, and none of the costlier ones
    ranked the pilot's cells better (``benchmarks/RESULTS.md``, "NB201 cells trained on this CPU").

    ``C``/``N``: channels of the first stage and cells per stage, in every space of :data:`NETWORKS`
    (DARTS: ``3N + 2`` cells). ``augment``: ``"crop-flip"`` (or ``True``; the default) or ``"none"``
    (or ``False``), stored as a bool so the default recipe keeps its identity (and its cache keys)."""

    epochs: int = 3
    C: int = 8
    N: int = 1
    image_size: int | None = 16
    subset: int | None = 5000
    val_size: int | None = 2000
    batch_size: int = 64
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = True
    augment: bool = True
    split_seed: int = 0

    def __post_init__(self):
        for name in ("epochs", "C", "N", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise UserError(f"--{name.lower().replace('_', '-')}: need a positive integer, got {v!r}")
        for name in ("image_size", "subset", "val_size"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise UserError(f"--{name.replace('_', '-')}: need a positive integer, got {v!r}")
        if self.image_size is not None and self.image_size < 4:
            raise UserError(f"--image-size: need at least 4 pixels, got {self.image_size}")
        if isinstance(self.augment, str) and self.augment in AUGMENT:
            object.__setattr__(self, "augment", AUGMENT[self.augment])
        if not isinstance(self.augment, bool):
            raise UserError(f"--augment: expected {' or '.join(AUGMENT)}, got {self.augment!r}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise UserError(f"--lr: need a positive number, got {self.lr!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def candidate_seed(seed: int, key: str) -> int:
    """Training seed of one candidate: a function of the evaluator seed and the canonical string.

    >>> candidate_seed(0, "a") == candidate_seed(0, "a") != candidate_seed(1, "a")
    True
    """
    h = hashlib.sha256(f"{int(seed)}|{key}".encode()).digest()
    return int.from_bytes(h[:4], "little") & 0x7FFFFFFF


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {device}: no CUDA GPU is visible to torch")
    if not (device == "cpu" or device.startswith("cuda") or device == "mps"):
        raise UserError(f"--device: expected cpu, cuda[:k], mps or auto; got {device!r}")
    return device


class ImageTrainEvaluator:
    """Train a cell's network on images and score held-out accuracy (see the module docstring).

    ``space``: a space of :data:`NETWORKS` (nb201, darts); ``data``: the image folder
    (:func:`nascore.data.images.load_train_images`); ``recipe``: :class:`Recipe`; ``seed``: the
    evaluation seed; ``cache_dir``: result cache (None: no cache); ``table``: optional benchmark
    table whose figures are reported beside the trained ones; ``device``/``threads``: where and
    with how many CPU threads to train; ``images``: optional ``(x uint8 [N,3,S,S], y, classes)`` to
    use instead of reading ``data`` (tests, notebooks; ``data`` still names it in the cache key).
    """

    def __init__(self, space, data, recipe: Recipe | None = None, *, seed: int = 0,
                 cache_dir: str | os.PathLike | None = None, table=None, device: str = "cpu", threads: int = 1,
                 images=None):
        self.space = space
        network_builder(space)  # a space without a network is refused before anything is loaded
        self.recipe = recipe if recipe is not None else Recipe()
        if not isinstance(self.recipe, Recipe):
            raise UserError(f"recipe: expected a Recipe, got {type(self.recipe).__name__}")
        self.data = str(data)
        self.seed = int(seed)
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.table = table
        self.device = device
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise UserError(f"--threads: need a positive integer, got {threads!r}")
        self.threads = threads
        self._images = images
        self._prepared = None
        if images is None:
            from nascore.data.images import describe_folder

            folder, self._layout = describe_folder(self.data)
            self.data = str(folder.resolve())
        else:
            self._layout = "given"

    def __getstate__(self):
        d = dict(self.__dict__)
        d["_prepared"] = None
        if d["_layout"] != "given":
            d["_images"] = None
        return d

    # --- identity ---------------------------------------------------------------------------------
    def data_identity(self) -> dict:
        return {"data": self.data, "layout": self._layout}

    def identity(self) -> dict:
        """What determines a result besides the architecture (recorded in a search's config)."""
        return {"recipe": self.recipe.to_dict(), **self.data_identity(), "seed": self.seed,
                "train_version": TRAIN_VERSION}

    def key(self, arch_key: str) -> str:
        blob = json.dumps({"space": self.space.name, "arch": arch_key, **self.identity()}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    # --- evaluation --------------------------------------------------------------------------------
    def at_epochs(self, epochs: int) -> "ImageTrainEvaluator":
        """This evaluator training ``epochs`` epochs (sharing its loaded images)."""
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise UserError(f"fidelity: need a whole number of epochs >= 1, got {epochs!r}")
        ev = copy.copy(self)
        ev.recipe = dataclasses.replace(self.recipe, epochs=int(epochs))
        return ev

    def __call__(self, arch, fidelity: int | None = None) -> Result:
        ev = self if fidelity is None or int(fidelity) == self.recipe.epochs else self.at_epochs(int(fidelity))
        s = self.space.to_string(arch)
        res = ev.cached(s, arch)
        if self.table is not None and not res.failed:
            q = self.table.query(s, 200)
            res.metrics["test_accuracy"] = q["test_accuracy"]
            res.metrics["table_valid_accuracy"] = q["valid_accuracy"]
        return res

    def cached(self, arch_key: str, arch) -> Result:
        """:meth:`evaluate` through the write-once result cache (:class:`nascore.evalcache.ResultCache`:
        computed without a lock, written under a short write lock; the first entry wins)."""
        from nascore.evalcache import ResultCache

        return ResultCache(self.cache_dir).get_or_compute(self.key(arch_key), lambda: self.evaluate(arch),
                                                          arch=arch_key, identity=self.identity())

    def prepared(self):
        """``(x_train, y_train, x_val, y_val, classes, mean, std)`` on the CPU (loaded once)."""
        if self._prepared is None:
            import torch

            from nascore.data.images import _resize, holdout_split, load_train_images

            r = self.recipe
            if self._images is not None:
                x, y, classes = self._images
                if r.image_size is not None:
                    x = _resize(x, r.image_size)
            else:
                x, y, classes = load_train_images(self.data, r.image_size)
            tr, va = holdout_split(y, r.subset, r.val_size, r.split_seed)
            xt, yt, xv, yv = x[tr].contiguous(), y[tr].contiguous(), x[va].contiguous(), y[va].contiguous()
            f = xt.float() / 255
            mean = tuple(f.mean(dim=(0, 2, 3)).tolist())
            std = tuple(f.std(dim=(0, 2, 3)).clamp_min(1e-3).tolist())
            self._prepared = (xt, yt, xv, yv, list(classes), mean, std)
        return self._prepared

    def evaluate(self, arch) -> Result:
        """Train and score one architecture (no cache)."""
        import torch
        from torch import nn

        from nascore.data.cifar import DeviceLoader

        t0, c0 = time.perf_counter(), time.process_time()
        device = resolve_device(self.device)
        if device == "cpu":
            torch.set_num_threads(self.threads)
        r = self.recipe
        arch_key = self.space.to_string(arch)
        seed = candidate_seed(self.seed, arch_key)
        xt, yt, xv, yv, classes, mean, std = self.prepared()
        torch.manual_seed(seed)
        net = build_network(self.space, arch, C=r.C, N=r.N, num_classes=len(classes))
        params = sum(p.numel() for p in net.parameters())
        flops = count_flops(net, xt.shape[1:])
        net = net.to(device)
        size = xt.shape[-1]
        train = DeviceLoader(xt, yt, r.batch_size, device=device, seed=seed, augment=r.augment,
                             pad=max(1, size // 8), mean=mean, std=std, drop_last=len(yt) > r.batch_size,
                             transforms_v2=True)
        val = DeviceLoader(xv, yv, 500, device=device, shuffle=False, mean=mean, std=std)
        opt = torch.optim.SGD(net.parameters(), lr=r.lr, momentum=r.momentum, weight_decay=r.weight_decay,
                              nesterov=r.nesterov)
        total = max(1, r.epochs * len(train))
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 0.5 * (1 + math.cos(math.pi * min(k, total) / total)))
        loss_fn = nn.CrossEntropyLoss()
        metrics = {"params": params, "flops": flops, "seed": seed, "device": device, "epochs": r.epochs,
                   "image_size": int(size), "train_images": int(len(yt)), "val_images": int(len(yv))}
        for epoch in range(r.epochs):
            net.train()
            loss_sum = torch.zeros((), device=device)
            correct = torch.zeros((), device=device)
            seen = 0
            for x, y in train.epoch(epoch):
                out = _logits(net(x))
                loss = loss_fn(out, y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                loss_sum += loss.detach() * len(y)
                correct += (out.detach().argmax(1) == y).sum()
                seen += len(y)
            train_loss = float(loss_sum) / max(seen, 1)
            if not math.isfinite(train_loss):
                metrics.update({"error": f"training diverged (loss {train_loss}) in epoch {epoch + 1}"})
                return Result(math.nan, metrics, round(time.perf_counter() - t0, 3))
        metrics.update({"train_loss": round(train_loss, 5), "train_accuracy": round(100 * float(correct) / max(seen, 1), 4)})
        net.eval()
        hit = 0
        with torch.no_grad():
            for x, y in val.epoch(0):
                hit += int((_logits(net(x)).argmax(1) == y).sum())
        acc = 100.0 * hit / len(yv)
        metrics.update({"valid_accuracy": round(acc, 4), "train_seconds": round(time.perf_counter() - t0, 3),
                        "cpu_seconds": round(time.process_time() - c0, 3)})
        return Result(acc, metrics, cost=round(time.perf_counter() - t0, 3))


def count_flops(net, shape) -> int | None:
    """FLOPs (torch's count: 2 per multiply-add) of one forward pass of one image of ``shape``."""
    import torch

    try:
        from torch.utils.flop_counter import FlopCounterMode

        was = net.training
        net.eval()
        with torch.no_grad(), FlopCounterMode(display=False) as fc:
            net(torch.zeros(1, *shape))
        net.train(was)
        return int(fc.get_total_flops())
    except Exception:  # noqa: BLE001 - a counter failure must not fail the training
        return None
