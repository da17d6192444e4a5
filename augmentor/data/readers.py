"""``open_dataset``: one entry point that recognises every supported source."""

from __future__ import annotations

from pathlib import Path

from augmentor.core.console import warn
from augmentor.core.errors import UserError
from augmentor.data.builtin import BUILTIN_NAMES, read_builtin
from augmentor.data.idx import looks_like_idx, read_idx
from augmentor.data.imagefolder import read_imagefolder, read_stdin
from augmentor.data.imageset import Dataset
from augmentor.data.npz import read_npz
from augmentor.data.options import ReadOptions


def open_dataset(src: str, options: ReadOptions | None = None) -> Dataset:
    """Read ``src``: a built-in name, ``-`` (paths on stdin), an ImageFolder, IDX files or a ``.npz``; every
    split of one shape (a test split of another size surfaced only when a classifier met it)."""
    dataset = _read(src, options or ReadOptions())
    shapes = {name: tuple(split.images.shape[1:]) for name, split in dataset.splits.items()}
    if len(set(shapes.values())) > 1:
        shown = ", ".join(f"{name} {'×'.join(map(str, shape))}" for name, shape in shapes.items())
        raise UserError(
            f"{src}: the splits' images differ in shape ({shown}, C×H×W); pass --image-size / --channels to "
            "convert them all"
        )
    empty = [name for name, count in dataset.train.class_counts().items() if count == 0]
    if empty:  # npz class_names without images, or every image of a class skipped by --skip-corrupt
        listed = ", ".join(repr(name) for name in empty[:5]) + (", …" if len(empty) > 5 else "")
        noun = "class has" if len(empty) == 1 else "classes have"
        warn(f"{src}: {len(empty)} {noun} no training images ({listed}); nothing can learn them")
    return dataset


def _read(src: str, options: ReadOptions) -> Dataset:
    """The reader ``src`` calls for."""
    if src in BUILTIN_NAMES:
        return read_builtin(src, options)
    if src == "-":
        return read_stdin(options)
    path = Path(src)
    if not path.exists():
        raise UserError(
            f"{src}: no such file or folder; give an ImageFolder, IDX files, a .npz file, '-' for "
            f"paths on stdin, or a built-in name ({', '.join(BUILTIN_NAMES)})"
        )
    if path.is_file() and path.suffix == ".npz":
        return read_npz(path, options)
    if looks_like_idx(path):
        return read_idx(path, options)
    if path.is_dir():
        return read_imagefolder(path, options)
    raise UserError(f"{src}: not a dataset; expected a folder, IDX files or a .npz file")
