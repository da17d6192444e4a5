"""How many augmented copies, and of which parents: ``--per-image K`` or ``--per-class N``."""

from __future__ import annotations

import numpy as np

from augmentor.core.errors import UserError


def per_image_parents(count: int, copies: int) -> np.ndarray:
    """Each image ``copies`` times, copies of one parent side by side."""
    if copies < 1:
        raise UserError(f"--per-image must be at least 1, got {copies}")
    return np.repeat(np.arange(count, dtype=np.int64), copies)


def per_class_parents(
    labels: np.ndarray, num_classes: int, target: int, include_originals: bool, rng: np.random.Generator
) -> np.ndarray:
    """Parents that bring every class to ``target`` images.

    Parents are drawn evenly: a shuffled pass over the class without replacement, then another
    pass, so no image gets a second copy before every image has one. With originals included a
    class that already holds ``target`` or more gets no copies (nothing is thrown away).
    """
    if target < 1:
        raise UserError(f"--per-class must be at least 1, got {target}")
    parents: list[np.ndarray] = []
    for label in range(num_classes):
        members = np.flatnonzero(labels == label)
        if len(members) == 0:
            continue
        need = target - len(members) if include_originals else target
        if need <= 0:
            continue
        passes = -(-need // len(members))
        draws = np.concatenate([rng.permutation(members) for _ in range(passes)])[:need]
        parents.append(draws)
    return np.concatenate(parents) if parents else np.zeros(0, dtype=np.int64)
