"""No code runs from a crafted file: every .pt loader reads with weights_only=True, the CIFAR
python batches with a restricted unpickler; the EG-NAS search checkpoint holds only tensors and
plain data (so it loads that way and still resumes exactly, see tests/test_egnas.py)."""

from __future__ import annotations

import pathlib
import pickle

import numpy as np
import pytest
import torch

from ecgnas.cli import main as ecgnas_main
from nascore.cli import main as nascore_main
from nascore.errors import UserError


class _Touch:
    """Unpickling this creates ``marker`` (pathlib.Path.touch): a stand-in for arbitrary code."""

    def __init__(self, marker):
        self.marker = pathlib.Path(marker)

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def _evil_pt(path, marker, **extra) -> pathlib.Path:
    torch.save({"format": "x", "space": "nb201", "alpha": torch.zeros(1, 6, 5), "epoch": 0, **extra,
                "payload": _Touch(marker)}, path)
    return path


def test_the_crafted_file_does_run_code_with_an_unrestricted_load(tmp_path):
    # the control: the payload is real, so "marker absent" below means the loader refused it
    marker = tmp_path / "ran"
    torch.load(_evil_pt(tmp_path / "evil.pt", marker), weights_only=False)
    assert marker.exists()


def _supernet_resume(path):
    from nascore.darts.train import load_checkpoint
    return load_checkpoint(path, "nb201", (1, 6, 5))


def _encoder_init(path):
    from nascore.encoders.gin import GINEncoder
    from nascore.predictors.dcl import load_encoder_init
    return load_encoder_init(GINEncoder(7, hidden=8, layers=2), str(path))


def _arch2vec(path):
    from nascore.arch2vec.pretrain import load_model
    return load_model(path)


def _ecg_checkpoint(path):
    from ecgnas.evaluate import load_checkpoint
    return load_checkpoint(path)


@pytest.mark.parametrize("loader", [_supernet_resume, _encoder_init, _arch2vec, _ecg_checkpoint])
def test_every_torch_loader_refuses_a_crafted_file_in_one_line(loader, tmp_path):
    marker = tmp_path / "ran"
    path = _evil_pt(tmp_path / "evil.pt", marker)
    with pytest.raises(UserError) as ei:
        loader(path)
    msg = str(ei.value)
    assert not marker.exists()
    assert str(path) in msg and "\n" not in msg and "refused: it needs getattr" in msg   # the first foreign global
    assert "weights_only" not in msg            # torch's advice to load it unsafely is not passed on


def test_cli_darts_derive_refuses_a_crafted_checkpoint(tmp_path, capsys):
    marker = tmp_path / "ran"
    path = _evil_pt(tmp_path / "evil.pt", marker)
    rc = nascore_main(["darts", "derive", "--checkpoint", str(path), "--space", "nb201"])
    err = capsys.readouterr().err
    assert rc == 2 and not marker.exists() and err.count("\n") == 1 and str(path) in err


