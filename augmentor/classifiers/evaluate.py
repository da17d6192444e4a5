"""Scoring predictions: class alignment by name, accuracy, per-class accuracy and the confusion matrix."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from augmentor.core.errors import UserError
from augmentor.data.imageset import ImageSet


def align_classes(class_names: list[str], test: ImageSet, owner: str = "training set") -> ImageSet:
    """``test`` relabelled onto ``class_names`` by name; differing class sets are an error."""
    if test.class_names == class_names:
        return test
    extra = sorted(set(test.class_names) - set(class_names))
    missing = sorted(set(class_names) - set(test.class_names))
    if extra or missing:
        raise UserError(
            f"the test set's classes differ from the {owner}'s (only in test: {extra or 'none'}; "
            f"only in the {owner}: {missing or 'none'}); evaluate on data with the same classes"
        )
    remap = np.array([class_names.index(n) for n in test.class_names])
    return ImageSet(test.images, remap[test.labels], list(class_names), test.provenance)


def confusion_scores(predicted: torch.Tensor, labels: torch.Tensor, num_classes: int) -> dict[str, Any]:
    """Accuracy, per-class accuracy (recall) and the confusion matrix (rows: true, columns: predicted)."""
    confusion = torch.bincount(labels * num_classes + predicted, minlength=num_classes**2)
    confusion = confusion.view(num_classes, num_classes).cpu()
    per_class = (confusion.diag() / confusion.sum(1).clamp_min(1)).tolist()
    return {
        "accuracy": float(confusion.diag().sum() / confusion.sum().clamp_min(1)),
        "per_class": per_class,
        "confusion": confusion.tolist(),
    }
