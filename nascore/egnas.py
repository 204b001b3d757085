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
   ``σ_min = 0.02``: the decaying step size of the paper (``sigma_schedule="paper"``, the
   default). The released code computes the same formula but always passes ``e = 0``, so its σ
   stays σ0 = 1 for the whole search (``sigma_schedule="released"``); with the paper's schedule
   and the warm-up of 15, σ only spans 1/16 = 0.0625 -> 0.02.

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
   ``d_e = μ d_{e-1} + (1 - μ) softmax(z*)`` (momentum ``μ = 0`` by default; with the released
   choices ``softmax(softmax(z*/‖z*‖))``, below) and

   .. math::  \alpha \leftarrow \alpha + \lambda\, d_e \qquad (\lambda = 0.1)

   i.e. α moves toward the best candidate: operations the best candidate weights most gain the
   most logit. ``generations`` (default 1) repeats 1-3 within an epoch.

**The released choices** (caicaicheng/EG-NAS; each a named option, all at once with
``nascore egnas search --released`` / :data:`RELEASED_ES` + :data:`RELEASED_SUPERNET`):

================================  ==========================  ===============================================
option (default = ours)           released                    where in the released code
================================  ==========================  ===============================================
``sigma_schedule="paper"``        ``"released"``: σ = σ0 = 1  ``train_search.py``: ``epoch = 0`` (l. 151) is
                                                              never incremented, passed to
                                                              ``explore_architecture`` (l. 163), σ = 1/(epoch
                                                              + 1) floored at 0.02 (l. 255-256)
``batch_fraction=1.0``            ``0.5`` (128 of 256)        ``valid_queue`` has ``batch_size // 2`` (l. 125-
                                                              128); the ES draws one batch of it (l. 241)
``normalize_candidates=False``    ``True``: score with        ``CFF``: ``z /= z.norm(dim=-1)`` (l. 195, 198),
                                  softmax(z/‖z‖)              then ``softmax`` (l. 205-206) for the forward
``double_softmax=False``          ``True``: α += λ ·          CFF returns softmax(z/‖z‖) (l. 220), softmaxed
                                  softmax(softmax(z*/‖z*‖))   again (l. 280-281) before ``updated_alpha`` adds
                                                              ``step_size`` x it to α (l. 326)
``mean_noise=0.0``                ``0.01``: the sampling      ``1e-2 * torch.randn_like(w) + w`` with
                                  mean is softmax(α) +        ``w = softmax(α)`` (l. 229, 232); the similarity
                                  0.01·N(0, I)                term still compares with softmax(α) (l. 187)
supernet ``bn_running_stats``     ``True``: BNs keep running  PyTorch-default BNs; the ES runs after the
``=False``                        statistics; the ES scores   previous epoch's ``infer`` left the model in
                                  with them in eval mode      ``eval()`` mode (``train_search.py`` l. 163,
                                                              171, ``infer``)
supernet ``pool_bn=True``         ``False``: no BN after      ``model_search.py`` ``MixedOp.__init__`` builds
                                  pooling operations          ``OPS[primitive]`` only (DARTS adds the BN)
supernet ``primitives``           7 operations, no ``none``   ``genotypes.py``: ``# 'none',`` (l. 6)
================================  ==========================  ===============================================

(line numbers of the stored copy of commit 4c19891 of ``train_search.py`` / ``genotypes.py``;
the released ``operations.py`` was not available to check, its BNs are assumed PyTorch-default as
in the DARTS code it comes from.) The operation set is the only released choice that is the
default here, for EG-NAS searches of DARTS cells (:func:`nascore.darts.train.default_primitives`:
7 operations; DARTS searches keep the 8 with ``none``; the NB-201 cell always has its 5). The
other defaults stay ours until a measurement says otherwise: the paper describes the decaying σ;
batch statistics make scoring 50 candidates free of side effects and independent of how well
the running statistics track the moving weights; a whole batch makes the fitness less noisy;
and the double softmax turns the best candidate's weights (in [0, 1]) into a nearly uniform
increment (at most a factor e between operations: with 7 operations the logits of an edge move
apart by at most 0.1 x 0.197 ≈ 0.02 per epoch, against up to 0.1 with the single softmax).

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
  ``softmax(z)`` directly by default (``normalize_candidates=True`` does as released; the cosine
  term is scale-invariant either way);
* three CMA runs per epoch with the winner re-chosen by accuracy; here one generation of ``P``
  candidates per epoch, the winner chosen by the compound fitness the paper defines;
