"""``nascore egnas search``: EG-NAS (Cai et al., AAAI 2024) — SGD on the supernet weights, an
evolution strategy with the compound fitness on α (see :mod:`nascore.egnas`).

    nascore egnas search --space nb201 --epochs 50 --output runs/egnas-nb201
    nascore egnas search --space darts --subset 2000 --epochs 4 --warmup 1 --population 8   # smoke run
    nascore egnas search --space darts --released --output runs/egnas-released   # the released code's choices

``--released`` switches on every choice of the released code (caicaicheng/EG-NAS) at once: σ
kept at σ0 (``--sigma-schedule released``), candidates scored on half the held-out batch
(``--es-batch-fraction 0.5``) with softmax(z/‖z‖) (``--normalize-candidates``), α += λ·softmax of
the best candidate's weights (``--double-softmax``), 0.01·N(0, 1) noise on the sampling mean
(``--mean-noise 0.01``), supernet BNs with running statistics (``--bn-running-stats``), no BN
after pooling (``--no-pool-bn``) and, on DARTS cells, the 7 operations without ``none`` (the
default for EG-NAS anyway). An option given explicitly overrides the preset. See
:mod:`nascore.egnas` for where each is in the released code and why the defaults are ours.
"""

from __future__ import annotations

import argparse

from nascore.cliutil import check_options
from nascore.commands.darts import SEARCH_BOUNDS, add_search_args, run_and_print, search_kwargs
from nascore.validate import integer, number

#: ranges of the ES options (the shared supernet options: ``SEARCH_BOUNDS``)
ES_BOUNDS = {"population": integer(2, 100_000), "zeta": number(), "eta": number(), "sigma0": number(0, lo_open=True),
             "sigma_min": number(0, lo_open=True), "step_size": number(0, lo_open=True),
             "es_momentum": number(0, 1, hi_open=True), "generations": integer(1, 10_000),
             "es_batch_fraction": number(0, 1, lo_open=True), "mean_noise": number(0)}


def register(sub) -> None:
    p = sub.add_parser("egnas", help="EG-NAS: evolution strategy on a DARTS/NB-201 supernet",
                       description="EG-NAS search. Example: nascore egnas search --space nb201 --epochs 50")
    esub = p.add_subparsers(dest="egnas_command", metavar="ACTION")
    esub.required = True
    s = esub.add_parser("search", help="run or resume an EG-NAS search")
    add_search_args(s)
    s.add_argument("--population", type=int, default=50, help="ES candidates per epoch (default 50)")
    s.add_argument("--zeta", type=float, default=1.0, help="weight ζ of the cross-entropy in the fitness")
    s.add_argument("--eta", type=float, default=0.4, help="weight η of the similarity term in the fitness")
    s.add_argument("--sigma0", type=float, default=1.0, help="initial step size (σ_e = max(σ0/(e+1), σ_min))")
    s.add_argument("--sigma-min", type=float, default=0.02)
    s.add_argument("--step-size", type=float, default=0.1, help="λ in α += λ·d")
    s.add_argument("--es-momentum", type=float, default=0.0, help="μ in d = μ·d + (1-μ)·softmax(z*)")
    s.add_argument("--generations", type=int, default=1, help="ES generations per epoch")
    s.add_argument("--cma", action="store_true", help="true CMA-ES adaptation (cmaes library) instead of isotropic noise")
    add_released_options(s)
    s.set_defaults(func=search_main)


