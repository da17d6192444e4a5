"""DiffAugment (Zhao et al. 2020): differentiable colour, translation and cutout applied to every image the
discriminator sees, real and fake alike, so a GAN trained on a few hundred images does not overfit its
discriminator. Whole batches at once, one generator for the draws.
"""

from __future__ import annotations

import torch

from augmentor.training.batch_augment import random_crop


def diff_augment(
    images: torch.Tensor, generator: torch.Generator, probability: torch.Tensor | None = None
) -> torch.Tensor:
    """Brightness and contrast jitter, a shift of up to 1/8 of the side, and a cutout of half the side; with a
    ``probability`` (a 0-d device tensor: adaptive DiffAugment) each of the three is applied to an image with that
    probability, drawn per image and per kind, without a host sync."""
    n, h = images.shape[0], images.shape[2]
    device = images.device
    brightness = torch.rand(n, 1, 1, 1, device=device, generator=generator) - 0.5
    contrast = torch.rand(n, 1, 1, 1, device=device, generator=generator) + 0.5
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    jittered = (images + brightness - mean) * contrast + mean
    if probability is None:
        return _cutout(random_crop(jittered, max(1, h // 8), generator), generator)
    chosen = torch.rand(3, n, 1, 1, 1, device=device, generator=generator) < probability
    images = torch.where(chosen[0], jittered, images)
    images = torch.where(chosen[1], random_crop(images, max(1, h // 8), generator), images)
    return torch.where(chosen[2], _cutout(images, generator), images)


def _cutout(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    n, _, h, w = images.shape
    device = images.device
    half_h, half_w = h // 4, w // 4  # a square of half the side, centred anywhere
    centre_y = torch.randint(0, h, (n, 1, 1), device=device, generator=generator)
    centre_x = torch.randint(0, w, (n, 1, 1), device=device, generator=generator)
    rows = torch.arange(h, device=device)[None, :, None]
    cols = torch.arange(w, device=device)[None, None, :]
    keep = ((rows - centre_y).abs() >= half_h) | ((cols - centre_x).abs() >= half_w)
    return images * keep[:, None].to(images.dtype)
