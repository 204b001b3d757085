"""Search strategies by name; each is an ask/tell :class:`Strategy`.

>>> from nascore.strategies import STRATEGIES
>>> {"evolution", "random", "dcl-enas"} <= set(STRATEGIES)
True
"""

from __future__ import annotations

import importlib
from typing import Any, Mapping

from nascore.errors import UserError
from nascore.evaluation import Result
from nascore.strategies.base import Strategy
from nascore.validate import check_kwargs

STRATEGIES: dict[str, str] = {
    "random": "nascore.strategies.random:RandomSearch",
    "evolution": "nascore.strategies.evolution:RegularizedEvolution",
    "arch2vec-rl": "nascore.strategies.arch2vec_rl:Arch2vecRL",
    "arch2vec-bo": "nascore.strategies.arch2vec_bo:Arch2vecBO",
    "dcl-enas": "nascore.strategies.dcl_enas:DCLENAS",
}


def register_strategy(name: str, target: str) -> None:
    STRATEGIES[name] = target


def strategy_class(name: str):
    if name not in STRATEGIES:
        raise UserError(f"unknown strategy {name!r} (choose from: {', '.join(sorted(STRATEGIES))})")
    mod, cls = STRATEGIES[name].split(":")
    return getattr(importlib.import_module(mod), cls)


def strategy_params(name: str, params: Mapping[str, Any] | None) -> dict:
    """``params`` checked against the constructor of strategy ``name``: types from its
    annotations, ranges from its ``param_bounds``. Returns them converted (``5.0`` -> ``5``);
    an unknown name, a wrong type or an out-of-range value is a one-line :class:`UserError`
    naming the parameter, the value and what is expected.

    >>> strategy_params("evolution", {"population": 20.0})
    {'population': 20}
    >>> strategy_params("evolution", {"population": "abc"})
    Traceback (most recent call last):
    ...
    nascore.errors.UserError: strategy 'evolution': population='abc': expected an integer in [1, 1000000]
    """
    cls = strategy_class(name)
    return check_kwargs(f"strategy {name!r}", cls.__init__, dict(params or {}), getattr(cls, "param_bounds", {}),
                        skip=("self", "space", "seed"))


def get_strategy(name: str, space, seed: int = 0, **params) -> Strategy:
    """Build a strategy from checked parameters (:func:`strategy_params`)."""
    return strategy_class(name)(space, seed=seed, **strategy_params(name, params))


__all__ = ["Strategy", "Result", "STRATEGIES", "get_strategy", "register_strategy", "strategy_class",
           "strategy_params"]
