"""Editing along a latent direction: move a sample's code by ``strength`` × the unit direction.

Rows are samples (seed codes, or image files encoded, or inverted for a DCGAN), columns are strengths. With
``condition_on`` the other direction is projected out first (d' = d − (d·o)o, renormalised), so
the edit leaves that attribute's projection unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from augmentor.core.errors import UserError
from augmentor.core.limits import GRID_IMAGES, check_count
from augmentor.generative.generator import Generator, parse_seeds  # noqa: F401 (parse_seeds: edit's --seeds)
from augmentor.latent.directions import load_directions

DEFAULT_SEEDS = (0, 1, 2, 3)


@dataclass
class EditResult:
    """R×S×C×H×W uint8 images (rows = samples, columns = strengths) and what made them."""

    images: np.ndarray
    strengths: list[float]
    parents: list[str]
    seeds: list[int]
    label: int
    direction: str
    condition_on: str | None  # the direction projected out first, if any
    generator: Generator


def parse_direction_spec(text: str, flag: str = "--direction") -> tuple[Path, str]:
    """``DIR:NAME`` → (DIR, NAME) (split at the last colon)."""
    folder, sep, name = text.rpartition(":")
    if not sep or not folder or not name:
        raise UserError(f"{flag} {text!r}: give DIR:NAME, a directions folder and a direction in it")
    return Path(folder), name


def parse_strengths(text: str) -> list[float]:
    """``-3:3:7`` (start:stop:count, both ends included) or a comma list ``-2,0,2``."""
    try:
        if ":" in text:
            start, stop, count = text.split(":")
            if int(count) < 1:
                raise ValueError
            check_count("--strengths (its COUNT)", int(count), GRID_IMAGES)  # before linspace allocates them
            return [float(v) for v in np.linspace(float(start), float(stop), int(count))]
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or not all(np.isfinite(values)):
        raise UserError(f"--strengths {text!r}: give START:STOP:COUNT (e.g. -3:3:7) or numbers separated by commas")
    return values


def named_direction(generator: Generator, spec: str, flag: str = "--direction") -> tuple[str, torch.Tensor]:
    """The unit vector of ``DIR:NAME`` (checked against the run), with the known names on error."""
    folder, name = parse_direction_spec(spec, flag)
    directions = load_directions(folder, generator)
    if name not in directions:
        raise UserError(f"{flag} {spec!r}: {folder} has no direction {name!r}; it has: {', '.join(directions)}")
    vector = directions[name]
    return name, vector / vector.norm()


def condition(direction: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """``direction`` with its component along ``other`` removed, renormalised."""
    other = other / other.norm()
    rest = direction - (direction @ other) * other
    norm = float(rest.norm())
    if norm < 1e-6:
        raise UserError("--condition-on: the two directions are parallel; nothing is left after projecting it out")
    return rest / norm


def edit_direction(generator: Generator, spec: str, condition_on: str | None = None) -> tuple[str, torch.Tensor]:
    """The edit direction of ``spec``, with ``condition_on``'s direction projected out when given."""
    name, direction = named_direction(generator, spec)
    if condition_on is not None:
        _, other = named_direction(generator, condition_on, "--condition-on")
        direction = condition(direction, other)
    return name, direction


def edit(
    run: Path,
    direction: str,
    strengths: list[float],
    *,
    condition_on: str | None = None,
    seeds: list[int] | None = None,
    images: list[Path] | None = None,
    seed: int = 0,
    class_name: str | None = None,
) -> EditResult:
    """Decode every sample's code moved by each strength along ``direction`` (``DIR:NAME``)."""
    from augmentor.latent.interpolate import encode_image

    if seeds and images:
        raise UserError("give --seeds or --images, not both")
    rows = len(seeds or images or DEFAULT_SEEDS)
    check_count("--seeds × --strengths (the grid's pictures)", rows * len(strengths), GRID_IMAGES)
    if not strengths:
        raise UserError("give at least one strength")
    generator = Generator.from_run(run)
    if class_name is not None and not generator.conditional and len(generator.class_names) > 1:
        raise UserError(f"{run}: an unconditional model cannot make images of a chosen class; leave out --class")
    label = generator.class_index(class_name) if class_name is not None else 0
    name, vector = edit_direction(generator, direction, condition_on)
    if images:
        codes = torch.stack([encode_image(generator, Path(path), label) for path in images])
        parents = [str(path) for path in images]
        row_seeds = [seed] * len(images)
    else:
        row_seeds = list(seeds or DEFAULT_SEEDS)
        codes = torch.stack([generator.latents(np.array([0]), k)[0] for k in row_seeds])
        parents = [str(k) for k in row_seeds]
    steps = torch.tensor(strengths, dtype=torch.float32)
    moved = (codes.float()[:, None, :] + steps[None, :, None] * vector[None, None, :]).reshape(-1, codes.shape[1])
    labels = np.full(len(moved), label, dtype=np.int64)
    pixels = generator.decode(moved, labels, device="cpu")
    other = parse_direction_spec(condition_on, "--condition-on")[1] if condition_on else None
    return EditResult(
        pixels.reshape(len(codes), len(strengths), *pixels.shape[1:]),
        [float(s) for s in strengths],
        parents,
        row_seeds,
        label,
        name,
        other,
        generator,
    )


