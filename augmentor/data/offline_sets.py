"""Small labelled datasets built offline from what installed packages ship, for studies and tests.

Nothing downloads: scikit-learn's digits are inside scikit-learn, and scikit-image ships its sample
photographs. The photo-crop sets make one class per photograph and cut the train crops from the left half
of each photograph and the test crops from the right half, so a test crop never overlaps a train crop.

Each builder returns the arrays of a ``.npz`` that ``augmentor`` reads (``images``, ``labels``,
``test_images``, ``test_labels``, ``class_names``); ``write_offline_set`` saves one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from augmentor.core.errors import UserError

Arrays = dict[str, np.ndarray]

# Grey photographs and textures of scikit-image, one class each (cat() is chelsea(): left out).
GREY_PHOTOS = ("brick", "grass", "gravel", "camera", "coins", "moon", "page", "text", "cell", "clock")
COLOUR_PHOTOS = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "colorwheel",
)


def sklearn_digits(seed: int = 0) -> Arrays:
    """scikit-learn's 1,797 digits (8×8, grey 0..16 scaled to 0..255), a stratified half held out as test."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise UserError("the digits set needs scikit-learn; pip install scikit-learn") from None
    digits = load_digits()
    images = np.round(digits.images * (255 / 16)).astype(np.uint8)
    labels = digits.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    test = np.concatenate([rng.permutation(np.flatnonzero(labels == c))[::2] for c in range(10)])
    train = np.setdiff1d(np.arange(len(images)), test)
    return {
        "images": images[train],
        "labels": labels[train],
        "test_images": images[test],
        "test_labels": labels[test],
        "class_names": np.array([str(c) for c in range(10)]),
    }


def _photo(name: str, channels: int, short_side: int) -> np.ndarray:
    """One scikit-image sample photograph as uint8 H×W×C, its shorter side resized to ``short_side``."""
    import skimage.data
    from skimage.color import gray2rgb, rgb2gray, rgba2rgb
    from skimage.transform import resize

    image = np.asarray(getattr(skimage.data, name)())
    if image.ndim == 3 and image.shape[2] == 4:
        image = rgba2rgb(image)
    if channels == 1 and image.ndim == 3:
        image = rgb2gray(image)
    if channels == 3 and image.ndim == 2:
        image = gray2rgb(image)
    scale = short_side / min(image.shape[:2])
    shape = (round(image.shape[0] * scale), round(image.shape[1] * scale))
    image = resize(image, shape, anti_aliasing=True, preserve_range=False)  # floats in [0, 1]
    image = np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)
    return image if image.ndim == 3 else image[:, :, None]


def _crops(photo: np.ndarray, count: int, size: int, half: str, rng: np.random.Generator) -> np.ndarray:
    """``count`` random size×size crops (N×C×H×W) from the left or right half of one photograph."""
    height, width = photo.shape[:2]
    left, right = (0, width // 2) if half == "left" else (width // 2, width)
    rows = rng.integers(0, height - size + 1, count)
    cols = rng.integers(left, right - size + 1, count)
    return np.stack([photo[r : r + size, c : c + size].transpose(2, 0, 1) for r, c in zip(rows, cols, strict=True)])


def photo_crops(
    names: tuple[str, ...], channels: int, size: int, per_class: int = 150, short_side: int = 160, seed: int = 0
) -> Arrays:
    """One class per photograph: ``per_class`` train crops from its left half, as many test crops from its
    right half."""
    rng = np.random.default_rng(seed)
    photos = [_photo(name, channels, short_side) for name in names]
    train = [_crops(photo, per_class, size, "left", rng) for photo in photos]
    test = [_crops(photo, per_class, size, "right", rng) for photo in photos]
    labels = np.repeat(np.arange(len(names)), per_class)
    return {
        "images": np.concatenate(train),
        "labels": labels,
        "test_images": np.concatenate(test),
        "test_labels": labels.copy(),
        "class_names": np.array(list(names)),
    }


OFFLINE_SETS: dict[str, tuple[str, Callable[[], Arrays]]] = {
    "digits": ("scikit-learn's digits, 8×8 grey, 10 classes, about 90 per class", sklearn_digits),
    "grey-crops": (
        "28×28 grey crops of 10 scikit-image photographs and textures, 150 per class",
        lambda: photo_crops(GREY_PHOTOS, channels=1, size=28),
    ),
    "colour-crops": (
        "32×32 colour crops of 8 scikit-image photographs, 150 per class",
        lambda: photo_crops(COLOUR_PHOTOS, channels=3, size=32),
    ),
}


def write_offline_set(name: str, path: Path) -> Path:
    """Build the named set and save it as ``path`` (an ``.npz``), written whole or not at all."""
    if name not in OFFLINE_SETS:
        raise UserError(f"unknown offline set {name!r}; known: {', '.join(OFFLINE_SETS)}")
    arrays = OFFLINE_SETS[name][1]()
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.partial.npz")
    np.savez_compressed(staging, **arrays)
    staging.replace(path)
    return path
