"""Decoding one image file safely: an allow-list of formats, a pixel limit, no truncated reads."""

from __future__ import annotations

import struct
import warnings
import zlib
from pathlib import Path

import numpy as np

from augmentor.core.limits import IMAGE_PIXELS

# The extension decides the only format a file may be; a JPEG renamed .png is refused.
FORMAT_BY_EXTENSION = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".bmp": "BMP",
    ".gif": "GIF",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".webp": "WEBP",
}
IMAGE_EXTENSIONS = frozenset(FORMAT_BY_EXTENSION)
_GREY_MODES = {"1", "L", "LA", "I;16", "I;16L", "I;16B", "La"}


class BadImageFile(Exception):
    """A file that cannot be used as an image; the message says why."""


_EXIF_ORIENTATION = 0x0112  # the EXIF tag a camera sets instead of rotating the pixels


def decode_image(path: Path, channels: int | None = None) -> np.ndarray:
    """Read ``path`` into an H×W×C uint8 array (C = 1 for grey modes, 3 for colour).

    ``channels`` converts explicitly (1: luminance, 3: grey replicated); otherwise the file's
    own mode decides. Raises BadImageFile with a reason for anything unusable.
    """
    return read_image(path, channels)[0]


def read_image(path: Path, channels: int | None = None) -> tuple[np.ndarray, int]:
    """``decode_image``'s array and the EXIF orientation it applied (1: none), for the manifest."""
    from PIL import Image, UnidentifiedImageError

    expected = FORMAT_BY_EXTENSION.get(path.suffix.lower())
    if expected is None:
        allowed = ", ".join(sorted(IMAGE_EXTENSIONS))
        raise BadImageFile(f"not an image file (extension {path.suffix or 'none'!r}; allowed: {allowed})")
    try:
        if path.stat().st_size == 0:
            raise BadImageFile("empty file (0 bytes)")
        with warnings.catch_warnings():
            # PIL's own bomb guard at the same bound, so lifting ours lifts PIL's too
            Image.MAX_IMAGE_PIXELS = IMAGE_PIXELS.value()
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            try:
                image = Image.open(path, formats=[expected])
            except UnidentifiedImageError:
                raise BadImageFile(_misnamed_reason(path, expected)) from None
            with image:
                width, height = image.size
                if width * height > IMAGE_PIXELS.value():
                    raise BadImageFile(
                        f"{width}×{height} pixels exceeds the {IMAGE_PIXELS.value():,}-pixel limit "
                        f"(decompression-bomb guard; {IMAGE_PIXELS.lift()})"
                    )
                image.load()
                orientation = image.getexif().get(_EXIF_ORIENTATION, 1)
                if orientation != 1:  # a phone photo stores its pixels sideways
                    from PIL import ImageOps

                    # as every viewer shows it
                    return _to_array(ImageOps.exif_transpose(image), channels), int(orientation)
                return _to_array(image, channels), 1
    except BadImageFile:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise BadImageFile(f"decompression-bomb guard: {exc} ({IMAGE_PIXELS.lift()})") from None
    except (OSError, SyntaxError, ValueError, EOFError, zlib.error) as exc:
        raise BadImageFile(f"corrupt or truncated {expected} data ({exc})") from None
    except (AssertionError, IndexError, KeyError, TypeError, struct.error) as exc:
        # Pillow's decoders trust some chunks (a palette image without PLTE, an empty iCCP, a cut-off eXIf)
        # and fail with these instead of an OSError: the file is as corrupt as any other
        raise BadImageFile(f"corrupt {expected} data ({type(exc).__name__}: {exc})") from None


def _misnamed_reason(path: Path, expected: str) -> str:
    """Say what a file that is not ``expected`` really is, when PIL can tell."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as other:
            actual = other.format
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return f"not a valid {expected} file (unrecognised or corrupt data)"
    return (
        f"is a {actual} file with a {path.suffix} extension; rename it to match its format "
        "(formats are checked against the extension)"
    )


def _to_array(image, channels: int | None) -> np.ndarray:
    mode = image.mode
    if mode.startswith("I;16"):
        grey = (np.asarray(image, dtype=np.uint16) >> 8).astype(np.uint8)
        array = grey[:, :, None]
    elif mode in _GREY_MODES:
        array = np.asarray(image.convert("L"))[:, :, None]
    elif mode in ("I", "F"):
        raise BadImageFile(f"32-bit {mode} images are not supported; convert the file to 8-bit")
    else:
        array = np.asarray(image.convert("RGB"))
    return convert_channels(array, channels)


def convert_channels(array: np.ndarray, channels: int | None) -> np.ndarray:
    """Convert an H×W×C uint8 array to ``channels`` (None keeps it)."""
    if channels is None or array.shape[2] == channels:
        return np.ascontiguousarray(array)
    if channels == 3:
        return np.ascontiguousarray(np.repeat(array, 3, axis=2))
    # ITU-R 601-2 luma, the same weights PIL uses for convert("L").
    weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)
    grey = np.rint(array.astype(np.float32) @ weights)
    return np.clip(grey, 0, 255).astype(np.uint8)[:, :, None]


def resize(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize an H×W×C uint8 array to ``size`` = (height, width) with antialiased bilinear."""
    from PIL import Image

    if array.shape[:2] == size:
        return array
    height, width = size
    channels = array.shape[2]
    pil = Image.fromarray(array[:, :, 0] if channels == 1 else array)
    out = np.asarray(pil.resize((width, height), Image.Resampling.BILINEAR, reducing_gap=None))
    return out[:, :, None] if channels == 1 else out
