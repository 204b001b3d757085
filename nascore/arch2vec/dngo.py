"""DNGO: a neural network whose last layer is a Bayesian linear regression (Snoek et al., ICML 2015).

1. A small MLP (``hidden`` tanh units per layer, ``layers`` layers, linear output) is fitted to
   the standardised targets by full-batch Adam on the mean squared error.
2. Its last hidden layer, plus a constant, gives basis functions :math:`\\phi(x) \\in \\mathbb R^D`.
   With prior :math:`w \\sim \\mathcal N(0, \\alpha^{-1} I)` and noise precision :math:`\\beta`
   (Bishop 2006, §3.3, Eq. 3.53-3.54, 3.58-3.59):

   .. math::  A = \\alpha I + \\beta \\Phi^\\top \\Phi, \\quad m = \\beta A^{-1} \\Phi^\\top y,\\quad
              \\mu(x) = m^\\top \\phi(x), \\quad \\sigma^2(x) = 1/\\beta + \\phi(x)^\\top A^{-1} \\phi(x)

   :math:`\\alpha, \\beta` maximise the log marginal likelihood (Eq. 3.86; L-BFGS over their logs).

:func:`expected_improvement` is the EI acquisition for maximisation (Jones et al. 1998).
Randomness: ``seed`` fixes the network's initialisation, so a fit is reproducible.

>>> import numpy as np
>>> x = np.linspace(-1, 1, 20)[:, None]; y = np.sin(3 * x[:, 0])
>>> m = DNGO(epochs=300, seed=0).fit(x, y)
>>> mu, sd = m.predict(np.array([[0.0], [4.0]]))
>>> bool(abs(mu[0]) < 0.2 and sd[1] > sd[0])
True
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch
from scipy.optimize import minimize
from scipy.stats import norm
from torch import nn


@contextmanager
def single_thread():
    """Run tiny torch models on one intra-op thread (several times faster than two threads on a
    shared 2-core machine for these sizes), restoring the previous setting afterwards."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)


