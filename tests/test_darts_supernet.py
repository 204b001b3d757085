"""Supernets, partial-channel mixed ops, op sets (2D and 1D), genotype derivation, evaluation net, CIFAR data."""

from __future__ import annotations

import io
import tarfile

import numpy as np
import pytest
import torch
from torch import nn

from nascore.darts.evalnet import EvalNet
from nascore.darts.ops import BUILDERS, DARTS_PRIMITIVES, OpSet, channel_shuffle, darts_opset
from nascore.darts.supernet import (DartsSupernet, MixedOp, NB201Supernet, build_supernet, derive_cell, derive_darts,
                                    derive_nb201)
from nascore.darts.train import load_checkpoint, save_checkpoint, train_config
from nascore.data.cifar import DeviceLoader, load_cifar, search_split
from nascore.errors import UserError
from nascore.spaces.darts import DARTS_V2, genotype_to_string, parse_genotype
from nascore.spaces.nb201 import OPS as NB201_OPS


def test_supernet_forward_shapes_and_alpha():
    net = DartsSupernet(C=8, layers=5, num_classes=7, K=4)
    assert net.alpha.shape == (2, 14, 8)
    assert net(torch.randn(3, 3, 16, 16)).shape == (3, 7)
    # explicit weights of the wrong shape are refused
    with pytest.raises(UserError, match="shape"):
        net(torch.randn(3, 3, 16, 16), torch.ones(1, 6, 5))
    nb = NB201Supernet(C=8, N=1, K=2, num_classes=4)
    assert nb(torch.randn(2, 3, 8, 8)).shape == (2, 4)
    assert "alpha" not in {n for n, _ in nb.named_parameters() if any(p is _ for p in nb.weight_parameters())}
    assert len(nb.weight_parameters()) == len(list(nb.parameters())) - 1


