"""``nascore egnas search``: EG-NAS (Cai et al., AAAI 2024) — SGD on the supernet weights, an
evolution strategy with the compound fitness on α (see :mod:`nascore.egnas`).

    nascore egnas search --space nb201 --epochs 50 --output runs/egnas-nb201
    nascore egnas search --space darts --subset 2000 --epochs 4 --warmup 1 --population 8   # smoke run
"""

from __future__ import annotations

from nascore.cliutil import check_options
from nascore.commands.darts import SEARCH_BOUNDS, add_search_args, run_and_print, search_kwargs
from nascore.validate import integer, number

#: ranges of the ES options (the shared supernet options: ``SEARCH_BOUNDS``)
ES_BOUNDS = {"population": integer(2, 100_000), "zeta": number(), "eta": number(), "sigma0": number(0, lo_open=True),
             "sigma_min": number(0, lo_open=True), "step_size": number(0, lo_open=True),
             "es_momentum": number(0, 1, hi_open=True), "generations": integer(1, 10_000)}


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
    s.set_defaults(func=search_main)


def search_main(args) -> int:
    from nascore.darts.train import search_config
    check_options(args, {**SEARCH_BOUNDS, **ES_BOUNDS})
    es = {"population": args.population, "zeta": args.zeta, "eta": args.eta, "sigma0": args.sigma0,
          "sigma_min": args.sigma_min, "step_size": args.step_size, "momentum": args.es_momentum,
          "generations": args.generations, "cma": args.cma}
    return run_and_print(search_config(method="egnas", es=es, **search_kwargs(args)), args)
