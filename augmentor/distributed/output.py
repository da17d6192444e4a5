"""One output folder written by every torchrun rank: shared staging, shares of the work, agreed failures.

A sharded command (``sample``, ``expand``, ``classic``, and any ``write_imagefolder``) splits ordered tasks
into one contiguous share per rank, gathers the results on every rank in task order, and writes into ONE
staging folder that rank 0 made; rank 0 alone writes the manifest and renames the folder to ``--out``.
Each task's result depends only on the task, so the output is the single-process output byte for byte.
A failure on any rank is raised on every rank and rank 0 removes the staging folder: ``--out`` is either
complete or untouched. Without torchrun each helper is the plain single-process step.
"""

from __future__ import annotations

import contextlib
import itertools
import shutil
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

from augmentor.core.outdir import open_staging, publish, staged_output
from augmentor.distributed.context import Context, current

T = TypeVar("T")
R = TypeVar("R")


def _context() -> Context:
    """``current()``, without importing torch where no process group can exist (the data commands need none)."""
    return current() if "torch" in sys.modules else Context()


def is_main() -> bool:
    """True where results are written alone: rank 0, or the one process."""
    return _context().is_main


def shares(tasks: Sequence[T], parts: int) -> list[list[T]]:
    """``tasks`` cut into ``parts`` contiguous runs of near-equal length (earlier runs take the rest)."""
    base, extra = divmod(len(tasks), parts)
    cuts = [0]
    for part in range(parts):
        cuts.append(cuts[-1] + base + (part < extra))
    return [list(tasks[a:b]) for a, b in itertools.pairwise(cuts)]


def spread(jobs: Sequence[T], run: Callable[[T], R], *, costs: Sequence[float] | None = None) -> list[R]:
    """``run_jobs``: each job on one rank, every result on every rank (torch stays unimported in one process)."""
    context = _context()
    if not context.distributed:
        return [run(job) for job in jobs]
    from augmentor.distributed.jobs import run_jobs  # imports torch.distributed

    return run_jobs(jobs, run, costs=costs, context=context)


def run_shares(tasks: Sequence[T], run: Callable[[list[T]], R]) -> list[R]:
    """``run`` on each rank's contiguous share of ``tasks``: every rank gets every share's result, in order.

    In one process (or inside another rank's job) that is ``[run(all tasks)]``, exactly as before sharding.
    """
    context = _context()
    if not context.distributed:
        return [run(list(tasks))]
    from augmentor.distributed.jobs import run_jobs  # imports torch.distributed

    # Equal costs put share r on rank r.
    return run_jobs(shares(tasks, context.world_size), run, context=context)


def on_every_rank(step: Callable[[], T]) -> T:
    """``step()`` on every rank (each keeps its own result); a failure on any rank is raised on all of them,
    so a bad input found by every rank is reported once, by rank 0, and no rank waits for a dead one."""
    context = _context()
    if not context.distributed:
        return step()
    from augmentor.distributed.jobs import run_jobs

    kept: list[T] = []
    # One job per rank (equal costs put job r on rank r); results stay local, only failures travel.
    run_jobs(list(range(context.world_size)), lambda _: kept.append(step()), context=context)
    return kept[0]


@contextlib.contextmanager
def shared_staging(out: Path, overwrite: bool) -> Iterator[Path]:
    """``staged_output`` for every rank at once: one staging folder, which becomes ``out`` when every rank's
    share is in it, or is removed when any rank failed (that failure is then raised on every rank)."""
    context = _context()
    if not context.distributed:
        with staged_output(out, overwrite) as staging:
            yield staging
        return
    from augmentor.distributed.jobs import run_jobs

    # Staging names carry a pid and the ranks' pids differ: rank 0 makes it and tells the others.
    staging = run_jobs([out], lambda path: open_staging(path, overwrite), context=context)[0]
    try:
        try:
            yield staging
        except Exception as error:  # noqa: BLE001 - agreed on below, then re-raised on every rank
            failure: Exception | None = error
        else:
            failure = None
        try:
            on_every_rank(lambda: _reraise(failure))
        except Exception:
            if failure is None:
                raise
            failure.every_rank = True  # type: ignore[attr-defined] - rank 0 reports; keep this rank's traceback
            raise failure from None
        run_jobs([staging], lambda path: publish(path, out, overwrite), context=context)
    except BaseException:
        if context.is_main:
            shutil.rmtree(staging, ignore_errors=True)
        raise


def _reraise(failure: Exception | None) -> None:
    if failure is not None:
        raise failure
