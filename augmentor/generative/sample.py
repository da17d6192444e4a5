"""``augmentor sample``: images from a DCGAN or VAE run written as an ImageFolder with a manifest."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from augmentor.core.errors import UserError
from augmentor.core.limits import IMAGES_OUT, check_count
from augmentor.core.outdir import check_output, check_output_file, write_file_atomic
from augmentor.core.parallel import default_workers
from augmentor.data.imageset import ImageSet
from augmentor.data.writers import Rendering, WriteResult, unrendered, write_imagefolder
from augmentor.distributed.output import is_main, on_every_rank
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
    check_count("--n", config.n, IMAGES_OUT)
    check_count("--per-class", config.per_class, IMAGES_OUT)


def sample_labels(generator: Generator, config: SampleConfig) -> np.ndarray:
    """The label of every image to make, from ``--n`` / ``--class`` / ``--per-class`` / ``--seeds``."""
    if config.seeds is not None:
        if generator.conditional and config.class_name is None and len(generator.class_names) > 1:
            raise UserError(f"{generator.where}: a conditional model needs --class with --seeds (e.g. --class 3)")
        label = generator.class_index(config.class_name) if config.class_name is not None else 0
        return np.full(len(config.seeds), label, dtype=np.int64)
    if config.per_class is not None and (config.n is not None or config.class_name is not None):
        raise UserError(
            "--per-class makes every class: give it without --n/--class, or --n N (--count N under torchrun) "
            "with an optional --class"
        )
    if config.per_class is not None:
        return balanced_labels(len(generator.class_names), config.per_class)
    if config.n is None:
        raise UserError("give --n N (--count N under torchrun; with an optional --class C) or --per-class N")
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

    The images are rendered batch by batch as they are written, never all held; under torchrun each rank
    renders and writes its share of the batches (``distributed.output``). ``--seeds`` images are few and
    rendered first.
    """

    def prepare() -> tuple[Generator, np.ndarray]:
        check_sample_config(config)
        check_output(out, overwrite, reads=[run, grid])
        if grid is not None:
            check_output_file(grid, overwrite, reads=[run, out])
        generator = Generator.from_run(run)
        return generator, sample_labels(generator, config)

    generator, labels = on_every_rank(prepare)
    rendering = None
    if config.seeds:
        images = generate_per_seed(generator, labels, config)
    else:
        images, rendering = planned_images(generator, labels, config)
    made = {"run": str(run), "run_id": generator.run_id, "kind": generator.kind, **generator.size_record}
    extra = {"generator": made, "seed": config.seed}
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
        rendering={"train": rendering} if rendering else None,
        asked_classes=config.class_name is not None,
    )
    if grid is not None and is_main():
        pixels = None if rendering is None else lambda indices: rendered_at(rendering, indices)
        title = grid_title(run, generator, images.labels, psi=config.psi, truncation=config.truncation)
        captions = [f"seed {seed}" for seed in config.seeds] if config.seeds else None
        write_file_atomic(grid, grid_of(images, title=title, pixels=pixels, captions=captions))
    return written


def grid_title(
    run: Path, generator: Generator, labels: np.ndarray, *, psi: float | None = None, truncation: float | None = None
) -> str:
    """The run's folder name and kind, the class when a conditional model made one class only, and ψ and the
    truncation when they were used (spelled "psi": the labels' font has no Greek)."""
    title = f"{Path(os.path.abspath(run)).name or run} ({generator.kind})"  # "." named, symlinks kept
    classes = np.unique(labels)
    if generator.conditional and len(classes) == 1:
        title += f", class {generator.class_names[int(classes[0])]}"
    if psi is not None:
        title += f", psi={psi:g}"
    if truncation is not None:
        title += f", truncation {truncation:g}"
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


def planned_images(generator: Generator, labels: np.ndarray, config: SampleConfig) -> tuple[ImageSet, Rendering]:
    """The images of ``generator.generate(labels, …)`` as labels and provenance, with how to render them: in
    whole decode batches, so each image is made in the batch one call would make it in (the same bytes
    whichever rank renders it, and however the writer groups the batches)."""
    step = decode_batch(config.device)
    batches = [(start, min(start + step, len(labels))) for start in range(0, len(labels), step)]

    def render(start: int, stop: int) -> np.ndarray:
        return generator.generate(
            labels[start:stop],
            config.seed,
            truncation=config.truncation,
            device=config.device,
            first_index=start,
            psi=config.psi,
        ).images

    provenance = generator.provenance(np.arange(len(labels)), config.seed, config.psi)
    images = unrendered(labels, list(generator.class_names), provenance, generator.image_shape)
    return images, Rendering(batches, render)


def rendered_at(rendering: Rendering, indices: list[int]) -> np.ndarray:
    """The images at ``indices`` (for the grid), each made in its own batch as when it was written."""
    wanted = sorted(set(indices))
    found: dict[int, np.ndarray] = {}
    for start, stop in rendering.batches:
        inside = [i for i in wanted if start <= i < stop]
        if inside:
            pixels = rendering.render(start, stop)
            found.update({i: pixels[i - start] for i in inside})
    return np.stack([found[i] for i in indices])


def grid_of(
    images: ImageSet,
    columns: int = 10,
    rows: int = 10,
    title: str | None = None,
    pixels: Callable[[list[int]], np.ndarray] | None = None,
    captions: list[str] | None = None,
) -> bytes:
    """A quick-look PNG: up to ``rows`` rows, one class per row (named on its left) when labels vary.
    ``pixels(indices)`` gives the images shown when ``images`` holds no pixels (``unrendered``); ``captions``
    (one per image, e.g. its seed) are written under the images shown."""
    from augmentor.report.grids import grid_png

    classes = np.unique(images.labels)[:rows]
    names: list[str] | None = [images.class_names[int(label)] for label in classes]
    if len(classes) == 1:  # rows are then just a wrapped sequence of one class
        shown = min(len(images), columns * rows)
        picks = [list(range(r, min(r + columns, shown))) for r in range(0, shown, columns)]
        names = None
    else:
        picks = [np.flatnonzero(images.labels == label)[:columns].tolist() for label in classes]
    flat = [i for row in picks for i in row]
    found = pixels(flat) if pixels is not None else images.images[flat]
    at = {i: found[k] for k, i in enumerate(flat)}
    cells = None if captions is None else [[captions[i] for i in row] for row in picks]
    pictures = [[at[i] for i in row] for row in picks]
    return grid_png(pictures, gap_after_first=False, row_labels=names, title=title, cell_labels=cells)
