"""What the DCGAN and the VAE share: image sizes (16..256 px, made at an internal size and resized when that
differs), the width ladder, class embeddings, the conv stacks down to and up from the base grid, and the decoding
of latent codes (the DCGAN generator is the VAE's decoder).
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import nn

from augmentor.core.errors import UserError

MIN_SIZE, MAX_SIZE = 16, 256  # image sides the generative models take
BASES = (4, 5, 6, 7)  # base grids: the conv stacks work at a base times a power of two (28 = 7·4, 32 = 4·8, 40 = 5·8)


def check_size(image_size: int) -> None:
    """Refuse an image side the generative models do not take, naming the flag that converts the data."""
    if not MIN_SIZE <= image_size <= MAX_SIZE:
        near = min(max(image_size, MIN_SIZE), MAX_SIZE)
        raise UserError(
            f"image size {image_size} is outside the {MIN_SIZE}..{MAX_SIZE} px the generative models take; "
            f"pass --image-size with a size in that range (e.g. --image-size {near})"
        )


def internal_size(image_size: int) -> int:
    """The side the conv stacks work at for images of ``image_size``: the smallest base·2^d (base 4..7, d ≥ 2)
    at least as large. Equal to it for 16, 20, 24, 28, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256
    (so 28, 32, 64 and 128 px models are built as they always were); any other size is made there and
    resized (``Resize``), e.g. 25 px at 28."""
    check_size(image_size)
    return min(base << d for base in BASES for d in range(2, 7) if base << d >= image_size)


def ladder(image_size: int, width: int) -> tuple[int, list[int]]:
    """The base grid (4 to 7: 7 for 28 px, 4 for 32, 64 and 128) of ``internal_size(image_size)`` and the
    channel widths from the base up to the last hidden layer."""
    inner = internal_size(image_size)
    base = inner
    while base > BASES[-1]:
        base //= 2
    doublings = int(math.log2(inner // base))
    # Widest at the base, halving per doubling, as in Radford et al.; capped so 128 px stays cheap.
    widths = [min(width * 2 ** (doublings - 1 - k), 8 * width) for k in range(doublings)]
    return base, widths


class Resize(nn.Module):
    """Images to ``size``×``size`` (bilinear, antialiased when shrinking), in float32: between the conv stacks'
    internal size and the data's. Holds no weights, so a module's state keys are the same with or without it."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[-2:] == (self.size, self.size):
            return images
        return F.interpolate(
            images.float(), size=(self.size, self.size), mode="bilinear", antialias=True, align_corners=False
        )

    def extra_repr(self) -> str:
        return f"size={self.size}"


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
        self.image_size = image_size
        self.internal_size = internal_size(image_size)
        self.base, self.widths = ladder(image_size, width)

    @property
    def resized(self) -> bool:
        """Whether images are made at another size than the data's and resized to it."""
        return self.internal_size != self.image_size

    def lift(
        self, z: torch.Tensor, labels: torch.Tensor | None, embed: ClassEmbedding, project: nn.Module
    ) -> torch.Tensor:
        """Codes joined with their class vectors, projected to the widest feature map on the base grid."""
        h = torch.cat([z, embed(labels, z.shape[0], z.device)], dim=1)
        return project(h).view(z.shape[0], self.widths[0], self.base, self.base)
