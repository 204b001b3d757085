"""``ecgnas`` command line: each sub-command lives in its own module (``register(subparsers)``)."""

from __future__ import annotations

import sys

from nascore.cliutil import build_parser, run

# Modules that add a sub-command; keep this list in the order shown by ``ecgnas --help``.
COMMAND_MODULES: list[str] = [
    "ecgnas.data.prepare",
    "ecgnas.commands.train",
    "ecgnas.commands.evaluate",
    "ecgnas.commands.baseline",
    "ecgnas.commands.search",
]


def main(argv=None) -> int:
    parser = build_parser("ecgnas", "Neural architecture search for ECG arrhythmia classification.",
                          COMMAND_MODULES)
    return run(parser, argv)


if __name__ == "__main__":
    sys.exit(main())
