"""The one rule for what ``--resume`` may change: the budget and the device; every other setting is the run's."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from dataclasses import fields
from pathlib import Path
from typing import Any

from augmentor.core.errors import UserError

RESUME_FREE = ("steps", "epochs", "device")  # the budget (the schedule is re-laid over it) and where it runs

# The settings the user typed (set by the CLI, which knows): only those are checked against the run's. Without
# it (a library call), a value other than the config's default counts as given.
_GIVEN: ContextVar[frozenset[str] | None] = ContextVar("augmentor_given_flags", default=None)


@contextlib.contextmanager
def flags_given(names: Iterable[str]) -> Iterator[None]:
    """Within this block, ``names`` (config field names) are the settings the user gave on the command line:
    a flag's default that the CLI passes explicitly is not one the user asked for."""
    token = _GIVEN.set(frozenset(names))
    try:
        yield
    finally:
        _GIVEN.reset(token)


def was_given(name: str, value: Any, default: Any) -> bool:
    """Whether the setting ``name`` was asked for: typed on the command line, or (library calls) not the default."""
    given = _GIVEN.get()
    return name in given if given is not None else value != default


def check_resume_flags(
    asked: Any, saved: dict[str, Any], default: Any, run: Path, flags: dict[str, str] | None = None
) -> None:
    """Refuse a setting given with --resume that differs from the run's own (it would be silently ignored).

    ``asked`` and ``default`` are config dataclasses (field names = flag names; ``flags`` maps the fields whose
    flag is spelt otherwise). Only settings the user gave are checked (``flags_given``; for a library call, those
    not at their default), so the printed resume command, which gives none, always passes."""
    for field in fields(asked):
        name = field.name
        value = getattr(asked, name)
        if name in RESUME_FREE or not was_given(name, value, getattr(default, name)):
            continue
        if value == saved.get(name, getattr(default, name)):
            continue
        flag = (flags or {}).get(name, "--" + name.replace("_", "-"))
        given, own = (f"{flag} {value}", f"{saved.get(name)}") if not isinstance(value, bool) else (flag, "off")
        if isinstance(value, bool) and getattr(default, name) is True:  # a flag on by default is given as --no-X
            flag = "--no-" + flag.removeprefix("--")
            given, own = flag, "--" + name.replace("_", "-")
        raise UserError(
            f"{run}: --resume goes on with the run's own settings, and {given} differs from its {own}; "
            f"drop {flag} (only --steps, --epochs and --device may change) or start a new run"
        )
