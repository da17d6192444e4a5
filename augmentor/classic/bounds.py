"""One rule for the values a pipeline file declares: every argument that sets an allocation, a kernel or a loop.

A few bytes of YAML can ask albumentations for gigabytes or hours: ``GaussianBlur(sigma_limit=1e6)`` derives a
seven-million-pixel kernel, ``CoarseDropout(num_holes_range=[1e9, 1e9])`` draws a billion holes,
``Affine(scale=1e4)`` makes OpenCV try a multi-GB warp, and once OpenCV is inside such a call the process
ignores SIGTERM and SIGINT. So every such argument is named below with the cap that bounds it, and a file
asking for more is refused before albumentations builds anything, naming the field, the value, the cap and
its variable.

The table was made by walking every transform of albumentations 2.0.8's registry and trying each numeric
argument at 10^6 on a 64×64 image (under a memory and time limit): each argument that then ran out of memory
or time is here, with those that set a size, a sigma, a kernel, a scale or a count of anything drawn. What
the table cannot see (an angle that makes ``fit_output`` huge, a legal grid that is slow on large images)
the probe catches (``augmentor.classic.probe``).

Values may be scalars, ``[lo, hi]`` ranges, ``{"x": …, "y": …}`` mappings or nested lists; every number in
them counts, its magnitude compared (a negative scale limit asks as much as a positive one), and numbers
written as strings count too (albumentations' pydantic turns ``"1e6"`` into 1000000.0).
"""

from __future__ import annotations

import contextlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from augmentor.core.errors import UserError
from augmentor.core.limits import (
    PIPELINE_COUNT,
    PIPELINE_KERNEL,
    PIPELINE_SCALE,
    PIPELINE_SIDE,
    PIPELINE_SIGMA,
    Cap,
)

_UNITS = {PIPELINE_SIDE: " px", PIPELINE_SIGMA: " px", PIPELINE_KERNEL: " px", PIPELINE_SCALE: "×"}


@dataclass(frozen=True)
class Bound:
    """An argument's bound: its largest number at most ``cap``, or with ``cells`` the product of its two
    numbers (an x × y grid: 100 × 100 cells cost what 10,000 holes do)."""

    cap: Cap
    cells: bool = False


SIDE, SIGMA, KERNEL, SCALE, COUNT = (
    Bound(c) for c in (PIPELINE_SIDE, PIPELINE_SIGMA, PIPELINE_KERNEL, PIPELINE_SCALE, PIPELINE_COUNT)
)
CELLS = Bound(PIPELINE_COUNT, cells=True)

# Size arguments, whichever transform holds them (Resize, crops, PadIfNeeded, LongestMaxSize, Superpixels …).
ANY_TRANSFORM: dict[str, Bound] = {
    key: SIDE for key in ("height", "width", "size", "max_size", "max_size_hw", "min_height", "min_width", "crop_size")
}

