"""Device choice, seeding, and moving an ImageSet onto the device once."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from augmentor.core import threads
from augmentor.core.errors import UserError

if TYPE_CHECKING:
    from augmentor.data.imageset import ImageSet


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present; ``cuda`` without a GPU is a clear error.

    A command's first torch work starts here, so here a CLI command takes its share of the CPU threads.
    """
    threads.apply()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {name}: no CUDA device is available here; use --device cpu or auto")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"--device {name!r} is not a device; use auto, cpu or cuda") from None
    if device.type not in ("cpu", "cuda"):  # mps, xpu, ...: never tested here, and often not built in
        raise UserError(f"--device {name}: only cpu and cuda are supported; use --device cpu, cuda or auto")
    return device


def seeded_generator(seed: int, device: torch.device) -> torch.Generator:
    """A generator on ``device`` for data order and augmentation draws (model init uses the global one)."""
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    return generator


def to_device(image_set: ImageSet, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The whole set as uint8 images and int64 labels resident on ``device`` (copied once)."""
    array = image_set.images
    # IDX data is a read-only view of the file's bytes; torch wants a writable array to wrap.
    images = torch.from_numpy(array if array.flags.writeable else array.copy()).to(device, non_blocking=True)
    labels = torch.from_numpy(image_set.labels.copy()).to(device, non_blocking=True)
    return images, labels


def channel_stats(images: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of uint8 N×C×H×W images, on the 0..1 scale."""
    x = images.float().div_(255)
    mean = x.mean(dim=(0, 2, 3))
    std = x.std(dim=(0, 2, 3)).clamp_min(1e-3)
    return mean.tolist(), std.tolist()
