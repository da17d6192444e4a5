"""Memorisation (nearest real image) and classification accuracy score (diversity: ``data.measures``).

Memorisation is measured in pixel space, not in classifier features: a copy is a copy whatever a
classifier thinks of it, and pixel distance needs no model. The distance is the RMS difference per pixel
on the 0..1 scale, ‖a − b‖₂ / √(C·H·W), so a threshold ``d`` reads the same at any image size: on
Fashion-MNIST the nearest train image of a real test image is at 0.03–0.15 (0.5 % of them under 0.05).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from augmentor.data.imageset import ImageSet

DEFAULT_MEMORISATION_THRESHOLD = 0.04
_QUERY_BATCH = 1024
_POOL_BATCH = 8192


def nearest_real_distances(
    generated: np.ndarray, real: np.ndarray, device: Any = "auto", batch_size: int = _QUERY_BATCH
) -> np.ndarray:
    """For every generated image, the RMS-per-pixel distance (0..1) to its nearest ``real`` image."""
    import torch

    from augmentor.core.device import resolve_device

    if generated.shape[1:] != real.shape[1:]:
        raise ValueError(f"image shapes differ: {generated.shape[1:]} vs {real.shape[1:]}")
    if len(real) == 0:
        return np.full(len(generated), np.inf, dtype=np.float32)
    device = resolve_device(device) if isinstance(device, str) else torch.device(device)
    pixels = math.prod(real.shape[1:])
    # The pool is moved to the device once, as uint8 (a quarter of float32), and scaled chunk by chunk;
    # IDX data is a read-only view of the file, which torch will not wrap.
    flat = np.ascontiguousarray(real).reshape(len(real), -1)
    pool = torch.from_numpy(flat if flat.flags.writeable else flat.copy()).to(device)
    best = torch.empty(len(generated), dtype=torch.float32)
    with torch.inference_mode():
        for start in range(0, len(generated), batch_size):
            query = torch.from_numpy(np.array(generated[start : start + batch_size]).reshape(-1, pixels))
            query = query.to(device).float().div_(255)
            nearest = torch.full((len(query),), math.inf, device=device)
            for first in range(0, len(pool), _POOL_BATCH):
                chunk = pool[first : first + _POOL_BATCH].float().div_(255)
                # cdist takes the matmul route here: float32 rounding leaves exact copies at ~1e-4, not 0.
                nearest = torch.minimum(nearest, torch.cdist(query, chunk).amin(dim=1))
            best[start : start + len(query)] = nearest.cpu()
    return (best / math.sqrt(pixels)).numpy()


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
    from augmentor.classifiers.evaluate import align_classes
    from augmentor.classifiers.train import TrainConfig, train_classifier

    align_classes(train.class_names, test)  # differing classes fail here, before any training
    config = TrainConfig(arch=arch, steps=steps, batch_size=batch_size, seed=seed, device=device, evals=1)
    # No test set during training: it would be evaluated twice (last step and final).
    return train_classifier(train, config).evaluate(test)["accuracy"]
