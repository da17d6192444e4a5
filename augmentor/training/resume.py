"""The one rule for what ``--resume`` may change: the budget and the device; every other setting is the run's."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

from augmentor.core.errors import UserError

RESUME_FREE = ("steps", "epochs", "device")  # the budget (the schedule is re-laid over it) and where it runs


def check_resume_flags(
    asked: Any, saved: dict[str, Any], default: Any, run: Path, flags: dict[str, str] | None = None
) -> None:
    """Refuse a setting given with --resume that differs from the run's own (it would be silently ignored).

    ``asked`` and ``default`` are config dataclasses (field names = flag names; ``flags`` maps the fields whose
    flag is spelt otherwise); a value left at its default cannot be told from one not given, so it passes."""
    for field in fields(asked):
        name = field.name
        value = getattr(asked, name)
        if name in RESUME_FREE or value == getattr(default, name) or value == saved.get(name, getattr(default, name)):
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
