"""``augmentor pipeline check``: validate a pipeline, run it once, optionally draw a preview grid."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from augmentor.classic.expand import augment
from augmentor.classic.pipelines import Pipeline, describe, load_pipeline, probe_pipeline
from augmentor.core.outdir import check_output_file, write_file_atomic
from augmentor.data.imageset import ImageSet
from augmentor.data.options import ReadOptions
from augmentor.data.readers import open_dataset
from augmentor.report.grids import grid_png

_ROWS = 10  # one row per class: all of a 10-class dataset
_COPIES = 7


@dataclass
class PipelineReport:
    """What the check found."""

    name: str
    transforms: list[dict[str, Any]]
    tested_on: str
    preview: Path | None


def _probe_images() -> ImageSet:
    """A grey 28×28 and a colour odd-sized image: a pipeline must keep both intact."""
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (2, 1, 28, 28), dtype=np.uint8)
    return ImageSet(grey, np.array([0, 1]), ["grey probe 1", "grey probe 2"])  # the names label the preview rows


def check_pipeline(
    spec: str,
    *,
    preview: Path | None = None,
    data: str | None = None,
    read_options: ReadOptions | None = None,
    seed: int = 0,
    overwrite: bool = False,
) -> PipelineReport:
    """Load and validate ``spec``, apply it, and draw originals beside copies into ``preview``."""
    pipeline = load_pipeline(spec, probe=False)
    if preview is not None:
        check_output_file(preview, overwrite, reads=[spec, data])
    source = open_dataset(data, read_options or ReadOptions()).train if data else None
    probe_pipeline(pipeline, (*source.size, source.channels) if source is not None else None)
    if source is not None:  # the data's own size and channels: a 24-px crop suits 24×24 digits, not a 28-px probe
        probes = [source.take(np.arange(min(len(source), 2)))]
        tested_on = f"{data} ({source.size[0]}×{source.size[1]}×{source.channels})"
    else:
        colour = np.random.default_rng(1).integers(0, 256, (1, 3, 33, 45), dtype=np.uint8)
        probes = [_probe_images(), ImageSet(colour, np.array([0]), ["a"])]
        tested_on = "grey 28×28 and colour 33×45 probes (give --data to test on your images)"
    for probe in probes:  # raises a UserError naming the problem if the pipeline breaks an image
        augment(probe, pipeline, np.arange(len(probe)), seed)
    if preview is not None:
        write_file_atomic(preview, _preview_png(source if source is not None else probes[0], pipeline, seed))
    return PipelineReport(pipeline.name, describe(pipeline), tested_on, preview)


def _preview_png(images: ImageSet, pipeline: Pipeline, seed: int) -> bytes:
    """The preview grid: class names on the left, "original" then "copy 1"… above, the pipeline on top."""
    rows, names = _preview_rows(images, pipeline, seed)
    columns = ["original"] + [f"copy {k}" for k in range(1, _COPIES + 1)]
    return grid_png(rows, row_labels=names, column_labels=columns, title=pipeline.name)


def _preview_rows(images: ImageSet, pipeline: Pipeline, seed: int) -> tuple[list[list[np.ndarray]], list[str]]:
    """One image per class (up to ``_ROWS`` rows), each followed by seven augmented copies, and the class names."""
    chosen = []
    for label in range(len(images.class_names)):
        members = np.flatnonzero(images.labels == label)
        if len(members):
            chosen.append(int(members[0]))
        if len(chosen) == _ROWS:
            break
    parents = np.repeat(np.array(chosen), _COPIES)
    copies = augment(images, pipeline, parents, seed)
    rows = [[images.images[p], *list(copies.images[r * _COPIES : (r + 1) * _COPIES])] for r, p in enumerate(chosen)]
    return rows, [images.class_names[int(images.labels[p])] for p in chosen]
