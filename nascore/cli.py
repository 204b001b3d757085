"""``nascore`` command line: each sub-command lives in its own module under nascore.commands."""

from __future__ import annotations

import sys

from nascore.cliutil import build_parser, run

COMMAND_MODULES: list[str] = [
    "nascore.commands.search",
    "nascore.commands.bench",
    "nascore.commands.egnas",
    "nascore.commands.darts",
    "nascore.commands.arch2vec",
]


def main(argv=None) -> int:
    return run(build_parser("nascore", "Generic neural architecture search core.", COMMAND_MODULES), argv)


if __name__ == "__main__":
    sys.exit(main())
