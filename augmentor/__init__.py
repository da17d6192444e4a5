"""augmentor: generative and classic data augmentation for image-classification datasets.

The Python API is the names below, importable from ``augmentor`` itself (``from augmentor import
open_dataset, Generator, Classifier``). They load lazily (PEP 562): nothing heavy is imported until a name
is used, so the CLI's ``--help`` stays fast and torch-free. The README's "Library" section walks through them.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# Public name → the module that defines it (one responsibility each; see the README's layout list).
_API = {
    # data: read any SRC, draw subsets, write an ImageFolder with manifest and dataset.json
    "open_dataset": "augmentor.data.readers",
    "Dataset": "augmentor.data.imageset",
    "ImageSet": "augmentor.data.imageset",
    "ReadOptions": "augmentor.data.options",
    "draw_subset": "augmentor.data.subset",
    "write_imagefolder": "augmentor.data.writers",
    # classic albumentations expansion
    "ClassicConfig": "augmentor.classic.expand",
    "expand": "augmentor.classic.expand",
    "load_pipeline": "augmentor.classic.pipelines",
    # generative models: train, load, sample, encode
    "GenerativeConfig": "augmentor.generative.train",
    "train_generative": "augmentor.generative.train",
    "Generator": "augmentor.generative.generator",
    # classifiers: train, load, predict
    "TrainConfig": "augmentor.classifiers.train",
    "train_classifier": "augmentor.classifiers.train",
    "Classifier": "augmentor.classifiers.classifier",
    "predict_files": "augmentor.classifiers.predict",
    "SyntheticPool": "augmentor.classifiers.mixing",
    "hard_targets": "augmentor.classifiers.mixing",
    # generated images into a dataset (the `expand` command) and the gain study
    "ExpandConfig": "augmentor.synthetic.expand",
    "run_expand": "augmentor.synthetic.expand",
    "GainConfig": "augmentor.experiments.gain",
    "run_gain": "augmentor.experiments.gain",
    # the one error type: bad input, a one-line message naming the file and the fix
    "UserError": "augmentor.core.errors",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use."""
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'augmentor' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
