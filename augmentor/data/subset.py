"""Stratified low-data subsets of a train split, deterministic for a seed."""

from __future__ import annotations

import numpy as np

from augmentor.core.errors import UserError
from augmentor.data.imageset import Dataset, ImageSet


def stratified_indices(image_set: ImageSet, per_class: int, seed: int) -> np.ndarray:
    """``per_class`` indices of every class, drawn without replacement; sorted for stable output."""
    if per_class < 1:
        raise UserError(f"--per-class must be at least 1, got {per_class}")
    counts = image_set.class_counts()
    short = {name: n for name, n in counts.items() if n < per_class}
    if short:
        listed = ", ".join(f"{name!r} has {n}" for name, n in short.items())
        raise UserError(f"--per-class {per_class} is more than some classes hold ({listed}); lower --per-class")
    rng = np.random.default_rng(seed)
    chosen = []
    for label in range(len(image_set.class_names)):
        members = np.flatnonzero(image_set.labels == label)
        chosen.append(rng.choice(members, size=per_class, replace=False))
    return np.sort(np.concatenate(chosen))


def fold_indices(image_set: ImageSet, folds: int, fold: int, seed: int) -> np.ndarray:
    """Fold ``fold`` of ``folds`` disjoint stratified folds: every class's images shuffled with ``seed`` and cut
    into ``folds`` near-equal parts; the folds of one seed cover each image exactly once. Sorted."""
    if not 0 <= fold < folds:
        raise UserError(f"internal: fold {fold} of {folds}")
    rng = np.random.default_rng(seed)
    chosen = []
    for label in range(len(image_set.class_names)):
        members = rng.permutation(np.flatnonzero(image_set.labels == label))
        chosen.append(np.array_split(members, folds)[fold])
    return np.sort(np.concatenate(chosen))


def draw_subset(dataset: Dataset, per_class: int, seed: int) -> Dataset:
    """The train split cut to ``per_class`` images per class; other splits untouched."""
    splits = dict(dataset.splits)
    splits["train"] = dataset.train.take(stratified_indices(dataset.train, per_class, seed))
    return Dataset(name=dataset.name, splits=splits, kind=dataset.kind, skipped=dataset.skipped)


def split_fraction(image_set: ImageSet, fraction: float, seed: int) -> tuple[ImageSet, ImageSet]:
    """(rest, held out): ``fraction`` of every class held out (at least one image, and at least one left),
    drawn with ``seed``; stratified, so a small class is not left out of the held-out part."""
    if not 0 < fraction < 1:
        raise UserError(f"--val-fraction {fraction:g}: give a fraction between 0 and 1 (exclusive), e.g. 0.1")
    rng = np.random.default_rng(seed)
    held = []
    for label, name in enumerate(image_set.class_names):
        members = np.flatnonzero(image_set.labels == label)
        if len(members) < 2:
            raise UserError(
                f"--val-fraction: class {name!r} has {len(members)} image, too few to hold any out; add images"
            )
        count = min(len(members) - 1, max(1, round(fraction * len(members))))
        held.append(rng.choice(members, size=count, replace=False))
    out = np.sort(np.concatenate(held))
    rest = np.setdiff1d(np.arange(len(image_set)), out)
    return image_set.take(rest), image_set.take(out)
