"""IDX reader (the MNIST / Fashion-MNIST format), gzipped or raw, checked against its header."""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from augmentor.core.errors import UserError
from augmentor.core.limits import ARRAY_BYTES, INFLATION, check_fits_memory, memory_budget
from augmentor.data.files import conform_array
from augmentor.data.imageset import Dataset, ImageSet, real_provenance
from augmentor.data.options import ReadOptions

# Split name → file name stem (the Fashion-MNIST / MNIST convention).
IDX_STEMS = {"train": "train", "test": "t10k"}


MAX_IDX_DIMS = 4


def read_idx_array(path: Path) -> np.ndarray:
    """Parse one IDX file of unsigned bytes into an array shaped as its header says.

    The header is read first and the data after it only up to the size it declares, so a gzip bomb is
    refused before it inflates: by its declared size, by the memory free, and by how far a gzip file
    claims to inflate (real IDX files inflate 2-5×; a stream of zeros, 1000×).
    """
    stored = path.stat().st_size if path.is_file() else 0
    try:
        with gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb") as handle:
            magic = handle.read(4)
            if len(magic) < 4 or magic[0] != 0 or magic[1] != 0 or magic[2] != 0x08:
                raise UserError(f"{path}: not an IDX file of unsigned bytes (bad magic number)")
            ndim = magic[3]
            if not 1 <= ndim <= MAX_IDX_DIMS:
                raise UserError(f"{path}: IDX header declares {ndim} dimensions; images have 3, labels 1")
            dims = handle.read(4 * ndim)
            if len(dims) < 4 * ndim:
                raise UserError(f"{path}: truncated IDX header")
            shape = tuple(int.from_bytes(dims[4 * i : 4 * i + 4], "big") for i in range(ndim))
            expected = math.prod(shape)
            if expected > ARRAY_BYTES.value():
                raise UserError(
                    f"{path}: IDX header declares {shape}, {expected / 2**30:.1f} GiB of data (at most "
                    f"{ARRAY_BYTES.value() / 2**30:.1f} GiB); split the dataset, or {ARRAY_BYTES.lift()}"
                )
            if path.suffix == ".gz" and expected > max(stored, 1 << 20) * INFLATION.value():
                raise UserError(
                    f"{path}: {stored:,} gzip bytes claim {expected:,} bytes of data, more than "
                    f"{INFLATION.value()}× (a gzip bomb?); use an intact copy, or {INFLATION.lift()}"
                )
            check_fits_memory(expected, f"{path}: the IDX data", "split the dataset", memory_budget())
            held = stored - handle.tell()
            if path.suffix != ".gz" and path.is_file() and held != expected:  # known before a byte is read
                raise UserError(
                    f"{path}: IDX header promises {expected} bytes of data, file holds "
                    f"{max(0, held) if held < expected else 'more'}; the file is truncated or corrupt"
                )
            data = _read_at_most(handle, expected + 1)  # one byte more tells a longer file from an exact one
    except (OSError, EOFError, zlib.error) as exc:
        raise UserError(f"{path}: cannot read IDX data ({exc}); replace the file with an intact copy") from None
    if len(data) != expected:
        held = f"{len(data)}" if len(data) <= expected else "more"
        raise UserError(
            f"{path}: IDX header promises {expected} bytes of data, file holds {held}; the file is truncated or corrupt"
        )
    if expected == 0:
        raise UserError(f"{path}: IDX header declares {shape}: the file holds no images")
    return np.frombuffer(data, dtype=np.uint8).reshape(shape)


def _read_at_most(handle: BinaryIO, count: int, chunk: int = 64 << 20) -> bytes:
    """Up to ``count`` bytes, read in chunks: memory follows the data that is really there, not the size a
    (possibly hostile) header declares."""
    parts, total = [], 0
    while total < count:
        part = handle.read(min(chunk, count - total))
        if not part:
            break
        parts.append(part)
        total += len(part)
    return b"".join(parts)


