"""Rich output on stderr: progress bars, warnings and summary tables (stdout stays for results)."""

from __future__ import annotations

import contextlib
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
    stderr().print(f"[yellow]warning:[/yellow] {message}", highlight=False, soft_wrap=True)


LOG_EVERY_SECONDS = 30.0  # a non-terminal stderr (nohup, CI, a pipe) gets one plain line at most this often


def _clock(seconds: float) -> str:
    minutes, second = divmod(int(seconds), 60)
    hours, minute = divmod(minutes, 60)
    return f"{hours}:{minute:02d}:{second:02d}" if hours else f"{minute}:{second:02d}"


def _log_lines(description: str, total: int) -> Callable[[int], None]:
    """``advance(n)`` for a log: a line such as ``training fast: 120/500 (24%), 0:35 elapsed, ~1:51 left``
    every LOG_EVERY_SECONDS, so a long job in a log is visibly alive; a short one prints nothing."""
    import sys
    import time

    started = last = time.monotonic()
    done = 0

    def advance(n: int = 1) -> None:
        nonlocal done, last
        done += n
        now = time.monotonic()
        if (now - last < LOG_EVERY_SECONDS and done < total) or now - started < LOG_EVERY_SECONDS:
            return
        last = now
        left = (now - started) / max(done, 1) * (total - done)
        line = f"{description}: {done}/{total} ({100 * done // total}%), {_clock(now - started)} elapsed"
        sys.stderr.write(f"{line}, ~{_clock(left)} left\n" if done < total else f"{line}, done\n")
        sys.stderr.flush()

    return advance


@contextlib.contextmanager
def progress(description: str, total: int) -> Iterator[Callable[[int], None]]:
    """A transient rich progress bar on stderr; yields ``advance(n)``.

    On a non-terminal stderr (pipes, CI, logs) a plain line every LOG_EVERY_SECONDS instead (none for work
    shorter than that).
    """
    console = stderr()
    if total <= 0 or _silenced["on"] or _quiet["on"]:
        yield lambda n=1: None
        return
    if not console.is_terminal:
        yield _log_lines(description, total)
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
