"""A small process pool for per-image work (augmenting, PNG encoding) that keeps results in order."""

from __future__ import annotations

import multiprocessing
import signal
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from augmentor.core import threads

T = TypeVar("T")
R = TypeVar("R")

_worker_state: tuple[Callable[[Any, Any], Any], Any] | None = None


def default_workers() -> int:
    """Cores this process may use (at most 8: small images stop scaling beyond that).

    Under torchrun the node's ranks share its cores, so each takes its part of them.
    """
    return max(1, min(threads.node_share(), 8))


def _init_worker(fn: Callable[[Any, Any], Any], shared: Any, count: int) -> None:
    global _worker_state
    _worker_state = (fn, shared)
    # The workers share the cores: torch's and OpenCV's thread pools, forked along, take their part each.
    threads.set_in_worker(count)
    # The parent decides about interrupts; workers die with the pool.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _run_task(task: Any) -> Any:
    assert _worker_state is not None
    fn, shared = _worker_state
    return fn(shared, task)


def parallel_map(
    fn: Callable[[Any, T], R],
    shared: Any,
    tasks: Sequence[T],
    workers: int,
    on_result: Callable[[T, R], None] | None = None,
) -> list[R]:
    """``[fn(shared, t) for t in tasks]`` over ``workers`` processes, results in task order.

    ``shared`` reaches workers through fork without pickling where fork exists. Results never
    depend on the worker count: callers derive every random choice from the task itself.
    """
    results: list[R] = []
    if workers <= 1 or len(tasks) <= 1:
        for task in tasks:
            result = fn(shared, task)
            results.append(result)
            if on_result:
                on_result(task, result)
        return results
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    processes = min(workers, len(tasks))
    initargs = (fn, shared, threads.per_worker(processes))
    with context.Pool(processes, initializer=_init_worker, initargs=initargs) as pool:
        for task, result in zip(tasks, pool.imap(_run_task, tasks), strict=True):
            results.append(result)
            if on_result:
                on_result(task, result)
    return results
