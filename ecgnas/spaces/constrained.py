"""A search space restricted to the architectures within hardware limits (hardware-aware NAS).

:class:`ConstrainedSpace` wraps any space whose architectures have a cost model and keeps only
those with at most ``max_params`` parameters, ``max_flops`` FLOPs and ``max_latency_ms``
*estimated* latency (the additive lookup-table estimate, as FBNet and ProxylessNAS constrain
latency; evaluations record the measured one). Names are the inner space's: ``name``,
``to_string`` / ``from_string`` / ``key``, the graph and vector encodings and ``build_model``
are delegated, so histories, tables and encoders carry over; ``is_valid`` additionally requires
feasibility, and ``sample`` / ``mutate`` / ``crossover`` retry (at most ``max_tries`` times, with
the caller's generator) until the result is feasible.

What the inner space must offer (``**shape``, e.g. ``window=252``, is passed to each method
that accepts it):

* ``cost_arrays(items, **shape) -> (params [N], flops [N])`` (for ``max_params`` / ``max_flops``)
  and ``estimate_latency_ms(items, **shape) -> [N]`` (for ``max_latency_ms``), ``items`` being
  canonical strings or architectures, or ``None`` for every architecture in ``enumerate`` order;
* ``min_cost(**shape) -> {"params", "flops"}``, the smallest values in the space;
* for a finite space, optionally ``all_strings()`` (the canonical strings in ``enumerate`` order,
  faster than enumerating). Feasibility is then computed once, vectorised, over the whole space:
  ``size`` and ``enumerate`` cover the feasible architectures only, and ``sample`` falls back to
  drawing uniformly among them, so it stays uniform over the feasible set. The inner ``key``
  must be the canonical string (as for ``ecg-cell`` and ``nb201``).

arch2vec caches embeddings per model file: searching a constrained space with a model pretrained
on the whole space re-embeds the feasible subset there (keep a copy of the model to avoid that).

>>> import numpy as np
>>> from ecgnas.spaces.conv1d import ECGCellSpace
>>> c = ConstrainedSpace(ECGCellSpace(), max_params=12_000)
>>> a = c.sample(np.random.default_rng(0))
>>> c.is_valid(a), c.cost(a)["params"] <= 12_000, 0 < c.size < 470596
(True, True, True)
>>> ConstrainedSpace(ECGCellSpace(), max_params=100)
Traceback (most recent call last):
...
nascore.errors.UserError: max_params=100 admits no ecg-cell architecture (the smallest has 11,373 parameters)
"""

from __future__ import annotations

import inspect
from typing import Iterator

import numpy as np

from nascore.arch import Arch
from nascore.errors import UserError
from nascore.spaces.base import SearchSpace

_LIMITS = ("max_params", "max_flops", "max_latency_ms")


def _check_limit(name: str, value):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not value > 0:
        raise UserError(f"{name}={value!r} must be a positive number (or omitted)")
    return value.item() if isinstance(value, np.generic) else value


