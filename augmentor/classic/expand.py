"""Classic expansion: apply a pipeline to chosen parents in worker processes, reproducibly.

Every augmented image has its own seed (in the manifest):
``pipeline.set_random_state(np.random.default_rng(seed), random.Random(seed))`` then
``pipeline(image=parent)`` reproduces it exactly, whatever the worker count was (``seed_compose``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from augmentor.classic.pipelines import Pipeline, load_pipeline, probe_pipeline, seed_compose
from augmentor.classic.quotas import per_class_parents, per_image_parents
from augmentor.core.console import progress
from augmentor.core.errors import UserError
from augmentor.core.limits import IMAGES_OUT, check_count
from augmentor.core.outdir import check_output
from augmentor.core.parallel import default_workers, parallel_map
from augmentor.data.imageset import Dataset, ImageSet
from augmentor.data.options import ReadOptions
from augmentor.data.readers import open_dataset
from augmentor.data.writers import Rendering, WriteResult, unrendered, write_imagefolder
from augmentor.distributed.output import on_every_rank, run_shares
from augmentor.report.grids import grid_png

_CHUNK = 128
_WRITE_BATCH = 1024  # rows of the expanded split per unit of writing (a rank's share is whole units)
_PREVIEW_ROWS = 10  # one row per class: all of a 10-class dataset
_PREVIEW_COPIES = 7


@dataclass(frozen=True)
class ClassicConfig:
    """``augmentor classic`` options (field names = flag names)."""

    pipeline: str = "medium"
    per_image: int | None = None
    per_class: int | None = None
    include_originals: bool = True
    no_flip_classes: tuple[str, ...] = ()
    no_flip: bool = False  # drop the pipeline's mirroring transforms for every class
    workers: int = 0
    seed: int = 0


@dataclass
class ClassicResult:
    """What ``run_classic`` wrote: the dataset, and its preview grid unless nothing was augmented."""

    written: WriteResult
    preview: Path | None


# Built pipelines per worker process, keyed by name: building costs more than applying.
_built: dict[str, object] = {}


def _augment_chunk(shared: tuple, task: tuple[int, int]) -> np.ndarray:
    images, parents, seeds, variant, pipelines = shared
    start, stop = task
    out = np.empty((stop - start, *images.shape[1:]), dtype=np.uint8)
    for j, i in enumerate(range(start, stop)):
        pipeline: Pipeline = pipelines[variant[i]]
        compose = _built.get(pipeline.name)
        if compose is None:
            compose = _built[pipeline.name] = pipeline.build()
        seed_compose(compose, int(seeds[i]))
        try:
            result = compose(image=images[parents[i]].transpose(1, 2, 0))["image"]
        except Exception as error:  # noqa: BLE001 - albumentations refuses the image: a crop larger than it, ...
            detail = " ".join(str(error).split())
            if isinstance(error, KeyError):  # a transform of boxes, masks or keypoints: size is not the problem
                raise UserError(
                    f"pipeline {pipeline.name} needs {detail}, which classic expansion does not give (it passes the "
                    "image alone); remove the transforms that work on bounding boxes, masks or keypoints only"
                ) from None
            raise UserError(
                f"pipeline {pipeline.name} cannot run on {images.shape[2]}×{images.shape[3]}×{images.shape[1]} "
                f"images ({type(error).__name__}: {detail}); fix the pipeline for this size or resize the data "
                "with --image-size"
            ) from None
        if result.ndim == 2:
            result = result[:, :, None]
        if result.dtype != np.uint8 or result.shape != (images.shape[2], images.shape[3], images.shape[1]):
            raise UserError(
                f"pipeline {pipeline.name} turned a {images.shape[2]}×{images.shape[3]}×{images.shape[1]} "
                f"uint8 image into {'×'.join(map(str, result.shape))} {result.dtype}; classic expansion "
                "keeps size, channels and uint8 (remove Resize/crops/Normalize/ToFloat, or resize the "
                "data with --image-size)"
            )
        out[j] = result.transpose(2, 0, 1)
    return out


@dataclass(frozen=True)
class AugmentPlan:
    """Augmented copies decided but not made: each copy's parent, seed and pipeline (with or without flips).

    A copy depends only on its own row, so rows can be made in any pieces, anywhere (a worker, a rank)."""

    image_set: ImageSet
    parents: np.ndarray
    seeds: np.ndarray
    variant: np.ndarray  # 1: the parent's class is kept from flips
    pipelines: tuple[Pipeline, Pipeline]  # (the pipeline, the pipeline without flips)

    def __len__(self) -> int:
        return len(self.parents)

    @property
    def labels(self) -> np.ndarray:
        return self.image_set.labels[self.parents]

    def provenance(self) -> list[dict]:
        origins = self.image_set.provenance
        return [
            {
                "source": "classic",
                "parent": origins[p].get("origin"),
                "pipeline": self.pipelines[v].name,
                "seed": int(s),
            }
            for p, s, v in zip(self.parents.tolist(), self.seeds.tolist(), self.variant.tolist(), strict=True)
        ]

    def render(self, start: int, stop: int, workers: int, advance=None) -> np.ndarray:
        """Copies ``start:stop``, made in chunks over ``workers`` processes."""
        shared = (self.image_set.images, self.parents, self.seeds, self.variant, self.pipelines)
        tasks = [(a, min(a + _CHUNK, stop)) for a in range(start, stop, _CHUNK)]
        on_result = None if advance is None else (lambda t, _: advance(t[1] - t[0]))
        chunks = parallel_map(_augment_chunk, shared, tasks, workers, on_result=on_result)
        return np.concatenate(chunks) if chunks else np.zeros((0, *self.image_set.images.shape[1:]), np.uint8)

    def rows(self, indices: list[int]) -> dict[int, np.ndarray]:
        """Copies at ``indices`` (a preview's few), each made alone, as in any chunk."""
        return {i: self.render(i, i + 1, workers=1)[0] for i in indices}


def augment_plan(
    image_set: ImageSet,
    pipeline: Pipeline,
    parents: np.ndarray,
    seed: int,
    no_flip_labels: frozenset[int] = frozenset(),
) -> AugmentPlan:
    """One copy per entry of ``parents`` (indices into ``image_set``): every seed drawn, nothing made yet."""
    seeds = np.random.SeedSequence([seed, 1]).generate_state(len(parents), dtype=np.uint32)
    variant = np.isin(image_set.labels[parents], list(no_flip_labels)).astype(np.int64)
    return AugmentPlan(image_set, parents, seeds, variant, (pipeline, pipeline.without_flips()))


def augment(
    image_set: ImageSet,
    pipeline: Pipeline,
    parents: np.ndarray,
    seed: int,
    *,
    no_flip_labels: frozenset[int] = frozenset(),
    workers: int = 1,
) -> ImageSet:
    """One augmented copy per entry of ``parents`` (indices into ``image_set``), all in memory."""
    plan = augment_plan(image_set, pipeline, parents, seed, no_flip_labels)
    tasks = [(s, min(s + _CHUNK, len(plan))) for s in range(0, len(plan), _CHUNK)]

    def augment_share(share: list[tuple[int, int]]) -> list[np.ndarray]:
        if not share:
            return []
        with progress(f"augmenting ({pipeline.name})", sum(stop - start for start, stop in share)) as advance:
            return [plan.render(share[0][0], share[-1][1], workers, advance)]

    # Under torchrun each rank augments its share of the chunks (inside a gain job: all of them).
    chunks = [chunk for share in run_shares(tasks, augment_share) for chunk in share]
    images = np.concatenate(chunks) if chunks else np.zeros((0, *image_set.images.shape[1:]), np.uint8)
    return ImageSet(images, plan.labels, list(image_set.class_names), plan.provenance())


def choose_parents(image_set: ImageSet, config: ClassicConfig) -> np.ndarray:
    """Parent indices for ``--per-image`` or ``--per-class``."""
    if (config.per_image is None) == (config.per_class is None):
        raise UserError("give exactly one of --per-image K or --per-class N")
    if config.per_image is not None:
        check_count("--per-image × images", config.per_image * len(image_set), IMAGES_OUT)
        return per_image_parents(len(image_set), config.per_image)
    check_count("--per-class × classes", config.per_class * len(image_set.class_names), IMAGES_OUT)
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, 0]))
    return per_class_parents(
        image_set.labels, len(image_set.class_names), config.per_class, config.include_originals, rng
    )


