"""``.npz`` reader: ``images`` and ``labels`` (optional ``class_names``, ``test_images``/``test_labels``)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from augmentor.core.errors import UserError
from augmentor.data.files import conform_array
from augmentor.data.imageset import Dataset, ImageSet, check_class_name, real_provenance
from augmentor.data.options import ReadOptions


def _to_nchw(images: np.ndarray, path: Path, key: str) -> np.ndarray:
    """Accept N×H×W, N×H×W×C or N×C×H×W (C = 1 or 3) uint8 arrays."""
    if images.dtype != np.uint8:
        raise UserError(
            f"{path}: '{key}' has dtype {images.dtype}; store uint8 pixels 0..255 "
            "(for floats in [0, 1]: (x * 255).round().astype('uint8'))"
        )
    if images.ndim == 3:
        return images[:, None]
    if images.ndim == 4 and images.shape[-1] in (1, 3):
        return images.transpose(0, 3, 1, 2)
    if images.ndim == 4 and images.shape[1] in (1, 3):
        return images
    raise UserError(f"{path}: '{key}' has shape {images.shape}; expected N×H×W, N×H×W×C or N×C×H×W with C = 1 or 3")


def read_npz(path: Path, options: ReadOptions) -> Dataset:
    """Read a ``.npz`` file without ever unpickling (``allow_pickle=False``)."""
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise UserError(f"{path}: not a readable .npz file ({exc}); save it with numpy.savez") from None
    with archive:
        keys = set(archive.files)
        for required in ("images", "labels"):
            if required not in keys:
                raise UserError(f"{path}: no '{required}' array (found: {sorted(keys)}); save images= and labels=")
        try:
            arrays = {k: archive[k] for k in keys}
        except ValueError as exc:
            raise UserError(f"{path}: holds pickled objects, which are refused ({exc}); store plain arrays") from None
    labels = arrays["labels"]
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer) or (labels < 0).any():
        raise UserError(f"{path}: 'labels' must be a 1-D array of non-negative integers")
    if "class_names" in arrays:
        class_names = [str(n) for n in arrays["class_names"].tolist()]
    else:
        class_names = [str(i) for i in range(int(labels.max()) + 1)]
    for name in class_names:
        check_class_name(name, f"{path} (class_names)")
    if len(set(class_names)) != len(class_names):
        raise UserError(f"{path}: class_names has duplicates; give every class a distinct name")
    splits = {"train": _split(arrays, "images", "labels", class_names, path, options)}
    if "test_images" in arrays:
        if "test_labels" not in arrays:
            raise UserError(f"{path}: 'test_images' without 'test_labels'; save both or neither")
        splits["test"] = _split(arrays, "test_images", "test_labels", class_names, path, options)
    return Dataset(name=path.stem, splits=splits, kind="npz")


def _split(
    arrays: dict, image_key: str, label_key: str, class_names: list[str], path: Path, options: ReadOptions
) -> ImageSet:
    images = _to_nchw(arrays[image_key], path, image_key)
    labels = arrays[label_key].astype(np.int64)
    if len(images) != len(labels):
        raise UserError(f"{path}: {len(images)} '{image_key}' but {len(labels)} '{label_key}'")
    if len(labels) and labels.max() >= len(class_names):
        raise UserError(f"{path}: label {labels.max()} has no entry in the {len(class_names)} class_names")
    provenance = [real_provenance(f"{path.name}#{image_key}[{i}]") for i in range(len(images))]
    images = conform_array(np.ascontiguousarray(images), options)
    return ImageSet(images, labels, class_names, provenance)
