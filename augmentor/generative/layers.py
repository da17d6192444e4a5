"""What the DCGAN and the VAE share: supported sizes, the up-sampling ladder, and class embeddings."""

from __future__ import annotations

import math

import torch
from torch import nn

from augmentor.core.errors import UserError

SUPPORTED_SIZES = (28, 32, 64, 128)


def ladder(image_size: int, width: int) -> tuple[int, list[int]]:
    """The base grid (7 for 28 px, else 4) and channel widths from the base up to the last hidden layer."""
    if image_size not in SUPPORTED_SIZES:
        sizes = ", ".join(str(s) for s in SUPPORTED_SIZES)
        raise UserError(
            f"image size {image_size} is not supported by the generative models (supported: {sizes}); "
            "pass --image-size with one of them"
        )
    base = 7 if image_size == 28 else 4
    doublings = int(math.log2(image_size // base))
    # Widest at the base, halving per doubling, as in Radford et al.; capped so 128 px stays cheap.
    widths = [min(width * 2 ** (doublings - 1 - k), 8 * width) for k in range(doublings)]
    return base, widths


class ClassEmbedding(nn.Module):
    """A learned vector per class, or nothing for an unconditional model."""

    def __init__(self, num_classes: int, dim: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.dim = dim if num_classes > 0 else 0
        self.table = nn.Embedding(num_classes, dim) if num_classes > 0 else None

    def forward(self, labels: torch.Tensor | None, batch: int, device: torch.device) -> torch.Tensor:
        if self.table is None:
            return torch.zeros(batch, 0, device=device)
        if labels is None:
            raise ValueError("a conditional model needs labels")
        if labels.is_floating_point():  # N×K class weights: a blend of class vectors (class interpolation)
            return labels.to(self.table.weight.dtype) @ self.table.weight
        return self.table(labels)
