"""A convolutional VAE (Kingma & Welling), optionally class-conditional; β weights the KL term.

The encoder mirrors the DCGAN discriminator and the decoder its generator. Pure module, no I/O.
Pixels are in [0, 1]; the decoder returns logits (Bernoulli likelihood), ``to_unit`` applies the sigmoid.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

from augmentor.generative.layers import ClassEmbedding, ladder


class ConvVAE(nn.Module):
    """``encode`` → (mu, logvar); ``decode`` → logits; ``sample`` → images in [0, 1]."""

    def __init__(
        self, latent_dim: int = 32, num_classes: int = 0, channels: int = 1, image_size: int = 28, width: int = 64
    ) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.num_classes = num_classes
        base, widths = ladder(image_size, width)
        self.base, self.first_width = base, widths[0]
        down = widths[::-1]
        layers: list[nn.Module] = [nn.Conv2d(channels, down[0], 4, 2, 1), nn.LeakyReLU(0.2, True)]
        for w_in, w_out in itertools.pairwise(down):
            layers += [nn.Conv2d(w_in, w_out, 4, 2, 1), nn.BatchNorm2d(w_out), nn.LeakyReLU(0.2, True)]
        self.encoder = nn.Sequential(*layers, nn.Flatten())
        features = down[-1] * base * base
        self.encoder_embed = ClassEmbedding(num_classes, 32)
        self.to_stats = nn.Linear(features + self.encoder_embed.dim, 2 * latent_dim)
        self.decoder_embed = ClassEmbedding(num_classes, latent_dim)
        self.project = nn.Sequential(
            nn.Linear(latent_dim + self.decoder_embed.dim, widths[0] * base * base), nn.ReLU(inplace=True)
        )
        up: list[nn.Module] = []
        for w_in, w_out in itertools.pairwise(widths):
            up += [nn.ConvTranspose2d(w_in, w_out, 4, 2, 1), nn.BatchNorm2d(w_out), nn.ReLU(True)]
        up += [nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1)]
        self.decoder = nn.Sequential(*up)

    def encode(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Images in [0, 1] → the posterior's mean and log-variance."""
        h = self.encoder(images * 2 - 1)
        h = torch.cat([h, self.encoder_embed(labels, h.shape[0], h.device)], dim=1)
        mu, logvar = self.to_stats(h).chunk(2, dim=1)
        return mu, logvar.clamp(-12, 8)

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Latent codes → pixel logits."""
        h = torch.cat([z, self.decoder_embed(labels, z.shape[0], z.device)], dim=1)
        h = self.project(h).view(z.shape[0], self.first_width, self.base, self.base)
        return self.decoder(h)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Latent codes → images in [0, 1] (the same call shape as the DCGAN generator)."""
        return torch.sigmoid(self.decode(z, labels).float())

    def to_unit(self, images: torch.Tensor) -> torch.Tensor:
        """``forward``'s output is already in [0, 1]."""
        return images.float()

    def loss(
        self, images: torch.Tensor, labels: torch.Tensor | None, beta: float, noise: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The negative ELBO per image (reconstruction + β·KL), and its two parts; ``noise`` ~ N(0, I)."""
        mu, logvar = self.encode(images, labels)
        z = mu + noise * torch.exp(0.5 * logvar)
        logits = self.decode(z, labels).float()
        reconstruction = F.binary_cross_entropy_with_logits(logits, images.float(), reduction="sum") / len(images)
        kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / len(images)
        return reconstruction + beta * kl, reconstruction, kl