def find_idx_file(folder: Path, stem: str, kind: str) -> Path | None:
    """``{stem}-{kind}-idx?-ubyte[.gz]`` inside ``folder``, if present."""
    ndim = "3" if kind == "images" else "1"
    for name in (f"{stem}-{kind}-idx{ndim}-ubyte", f"{stem}-{kind}-idx{ndim}-ubyte.gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def labels_path_for(images_path: Path) -> Path:
    """The labels file that belongs beside an images file."""
    name = images_path.name.replace("images-idx3", "labels-idx1")
    for candidate in (images_path.with_name(name), images_path.with_name(name.removesuffix(".gz"))):
        if candidate.is_file():
            return candidate
    raise UserError(f"{images_path}: no labels file {name} beside it; put the IDX labels file next to it")


def read_idx_pair(
    images_path: Path,
    labels_path: Path,
    options: ReadOptions,
    class_names: list[str] | None,
    origin_prefix: str | None = None,
) -> ImageSet:
    """One split from an images file and its labels file."""
    images = read_idx_array(images_path)
    labels = read_idx_array(labels_path).astype(np.int64)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise UserError(f"{images_path}: {images.shape} images do not pair with {labels.shape} labels in {labels_path}")
    if min(images.shape[1:]) < 1:
        raise UserError(f"{images_path}: images of {images.shape[1]}×{images.shape[2]} pixels; the file is corrupt")
    if class_names is None:
        class_names = [str(i) for i in range(int(labels.max()) + 1)]
    if labels.max() >= len(class_names):
        raise UserError(f"{labels_path}: label {labels.max()} is outside the {len(class_names)} classes")
    prefix = origin_prefix or f"{images_path.name}#"
    provenance = [real_provenance(f"{prefix}{i}") for i in range(len(images))]
    array = conform_array(np.ascontiguousarray(images[:, None]), options)
    return ImageSet(array, labels, list(class_names), provenance)


def read_idx(src: Path, options: ReadOptions, class_names: list[str] | None = None, name: str | None = None) -> Dataset:
    """Read IDX data from a folder holding ``train-*`` (and ``t10k-*``) files or from one images file."""
    if src.is_file():
        # One file given: it is the whole dataset, read as the train split.
        image_set = read_idx_pair(src, labels_path_for(src), options, class_names)
        return Dataset(name=name or src.name, splits={"train": image_set}, kind="idx")
    splits: dict[str, ImageSet] = {}
    for split, stem in IDX_STEMS.items():  # train first: the test split takes its classes and size
        images_path = find_idx_file(src, stem, "images")
        if images_path is None:
            if split == "train":
                raise UserError(f"{src}: no train-images-idx3-ubyte[.gz] file in the folder")
            continue
        labels_path = find_idx_file(src, stem, "labels")
        if labels_path is None:
            raise UserError(f"{images_path}: no {stem}-labels-idx1-ubyte[.gz] beside it")
        prefix = f"{name}:{split}:" if name else None
        splits[split] = read_idx_pair(images_path, labels_path, options, class_names, prefix)
        if split == "train":
            class_names = splits["train"].class_names
        elif splits[split].images.shape[1:] != splits["train"].images.shape[1:]:
            size = "×".join(map(str, splits[split].images.shape[2:]))
            raise UserError(
                f"{images_path}: {size} images beside {'×'.join(map(str, splits['train'].images.shape[2:]))} "
                "train images; give both splits one size (or --image-size)"
            )
    return Dataset(name=name or src.name, splits=splits, kind="idx")


def looks_like_idx(path: Path) -> bool:
    """True for an IDX file, or a folder holding a ``train-images-idx3-ubyte[.gz]``."""
    if path.is_file():
        return "-idx" in path.name and "-ubyte" in path.name
    return path.is_dir() and find_idx_file(path, "train", "images") is not None
