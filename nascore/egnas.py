r"""EG-NAS: architecture parameters moved by an evolution strategy with a compound fitness.

Cai, Chen, Liu, Ling & Lai, "EG-NAS: Neural Architecture Search with Fast Evolutionary
Exploration", AAAI 2024. The supernet weights ``w`` are trained with SGD exactly as in DARTS /
PC-DARTS (:mod:`nascore.darts`); the architecture parameters α are *not* trained by a gradient.
Instead, once per epoch after ``warmup`` epochs (default 15 of 50):

1. **Sampling.** ``m = softmax(α)`` (per edge, all cell types, flattened to ``D`` numbers).
   A population of ``P`` candidates (default 50) is drawn around it,

   .. math::  z_i = m + \sigma_e\, \varepsilon_i,\quad \varepsilon_i \sim \mathcal N(0, I_D),
              \qquad \sigma_e = \max(\sigma_0 / (e + 1),\ \sigma_{min})

   with ``e`` the epoch index (0-based, counted from the start of the search), ``σ0 = 1``,
   ``σ_min = 0.02``: the decaying step size of the paper. (The official code computes the same
   formula but always passes ``e = 0``, so its σ stays 1; we pass the real epoch.)

2. **Compound fitness** (paper Eq. for the "compound fitness function", minimised), on one
   held-out batch ``(x, y)`` drawn for the epoch. A candidate mixes the operations with weights
   ``softmax(z_i)`` per edge (as the official code does). With ``CE_i`` its cross-entropy,
   ``acc_i`` its batch accuracy and ``acc_α`` that of the current α,

   .. math::  L2_i = \frac{1}{|E|}\sum_{e \in E} \frac{\cos(m_e, z_{i,e}) + 1}{2}

   .. math::  f_i = \zeta\, CE_i + s_i\, \eta\, L2_i, \qquad
              s_i = +1 \text{ if } acc_i \ge acc_\alpha \text{ else } -1

   (``ζ = 1``, ``η = 0.4``; ``E`` = every edge of every cell type). A candidate at least as
   accurate as α is pushed away from α (its similarity is penalised: exploration); a less
   accurate one is kept close to it. This is the sign of the official code. Note that with
   ``η = 0.4`` the similarity term (in ``[0, 0.4]``) can outweigh small cross-entropy
   differences; we keep the published rule and defaults.

3. **Update.** The best candidate ``z* = argmin f_i`` gives the direction
   ``d_e = μ d_{e-1} + (1 - μ) softmax(z*)`` (momentum ``μ = 0`` by default) and

   .. math::  \alpha \leftarrow \alpha + \lambda\, d_e \qquad (\lambda = 0.1)

   i.e. α moves toward the best candidate: operations the best candidate weights most gain the
   most logit. ``generations`` (default 1) repeats 1-3 within an epoch.

Choices where the official code departs from the paper (documented, not copied):

* the fitness function is called without its ``args`` argument there and crashes; here it is
  the pure function :func:`compound_fitness`;
* the ``cmaes.CMA`` object is rebuilt with ``seed=1`` for every generation, so its covariance and
  step-size adaptation never act and every epoch draws the same noise; here the default is the
  plain isotropic Gaussian above with noise seeded by ``(seed, epoch)``, and ``cma=True`` keeps
  **one** ``cmaes.CMA`` (Hansen's CMA-ES) for the whole search — seeded from the run seed,
  re-centred on ``softmax(α)`` before every generation, told the fitness of every candidate, its
  sampling RNG reseeded from ``(seed, epoch, generation)`` (``cmaes`` does not pickle it), and
  saved in the checkpoint — so covariance and σ adaptation really act (σ then adapts by CMA's own
  rule instead of the ``1/(e+1)`` schedule, starting at ``σ_{e_0}``);
* the candidate is divided by its per-edge L2 norm before the softmax there; we use
  ``softmax(z)`` directly (the cosine term is scale-invariant either way);
* three CMA runs per epoch with the winner re-chosen by accuracy; here one generation of ``P``
  candidates per epoch, the winner chosen by the compound fitness the paper defines;
* candidates are scored with batch statistics (supernet BNs keep no running statistics) and in
  eval mode (no dropout, e.g. in the ECG supernet's head), so scoring 50 candidates leaves the
  supernet unchanged.

The held-out batch is drawn by the caller. For the imbalanced ECG beats (:mod:`ecgnas.supernet`)
it is drawn class-balanced from the DS1 hold-out: on a natural batch about 90 % of the beats are
N, every candidate is about equally accurate, and the ``acc_i >= acc_α`` test that sets the
sign of the similarity term carries no information.

>>> compound_fitness(ce=1.0, similarity=0.5, at_least_as_accurate=True), compound_fitness(1.0, 0.5, False)
(1.2, 0.8)
"""

