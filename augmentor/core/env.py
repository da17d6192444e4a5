"""Boolean environment variables, read one way everywhere: the usual spellings, anything else refused."""

from __future__ import annotations

import os

from augmentor.core.errors import UserError

# Set by the root flag --follow-symlinks (and inherited by torchrun ranks and worker processes).
FOLLOW_SYMLINKS_VARIABLE = "AUGMENTOR_FOLLOW_SYMLINKS"

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


def env_flag(variable: str) -> bool:
    """``variable`` as a switch: 1/true/yes/on turn it on; unset, empty, 0/false/no/off leave it off (any case).
    Anything else is refused: ``=flase`` silently meaning "on" (or "off") is how a switch misleads."""
    text = os.environ.get(variable, "").strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise UserError(f"{variable}={os.environ[variable]!r} is not a switch; set it to 1 or 0 (true/false, yes/no)")
