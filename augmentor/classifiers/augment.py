"""On-device batch augmentation for classifier training: random crop with padding and flips.

Whole batches at once with one generator, so a training step has no per-sample Python.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def random_crop(images: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Shift each image by up to ``padding`` pixels (zero fill), as pad-and-crop does."""
    if padding <= 0:
        return images
    n, _, h, w = images.shape
    padded = F.pad(images, (padding, padding, padding, padding))
    offsets = torch.randint(0, 2 * padding + 1, (2, n), device=images.device, generator=generator)
    rows = (offsets[0][:, None] + torch.arange(h, device=images.device))[:, None, :, None]
    cols = (offsets[1][:, None] + torch.arange(w, device=images.device))[:, None, None, :]
    batch = torch.arange(n, device=images.device)[:, None, None, None]
    channel = torch.arange(images.shape[1], device=images.device)[None, :, None, None]
    return padded[batch, channel, rows, cols]


def random_flip(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror half of the images left-right."""
    flip = torch.rand(images.shape[0], device=images.device, generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], images.flip(3), images)


def soft_targets(
    labels: torch.Tensor, targets: torch.Tensor | None, num_classes: int, weight: float, smoothing: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch's rows as target distributions and loss weights: real rows one-hot, synthetic rows (after
    them) their pool targets at ``weight``; label smoothing as ``F.cross_entropy`` applies it."""
    rows = F.one_hot(labels, num_classes).float()
    weights = torch.ones(len(labels), device=labels.device)
    if targets is not None:
        rows = torch.cat([rows, targets.float()])
        weights = torch.cat([weights, torch.full((len(targets),), float(weight), device=labels.device)])
    return rows * (1 - smoothing) + smoothing / num_classes, weights


def mix_batch(
    inputs: torch.Tensor,
    targets: torch.Tensor,
    weights: torch.Tensor,
    mixup: float,
    cutmix: float,
    rng,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mixup (Zhang et al.) or CutMix (Yun et al.) over a normalised batch: each image blended with, or
    pasted into by a box of, another image of the batch; targets and weights mixed by the same share.
    With both on, each batch takes one of them at random (timm's switch). ``rng``: numpy, for the shares."""
    use_cutmix = cutmix > 0 and (mixup <= 0 or rng.random() < 0.5)
    share = float(rng.beta(cutmix, cutmix) if use_cutmix else rng.beta(mixup, mixup))
    partner = torch.randperm(len(inputs), device=inputs.device, generator=generator)
    if use_cutmix:
        h, w = inputs.shape[2:]
        cut_h, cut_w = round(h * (1 - share) ** 0.5), round(w * (1 - share) ** 0.5)
        top, left = int(rng.integers(0, h - cut_h + 1)), int(rng.integers(0, w - cut_w + 1))
        inputs = inputs.clone()
        inputs[:, :, top : top + cut_h, left : left + cut_w] = inputs[
            partner, :, top : top + cut_h, left : left + cut_w
        ]
        share = 1 - cut_h * cut_w / (h * w)  # the share of the image that is still its own
    else:
        inputs = share * inputs + (1 - share) * inputs[partner]
    targets = share * targets + (1 - share) * targets[partner]
    weights = share * weights + (1 - share) * weights[partner]
    return inputs, targets, weights
