"""Decoding a list of image files into one ImageSet, with the checks that need all files at once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from augmentor.core.console import progress, warn
from augmentor.core.errors import UserError
from augmentor.core.limits import check_fits_memory, memory_budget
from augmentor.data.decode import BadImageFile, convert_channels, read_image, resize
from augmentor.data.imageset import ImageSet
from augmentor.data.options import ReadOptions

MAX_LISTED_BAD_FILES = 10


@dataclass(frozen=True)
class ImageFile:
    """One file to read: where it is, its class index, and the origin id the manifest records."""

    path: Path
    label: int
    origin: str


def decode_files(
    files: list[ImageFile],
    class_names: list[str],
    options: ReadOptions,
    provenance_by_origin: dict[str, dict] | None = None,
) -> tuple[ImageSet, list[tuple[str, str]]]:
    """Decode every file; returns the set and the (file, reason) pairs skipped.

    Every file is decoded before anything is returned, so bad input stops the command before it
    does any work. Without ``skip_corrupt``, any bad file is an error listing up to ten of them.
    """
    arrays: list[np.ndarray] = []
    kept: list[ImageFile] = []
    bad: list[tuple[str, str]] = []
    rotated: dict[str, int] = {}  # origin → the EXIF orientation applied, recorded in the provenance
    budget, decoded = memory_budget(), 0  # a folder of large images must stop before it fills memory
    with progress("reading images", len(files)) as advance:
        for item in files:
            try:
                array, orientation = read_image(item.path, options.channels)
                decoded += array.nbytes
                check_fits_memory(
                    decoded, f"{item.path}: the images read so far", "resize them or pass fewer images", budget
                )
                arrays.append(array)
                kept.append(item)
                if orientation != 1:
                    rotated[item.origin] = orientation
            except BadImageFile as exc:
                bad.append((str(item.path), str(exc)))
            advance(1)
    if bad and not options.skip_corrupt:
        listed = [f"{path}: {reason}" for path, reason in bad[:MAX_LISTED_BAD_FILES]]
        if len(bad) > MAX_LISTED_BAD_FILES:
            listed.append(f"… and {len(bad) - MAX_LISTED_BAD_FILES} more")
        raise UserError(
            f"{len(bad)} unreadable image file(s), first {bad[0][0]}; remove or fix them, "
            "or pass --skip-corrupt to go on without them",
            details=listed,
        )
    warn_skipped(bad)
    if not kept:
        raise UserError("no readable images were found; check the source path")
    arrays = _conform(arrays, kept, options)
    images = np.stack(arrays).transpose(0, 3, 1, 2)
    provenance = []
    for item in kept:
        # An augmentor output keeps the provenance its manifest recorded (origin traces the source).
        record = {"source": "real", "origin": item.origin}
        if provenance_by_origin and item.origin in provenance_by_origin:
            record.update(provenance_by_origin[item.origin])
        if item.origin in rotated:  # turned upright as viewers show it (PIL's ImageOps.exif_transpose)
            record["exif_orientation"] = rotated[item.origin]
        provenance.append(record)
    labels = np.array([item.label for item in kept], dtype=np.int64)
    return ImageSet(np.ascontiguousarray(images), labels, list(class_names), provenance), bad


def warn_skipped(bad: list[tuple[str, str]]) -> None:
    """The files --skip-corrupt left out, with their reasons (the first MAX_LISTED_BAD_FILES of them)."""
    if not bad:
        return
    warn(f"skipped {len(bad)} unreadable image file(s) (--skip-corrupt):")
    for path, reason in bad[:MAX_LISTED_BAD_FILES]:
        warn(f"  skipped {path}: {reason}")
    if len(bad) > MAX_LISTED_BAD_FILES:
        warn(f"  … and {len(bad) - MAX_LISTED_BAD_FILES} more")


def _conform(arrays: list[np.ndarray], files: list[ImageFile], options: ReadOptions) -> list[np.ndarray]:
    """Make every array one size and channel count, explicitly, or name two that differ."""
    if options.channels is None:
        first = {a.shape[2] for a in arrays[:1]}.pop()
        for array, item in zip(arrays, files, strict=True):
            if array.shape[2] != first:
                kinds = {1: "grey", 3: "colour"}
                raise UserError(
                    f"images mix grey and colour: {files[0].path} is {kinds[first]}, {item.path} is "
                    f"{kinds[array.shape[2]]}; pass --channels 1 or --channels 3 to convert explicitly"
                )
    else:
        arrays = [convert_channels(a, options.channels) for a in arrays]
    if options.image_size is not None:
        return [resize(a, options.image_size) for a in arrays]
    first_size = arrays[0].shape[:2]
    for array, item in zip(arrays, files, strict=True):
        if array.shape[:2] != first_size:
            h0, w0 = first_size
            h1, w1 = array.shape[:2]
            raise UserError(
                f"images differ in size: {files[0].path} is {h0}×{w0}, {item.path} is {h1}×{w1} "
                f"(height×width); pass --image-size {h0} (or HEIGHTxWIDTH) to resize explicitly"
            )
    return arrays


def conform_array(images: np.ndarray, options: ReadOptions) -> np.ndarray:
    """Apply explicit ``--channels`` / ``--image-size`` conversions to an N×C×H×W array."""
    if options.channels is None and options.image_size is None:
        return images
    hwc = images.transpose(0, 2, 3, 1)
    out = []
    for array in hwc:
        array = convert_channels(array, options.channels)
        if options.image_size is not None:
            array = resize(array, options.image_size)
        out.append(array)
    return np.ascontiguousarray(np.stack(out).transpose(0, 3, 1, 2))
