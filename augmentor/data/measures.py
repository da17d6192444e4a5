"""Measures on uint8 C×H×W images: SSIM of a pair, mean pairwise SSIM (diversity) and pixel MSE.

One implementation each, shared by training (collapse warnings), inversion (reconstruction quality) and
the metrics (diversity of generated images beside real ones).
"""

from __future__ import annotations

import numpy as np

DIVERSITY_SAMPLE = 64


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