def edit_run(
    run: Path,
    direction: str,
    strengths: list[float],
    out: Path,
    *,
    condition_on: str | None = None,
    seeds: list[int] | None = None,
    images: list[Path] | None = None,
    class_name: str | None = None,
    overwrite: bool = False,
    command: str = "",
) -> EditResult:
    """``augmentor edit``: refuse a taken ``out`` first, then edit the samples and write the grid or folder."""
    check_edit_out(
        out, overwrite, reads=[run, direction.rsplit(":", 1)[0], *(images or [])]
    )  # before the model is loaded
    result = edit(
        run, direction, strengths, condition_on=condition_on, seeds=seeds, images=images, class_name=class_name
    )
    write_edit(result, out, overwrite=overwrite, command=command)
    return result


def check_edit_out(out: Path, overwrite: bool = False, reads: Iterable[str | Path | None] = ()) -> None:
    """Refuse a taken ``out``: a .png file that exists, or a folder that is not empty, unless ``overwrite``;
    and one that overlaps what the edit reads (``reads``: the run, the directions, the images)."""
    from augmentor.core.outdir import check_output, check_output_file

    if out.suffix.lower() == ".png":
        check_output_file(out, overwrite, reads=reads)
    else:
        check_output(out, overwrite, reads=reads)


def strength_name(strength: float) -> str:
    """``-2``, ``0``, ``+1.5``: the sign shown, as the flag's values were written."""
    return "0" if strength == 0 else f"{strength:+g}"


def edit_labels(result: EditResult) -> dict[str, Any]:
    """The grid's labels: strengths over the columns, the sample (seed or file) of each row, the direction on top."""
    rows = [
        f"seed {seed}" if parent == str(seed) else Path(parent).name  # a seed row's parent is its seed
        for parent, seed in zip(result.parents, result.seeds, strict=True)
    ]
    title = result.direction + (f" (conditioned on {result.condition_on})" if result.condition_on else "")
    if result.generator.conditional:
        title += f", class {result.generator.class_names[result.label]}"
    return {"row_labels": rows, "column_labels": [strength_name(s) for s in result.strengths], "title": title}


def write_edit(result: EditResult, out: Path, *, overwrite: bool = False, command: str = "") -> Any:
    """A grid PNG (``out`` ends in .png) or an ImageFolder with a manifest."""
    from augmentor.core.outdir import write_file_atomic
    from augmentor.report.grids import grid_png

    check_edit_out(out, overwrite)
    if out.suffix.lower() == ".png":
        rows = [list(row) for row in result.images]
        labels = edit_labels(result)
        write_file_atomic(out, grid_png(rows, gap_after_first=False, **labels))
        return out
    from augmentor.data.imageset import ImageSet
    from augmentor.data.writers import write_imagefolder

    generator = result.generator
    rows, columns = result.images.shape[:2]
    provenance = [
        {
            "source": "edit",
            "run_id": generator.run_id,
            "seed": result.seeds[r],
            "parent": result.parents[r],
            "direction": result.direction,
            "strength": result.strengths[c],
            "pipeline": f"condition-on={result.condition_on}" if result.condition_on else None,
        }
        for r in range(rows)
        for c in range(columns)
    ]
    image_set = ImageSet(
        result.images.reshape(rows * columns, *result.images.shape[2:]),
        np.full(rows * columns, result.label, dtype=np.int64),
        list(generator.class_names),
        provenance,
    )
    # Edited images are written as a train split: from test images, that is how a test set leaks into training.
    from augmentor.core.console import warn
    from augmentor.data.imagefolder import held_out_paths_warning

    warnings = held_out_paths_warning(
        [Path(parent) for parent in result.parents],
        "are edited into a train split here: do not train on edits of test images",
    )
    for message in warnings:
        warn(message)
    extra = {"warnings": warnings} if warnings else None
    return write_imagefolder(out, {"train": image_set}, overwrite=overwrite, command=command, extra_summary=extra)
