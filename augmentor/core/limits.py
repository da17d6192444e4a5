"""Resource caps: how much a few hundred bytes of input may ask of the machine, each liftable by a variable.

Every reader checks what a file *declares* (a header's shape, a config's width, a pipeline's size argument)
against these caps before it allocates, so a small hostile or careless file is refused in well under a
second instead of exhausting memory. The defaults sit far above any real dataset these models train on;
a user who really needs more sets ``AUGMENTOR_MAX_<NAME>`` (``2G``, ``500M``, ``4096`` …), and every
refusal names the variable to set. The README's "Reliability" section lists them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from augmentor.core.errors import UserError

_SUFFIXES = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


@dataclass(frozen=True)
class Cap:
    """One limit: its default, and the environment variable that replaces it."""

    name: str
    default: int
    unit: str
    why: str

    @property
    def variable(self) -> str:
        return f"AUGMENTOR_MAX_{self.name}"

    def value(self) -> int:
        """The cap in force: read at each check, so a variable set after import still counts."""
        text = os.environ.get(self.variable, "").strip()
        if not text:
            return self.default
        match = re.fullmatch(r"(\d+)\s*([KMGT]?)i?B?", text, flags=re.IGNORECASE)
        if match is None or int(match.group(1)) < 1:
            raise UserError(
                f"{self.variable}={text!r} is not a positive whole number; unset it or give e.g. "
                f"{self.default} (K, M, G suffixes allowed)"
            )
        return int(match.group(1)) * _SUFFIXES[match.group(2).upper()]

    def lift(self) -> str:
        """The end of a refusal: how to raise the cap when the input is genuine."""
        return f"set {self.variable} higher to lift the limit"


IMAGE_PIXELS = Cap("IMAGE_PIXELS", 1 << 26, "pixels", "one decoded image (decompression-bomb guard)")
IMAGE_SIDE = Cap("IMAGE_SIDE", 1024, "pixels", "a requested side: --image-size, a run folder's image_shape")
PIPELINE_BYTES = Cap("PIPELINE_BYTES", 1 << 20, "bytes", "a pipeline YAML/JSON file (A.save writes a few KB)")
PIPELINE_DEPTH = Cap("PIPELINE_DEPTH", 8, "levels", "Compose inside OneOf inside …: real pipelines nest 2-3")
PIPELINE_TRANSFORMS = Cap("PIPELINE_TRANSFORMS", 1000, "transforms", "transforms in one pipeline file")
PIPELINE_SIDE = Cap(
    "PIPELINE_SIDE", 4096, "pixels", "a size or distance argument in a pipeline (Resize, crops, padding, holes)"
)
PIPELINE_SIGMA = Cap("PIPELINE_SIGMA", 100, "pixels", "a pipeline's Gaussian sigma (blurs, ElasticTransform)")
PIPELINE_KERNEL = Cap("PIPELINE_KERNEL", 255, "pixels", "a pipeline's kernel size or radius, given or derived")
PIPELINE_SCALE = Cap("PIPELINE_SCALE", 16, "×", "a pipeline's scale factor (Affine, RandomScale, ZoomBlur)")
PIPELINE_COUNT = Cap("PIPELINE_COUNT", 10_000, "", "holes, grid cells, segments, patches, iterations in a transform")
PIPELINE_PROBE_SECONDS = Cap("PIPELINE_PROBE_SECONDS", 10, "seconds", "a pipeline file's trial run on one image")
PIPELINE_PROBE_MEMORY = Cap("PIPELINE_PROBE_MEMORY", 1 << 30, "bytes", "memory of that trial run")
ARRAY_BYTES = Cap("ARRAY_BYTES", 8 << 30, "bytes", "one IDX or npz array once inflated")
INFLATION = Cap("INFLATION", 200, "×", "declared data over its compressed size (gzip IDX, compressed npz)")
CLASSES = Cap("CLASSES", 100_000, "classes", "classes implied by labels without class names")
MODEL_WIDTH = Cap("MODEL_WIDTH", 4096, "channels", "a run config's width or latent size")
FRAMES = Cap("FRAMES", 1000, "frames", "interpolation frames (one row of pictures, one GIF)")
SEEDS = Cap("SEEDS", 100_000, "seeds", "seeds in one --seeds list (one image each)")
PARAMETERS = Cap("PARAMETERS", 200_000_000, "parameters", "a run's model, counted before allocation")
# Count flags: each checked before any work, so 10^8 of something is a refusal, not a multi-GB allocation.
GRID_IMAGES = Cap("GRID_IMAGES", 10_000, "images", "pictures in one grid PNG (edit's strengths × seeds)")
IMAGES_OUT = Cap("IMAGES_OUT", 10_000_000, "images", "images one command writes (sample, expand, classic)")
SCORE_IMAGES = Cap("SCORE_IMAGES", 200_000, "images", "images per side of score (FID papers use 50,000)")
CODES = Cap("CODES", 1_000_000, "codes", "latent codes directions fits (--n)")
DRAWS = Cap("DRAWS", 1_000, "draws", "paired draws of gain and study")
RESTARTS = Cap("RESTARTS", 256, "restarts", "random starting codes per image in project")
# Text files read (core.bounded): sizes checked before a byte is read.
JSON_BYTES = Cap("JSON_BYTES", 64 << 20, "bytes", "one JSON file: a run's config or state, a recipe, directions info")
JSONL_BYTES = Cap("JSONL_BYTES", 4 << 30, "bytes", "one JSON Lines file: manifest.jsonl, metrics.jsonl, runs.jsonl")
LINE_BYTES = Cap("LINE_BYTES", 1 << 20, "bytes", "one line of a JSON Lines file or of stdin")
STDIN_BYTES = Cap("STDIN_BYTES", 1 << 30, "bytes", "the image paths given on stdin")

CAPS = (
    IMAGE_PIXELS,
    IMAGE_SIDE,
    PIPELINE_BYTES,
    PIPELINE_DEPTH,
    PIPELINE_TRANSFORMS,
    PIPELINE_SIDE,
    PIPELINE_SIGMA,
    PIPELINE_KERNEL,
    PIPELINE_SCALE,
    PIPELINE_COUNT,
    PIPELINE_PROBE_SECONDS,
    PIPELINE_PROBE_MEMORY,
    ARRAY_BYTES,
    INFLATION,
    CLASSES,
    MODEL_WIDTH,
    FRAMES,
    SEEDS,
    PARAMETERS,
    GRID_IMAGES,
    IMAGES_OUT,
    SCORE_IMAGES,
    CODES,
    DRAWS,
    RESTARTS,
    JSON_BYTES,
    JSONL_BYTES,
    LINE_BYTES,
    STDIN_BYTES,
)


def check_count(flag: str, value: int | None, cap: Cap) -> None:
    """Refuse a count flag above its cap, before any work: one line naming the flag, the cap and the variable."""
    if value is not None and value > cap.value():
        raise UserError(f"{flag} {value:,}: at most {cap.value():,} {cap.unit} ({cap.why}); or {cap.lift()}")


def available_memory() -> int | None:
    """Bytes the kernel says can be allocated without swapping (``MemAvailable``); None where unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def memory_budget() -> int | None:
    """Bytes decoded data may take: the memory available now, or None (no check) where that is unknown or
    the user set ``AUGMENTOR_MAX_ARRAY_BYTES`` (they said how much they mean)."""
    return None if os.environ.get(ARRAY_BYTES.variable) else available_memory()


def check_fits_memory(declared: int, what: str, fix: str, budget: int | None) -> None:
    """Refuse data whose declared size exceeds ``budget`` (``memory_budget()``: None checks nothing), before
    it is inflated or decoded."""
    if budget is not None and declared > budget:
        raise UserError(
            f"{what} need {human_bytes(declared)} once decoded but {human_bytes(budget)} of memory is available; "
            f"{fix} (or {ARRAY_BYTES.lift()})"
        )


def human_bytes(count: int) -> str:
    """``1.5 GiB``, ``12.0 MiB``, ``900 bytes``: sizes in messages a reader takes in at a glance."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count} bytes"
