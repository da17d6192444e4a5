"""How many torch intra-op threads a command takes: its share of the cores, not all of them.

torch starts with one thread per core, and its OpenMP threads spin at every barrier: two such processes on a
2-core machine ran a training 17× slower than one, not 2×. A command therefore takes the cores of this process
(its CPU affinity), divided among the node's torchrun ranks (``LOCAL_WORLD_SIZE``), less the cores other
processes keep busy. Busy is measured from ``/proc``: the runnable threads of other processes on this
process's CPUs, each weighted by its niceness against ours (a ``nice 19`` job yields to us, so it costs us
almost nothing), the median of a few samples. Without ``/proc`` (not Linux) the share is the cores.

A count the user fixes wins and never changes: ``--threads N``, else ``AUGMENTOR_THREADS=N``, else an
explicit ``OMP_NUM_THREADS`` (which torch has already applied: it is left alone). The CLI takes charge
(``in_charge``) for each command; the library alone never changes the caller's thread count. During
training (``training.loop.fit``) the share is looked at again every ``ADAPT_SECONDS``: down when others
became busy, up when they finished. The thread count changes the last bits of CPU float results, so runs
whose bits must repeat pin the count (tests do, through ``OMP_NUM_THREADS``); on an idle machine the share
is every core from start to end, as before.
"""

from __future__ import annotations

import contextlib
import math
import os
import statistics
import sys
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

from augmentor.core.errors import UserError

THREADS_VARIABLE = "AUGMENTOR_THREADS"
SAMPLES = 5  # at the start of a command: the median of this many samples ...
SAMPLE_GAP = 0.008  # ... this many seconds apart (about 40 ms in all)
SAMPLE_SECONDS = 1.0  # during training: one sample at most this often (no sleeping in the loop) ...
ADAPT_SECONDS = 3.0  # ... and a decision at most this often, on the median of the last WINDOW samples
WINDOW = 3
MAX_SCAN = 4000  # more processes than this: the runnable count of /proc/stat instead of a walk over them


@dataclass(frozen=True)
class Pin:
    """A thread count the user fixed, and where (``--threads``, ``AUGMENTOR_THREADS``, ``OMP_NUM_THREADS``)."""

    count: int
    source: str


def cores() -> int:
    """The cores this process may run on (its affinity; the machine's where affinity is unknown)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def local_ranks() -> int:
    """torchrun's ranks on this node (1 without torchrun)."""
    try:
        return max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    except ValueError:
        return 1


