"""CIFAR-10/100 as uint8 tensors, and a device-resident batch loader with tensor augmentation.

Formats read (:func:`load_cifar`), whichever the data folder holds:

* the official torchvision/python format: ``cifar-10-batches-py/data_batch_{1..5}, test_batch``
  (CIFAR-100: ``cifar-100-python/{train,test}``, fine labels), the folder itself or its parent.
  These are pickles; they are read with a restricted unpickler that rebuilds numpy arrays and
  plain data only (:mod:`nascore.safeload`), so a crafted batch file is refused and runs no code;
* an ImageFolder tree ``train/<class>/*`` and ``test/<class>/*`` (any image format PIL reads);
* the same tree packed as ``train.tar.gz`` / ``test.tar.gz`` (this workspace's lossy JPEG copy,
  ``cifar10-jpeg``). The archive is decoded straight into a uint8 array (PIL; the 60,000 images
  take about 10 s on one core) and cached, written atomically, as
  ``<user cache>/cifar-npy/<name>-<key>-<split>.npz`` (key from the archive's path, size and mtime).

Classes are the sorted class-folder names (ImageFolder's rule; for CIFAR-10 this equals the
official label order). Images keep archive/listing order. Returned arrays: images
``uint8 [N, 3, 32, 32]``, labels ``int64 [N]``.

Folder resolution: ``data`` (``--data DIR``), else ``$NASCORE_DATA/<name>-jpeg`` then
``$NASCORE_DATA/<name>``, else the same names under the user cache. A folder in none of the
layouts above is a one-line :class:`UserError` naming what is missing. ``download=True`` fetches
the official files with torchvision into the user cache (needs internet).

:class:`DeviceLoader` keeps the whole split on the device (GPU or CPU) and does the standard
CIFAR augmentation on tensors — random crop 32 with 4 zero-padding, horizontal flip, optional
cutout (DeVries & Taylor 2017) — then normalises with the CIFAR mean/std. All random numbers of an
epoch come from a CPU generator seeded by ``(seed, epoch)`` and are moved to the device once per
epoch, so batches are reproducible, independent of earlier epochs (resume needs no RNG state),
and need no per-batch host transfer. With ``transforms_v2=True`` the crop and flip are done by
torchvision's ``transforms.v2`` functional ops instead (:func:`crop_flip_v2`; the same pixels for
the same random numbers, so results do not change; the image-training evaluator uses it).

>>> import torch
>>> x = torch.randint(0, 256, (10, 3, 8, 8), dtype=torch.uint8); y = torch.arange(10) % 3
>>> dl = DeviceLoader(x, y, batch_size=4, seed=0, augment=True, pad=2)
>>> [tuple(b[0].shape) for b in dl.epoch(0)]
[(4, 3, 8, 8), (4, 3, 8, 8), (2, 3, 8, 8)]
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import torch

from nascore.errors import DataMissingError, UserError
from nascore.io import atomic_write_bytes
from nascore.paths import candidate_dirs, user_cache_root

DATASETS = {"cifar10": 10, "cifar100": 100}
MEAN = {"cifar10": (0.4914, 0.4822, 0.4465), "cifar100": (0.5071, 0.4865, 0.4409)}
STD = {"cifar10": (0.2470, 0.2435, 0.2616), "cifar100": (0.2673, 0.2564, 0.2762)}
_OFFICIAL = {"cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], b"labels"),
             "cifar100": ("cifar-100-python", ["train"], ["test"], b"fine_labels")}
_IMG_EXT = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".webp")


def _check_name(name: str) -> None:
    if name not in DATASETS:
        raise UserError(f"unknown dataset {name!r} (choose from {', '.join(DATASETS)})")


def detect_layout(folder: Path, name: str = "cifar10") -> str | None:
    """``"official"``, ``"official-inner"`` (the batches folder itself), ``"tar"``, ``"imagefolder"`` or None."""
    inner, train_files, _, _ = _OFFICIAL[name]
    if (folder / inner / train_files[0]).is_file():
        return "official"
    if (folder / train_files[0]).is_file() and folder.name == inner:
        return "official-inner"
    if (folder / "train.tar.gz").is_file() and (folder / "test.tar.gz").is_file():
        return "tar"
    if (folder / "train").is_dir() and (folder / "test").is_dir():
        return "imagefolder"
    return None


def find_cifar(name: str = "cifar10", data: str | os.PathLike | None = None) -> tuple[Path, str]:
    """The data folder and its layout (see module docstring); ``UserError`` when none fits."""
    _check_name(name)
    if data is not None:
        folder = Path(data)
        if not folder.is_dir():
            raise DataMissingError(f"--data {folder}: no such folder")
        layout = detect_layout(folder, name)
        if layout is None:
            inner = _OFFICIAL[name][0]
            raise UserError(f"{folder} is not a {name} folder: expected {inner}/ (official), train.tar.gz + "
                            f"test.tar.gz, or train/<class>/ + test/<class>/ (ImageFolder)")
        return folder, layout
    looked = []
    for sub in (f"{name}-jpeg", name):
        for folder in candidate_dirs(sub):
            looked.append(str(folder))
            if folder.is_dir():
                layout = detect_layout(folder, name)
                if layout is not None:
                    return folder, layout
    raise DataMissingError(f"{name} data not found (looked in {', '.join(looked)}); pass --data DIR, set "
                           f"NASCORE_DATA, or download the official files with "
                           f"torchvision.datasets.{name.upper()}(root, download=True)")


def _read_official(folder: Path, name: str, split: str, inner_given: bool):
    inner, train_files, test_files, key = _OFFICIAL[name]
    base = folder if inner_given else folder / inner
    xs, ys = [], []
    for f in train_files if split == "train" else test_files:
        path = base / f
        d = _read_pickle(path, name, "batch file")
        try:
            data = d[b"data"]
            if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
                raise ValueError("b'data' is not a uint8 [N, 3072] array")
            labels = np.asarray(d[key], np.int64)
            if labels.shape != (len(data),):
                raise ValueError(f"{len(labels)} labels for {len(data)} images")
        except (KeyError, TypeError, ValueError) as e:
            raise UserError(f"{path}: not a readable {name} batch file ({type(e).__name__}: {e})") from None
        xs.append(data.reshape(-1, 3, 32, 32))
        ys.append(labels)
    meta = base / ("batches.meta" if name == "cifar10" else "meta")
    classes = None
    if meta.is_file():
        m = _read_pickle(meta, name, "meta file")
        names = m.get(b"label_names") or m.get(b"fine_label_names") if isinstance(m, dict) else None
        classes = [c.decode() if isinstance(c, bytes) else str(c) for c in names] if names else None
    return np.concatenate(xs), np.concatenate(ys), classes


def _read_pickle(path: Path, name: str, what: str):
    """One official CIFAR pickle, read with a restricted unpickler (numpy arrays, numbers, bytes and
    containers only: :func:`nascore.safeload.load_restricted_pickle`), so a crafted file runs no
    code; anything else is a one-line :class:`UserError` naming the file."""
    from nascore.safeload import load_restricted_pickle
    try:
        with open(path, "rb") as fh:
            return load_restricted_pickle(fh, str(path))
    except UserError:
        raise
    except FileNotFoundError:
        raise UserError(f"{path}: {name} {what} is missing") from None
    except OSError:
        raise  # permission or I/O: the command line reports it as an operating-system error
    except Exception as e:  # noqa: BLE001 - a damaged pickle raises many types
        raise UserError(f"{path}: not a readable {name} {what} ({type(e).__name__})") from None


def _decode(blobs: list[bytes], where: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError
    out = np.empty((len(blobs), 3, 32, 32), np.uint8)
    for k, b in enumerate(blobs):
        try:
            img = np.asarray(Image.open(io.BytesIO(b)).convert("RGB"))
        except (UnidentifiedImageError, OSError):
            raise UserError(f"{where}: image {k} cannot be decoded") from None
        if img.shape != (32, 32, 3):
            raise UserError(f"{where}: image {k} is {img.shape[:2]}, expected 32x32")
        out[k] = img.transpose(2, 0, 1)
    return out


def _split_members(pairs, split: str, where: str):
    """``(relative path, bytes)`` pairs -> images, labels, classes (sorted class folders)."""
    items = []
    for rel, blob in pairs:
        parts = rel.strip("/").split("/")
        if parts and parts[0] == ".":
            parts = parts[1:]
        if len(parts) != 3 or parts[0] != split or not parts[2].lower().endswith(_IMG_EXT):
            continue
        items.append((parts[1], blob))
    if not items:
        raise UserError(f"{where}: no images found as {split}/<class>/<image>")
    classes = sorted({c for c, _ in items})
    index = {c: k for k, c in enumerate(classes)}
    x = _decode([b for _, b in items], where)
    y = np.array([index[c] for c, _ in items], np.int64)
    return x, y, classes


def _read_tar(folder: Path, name: str, split: str):
    path = folder / f"{split}.tar.gz"
    st = path.stat()
    key = hashlib.sha1(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:12]
    cache = user_cache_root() / "cifar-npy" / f"{name}-{key}-{split}.npz"
    if cache.is_file():
        try:
            with np.load(cache) as z:
                return z["x"], z["y"], [str(c) for c in z["classes"]]
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            pass  # a damaged cache is rebuilt below
    try:
        with tarfile.open(path, "r:gz") as tf:
            pairs = [(m.name, tf.extractfile(m).read()) for m in tf if m.isfile()]
    except (tarfile.TarError, OSError, EOFError) as e:
        raise UserError(f"{path}: not a readable .tar.gz archive ({type(e).__name__})") from None
    x, y, classes = _split_members(pairs, split, str(path))
    buf = io.BytesIO()
    np.savez(buf, x=x, y=y, classes=np.array(classes))
    atomic_write_bytes(cache, buf.getvalue())
    return x, y, classes


def _read_imagefolder(folder: Path, split: str):
    root = folder / split
    pairs = []
    for cls in sorted(p for p in root.iterdir() if p.is_dir()):
        for f in sorted(cls.iterdir()):
            if f.suffix.lower() in _IMG_EXT:
                pairs.append((f"{split}/{cls.name}/{f.name}", f.read_bytes()))
    return _split_members(pairs, split, str(root))


def load_cifar(name: str = "cifar10", data: str | os.PathLike | None = None, split: str = "train",
               download: bool = False) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Images ``uint8 [N, 3, 32, 32]``, labels ``int64 [N]`` and class names of one split.

    >>> x, y, classes = load_cifar("cifar10", split="test")   # doctest: +SKIP
    >>> x.shape, classes[0]                                    # doctest: +SKIP
    (torch.Size([10000, 3, 32, 32]), 'airplane')
    """
    _check_name(name)
    if split not in ("train", "test"):
        raise UserError(f"unknown split {split!r} (train or test)")
    if download and data is None:
        _download(name)
    folder, layout = find_cifar(name, data)
    if layout in ("official", "official-inner"):
        x, y, classes = _read_official(folder, name, split, layout == "official-inner")
        classes = classes or [str(k) for k in range(DATASETS[name])]
    elif layout == "tar":
        x, y, classes = _read_tar(folder, name, split)
    else:
        x, y, classes = _read_imagefolder(folder, split)
    if len(classes) != DATASETS[name]:
        raise UserError(f"{folder}: {split} split has {len(classes)} classes, {name} has {DATASETS[name]}")
    return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y), list(classes)