class DNGO:
    def __init__(self, hidden: int = 50, layers: int = 3, epochs: int = 200, lr: float = 1e-2,
                 weight_decay: float = 0.0, seed: int = 0):
        self.hidden, self.layers, self.epochs = int(hidden), int(layers), int(epochs)
        self.lr, self.weight_decay, self.seed = float(lr), float(weight_decay), int(seed)
        self.net: nn.Sequential | None = None

    # --- fit --------------------------------------------------------------------------------
    def fit(self, x: np.ndarray, y: np.ndarray) -> "DNGO":
        """``x [n, d]``, ``y [n]`` (n >= 2)."""
        with single_thread():
            return self._fit(x, y)

    def _fit(self, x, y) -> "DNGO":
        x = np.asarray(x, np.float64)
        y = np.asarray(y, np.float64).ravel()
        if x.ndim != 2 or len(x) != len(y) or len(y) < 2:
            raise ValueError(f"DNGO.fit needs x [n, d] and y [n] with n >= 2, got {x.shape} and {y.shape}")
        self.x_mean, self.x_std = x.mean(0), x.std(0) + 1e-8
        self.y_mean, self.y_std = y.mean(), y.std() + 1e-8
        xt = torch.as_tensor((x - self.x_mean) / self.x_std, dtype=torch.float32)
        yt = torch.as_tensor((y - self.y_mean) / self.y_std, dtype=torch.float32)
        torch.manual_seed(self.seed)
        mods: list[nn.Module] = []
        d = x.shape[1]
        for _ in range(self.layers):
            mods += [nn.Linear(d, self.hidden), nn.Tanh()]
            d = self.hidden
        self.net = nn.Sequential(*mods)
        head = nn.Linear(d, 1)
        opt = torch.optim.Adam(list(self.net.parameters()) + list(head.parameters()), lr=self.lr,
                               weight_decay=self.weight_decay)
        for _ in range(self.epochs):
            opt.zero_grad()
            loss = torch.mean((head(self.net(xt)).squeeze(-1) - yt) ** 2)
            loss.backward()
            opt.step()
        phi = self._basis(x)
        self._fit_blr(phi, (y - self.y_mean) / self.y_std)
        return self

    @torch.no_grad()
    def _basis(self, x: np.ndarray) -> np.ndarray:
        xt = torch.as_tensor((np.asarray(x, np.float64) - self.x_mean) / self.x_std, dtype=torch.float32)
        h = self.net(xt).double().numpy()
        return np.hstack([h, np.ones((len(h), 1))])

    def _posterior(self, phi, y, alpha, beta):
        a = beta * phi.T @ phi + alpha * np.eye(phi.shape[1])
        chol = np.linalg.cholesky(a)
        m = beta * np.linalg.solve(a, phi.T @ y)
        return a, chol, m

    def _neg_log_evidence(self, log_ab, phi, y) -> float:
        alpha, beta = np.exp(np.clip(log_ab, -12, 12))
        n, d = phi.shape
        try:
            _, chol, m = self._posterior(phi, y, alpha, beta)
        except np.linalg.LinAlgError:
            return 1e25
        e = 0.5 * beta * np.sum((y - phi @ m) ** 2) + 0.5 * alpha * m @ m
        logdet = 2 * np.sum(np.log(np.diag(chol)))
        return -(0.5 * d * np.log(alpha) + 0.5 * n * np.log(beta) - e - 0.5 * logdet - 0.5 * n * np.log(2 * np.pi))

    def _fit_blr(self, phi: np.ndarray, y: np.ndarray) -> None:
        best = None
        for start in ((0.0, 2.0),):  # a fixed start: deterministic
            r = minimize(self._neg_log_evidence, np.array(start), args=(phi, y), method="L-BFGS-B",
                         bounds=[(-12, 12), (-12, 12)])
            if best is None or r.fun < best.fun:
                best = r
        self.alpha, self.beta = np.exp(best.x)
        a, _, self.m = self._posterior(phi, y, self.alpha, self.beta)
        self.a_inv = np.linalg.inv(a)

    # --- predict ----------------------------------------------------------------------------
    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Predictive mean and standard deviation (original units) at ``x [n, d]``."""
        if self.net is None:
            raise RuntimeError("DNGO.predict before fit")
        with single_thread():  # the prediction, like the fit, does not depend on the caller's thread count
            phi = self._basis(x)
        mu = phi @ self.m
        var = 1.0 / self.beta + ((phi @ self.a_inv) * phi).sum(1)
        return mu * self.y_std + self.y_mean, np.sqrt(np.maximum(var, 1e-12)) * self.y_std

    def sample_weights(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` draws ``[D, n]`` of the last layer's weights from their posterior :math:`\\mathcal N(m, A^{-1})`
        (Thompson sampling: :meth:`predict_samples` gives one sampled function per column)."""
        if self.net is None:
            raise RuntimeError("DNGO.sample_weights before fit")
        chol = np.linalg.cholesky(self.a_inv + 1e-12 * np.eye(len(self.m)))
        return self.m[:, None] + chol @ rng.standard_normal((len(self.m), int(n)))

    def predict_samples(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        """Values ``[n, k]`` (original units) at ``x [n, d]`` of the sampled functions ``w [D, k]``."""
        with single_thread():
            phi = self._basis(x)
        return (phi @ w) * self.y_std + self.y_mean


def expected_improvement(mu: np.ndarray, sd: np.ndarray, best: float, xi: float = 0.0) -> np.ndarray:
    """EI of maximisation: :math:`(\\mu - f^* - \\xi)\\Phi(Z) + \\sigma\\varphi(Z)`, :math:`Z = (\\mu - f^* - \\xi)/\\sigma`.

    >>> float(expected_improvement(np.array([1.0]), np.array([1e-9]), 0.0)[0])
    1.0
    """
    sd = np.maximum(sd, 1e-12)
    imp = mu - best - xi
    z = imp / sd
    return imp * norm.cdf(z) + sd * norm.pdf(z)