def node_share() -> int:
    """This process's part of the cores when the node's torchrun ranks share them alike."""
    return max(1, cores() // local_ranks())


def _count(text: str, where: str) -> int:
    """A thread count of at least 1 from ``text``, else a one-line error naming ``where``."""
    try:
        count = int(text.strip())
    except ValueError:
        count = 0
    if count < 1:
        raise UserError(f"{where}={text!r} is not a thread count; give a whole number of at least 1 (or unset it)")
    return count


def pinned(flag: int | None = None) -> Pin | None:
    """The count the user fixed: ``--threads`` (``flag``), else ``AUGMENTOR_THREADS``, else ``OMP_NUM_THREADS``.

    A bad ``AUGMENTOR_THREADS`` is a ``UserError``; an ``OMP_NUM_THREADS`` that is no count is torch's to
    judge (it warns and ignores it), so it is no pin here either.
    """
    if flag is not None:
        return Pin(_count(str(flag), "--threads"), "--threads")
    text = os.environ.get(THREADS_VARIABLE, "")
    if text.strip():
        return Pin(_count(text, THREADS_VARIABLE), THREADS_VARIABLE)
    with contextlib.suppress(UserError):
        return Pin(_count(os.environ.get("OMP_NUM_THREADS", ""), "OMP_NUM_THREADS"), "OMP_NUM_THREADS")
    return None


# --- how busy the other processes keep this process's cores ----------------------------------------------


def _fields(stat: bytes) -> list[bytes]:
    """The fields of a /proc stat line after the command name (which may hold spaces and parentheses):
    [0] is the state (field 3 of proc(5)), [16] the niceness (19), [36] the CPU it last ran on (39)."""
    return stat[stat.rfind(b")") + 2 :].split()


def _read(path: str) -> bytes:
    with open(path, "rb") as file:
        return file.read()


def _own_running() -> int:
    """This process's threads that are running or ready to run."""
    running = 0
    for tid in os.listdir("/proc/self/task"):
        with contextlib.suppress(OSError, IndexError):
            running += _fields(_read(f"/proc/self/task/{tid}/stat"))[0] == b"R"
    return running


def _procs_running() -> int:
    """Threads running or ready to run on the whole machine (/proc/stat)."""
    for line in _read("/proc/stat").splitlines():
        if line.startswith(b"procs_running "):
            return int(line.split()[1])
    raise OSError("no procs_running in /proc/stat")


def _scan(cpus: set[int] | None) -> float:
    """Other processes' runnable threads on ``cpus``, each weighted by its niceness against ours (CFS gives a
    thread 1.25× the CPU of one a nice level lower: one 19 levels nicer takes about 1/70 of a core from us)."""
    me, mine = os.getpid(), os.nice(0) if hasattr(os, "nice") else 0
    busy = 0.0
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == me:
            continue
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:  # gone, or not ours to see
            continue
        for tid in tids:
            try:
                fields = _fields(_read(f"/proc/{pid}/task/{tid}/stat"))
                if fields[0] != b"R" or (cpus is not None and int(fields[36]) not in cpus):
                    continue
                busy += min(1.0, 1.25 ** (mine - int(fields[16])))
            except (OSError, IndexError, ValueError):
                continue
    return busy


def busy_sample() -> float | None:
    """One look at the cores other processes keep busy (a float: niceness weighs); None without /proc."""
    try:
        others = _procs_running() - _own_running()
        if others <= 0:  # the common idle case costs two small reads
            return 0.0
        with contextlib.suppress(OSError):
            if sum(name.isdigit() for name in os.listdir("/proc")) <= MAX_SCAN:
                try:
                    cpus: set[int] | None = set(os.sched_getaffinity(0))
                except AttributeError:
                    cpus = None
                return _scan(cpus)
        return float(others)
    except (OSError, ValueError):
        return None


def busy(samples: int = SAMPLES, gap: float = SAMPLE_GAP) -> float | None:
    """The median of ``samples`` looks ``gap`` seconds apart (a process starting or a shell command passes)."""
    seen = []
    for k in range(samples):
        if k:
            time.sleep(gap)
        sample = busy_sample()
        if sample is None:
            return None
        seen.append(sample)
    return statistics.median(seen)


def share(busy_cores: float | None, current: int | None = None) -> int:
    """The threads this process should run: its node share, less the cores others keep busy.

    Under torchrun the node's other ranks are among the busy: each is taken to run ``current`` threads (as this
    one does, running the same code), so only busyness beyond theirs shrinks the ranks' common share.
    """
    ranks, mine = local_ranks(), node_share()
    if busy_cores is None:
        return mine
    strangers = max(0.0, busy_cores - (ranks - 1) * (current or mine))
    # A core counts as taken from 3/4 busy up: beside a thread of weight w, two of ours still get 2/(1 + w)
    # cores' work against one's 1, and spinning at barriers eats the rest of the margin near w = 1.
    free = cores() - math.floor(strangers + 0.25)
    return max(1, min(mine, free // ranks))


def per_worker(workers: int) -> int:
    """Threads for each of ``workers`` pool processes: the node share divided among them (at least 1)."""
    return max(1, node_share() // max(1, workers))


def set_in_worker(count: int) -> None:
    """In a pool worker: torch's threads to ``count`` where the fork brought torch along. OpenCV's are left
    alone: ``cv2.setNumThreads`` in a forked child whose parent's OpenCV pool has run waits for ever in
    ``pthread_cond_destroy`` (seen in the test suite: a ``data export`` after albumentations ran in-process)."""
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(count)


# --- the CLI's charge: set at the first torch work, adapted during training, given back at the end ------


@dataclass
class _Charge:
    pin: Pin | None
    applied: bool = False
    before: int | None = None  # torch's count before the first change (given back when the command ends)
    samples: deque = field(default_factory=lambda: deque(maxlen=WINDOW))
    sampled_at: float = 0.0
    decided_at: float = 0.0
    changes: list[int] = field(default_factory=list)  # every count set, in order (for tests and benchmarks)


_charge: _Charge | None = None


@contextlib.contextmanager
def in_charge(flag: int | None = None) -> Iterator[None]:
    """While a CLI command runs: its torch thread count is this module's to set (``apply``, ``adapt``); torch's
    count from before is given back after it (which matters only to callers that stay, like tests)."""
    global _charge
    _charge = _Charge(pinned(flag))
    try:
        yield
    finally:
        charge, _charge = _charge, None
        if charge.before is not None and "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(charge.before)


def _set(charge: _Charge, count: int) -> None:
    import torch

    now = torch.get_num_threads()
    if count != now:
        if charge.before is None:
            charge.before = now
        torch.set_num_threads(count)
        charge.changes.append(count)


def apply() -> None:
    """At a command's first torch work (``core.device.resolve_device``): the pinned count, or the share now.
    Nothing outside a CLI command, and nothing after the first time."""
    charge = _charge
    if charge is None or charge.applied:
        return
    charge.applied = True
    if charge.pin is None:
        _set(charge, share(busy()))
    elif charge.pin.source != "OMP_NUM_THREADS":  # torch read OMP_NUM_THREADS itself when it started
        _set(charge, charge.pin.count)
    charge.sampled_at = charge.decided_at = time.monotonic()


def adapt() -> None:
    """Called at every training step: cheap unless due. A sample every ``SAMPLE_SECONDS``; every ``ADAPT_SECONDS``
    the share from the median of the last samples, set when it differs. Never when the count is pinned."""
    charge = _charge
    if charge is None:
        return
    if not charge.applied:
        apply()
        return
    if charge.pin is not None:
        return
    now = time.monotonic()
    if now - charge.sampled_at < SAMPLE_SECONDS:
        return
    charge.sampled_at = now
    sample = busy_sample()
    if sample is None:
        return
    charge.samples.append(sample)
    if now - charge.decided_at >= ADAPT_SECONDS and len(charge.samples) == WINDOW:
        import torch

        charge.decided_at = now
        _set(charge, share(statistics.median(charge.samples), torch.get_num_threads()))


def changes() -> list[int]:
    """The counts the command in progress has set so far (empty outside one)."""
    return list(_charge.changes) if _charge is not None else []
