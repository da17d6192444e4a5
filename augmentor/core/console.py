"""Rich output on stderr: progress bars, warnings and summary tables (stdout stays for results)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console


_silenced = {"on": False}
_quiet = {"on": False}  # --quiet: no progress bars or lines; warnings and errors still show


def set_quiet(on: bool) -> None:
    """``--quiet``: progress off (for scripts that read stderr for warnings only)."""
    _quiet["on"] = on


def silence() -> None:
    """A torchrun rank other than 0: nothing on stdout or stderr (rank 0 shows results, bars and
    warnings); ``rank_error`` still reaches the terminal for an error of this rank alone."""
    import os
    import sys

    _silenced["on"] = True
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the life of the process
    sys.stderr = open(os.devnull, "w")  # noqa: SIM115


def rank_error(line: str) -> None:
    """An error line from a silenced rank, on the real stderr, naming the rank."""
    import os
    import sys

    sys.__stderr__.write(f"rank {os.environ.get('RANK', '?')}: {line}\n")


@contextlib.contextmanager
def hushed() -> Iterator[None]:
    """No progress and no warnings within the block: work done for a measurement (a timing probe), not for
    the user to watch."""
    before = _silenced["on"]
    _silenced["on"] = True
    try:
        yield
    finally:
        _silenced["on"] = before


def silenced() -> bool:
    return _silenced["on"]


@cache
def stderr() -> Console:
    """The shared stderr console; created on first use so importing this module stays cheap."""
    import sys

    from rich.console import Console

    # Logs and CI capture stderr: give tables room there instead of rich's 80-column default.
    return Console(stderr=True, width=None if sys.stderr.isatty() else 120)


def warn(message: str) -> None:
    """Print a one-line warning on stderr."""
    if _silenced["on"]:
        return
    # soft_wrap: never break a long path across lines (stderr is often a log, not a terminal).
    with _WRITE_LOCK:  # not inside a progress line that a heartbeat thread is writing
        stderr().print(f"[yellow]warning:[/yellow] {message}", highlight=False, soft_wrap=True)


def note(message: str) -> None:
    """Print a one-line note on stderr: something the command did on its own that the user may want to know."""
    if _silenced["on"]:
        return
    with _WRITE_LOCK:
        stderr().print(f"note: {message}", highlight=False, soft_wrap=True, markup=False)


LOG_EVERY_SECONDS = 10.0  # a non-terminal stderr (nohup, CI, a pipe) gets one plain line at most this often


def _clock(seconds: float) -> str:
    minutes, second = divmod(int(seconds), 60)
    hours, minute = divmod(minutes, 60)
    return f"{hours}:{minute:02d}:{second:02d}" if hours else f"{minute}:{second:02d}"


class _LogLines:
    """Progress for a log: a line such as ``training fast: 120/500 (24%), 0:35 elapsed, ~1:51 left`` every
    LOG_EVERY_SECONDS, so a long job in a log is visibly alive; a short one prints nothing.

    A heartbeat thread writes the line when no step has ended within the interval: the gain study's steps
    are whole trainings of a minute or more, and a log silent that long reads as a hung job.
    """

    def __init__(self, description: str, total: int) -> None:
        import time

        self.description, self.total, self.done = description, total, 0
        self.started = self.last = time.monotonic()
        self._stopped = threading.Event()
        self._heartbeat = threading.Thread(target=self._beat, name="augmentor-progress", daemon=True)
        self._heartbeat.start()

    def advance(self, n: int = 1) -> None:
        with _WRITE_LOCK:
            self.done += n
            self._line(final=self.done >= self.total)

    def close(self) -> None:
        self._stopped.set()
        self._heartbeat.join()

    def _beat(self) -> None:
        # Wakes at least once a second, so a test that sets the interval to 0 gets its own lines only.
        while not self._stopped.wait(max(LOG_EVERY_SECONDS, 1.0)):
            with _WRITE_LOCK:
                self._line(final=False)

    def _line(self, final: bool) -> None:
        """Write the line when the interval has passed since the start and since the last line (or at
        the end of a job that ran past the interval)."""
        import sys
        import time

        now = time.monotonic()
        if now - self.started < LOG_EVERY_SECONDS or (now - self.last < LOG_EVERY_SECONDS and not final):
            return
        self.last = now
        done, total = self.done, self.total
        line = f"{self.description}: {done}/{total} ({100 * done // total}%), {_clock(now - self.started)} elapsed"
        if done >= total:
            line += ", done"
        elif done:
            line += f", ~{_clock((now - self.started) / done * (total - done))} left"
        sys.stderr.write(line + "\n")
        sys.stderr.flush()


def _hold_write_lock_across_fork() -> threading.Lock:
    """The lock every log line is written under, held while a process forks (classic's workers), so a child
    never starts with it, or stderr's own buffer lock, taken by a heartbeat thread it does not have."""
    import os

    lock = threading.Lock()
    os.register_at_fork(before=lock.acquire, after_in_parent=lock.release, after_in_child=lock.release)
    return lock


_WRITE_LOCK = _hold_write_lock_across_fork()


@contextlib.contextmanager
def progress(description: str, total: int) -> Iterator[Callable[[int], None]]:
    """A transient rich progress bar on stderr; yields ``advance(n)``.

    On a non-terminal stderr (pipes, CI, logs) a plain line every LOG_EVERY_SECONDS instead, whether or not a
    step ended (none for work shorter than that).
    """
    console = stderr()
    if total <= 0 or _silenced["on"] or _quiet["on"]:
        yield lambda n=1: None
        return
    if not console.is_terminal:
        lines = _LogLines(description, total)
        try:
            yield lines.advance
        finally:
            lines.close()
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n=1: bar.advance(task, n)
