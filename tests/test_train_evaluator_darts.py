"""The image-training evaluator's DARTS-cell option and its torchvision-v2 augmentation (issue 19):
a DARTS genotype's evaluation network learns a separable task and reports its cost, a DARTS search
writes a result without a table accuracy, the crop + flip is a different one per image, the same
under a seed, and the same pixels as before; the default recipe keeps its identity."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import nascore.data.cifar as cifar
from nascore.data.cifar import DeviceLoader, crop_flip_v2
from nascore.errors import UserError
from nascore.spaces import get_space
from nascore.spaces.darts import DARTS_V2
from nascore.train_evaluator import NETWORKS, ImageTrainEvaluator, Recipe

CONV = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|"
TINY = Recipe(epochs=4, C=4, N=1, image_size=8, subset=None, val_size=24, batch_size=16, lr=0.05)


def squares_array(n_per_class=60, seed=0):
    """2 classes of 12x12 images: a red or a blue square at a random place on a noisy grey ground."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for label, colour in enumerate(((20, 40, 230), (230, 30, 20))):
        for _ in range(n_per_class):
            img = rng.integers(90, 160, (12, 12, 3)).astype(np.uint8)
            y, x = rng.integers(0, 6, 2)
            img[y:y + 6, x:x + 6] = colour
            xs.append(img.transpose(2, 0, 1))
            ys.append(label)
    return torch.from_numpy(np.stack(xs)), torch.tensor(ys), ["blue", "red"]


@pytest.fixture(scope="module")
def squares():
    return squares_array()


@pytest.fixture(scope="module")
def squares_folder(tmp_path_factory):
    from PIL import Image

    root = tmp_path_factory.mktemp("squares")
    x, y, classes = squares_array()
    for k, (img, label) in enumerate(zip(x.numpy(), y.tolist())):
        (root / "train" / classes[label]).mkdir(parents=True, exist_ok=True)
        Image.fromarray(img.transpose(1, 2, 0)).save(root / "train" / classes[label] / f"{k:03d}.png")
    return root


def test_darts_genotype_network_learns_separable_squares_and_reports_cost(squares):
    from nascore.darts.evalnet import EvalNet

    space = get_space("darts")
    arch = space.genotype_to_arch(DARTS_V2)
    # 8 epochs (48 steps): after 24 the batch-norm running statistics of the deeper DARTS cells still
    # lag, and the held-out score (eval mode) stays at chance although the training accuracy is 99 %
    ev = ImageTrainEvaluator(space, "squares", Recipe(**{**TINY.to_dict(), "epochs": 8}), seed=0, images=squares)
    res = ev(arch)
    assert res.score >= 90 and res.metrics["valid_accuracy"] == res.score
    # the network is DARTS's evaluation network of the genotype with C channels and 3N+2 cells, no aux head
    net = EvalNet(space.genotype(arch), C=4, layers=5, num_classes=2, auxiliary=False)
    assert res.metrics["params"] == sum(p.numel() for p in net.parameters())
    assert res.metrics["flops"] > 0 and res.cost > 0 and res.metrics["cpu_seconds"] > 0
    assert "test_accuracy" not in res.metrics
    bigger = ImageTrainEvaluator(space, "squares", Recipe(epochs=1, C=4, N=2, image_size=8, subset=None, val_size=24),
                                 images=squares)(arch)
    assert bigger.metrics["params"] > res.metrics["params"]  # N reaches the network: 8 cells instead of 5
    assert set(NETWORKS) >= {"nb201", "darts"}


def test_darts_search_writes_a_result_without_a_table_accuracy(squares_folder, tmp_path):
    from nascore.cli import main as cli
    from nascore.io import read_jsonl

    out = tmp_path / "darts"
    rc = cli(["search", "--space", "darts", "--evaluator", "train", "--strategy", "evolution", "--budget", "3",
              "--param", "population=2", "--param", "sample_size=2", "--data", str(squares_folder),
              "--output", str(out), "--epochs", "1", "--image-size", "8", "--val-size", "24", "--channels", "4",
              "--augment", "none", "--quiet"])
    assert rc == 0
    res = json.loads((out / "seed-0000" / "result.json").read_text())
    best = res["best"]
    assert best["arch"].startswith("Genotype(normal=[") and best["params"] > 0 and best["flops"] > 0
    assert "test_accuracy" not in best and "table_valid_accuracy" not in best
    assert res["config"]["table"] is None and res["config"]["space"] == "darts"
    assert res["config"]["train"]["recipe"]["augment"] is False  # --augment none reached the recipe
    assert len(read_jsonl(out / "seed-0000" / "history.jsonl")) == 3
    summary = json.loads((out / "summary.json").read_text())
    assert summary["test_accuracy"]["mean"] is None and "optimum" not in summary
    assert "n/a" in (out / "summary.md").read_text()