def add_released_options(s) -> None:
    """``--released`` and the released ES choices it presets (``--sigma-schedule``,
    ``--es-batch-fraction``, ``--normalize-candidates``, ``--double-softmax``, ``--mean-noise``), all
    defaulting to None (unset); read them with :func:`released_choices`. Also on ``ecgnas search
    --method eg-nas``."""
    s.add_argument("--released", action="store_true",
                   help="every choice of the released EG-NAS code at once (the options below marked 'released'); "
                        "options given explicitly override it")
    s.add_argument("--sigma-schedule", choices=("paper", "released"), default=None,
                   help="paper: σ0/(e+1) (default); released: σ0 at every epoch (the released code never "
                        "increments the epoch it passes)")
    s.add_argument("--es-batch-fraction", type=float, default=None,
                   help="share of the held-out batch candidates are scored on (default 1; released 0.5)")
    s.add_argument("--normalize-candidates", action=argparse.BooleanOptionalAction, default=None,
                   help="score a candidate with softmax(z/||z||) per edge (released) instead of softmax(z)")
    s.add_argument("--double-softmax", action=argparse.BooleanOptionalAction, default=None,
                   help="α += λ·softmax(best candidate's weights) (released) instead of λ·weights")
    s.add_argument("--mean-noise", type=float, default=None,
                   help="std of Gaussian noise on the sampling mean softmax(α) (default 0; released 0.01)")


def released_choices(args, space: str) -> tuple[dict, dict]:
    """``(es, supernet)`` of the options of :func:`add_released_options` and
    :func:`nascore.commands.darts.add_supernet_options`: the released ES choices (the
    :data:`nascore.egnas.RELEASED_ES` fields of :class:`nascore.egnas.ESConfig`) and the supernet
    fields ``op_set``, ``pool_bn``, ``bn_running_stats``, with ``--released`` as the default of every
    released choice left unset and ours otherwise (``op_set`` None: the method's default; on the
    NB-201 cell ``--released`` leaves it unset, that cell has its own 5 operations)."""
    from nascore.egnas import RELEASED_ES, RELEASED_SUPERNET, ESConfig
    ours = ESConfig()

    def pick(given, name, released, default):
        return given if given is not None else (released[name] if args.released else default)

    es = {"sigma_schedule": pick(args.sigma_schedule, "sigma_schedule", RELEASED_ES, ours.sigma_schedule),
          "batch_fraction": pick(args.es_batch_fraction, "batch_fraction", RELEASED_ES, ours.batch_fraction),
          "normalize_candidates": pick(args.normalize_candidates, "normalize_candidates", RELEASED_ES,
                                       ours.normalize_candidates),
          "double_softmax": pick(args.double_softmax, "double_softmax", RELEASED_ES, ours.double_softmax),
          "mean_noise": pick(args.mean_noise, "mean_noise", RELEASED_ES, ours.mean_noise)}
    released_op_set = RELEASED_SUPERNET["op_set"] if space != "nb201" else None  # NB-201: its own 5 ops
    supernet = {"op_set": args.op_set if args.op_set is not None else (released_op_set if args.released else None),
                "pool_bn": pick(args.pool_bn, "pool_bn", RELEASED_SUPERNET, True),
                "bn_running_stats": pick(args.bn_running_stats, "bn_running_stats", RELEASED_SUPERNET, False)}
    return es, supernet


def es_settings(args) -> tuple[dict, dict]:
    """``(es, supernet)`` from the options: the ES dict (:class:`nascore.egnas.ESConfig` fields) and
    the supernet fields for :func:`nascore.darts.train.search_config`, with ``--released`` as the
    default of every released choice left unset (:func:`released_choices`)."""
    released, supernet = released_choices(args, args.space)
    es = {"population": args.population, "zeta": args.zeta, "eta": args.eta, "sigma0": args.sigma0,
          "sigma_min": args.sigma_min, "step_size": args.step_size, "momentum": args.es_momentum,
          "generations": args.generations, "cma": args.cma, **released}
    return es, supernet


def search_main(args) -> int:
    from nascore.darts.train import search_config
    check_options(args, {**SEARCH_BOUNDS, **ES_BOUNDS})
    es, supernet = es_settings(args)
    return run_and_print(search_config(method="egnas", es=es, **{**search_kwargs(args), **supernet}), args)
