"""Scalar attributes measured on uint8 images with numpy / scikit-image (no external classifier).

Each attribute maps N×C×H×W uint8 images to N floats. "Ink" is the pixels above the image's Otsu
threshold (on the channel mean); the bounding box and eccentricity are those of the largest
connected ink region. An image with no contrast has no ink: area, box and eccentricity are 0.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from augmentor.core.errors import UserError


def _grey(images: np.ndarray) -> np.ndarray:
    """N×H×W float channel means of N×C×H×W images."""
    return np.asarray(images, dtype=np.float64).mean(axis=1)


def _ink_mask(grey: np.ndarray) -> np.ndarray:
    """Pixels above the Otsu threshold of one H×W image (none when the image is flat)."""
    from skimage.filters import threshold_otsu

    if grey.max() - grey.min() < 1e-9:
        return np.zeros(grey.shape, bool)
    return grey > threshold_otsu(grey)


def _largest_region(grey: np.ndarray):
    """regionprops of the largest connected ink region, or None."""
    from skimage.measure import label, regionprops

    regions = regionprops(label(_ink_mask(grey), connectivity=2))
    return max(regions, key=lambda r: r.area) if regions else None


def mean_intensity(images: np.ndarray) -> np.ndarray:
    """Mean pixel value in 0..1."""
    return _grey(images).mean(axis=(1, 2)) / 255.0


def ink_area(images: np.ndarray) -> np.ndarray:
    """Fraction of the pixels above the Otsu threshold."""
    return np.array([_ink_mask(g).mean() for g in _grey(images)], dtype=np.float64)


def _region_measure(images: np.ndarray, measure: Callable) -> np.ndarray:
    values = []
    for grey in _grey(images):
        region = _largest_region(grey)
        values.append(0.0 if region is None else float(measure(region)))
    return np.array(values, dtype=np.float64)


def bbox_width(images: np.ndarray) -> np.ndarray:
    """Width in pixels of the largest ink region's bounding box."""
    return _region_measure(images, lambda r: r.bbox[3] - r.bbox[1])


def bbox_height(images: np.ndarray) -> np.ndarray:
    """Height in pixels of the largest ink region's bounding box."""
    return _region_measure(images, lambda r: r.bbox[2] - r.bbox[0])


def eccentricity(images: np.ndarray) -> np.ndarray:
    """Eccentricity (0 = circle, → 1 = line) of the ellipse fitted to the largest ink region."""
    return _region_measure(images, lambda r: r.eccentricity)


ATTRIBUTES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "mean_intensity": mean_intensity,
    "ink_area": ink_area,
    "bbox_width": bbox_width,
    "bbox_height": bbox_height,
    "eccentricity": eccentricity,
}


def get_attribute(name: str) -> Callable[[np.ndarray], np.ndarray]:
    """The attribute called ``name``, with the known ones on error."""
    if name not in ATTRIBUTES:
        raise UserError(f"attribute {name!r} is unknown; known attributes: {', '.join(ATTRIBUTES)}")
    return ATTRIBUTES[name]