def _download(name: str) -> None:
    import torchvision
    root = user_cache_root() / name
    cls = torchvision.datasets.CIFAR10 if name == "cifar10" else torchvision.datasets.CIFAR100
    try:
        cls(str(root), train=True, download=True)
    except Exception as e:  # noqa: BLE001 - any network failure becomes one line
        raise UserError(f"downloading {name} into {root} failed ({type(e).__name__}: {e})") from None


def search_split(n: int, subset: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The standard DARTS search split: first half of the (first ``subset``) training images trains
    the weights, second half is held out for the architecture.

    >>> [a.tolist() for a in search_split(50000, subset=6)]
    [[0, 1, 2], [3, 4, 5]]
    """
    m = n if subset is None else int(subset)
    if not 2 <= m <= n:
        raise UserError(f"--subset must be between 2 and {n} training images; got {subset}")
    half = m // 2
    return np.arange(half), np.arange(half, m)


def crop_flip_v2(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, flip: torch.Tensor, pad: int) -> torch.Tensor:
    """Random crop with ``pad`` zero-padding + horizontal flip of a batch ``x [B, C, H, W]``, a
    different crop per image, with torchvision's ``transforms.v2`` functional ops.

    Image ``i`` becomes ``v2.functional.crop(v2.functional.pad(x[i], pad), dy[i], dx[i], H, W)``,
    flipped by ``v2.functional.horizontal_flip`` where ``flip[i]``: what ``v2.RandomCrop(H, padding=pad)``
    + ``v2.RandomHorizontalFlip()`` do to one image with these offsets. (Called on a batched tensor
    those transforms draw *one* crop and one flip for the whole batch, hence this function.) It is
    vectorised: one ``pad`` for the batch, one ``crop`` per distinct offset among its images (at most
    ``(2 pad + 1)^2`` calls) and one ``horizontal_flip`` of the flipped images.

    >>> x = torch.arange(2 * 9, dtype=torch.float).view(2, 1, 3, 3)
    >>> y = crop_flip_v2(x, torch.tensor([0, 1]), torch.tensor([1, 1]), torch.tensor([False, True]), pad=1)
    >>> y[0, 0].tolist(), y[1, 0].tolist()
    ([[0.0, 0.0, 0.0], [0.0, 1.0, 2.0], [3.0, 4.0, 5.0]], [[11.0, 10.0, 9.0], [14.0, 13.0, 12.0], [17.0, 16.0, 15.0]])
    """
    from torchvision.transforms.v2 import functional as TF

    h, w = x.shape[-2:]
    padded = TF.pad(x, [pad], fill=0)
    side = 2 * pad + 1
    offset = dy * side + dx
    out = torch.empty_like(x)
    for o in torch.unique(offset).tolist():
        sel = (offset == o).nonzero().squeeze(1)
        out[sel] = TF.crop(padded[sel], o // side, o % side, h, w)
    f = flip.nonzero().squeeze(1)
    if len(f):
        out[f] = TF.horizontal_flip(out[f])
    return out


class DeviceLoader:
    """Batches of a whole split held on ``device``: ``epoch(e)`` yields ``(x float [B, 3, H, W], y [B])``.

    ``augment``: random crop with ``pad`` zero-padding + horizontal flip (+ ``cutout`` pixels, 0 =
    off); ``shuffle``: a new order each epoch; ``channels_last``: memory format of the batches;
    ``drop_last``: skip the final short batch; ``transforms_v2``: crop and flip with
    :func:`crop_flip_v2` (torchvision ``transforms.v2``; same pixels). Randomness depends only on
    ``(seed, epoch)``.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int, *, device="cpu", seed: int = 0,
                 augment: bool = False, shuffle: bool = True, pad: int = 4, cutout: int = 0,
                 mean=MEAN["cifar10"], std=STD["cifar10"], channels_last: bool = False, drop_last: bool = False,
                 transforms_v2: bool = False):
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise UserError(f"DeviceLoader needs uint8 images [N, C, H, W]; got {images.dtype} {tuple(images.shape)}")
        if batch_size < 1:
            raise UserError(f"batch size must be positive; got {batch_size}")
        self.device = torch.device(device)
        self.x = images.to(self.device)
        self.y = labels.to(self.device)
        self.batch_size, self.seed, self.augment, self.shuffle = batch_size, seed, augment, shuffle
        self.pad, self.cutout, self.channels_last, self.drop_last = pad, cutout, channels_last, drop_last
        self.transforms_v2 = transforms_v2
        c = images.shape[1]
        self.mean = torch.tensor(mean[:c], device=self.device).view(1, c, 1, 1) * 255
        self.std = torch.tensor(std[:c], device=self.device).view(1, c, 1, 1) * 255

    def __len__(self) -> int:
        n = len(self.y)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def epoch(self, epoch: int):
        n, (h, w) = len(self.y), self.x.shape[2:]
        g = torch.Generator().manual_seed(int(self.seed) * 1_000_003 + int(epoch))
        order = torch.randperm(n, generator=g) if self.shuffle else torch.arange(n)
        order = order.to(self.device)
        if self.augment:
            dy = torch.randint(0, 2 * self.pad + 1, (n,), generator=g).to(self.device)
            dx = torch.randint(0, 2 * self.pad + 1, (n,), generator=g).to(self.device)
            flip = (torch.rand(n, generator=g) < 0.5).to(self.device)
            cy = torch.randint(0, h, (n,), generator=g).to(self.device)
            cx = torch.randint(0, w, (n,), generator=g).to(self.device)
        ar_h = torch.arange(h, device=self.device)
        ar_w = torch.arange(w, device=self.device)
        for s in range(0, n, self.batch_size):
            idx = order[s:s + self.batch_size]
            if self.drop_last and len(idx) < self.batch_size:
                break
            x = self.x[idx].float()
            if self.augment and self.transforms_v2:
                x = crop_flip_v2(x, dy[idx], dx[idx], flip[idx], self.pad)
            elif self.augment:
                x = torch.nn.functional.pad(x, (self.pad,) * 4)
                rows = (dy[idx, None] + ar_h)[:, None, :, None]
                cols = (dx[idx, None] + ar_w)[:, None, None, :]
                b = torch.arange(len(idx), device=self.device)[:, None, None, None]
                ch = torch.arange(x.shape[1], device=self.device)[None, :, None, None]
                x = x[b, ch, rows, cols]
                x = torch.where(flip[idx, None, None, None], x.flip(3), x)
            x = (x - self.mean) / self.std
            if self.augment and self.cutout > 0:
                lo_y, lo_x = cy[idx, None] - self.cutout // 2, cx[idx, None] - self.cutout // 2
                my = (ar_h[None, :] >= lo_y) & (ar_h[None, :] < lo_y + self.cutout)
                mx = (ar_w[None, :] >= lo_x) & (ar_w[None, :] < lo_x + self.cutout)
                keep = ~(my[:, :, None] & mx[:, None, :])
                x = x * keep[:, None].to(x.dtype)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, self.y[idx]