def test_crop_flip_v2_crops_each_image_on_its_own_and_keeps_the_old_pixels():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(16, 3, 6, 5, generator=g)
    pad = 2
    dy = torch.randint(0, 2 * pad + 1, (16,), generator=g)
    dx = torch.randint(0, 2 * pad + 1, (16,), generator=g)
    flip = torch.rand(16, generator=g) < 0.5
    out = crop_flip_v2(x, dy, dx, flip, pad)
    padded = np.pad(x.numpy(), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    for i in range(16):  # reference: zero-pad, cut the 6x5 window at (dy, dx), mirror left-right
        ref = padded[i, :, dy[i]:dy[i] + 6, dx[i]:dx[i] + 5]
        ref = ref[:, :, ::-1] if flip[i] else ref
        np.testing.assert_array_equal(out[i].numpy(), ref)
    # in a DeviceLoader: the same batches as the tensor-gather augmentation (cached results stay valid)
    imgs = torch.randint(0, 256, (50, 3, 8, 8), dtype=torch.uint8)
    labels = torch.arange(50) % 3
    old = DeviceLoader(imgs, labels, 16, seed=5, augment=True, pad=1)
    new = DeviceLoader(imgs, labels, 16, seed=5, augment=True, pad=1, transforms_v2=True)
    for (a, ya), (b, yb) in zip(old.epoch(2), new.epoch(2)):
        assert torch.equal(a, b) and torch.equal(ya, yb)


def test_evaluator_augments_every_training_batch_per_image_reproducibly(squares, monkeypatch):
    calls = []
    real = cifar.crop_flip_v2

    def recording(x, dy, dx, flip, pad):
        out = real(x, dy, dx, flip, pad)
        calls.append((x, out, dy.clone(), dx.clone(), flip.clone(), pad))
        return out

    monkeypatch.setattr(cifar, "crop_flip_v2", recording)
    space = get_space("nb201")
    arch = space.from_string(CONV)
    recipe = Recipe(epochs=2, C=4, N=1, image_size=8, subset=None, val_size=24, batch_size=16)

    def run(seed, r=recipe):
        calls.clear()
        res = ImageTrainEvaluator(space, "squares", r, seed=seed, images=squares).evaluate(arch)
        return res, list(calls)

    first, batches = run(0)
    assert len(batches) == 2 * (96 // 16)  # every training batch of every epoch, none of the held-out ones
    x, out, dy, dx, flip, pad = batches[0]
    assert pad == 1  # S/8 of the 8-pixel images
    assert len({(int(a), int(b)) for a, b in zip(dy, dx)}) > 1 and 0 < int(flip.sum()) < len(flip)
    changed = [not torch.equal(x[i], out[i]) for i in range(len(x))]
    assert any(changed)  # the batch is changed image by image, not one crop for all
    again, batches2 = run(0)
    assert again.score == first.score
    assert all(torch.equal(a[3], b[3]) and torch.equal(a[4], b[4]) and torch.equal(a[1], b[1])
               for a, b in zip(batches, batches2))
    _, other = run(1)  # another evaluation seed draws other crops
    assert not all(torch.equal(a[3], b[3]) for a, b in zip(batches, other))
    plain, none = run(0, Recipe(**{**recipe.to_dict(), "augment": "none"}))
    assert none == [] and plain.metrics["seed"] == first.metrics["seed"]


def test_recipe_identity_is_unchanged_by_default_and_changes_with_augmentation(squares):
    space = get_space("nb201")

    def key(recipe):
        return ImageTrainEvaluator(space, "given", recipe, images=squares).key(CONV)

    # the key of the default recipe before augmentation became an option: old run folders keep resuming
    assert key(Recipe()) == "72805179a2b404b26c16f744c8aaf224ec5baae70bf5044bc8d4ff3e22d20ba6"
    assert Recipe(augment="crop-flip") == Recipe() and key(Recipe(augment=True)) == key(Recipe())
    off = Recipe(augment="none")
    assert off.augment is False and off.to_dict()["augment"] is False and key(off) != key(Recipe())
    with pytest.raises(UserError, match="--augment: expected crop-flip or none, got 'flip'"):
        Recipe(augment="flip")
    with pytest.raises(UserError, match="no trainable network.*nb201, darts"):
        ImageTrainEvaluator(get_space("nb101"), "given", Recipe(), images=squares)
