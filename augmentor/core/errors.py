"""The one exception type that means "the user's input is wrong" (exit code 2)."""

from __future__ import annotations


class UserError(Exception):
    """Bad input or usage: a one-line message naming what, which file, and how to fix it.

    ``details`` are extra lines (for example a list of bad files) printed under the message.
    """

    def __init__(self, message: str, details: list[str] | None = None) -> None:
        # One line whatever it quotes: a file or key name from hostile input may hold a line break
        message = message.replace("\r", "\\r").replace("\n", "\\n")
        super().__init__(message)
        self.message = message
        self.details = list(details or [])

    def __str__(self) -> str:
        return self.message
