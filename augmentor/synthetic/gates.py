"""Quality gates for synthetic images: keep-masks from a real-only classifier's confidence and from copy distance.

Both gates look at the real training images only, never at a test split. The confidence gate's classifier
is trained without label smoothing, so its softmax can approach 1 and a threshold such as 0.99 is reachable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from augmentor.core.errors import UserError
from augmentor.data.imageset import ImageSet
from augmentor.data.measures import nearest_real_distances

if TYPE_CHECKING:
    from augmentor.classifiers.classifier import Classifier

JUDGE_ARCH = "fast"
JUDGE_STEPS = 400


def train_judge(real: ImageSet, *, steps: int = JUDGE_STEPS, seed: int = 0, device: str = "auto") -> Classifier | None:
    """The ``fast`` classifier of ``real`` alone, trained for a fixed step budget without label smoothing.

    None when ``real`` has one class: every image's probability is then 1, there is nothing to learn.
    """
    if len(real.class_names) == 1:
        return None
    from augmentor.classifiers.train import TrainConfig, train_classifier

    config = TrainConfig(arch=JUDGE_ARCH, steps=steps, seed=seed, device=device, label_smoothing=0.0, evals=1)
    try:
        return train_classifier(real, config)
    except UserError as exc:
        raise UserError(f"--min-confidence needs a classifier of the real images: {exc.message}") from None


def judge_record(real: ImageSet, steps: int, seed: int) -> dict[str, Any]:
    """What a manifest records about ``train_judge(real, steps=steps, seed=seed)`` (0 steps for one class)."""
    trained = len(real.class_names) > 1
    return {
        "arch": JUDGE_ARCH,
        "steps": steps if trained else 0,
        "seed": seed,
        "label_smoothing": 0.0,
        "images": len(real),
    }


def label_confidence(judge: Classifier | None, images: ImageSet) -> np.ndarray:
    """The judge's softmax probability of each image's own label (float32, one per image; 1 without a judge)."""
    if judge is None or len(images) == 0:
        return np.ones(len(images), dtype=np.float32)
    if images.class_names != judge.class_names:
        raise ValueError("the images' classes differ from the judge's")
    import torch

    proba = judge.proba(images)
    return proba[torch.arange(len(images)), torch.tensor(images.labels)].numpy()


def confidence_mask(judge: Classifier | None, images: ImageSet, min_confidence: float) -> np.ndarray:
    """Keep an image when the judge gives its label a probability of at least ``min_confidence``."""
    return label_confidence(judge, images) >= min_confidence


def dedupe_mask(images: ImageSet, real: ImageSet, min_distance: float, device: str = "auto") -> np.ndarray:
    """Keep an image unless some real image is closer than ``min_distance`` (RMS pixel difference, 0..1)."""
    if len(images) == 0:
        return np.ones(0, dtype=bool)
    return nearest_real_distances(images.images, real.images, device) >= min_distance
