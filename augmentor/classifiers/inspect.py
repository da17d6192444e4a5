"""Looking inside a classifier: first-layer kernels and each stage's feature maps for one image."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from augmentor.core.errors import UserError
from augmentor.core.outdir import check_output_file, write_file_atomic

_FILTERS_PER_ROW = 8


def write_filters(run: Path, out: Path, overwrite: bool = False) -> Path:
    """``augmentor inspect filters``: refuse a taken ``out``, then write the first layer's kernels as a PNG."""
    check_output_file(out, overwrite, reads=[run])  # before the run is loaded
    write_file_atomic(out, filters_png(run))
    return out


def write_activations(run: Path, image: Path, out: Path, max_channels: int = 16, overwrite: bool = False) -> Path:
    """``augmentor inspect activations``: refuse a taken ``out``, then write one image's feature maps as a PNG."""
    if max_channels < 1:
        raise UserError(f"--max-channels {max_channels}: give at least 1 feature map per stage")
    check_output_file(out, overwrite, reads=[run, image])  # before the run is loaded and the figure drawn
    write_file_atomic(out, activations_png(run, image, max_channels))
    return out


def _to_uint8(array: np.ndarray) -> np.ndarray:
    """Scale to 0..255 symmetrically around zero, so zero weight is mid-grey in every kernel."""
    peak = float(np.abs(array).max()) or 1.0
    return np.clip(np.rint((array / peak + 1) * 127.5), 0, 255).astype(np.uint8)


def filters_png(run: Path) -> bytes:
    """The first convolution's kernels as a grid (grey for 1 input channel, colour for 3)."""
    from augmentor.classifiers.classifier import Classifier
    from augmentor.report.grids import grid_png

    conv = Classifier.from_run(run).model.first_conv()
    weights = conv.weight.detach().float().numpy()  # out × in × k × k
    if weights.shape[1] not in (1, 3):
        weights = weights.mean(axis=1, keepdims=True)
    kernels = [_to_uint8(w) for w in weights]
    rows = [kernels[i : i + _FILTERS_PER_ROW] for i in range(0, len(kernels), _FILTERS_PER_ROW)]
    size = "x".join(map(str, conv.kernel_size))
    return grid_png(
        rows,
        gap_after_first=False,
        row_labels=[
            f"{i}-{min(i + _FILTERS_PER_ROW, len(kernels)) - 1}" for i in range(0, len(kernels), _FILTERS_PER_ROW)
        ],
        title=f"{run.name}: {len(kernels)} first-layer filters, {size}, mid-grey = 0",
    )


def activations_png(run: Path, image: Path, max_channels: int = 16) -> bytes:
    """The input and, per stage, up to ``max_channels`` feature maps of one image."""
    import torch

    from augmentor.classifiers.classifier import Classifier
    from augmentor.data.decode import BadImageFile, decode_image
    from augmentor.report.plots import _png, _pyplot

    classifier = Classifier.from_run(run)
    channels, height, width = classifier.image_shape
    try:
        array = decode_image(image, channels)
    except BadImageFile as exc:
        raise UserError(f"{image}: {exc}") from None
    if array.shape[:2] != (height, width):
        raise UserError(
            f"{image}: is {array.shape[0]}×{array.shape[1]}, the model takes {height}×{width}; resize the image first"
        )
    # A plain forward, not ``predict``: the hooks below capture each stage's output on the way.
    inputs = classifier.normalise(torch.from_numpy(array.transpose(2, 0, 1).copy())[None])
    captured: list[tuple[str, np.ndarray]] = []
    hooks = [
        module.register_forward_hook(lambda _m, _i, out, name=name: captured.append((name, out[0].detach().numpy())))
        for name, module in classifier.model.stages()
    ]
    with torch.no_grad():
        logits = classifier.model(inputs)
    for hook in hooks:
        hook.remove()
    predicted = classifier.class_names[int(logits.argmax())]
    plt = _pyplot()
    columns = max(1, min(max_channels, max(maps.shape[0] for _, maps in captured)))  # no empty columns
    figure, axes = plt.subplots(
        len(captured) + 1, columns, figsize=(columns * 0.9, (len(captured) + 1) * 1.0), squeeze=False
    )
    for axis in axes.flat:
        axis.axis("off")
    axes[0, 0].imshow(array if channels == 3 else array[:, :, 0], cmap="gray")
    axes[0, 0].set_title(f"input → {predicted}", fontsize=7, loc="left")
    for row, (name, maps) in enumerate(captured, start=1):
        for col in range(min(columns, maps.shape[0])):
            axes[row, col].imshow(maps[col], cmap="viridis")
        axes[row, 0].set_title(f"{name} {maps.shape[0]}×{maps.shape[1]}×{maps.shape[2]}", fontsize=7, loc="left")
    figure.tight_layout()
    return _png(figure)
