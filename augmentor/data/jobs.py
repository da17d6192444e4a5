"""The data commands as library calls: ``info``, ``export`` and ``subset``."""

from __future__ import annotations

from pathlib import Path

from augmentor.core.outdir import check_output
from augmentor.core.parallel import default_workers
from augmentor.data.imageset import Dataset
from augmentor.data.options import ReadOptions
from augmentor.data.readers import open_dataset
from augmentor.data.subset import draw_subset
from augmentor.data.summary import dataset_info
from augmentor.data.writers import WriteResult, write_imagefolder


def info(src: str, options: ReadOptions) -> dict:
    """Describe a dataset (see ``dataset_info``)."""
    return dataset_info(open_dataset(src, options))


def export(
    src: str, out: Path, options: ReadOptions, *, overwrite: bool = False, workers: int = 0, command: str = ""
) -> WriteResult:
    """Write any readable dataset as an ImageFolder of PNGs with a manifest."""
    check_output(out, overwrite, source=src)  # before reading, so an existing --out fails fast
    dataset = open_dataset(src, options)
    return _write(out, dataset, {"source": src, "skipped": len(dataset.skipped)}, overwrite, workers, command)


def subset(
    src: str,
    per_class: int,
    seed: int,
    out: Path,
    options: ReadOptions,
    *,
    overwrite: bool = False,
    workers: int = 0,
    command: str = "",
) -> WriteResult:
    """A stratified ``per_class`` draw of the train split, with the test split beside it untouched."""
    check_output(out, overwrite, source=src)
    dataset = draw_subset(open_dataset(src, options), per_class, seed)
    return _write(out, dataset, {"source": src, "per_class": per_class, "seed": seed}, overwrite, workers, command)


def _write(out: Path, dataset: Dataset, summary: dict, overwrite: bool, workers: int, command: str) -> WriteResult:
    """Write ``dataset``'s splits as an ImageFolder of PNGs whose manifest summary adds ``summary``."""
    return write_imagefolder(
        out,
        dataset.splits,
        overwrite=overwrite,
        workers=workers or default_workers(),
        command=command,
        extra_summary=summary,
    )
