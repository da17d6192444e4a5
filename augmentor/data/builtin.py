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
    """Where the four Fashion-MNIST IDX files are: --data-dir, then $AUGMENTOR_DATA, then Debian's package."""
    candidates = [data] if data else []
    if os.environ.get("AUGMENTOR_DATA"):
        candidates.append(Path(os.environ["AUGMENTOR_DATA"]))
    candidates += [DEBIAN_FASHION_MNIST]
    for folder in candidates:
        for sub in (folder, folder / "fashion-mnist"):
            if find_idx_file(sub, "train", "images") and find_idx_file(sub, "t10k", "images"):
                return sub
    looked = ", ".join(str(c) for c in candidates)
    raise UserError(
        f"Fashion-MNIST files not found (looked in {looked}); install the Debian package "
        "(apt-get install dataset-fashion-mnist) or put train-images-idx3-ubyte.gz, "
        "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz in a "
        "folder and pass --data-dir FOLDER or set AUGMENTOR_DATA=FOLDER"
    )


def read_builtin(name: str, options: ReadOptions) -> Dataset:
    """Read a built-in dataset by name."""
    if name == "fashion-mnist":
        folder = fashion_mnist_dir(options.data_dir)
        dataset = read_idx(folder, options, FASHION_MNIST_CLASSES, name="fashion-mnist")
        dataset.kind = "builtin"
        return dataset
    raise UserError(f"unknown built-in dataset {name!r}; known: {', '.join(BUILTIN_NAMES)}")
