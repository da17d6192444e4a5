"""What the DCGAN and the VAE share: supported sizes, the width ladder, class embeddings, the conv stacks
down to and up from the base grid, and the decoding of latent codes (the DCGAN generator is the VAE's decoder).
"""

from __future__ import annotations

import itertools
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


def down_convs(channels: int, widths: list[int], *, bias: bool) -> list[nn.Module]:
    """Strided 4×4 convs from ``channels`` at full size through ``widths`` (narrowest first) to the base grid."""
    layers: list[nn.Module] = [nn.Conv2d(channels, widths[0], 4, 2, 1), nn.LeakyReLU(0.2, True)]
    for w_in, w_out in itertools.pairwise(widths):
        layers += [nn.Conv2d(w_in, w_out, 4, 2, 1, bias=bias), nn.BatchNorm2d(w_out), nn.LeakyReLU(0.2, True)]
    return layers


def up_convs(widths: list[int], channels: int, *, bias: bool) -> list[nn.Module]:
    """Transposed 4×4 convs from the base grid through ``widths`` (widest first) to ``channels`` at full size."""
    layers: list[nn.Module] = []
    for w_in, w_out in itertools.pairwise(widths):
        layers += [nn.ConvTranspose2d(w_in, w_out, 4, 2, 1, bias=bias), nn.BatchNorm2d(w_out), nn.ReLU(True)]
    return [*layers, nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1)]


class LatentDecoder(nn.Module):
    """Base of the modules that decode latent codes (+ class) to images: the DCGAN generator and the VAE."""

    def __init__(self, latent_dim: int, num_classes: int, image_size: int, width: int) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.num_classes = num_classes
        self.base, self.widths = ladder(image_size, width)

    def lift(
        self, z: torch.Tensor, labels: torch.Tensor | None, embed: ClassEmbedding, project: nn.Module
    ) -> torch.Tensor:
        """Codes joined with their class vectors, projected to the widest feature map on the base grid."""
        h = torch.cat([z, embed(labels, z.shape[0], z.device)], dim=1)
        return project(h).view(z.shape[0], self.widths[0], self.base, self.base)
