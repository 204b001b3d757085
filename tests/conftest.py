"""Shared fixtures: the real-data root and small generated benchmark tables."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

# Tiny models run fastest on one thread, and CI has 2 cores shared with pytest itself.
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]


def real_data_root() -> Path | None:
    root = os.environ.get("NASCORE_DATA")
    return Path(root) if root and Path(root).is_dir() else None


def real_dataset(name: str, must_contain: str) -> Path:
    root = real_data_root()
    if root is None or not (root / name / must_contain).exists():
        pytest.skip(f"real data {name}/{must_contain} not under $NASCORE_DATA")
    return root / name


@pytest.fixture
def synthetic_nb201_table(tmp_path) -> Path:
    """A full 15,625-row nb201 table with a known synthetic landscape (and the real schema).

    valid = 70 + 4*(#conv3x3) + 2*(#conv1x1) + seeded noise; test = valid + 3; cost = 100 + 10*(#conv).
    """
    from nascore.spaces.nb201 import NB201Space

    space = NB201Space()
    rng = np.random.default_rng(123)
    rows = []
    for k, arch in enumerate(space.enumerate()):
        ops = space.edge_ops(arch)
        v = 70 + 4 * ops.count("nor_conv_3x3") + 2 * ops.count("nor_conv_1x1") + rng.normal(0, 0.5)
        conv = ops.count("nor_conv_3x3") + ops.count("nor_conv_1x1")
        rows.append({"index": k, "arch": space.to_string(arch), "valid_acc_200": v, "test_acc_200": v + 3,
                     "valid_acc_12": v - 10, "train_seconds_per_epoch": 1 + conv / 10,
                     "train_seconds_200": 100 + 10 * conv})
    path = tmp_path / "nasbench201" / "nb201-cifar10.csv"
    path.parent.mkdir()
    pd.DataFrame(rows).to_csv(path, index=False)
    return path
