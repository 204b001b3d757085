"""Baseline predictors compared with DCL-ENAS's in :mod:`benchmarks.dcl_predictor`.

* :class:`GINRegressor` -- the same GIN as :class:`~nascore.predictors.dcl.DCLPredictor`, no
  pretraining, trained to regress the standardised accuracy with MSE (the NPENAS-NP / "GIN
  predictor" baseline, Wei et al., TNNLS 2022).
* :class:`PathMLPRegressor` -- an MLP on the binary path encoding
  (:class:`~nascore.encoders.path.PathEncoder`) trained with MSE: the BANANAS meta neural network
  (White, Neiswanger & Savani, AAAI 2021; 3 layers of 64 units here, one network, no ensemble).

Both share the predictor interface ``fit(archs, y) -> losses`` and ``predict(archs) -> scores``
and are deterministic given ``seed``.

>>> import numpy as np
>>> from nascore.spaces import get_space
>>> space = get_space("nb201")
>>> archs = [space.sample(np.random.default_rng(k)) for k in range(10)]
>>> y = [space.to_string(a).count("conv_3x3") for a in archs]
>>> m = PathMLPRegressor(space, seed=0, epochs=20)
>>> _ = m.fit(archs, y)
>>> m.predict(archs).shape
(10,)
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from nascore.arch import Arch
from nascore.encoders.gin import GINEncoder
from nascore.encoders.path import PathEncoder
from nascore.errors import UserError
from nascore.predictors.dcl import GraphCache, torch_context


def _check_labels(archs, y) -> np.ndarray:
    y = np.asarray(y, np.float64)
    if len(archs) != len(y):
        raise UserError(f"fit got {len(archs)} architectures but {len(y)} labels")
    if len(y) < 2 or not np.isfinite(y).all() or np.ptp(y) == 0:
        raise UserError("a predictor needs at least 2 finite, not all equal labels")
    return y


class _Regressor:
    def __init__(self, seed: int, epochs: int, lr: float, weight_decay: float, threads: int | None):
        self.seed, self.epochs, self.lr, self.wd, self.threads = int(seed), int(epochs), lr, weight_decay, threads
        self.n_fits = 0

    def _inputs(self, archs):  # pragma: no cover - abstract
        raise NotImplementedError

    def fit(self, archs: Sequence[Arch], y: Sequence[float]) -> list[float]:
        archs = list(archs)
        y = _check_labels(archs, y)
        ys = torch.tensor((y - y.mean()) / y.std(), dtype=torch.float32)
        seed = self.seed + 1000 + self.n_fits
        self.n_fits += 1
        losses = []
        with torch_context(seed, self.threads):
            self.net = self._build()
            self.net.train()
            x = self._inputs(archs)
            opt = torch.optim.AdamW(self.net.parameters(), lr=self.lr, weight_decay=self.wd)
            for _ in range(self.epochs):
                loss = nn.functional.mse_loss(self._forward(x), ys)
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses.append(loss.item())
            self.net.eval()
        return losses

    @torch.no_grad()
    def predict(self, archs: Sequence[Arch], chunk: int = 4096) -> np.ndarray:
        archs = list(archs)
        out = []
        with torch_context(self.seed, self.threads):
            for i in range(0, len(archs), chunk):
                out.append(self._forward(self._inputs(archs[i:i + chunk])).double().numpy())
        return np.concatenate(out) if out else np.zeros(0)


class GINRegressor(_Regressor):
    """GIN (same shape as DCL's) + Linear-ReLU-Linear head, MSE on standardised labels."""

    def __init__(self, space, seed: int = 0, hidden: int = 64, layers: int = 3, epochs: int = 150,
                 lr: float = 2e-3, weight_decay: float = 1e-4, threads: int | None = 1):
        super().__init__(seed, epochs, lr, weight_decay, threads)
        self.space, self.hidden, self.layers = space, hidden, layers
        self.graphs = GraphCache(space)

    def _build(self):
        enc = GINEncoder(len(self.space.node_labels), hidden=self.hidden, layers=self.layers)
        head = nn.Sequential(nn.Linear(self.hidden, self.hidden), nn.ReLU(), nn.Linear(self.hidden, 1))
        return nn.ModuleDict({"encoder": enc, "head": head})

    def _inputs(self, archs):
        return self.graphs.batch(archs)

    def _forward(self, batch):
        return self.net["head"](self.net["encoder"](batch)[1]).squeeze(1)


class PathMLPRegressor(_Regressor):
    """MLP (``layers`` x ``width``, ReLU) on the path encoding, MSE on standardised labels."""

    def __init__(self, space, seed: int = 0, width: int = 64, layers: int = 3, epochs: int = 200,
                 lr: float = 1e-3, weight_decay: float = 1e-4, threads: int | None = 1,
                 path_encoder: PathEncoder | None = None):
        super().__init__(seed, epochs, lr, weight_decay, threads)
        self.paths = path_encoder or PathEncoder(space)
        self.width, self.layers = width, layers
        self._enc: dict = {}

    def _build(self):
        dims = [self.paths.dim] + [self.width] * self.layers
        mods: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            mods += [nn.Linear(a, b), nn.ReLU()]
        return nn.Sequential(*mods, nn.Linear(dims[-1], 1))

    def _inputs(self, archs):
        rows = []
        for a in archs:
            k = (a.matrix, a.ops)
            v = self._enc.get(k)
            if v is None:
                v = self._enc[k] = self.paths.encode(a)
            rows.append(v)
        return torch.from_numpy(np.stack(rows))

    def _forward(self, x):
        return self.net(x).squeeze(1)
