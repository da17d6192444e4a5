"""``augmentor classify predict``: a trained classifier's label and class probabilities for image files.

Files are decoded and scored a chunk at a time, so a long list never sits in memory whole; the same
inputs give the same numbers (CPU inference is deterministic, files are taken in sorted order).
"""

from __future__ import annotations

import csv
import io
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from augmentor.classifiers.classifier import Classifier
from augmentor.core.console import progress
from augmentor.core.errors import UserError
from augmentor.data.decode import IMAGE_EXTENSIONS
from augmentor.data.files import ImageFile, decode_files
from augmentor.data.options import ReadOptions

CHUNK = 1024  # images decoded and scored at a time: bounded memory for any number of files


@dataclass
class Predictions:
    """Every file's class probabilities under one classifier run (rows in the order of ``files``)."""

    run: Path
    class_names: list[str]
    files: list[str]
    proba: np.ndarray  # float32 N×K, each row sums to 1

    def labels(self) -> list[str]:
        """The most probable class of every file."""
        return [self.class_names[k] for k in self.proba.argmax(axis=1)]

    def top(self, row: int, k: int) -> list[tuple[str, float]]:
        """The ``k`` most probable classes of file ``row``, most probable first."""
        order = np.argsort(-self.proba[row], kind="stable")[:k]
        return [(self.class_names[c], float(self.proba[row, c])) for c in order]

    def document(self, k: int) -> dict[str, Any]:
        """The ``--json`` document: the run, its classes and one entry per file."""
        labels = self.labels()
        return {
            "run": str(self.run),
            "classes": list(self.class_names),
            "predictions": [
                {
                    "file": name,
                    "label": labels[row],
                    "probability": float(self.proba[row].max()),
                    "top": [[c, p] for c, p in self.top(row, k)],
                }
                for row, name in enumerate(self.files)
            ],
        }

    def csv_text(self) -> str:
        """file, label, probability, then one column per class with its probability."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["file", "label", "probability", *self.class_names])
        for row, (name, label) in enumerate(zip(self.files, self.labels(), strict=True)):
            writer.writerow([name, label, f"{self.proba[row].max():.6f}", *(f"{p:.6f}" for p in self.proba[row])])
        return buffer.getvalue()


def image_paths(inputs: list[str]) -> list[Path]:
    """The image files ``inputs`` name: files as given, folders searched recursively (sorted), ``-`` for
    paths on standard input."""
    found: list[Path] = []
    for given in inputs:
        if given == "-":
            found += [Path(line.strip()) for line in sys.stdin.read().splitlines() if line.strip()]
            continue
        path = Path(given)
        if path.is_dir():
            inside = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
            if not inside:
                raise UserError(
                    f"{path}: no image files in this folder (looked for {', '.join(sorted(IMAGE_EXTENSIONS))})"
                )
            found += inside
        elif path.is_file():
            found.append(path)
        else:
            raise UserError(f"{path}: no such file or folder; give image files, folders of them, or - for stdin")
    if not found:
        raise UserError("no images to predict; give image files, folders of them, or - for paths on stdin")
    return found


def predict_files(
    run: Path, inputs: list[str], read_options: ReadOptions | None = None, device: str = "cpu"
) -> Predictions:
    """Class probabilities of every image ``inputs`` name, under the classifier of ``run``."""
    options = read_options or ReadOptions()
    classifier = Classifier.from_run(run).to(device)
    paths = image_paths(inputs)
    rows: list[np.ndarray] = []
    with progress("predicting", len(paths)) as advance:
        for start in range(0, len(paths), CHUNK):
            chunk = paths[start : start + CHUNK]
            files = [ImageFile(path, 0, str(path)) for path in chunk]
            images, _ = decode_files(files, ["?"], options)
            for index in range(len(images)):  # name the first file of another shape, not just "images"
                single = images.images[index : index + 1]
                if tuple(single.shape[1:]) != classifier.image_shape:
                    classifier.check_images(single, str(chunk[index]), "pass --image-size / --channels to convert")
            rows.append(classifier.proba(images.images).numpy())
            advance(len(chunk))
    return Predictions(Path(run), list(classifier.class_names), [str(p) for p in paths], np.concatenate(rows))
