"""Checking numbers and typed parameters from the outside world, with one-line errors.

Everything a user types -- a command-line number, a ``--param key=value``, a budget -- passes
through here before it is used, so a bad value is a :class:`~nascore.errors.UserError` that
names the parameter, the value and what is expected, never a ``TypeError``, an
``OverflowError``, a ``MemoryError`` or a silent truncation (``5.5`` read as ``5``).

* :class:`Bounds` -- "an integer in [1, 1000]", "a number > 0", "a number in [0, 1)": finite,
  typed, bounded; :meth:`Bounds.check` returns the value converted (an integral float such as
  ``5.0`` becomes ``5``; ``5.5`` is refused for an integer).
* :func:`check_typed` -- one value against a type annotation (``int``, ``float``, ``bool``,
  ``str``, ``dict``, ``tuple``, unions with ``None``) and optional :class:`Bounds`;
  :func:`check_kwargs` -- every keyword of a callable against its signature's annotations.
* :class:`Budget` (also :class:`nascore.run.Budget`) and :func:`parse_budget` -- ``--budget``
  text to a budget of queries or simulated seconds, bounded;
  :func:`check_seeds` -- at most :data:`MAX_SEEDS` seeds, each in ``[0, MAX_SEED]``.

>>> Bounds(1, 10, integer=True).check("population", 5.0)
5
>>> Bounds(1, 10, integer=True).check("population", 5.5)
Traceback (most recent call last):
...
nascore.errors.UserError: population=5.5: expected an integer in [1, 10]
>>> parse_budget("6h")
Budget(queries=None, seconds=21600.0)
"""

from __future__ import annotations

import inspect
import itertools
import math
import numbers
import re
import types
import typing
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from nascore.errors import UserError

#: largest seed anywhere (numpy, torch and run-folder names all take it)
MAX_SEED = 2**32 - 1
#: most seeds one command may run
MAX_SEEDS = 10_000
#: most queries one budget may ask for (NAS-Bench-101 has 423,624 cells)
MAX_QUERIES = 10_000_000
#: most simulated seconds one budget may ask for (about 31,700 years)
MAX_BUDGET_SECONDS = 1e12


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e15 else f"{v:g}"


@dataclass(frozen=True)
class Bounds:
    """A finite number, optionally an integer, between ``lo`` and ``hi`` (None: unbounded;
    ``*_open``: the end itself is excluded)."""

    lo: float | None = None
    hi: float | None = None
    integer: bool = False
    lo_open: bool = False
    hi_open: bool = False

    def describe(self) -> str:
        """``"an integer in [1, 10]"``, ``"a number > 0"``, ``"a finite number"``, ..."""
        what = "an integer" if self.integer else ("a finite number" if self.lo is None and self.hi is None
                                                  else "a number")
        if self.lo is not None and self.hi is not None:
            return f"{what} in {'(' if self.lo_open else '['}{_num(self.lo)}, {_num(self.hi)}{')' if self.hi_open else ']'}"
        if self.lo is not None:
            return f"{what} {'>' if self.lo_open else '>='} {_num(self.lo)}"
        if self.hi is not None:
            return f"{what} {'<' if self.hi_open else '<='} {_num(self.hi)}"
        return what

    def contains(self, v: float) -> bool:
        if self.lo is not None and (v < self.lo or (self.lo_open and v == self.lo)):
            return False
        if self.hi is not None and (v > self.hi or (self.hi_open and v == self.hi)):
            return False
        return True

    def check(self, label: str, value: Any) -> int | float:
        """``value`` as an int (``integer``) or float within the bounds; else a one-line
        :class:`UserError` ``"<label>=<value>: expected <describe()>"``."""
        bad = UserError(f"{label}={_short(value)}: expected {self.describe()}")
        if not _is_number(value):
            raise bad
        if isinstance(value, numbers.Integral):
            value = int(value)
        elif not math.isfinite(value):
            raise bad
        if self.integer:
            if isinstance(value, float):
                if not value.is_integer():
                    raise bad
                value = int(value)
        else:
            try:
                value = float(value)
            except OverflowError:  # an int too large for a float
                raise bad from None
        if not self.contains(value):
            raise bad
        return value


