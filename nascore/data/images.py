"""Training images of any classification dataset as one uint8 tensor, and a held-out split of them.

:func:`load_train_images` reads the *training* part of a dataset folder (the test part is never
read: candidates are scored on a held-out split of the training images, :func:`holdout_split`):

* the CIFAR layouts of :mod:`nascore.data.cifar` (official torchvision pickles of CIFAR-10/100,
  the ``train.tar.gz`` JPEG copy, ``train/<class>/`` + ``test/<class>/``), decoded by that module
  (and cached there);
* any ImageFolder tree, ``DIR/train/<class>/<image>`` or ``DIR/<class>/<image>`` (any format PIL
  reads: PNG, JPEG, BMP, WebP, ...): every image is converted to RGB and resized to
  ``image_size`` x ``image_size`` (PIL bilinear with antialiasing) once, at load time. The decoded
  array is cached atomically as ``<user cache>/images-npy/<key>.npz`` (key: the folder's path,
  the file list with sizes and mtimes, and the size), so a second search starts in a second.

Classes are the sorted class-folder names (torchvision ``ImageFolder``'s rule). The CIFAR copies
are 32 x 32; with ``image_size`` set they are resized too (e.g. 16 for a cheaper search signal).

>>> import numpy as np, torch
>>> tr, va = holdout_split(torch.tensor([0, 1] * 10), subset=6, val_size=4, seed=0)
>>> len(tr), len(va), len(set(tr.tolist()) & set(va.tolist()))
(6, 4, 0)
>>> [len(i) for i in holdout_split(torch.zeros(20), subset=5000, val_size=2000)]   # capped to fit
[16, 4]
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from pathlib import Path

import numpy as np
import torch

from nascore.errors import DataMissingError, UserError
from nascore.io import atomic_write_bytes
from nascore.paths import user_cache_root

_IMG_EXT = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".webp", ".tif", ".tiff", ".gif")


def _class_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def describe_folder(folder: str | os.PathLike) -> tuple[Path, str]:
    """``(folder, layout)``: ``"cifar10"`` / ``"cifar100"`` (a layout of :mod:`nascore.data.cifar`),
    ``"imagefolder-train"`` (``train/<class>/``) or ``"imagefolder"`` (``<class>/``); a one-line
    :class:`UserError` otherwise."""
    from nascore.data.cifar import detect_layout

    folder = Path(folder)
    if not folder.is_dir():
        raise DataMissingError(f"--data {folder}: no such folder")
    for name in ("cifar10", "cifar100"):
        layout = detect_layout(folder, name)
        if layout in ("official", "official-inner"):
            return folder, name
    if detect_layout(folder, "cifar10") == "tar":
        return folder, "cifar-tar"
    if (folder / "train").is_dir():
        return folder, "imagefolder-train"
    if _class_dirs(folder):
        return folder, "imagefolder"
    raise UserError(f"{folder} holds no images as train/<class>/<image>, <class>/<image>, "
                    "train.tar.gz or the official CIFAR batches")


def _resize(x: torch.Tensor, size: int) -> torch.Tensor:
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    out = torch.nn.functional.interpolate(x.float(), size=(size, size), mode="bilinear", antialias=True,
                                          align_corners=False)
    return out.round().clamp(0, 255).to(torch.uint8)


def _read_folder(root: Path, size: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    from PIL import Image, UnidentifiedImageError

    classes = [p.name for p in _class_dirs(root)]
    files = [(k, f) for k, c in enumerate(classes) for f in sorted((root / c).iterdir())
             if f.is_file() and f.suffix.lower() in _IMG_EXT]
    if not files or len(classes) < 2:
        raise UserError(f"{root}: need images in at least two class folders (<class>/<image>); "
                        f"found {len(files)} images in {len(classes)} folders")
    empty = sorted(set(range(len(classes))) - {k for k, _ in files})
    if empty:  # as torchvision's ImageFolder: a class without images is a mistake, not a class
        raise UserError(f"{root / classes[empty[0]]}: class folder holds no image ({len(empty)} of "
                        f"{len(classes)} class folders are empty); is --data the right folder?")
    st = [(str(f.relative_to(root)), f.stat().st_size, f.stat().st_mtime_ns) for _, f in files]
    key = hashlib.sha1(repr((str(root.resolve()), size, st)).encode()).hexdigest()[:16]
    cache = user_cache_root() / "images-npy" / f"{key}.npz"
    if cache.is_file():
        try:
            with np.load(cache) as z:
                return z["x"], z["y"], [str(c) for c in z["classes"]]
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            pass  # a damaged cache is rebuilt
    x = np.empty((len(files), 3, size, size), np.uint8)
    for i, (_, f) in enumerate(files):
        try:
            with Image.open(f) as im:
                im = im.convert("RGB")
                if im.size != (size, size):
                    im = im.resize((size, size), Image.BILINEAR, reducing_gap=None)
                x[i] = np.asarray(im).transpose(2, 0, 1)
        except (UnidentifiedImageError, OSError):
            raise UserError(f"{f}: cannot be read as an image") from None
    y = np.array([k for k, _ in files], np.int64)
    buf = io.BytesIO()
    np.savez(buf, x=x, y=y, classes=np.array(classes))
    atomic_write_bytes(cache, buf.getvalue())
    return x, y, classes


def load_train_images(data: str | os.PathLike, image_size: int | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Training images ``uint8 [N, 3, S, S]``, labels ``int64 [N]`` and class names of ``data``
    (layouts: module docstring). ``image_size`` S: resize to S x S (default: 32 for an
    ImageFolder tree, the native 32 for CIFAR)."""
    from nascore.data.cifar import load_cifar

    folder, layout = describe_folder(data)
    if image_size is not None and (isinstance(image_size, bool) or int(image_size) < 4):
        raise UserError(f"--image-size must be an integer >= 4; got {image_size!r}")
    if layout in ("cifar10", "cifar100", "cifar-tar"):
        name = "cifar100" if layout == "cifar100" else "cifar10"
        if layout == "cifar-tar":
            from nascore.data.cifar import _read_tar

            xs, ys, classes = _read_tar(folder, name, "train")
            x, y = torch.from_numpy(np.ascontiguousarray(xs)), torch.from_numpy(ys)
        else:
            x, y, classes = load_cifar(name, folder, "train")
        return (x if image_size is None else _resize(x, int(image_size))), y, list(classes)
    root = folder / "train" if layout == "imagefolder-train" else folder
    xs, ys, classes = _read_folder(root, 32 if image_size is None else int(image_size))
    return torch.from_numpy(xs), torch.from_numpy(ys), classes


def holdout_split(labels: torch.Tensor, subset: int | None, val_size: int | None, seed: int = 0
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices ``(train, val)`` of a random, disjoint split of the training images: at most
    ``val_size`` held out (default and cap: a fifth of the images; at least 1) and at most
    ``subset`` of the rest to train on (default: all of them). The permutation depends on ``seed``
    only (the data split, not the candidate), so every candidate is scored on the same images."""
    n = len(labels)
    if n < 2:
        raise UserError(f"need at least 2 training images, found {n}")
    cap = max(1, n // 5)
    val = cap if val_size is None else max(1, min(int(val_size), cap))
    sub = n - val if subset is None else max(1, min(int(subset), n - val))
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed)))
    return perm[val:val + sub], perm[:val]
