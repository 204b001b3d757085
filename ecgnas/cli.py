"""``ecgnas`` command line: each sub-command lives in its own module (``register(subparsers)``).

Exit status: 0 done; 2 bad input (one ``error:`` line naming the value or file,
:class:`nascore.errors.UserError`); 3 an operating-system error -- ``--output`` is a file, no
write permission, disk full, read-only file system, I/O error -- reported in one line naming the
path and the reason (:mod:`nascore.oserror`); finished work is kept and the same command resumes;
130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import sys

from nascore.cliutil import build_parser
from nascore.oserror import run_cli

# Modules that add a sub-command; keep this list in the order shown by ``ecgnas --help``.
COMMAND_MODULES: list[str] = [
    "ecgnas.data.prepare",
    "ecgnas.commands.train",
    "ecgnas.commands.evaluate",
    "ecgnas.commands.baseline",
    "ecgnas.commands.search",
    "ecgnas.commands.export",
]


def main(argv=None) -> int:
    parser = build_parser("ecgnas", "Neural architecture search for ECG arrhythmia classification.",
                          COMMAND_MODULES)
    return run_cli(parser, argv)


if __name__ == "__main__":
    sys.exit(main())
