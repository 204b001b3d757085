"""Small helpers shared by the ``nascore`` and ``ecgnas`` command lines.

A command module exposes ``register(subparsers)`` which adds its sub-command and sets
``func=<callable(args) -> int | None>``. :func:`run` parses, dispatches, and turns a
:class:`~nascore.errors.UserError` into a one-line ``error: ...`` on stderr with exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from nascore.errors import UserError


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
    """``"0-49"`` -> 0..49, ``"1,3,5"`` -> [1, 3, 5], ``"7"`` -> [7]."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part[1:]:
                a, b = part.split("-", 1)
                lo, hi = int(a), int(b)
                if hi < lo:
                    raise ValueError
                seeds.extend(range(lo, hi + 1))
            else:
                seeds.append(int(part))
    except ValueError:
        raise UserError(f"--seeds: cannot read {text!r} (use e.g. 0-49 or 1,2,3)") from None
    if any(s < 0 for s in seeds):
        raise UserError(f"--seeds: seeds must be >= 0, got {text!r}")
    return sorted(set(seeds))
