"""Executors map an evaluator over the architectures a strategy asked for.

The run loop hands an executor a batch; the executor yields ``(position, Result)`` as each
evaluation finishes (in completion order), so every finished result is written to
``history.jsonl`` before the next one is awaited: a crash loses at most the evaluations still in
flight, and the run loop's replay puts results back in ask order.

* :class:`SerialExecutor` evaluates one architecture after another in this process.
* :class:`RayExecutor` runs each evaluation as a Ray task (``pip install -e ".[ray]"``), on the
  local machine's CPUs/GPUs or on a cluster (``address="auto"`` or ``ray://host:10001``). A task
  whose worker process dies is retried (``max_retries``); one that still fails raises, and the
  results that finished before it are already in the history.

>>> ex = SerialExecutor()
>>> [r for _, r in ex.map(lambda a: a * 2, [1, 2])]
[2, 4]
"""

from __future__ import annotations

from typing import Callable, Iterator, Sequence

from nascore.errors import UserError


class SerialExecutor:
    """Evaluate one architecture after another in this process."""

    name = "serial"

    def map(self, evaluator: Callable, archs: Sequence) -> Iterator[tuple[int, object]]:
        for k, arch in enumerate(archs):
            yield k, evaluator(arch)

    def close(self) -> None:
        pass


def _call(evaluator, arch):
    return evaluator(arch)


class RayExecutor:
    """Evaluate a batch in parallel as Ray tasks.

    ``address``: ``None`` starts (or joins) a local Ray instance with ``num_cpus`` CPUs;
    ``"auto"`` or a ``ray://`` URL joins a cluster. ``cpus_per_task`` / ``gpus_per_task`` are the
    resources each evaluation reserves. The evaluator is shipped to the workers once per batch
    (it must pickle).
    """

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None, cpus_per_task: float = 1,
                 gpus_per_task: float = 0, max_retries: int = 2):
        try:
            import ray
        except ImportError:
            raise UserError("the ray executor needs Ray: pip install -e \".[ray]\"") from None
        self.ray = ray
        if not ray.is_initialized():
            kw = {"include_dashboard": False, "log_to_driver": False, "ignore_reinit_error": True}
            if address is not None:
                ray.init(address=address, **kw)
            else:
                ray.init(num_cpus=num_cpus, **kw)
        self._remote = ray.remote(num_cpus=cpus_per_task, num_gpus=gpus_per_task, max_retries=max_retries)(_call)

    def map(self, evaluator: Callable, archs: Sequence) -> Iterator[tuple[int, object]]:
        if not archs:
            return
        ev_ref = self.ray.put(evaluator)
        pending = {self._remote.remote(ev_ref, a): k for k, a in enumerate(archs)}
        while pending:
            done, _ = self.ray.wait(list(pending), num_returns=1)
            for ref in done:
                yield pending.pop(ref), self.ray.get(ref)

    def close(self) -> None:
        if self.ray.is_initialized():
            self.ray.shutdown()


EXECUTORS = {"serial": SerialExecutor, "ray": RayExecutor}


def get_executor(name: str, **kwargs):
    if name not in EXECUTORS:
        raise UserError(f"unknown executor {name!r} (choose from: {', '.join(sorted(EXECUTORS))})")
    return EXECUTORS[name](**kwargs)
