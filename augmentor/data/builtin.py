"""Built-in datasets, read from local files only (nothing downloads)."""

from __future__ import annotations

import os
from pathlib import Path

from augmentor.core.errors import UserError
from augmentor.data.idx import find_idx_file, read_idx
from augmentor.data.imageset import Dataset
from augmentor.data.options import ReadOptions

# Folder-safe versions of the official names ("T-shirt/top" would be two folders).
FASHION_MNIST_CLASSES = [
    "T-shirt_top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle_boot",
]
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
BUILTIN_NAMES = ("fashion-mnist",)


def fashion_mnist_dir(data: Path | None) -> Path:
    """Where the four Fashion-MNIST IDX files are: --data-dir, else $AUGMENTOR_DATA, else Debian's package.

    A folder the user named is the only place looked: falling back to another copy would silently read
    other data than the user asked for.
    """
    if data:
        chosen, named = Path(data), f"--data-dir {data}"
    elif os.environ.get("AUGMENTOR_DATA"):
        chosen, named = Path(os.environ["AUGMENTOR_DATA"]), f"AUGMENTOR_DATA={os.environ['AUGMENTOR_DATA']}"
    else:
        chosen, named = DEBIAN_FASHION_MNIST, ""
    for sub in (chosen, chosen / "fashion-mnist"):
        if find_idx_file(sub, "train", "images") and find_idx_file(sub, "t10k", "images"):
            return sub
    files = (
        "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and "
        "t10k-labels-idx1-ubyte.gz"
    )
    if named:
        raise UserError(f"{chosen}: no Fashion-MNIST files there ({named}); put {files} in it, or drop it")
    raise UserError(
        f"Fashion-MNIST files not found (looked in {chosen}); install the Debian package "
        f"(apt-get install dataset-fashion-mnist) or put {files} in a folder and pass --data-dir FOLDER or "
        "set AUGMENTOR_DATA=FOLDER"
    )


def read_builtin(name: str, options: ReadOptions) -> Dataset:
    """Read a built-in dataset by name."""
    if name == "fashion-mnist":
        folder = fashion_mnist_dir(options.data_dir)
        dataset = read_idx(folder, options, FASHION_MNIST_CLASSES, name="fashion-mnist")
        dataset.kind = "builtin"
        return dataset
    raise UserError(f"unknown built-in dataset {name!r}; known: {', '.join(BUILTIN_NAMES)}")
