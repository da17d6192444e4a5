"""Interpolation between latent codes: spherical (slerp, the default for Gaussian codes) or linear.

Endpoints are seeds (a code drawn from the seed's stream), classes (a conditional model keeps one code
while the class embedding moves), or image files (a VAE's encoder mean, a DCGAN's inverted code). Several
pairs make several rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from augmentor.core.errors import UserError
from augmentor.core.limits import FRAMES, GRID_IMAGES, check_count
from augmentor.core.outdir import check_output_file, write_file_atomic
from augmentor.generative.generator import Generator

METHODS = ("slerp", "lerp")


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation of rows ``a`` → ``b`` at fractions ``t`` (K,): K×D codes.

    The angle is taken between the directions and the norm is interpolated linearly, so the endpoints
    come back exactly and, for codes of equal norm, every point stays on that sphere.
    """
    a, b = a.double(), b.double()
    norm_a, norm_b = a.norm(), b.norm()
    unit_a, unit_b = a / norm_a, b / norm_b
    omega = torch.arccos((unit_a * unit_b).sum().clamp(-1.0, 1.0))
    t = t.double()[:, None]
    if float(omega) < 1e-6:  # (nearly) parallel: slerp degenerates to lerp
        direction = (1 - t) * unit_a + t * unit_b
    else:
        direction = (torch.sin((1 - t) * omega) * unit_a + torch.sin(t * omega) * unit_b) / torch.sin(omega)
    return (direction * ((1 - t) * norm_a + t * norm_b)).float()


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Straight-line interpolation of ``a`` → ``b`` at fractions ``t``: K×D codes."""
    t = t.float()[:, None]
    return (1 - t) * a.float() + t * b.float()


@dataclass(frozen=True)
class Endpoint:
    """A latent code and a class label (the label moves only between class endpoints)."""

    code: torch.Tensor
    label: int


def _is_seed(text: str) -> bool:
    return text.lstrip("-").isdigit()


def is_class_endpoint(generator: Generator, text: str) -> bool:
    """A --from/--to that names one of the model's classes (a seed is never one, even a class named "3")."""
    return not _is_seed(text) and text in generator.class_names


def resolve_endpoint(generator: Generator, text: str, seed: int, label: int = 0) -> Endpoint:
    """``text`` is a seed (``7``), a class (``Sneaker``, with ``seed``'s code) or an image file.

    ``label`` is the class of seed and image endpoints (conditional models).
    """
    if _is_seed(text):
        return Endpoint(generator.latents(np.array([0]), int(text))[0], label)
    if is_class_endpoint(generator, text):
        if not generator.conditional:
            raise UserError(f"{generator.where}: an unconditional model has no class to move to ({text!r})")
        return Endpoint(generator.latents(np.array([0]), seed)[0], generator.class_names.index(text))
    path = Path(text)
    if path.is_file():
        return Endpoint(encode_image(generator, path, label), label)
    raise UserError(
        f"--from/--to {text!r}: not a seed, a class of {generator.where} ({', '.join(generator.class_names)}), "
        "or an image file"
    )


def encode_image(generator: Generator, path: Path, label: int = 0) -> torch.Tensor:
    """The latent code of one image file: the encoder's mean, or an inversion (``augmentor project``) without one."""
    if not generator.can_encode:
        from augmentor.latent.inversion import project

        class_name = generator.class_names[label] if generator.conditional else None
        result = project(generator.run, [path], class_name=class_name, device="cpu")
        return torch.from_numpy(result.images[0].code).float()
    from augmentor.latent.inversion import read_model_image

    image = read_model_image(generator, path)
    return generator.encode(image[None], np.array([label]), device="cpu")[0]


def interpolate_run(
    run: Path,
    starts: list[str],
    ends: list[str],
    out: Path,
    *,
    frames: int = 8,
    method: str = "slerp",
    seed: int = 0,
    class_name: str | None = None,
    overwrite: bool = False,
) -> Path:
    """``augmentor interpolate``: check the pairs and ``out``, then write a row from each start to its end."""
    if len(starts) != len(ends):
        raise UserError(f"give as many --to as --from ({len(starts)} --from, {len(ends)} --to)")
    check_count("--from × --frames", len(starts) * frames, GRID_IMAGES)  # one picture of rows × frames
    check_interpolation_out(out, overwrite, reads=[run, *starts, *ends])  # before the model is loaded
    pairs = list(zip(starts, ends, strict=True))
    rows, generator = interpolation_rows(run, pairs, frames, method, seed, class_name)
    labels, title = interpolation_labels(generator, pairs, method, seed, class_name)
    return write_interpolation(rows, out, overwrite, row_labels=labels, title=title)