class ConstrainedSpace(SearchSpace):
    """The feasible part of ``space`` under the limits (see the module docstring)."""

    def __init__(self, space, max_params=None, max_flops=None, max_latency_ms=None, max_tries: int = 1000,
                 **shape):
        self.inner = space
        self.name = space.name
        self.node_labels = space.node_labels
        self.max_nodes = space.max_nodes
        self.limits = {k: _check_limit(k, v) for k, v in zip(_LIMITS, (max_params, max_flops, max_latency_ms))}
        if isinstance(max_tries, bool) or not isinstance(max_tries, int) or max_tries < 1:
            raise UserError(f"max_tries={max_tries!r} must be an integer >= 1")
        self.max_tries = max_tries
        self.shape = dict(shape)
        needed = ["min_cost"]
        if self.limits["max_params"] is not None or self.limits["max_flops"] is not None:
            needed.append("cost_arrays")
        if self.limits["max_latency_ms"] is not None:
            needed.append("estimate_latency_ms")
        for method in needed:
            if not callable(getattr(space, method, None)):
                raise UserError(f"the {space.name} space has no {method}(); it cannot be constrained")
        accepted = set()
        for method in needed:
            accepted |= _keywords(getattr(space, method))
        for k in self.shape:
            if k not in accepted:
                raise UserError(f"unknown shape argument {k!r} for the {space.name} cost model "
                                f"(valid: {', '.join(sorted(accepted)) or 'none'})")
        self._strings: list[str] | None = None
        self._feasible: set[str] | None = None
        if space.size is not None:
            strings = (list(space.all_strings()) if callable(getattr(space, "all_strings", None))
                       else [space.to_string(a) for a in space.enumerate()])
            mask, values = self._evaluate(None)
            if not mask.any():
                raise UserError(self._infeasible({k: v.min() for k, v in values.items()}))
            self._strings = [s for s, ok in zip(strings, mask) if ok]
            self._feasible = set(self._strings)
        else:
            low = space.min_cost(**self._kw(space.min_cost))
            minima = {"max_params": low.get("params"), "max_flops": low.get("flops")}
            for k, v in minima.items():
                if self.limits[k] is not None and v is not None and v > self.limits[k]:
                    raise UserError(self._infeasible(minima))

    # --- feasibility ----------------------------------------------------------------------------------
    def _kw(self, method) -> dict:
        ok = _keywords(method)
        return {k: v for k, v in self.shape.items() if k in ok or "**" in ok}

    def _evaluate(self, items) -> tuple[np.ndarray, dict]:
        """``(feasible bool [N], {limit: values [N]})`` of ``items`` (``None``: the inner space)."""
        values = {}
        if self.limits["max_params"] is not None or self.limits["max_flops"] is not None:
            cost = self.inner.cost_arrays
            values["max_params"], values["max_flops"] = cost(items, **self._kw(cost))
        if self.limits["max_latency_ms"] is not None:
            est = self.inner.estimate_latency_ms
            values["max_latency_ms"] = est(items, **self._kw(est))
        mask = None
        for k, v in values.items():
            v = np.asarray(v)
            ok = v <= self.limits[k] if self.limits[k] is not None else np.ones(len(v), bool)
            mask = ok if mask is None else mask & ok
        if mask is None:  # no limit at all: everything is feasible
            n = self.inner.size if items is None else len(items)
            mask = np.ones(n, bool)
        return mask, values

    def _infeasible(self, minima: dict) -> str:
        units = {"max_params": ("the smallest has", "parameters"), "max_flops": ("the smallest needs", "FLOPs"),
                 "max_latency_ms": ("the fastest is estimated at", "ms")}
        for k, v in minima.items():
            lim = self.limits[k]
            if lim is not None and v is not None and v > lim:
                lead, unit = units[k]
                shown = f"{v:.3f}" if k == "max_latency_ms" else f"{int(v):,}"
                return f"{k}={lim!r} admits no {self.name} architecture ({lead} {shown} {unit})"
        given = ", ".join(f"{k}={v!r}" for k, v in self.limits.items() if v is not None)
        return f"{given} together admit no {self.name} architecture"

    def feasible_mask(self, keys) -> np.ndarray:
        """bool ``[N]``: which of ``keys`` (canonical strings or architectures) meet every limit."""
        keys = list(keys)
        if self._feasible is not None:
            return np.array([(k if isinstance(k, str) else self.inner.to_string(k)) in self._feasible for k in keys],
                            bool)
        return self._evaluate(keys)[0]

    def describe(self) -> dict:
        """The constraints, the shape they are evaluated at and the feasible count."""
        return {"space": self.name, **self.limits, "latency": "additive lookup-table estimate",
                "shape": dict(self.shape), "size": self.size}

    # --- the SearchSpace interface ---------------------------------------------------------------------
    def is_valid(self, arch: Arch) -> bool:
        if not self.inner.is_valid(arch):
            return False
        if self._feasible is not None:
            return self.inner.to_string(arch) in self._feasible
        return bool(self._evaluate([arch])[0][0])

    def validate(self, arch: Arch) -> Arch:
        self.inner.validate(arch)
        if not self.is_valid(arch):
            given = ", ".join(f"{k}={v!r}" for k, v in self.limits.items() if v is not None)
            raise UserError(f"architecture {self.inner.to_string(arch)} exceeds the constraints {given}")
        return arch

    def sample(self, rng: np.random.Generator) -> Arch:
        """Uniform over the feasible architectures: rejection sampling, then (finite spaces) a
        direct draw among them when ``max_tries`` samples were all infeasible."""
        for _ in range(self.max_tries):
            a = self.inner.sample(rng)
            if self.is_valid(a):
                return a
        if self._strings is not None:
            return self.inner.from_string(self._strings[int(rng.integers(len(self._strings)))])
        raise UserError(f"no feasible {self.name} architecture in {self.max_tries} samples; loosen the constraints")

    def mutate(self, arch: Arch, rng: np.random.Generator) -> Arch:
        """A feasible mutant of ``arch`` (up to ``max_tries`` inner mutations), else a feasible
        architecture other than ``arch``; never ``arch`` itself."""
        key = self.inner.key(arch)
        for _ in range(self.max_tries):
            c = self.inner.mutate(arch, rng)
            if self.is_valid(c) and self.inner.key(c) != key:
                return c
        if self.size == 1:
            raise UserError(f"the constrained {self.name} space holds one architecture: there is nothing to mutate to")
        for _ in range(self.max_tries):
            c = self.sample(rng)
            if self.inner.key(c) != key:
                return c
        raise UserError(f"no feasible {self.name} architecture other than {key} found in {self.max_tries} tries")

    def crossover(self, a: Arch, b: Arch, rng: np.random.Generator) -> Arch:
        """A feasible child (up to ``max_tries`` inner crossovers), else a feasible parent (else a sample)."""
        for _ in range(self.max_tries):
            c = self.inner.crossover(a, b, rng)
            if self.is_valid(c):
                return c
        for parent in (a, b):
            if self.is_valid(parent):
                return parent
        return self.sample(rng)

    def to_string(self, arch: Arch) -> str:
        return self.inner.to_string(arch)

    def from_string(self, text: str) -> Arch:
        return self.inner.from_string(text)

    def key(self, arch: Arch) -> str:
        return self.inner.key(arch)

    def node_features(self, arch: Arch) -> np.ndarray:
        return self.inner.node_features(arch)

    def to_graph(self, arch: Arch):
        return self.inner.to_graph(arch)

    def to_vector(self, arch: Arch) -> np.ndarray:
        return self.inner.to_vector(arch)

    @property
    def size(self) -> int | None:
        return None if self._strings is None else len(self._strings)

    def enumerate(self) -> Iterator[Arch]:
        if self._strings is None:
            raise UserError(f"the constrained {self.name} space is not enumerable (its inner space is infinite)")
        for s in self._strings:
            yield self.inner.from_string(s)

    def all_strings(self) -> list[str]:
        """The feasible canonical strings in ``enumerate`` order."""
        if self._strings is None:
            raise UserError(f"the constrained {self.name} space is not enumerable (its inner space is infinite)")
        return list(self._strings)

    def build_model(self, arch: Arch, **kwargs):
        """The inner network of a feasible ``arch`` at this space's shape (``kwargs`` override it)."""
        self.validate(arch)
        return self.inner.build_model(arch, **{**self._kw(self.inner.build_model), **kwargs})

    # --- costs over the feasible set ----------------------------------------------------------------------
    def cost_arrays(self, items=None, **shape):
        """The inner ``cost_arrays`` at this space's shape; ``items=None``: the feasible set."""
        f = self.inner.cost_arrays
        return f(self._all(items), **{**self._kw(f), **shape})

    def estimate_latency_ms(self, items=None, **shape):
        """The inner latency estimate at this space's shape; ``items=None``: the feasible set."""
        f = self.inner.estimate_latency_ms
        return f(self._all(items), **{**self._kw(f), **shape})

    def cost(self, arch: Arch, **shape) -> dict:
        f = self.inner.cost
        return f(arch, **{**self._kw(f), **shape})

    def min_cost(self, **shape) -> dict:
        """The smallest parameter and FLOP counts among the feasible architectures."""
        p, fl = self.cost_arrays(None, **shape)
        return {"params": int(np.min(p)), "flops": int(np.min(fl))}

    def _all(self, items):
        if items is not None:
            return items
        if self._strings is None:
            raise UserError(f"the constrained {self.name} space is infinite: pass the architectures to cost")
        return self._strings

    def __getattr__(self, name: str):
        # everything else (equivalence_hash, opset, ...) is the inner space's
        if name.startswith("_") or name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def __repr__(self) -> str:
        given = ", ".join(f"{k}={v!r}" for k, v in self.limits.items() if v is not None)
        return f"ConstrainedSpace({self.name}, {given})"


_SUBJECTS = ("arch", "items", "archs", "keys")


def _keywords(method) -> set[str]:
    """Shape keywords of ``method`` (``"**"`` when it takes ``**kwargs``); its subject (``arch`` or
    ``items``) is not one."""
    params = list(inspect.signature(method).parameters.values())
    out = {p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name not in _SUBJECTS}
    if any(p.kind == p.VAR_KEYWORD for p in params):
        out.add("**")
    return out
