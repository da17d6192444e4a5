"""Quality gates for synthetic images: keep-masks from a real-only classifier's confidence and from copy distance.

Both gates look at the real training images only, never at a test split. The confidence gate's classifier
is trained without label smoothing, so its softmax can approach 1 and a threshold such as 0.99 is reachable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from augmentor.core.errors import UserError
from augmentor.data.imageset import ImageSet

JUDGE_ARCH = "fast"
JUDGE_STEPS = 400
_BATCH = 1024


@dataclass
class Judge:
    """A classifier trained on the real images that scores synthetic ones (``model`` is None for one class)."""

    model: Any
    class_names: list[str]
    mean: list[float]
    std: list[float]
    device: str
    record: dict[str, Any]


def train_judge(real: ImageSet, *, steps: int = JUDGE_STEPS, seed: int = 0, device: str = "auto") -> Judge:
    """Train the ``fast`` classifier on ``real`` alone for a fixed step budget (no label smoothing)."""
    record = {"arch": JUDGE_ARCH, "steps": steps, "seed": seed, "label_smoothing": 0.0, "images": len(real)}
    if len(real.class_names) == 1:
        # With one class every image's probability is 1: nothing to learn.
        return Judge(None, list(real.class_names), [], [], device, {**record, "steps": 0})
    from augmentor.classifiers.train import TrainConfig, train_classifier

    config = TrainConfig(arch=JUDGE_ARCH, steps=steps, seed=seed, device=device, label_smoothing=0.0, evals=1)
    try:
        result = train_classifier(real, config, show_progress=False)
    except UserError as exc:
        raise UserError(f"--min-confidence needs a classifier of the real images: {exc.message}") from None
    norm = result.config["normalisation"]
    return Judge(result.model, list(real.class_names), norm["mean"], norm["std"], device, record)


def label_confidence(judge: Judge, images: ImageSet) -> np.ndarray:
    """The judge's softmax probability of each image's own label (float32, one per image)."""
    if images.class_names != judge.class_names:
        raise ValueError("the images' classes differ from the judge's")
    if judge.model is None or len(images) == 0:
        return np.ones(len(images), dtype=np.float32)
    import torch

    from augmentor.core.device import normalise, resolve_device, to_device

    device = resolve_device(judge.device)
    model = judge.model.to(device).eval()
    mean = torch.tensor(judge.mean, device=device).view(-1, 1, 1)
    std = torch.tensor(judge.std, device=device).view(-1, 1, 1)
    pixels, labels = to_device(images, device)
    out = []
    with torch.inference_mode(), torch.autocast(device.type, torch.bfloat16, enabled=device.type == "cuda"):
        for start in range(0, len(pixels), _BATCH):
            batch = normalise(pixels[start : start + _BATCH], mean, std).contiguous(memory_format=torch.channels_last)
            probs = model(batch).float().softmax(1)
            out.append(probs.gather(1, labels[start : start + _BATCH, None])[:, 0].cpu())
    return torch.cat(out).numpy()


def confidence_mask(judge: Judge, images: ImageSet, min_confidence: float) -> np.ndarray:
    """Keep an image when the judge gives its label a probability of at least ``min_confidence``."""
    return label_confidence(judge, images) >= min_confidence


def dedupe_mask(images: ImageSet, real: ImageSet, min_distance: float, device: str = "auto") -> np.ndarray:
    """Keep an image unless some real image is closer than ``min_distance`` (RMS pixel difference, 0..1)."""
    from augmentor.metrics.quality import nearest_real_distances

    if len(images) == 0:
        return np.ones(0, dtype=bool)
    return nearest_real_distances(images.images, real.images, device) >= min_distance