def interpolation_labels(
    generator: Generator, pairs: list[tuple[str, str]], method: str, seed: int, class_name: str | None
) -> tuple[list[str], str]:
    """Each row's label and the title, saying what the rows are. A row with a class endpoint blends the class
    with the code kept (``Dress -> Coat``); any other row moves the code by ``method`` within one class
    (``--class``, else the first), named in the title when every row is such a row, else in the row's label."""

    fixed = None  # the class of seed and image endpoints
    if generator.conditional:
        fixed = generator.class_names[generator.class_index(class_name) if class_name is not None else 0]
    blends = [is_class_endpoint(generator, start) or is_class_endpoint(generator, end) for start, end in pairs]

    def name(text: str, blend: bool) -> str:
        if blend and fixed and not is_class_endpoint(generator, text):  # a seed or image beside a class end
            return f"{endpoint_name(text)} ({fixed})"
        return endpoint_name(text)

    labels = []
    for (start, end), blend in zip(pairs, blends, strict=True):
        label = f"{name(start, blend)} -> {name(end, blend)}"
        labels.append(f"{label}, {fixed}" if fixed and not blend and any(blends) else label)
    kinds = ([f"{method} interpolation"] if not all(blends) else []) + (["class blend"] if any(blends) else [])
    title = f"{' / '.join(kinds)} ({generator.kind})"
    if fixed and not any(blends):
        title += f", class {fixed}"
    if all(is_class_endpoint(generator, start) and is_class_endpoint(generator, end) for start, end in pairs):
        title += f", code of seed {seed}"
    return labels, title


def endpoint_name(text: str) -> str:
    """A short name for a --from/--to: ``seed 7``, a class name, or an image's file name."""
    if _is_seed(text):
        return f"seed {text}"
    path = Path(text)
    return path.name if path.is_file() else text


def interpolation_rows(
    run: Path,
    pairs: list[tuple[str, str]],
    frames: int,
    method: str = "slerp",
    seed: int = 0,
    class_name: str | None = None,
) -> tuple[list[np.ndarray], Generator]:
    """One row of ``frames`` uint8 C×H×W images per (from, to) pair."""
    if method not in METHODS:
        raise UserError(f"--method {method!r} is unknown; use one of {', '.join(METHODS)}")
    if not 2 <= frames <= FRAMES.value():
        raise UserError(f"--frames must be 2..{FRAMES.value()} (one row of pictures), got {frames}; {FRAMES.lift()}")
    if not pairs:
        raise UserError("give at least one --from A --to B pair")
    generator = Generator.from_run(run)
    label = generator.class_index(class_name) if class_name is not None else 0
    t = torch.linspace(0, 1, frames)
    rows = []
    for start, end in pairs:
        a, b = resolve_endpoint(generator, start, seed, label), resolve_endpoint(generator, end, seed, label)
        codes = (slerp if method == "slerp" else lerp)(a.code, b.code, t)
        if a.label != b.label:  # class endpoints: the code stays, the class embedding moves
            codes = a.code[None].repeat(frames, 1)
        labels = _label_path(generator, a.label, b.label, t)
        rows.append(generator.decode(codes, labels, device="cpu"))
    return rows, generator


def _label_path(generator: Generator, start: int, end: int, t: torch.Tensor) -> torch.Tensor | None:
    """Per frame, class weights blending ``start`` into ``end`` (None for an unconditional model)."""
    if not generator.conditional:
        return None
    weights = torch.zeros(len(t), len(generator.class_names))
    weights[:, start] += 1 - t
    weights[:, end] += t
    return weights


def check_interpolation_out(out: Path, overwrite: bool = False, reads: Iterable[str | Path | None] = ()) -> None:
    """Refuse an ``--out`` that is not a .png or .gif name, that exists without ``overwrite``, or that
    overlaps what the command reads (``reads``)."""
    if out.suffix.lower() not in (".png", ".gif"):
        raise UserError(f"{out}: give a .png (grid) or .gif (animation) file name")
    check_output_file(out, overwrite, reads=reads)


def write_interpolation(
    rows: list[np.ndarray],
    out: Path,
    overwrite: bool = False,
    *,
    row_labels: list[str] | None = None,
    title: str | None = None,
) -> Path:
    """A grid PNG (one row per pair, a column per position t) or an animated GIF (one frame per position, a
    row per pair); ``row_labels`` name the pairs in a margin wide enough for them, ``title`` tops both, and
    each GIF frame says its t."""
    from augmentor.report.grids import grid_picture, grid_png, labelled_gif_bytes

    check_interpolation_out(out, overwrite)
    positions = [f"t={t:.2f}" for t in np.linspace(0, 1, rows[0].shape[0])]  # as interpolation_rows spaces them
    if out.suffix.lower() == ".png":
        grid = grid_png(
            [list(row) for row in rows],
            gap_after_first=False,
            row_labels=row_labels,
            column_labels=positions,
            title=title,
        )
        write_file_atomic(out, grid)
        return out
    frames = [
        grid_picture(
            [[row[k]] for row in rows],  # one frame: every pair at this t, one above the other
            gap_after_first=False,
            row_labels=row_labels,
            title=f"{title} · {position}" if title else position,
        )
        for k, position in enumerate(positions)
    ]
    write_file_atomic(out, labelled_gif_bytes(frames, bounce=True))
    return out
