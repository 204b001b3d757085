"""Executors map an evaluator over the architectures a strategy asked for.

The run loop hands an executor a batch; the executor yields ``(position, Result)`` as each
evaluation finishes, so every finished result is written to ``history.jsonl`` before the next
one is awaited (a crash loses at most the evaluations still in flight).

>>> ex = SerialExecutor()
>>> [r for _, r in ex.map(lambda a: a * 2, [1, 2])]
[2, 4]
"""

from __future__ import annotations

from typing import Callable, Iterator, Sequence


class SerialExecutor:
    """Evaluate one architecture after another in this process."""

    name = "serial"

    def map(self, evaluator: Callable, archs: Sequence) -> Iterator[tuple[int, object]]:
        for k, arch in enumerate(archs):
            yield k, evaluator(arch)

    def close(self) -> None:
        pass


EXECUTORS = {"serial": SerialExecutor}


def get_executor(name: str, **kwargs):
    from nascore.errors import UserError

    if name not in EXECUTORS:
        raise UserError(f"unknown executor {name!r} (choose from: {', '.join(sorted(EXECUTORS))})")
    return EXECUTORS[name](**kwargs)
