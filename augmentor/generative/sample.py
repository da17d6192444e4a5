"""``augmentor sample``: images from a DCGAN or VAE run written as an ImageFolder with a manifest."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from augmentor.core.errors import UserError
from augmentor.core.outdir import check_output, check_output_file, write_file_atomic
from augmentor.core.parallel import default_workers
from augmentor.data.imageset import ImageSet
from augmentor.data.writers import WriteResult, write_imagefolder
from augmentor.distributed.output import is_main, on_every_rank, run_shares
from augmentor.generative.generator import Generator, balanced_labels, decode_batch


@dataclass(frozen=True)
class SampleConfig:
    """``augmentor sample`` options (field names = flag names)."""

    n: int | None = None
    class_name: str | None = None
    per_class: int | None = None
    truncation: float | None = None
    seed: int = 0
    device: str = "auto"
    workers: int = 0
    seeds: tuple[int, ...] | None = None  # one image per seed (its latent index 0), StyleGAN's --seeds
    psi: float | None = None  # pull every code toward the prior's mean: z ← ψ·z


def check_sample_config(config: SampleConfig) -> None:
    """The flag combinations and ranges, before the run is loaded."""
    if config.truncation is not None and not config.truncation > 0:  # NaN too
        raise UserError(f"--truncation must be above 0, got {config.truncation}")
    if config.psi is not None and not 0 <= config.psi <= 1:
        raise UserError(f"--psi {config.psi}: give ψ in [0, 1] (1 changes nothing, 0 gives each class's mean image)")
    if config.seeds is not None and (config.n is not None or config.per_class is not None):
        raise UserError("--seeds makes one image per seed: give it without --n / --per-class")


def sample_labels(generator: Generator, config: SampleConfig) -> np.ndarray:
    """The label of every image to make, from ``--n`` / ``--class`` / ``--per-class`` / ``--seeds``."""
    if config.seeds is not None:
        if generator.conditional and config.class_name is None and len(generator.class_names) > 1:
            raise UserError(f"{generator.where}: a conditional model needs --class with --seeds (e.g. --class 3)")
        label = generator.class_index(config.class_name) if config.class_name is not None else 0
        return np.full(len(config.seeds), label, dtype=np.int64)
    if config.per_class is not None and (config.n is not None or config.class_name is not None):
        raise UserError("give --per-class alone, or --n with an optional --class")
    if config.per_class is not None:
        return balanced_labels(len(generator.class_names), config.per_class)
    if config.n is None:
        raise UserError("give --n N (with an optional --class C) or --per-class N")
    if config.class_name is not None:
        return np.full(config.n, generator.class_index(config.class_name), dtype=np.int64)
    if not generator.conditional:
        return np.zeros(config.n, dtype=np.int64)
    return balanced_labels(len(generator.class_names), -(-config.n // len(generator.class_names)))[: config.n]


def sample_run(
    run: Path,
    config: SampleConfig,
    out: Path,
    *,
    grid: Path | None = None,
    overwrite: bool = False,
    command: str = "",
) -> WriteResult:
    """Generate the requested images and write them (and an optional grid PNG) atomically.

    Under torchrun each rank renders and writes its share of the images (``distributed.output``).
    """

    def prepare() -> tuple[Generator, np.ndarray]:
        check_sample_config(config)
        check_output(out, overwrite)
        if grid is not None:
            check_output_file(grid, overwrite)
        generator = Generator.from_run(run)
        return generator, sample_labels(generator, config)

    generator, labels = on_every_rank(prepare)
    images = (
        generate_per_seed(generator, labels, config) if config.seeds else generate_shared(generator, labels, config)
    )
    extra = {"generator": {"run": str(run), "run_id": generator.run_id, "kind": generator.kind}, "seed": config.seed}
    if config.seeds:
        extra["seeds"] = list(config.seeds)
    if config.psi is not None:
        extra["psi"] = config.psi
    written = write_imagefolder(
        out,
        {"train": images},
        overwrite=overwrite,
        workers=config.workers or default_workers(),
        command=command,
        extra_summary=extra,
    )
    if grid is not None and is_main():
        write_file_atomic(grid, grid_of(images, title=grid_title(run, generator, images.labels)))
    return written


def grid_title(run: Path, generator: Generator, labels: np.ndarray) -> str:
    """The run's folder name and kind, and the class when a conditional model made one class only."""
    title = f"{Path(os.path.abspath(run)).name or run} ({generator.kind})"  # "." named, symlinks kept
    classes = np.unique(labels)
    if generator.conditional and len(classes) == 1:
        title += f", class {generator.class_names[int(classes[0])]}"
    return title


def generate_per_seed(generator: Generator, labels: np.ndarray, config: SampleConfig) -> ImageSet:
    """One image per seed of ``config.seeds``: the first code (latent index 0) of each seed's stream, so seed
    7 gives the same image whatever else is asked, as StyleGAN's generate.py does."""
    parts = [
        generator.generate(labels[k : k + 1], seed, truncation=config.truncation, device=config.device, psi=config.psi)
        for k, seed in enumerate(config.seeds or ())
    ]
    return ImageSet(
        np.concatenate([p.images for p in parts]),
        labels.copy(),
        list(generator.class_names),
        [p.provenance[0] for p in parts],
    )


def generate_shared(generator: Generator, labels: np.ndarray, config: SampleConfig) -> ImageSet:
    """``generator.generate(labels, …)``, each rank rendering a run of whole decode batches (so every image
    is rendered in the batch it has in one process), the images gathered on every rank."""
    step = decode_batch(config.device)
    batches = [(start, min(start + step, len(labels))) for start in range(0, len(labels), step)]

    def render(share: list[tuple[int, int]]) -> ImageSet:
        first, stop = (share[0][0], share[-1][1]) if share else (0, 0)
        return generator.generate(
            labels[first:stop],
            config.seed,
            truncation=config.truncation,
            device=config.device,
            first_index=first,
            psi=config.psi,
        )

    parts = run_shares(batches, render)
    if len(parts) == 1:
        return parts[0]
    return ImageSet(
        np.concatenate([p.images for p in parts]),
        np.concatenate([p.labels for p in parts]),
        list(generator.class_names),
        [prov for p in parts for prov in p.provenance],
    )


def grid_of(images: ImageSet, columns: int = 10, rows: int = 10, title: str | None = None) -> bytes:
    """A quick-look PNG: up to ``rows`` rows, one class per row (named on its left) when labels vary."""
    from augmentor.report.grids import grid_png

    picked = []
    classes = np.unique(images.labels)[:rows]
    for label in classes:
        picked.append(list(images.images[images.labels == label][:columns]))
    names: list[str] | None = [images.class_names[int(label)] for label in classes]
    if len(picked) == 1:
        flat = images.images[: columns * rows]
        picked = [list(flat[r : r + columns]) for r in range(0, len(flat), columns)]
        names = None  # rows are then just a wrapped sequence of one class
    return grid_png(picked, gap_after_first=False, row_labels=names, title=title)
