"""``nascore`` command line: each sub-command lives in its own module under nascore.commands.

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

COMMAND_MODULES: list[str] = [
    "nascore.commands.search",
    "nascore.commands.bench",
    "nascore.commands.egnas",
    "nascore.commands.darts",
    "nascore.commands.arch2vec",
]


def main(argv=None) -> int:
    return run_cli(build_parser("nascore", "Generic neural architecture search core.", COMMAND_MODULES), argv)


if __name__ == "__main__":
    sys.exit(main())