@dataclass
class Expansion:
    """The expanded set (originals first when included), its augmented part, and their parents."""

    expanded: ImageSet
    augmented: ImageSet
    parents: np.ndarray


def plan_expansion(image_set: ImageSet, config: ClassicConfig) -> tuple[np.ndarray, frozenset[int]]:
    """The parents to augment and the labels kept from flips: every check of ``config`` against the data."""
    unknown = sorted(set(config.no_flip_classes) - set(image_set.class_names))
    if unknown:
        raise UserError(f"--no-flip-classes names unknown classes {unknown}; known: {image_set.class_names}")
    no_flip = frozenset(image_set.class_names.index(c) for c in config.no_flip_classes)
    return choose_parents(image_set, config), no_flip


def expand(
    image_set: ImageSet,
    config: ClassicConfig,
    pipeline: Pipeline | None = None,
    *,
    plan: tuple[np.ndarray, frozenset[int]] | None = None,
) -> Expansion:
    """Augment ``image_set`` as ``config`` says (``plan``: ``plan_expansion``'s answer, when already made)."""
    pipeline = pipeline or load_pipeline(config.pipeline, image_shape=(*image_set.size, image_set.channels))
    parents, no_flip = plan or plan_expansion(image_set, config)
    workers = config.workers or default_workers()
    augmented = augment(image_set, pipeline, parents, config.seed, no_flip_labels=no_flip, workers=workers)
    expanded = image_set.concat(augmented) if config.include_originals else augmented
    return Expansion(expanded, augmented, parents)