from __future__ import annotations

from contextlib import nullcontext

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from nascore.errors import UserError


@dataclass(frozen=True)
class ESConfig:
    """EG-NAS evolution-strategy settings (defaults: the paper's). See the module docstring."""

    population: int = 50
    zeta: float = 1.0
    eta: float = 0.4
    sigma0: float = 1.0
    sigma_min: float = 0.02
    step_size: float = 0.1
    momentum: float = 0.0
    generations: int = 1
    cma: bool = False

    def __post_init__(self):
        if self.population < 2:
            raise UserError(f"EG-NAS population must be at least 2; got {self.population}")
        if self.generations < 1:
            raise UserError(f"EG-NAS generations must be at least 1; got {self.generations}")
        if not (self.sigma0 > 0 and self.sigma_min > 0):
            raise UserError(f"EG-NAS step sizes must be positive; got sigma0={self.sigma0}, sigma_min={self.sigma_min}")
        if not 0 <= self.momentum < 1:
            raise UserError(f"EG-NAS momentum must be in [0, 1); got {self.momentum}")

    def to_dict(self) -> dict:
        return asdict(self)


def compound_fitness(ce: float, similarity: float, at_least_as_accurate: bool, zeta: float = 1.0,
                     eta: float = 0.4) -> float:
    """``f = ζ·CE + η·L2`` if the candidate is at least as accurate as α, else ``ζ·CE − η·L2`` (minimised).

    >>> round(compound_fitness(2.0, 1.0, True, zeta=0.5, eta=0.4), 6), round(compound_fitness(2.0, 1.0, False), 6)
    (1.4, 1.6)
    """
    return zeta * ce + (eta if at_least_as_accurate else -eta) * similarity


def edge_similarity(m: torch.Tensor, z: torch.Tensor) -> float:
    """``mean_e (cos(m_e, z_e) + 1) / 2`` over edges; ``m, z``: ``[..., n_ops]`` (same shape).

    >>> edge_similarity(torch.tensor([[1., 0.], [0., 1.]]), torch.tensor([[1., 0.], [1., 0.]]))
    0.75
    """
    m = m.reshape(-1, m.shape[-1]).float()
    z = z.reshape(-1, z.shape[-1]).float()
    return float(((F.cosine_similarity(m, z, dim=-1) + 1) / 2).mean())


def sigma_at(epoch: int, cfg: ESConfig) -> float:
    """``max(σ0 / (epoch + 1), σ_min)``.

    >>> sigma_at(0, ESConfig()), sigma_at(15, ESConfig()), sigma_at(99, ESConfig())
    (1.0, 0.0625, 0.02)
    """
    return max(cfg.sigma0 / (epoch + 1), cfg.sigma_min)


