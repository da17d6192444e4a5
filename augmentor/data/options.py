"""Options shared by every command that reads a dataset (field names = CLI flag names)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from augmentor.core.env import FOLLOW_SYMLINKS_VARIABLE, env_flag
from augmentor.core.errors import UserError
from augmentor.core.limits import IMAGE_SIDE

CHANNELS = (1, 3)  # ImageSet holds grey or colour images, nothing else


def follows_symlinks() -> bool:
    """True when links out of a dataset folder are meant to be followed (refused by default)."""
    return env_flag(FOLLOW_SYMLINKS_VARIABLE)


def check_channels(channels: int | None, flag: str = "--channels") -> None:
    """Refuse a channel count other than 1 (grey) or 3 (colour)."""
    if channels is not None and channels not in CHANNELS:
        raise UserError(f"{flag} {channels} is not supported; use 1 (grey) or 3 (colour)")


@dataclass(frozen=True)
class ReadOptions:
    """How to read and (explicitly) convert a dataset."""

    data_dir: Path | None = None  # folder holding a built-in dataset's files (else $AUGMENTOR_DATA)
    image_size: tuple[int, int] | None = None  # (height, width) to resize to, explicitly
    channels: int | None = None  # 1 or 3 to convert to, explicitly
    skip_corrupt: bool = False  # go on past unreadable files and report them

    def __post_init__(self) -> None:
        """Refuse a conversion no reader can make, before any file is read."""
        check_channels(self.channels)

    def flags(self) -> list[str]:
        """The flags that read the data as these options do, for a message that asks for them again."""
        flags = []
        if self.data_dir is not None:
            flags += ["--data-dir", str(self.data_dir)]
        if self.image_size is not None:
            flags += ["--image-size", "x".join(map(str, self.image_size))]
        if self.channels is not None:
            flags += ["--channels", str(self.channels)]
        if self.skip_corrupt:
            flags.append("--skip-corrupt")
        return flags


def parse_image_size(text: str | None) -> tuple[int, int] | None:
    """'28' → (28, 28); '32x48' → (32, 48) as height × width."""
    if text is None or text == "":
        return None
    parts = text.lower().replace("×", "x").split("x")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(values) == 1:
        values = values * 2
    if len(values) != 2 or min(values) < 1:
        raise UserError(f"--image-size {text!r} is not a size; give N or HEIGHTxWIDTH, for example 28 or 32x48")
    if max(values) > IMAGE_SIDE.value():
        raise UserError(
            f"--image-size {text!r}: at most {IMAGE_SIDE.value()} pixels a side; these models are small "
            f"(or {IMAGE_SIDE.lift()})"
        )
    return values[0], values[1]
