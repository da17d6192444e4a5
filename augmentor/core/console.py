"""Rich output on stderr: progress bars, warnings and summary tables (stdout stays for results)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console


@cache
def stderr() -> Console:
    """The shared stderr console; created on first use so importing this module stays cheap."""
    import sys

    from rich.console import Console

    # Logs and CI capture stderr: give tables room there instead of rich's 80-column default.
    return Console(stderr=True, width=None if sys.stderr.isatty() else 120)


def warn(message: str) -> None:
    """Print a one-line warning on stderr."""
    # soft_wrap: never break a long path across lines (stderr is often a log, not a terminal).
    stderr().print(f"[yellow]warning:[/yellow] {message}", highlight=False, soft_wrap=True)


@contextlib.contextmanager
def progress(description: str, total: int) -> Iterator[Callable[[int], None]]:
    """A transient rich progress bar on stderr; yields ``advance(n)``.

    On a non-terminal stderr (pipes, CI, tests) rich draws nothing, so the bar costs nothing there.
    """
    console = stderr()
    if not console.is_terminal or total <= 0:
        yield lambda n=1: None
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
