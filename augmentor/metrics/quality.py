"""Memorisation (nearest real image) and classification accuracy score (diversity, distances: ``data.measures``).

Memorisation is measured in pixel space, not in classifier features: a copy is a copy whatever a
classifier thinks of it, and pixel distance needs no model. The threshold is on ``nearest_real_distances``'
RMS-per-pixel scale: on Fashion-MNIST the nearest train image of a real test image is at 0.03–0.15
(0.5 % of them under 0.05).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from augmentor.data.imageset import ImageSet
from augmentor.data.measures import nearest_real_distances

DEFAULT_MEMORISATION_THRESHOLD = 0.04


def memorisation_rate(
    generated: np.ndarray,
    real: np.ndarray,
    threshold: float = DEFAULT_MEMORISATION_THRESHOLD,
    device: Any = "auto",
) -> tuple[float, np.ndarray]:
    """Fraction of generated images closer than ``threshold`` to some real image, and all nearest distances."""
    distances = nearest_real_distances(generated, real, device)
    rate = float((distances < threshold).mean()) if len(distances) else 0.0
    return rate, distances


def classification_accuracy_score(
    train: ImageSet,
    test: ImageSet,
    *,
    steps: int = 300,
    seed: int = 0,
    device: str = "auto",
    arch: str = "fast",
    batch_size: int = 128,
) -> float:
    """Accuracy on ``test`` of a classifier trained on ``train`` alone for a fixed step budget (CAS)."""
    settings = {"steps": steps, "seed": seed, "device": device, "arch": arch, "batch_size": batch_size}
    return classification_accuracy_scores(train, [test], **settings)[0]


def classification_accuracy_scores(
    train: ImageSet,
    tests: list[ImageSet],
    *,
    steps: int = 300,
    seed: int = 0,
    device: str = "auto",
    arch: str = "fast",
    batch_size: int = 128,
) -> list[float]:
    """The CAS on each of ``tests`` of one classifier trained on ``train`` alone (one training, several reads)."""
    from augmentor.classifiers.evaluate import align_classes
    from augmentor.classifiers.train import TrainConfig, train_classifier

    for test in tests:
        align_classes(train.class_names, test)  # differing classes fail here, before any training
    config = TrainConfig(arch=arch, steps=steps, batch_size=batch_size, seed=seed, device=device, evals=1)
    # No test set during training: it would be evaluated twice (last step and final).
    classifier = train_classifier(train, config)
    return [classifier.evaluate(test)["accuracy"] for test in tests]
