"""Independent jobs spread over the ranks; every rank gets every result back, in job order.

Each job is seeded from its own description, so which rank runs it changes no number. A job that fails
on one rank fails the command on every rank with that rank's error (the same exception type, so a
``UserError`` still exits 2). The failing rank says so in torchrun's store at once, and every other rank
stops its job in progress within about a second (``_PeerWatch``) rather than finishing its whole share
first: no rank is left waiting, and none works on for nothing.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import pickle
import signal
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import torch.distributed as dist

from augmentor.core.errors import UserError
from augmentor.distributed.context import Context, alone, current, store_client

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


class _PeerStopped(BaseException):
    """Raised in this rank's job when another rank's job failed: this rank's work is then for nothing."""


_CALLS = itertools.count()  # run_jobs is collective: every rank numbers its calls alike, so keys match
POLL_SECONDS = 0.5


class _PeerWatch:
    """While this rank runs its jobs, a thread polls torchrun's store for another rank's failure and then
    interrupts the job in progress (SIGUSR1 to this process, whose handler raises ``_PeerStopped``).

    The store is the one torchrun's rendezvous (or rank 0) already serves at MASTER_ADDR:MASTER_PORT; each
    ``run_jobs`` call has its own key, so a failure is never read by a later call. Off the main thread (where
    no signal handler can be set) or without a store to reach, it does nothing and ranks meet at the gather.
    """

    def __init__(self, has_jobs: bool) -> None:
        self.key = f"augmentor/run_jobs/{next(_CALLS)}/failed"  # numbered on every rank, jobs or not
        self.fired = self.published = False
        self.store: Any = None
        self.previous: Any = None
        self.done = threading.Event()
        # The poll fires and close() stops it under one lock: a signal sent after close() could reach the
        # restored default disposition, which ends the process.
        self.lock = threading.Lock()
        if not has_jobs or threading.current_thread() is not threading.main_thread():
            return  # nothing of this rank's to stop, or no signal handler can be set from here
        if not hasattr(signal, "SIGUSR1"):
            return
        self.store = store_client()
        if self.store is None:  # no store to reach: the gather alone tells the ranks
            return
        self.previous = signal.signal(signal.SIGUSR1, self._raise)
        threading.Thread(target=self._poll, name="augmentor-peer-watch", daemon=True).start()

    def _raise(self, signum: int, frame: Any) -> None:
        if self.fired:  # ours; a SIGUSR1 from elsewhere (Slurm's --signal warning) is not a peer's failure
            raise _PeerStopped

    def _poll(self) -> None:
        while not self.done.wait(POLL_SECONDS):
            try:
                failed = self.store.check([self.key])
            except RuntimeError:  # the store went away (its host exited): the gather will say why
                return
            if failed and not self.published:
                with self.lock:
                    if not self.done.is_set():
                        self.fired = True
                        signal.pthread_kill(threading.main_thread().ident, signal.SIGUSR1)
                return

    def publish(self) -> None:
        """This rank's job failed: tell the others now (before the gather, which waits for all of them)."""
        self.published = True  # first, so this rank's own poll never takes the key for a peer's
        if self.store is not None:
            with contextlib.suppress(RuntimeError):  # the gather still tells the others
                self.store.set(self.key, str(os.environ.get("RANK", "?")))

    def close(self) -> None:
        """Stop polling (idempotent). A signal sent but not yet handled meets the previous handler, which
        Python skips when it is the default one."""
        with self.lock:
            self.done.set()
        if self.previous is not None:
            signal.signal(signal.SIGUSR1, self.previous)
            self.previous = None


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
    stopped = False  # this rank's job was cut short because another rank's failed
    watch = _PeerWatch(has_jobs=context.rank in owners)
    try:
        try:
            for index, job in enumerate(jobs):
                if owners[index] != context.rank:
                    continue
                try:
                    with alone():  # the other ranks are running other jobs: no collective may wait for them
                        mine[index] = run(job)
                except _PeerStopped:
                    raise
                except (Exception, KeyboardInterrupt) as error:  # noqa: BLE001 - re-raised below, on every rank
                    failure = _portable(error, context.rank)
                    watch.publish()
                    break
        finally:
            watch.close()
    except _PeerStopped:  # raised in a job, or (a signal in flight) just after one: the gather says whose
        watch.close()
        stopped = True
    gathered: list[tuple[dict[int, R], BaseException | None, bool]] = [({}, None, False)] * context.world_size
    dist.all_gather_object(gathered, (mine if failure is None and not stopped else {}, failure, stopped))
    for rank, (_, error, _) in enumerate(gathered):
        if error is not None:
            if rank != context.rank and isinstance(error, UserError):
                error = UserError(f"{error.message} (on rank {rank})", error.details)
            elif rank != context.rank and not isinstance(error, (KeyboardInterrupt, RankFailed)):
                error = RankFailed(f"{type(error).__name__}: {error} (on rank {rank})")
            error.every_rank = True  # type: ignore[attr-defined] - rank 0 reports it; the others stay quiet
            raise error
    if any(cut for _, _, cut in gathered):  # a peer saw a failure that no rank reports: cannot happen
        raise RankFailed("a rank stopped for another rank's failure, but no rank reported one")
    results: dict[int, R] = {}
    for part, _, _ in gathered:
        results.update(part)
    return [results[index] for index in range(len(jobs))]