def test_cli_ecgnas_evaluate_refuses_a_crafted_checkpoint(tmp_path, capsys):
    marker = tmp_path / "ran"
    (tmp_path / "run").mkdir()
    _evil_pt(tmp_path / "run" / "checkpoint.pt", marker)
    rc = ecgnas_main(["evaluate", str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and not marker.exists() and err.count("\n") == 1 and "checkpoint.pt" in err


def _images(n=24, size=8, classes=3):
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g), torch.arange(n) % classes


def _search_cfg(epochs, **es):
    from nascore.darts.train import search_config
    return search_config(method="egnas", space="nb201", dataset="synthetic", epochs=epochs, warmup=0, C=4, layers=1,
                         K=2, batch_size=8, es={"population": 6, **es})


@pytest.mark.parametrize("cma", [False, True])
def test_egnas_search_checkpoint_loads_with_weights_only(cma, tmp_path):
    from nascore.darts.train import run_supernet_search
    run_supernet_search(_search_cfg(1, cma=cma), tmp_path / "r", images=_images(), progress=False)
    st = torch.load(tmp_path / "r" / "checkpoint.pt", weights_only=True)   # raised before: numpy ES state
    assert isinstance(st["es"]["direction"], torch.Tensor) and st["es"]["direction"].dtype == torch.float64
    if cma:
        assert st["es"]["cma"]["arrays"]["_C"].dtype == torch.float64
        assert st["es"]["cma"]["scalars"]["_mu_eff"][0] == "float64"


def test_search_resume_refuses_a_crafted_checkpoint_in_the_run_folder(tmp_path):
    from nascore.darts.train import run_supernet_search
    run_supernet_search(_search_cfg(1), tmp_path / "r", images=_images(), progress=False)
    marker = tmp_path / "ran"
    _evil_pt(tmp_path / "r" / "checkpoint.pt", marker)
    with pytest.raises(UserError, match="checkpoint.pt: not a readable checkpoint"):
        run_supernet_search(_search_cfg(1), tmp_path / "r", images=_images(), progress=False)
    assert not marker.exists()


def test_a_checkpoint_with_numpy_objects_is_refused_naming_them(tmp_path):
    # what a search checkpoint held before (numpy ES state) needs numpy's reconstruct global
    path = tmp_path / "old.pt"
    torch.save({"space": "nb201", "alpha": torch.zeros(1, 6, 5), "es": {"direction": np.zeros(30)}}, path)
    with pytest.raises(UserError, match=r"old\.pt: not a readable checkpoint \(refused: it needs numpy"):
        _supernet_resume(path)


def test_darts_evaluation_training_resume_refuses_a_crafted_checkpoint(tmp_path):
    from nascore.darts.train import train_config, train_genotype
    from nascore.run import check_or_write_config
    from nascore.spaces.darts import DARTS_V2
    geno = repr(DARTS_V2)
    cfg = train_config(genotype=geno, dataset="synthetic", epochs=1, C=4, layers=3, batch_size=8, amp="off")
    check_or_write_config(tmp_path / "t", cfg)
    marker = tmp_path / "ran"
    _evil_pt(tmp_path / "t" / "checkpoint.pt", marker)
    imgs = _images()
    with pytest.raises(UserError, match="refused"):
        train_genotype(cfg, tmp_path / "t", images=imgs, test_images=imgs, progress=False)
    assert not marker.exists()


# --- CIFAR python batches ------------------------------------------------------------------------
def _write_cifar10(root: pathlib.Path, protocol: int, n: int = 4) -> pathlib.Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for k, name in enumerate([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]):
        d = {b"batch_label": name.encode(), b"labels": [(k + j) % 10 for j in range(n)],
             b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
             b"filenames": [f"img{j}.png".encode() for j in range(n)]}
        with open(folder / name, "wb") as fh:
            pickle.dump(d, fh, protocol=protocol)
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({b"label_names": [c.encode() for c in "abcdefghij"], b"num_vis": 3072}, fh, protocol=protocol)
    return folder


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_cifar_batches_are_read_with_the_restricted_unpickler(protocol, tmp_path):
    from nascore.data.cifar import load_cifar
    folder = _write_cifar10(tmp_path, protocol)
    x, y, classes = load_cifar("cifar10", tmp_path, "train")
    assert x.shape == (20, 3, 32, 32) and x.dtype == torch.uint8 and classes == list("abcdefghij")
    with open(folder / "data_batch_2", "rb") as fh:
        want = pickle.load(fh, encoding="bytes")
    assert np.array_equal(x[4:8].numpy().reshape(4, 3072), want[b"data"]) and y[4:8].tolist() == want[b"labels"]
    xt, yt, _ = load_cifar("cifar10", folder, "test")          # the batches folder itself
    assert xt.shape == (4, 3, 32, 32) and yt.tolist() == [5, 6, 7, 8]


@pytest.mark.parametrize("victim", ["data_batch_3", "batches.meta"])
def test_a_crafted_cifar_pickle_is_refused_in_one_line(victim, tmp_path):
    from nascore.data.cifar import load_cifar
    folder = _write_cifar10(tmp_path, 4)
    marker = tmp_path / "ran"
    with open(folder / victim, "wb") as fh:
        pickle.dump({b"data": np.zeros((4, 3072), np.uint8), b"labels": [0] * 4, b"x": _Touch(marker)}, fh)
    with pytest.raises(UserError) as ei:
        load_cifar("cifar10", tmp_path, "train")
    msg = str(ei.value)
    assert not marker.exists()
    assert str(folder / victim) in msg and "refused to unpickle" in msg and "\n" not in msg


def test_a_cifar_batch_of_the_wrong_shape_is_one_line(tmp_path):
    from nascore.data.cifar import load_cifar
    folder = _write_cifar10(tmp_path, 4)
    with open(folder / "data_batch_1", "wb") as fh:
        pickle.dump({b"data": np.zeros((4, 100), np.uint8), b"labels": [0] * 4}, fh)
    with pytest.raises(UserError, match=r"data_batch_1: not a readable cifar10 batch file \(ValueError"):
        load_cifar("cifar10", tmp_path, "train")
    (folder / "data_batch_1").write_bytes(b"\x80\x04junk")
    with pytest.raises(UserError, match=r"data_batch_1: not a readable cifar10 batch file"):
        load_cifar("cifar10", tmp_path, "train")


# --- damaged caches are rebuilt, not a traceback ---------------------------------------------------
def _png(seed: int) -> bytes:
    import io

    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def _tar(path, split):
    import io
    import tarfile
    with tarfile.open(path, "w:gz") as tf:
        for k, cls in enumerate("abcdefghij"):
            blob = _png(k)
            info = tarfile.TarInfo(f"{split}/{cls}/{k}.png")
            info.size = len(blob)
            tf.addfile(info, io.BytesIO(blob))


def test_a_damaged_cifar_archive_cache_is_rebuilt(tmp_path, monkeypatch):
    from nascore.data.cifar import load_cifar
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    for split in ("train", "test"):
        _tar(tmp_path / f"{split}.tar.gz", split)
    x, y, classes = load_cifar("cifar10", tmp_path, "train")
    (cache,) = (tmp_path / "xdg" / "nascore" / "cifar-npy").glob("*-train.npz")
    cache.write_bytes(b"PK\x03\x04 not a zip any more")          # np.load raises zipfile.BadZipFile
    x2, y2, classes2 = load_cifar("cifar10", tmp_path, "train")
    assert torch.equal(x, x2) and torch.equal(y, y2) and classes == classes2 == list("abcdefghij")
    assert cache.read_bytes()[:4] == b"PK\x03\x04" and cache.stat().st_size > 100   # rewritten


def test_a_damaged_arch2vec_embedding_cache_is_recomputed(tmp_path):
    from nascore.arch2vec.pretrain import _EMB_CACHE, load_embeddings, pretrain
    from nascore.spaces import get_space
    space = get_space("nb201")
    torch.manual_seed(0)
    pretrain(space, output=tmp_path / "m", epochs=1, hidden=16, layers=2, max_archs=200, progress=False,
             quality_samples=100)
    keys, emb = load_embeddings(space, tmp_path / "m" / "model.pt")
    (tmp_path / "m" / "embeddings.npz").write_bytes(b"PK\x03\x04 damaged")
    _EMB_CACHE.clear()
    keys2, emb2 = load_embeddings(space, tmp_path / "m" / "model.pt")
    assert keys2 == keys and np.array_equal(emb2, emb)
