"""Names from files that become folder names: a class name must be one plain folder inside the output."""

from __future__ import annotations

from augmentor.core.errors import UserError


def check_class_name(name: str, where: str) -> None:
    """Refuse a class name that could not be a single folder inside the output directory."""
    reason = None
    if not isinstance(name, str) or name == "":
        reason = "it is empty"
    elif name in (".", ".."):
        reason = f"'{name}' would leave the output folder"
    elif "\x00" in name:
        reason = "it contains a NUL byte"
    elif "/" in name or "\\" in name:
        reason = "it contains a path separator"
    elif name != name.strip():
        reason = "it starts or ends with white space"
    elif any(ord(ch) < 32 for ch in name):
        reason = "it contains a control character"
    if reason:
        raise UserError(
            f"{where}: class name {name!r} is refused because {reason}; rename the class to a plain folder name"
        )