def preview_rows(copies: AugmentPlan) -> tuple[list[list[np.ndarray]], list[str]]:
    """Rows of one parent followed by its copies, one row per class (up to ``_PREVIEW_ROWS``), and each
    row's class name; the copies shown are made here (a few dozen).

    Each class shows the parent with the most copies (the first such): ``--per-class`` spreads copies
    thinly, and the first parent alone may have a single one.
    """
    originals = copies.image_set
    by_parent: dict[int, list[int]] = {}
    for i, p in enumerate(copies.parents.tolist()):
        by_parent.setdefault(p, []).append(i)
    chosen: list[int] = []
    for label in range(len(originals.class_names)):
        candidates = [p for p in by_parent if originals.labels[p] == label]
        if candidates:
            chosen.append(max(candidates, key=lambda p: min(len(by_parent[p]), _PREVIEW_COPIES)))
        if len(chosen) == _PREVIEW_ROWS:
            break
    made = copies.rows([i for p in chosen for i in by_parent[p][:_PREVIEW_COPIES]])
    rows = [[originals.images[p]] + [made[i] for i in by_parent[p][:_PREVIEW_COPIES]] for p in chosen]
    return rows, [originals.class_names[int(originals.labels[p])] for p in chosen]


def preview_png(copies: AugmentPlan) -> bytes:
    """The preview grid: class names on the left, "original" then "copy 1", "copy 2"… above, the pipeline on top."""
    rows, names = preview_rows(copies)
    columns = ["original"] + [f"copy {k}" for k in range(1, max(len(row) for row in rows))]
    return grid_png(rows, row_labels=names, column_labels=columns, title=copies.pipelines[0].name)


def planned_train(copies: AugmentPlan, include_originals: bool, workers: int) -> tuple[ImageSet, Rendering]:
    """The expanded train split (originals first when included, then the copies) as labels and provenance,
    with how to render its rows: originals are copied, copies are made (``AugmentPlan.render``)."""
    train = copies.image_set
    names = list(train.class_names)
    held = len(train) if include_originals else 0
    labels = np.concatenate([train.labels[:held], copies.labels])
    provenance = train.provenance[:held] + copies.provenance()
    expanded = unrendered(labels, names, provenance, train.images.shape[1:])

    def render(start: int, stop: int) -> np.ndarray:
        parts = [train.images[start : min(stop, held)]] if start < held else []
        if stop > held:
            parts.append(copies.render(max(start, held) - held, stop - held, workers))
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    batches = [(start, min(start + _WRITE_BATCH, len(labels))) for start in range(0, len(labels), _WRITE_BATCH)]
    return expanded, Rendering(batches, render)


def run_classic(
    src: str,
    config: ClassicConfig,
    read_options: ReadOptions,
    out: Path,
    *,
    overwrite: bool = False,
    command: str = "",
) -> ClassicResult:
    """Read ``src``, expand its train split, carry any test split over untouched, write ``out``.

    The copies are made as they are written, in bounded groups, never all held; under torchrun each rank
    makes and writes its share of them (``distributed.output``).
    """

    def prepare() -> tuple[Pipeline, Dataset, tuple[np.ndarray, frozenset[int]]]:
        if (config.per_image is None) == (config.per_class is None):
            raise UserError("give exactly one of --per-image K or --per-class N")
        if config.no_flip and config.no_flip_classes:
            raise UserError("--no-flip already keeps every class from flips: drop --no-flip-classes")
        check_output(out, overwrite, source=src)
        pipeline, dataset = load_pipeline(config.pipeline, probe=False), open_dataset(src, read_options)
        probe_pipeline(pipeline, (*dataset.train.size, dataset.train.channels))  # the data's own size as well
        if config.no_flip:  # the written pipeline.yaml is then the one that ran
            pipeline = pipeline.without_flips()
        return pipeline, dataset, plan_expansion(dataset.train, config)

    pipeline, dataset, plan = on_every_rank(prepare)  # a bad input is then reported once
    train = dataset.train
    parents, no_flip = plan
    copies = augment_plan(train, pipeline, parents, config.seed, no_flip)
    expanded, rendering = planned_train(copies, config.include_originals, config.workers or default_workers())
    splits = {"train": expanded, **{k: v for k, v in dataset.splits.items() if k != "train"}}
    files = {"pipeline.yaml": pipeline.dump("yaml").encode()}
    if config.no_flip_classes:
        files["pipeline-noflip.yaml"] = pipeline.without_flips().dump("yaml").encode()
    preview = preview_png(copies) if len(copies) else None
    if preview:
        files["preview.png"] = preview
    extra = {
        "source": src,
        "pipeline": {
            "name": pipeline.name,
            "file": "pipeline.yaml",
            "no_flip_classes": list(config.no_flip_classes),
            "no_flip": config.no_flip,
        },
        "seed": config.seed,
        "quota": {"per_image": config.per_image} if config.per_image else {"per_class": config.per_class},
        "include_originals": config.include_originals,
        "warnings": dataset.warnings,  # the reader's (a path list reaching into test/), said when read
    }
    written = write_imagefolder(
        out,
        splits,
        overwrite=overwrite,
        workers=config.workers or default_workers(),
        command=command,
        extra_summary=extra,
        extra_files=files,
        rendering={"train": rendering},
    )
    return ClassicResult(written, out / "preview.png" if preview else None)
