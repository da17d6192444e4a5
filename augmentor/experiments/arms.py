"""Arms of the gain experiment: the real subset plus synthetic images from zero or more sources.

An arm is written ``real``, ``classic``, ``classic:heavy`` or ``classic+vae``. Sources are pluggable:
``SOURCES`` maps a name to a factory, and every source makes images from the arm's real subset
only (the honesty rule: a generator never sees images outside that subset).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from augmentor.data.imageset import ImageSet
from augmentor.errors import UserError


class Source(Protocol):
    """Makes ``per_class`` synthetic images of every class from ``real`` (and nothing else)."""

    name: str

    def synthesize(self, real: ImageSet, per_class: int, seed: int, workers: int) -> ImageSet: ...


@dataclass(frozen=True)
class ClassicSource:
    """Albumentations copies of the real images, parents drawn evenly."""

    pipeline: str = "medium"

    @property
    def name(self) -> str:
        return "classic" if self.pipeline == "medium" else f"classic:{self.pipeline}"

    def synthesize(self, real: ImageSet, per_class: int, seed: int, workers: int) -> ImageSet:
        from augmentor.classic.expand import ClassicConfig, expand

        config = ClassicConfig(
            pipeline=self.pipeline, per_class=per_class, include_originals=False, seed=seed, workers=workers
        )
        return expand(real, config).augmented


# name → factory(argument after the colon, or None). The generative issue adds "vae" and "dcgan".
SOURCES: dict[str, Callable[[str | None], Source]] = {
    "classic": lambda arg: ClassicSource(arg or "medium"),
}


@dataclass(frozen=True)
class Arm:
    """One arm: its name as written and its synthetic sources (none for ``real``)."""

    name: str
    sources: tuple[Source, ...]

    def training_set(self, real: ImageSet, ratio: float, seed: int, workers: int = 1) -> ImageSet:
        """The real subset plus ``ratio`` synthetic images per real one, split evenly over the sources."""
        if not self.sources:
            return real
        per_class_real = int(np.bincount(real.labels).max())
        per_source = max(1, round(per_class_real * ratio / len(self.sources)))
        result = real
        for k, source in enumerate(self.sources):
            # Each source draws from its own seed stream, so adding a source leaves the others' images alone.
            synthetic = source.synthesize(real, per_source, seed * 1000 + k, workers)
            result = result.concat(synthetic)
        return result


def parse_arm(text: str) -> Arm:
    """``real`` | ``SOURCE[:ARG]`` | ``SOURCE[:ARG]+SOURCE[:ARG]…``."""
    text = text.strip()
    if text == "real":
        return Arm("real", ())
    sources = []
    for part in text.split("+"):
        name, _, arg = part.partition(":")
        if name not in SOURCES:
            known = ", ".join(["real", *SOURCES])
            raise UserError(f"--arms: unknown arm {part!r} in {text!r}; known: {known} (combine with +)")
        sources.append(SOURCES[name](arg or None))
    return Arm(text, tuple(sources))


def parse_arms(text: str) -> list[Arm]:
    """A comma-separated list of arms; ``real`` is always included (every difference is paired to it)."""
    arms = [parse_arm(t) for t in text.split(",") if t.strip()]
    names = [a.name for a in arms]
    if len(set(names)) != len(names):
        raise UserError(f"--arms {text!r} names an arm twice")
    if "real" not in names:
        arms.insert(0, Arm("real", ()))
    return arms
