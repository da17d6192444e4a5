"""ImageSet, the one in-memory data type every reader returns and every writer takes.

Images are a uint8 numpy array N×C×H×W (C is 1 or 3). numpy rather than torch keeps the data
commands free of torch's import cost; training wraps the array with ``torch.from_numpy`` (no copy).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# The manifest fields every item carries; readers fill ``source="real"`` and ``origin``.
# direction/strength (latent edits) and sigma (latent jitter) were packed into "pipeline" before format 2.
PROVENANCE_KEYS = (
    "source",
    "origin",
    "parent",
    "pipeline",
    "run_id",
    "seed",
    "latent_index",
    "direction",
    "strength",
    "sigma",
    "neighbour",  # latent extrapolation: the same-class image whose code the parent's moved away from
)
# Fields a manifest line carries only where they apply (so the lines of ordinary images stay as they were):
# the EXIF orientation a photo was turned upright by; a mixup/CutMix image's partner, its class and own share.
OPTIONAL_PROVENANCE_KEYS = ("exif_orientation", "mix_partner", "mix_partner_class", "mix_share")


def real_provenance(origin: str) -> dict[str, Any]:
    """Provenance of an image read from the user's data."""
    return {"source": "real", "origin": origin}


@dataclass(repr=False)
class ImageSet:
    """Labelled images: ``images`` uint8 N×C×H×W, ``labels`` int64 N, and per-item provenance."""

    images: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    provenance: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.images.dtype != np.uint8 or self.images.ndim != 4:
            raise ValueError(f"images must be uint8 N×C×H×W, got {self.images.dtype} {self.images.shape}")
        if self.images.shape[1] not in (1, 3):
            raise ValueError(f"images must have 1 or 3 channels, got {self.images.shape[1]}")
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if self.labels.shape != (len(self.images),):
            raise ValueError(f"labels shape {self.labels.shape} does not match {len(self.images)} images")
        if len(self.labels) and (self.labels.min() < 0 or self.labels.max() >= len(self.class_names)):
            raise ValueError("labels must index class_names")
        if not self.provenance:
            self.provenance = [{"source": "real", "origin": f"#{i}"} for i in range(len(self.images))]
        if len(self.provenance) != len(self.images):
            raise ValueError("provenance must have one entry per image")

    def __len__(self) -> int:
        return len(self.images)

    def __repr__(self) -> str:
        """One line (the dataclass default printed every pixel): size, shape, classes, sources."""
        sources = ", ".join(f"{k} {v:,}" for k, v in sorted(Counter(p["source"] for p in self.provenance).items()))
        names = ", ".join(self.class_names[:4]) + (", …" if len(self.class_names) > 4 else "")
        return (
            f"ImageSet({len(self):,} images, {self.channels}×{self.size[0]}×{self.size[1]}, "
            f"{len(self.class_names)} classes [{names}], {sources or 'no images'})"
        )

    @property
    def channels(self) -> int:
        return int(self.images.shape[1])

    @property
    def size(self) -> tuple[int, int]:
        """(height, width)."""
        return int(self.images.shape[2]), int(self.images.shape[3])

    def class_counts(self) -> dict[str, int]:
        """Images per class, every class listed (zero included), in class order."""
        counts = np.bincount(self.labels, minlength=len(self.class_names))
        return {name: int(n) for name, n in zip(self.class_names, counts, strict=True)}

    def source_counts(self) -> dict[str, dict[str, int]]:
        """Images per class and per provenance source (``real``, ``classic``, …)."""
        table: dict[str, Counter[str]] = {name: Counter() for name in self.class_names}
        for label, prov in zip(self.labels.tolist(), self.provenance, strict=True):
            table[self.class_names[label]][prov["source"]] += 1
        return {name: dict(sorted(c.items())) for name, c in table.items()}

    def take(self, indices: np.ndarray | list[int]) -> ImageSet:
        """The items at ``indices``, in that order."""
        idx = np.asarray(indices, dtype=np.int64)
        return ImageSet(
            images=self.images[idx],
            labels=self.labels[idx],
            class_names=list(self.class_names),
            provenance=[self.provenance[i] for i in idx.tolist()],
        )

    def concat(self, other: ImageSet) -> ImageSet:
        """This set followed by ``other`` (same classes, channels and size)."""
        if other.class_names != self.class_names:
            raise ValueError("cannot concatenate image sets with different classes")
        return ImageSet(
            images=np.concatenate([self.images, other.images]),
            labels=np.concatenate([self.labels, other.labels]),
            class_names=list(self.class_names),
            provenance=self.provenance + other.provenance,
        )


@dataclass(repr=False)
class Dataset:
    """A named collection of splits (``train`` always, ``test`` when the source has one)."""

    name: str
    splits: dict[str, ImageSet]
    kind: str
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason) with --skip-corrupt
    warnings: list[str] = field(default_factory=list)  # said on stderr when read; outputs record them

    @property
    def train(self) -> ImageSet:
        return self.splits["train"]

    @property
    def test(self) -> ImageSet | None:
        return self.splits.get("test")

    @property
    def class_names(self) -> list[str]:
        return self.train.class_names

    def __repr__(self) -> str:
        splits = ", ".join(f"{name} {len(split):,}" for name, split in self.splits.items())
        return f"Dataset({self.name!r}, {self.kind}, {splits}; {self.train!r})"


def fingerprint(image_set: ImageSet) -> str:
    """A sha256 over pixels, labels and class names: which exact images a model was trained on."""
    import hashlib

    digest = hashlib.sha256()
    digest.update(repr((image_set.images.shape, image_set.class_names)).encode())
    digest.update(np.ascontiguousarray(image_set.images).tobytes())
    digest.update(image_set.labels.astype(np.int64).tobytes())
    return digest.hexdigest()