* candidates are scored in eval mode (no dropout, e.g. in the ECG supernet's head) and, by
  default, with batch statistics (supernet BNs keep no running statistics), so scoring 50
  candidates leaves the supernet unchanged; with ``bn_running_stats`` (released) eval mode uses
  the running statistics, which scoring leaves unchanged too.

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


#: ``sigma_schedule`` values: the paper's ``σ0/(e+1)`` and the released code's constant ``σ0``
SIGMA_SCHEDULES = ("paper", "released")


@dataclass(frozen=True)
class ESConfig:
    """EG-NAS evolution-strategy settings (defaults: the paper's, and ours where the paper is
    silent). See the module docstring; the released code's values are :data:`RELEASED_ES`.

    A field missing from an older run's ``config.json`` takes its default here, which is the
    behaviour such runs had (every field after ``cma`` was added later, at the old behaviour).
    """

    population: int = 50
    zeta: float = 1.0
    eta: float = 0.4
    sigma0: float = 1.0
    sigma_min: float = 0.02
    step_size: float = 0.1
    momentum: float = 0.0
    generations: int = 1
    cma: bool = False
    #: "paper": σ0/(e+1) (floored at σ_min); "released": σ0 at every epoch
    sigma_schedule: str = "paper"
    #: share of the held-out batch the candidates are scored on (released: 0.5, 128 of 256)
    batch_fraction: float = 1.0
    #: score a candidate with softmax(z/‖z‖) per edge instead of softmax(z) (released: True)
    normalize_candidates: bool = False
    #: update α += λ·softmax(w*) with w* the best candidate's mixing weights (released: True)
    double_softmax: bool = False
    #: standard deviation of the Gaussian noise added to the sampling mean softmax(α) (released: 0.01)
    mean_noise: float = 0.0

    def __post_init__(self):
        if self.population < 2:
            raise UserError(f"EG-NAS population must be at least 2; got {self.population}")
        if self.generations < 1:
            raise UserError(f"EG-NAS generations must be at least 1; got {self.generations}")
        if not (self.sigma0 > 0 and self.sigma_min > 0):
            raise UserError(f"EG-NAS step sizes must be positive; got sigma0={self.sigma0}, sigma_min={self.sigma_min}")
        if not 0 <= self.momentum < 1:
            raise UserError(f"EG-NAS momentum must be in [0, 1); got {self.momentum}")
        if self.sigma_schedule not in SIGMA_SCHEDULES:
            raise UserError(f"EG-NAS sigma_schedule must be one of {', '.join(SIGMA_SCHEDULES)}; "
                            f"got {self.sigma_schedule!r}")
        if isinstance(self.batch_fraction, bool) or not 0 < self.batch_fraction <= 1:
            raise UserError(f"EG-NAS batch_fraction must be in (0, 1]; got {self.batch_fraction!r}")
        if isinstance(self.mean_noise, bool) or not (0 <= self.mean_noise < float("inf")):
            raise UserError(f"EG-NAS mean_noise must be a finite number >= 0; got {self.mean_noise!r}")
        for name in ("normalize_candidates", "double_softmax"):
            if not isinstance(getattr(self, name), bool):
                raise UserError(f"EG-NAS {name} must be true or false; got {getattr(self, name)!r}")

    def to_dict(self) -> dict:
        return asdict(self)


#: the released code's ES choices (module docstring table); ``ESConfig(**RELEASED_ES)``
RELEASED_ES: dict = {"sigma_schedule": "released", "batch_fraction": 0.5, "normalize_candidates": True,
                     "double_softmax": True, "mean_noise": 0.01}
#: the released code's supernet choices (search-config fields, :func:`nascore.darts.train.search_config`):
#: BNs with running statistics, no BN after pooling, the 7 operations without ``none`` (DARTS cells)
RELEASED_SUPERNET: dict = {"bn_running_stats": True, "pool_bn": False, "op_set": "released"}


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
    """``max(σ0 / (epoch + 1), σ_min)`` (``sigma_schedule="paper"``); the released code passes
    ``epoch = 0`` every time: ``max(σ0, σ_min)`` (``"released"``).

    >>> sigma_at(0, ESConfig()), sigma_at(15, ESConfig()), sigma_at(99, ESConfig())
    (1.0, 0.0625, 0.02)
    >>> sigma_at(15, ESConfig(sigma_schedule="released")), sigma_at(49, ESConfig(sigma_schedule="released"))
    (1.0, 1.0)
    """
    e = 0 if cfg.sigma_schedule == "released" else epoch
    return max(cfg.sigma0 / (e + 1), cfg.sigma_min)


class EvolutionStrategy:
    """The EG-NAS architecture updater. ``step(net, x, y, epoch)`` runs ``generations`` ES
    generations on one held-out batch and updates ``net.alpha`` in place; returns a log dict.
    ``x`` is a tensor or a tuple of network inputs (``net(*x, weights)``).

    Deterministic given ``seed``, the epoch and the network (Gaussian noise from
    ``np.random.default_rng([seed, epoch, generation])``, the noise on the mean (``mean_noise``)
    from ``[seed, epoch, generation, 1]``; the CMA object is part of :meth:`state_dict`).
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

    def sampling_mean(self, m: torch.Tensor, epoch: int, gen: int) -> np.ndarray:
        """The flattened ``softmax(α)`` the candidates are drawn around, plus ``mean_noise`` x
        N(0, I) (seeded by ``(seed, epoch, generation)``) as the released code adds 0.01 x N(0, I).

        >>> es = EvolutionStrategy(ESConfig(mean_noise=0.01), seed=3)
        >>> a, b = es.sampling_mean(torch.full((2, 4), 0.25), 5, 0), es.sampling_mean(torch.full((2, 4), 0.25), 5, 0)
        >>> bool((a == b).all()), bool((a != 0.25).all()), float(abs(a - 0.25).max()) < 0.05
        (True, True, True)
        """
        mean = m.detach().cpu().double().numpy().ravel()
        if self.cfg.mean_noise > 0:
            rng = np.random.default_rng([self.seed, int(epoch), int(gen), 1])
            mean = mean + self.cfg.mean_noise * rng.standard_normal(mean.size)
        return mean

    def candidate_weights(self, z, shape) -> torch.Tensor:
        """The mixing weights a candidate ``z`` is scored with: ``softmax(z)`` per edge, or
        ``softmax(z/‖z‖)`` with ``normalize_candidates`` (released).

        >>> z = [[3.0, 4.0]]
        >>> EvolutionStrategy(ESConfig()).candidate_weights(z, (1, 2)).tolist()[0][1] > 0.73
        True
        >>> round(EvolutionStrategy(ESConfig(normalize_candidates=True)).candidate_weights(z, (1, 2))[0, 1].item(), 4)
        0.5498
        """
        zt = torch.as_tensor(np.asarray(z), dtype=torch.float32).view(shape)
        if self.cfg.normalize_candidates:
            zt = zt / zt.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        return torch.softmax(zt, dim=-1)

    def direction_of(self, best_weights: torch.Tensor) -> torch.Tensor:
        """What the best candidate adds to α (times λ): its mixing weights, or their softmax
        (``double_softmax``, released: ``softmax(softmax(z*/‖z*‖))``).

        >>> w = torch.tensor([[1.0, 0.0]])
        >>> EvolutionStrategy(ESConfig()).direction_of(w).tolist(), round(EvolutionStrategy(
        ...     ESConfig(double_softmax=True)).direction_of(w)[0, 0].item(), 4)
        ([[1.0, 0.0]], 0.7311)
        """
        return torch.softmax(best_weights, dim=-1) if self.cfg.double_softmax else best_weights

    # --- one epoch ----------------------------------------------------------------------------
    def step(self, net, x, y: torch.Tensor, epoch: int, autocast=None) -> dict:
        """Run the generations on the held-out batch ``(x, y)``; ``x`` is the network input, a
        tensor or a tuple of tensors (a candidate is scored as ``net(*x, weights)``, e.g.
        ``(beats, rr)`` for the ECG supernet). The network is scored in eval mode (no dropout;
        supernet BNs use batch statistics, or their running statistics when the supernet keeps
        them, ``bn_running_stats``) and restored to its mode afterwards. With ``batch_fraction
        < 1`` only the first ``int(batch_fraction * len(y))`` examples are scored (the released
        code scores 128 of a 256 batch).

        The batch is the caller's choice: CIFAR draws an ordinary held-out batch; the imbalanced
        ECG task (:mod:`ecgnas.supernet`) draws it class-balanced from the DS1 hold-out, since on
        a natural batch (~90 % N beats) every candidate reaches about the same accuracy and the
        accuracy comparison in the compound fitness says nothing.
        """
        inputs = tuple(x) if isinstance(x, (tuple, list)) else (x,)
        if self.cfg.batch_fraction < 1:
            k = max(1, int(len(y) * self.cfg.batch_fraction))
            inputs, y = tuple(t[:k] for t in inputs), y[:k]
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
            mean = self.sampling_mean(m, epoch, gen)
            cands = self._candidates(mean, epoch, gen)
            fits, ces, accs, sims = [], [], [], []
            for z in cands:
                zt = torch.as_tensor(z, dtype=torch.float32).view(shape)
                w = self.candidate_weights(z, shape).to(net.alpha.device)
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
                         "n_at_least_as_accurate": int(sum(a >= acc0 for a in accs)), "batch": int(len(y))})
            self.move(net, self.direction_of(self.candidate_weights(cands[best], shape)))
        return {"es": logs}

    def move(self, net, best_weights: torch.Tensor) -> None:
        """``d = μ d + (1 − μ) best_weights``; ``α += λ d`` (in place). ``best_weights``: what
        :meth:`direction_of` gives for the best candidate."""
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


def released_settings(space: str, es: ESConfig | dict | None = None, **supernet) -> tuple[dict, dict]:
    """``(es, supernet)`` with every released choice (:data:`RELEASED_ES`,
    :data:`RELEASED_SUPERNET`) where ``es`` / ``supernet`` leave it unset: the library form of
    ``nascore egnas search --released``. On the NB-201 cell the op set stays its 5 operations.

    >>> es, sn = released_settings("nb201", {"population": 8})
    >>> es["sigma_schedule"], es["population"], sn
    ('released', 8, {'bn_running_stats': True, 'pool_bn': False})
    """
    es = es.to_dict() if isinstance(es, ESConfig) else dict(es or {})
    out_es = {**RELEASED_ES, **es}
    out_sn = {**{k: v for k, v in RELEASED_SUPERNET.items() if not (k == "op_set" and space == "nb201")}, **supernet}
    return out_es, out_sn