def test_supernet_init_is_seeded():
    a, b, c = (build_supernet("nb201", C=8, layers=1, K=2, seed=s) for s in (3, 3, 4))
    assert torch.equal(a.alpha, b.alpha) and not torch.equal(a.alpha, c.alpha)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_partial_channel_mixed_op_bypasses_and_shuffles():
    torch.manual_seed(0)
    C, K = 8, 4
    m = MixedOp(darts_opset(2), C=C, stride=1, K=K)
    assert all(any(isinstance(mod, nn.Conv2d) and mod.in_channels == C // K for mod in op.modules())
               for name, op in zip(DARTS_PRIMITIVES, m.ops) if "conv" in name)
    x = torch.randn(2, C, 6, 6)
    w = torch.zeros(len(DARTS_PRIMITIVES))
    w[DARTS_PRIMITIVES.index("skip_connect")] = 1.0  # identity on the first C/K channels
    y = m(x, w)
    assert torch.equal(y, channel_shuffle(x, K))       # ops part = x[:2], bypass = x[2:]
    assert not torch.equal(y, x)
    w2 = torch.zeros(len(DARTS_PRIMITIVES))             # all weights 0: op channels vanish, bypass stays
    y2 = m(x, w2)
    inv = channel_shuffle(y2, C // K)                   # shuffle by C/K inverts shuffle by K
    assert torch.equal(inv[:, C // K:], x[:, C // K:]) and torch.all(inv[:, :C // K] == 0)
    # stride 2 halves every size, the bypass is max-pooled
    assert MixedOp(darts_opset(2), 8, 2, 4)(x, torch.softmax(torch.zeros(8), 0)).shape == (2, 8, 3, 3)
    with pytest.raises(UserError, match="K=3"):
        MixedOp(darts_opset(2), C=8, stride=1, K=3)


def test_derivation_follows_the_darts_rule():
    prims = DARTS_PRIMITIVES
    w = torch.full((14, 8), 0.01)
    # node 2 (edges 0,1): 'none' strongest on edge 0 is ignored; edge 1 has sep_conv_3x3
    w[0, prims.index("none")] = 0.99
    w[0, prims.index("max_pool_3x3")] = 0.2
    w[1, prims.index("sep_conv_3x3")] = 0.5
    # node 3 (edges 2,3,4 from nodes 0,1,2): keep edges from 2 and 0
    w[2, prims.index("dil_conv_3x3")] = 0.6
    w[3, prims.index("skip_connect")] = 0.1
    w[4, prims.index("avg_pool_3x3")] = 0.7
    cell = derive_cell(w, prims)
    assert cell[:2] == [("sep_conv_3x3", 1), ("max_pool_3x3", 0)]
    assert cell[2:4] == [("avg_pool_3x3", 2), ("dil_conv_3x3", 0)]
    g = derive_darts(torch.stack([w, w]), prims)
    assert parse_genotype(genotype_to_string(g)).normal[0][1] in (0, 1)   # round-trips through text
    # nb201: argmax including none
    wn = torch.zeros(1, 6, 5)
    wn[0, :, 0] = 1.0
    wn[0, 5, 3] = 2.0
    assert derive_nb201(wn, NB201_OPS) == "|none~0|+|none~0|none~1|+|none~0|none~1|nor_conv_3x3~2|"


def test_supernet_derive_text_is_a_valid_genotype():
    net = DartsSupernet(C=4, layers=3, K=1)
    text = net.derive()
    assert parse_genotype(text) is not None and "none" not in text


def test_one_dimensional_op_set_reuses_the_supernet():
    torch.manual_seed(0)
    net1d = DartsSupernet(C=8, layers=3, num_classes=5, K=2, ops=darts_opset(1), in_channels=1)
    assert net1d(torch.randn(2, 1, 37)).shape == (2, 5)          # odd length survives two reductions
    assert "Genotype(" in net1d.derive()
    # a tiny custom 1D op set (own constructor, own vocabulary)
    builders = {"none": BUILDERS["none"], "skip_connect": BUILDERS["skip_connect"],
                "conv_7": lambda ops, C, stride, affine: nn.Sequential(
                    nn.ReLU(), ops.conv(C, C, 7, stride, 3), ops.bn(C, affine, track_running_stats=affine))}
    tiny = OpSet("tiny1d", 1, ("none", "skip_connect", "conv_7"), builders)
    net = DartsSupernet(C=4, layers=3, num_classes=3, K=1, ops=tiny, in_channels=2)
    assert net.alpha.shape == (2, 14, 3)
    assert net(torch.randn(3, 2, 40)).shape == (3, 3)
    w = torch.zeros(2, 14, 3)
    w[..., 2] = 1.0
    assert all(op == "conv_7" for op, _ in net.genotype(w).normal)
    nb = NB201Supernet(C=4, N=1, K=1, ops=darts_opset(1).with_primitives(NB201_OPS), in_channels=1)
    assert nb(torch.randn(2, 1, 16)).shape == (2, 10)
    with pytest.raises(UserError, match="unknown operation"):
        OpSet("bad", 1, ("none", "conv_9x9"), BUILDERS)
    with pytest.raises(UserError, match="unknown operation 'conv_9x9'"):
        darts_opset(2).build("conv_9x9", 4)


def test_features_are_the_classifier_input_and_the_stem_can_stride():
    torch.manual_seed(0)
    net = DartsSupernet(C=4, layers=3, num_classes=5, K=2, ops=darts_opset(1), in_channels=2)
    x = torch.randn(3, 2, 40)
    h = net.features(x)
    assert h.shape == (3, net.feature_dim) and torch.equal(net(x), net.classifier(h))
    body = DartsSupernet(C=4, layers=3, num_classes=None, K=2, ops=darts_opset(1), in_channels=2, stem_stride=2)
    assert body(x).shape == (3, body.feature_dim)                  # no classifier: forward = features
    assert body.stem(x).shape[-1] == 20
    nb = NB201Supernet(C=4, N=1, K=1, num_classes=3)
    xi = torch.randn(2, 3, 8, 8)
    assert torch.equal(nb(xi), nb.classifier(nb.features(xi)))
    ev = EvalNet(DARTS_V2, C=4, layers=3, num_classes=None, auxiliary=False, ops=darts_opset(1), in_channels=2,
                 stem_stride=2).eval()
    f, aux = ev.features(x)
    assert f.shape == (3, ev.feature_dim) and aux is None and torch.equal(ev(x)[0], f)
    with pytest.raises(UserError, match="auxiliary head needs num_classes"):
        EvalNet(DARTS_V2, C=4, layers=3, num_classes=None, auxiliary=True)


def test_recalibrated_copy_predicts_independently_of_the_batch():
    from nascore.darts.supernet import recalibrated_copy
    torch.manual_seed(0)
    net = DartsSupernet(C=4, layers=3, num_classes=3, K=2, ops=darts_opset(1), in_channels=1).train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x, other = torch.randn(4, 1, 32), 5 + 3 * torch.randn(12, 1, 32)
    assert not torch.allclose(net(x), net(torch.cat([x, other]))[:4])   # batch statistics: depends on the batch
    twin = recalibrated_copy(net, [(torch.randn(16, 1, 32),) for _ in range(3)])
    assert not twin.training and net.training
    assert torch.allclose(twin(x), twin(torch.cat([x, other]))[:4], atol=1e-6)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert all(b.running_mean is None for b in net.modules() if isinstance(b, nn.BatchNorm1d))
    with pytest.raises(UserError, match="at least one batch"):
        recalibrated_copy(net, [])


def test_eval_net_aux_drop_path_and_bad_genotypes():
    torch.manual_seed(0)
    net = EvalNet(DARTS_V2, C=8, layers=5, num_classes=10, auxiliary=True)
    net.train()
    net.drop_path_prob = 0.5
    logits, aux = net(torch.randn(4, 3, 32, 32))
    assert logits.shape == aux.shape == (4, 10)
    net.eval()
    a, none_aux = net(torch.randn(4, 3, 32, 32))
    assert none_aux is None
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(net(x)[0], net(x)[0])                       # no drop-path at eval
    with pytest.raises(UserError, match="unknown operation 'conv_9x9'"):
        EvalNet(repr(DARTS_V2).replace("'dil_conv_3x3'", "'conv_9x9'"))
    with pytest.raises(UserError, match="malformed"):
        train_config(genotype="Genotype(normal=[(")


def test_alpha_checkpoint_from_another_space_is_refused(tmp_path):
    net = build_supernet("nb201", C=4, layers=1, K=1)
    save_checkpoint(tmp_path / "c.pt", {"space": "nb201", "alpha": net.alpha.detach(), "epoch": 0})
    assert load_checkpoint(tmp_path / "c.pt", "nb201", (1, 6, 5))["epoch"] == 0
    with pytest.raises(UserError, match="from space 'nb201'"):
        load_checkpoint(tmp_path / "c.pt", "darts", (2, 14, 8))
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "junk.pt", "nb201", (1, 6, 5))


# --- data ------------------------------------------------------------------------------------------
def _png(arr: np.ndarray) -> bytes:
    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _tiny_cifar(n_per_class=2, classes=10, seed=0):
    rng = np.random.default_rng(seed)
    return {(split, f"class{c:02d}", k): rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            for split in ("train", "test") for c in range(classes) for k in range(n_per_class)}


def test_imagefolder_and_tar_layouts_agree(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    imgs = _tiny_cifar()
    folder, tars = tmp_path / "tree", tmp_path / "tars"
    tars.mkdir()
    for (split, cls, k), a in imgs.items():
        p = folder / split / cls / f"{k:04d}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(_png(a))
    for split in ("train", "test"):
        with tarfile.open(tars / f"{split}.tar.gz", "w:gz") as tf:
            tf.add(folder / split, arcname=split)
    x1, y1, c1 = load_cifar("cifar10", folder, "train")
    x2, y2, c2 = load_cifar("cifar10", tars, "train")
    x3, _, _ = load_cifar("cifar10", tars, "train")             # second read comes from the .npz cache
    assert x1.shape == (20, 3, 32, 32) and x1.dtype == torch.uint8 and c1 == c2 == sorted(c1)
    assert list((tmp_path / "cache" / "nascore" / "cifar-npy").glob("*train.npz"))
    order = sorted(range(20), key=lambda i: (int(y1[i]), x1[i].sum().item()))
    order2 = sorted(range(20), key=lambda i: (int(y2[i]), x2[i].sum().item()))
    assert torch.equal(x1[order], x2[order2]) and torch.equal(x2, x3)
    want = imgs[("train", c1[int(y1[0])], 0)]
    assert np.array_equal(x1[0].permute(1, 2, 0).numpy(), want)  # PNG is lossless: exact pixels
    bad = tmp_path / "bad"
    (bad / "train").mkdir(parents=True)
    with pytest.raises(UserError, match="is not a cifar10 folder"):
        load_cifar("cifar10", bad, "train")
    with pytest.raises(UserError, match="unknown dataset"):
        load_cifar("svhn", folder)


def test_device_loader_augmentation_is_seeded_and_correct():
    x = torch.randint(0, 256, (9, 3, 8, 8), dtype=torch.uint8)
    y = torch.arange(9)
    plain = DeviceLoader(x, y, 4, shuffle=False, mean=(0, 0, 0), std=(1 / 255,) * 3)
    xb, yb = next(iter(plain.epoch(0)))
    assert torch.equal(xb, x[:4].float()) and torch.equal(yb, y[:4])
    aug = DeviceLoader(x, y, 9, seed=1, augment=True, pad=2, cutout=4, mean=(0, 0, 0), std=(1 / 255,) * 3)
    a1 = [b[0] for b in aug.epoch(3)]
    a2 = [b[0] for b in aug.epoch(3)]
    a3 = [b[0] for b in aug.epoch(4)]
    assert torch.equal(a1[0], a2[0]) and not torch.equal(a1[0], a3[0])
    xa, ya = next(iter(aug.epoch(3)))
    for i in range(9):  # every augmented image is a (flipped) shifted crop of its source, minus a cutout
        src = torch.nn.functional.pad(x[int(ya[i])].float(), (2, 2, 2, 2))
        ok = False
        for dy in range(5):
            for dx in range(5):
                crop = src[:, dy:dy + 8, dx:dx + 8]
                for c in (crop, crop.flip(2)):
                    keep = xa[i] != 0
                    if torch.equal(xa[i][keep], c[keep]):
                        ok = True
        assert ok
    assert (xa == 0).all(1).sum() >= 9 * 4  # cutout blanked at least a 2x2 corner of every image
    assert [len(a) for a in search_split(11, 6)] == [3, 3]
    with pytest.raises(UserError, match="--subset"):
        search_split(10, 20)