class EvolutionStrategy:
    """The EG-NAS architecture updater. ``step(net, x, y, epoch)`` runs ``generations`` ES
    generations on one held-out batch and updates ``net.alpha`` in place; returns a log dict.
    ``x`` is a tensor or a tuple of network inputs (``net(*x, weights)``).

    Deterministic given ``seed``, the epoch and the network (Gaussian noise from
    ``np.random.default_rng([seed, epoch, generation])``; the CMA object is part of
    :meth:`state_dict`).
    """

    def __init__(self, cfg: ESConfig, seed: int = 0):
        self.cfg, self.seed = cfg, int(seed)
        self.direction: np.ndarray | None = None
        self.cma = None

    # --- sampling ---------------------------------------------------------------------------
    def _candidates(self, mean: np.ndarray, epoch: int, gen: int) -> np.ndarray:
        cfg = self.cfg
        if not cfg.cma:
            rng = np.random.default_rng([self.seed, int(epoch), int(gen)])
            return mean[None] + sigma_at(epoch, cfg) * rng.standard_normal((cfg.population, mean.size))
        from cmaes import CMA
        if self.cma is None:
            self.cma = CMA(mean=mean.astype(np.float64), sigma=sigma_at(epoch, cfg), population_size=cfg.population,
                           seed=self.seed)
        else:  # re-centre on softmax(α): α also moves between generations
            self.cma._mean = mean.astype(np.float64).copy()
        # cmaes does not pickle its RNG; reseeding per (seed, epoch, generation) keeps resume exact
        self.cma._rng = np.random.RandomState(np.random.SeedSequence([self.seed, int(epoch), int(gen)]).generate_state(1)[0])
        return np.stack([self.cma.ask() for _ in range(cfg.population)])

    # --- one epoch ----------------------------------------------------------------------------
    def step(self, net, x, y: torch.Tensor, epoch: int, autocast=None) -> dict:
        """Run the generations on the held-out batch ``(x, y)``; ``x`` is the network input, a
        tensor or a tuple of tensors (a candidate is scored as ``net(*x, weights)``, e.g.
        ``(beats, rr)`` for the ECG supernet). The network is scored in eval mode (no dropout;
        supernet BNs use batch statistics either way) and restored to its mode afterwards.

        The batch is the caller's choice: CIFAR draws an ordinary held-out batch; the imbalanced
        ECG task (:mod:`ecgnas.supernet`) draws it class-balanced from the DS1 hold-out, since on
        a natural batch (~90 % N beats) every candidate reaches about the same accuracy and the
        accuracy comparison in the compound fitness says nothing.
        """
        inputs = tuple(x) if isinstance(x, (tuple, list)) else (x,)
        was_training = net.training
        net.eval()
        try:
            with torch.no_grad():
                return self._step(net, inputs, y, epoch, autocast)
        finally:
            net.train(was_training)

    def _step(self, net, inputs: tuple, y: torch.Tensor, epoch: int, autocast) -> dict:
        cfg = self.cfg
        shape = tuple(net.alpha.shape)
        logs = []
        for gen in range(cfg.generations):
            m = torch.softmax(net.alpha.detach().float(), dim=-1)
            with (autocast or nullcontext)():
                logits = net(*inputs, m.to(net.alpha.dtype))
            acc0 = float((logits.argmax(1) == y).float().mean())
            ce0 = float(F.cross_entropy(logits.float(), y))
            mean = m.cpu().double().numpy().ravel()
            cands = self._candidates(mean, epoch, gen)
            fits, ces, accs, sims = [], [], [], []
            for z in cands:
                zt = torch.as_tensor(z, dtype=torch.float32).view(shape)
                w = torch.softmax(zt, dim=-1).to(net.alpha.device)
                with (autocast or nullcontext)():
                    out = net(*inputs, w.to(net.alpha.dtype))
                ce = float(F.cross_entropy(out.float(), y))
                acc = float((out.argmax(1) == y).float().mean())
                sim = edge_similarity(m.cpu(), zt)
                fits.append(compound_fitness(ce, sim, acc >= acc0, cfg.zeta, cfg.eta))
                ces.append(ce), accs.append(acc), sims.append(sim)
            if cfg.cma:
                self.cma.tell([(c, f) for c, f in zip(cands, fits)])
            best = int(np.argmin(fits))
            logs.append({"generation": gen, "sigma": float(self.cma._sigma) if cfg.cma else sigma_at(epoch, cfg),
                         "alpha_acc": acc0, "alpha_ce": ce0, "best": best, "best_fitness": fits[best],
                         "best_ce": ces[best], "best_acc": accs[best], "best_similarity": sims[best],
                         "best_at_least_as_accurate": accs[best] >= acc0,
                         "fitness_mean": float(np.mean(fits)), "ce_mean": float(np.mean(ces)),
                         "acc_mean": float(np.mean(accs)), "similarity_mean": float(np.mean(sims)),
                         "n_at_least_as_accurate": int(sum(a >= acc0 for a in accs))})
            self.move(net, torch.softmax(torch.as_tensor(cands[best], dtype=torch.float32).view(shape), dim=-1))
        return {"es": logs}

    def move(self, net, best_weights: torch.Tensor) -> None:
        """``d = μ d + (1 − μ) best_weights``; ``α += λ d`` (in place)."""
        b = best_weights.detach().cpu().double().numpy()
        d = b if self.direction is None else self.cfg.momentum * self.direction + (1 - self.cfg.momentum) * b
        self.direction = d
        with torch.no_grad():
            net.alpha.add_(torch.as_tensor(self.cfg.step_size * d, dtype=net.alpha.dtype, device=net.alpha.device))

    # --- checkpoint ------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """The ES state as tensors and plain values (readable with ``torch.load(weights_only=True)``):
        ``{"direction": float64 tensor or None, "cma": None or the CMA object's attributes}``.

        The CMA attributes are stored verbatim (its own pickling re-symmetrises C, which changes
        the last bits and would break bitwise resume), numpy arrays as tensors and numpy scalars as
        ``[dtype, value]`` (:func:`nascore.safeload.numpy_state_to_torch`); its RNG is left out, it
        is reseeded per generation anyway.
        """
        from nascore.safeload import numpy_state_to_torch
        cma = None if self.cma is None else numpy_state_to_torch({k: v for k, v in vars(self.cma).items() if k != "_rng"})
        direction = None if self.direction is None else torch.from_numpy(np.array(self.direction, np.float64))
        return {"direction": direction, "cma": cma}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` output (numpy arrays and scalars rebuilt with their dtypes)."""
        from nascore.safeload import numpy_state_from_torch
        d = state.get("direction")
        self.direction = None if d is None else np.array(d.numpy() if isinstance(d, torch.Tensor) else d, np.float64)
        self.cma = None
        if state.get("cma") is not None:
            from cmaes import CMA
            self.cma = CMA.__new__(CMA)
            vars(self.cma).update(numpy_state_from_torch(state["cma"]))
            self.cma._rng = np.random.RandomState(0)


def egnas_search(*, output, space: str = "nb201", data=None, epochs: int = 50, warmup: int | None = None, subset=None,
                 seed: int = 0, device: str = "cpu", es: ESConfig | None = None, progress: bool = True, **kwargs) -> dict:
    """Run (or resume) an EG-NAS search in ``output``; returns the ``result.json`` dict.

    ``kwargs`` go to :func:`nascore.darts.train.search_config` (``C``, ``layers``, ``K``,
    ``batch_size``, ``lr`` ...). Example (real data, minutes on a CPU)::

        egnas_search(output="runs/eg", space="nb201", epochs=4, warmup=1, subset=1000, C=8, layers=1)
    """
    from nascore.darts.train import run_supernet_search, search_config
    cfg = search_config(method="egnas", space=space, epochs=epochs, warmup=warmup, subset=subset, seed=seed,
                        es=(es or ESConfig()).to_dict(), **kwargs)
    return run_supernet_search(cfg, output, data=data, device=device, progress=progress)
