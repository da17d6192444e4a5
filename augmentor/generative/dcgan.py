"""DCGAN after Radford et al.: transposed-conv generator, strided-conv discriminator, BatchNorm, LeakyReLU.

Class conditioning: a label embedding joins the latent code in the generator; the discriminator uses a
projection (Miyato & Koyama): its score gains the inner product of a class embedding with its features.
Pure modules, no I/O. Images are in [-1, 1] (tanh); ``to_unit`` maps them to [0, 1].
"""

from __future__ import annotations

import torch
from torch import nn

from augmentor.generative.layers import ClassEmbedding, LatentDecoder, down_convs, ladder, up_convs


class DCGANGenerator(LatentDecoder):
    """Latent code (+ class) → image in [-1, 1]."""

    def __init__(
        self, latent_dim: int = 64, num_classes: int = 0, channels: int = 1, image_size: int = 28, width: int = 64
    ) -> None:
        super().__init__(latent_dim, num_classes, image_size, width)
        grid = self.widths[0] * self.base * self.base
        self.embed = ClassEmbedding(num_classes, latent_dim)
        self.project = nn.Sequential(
            nn.Linear(latent_dim + self.embed.dim, grid, bias=False), nn.BatchNorm1d(grid), nn.ReLU(inplace=True)
        )
        # No conv bias before BatchNorm, which would cancel it (Radford et al.).
        self.body = nn.Sequential(*up_convs(self.widths, channels, bias=False), nn.Tanh())
        init_dcgan(self)
        if self.embed.table is not None:
            # Orthonormal class codes (one-hot-like), small beside the latent code's norm: with large codes the
            # generator learned to ignore z entirely (a per-class collapse); with these it keeps both.
            nn.init.orthogonal_(self.embed.table.weight)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.body(self.lift(z, labels, self.embed, self.project))

    def to_unit(self, images: torch.Tensor) -> torch.Tensor:
        """Generator output → [0, 1]."""
        return (images.float() + 1) / 2


class DCGANDiscriminator(nn.Module):
    """Image (+ class) → one real/fake logit per image."""

    def __init__(self, num_classes: int = 0, channels: int = 1, image_size: int = 28, width: int = 64) -> None:
        super().__init__()
        base, widths = ladder(image_size, width)
        widths = widths[::-1]  # narrow at full resolution, widest at the base grid
        self.body = nn.Sequential(*down_convs(channels, widths, bias=False))
        self.score = nn.Linear(widths[-1] * base * base, 1)
        self.embed = ClassEmbedding(num_classes, widths[-1])
        init_dcgan(self)
        if self.embed.table is not None:
            nn.init.normal_(self.embed.table.weight)  # a projection term strong enough to enforce the class

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = self.body(images)
        out = self.score(h.flatten(1)).squeeze(1)
        if self.embed.table is not None:
            # Projection on the spatially pooled features: ⟨embed(y), mean h⟩ joins the unconditional score.
            out = out + (self.embed(labels, h.shape[0], h.device) * h.mean(dim=(2, 3))).sum(dim=1)
        return out


def init_dcgan(module: nn.Module) -> None:
    """Radford et al.'s initialisation: N(0, 0.02) weights, BatchNorm scales N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
