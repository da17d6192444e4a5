"""A convolutional VAE (Kingma & Welling), optionally class-conditional; β weights the KL term.

The encoder mirrors the DCGAN discriminator and the decoder its generator. Pure module, no I/O; ``VAETraining`` is
the kind's training hook (its optimiser and step).
Pixels are in [0, 1]; the decoder returns logits (Bernoulli likelihood), ``to_unit`` applies the sigmoid.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from augmentor.generative.layers import ClassEmbedding, LatentDecoder, Resize, down_convs, up_convs

if TYPE_CHECKING:
    from augmentor.generative.kinds import StepInputs


class ConvVAE(LatentDecoder):
    """``encode`` → (mu, logvar); ``decode`` → logits; ``sample`` → images in [0, 1]."""

    def __init__(
        self, latent_dim: int = 32, num_classes: int = 0, channels: int = 1, image_size: int = 28, width: int = 64
    ) -> None:
        super().__init__(latent_dim, num_classes, image_size, width)
        down = self.widths[::-1]
        # Conv biases before BatchNorm are redundant, but the shipped weights have them.
        self.encoder = nn.Sequential(*down_convs(channels, down, bias=True), nn.Flatten())
        features = down[-1] * self.base * self.base
        self.encoder_embed = ClassEmbedding(num_classes, 32)
        self.to_stats = nn.Linear(features + self.encoder_embed.dim, 2 * latent_dim)
        self.decoder_embed = ClassEmbedding(num_classes, latent_dim)
        self.project = nn.Sequential(
            nn.Linear(latent_dim + self.decoder_embed.dim, self.widths[0] * self.base * self.base),
            nn.ReLU(inplace=True),
        )
        # Made at the internal size; logits resized to the data's last when they differ (no weights: the keys
        # stay), and images brought to the internal size before the encoder.
        fit = [Resize(image_size)] if self.resized else []
        self.decoder = nn.Sequential(*up_convs(self.widths, channels, bias=True), *fit)
        self.fit = Resize(self.internal_size) if self.resized else nn.Identity()

    def encode(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Images in [0, 1] → the posterior's mean and log-variance."""
        h = self.encoder(self.fit(images * 2 - 1))
        h = torch.cat([h, self.encoder_embed(labels, h.shape[0], h.device)], dim=1)
        mu, logvar = self.to_stats(h).chunk(2, dim=1)
        return mu, logvar.clamp(-12, 8)

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Latent codes → pixel logits."""
        return self.decoder(self.lift(z, labels, self.decoder_embed, self.project))

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


class VAETraining:
    """The VAE kind's training hook: one Adam optimiser and the negative-ELBO step. ``generative.train`` owns
    the rest."""

    def __init__(self, models: dict[str, nn.Module], config: Any, device: torch.device, distributed: bool) -> None:
        from augmentor.distributed import data_parallel

        self.vae, self.config = models["vae"], config
        self.optimizers = {"vae": torch.optim.Adam(self.vae.parameters(), lr=config.lr, fused=True)}
        # Under torchrun: DDP reduces the gradients of what runs through forward, so the loss is one.
        self.objective = data_parallel.wrap(_Objective(self.vae), device) if distributed else self.vae.loss

    def step(self, batch: StepInputs) -> dict[str, torch.Tensor]:
        """One update on a uint8 batch; ``share`` scales this rank's loss."""
        pixels = batch.images.float() / 255
        noise = batch.noise(len(pixels), self.vae.latent_dim)
        loss, reconstruction, kl = self.objective(pixels, batch.labels, self.config.beta, noise)
        self.optimizers["vae"].zero_grad(set_to_none=True)
        (loss * batch.share if batch.share != 1.0 else loss).backward()
        self.optimizers["vae"].step()
        return {"loss": loss.detach(), "reconstruction": reconstruction.detach(), "kl": kl.detach()}


class _Objective(nn.Module):
    """The VAE's loss as a forward pass (``ConvVAE.forward`` decodes samples), for DDP."""

    def __init__(self, vae: ConvVAE) -> None:
        super().__init__()
        self.vae = vae

    def forward(
        self, pixels: torch.Tensor, labels: torch.Tensor | None, beta: float, noise: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.vae.loss(pixels, labels, beta, noise)
