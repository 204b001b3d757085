"""Small helpers shared by the ``nascore`` and ``ecgnas`` command lines.

A command module exposes ``register(subparsers)`` which adds its sub-command and sets
``func=<callable(args) -> int | None>``. :func:`run` parses, dispatches, and turns a
:class:`~nascore.errors.UserError` into a one-line ``error: ...`` on stderr with exit code 2.

Command modules only parse; the checks they need live here and in :mod:`nascore.validate`:
:func:`parse_seeds`, :func:`parse_key_values` (``--param`` / ``--hparam``) and
:func:`check_options` (ranges of numeric options, e.g. ``--epochs``, ``--threads``, ``--lr``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import sys
from typing import Any, Mapping, Sequence

from nascore.errors import UserError
from nascore.validate import MAX_SEED, MAX_SEEDS, Bounds


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own errors: one line, exit 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser(prog: str, description: str, modules: Sequence[str]) -> argparse.ArgumentParser:
    parser = _Parser(prog=prog, description=description)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in modules:
        importlib.import_module(name).register(sub)
    return parser


def run(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> int:
    args = parser.parse_args(argv)
    try:
        rc = args.func(args)
    except UserError as e:
        print(f"{parser.prog}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted; finished evaluations are saved, run the same command to resume",
              file=sys.stderr)
        return 130
    return int(rc or 0)


def parse_seeds(text: str) -> list[int]:
    """``"0-49"`` -> 0..49, ``"1,3,5"`` -> [1, 3, 5], ``"7"`` -> [7]; sorted, without repeats.

    Each seed is in ``[0, MAX_SEED]`` and at most ``MAX_SEEDS`` are selected; a range is sized
    before it is expanded, so ``0-1000000000`` is a one-line error, not a ``MemoryError``.
    """
    seeds: set[int] = set()
    shown = text if len(text) <= 60 else text[:57] + "..."
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part[1:]:
                a, b = part.split("-", 1)
                lo, hi = int(a), int(b)
                if hi < lo:
                    raise ValueError
                bounds = (lo, hi)
            else:
                bounds = (int(part), int(part))
            if bounds[0] < 0 or bounds[1] > MAX_SEED:
                raise UserError(f"--seeds: seeds must be in 0..{MAX_SEED}, got {shown!r}")
            if bounds[1] - bounds[0] + 1 > MAX_SEEDS:  # sized before it is expanded
                raise UserError(f"--seeds: {shown!r} selects more than {MAX_SEEDS:,} seeds")
            seeds.update(range(bounds[0], bounds[1] + 1))
            if len(seeds) > MAX_SEEDS:
                raise UserError(f"--seeds: {shown!r} selects more than {MAX_SEEDS:,} seeds")
    except ValueError as e:
        if isinstance(e, UserError):
            raise
        raise UserError(f"--seeds: cannot read {shown!r} (use e.g. 0-49 or 1,2,3)") from None
    return sorted(seeds)


def _reject_constant(name: str):
    raise ValueError(name)  # NaN / Infinity are not JSON: the text stays a string


def _finite_float(text: str) -> float:
    v = float(text)
    if not math.isfinite(v):  # 1e999: a float too large is no number either
        raise ValueError(text)
    return v


def parse_key_values(items: Sequence[str] | None, option: str = "--param") -> dict[str, Any]:
    """``["population=20", "pretrain=false", "model=a.pt"]`` -> ``{"population": 20, "pretrain":
    False, "model": "a.pt"}``.

    Values are read as JSON (numbers, ``true``/``false``, ``null``, lists, objects); Python's
    ``True``/``False`` also work; anything else (including ``NaN``, ``Infinity`` and ``1e999``,
    which are no finite JSON numbers) stays a string, for the receiver to accept or refuse. A missing ``=``, an empty
    key, a key given twice or a value nested too deeply is a one-line :class:`UserError`.

    >>> parse_key_values(["depth=6", "use_rr=False", "name=x", 'p={"a": [1]}'])
    {'depth': 6, 'use_rr': False, 'name': 'x', 'p': {'a': [1]}}
    """
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UserError(f"{option}: expected KEY=VALUE, got {_short(item)}")
        if key in out:
            raise UserError(f"{option}: {key!r} is given twice")
        raw = raw.strip()
        if raw in ("True", "False"):
            val: Any = raw == "True"
        else:
            try:
                val = json.loads(raw, parse_constant=_reject_constant, parse_float=_finite_float)
            except RecursionError:
                raise UserError(f"{option}: the value of {key!r} is nested too deeply") from None
            except ValueError:
                val = raw
        out[key] = val
    return out


def add_multi_fidelity_options(p, fidelity_name: str) -> None:
    """``--multi-fidelity``, ``--rungs`` and ``--eta``, the same in both command lines
    (:mod:`nascore.multifidelity`); ``fidelity_name``: what the top rung replaces, for the help."""
    g = p.add_argument_group("multi-fidelity (asynchronous successive halving around the strategy)")
    g.add_argument("--multi-fidelity", action="store_true",
                   help="evaluate candidates on rungs of growing training epochs, promoting the top 1/eta of each "
                        "rung (ASHA); the budget then counts full-fidelity evaluations' worth of candidate-epochs")
    g.add_argument("--rungs", default=None, metavar="E1,E2,...",
                   help=f"epochs per rung, increasing; the last is the search fidelity (replaces {fidelity_name}; "
                        "default: a ladder of ratio eta ending at it)")
    g.add_argument("--eta", type=int, default=3, help="reduction factor: the top 1/eta of a rung is promoted (default 3)")


def multi_fidelity_args(args: argparse.Namespace) -> dict:
    """The keyword arguments of :func:`add_multi_fidelity_options`' options (a one-line error for
    ``--rungs`` / ``--eta`` without ``--multi-fidelity``)."""
    if not args.multi_fidelity:
        if args.rungs is not None or args.eta != 3:
            raise UserError("--rungs / --eta need --multi-fidelity")
        return {}
    return {"multi_fidelity": True, "rungs": args.rungs, "eta": args.eta}


def check_options(args: argparse.Namespace, bounds: Mapping[str, Bounds]) -> None:
    """Check numeric options after parsing: ``bounds`` maps an attribute of ``args`` (``"epochs"``)
    to its :class:`~nascore.validate.Bounds`; a value outside (or ``nan``/``inf``) is a one-line
    :class:`UserError` naming the option (``--epochs=0: expected an integer in [1, 100000]``).
    None (an option left at a None default) is not checked."""
    for name, b in bounds.items():
        value = getattr(args, name)
        if value is not None:
            b.check("--" + name.replace("_", "-"), value)


def _short(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")
