"""On-device batch augmentation for classifier training: soft targets, mixup/CutMix, RandAugment (crop and flip are
``training.batch_augment``'s, shared with the generators).

Whole batches at once with one generator, so a training step has no per-sample work beyond RandAugment's
grouping of the images by the op each drew.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from augmentor.core.errors import UserError


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


# RandAugment's magnitude M is read on timm's 0..10 scale (``rand-m9-n2``: 9/10 of each op's largest change),
# so torchvision's table is cut into 11 bins rather than its default 31, where 9 would be a mild 9/30.
RANDAUGMENT_MAX_MAGNITUDE = 10
_RANDAUGMENT_FORM = "rand-mM-nN, e.g. rand-m9-n2 (M: magnitude 0-10, N: ops per image 1-10)"


def parse_randaugment(text: str) -> tuple[int, int]:
    """timm's RandAugment string → (ops per image N, magnitude M): ``rand-m9-n2`` (keys in any order, N
    defaulting to 2 as in timm). timm's other keys (mstd, inc, p, w) are refused, not silently ignored."""
    parts = text.strip().lower().split("-")
    values: dict[str, int] = {}
    for part in parts[1:]:
        key, number = part[:1], part[1:]
        if key not in ("m", "n") or key in values or not number.isdigit():
            values = {}
            break
        values[key] = int(number)
    if parts[0] != "rand" or "m" not in values:
        other = " (timm's mstd, inc, p and w keys are not supported)" if parts[0] == "rand" else ""
        raise UserError(f"--randaugment {text!r}: give {_RANDAUGMENT_FORM}{other}")
    ops, magnitude = values.get("n", 2), values["m"]
    if not (1 <= ops <= 10 and 0 <= magnitude <= RANDAUGMENT_MAX_MAGNITUDE):
        raise UserError(f"--randaugment {text!r}: out of range; give {_RANDAUGMENT_FORM}")
    return ops, magnitude


def rand_augment(images: torch.Tensor, ops: int, magnitude: int, generator: torch.Generator) -> torch.Tensor:
    """torchvision's RandAugment (``v2.RandAugment``: its 14 ops, ranges and op code) on a uint8 N×C×H×W batch,
    with each image drawing its own ``ops`` ops and signs from ``generator`` (a CPU generator).

    ``v2.RandAugment`` on a batch applies one op to every image and draws from torch's global generator; here
    the draws come from ``generator`` (reproducible with the run's seed, saved in its checkpoints) and the images
    that drew the same op and sign go through torchvision's op together: at most ~20 calls per round whatever
    the batch size, where a call per image would be launch-bound on a GPU. Grey (1-channel) images work; the
    "Color" op leaves them unchanged. No op flips, so ``--no-flip`` holds."""
    from torchvision.transforms import v2

    transform = v2.RandAugment(num_ops=ops, magnitude=magnitude, num_magnitude_bins=RANDAUGMENT_MAX_MAGNITUDE + 1)
    # torchvision's own table and op code: private names, present since 0.15 (the versions used are pinned).
    space = list(transform._AUGMENTATION_SPACE.items())  # name → (magnitudes(bins, h, w), signed)
    n, _, height, width = images.shape
    choices = torch.randint(len(space), (ops, n), generator=generator).tolist()
    negative = (torch.rand((ops, n), generator=generator) <= 0.5).tolist()  # torchvision's sign draw
    images = images.clone()
    for round_choices, round_signs in zip(choices, negative, strict=True):
        groups: dict[tuple[int, bool], list[int]] = {}
        for row, (op, sign) in enumerate(zip(round_choices, round_signs, strict=True)):
            groups.setdefault((op, sign and space[op][1][1]), []).append(row)
        for (op, sign), rows in sorted(groups.items()):
            name, (magnitudes, _) = space[op]
            if name == "Identity":
                continue
            table = magnitudes(RANDAUGMENT_MAX_MAGNITUDE + 1, height, width)
            value = float(table[magnitude]) if table is not None else 0.0
            index = torch.tensor(rows, device=images.device)
            images[index] = transform._apply_image_or_video_transform(
                images[index],
                name,
                -value if sign else value,
                interpolation=transform.interpolation,
                fill=transform._fill,
            )
    return images