def _is_number(value: Any) -> bool:
    """A real number (Python or numpy), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and type(value).__name__ != "bool_"


def integer(lo: int | None = None, hi: int | None = None) -> Bounds:
    """Bounds of an integer in ``[lo, hi]``."""
    return Bounds(lo, hi, integer=True)


def number(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False, hi_open: bool = False) -> Bounds:
    """Bounds of a finite number between ``lo`` and ``hi``."""
    return Bounds(lo, hi, lo_open=lo_open, hi_open=hi_open)


# --- typed values ------------------------------------------------------------------------------
_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string", dict: "a JSON object",
          tuple: "a list", list: "a list", type(None): "null"}


def _options(annotation: Any) -> tuple:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return typing.get_args(annotation)
    return (annotation,)


def check_typed(label: str, value: Any, annotation: Any, bounds: Bounds | None = None) -> Any:
    """``value`` checked against ``annotation`` (and ``bounds`` for numbers), converted where
    the annotation asks for it (``5.0`` -> ``5`` for ``int``, ``3`` -> ``3.0`` for ``float``,
    a list -> a tuple for ``tuple``). An annotation this does not know (``Any``, a class) lets
    the value through unchanged: the receiver checks it."""
    opts = _options(annotation)
    is_num = _is_number(value)
    if value is None:
        if type(None) in opts:
            return None
    elif isinstance(value, bool):
        if bool in opts:
            return value
    elif is_num and int in opts and (float not in opts or isinstance(value, numbers.Integral)):
        return _with(bounds, integer=True).check(label, value)
    elif is_num and float in opts:
        return _with(bounds, integer=False).check(label, value)
    elif isinstance(value, str) and str in opts:
        return value
    elif isinstance(value, dict) and dict in opts:
        return value
    elif isinstance(value, (list, tuple)) and (tuple in opts or list in opts):
        return tuple(value) if tuple in opts else list(value)
    if not all(o in _NAMES for o in opts):  # an annotation we cannot judge: the receiver does
        return value
    what = [_with(bounds, integer=o is int).describe() if o in (int, float) else _NAMES[o] for o in opts]
    raise UserError(f"{label}={_short(value)}: expected {' or '.join(dict.fromkeys(what))}")


def _with(bounds: Bounds | None, integer: bool) -> Bounds:
    b = bounds or Bounds()
    return Bounds(b.lo, b.hi, integer=integer, lo_open=b.lo_open, hi_open=b.hi_open)


def check_kwargs(label: str, fn: Callable, values: Mapping[str, Any], bounds: Mapping[str, Bounds] | None = None,
                 skip: tuple[str, ...] = ("self",)) -> dict:
    """Every ``values[k]`` checked against the annotation of parameter ``k`` of ``fn`` (and
    ``bounds[k]``); an unknown key is an error that lists the valid ones. Returns the converted
    values. ``label`` starts each message (``"strategy 'evolution'"``)."""
    params = [p for p in inspect.signature(fn).parameters if p not in skip]
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # pragma: no cover - unresolvable annotations: check names only
        hints = {}
    bounds = bounds or {}
    out = {}
    for k, v in values.items():
        if k not in params:
            raise UserError(f"{label} has no parameter {k!r} (valid: {', '.join(params) or 'none'})")
        out[k] = check_typed(f"{label}: {k}", v, hints.get(k, Any), bounds.get(k))
    return out


# --- seeds ------------------------------------------------------------------------------------
def check_seeds(seeds: Iterable[Any]) -> list[int]:
    """The seeds of ``seeds`` (any iterable, even a huge ``range``: at most :data:`MAX_SEEDS` + 1
    are looked at) as ints in ``[0, MAX_SEED]``; more than :data:`MAX_SEEDS` is an error."""
    out = list(itertools.islice(iter(seeds), MAX_SEEDS + 1))
    if len(out) > MAX_SEEDS:
        raise UserError(f"--seeds: more than {MAX_SEEDS:,} seeds")
    return [integer(0, MAX_SEED).check("seed", s) for s in out]


# --- budgets ----------------------------------------------------------------------------------
_BUDGET_NUMBER = re.compile(r"\s*([0-9.eE+-]+)")


@dataclass(frozen=True)
class Budget:
    """Stop after ``queries`` evaluations or once ``seconds`` of (simulated) cost are spent,
    whichever comes first. The evaluation that crosses a seconds budget is kept and counted."""

    queries: int | None = None
    seconds: float | None = None

    def __post_init__(self):
        if self.queries is None and self.seconds is None:
            raise UserError("a budget needs queries or seconds")
        if self.queries is not None and self.queries <= 0:
            raise UserError(f"budget must be positive, got {self.queries} queries")
        if self.seconds is not None and not (self.seconds > 0 and math.isfinite(self.seconds)):
            raise UserError(f"budget must be positive, got {self.seconds} seconds")

    @classmethod
    def parse(cls, text: str | int) -> "Budget":
        """``"100"`` -> 100 queries; ``"20000s"``, ``"90m"``, ``"5.5h"`` -> simulated seconds.

        Bounded like :func:`parse_budget` (at most
        :data:`~nascore.validate.MAX_QUERIES` queries or :data:`~nascore.validate.MAX_BUDGET_SECONDS`
        seconds); a non-finite or overflowing number (``1e999``) is a one-line UserError."""
        s = str(text).strip().lower()
        m = re.fullmatch(r"([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*(s|m|h)?", s)
        if not m:
            raise UserError(f"--budget: cannot read {text!r} (use a query count like 100, or seconds like 20000s / 6h)")
        value, unit = float(m.group(1)), m.group(2)
        if not math.isfinite(value):  # "1e999": int(inf) would be an OverflowError
            raise UserError(f"--budget: {_short(text)} is not a finite number")
        if unit is None:
            if value != int(value):
                raise UserError(f"--budget: a query count must be a whole number, got {text!r}")
            if value > MAX_QUERIES:
                raise UserError(f"--budget: {_short(text)} is more than the {MAX_QUERIES:,} queries allowed")
            return cls(queries=int(value))
        seconds = value * {"s": 1, "m": 60, "h": 3600}[unit]
        if seconds > MAX_BUDGET_SECONDS:
            raise UserError(f"--budget: {_short(text)} is more than the {MAX_BUDGET_SECONDS:g} "
                            "simulated seconds allowed")
        return cls(seconds=seconds)

    def exhausted(self, queries: int, seconds: float) -> bool:
        return ((self.queries is not None and queries >= self.queries)
                or (self.seconds is not None and seconds >= self.seconds))

    def remaining_queries(self, queries: int) -> int | None:
        return None if self.queries is None else self.queries - queries

    def to_dict(self) -> dict:
        return {"queries": self.queries, "seconds": self.seconds}


def parse_budget(text: str | int) -> Budget:
    """``--budget`` text -> :class:`Budget`: ``"100"`` queries; ``"20000s"``,
    ``"90m"``, ``"5.5h"`` simulated seconds. At most :data:`MAX_QUERIES` queries or
    :data:`MAX_BUDGET_SECONDS` seconds; ``1e999`` and the like are one-line errors."""
    s = str(text)
    m = _BUDGET_NUMBER.match(s)
    try:
        value = float(m.group(1)) if m else 0.0
    except ValueError:  # not a number at all: Budget.parse says how to write one
        value = 0.0
    if not math.isfinite(value):
        raise UserError(f"--budget: {_short(s)} is not a finite number")
    if value > MAX_BUDGET_SECONDS:
        raise UserError(f"--budget: {_short(s)} is too large (at most {MAX_QUERIES:,} queries "
                        f"or {MAX_BUDGET_SECONDS:g} seconds)")
    budget = Budget.parse(text)
    if budget.queries is not None and budget.queries > MAX_QUERIES:
        raise UserError(f"--budget: {budget.queries} queries is more than the {MAX_QUERIES:,} allowed")
    if budget.seconds is not None and not budget.seconds <= MAX_BUDGET_SECONDS:
        raise UserError(f"--budget: {_short(s)} is more than the {MAX_BUDGET_SECONDS:g} simulated seconds allowed")
    return budget
