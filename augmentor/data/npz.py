"""``.npz`` reader: ``images`` and ``labels`` (optional ``class_names``, ``test_images``/``test_labels``)."""

from __future__ import annotations

import math
import unicodedata
import zipfile
import zlib
from pathlib import Path

import numpy as np

from augmentor.core.errors import UserError
from augmentor.core.limits import ARRAY_BYTES, CLASSES, INFLATION, check_fits_memory, memory_budget
from augmentor.core.names import check_class_name
from augmentor.data.files import conform_array
from augmentor.data.imageset import Dataset, ImageSet, real_provenance
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


_KEYS = ("images", "labels", "class_names", "test_images", "test_labels")


def _declared_bytes(archive: np.lib.npyio.NpzFile, key: str, path: Path) -> int:
    """An array's size from its .npy header, read before the array: a small compressed file can inflate to
    gigabytes."""
    try:
        with archive.zip.open(f"{key}.npy") as member:
            version = np.lib.format.read_magic(member)
            header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = header(member)
    except (ValueError, OSError, KeyError, zipfile.BadZipFile, EOFError, zlib.error, NotImplementedError) as exc:
        raise UserError(f"{path}: '{key}' is not a readable array ({exc}); save it with numpy.savez") from None
    if any(side < 0 for side in shape):  # a hand-made header: numpy's own product would wrap around
        raise UserError(f"{path}: '{key}' declares the shape {shape}; save it again with numpy.savez")
    return math.prod(shape) * dtype.itemsize  # exact: a float product can round a bomb under the cap


def read_npz(path: Path, options: ReadOptions) -> Dataset:
    """Read a ``.npz`` file without ever unpickling (``allow_pickle=False``)."""
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, NotImplementedError) as exc:  # zip version/method
        raise UserError(f"{path}: not a readable .npz file ({exc}); save it with numpy.savez") from None
    with archive:
        keys = set(archive.files)
        for required in ("images", "labels"):
            if required not in keys:
                raise UserError(f"{path}: no '{required}' array (found: {sorted(keys)}); save images= and labels=")
        wanted = [k for k in _KEYS if k in keys]
        sizes = {key: _declared_bytes(archive, key, path) for key in wanted}
        for key, size in sizes.items():
            if size > ARRAY_BYTES.value():
                raise UserError(
                    f"{path}: '{key}' would take {size / 2**30:.1f} GiB once inflated (at most "
                    f"{ARRAY_BYTES.value() / 2**30:.1f} GiB); split the dataset, or {ARRAY_BYTES.lift()}"
                )
            stored = archive.zip.getinfo(f"{key}.npy").compress_size
            if size > max(stored, 1 << 20) * INFLATION.value():  # savez_compressed of images: 2-10×
                raise UserError(
                    f"{path}: '{key}' claims {size:,} bytes from {stored:,} compressed, more than "
                    f"{INFLATION.value()}× (a zip bomb?); save it again with numpy.savez, or {INFLATION.lift()}"
                )
        fix = "split the dataset or save it as an ImageFolder"
        check_fits_memory(sum(sizes.values()), f"{path}: the arrays", fix, memory_budget())
        try:
            arrays = {k: archive[k] for k in wanted}
        except ValueError as exc:
            raise UserError(f"{path}: holds pickled objects, which are refused ({exc}); store plain arrays") from None
        except (OSError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError) as exc:
            raise UserError(f"{path}: an array is corrupt ({exc}); save the file again with numpy.savez") from None
    labels = _checked_labels(arrays["labels"], "labels", path)
    if "class_names" in arrays:
        names = arrays["class_names"]
        if names.ndim != 1 or not len(names):
            raise UserError(f"{path}: 'class_names' must be a 1-D array of names, got shape {names.shape}")
        # In NFC, as class folder names are: a decomposed 'café' and a composed one are one class.
        class_names = [unicodedata.normalize("NFC", str(n)) for n in names.tolist()]
    else:
        if int(labels.max()) >= CLASSES.value():
            raise UserError(
                f"{path}: label {int(labels.max())} without 'class_names' would make {int(labels.max()) + 1:,} "
                f"classes; number the classes 0..K-1 or save class_names= (or {CLASSES.lift()})"
            )
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
        train_shape, test_shape = splits["train"].images.shape[1:], splits["test"].images.shape[1:]
        if train_shape != test_shape:
            shown = "×".join(map(str, test_shape)), "×".join(map(str, train_shape))
            raise UserError(
                f"{path}: 'test_images' are {shown[0]} (C×H×W) but 'images' are {shown[1]}; a dataset has one "
                "image shape: pass --image-size / --channels to convert both"
            )
    return Dataset(name=path.stem, splits=splits, kind="npz")


def _split(
    arrays: dict, image_key: str, label_key: str, class_names: list[str], path: Path, options: ReadOptions
) -> ImageSet:
    images = _to_nchw(arrays[image_key], path, image_key)
    labels = _checked_labels(arrays[label_key], label_key, path)
    if len(images) != len(labels):
        raise UserError(f"{path}: {len(images)} '{image_key}' but {len(labels)} '{label_key}'")
    if min(images.shape[2:]) < 1:
        raise UserError(f"{path}: '{image_key}' are {images.shape[2]}×{images.shape[3]} pixels; store real images")
    if int(labels.max()) >= len(class_names):
        raise UserError(f"{path}: label {int(labels.max())} has no entry in the {len(class_names)} class_names")
    labels = labels.astype(np.int64)
    provenance = [real_provenance(f"{path.name}#{image_key}[{i}]") for i in range(len(images))]
    images = conform_array(np.ascontiguousarray(images), options)
    return ImageSet(images, labels, class_names, provenance)


def _checked_labels(labels: np.ndarray, key: str, path: Path) -> np.ndarray:
    """A non-empty 1-D array of integers 0..2^63-1 (floats would be truncated, uint64 could wrap)."""
    if labels.ndim != 1 or labels.dtype.kind not in "iu":  # not "m": numpy counts timedelta64 as an integer
        raise UserError(
            f"{path}: '{key}' must be a 1-D array of non-negative integers, got {labels.dtype} {labels.shape}"
        )
    if not len(labels):
        raise UserError(f"{path}: '{key}' is empty; the file holds no images")
    if int(labels.min()) < 0 or int(labels.max()) >= 2**63:
        raise UserError(
            f"{path}: '{key}' holds {int(labels.min()) if labels.min() < 0 else int(labels.max())}; labels are 0..K-1"
        )
    return labels