BOUNDS: dict[str, dict[str, Bound]] = {
    # blurs: kernels and sigmas
    "AdvancedBlur": {"blur_limit": KERNEL, "sigma_x_limit": SIGMA, "sigma_y_limit": SIGMA},
    "Blur": {"blur_limit": KERNEL},
    "Defocus": {"radius": KERNEL, "alias_blur": SIGMA},
    "GaussianBlur": {"blur_limit": KERNEL, "sigma_limit": SIGMA},
    "GlassBlur": {"sigma": SIGMA, "max_delta": KERNEL, "iterations": COUNT},
    "MedianBlur": {"blur_limit": KERNEL},
    "MotionBlur": {"blur_limit": KERNEL},
    "RingingOvershoot": {"blur_limit": KERNEL},
    "Sharpen": {"kernel_size": KERNEL, "sigma": SIGMA},
    "UnsharpMask": {"blur_limit": KERNEL, "sigma_limit": SIGMA},
    "ZoomBlur": {"max_factor": SCALE},
    "Morphological": {"scale": KERNEL},  # the structuring element's size
    "Spatter": {"gauss_sigma": SIGMA},
    # geometry: scales, displacements, grids
    "Affine": {"scale": SCALE},
    "ShiftScaleRotate": {"scale_limit": SCALE},
    "RandomScale": {"scale_limit": SCALE},
    "Perspective": {"scale": SCALE},
    "PiecewiseAffine": {"scale": SCALE, "nb_rows": COUNT, "nb_cols": COUNT},
    "ThinPlateSpline": {"scale_range": SCALE, "num_control_points": COUNT},
    "ElasticTransform": {"alpha": SIDE, "sigma": SIGMA},  # alpha: the displacement, in pixels
    "GridDistortion": {"num_steps": COUNT},
    "GridElasticDeform": {"num_grid_xy": CELLS, "magnitude": SIDE},
    "CLAHE": {"tile_grid_size": CELLS},
    "RandomGridShuffle": {"grid": CELLS},
    "Mosaic": {"grid_yx": CELLS, "target_size": SIDE, "cell_shape": SIDE},
    # pads and crops
    "Crop": {"x_min": SIDE, "y_min": SIDE, "x_max": SIDE, "y_max": SIDE},
    "CropAndPad": {"px": SIDE, "percent": SCALE},
    "Pad": {"padding": SIDE},
    "Pad3D": {"padding": SIDE},
    "PadIfNeeded": {"pad_height_divisor": SIDE, "pad_width_divisor": SIDE},
    "PadIfNeeded3D": {"min_zyx": SIDE, "pad_divisor_zyx": SIDE},
    "RandomSizedCrop": {"min_max_height": SIDE},
    # holes and masks
    "CoarseDropout": {"num_holes_range": COUNT, "hole_height_range": SIDE, "hole_width_range": SIDE},
    "CoarseDropout3D": {
        "num_holes_range": COUNT,
        "hole_depth_range": SIDE,
        "hole_height_range": SIDE,
        "hole_width_range": SIDE,
    },
    "ConstrainedCoarseDropout": {"num_holes_range": COUNT, "hole_height_range": SIDE, "hole_width_range": SIDE},
    "GridDropout": {"holes_number_xy": CELLS, "unit_size_range": SIDE, "shift_xy": SIDE},
    "XYMasking": {"num_masks_x": COUNT, "num_masks_y": COUNT, "mask_x_length": SIDE, "mask_y_length": SIDE},
    "TimeMasking": {"time_mask_param": SIDE},
    "FrequencyMasking": {"freq_mask_param": SIDE},
    "MaskDropout": {"max_objects": COUNT},
    "ChannelDropout": {"channel_drop_range": COUNT},
    # things drawn on the image
    "RandomRain": {"drop_length": SIDE, "drop_width": SIDE, "blur_value": KERNEL},
    "RandomSunFlare": {"src_radius": SIDE, "num_flare_circles_range": COUNT},
    "RandomShadow": {"num_shadows_limit": COUNT, "shadow_dimension": COUNT},
    "RandomGravel": {"number_of_patches": COUNT},
    "PlasmaBrightnessContrast": {"plasma_size": SIDE},
    "PlasmaShadow": {"plasma_size": SIDE},
    "Superpixels": {"n_segments": COUNT},
    # output channels, transforms applied per call
    "ToGray": {"num_output_channels": COUNT},
    "ToRGB": {"num_output_channels": COUNT},
    "SomeOf": {"n": COUNT},
    "RandomOrder": {"n": COUNT},
}

# What albumentations 2.0.8 takes when a bounded argument is left out, for the derived bounds below.
_GAUSSIAN_DEFAULTS = {"blur_limit": 0, "sigma_limit": [0.5, 3.0]}
_ZOOM_DEFAULTS = {"max_factor": [1.0, 1.31], "step_factor": [0.01, 0.03]}


def _numbers(value: Any) -> list[float]:
    """Every number in an argument: scalars, lists, mappings' values, numeric strings; bools and other text
    are left to albumentations' own validation."""
    found: list[float] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, bool):
            continue
        if isinstance(item, int | float):
            found.append(float(item) if not isinstance(item, int) or abs(item) < 1 << 60 else math.inf)
        elif isinstance(item, str):
            with contextlib.suppress(ValueError):
                found.append(float(item.strip()))
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
    return found


def _largest(value: Any) -> float | None:
    numbers = [abs(n) for n in _numbers(value)]
    if not numbers:
        return None
    return math.inf if any(math.isnan(n) for n in numbers) else max(numbers)


def _shown(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, list | dict | int | float) else str(value)
    return text if len(text) <= 80 else text[:77] + "…"


def _refuse(path: Path, name: str, where: str, asks: str, cap: Cap) -> None:
    raise UserError(
        f"{path}: {name} at {where} asks for {asks}; at most {cap.value()}{_UNITS.get(cap, '')} (or {cap.lift()})"
    )


