"""Stop requests during training: SIGTERM and Ctrl-C set a flag the loop reads between steps."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def stop_requests(active: bool = True) -> Iterator[dict[str, bool]]:
    """While ``active``: SIGINT / SIGTERM set ``flag["stop"]`` instead of killing the step in progress, so the
    loop saves a checkpoint and stops (the CLI's own handler would unwind at once and lose the run). Signal
    handlers can only be set from the main thread; elsewhere the flag never rises."""
    flag = {"stop": False}
    if not active or threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def request_stop(signum: int, frame: Any) -> None:
        flag["stop"] = True

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
