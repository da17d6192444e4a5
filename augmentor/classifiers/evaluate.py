"""Scoring a classifier: accuracy, per-class accuracy and the confusion matrix."""

from __future__ import annotations

from typing import Any

import torch

from augmentor.core.device import normalise

_EVAL_BATCH = 1024


@torch.no_grad()
def predict(model: torch.nn.Module, images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Predicted labels for uint8 images already on the model's device."""
    model.eval()
    cuda = images.device.type == "cuda"
    out = []
    for start in range(0, len(images), _EVAL_BATCH):
        inputs = normalise(images[start : start + _EVAL_BATCH], mean, std).contiguous(memory_format=torch.channels_last)
        with torch.autocast(images.device.type, dtype=torch.bfloat16, enabled=cuda):
            out.append(model(inputs).argmax(1))
    return torch.cat(out)


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


def evaluate_tensors(
    model: torch.nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    mean: torch.Tensor,
    std: torch.Tensor,
    num_classes: int,
) -> dict[str, Any]:
    """Scores of ``model`` on device-resident images and labels."""
    return confusion_scores(predict(model, images, mean, std), labels, num_classes)
