"""Measures on uint8 C×H×W images: SSIM, mean pairwise SSIM (diversity), pixel MSE, nearest-image distance.

One implementation each, shared by training (collapse warnings), inversion (reconstruction quality), the
quality gates (dedupe) and the metrics (diversity and memorisation of generated images beside real ones).
The nearest-image distance is the RMS difference per pixel on the 0..1 scale, ‖a − b‖₂ / √(C·H·W), so a
threshold reads the same at any image size.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from augmentor.data.imageset import ImageSet

DIVERSITY_SAMPLE = 64
_QUERY_BATCH = 1024
_POOL_BATCH = 8192


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """scikit-image's structural similarity of two uint8 C×H×W images (window shrunk for tiny images)."""
    from skimage.metrics import structural_similarity

    side = min(a.shape[1:])
    win_size = min(7, side if side % 2 else side - 1)
    if a.shape[0] == 1:
        return float(structural_similarity(a[0], b[0], data_range=255, win_size=win_size))
    return float(structural_similarity(a, b, data_range=255, win_size=win_size, channel_axis=0))


def mean_pairwise_ssim(images: np.ndarray, limit: int = 24) -> float:
    """Mean SSIM over all pairs of the first ``limit`` uint8 N×C×H×W images: high means little diversity."""
    picked = images[:limit]
    scores = [ssim(picked[i], picked[j]) for i in range(len(picked)) for j in range(i + 1, len(picked))]
    return float(np.mean(scores)) if scores else 0.0


def diversity(images: np.ndarray, sample: int = DIVERSITY_SAMPLE, seed: int = 0) -> float:
    """Mean SSIM over all pairs of a seeded sample of uint8 N×C×H×W images (lower: more varied)."""
    picked = np.random.default_rng(seed).permutation(len(images))[:sample]
    return mean_pairwise_ssim(images[np.sort(picked)], limit=sample)


def mse(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared difference of two uint8 images on the 0..1 scale."""
    return float(np.mean((a.astype(np.float64) / 255 - b.astype(np.float64) / 255) ** 2))


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


# A class is flip-sensitive when its mean image and that image's mirror differ by MIRROR_THRESHOLD of the mean
# image's own contrast, and by MIRROR_SIGNAL times the difference between the means of its two halves (so a
# mean of few, randomly placed images does not count as asymmetric). Measured (contrast share, signal/noise):
# Fashion-MNIST's Sandal 0.91/8.0, Sneaker 0.48/9.5, Ankle_boot 1.13/19.3 (shoes face one way), its clothes
# at most 0.21; scikit-learn's digits 2-7 and 9 at 0.45-0.77 and 6.1-22.4, 0, 1 and 8 at most 0.34;
# randomly placed disks, squares and triangles (30-200 each) at most 0.54 but signal/noise 1.2 at most.
MIRROR_THRESHOLD = 0.4
MIRROR_SIGNAL = 4.0
MIRROR_MIN_IMAGES = 30  # fewer: no verdict


def mirror_asymmetry(image_set: ImageSet, per_class: int = 500) -> dict[str, dict[str, float]]:
    """Per class (up to ``per_class`` images each): ``asymmetry``, how far its mean image is from its mirror
    as a share of the mean image's contrast, and ``signal_to_noise``, that distance over the one between the
    means of the class's two halves. Empty when a class has fewer than MIRROR_MIN_IMAGES images."""
    found = {}
    for label, name in enumerate(image_set.class_names):
        members = np.flatnonzero(image_set.labels == label)[:per_class]
        if len(members) < MIRROR_MIN_IMAGES:
            return {}
        images = image_set.images[members].astype(np.float64) / 255
        mean = images.mean(axis=0)
        distance = float(np.abs(mean - mean[..., ::-1]).mean())
        contrast = float(np.abs(mean - mean.mean()).mean())
        noise = float(np.abs(images[0::2].mean(axis=0) - images[1::2].mean(axis=0)).mean())
        found[name] = {
            "asymmetry": round(distance / contrast, 3) if contrast > 0 else 0.0,
            "signal_to_noise": round(distance / noise, 2) if noise > 0 else 0.0,
        }
    return found


def flip_sensitive(scores: dict[str, dict[str, float]]) -> list[str]:
    """The classes of ``mirror_asymmetry`` whose mirror images clearly differ from their own."""
    return [
        name
        for name, score in scores.items()
        if score["asymmetry"] >= MIRROR_THRESHOLD and score["signal_to_noise"] >= MIRROR_SIGNAL
    ]
