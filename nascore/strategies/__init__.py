"""Search strategies by name; each is an ask/tell :class:`Strategy`.

>>> from nascore.strategies import STRATEGIES
>>> {"evolution", "random", "dcl-enas"} <= set(STRATEGIES)
True
"""

from __future__ import annotations

import importlib
import inspect

from nascore.errors import UserError
from nascore.evaluation import Result
from nascore.strategies.base import Strategy

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


def get_strategy(name: str, space, seed: int = 0, **params) -> Strategy:
    """Build a strategy; an unknown parameter is a one-line error listing the valid ones."""
    cls = strategy_class(name)
    sig = inspect.signature(cls.__init__)
    allowed = [p for p in sig.parameters if p not in ("self", "space", "seed")]
    for k in params:
        if k not in allowed:
            raise UserError(f"strategy {name!r} has no parameter {k!r} (valid: {', '.join(allowed) or 'none'})")
    return cls(space, seed=seed, **params)


__all__ = ["Strategy", "Result", "STRATEGIES", "get_strategy", "register_strategy", "strategy_class"]