def check_arguments(node: dict[str, Any], name: str, where: str, path: Path) -> None:
    """Refuse ``node`` (transform ``name`` at ``where`` in ``path``) if an argument asks for more than its cap."""
    bounds = {**ANY_TRANSFORM, **BOUNDS.get(name, {})}
    for key, bound in bounds.items():
        if key not in node:
            continue
        value = node[key]
        if bound.cells:
            numbers = [abs(n) for n in _numbers(value)]
            if not numbers:
                continue
            cells = math.prod(numbers) if len(numbers) == 2 else max(numbers) ** 2
            if math.isnan(cells) or cells > bound.cap.value():
                _refuse(path, name, where, f"{key} {_shown(value)} ({_count(cells)} cells)", bound.cap)
        else:
            largest = _largest(value)
            if largest is not None and largest > bound.cap.value():
                _refuse(path, name, where, f"{key} {_shown(value)}", bound.cap)
    _check_derived(node, name, where, path)


def _count(number: float) -> str:
    return f"{number:,.0f}" if math.isfinite(number) else str(number)


def _range(node: dict[str, Any], key: str, defaults: dict[str, Any], scalar_low: float) -> tuple[float, float]:
    """An argument as albumentations reads a range: a scalar ``v`` is ``(scalar_low, v)``, a pair is itself."""
    value = node.get(key, defaults[key])
    numbers = _numbers(value)
    if not numbers:
        numbers = _numbers(defaults[key])
    if len(numbers) == 1 and not isinstance(value, list | tuple):
        return scalar_low, numbers[0]
    return min(numbers), max(numbers)


def _check_derived(node: dict[str, Any], name: str, where: str, path: Path) -> None:
    """Bounds on what arguments derive together: a kernel from a sigma, a grid from rows and columns."""
    if name == "GaussianBlur":
        low, _ = _range(node, "blur_limit", _GAUSSIAN_DEFAULTS, 0)
        _, sigma = _range(node, "sigma_limit", _GAUSSIAN_DEFAULTS, 0)
        if low <= 0:  # a drawn kernel size of 0 is derived from sigma, as PIL does: int(sigma * 3.5) * 2 + 1
            kernel = int(abs(sigma) * 3.5) * 2 + 1
            if kernel > PIPELINE_KERNEL.value():
                asks = (
                    f"a {kernel}-px kernel (derived from sigma_limit {_shown(node.get('sigma_limit'))} "
                    f"where blur_limit {_shown(node.get('blur_limit', 0))} allows 0)"
                )
                _refuse(path, name, where, asks, PIPELINE_KERNEL)
    elif name == "PiecewiseAffine":
        rows = _largest(node.get("nb_rows", 4)) or 0
        cols = _largest(node.get("nb_cols", 4)) or 0
        if rows * cols > PIPELINE_COUNT.value():
            asks = f"{_count(rows * cols)} grid points (nb_rows {_shown(node.get('nb_rows'))} × nb_cols " + (
                f"{_shown(node.get('nb_cols'))})"
            )
            _refuse(path, name, where, asks, PIPELINE_COUNT)
    elif name == "ThinPlateSpline":
        side = _largest(node.get("num_control_points", 4)) or 0
        if side * side > PIPELINE_COUNT.value():
            points = _shown(node["num_control_points"])
            asks = f"{_count(side * side)} control points (num_control_points {points} squared)"
            _refuse(path, name, where, asks, PIPELINE_COUNT)
    elif name == "ZoomBlur":
        _, factor = _range(node, "max_factor", _ZOOM_DEFAULTS, 1)
        step, _ = _range(node, "step_factor", _ZOOM_DEFAULTS, 0)
        if abs(factor) <= 1:
            return
        if step <= 0:  # albumentations reads a single step_factor s as [0, s]: a draw near 0, millions of steps
            asks = (
                f"zoom steps without end (step_factor {_shown(node.get('step_factor'))} is drawn from a range "
                "starting at 0; give it as [lo, hi] with lo above 0)"
            )
            _refuse(path, name, where, asks, PIPELINE_COUNT)
        steps = (abs(factor) - 1) / step
        if steps > PIPELINE_COUNT.value():
            asks = (
                f"{_count(steps)} zoom steps (max_factor {_shown(node.get('max_factor'))} in steps of "
                f"step_factor {_shown(node.get('step_factor'))})"
            )
            _refuse(path, name, where, asks, PIPELINE_COUNT)
