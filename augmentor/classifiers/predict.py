"""``augmentor classify predict``: a trained classifier's label and class probabilities for image files.

Files are decoded and scored a chunk at a time, so a long list never sits in memory whole; the same
inputs give the same numbers (inference is deterministic on one device, folders are read in sorted order).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from augmentor.classifiers.classifier import Classifier
from augmentor.core.bounded import read_stdin_lines
from augmentor.core.console import progress
from augmentor.core.errors import UserError
from augmentor.data.decode import IMAGE_EXTENSIONS, BadImageFile, decode_image, resize
from augmentor.data.files import warn_skipped
from augmentor.data.options import ReadOptions

CHUNK = 256  # images decoded and scored at a time: bounded memory for any number of files


@dataclass
class Predictions:
    """Every file's class probabilities under one classifier run (rows in the order of ``files``)."""

    run: Path
    class_names: list[str]
    files: list[str]
    proba: np.ndarray  # float32 N×K, each row sums to 1
    top_k: int = 3  # classes listed per file in ``document``
    skipped: tuple[tuple[str, str], ...] = ()  # (file, reason) left out under skip_corrupt

    def labels(self) -> list[str]:
        """The most probable class of every file."""
        return [self.class_names[k] for k in self.proba.argmax(axis=1)]

    def top(self, row: int, k: int | None = None) -> list[tuple[str, float]]:
        """The ``k`` (default ``top_k``) most probable classes of file ``row``, most probable first."""
        # Stable sort: a tie lists classes in class order, as argmax picks the label.
        order = np.argsort(-self.proba[row], kind="stable")[: k or self.top_k]
        return [(self.class_names[c], float(self.proba[row, c])) for c in order]

    def document(self) -> dict[str, Any]:
        """The ``--json`` document: the run, its classes, one entry per file and the files skipped."""
        labels = self.labels()
        return {
            "run": str(self.run),
            "classes": list(self.class_names),
            "predictions": [
                {
                    "file": name,
                    "label": labels[row],
                    "probability": float(self.proba[row].max()),
                    "top": [[c, p] for c, p in self.top(row)],
                }
                for row, name in enumerate(self.files)
            ],
            "skipped": [{"file": name, "reason": reason} for name, reason in self.skipped],
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
    paths on standard input (one a line). Every path is checked before any image is read."""
    found: list[Path] = []
    for given in inputs:
        if given == "-":
            found += [Path(line) for line in read_stdin_lines()]
            continue
        path = Path(given)
        if path.is_dir():
            inside = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
            if not inside:
                raise UserError(
                    f"{path}: no image files in this folder (looked for {', '.join(sorted(IMAGE_EXTENSIONS))})"
                )
            found += inside
        elif not path.is_file():
            raise UserError(f"{path}: no such file or folder; give image files, folders of them, or - for stdin")
        else:
            found.append(path)
    for path in found:  # paths from stdin are checked here too, before minutes of work on the others
        if not path.is_file():
            raise UserError(f"{path}: no such file (listed on stdin); give image files one a line")
    if not found:
        raise UserError("no images to predict; give image files, folders of them, or - for paths on stdin")
    return found


def _read(path: Path, classifier: Classifier, options: ReadOptions) -> np.ndarray:
    """One file as C×H×W uint8, converted as ``options`` say; another shape than the classifier's is refused
    naming the file and the flag that converts it (never converted silently)."""
    array = decode_image(path, options.channels)
    if options.image_size is not None:
        array = resize(array, options.image_size)
    channels, height, width = classifier.image_shape
    fixes = []
    if array.shape[:2] != (height, width):
        fixes.append(f"--image-size {height}" if height == width else f"--image-size {height}x{width}")
    if array.shape[2] != channels:
        fixes.append(f"--channels {channels}")
    if fixes:
        h, w, c = array.shape
        raise UserError(
            f"{path}: image is {c}×{h}×{w} (channels×height×width), the classifier {classifier.run} takes "
            f"{channels}×{height}×{width}; pass {' '.join(fixes)} to convert"
        )
    return array.transpose(2, 0, 1)


def predict_files(
    run: Path | str,
    inputs: list[str],
    read_options: ReadOptions | None = None,
    device: str = "auto",
    top: int = 3,
) -> Predictions:
    """Class probabilities of every image ``inputs`` name (files, folders searched recursively, ``-`` for
    paths on stdin) under the classifier of ``run``, on ``device``; ``top`` classes are listed per file.

    ``read_options`` convert explicitly (``image_size``, ``channels``); an image of another shape is refused.
    An unreadable file stops with an error naming it, or with ``skip_corrupt`` is left out and reported.
    """
    if top < 1:
        raise UserError(f"--top {top}: give 1 or more")
    options = read_options or ReadOptions()
    paths = image_paths(inputs)
    classifier = Classifier.from_run(run).to(device)
    kept: list[str] = []
    skipped: list[tuple[str, str]] = []
    rows: list[np.ndarray] = []
    with progress("predicting", len(paths)) as advance:
        for start in range(0, len(paths), CHUNK):
            arrays = []
            for path in paths[start : start + CHUNK]:
                try:
                    arrays.append(_read(path, classifier, options))
                    kept.append(str(path))
                except BadImageFile as exc:
                    if not options.skip_corrupt:
                        raise UserError(
                            f"{path}: {exc}; remove or fix it, or pass --skip-corrupt to go on without it"
                        ) from None
                    skipped.append((str(path), str(exc)))
                advance(1)
            if arrays:
                rows.append(classifier.proba(np.stack(arrays)).numpy())
    warn_skipped(skipped)
    if not kept:
        raise UserError(f"none of the {len(paths)} image file(s) could be read; see the warnings above")
    return Predictions(
        Path(run),
        list(classifier.class_names),
        kept,
        np.concatenate(rows),
        min(top, len(classifier.class_names)),
        tuple(skipped),
    )
