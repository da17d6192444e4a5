"""Independent jobs spread over the ranks; every rank gets every result back, in job order.

Each job is seeded from its own description, so which rank runs it changes no number. A job that fails
on one rank fails the command on every rank with that rank's error (the same exception type, so a
``UserError`` still exits 2), once every rank has finished its share: no rank is left waiting.
"""

from __future__ import annotations

import heapq
import pickle
from collections.abc import Callable, Sequence
from typing import TypeVar

import torch.distributed as dist

from augmentor.core.errors import UserError
from augmentor.distributed.context import Context, alone, current

T = TypeVar("T")
R = TypeVar("R")


class RankFailed(RuntimeError):
    """Another rank's job failed with an exception that could not travel as itself."""


def assign(costs: Sequence[float], world_size: int) -> list[int]:
    """The rank of each job: longest job first onto the least loaded rank (ties: lowest rank).

    Deterministic, so every rank computes the same plan without talking to the others.
    """
    owners = [0] * len(costs)
    loads = [(0.0, rank) for rank in range(world_size)]
    for job in sorted(range(len(costs)), key=lambda j: (-costs[j], j)):
        load, rank = heapq.heappop(loads)
        owners[job] = rank
        heapq.heappush(loads, (load + costs[job], rank))
    return owners


def _portable(error: BaseException, rank: int) -> BaseException:
    """The error itself when it pickles (a UserError keeps its exit code 2), else its text."""
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:  # noqa: BLE001 - anything unpicklable travels as text
        return RankFailed(f"rank {rank}: {type(error).__name__}: {error}")


def run_jobs(
    jobs: Sequence[T],
    run: Callable[[T], R],
    *,
    costs: Sequence[float] | None = None,
    context: Context | None = None,
) -> list[R]:
    """``[run(job) for job in jobs]``, each job on one rank, the full list returned on every rank."""
    context = context or current()
    if not context.distributed:
        return [run(job) for job in jobs]
    owners = assign(list(costs) if costs is not None else [1.0] * len(jobs), context.world_size)
    mine: dict[int, R] = {}
    failure: BaseException | None = None
    for index, job in enumerate(jobs):
        if owners[index] != context.rank:
            continue
        try:
            with alone():  # the other ranks are running other jobs: no collective may wait for them
                mine[index] = run(job)
        except (Exception, KeyboardInterrupt) as error:  # noqa: BLE001 - re-raised below, on every rank
            failure = _portable(error, context.rank)
            break
    gathered: list[tuple[dict[int, R], BaseException | None]] = [({}, None)] * context.world_size
    dist.all_gather_object(gathered, (mine if failure is None else {}, failure))
    for rank, (_, error) in enumerate(gathered):
        if error is not None:
            if rank != context.rank and isinstance(error, UserError):
                error = UserError(f"{error.message} (on rank {rank})", error.details)
            error.every_rank = True  # type: ignore[attr-defined] - rank 0 reports it; the others stay quiet
            raise error
    results: dict[int, R] = {}
    for part, _ in gathered:
        results.update(part)
    return [results[index] for index in range(len(jobs))]
