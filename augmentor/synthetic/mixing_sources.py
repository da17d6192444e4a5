"""Mixup and CutMix images as a pool source (``mixup[:ALPHA]``, ``cutmix[:ALPHA]``): classic candidates that mix
two real images, made once per draw like every other pool, so they take a share and are tuned like the presets.

Each image of class c starts from one of c's real images (drawn evenly, as the classic source draws its
parents) and is blended with (mixup, Zhang et al. 2018) or pasted into by a box of (CutMix, Yun et al. 2019)
another real image of any class. Its own share λ ~ Beta(α, α) is folded to λ ≥ 0.5, so class c dominates and the
image counts towards c's quota. Its provenance holds the partner's class and λ: the gain experiment trains on
mixup's mixed target, λ·c + (1−λ)·partner (``mixed_targets``); a folder written by ``expand`` keeps c as the
image's class and the mix in the manifest.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from augmentor.core.errors import UserError
from augmentor.data.imageset import ImageSet

if TYPE_CHECKING:
    from augmentor.synthetic.sources import SourceContext, SourceSpec

MIX_KINDS = ("mixup", "cutmix")
DEFAULT_ALPHA = 1.0  # Beta(1, 1): λ uniform, folded to [0.5, 1]; CutMix's default, a strong mixup


def mix_alpha(text: str | None, label: str) -> float:
    """``ALPHA`` of ``mixup:ALPHA`` (default 1), a positive finite number."""
    if text is None:
        return DEFAULT_ALPHA
    try:
        alpha = float(text)
    except ValueError:
        alpha = math.nan
    if not (math.isfinite(alpha) and 0 < alpha <= 100):
        raise UserError(f"{label}: ALPHA {text!r} is not a number in (0, 100]; e.g. {label.split(':')[0]}:0.4")
    return alpha


class MixSource:
    """Mixup or CutMix images of the real set (module docstring)."""

    kind: ClassVar[str] = "mix"
    uses_model: ClassVar[bool] = False

    @staticmethod
    def run_in(spec: SourceSpec) -> str | None:
        """No run folder; checks the source's ALPHA."""
        mix_alpha(spec.arg, spec.label)
        return None

    def __init__(self, spec: SourceSpec, context: SourceContext) -> None:
        from augmentor.synthetic.sources import EvenParents

        self.name, self.mode = spec.text, spec.kind
        self.alpha = mix_alpha(spec.arg, spec.label)
        self.real, self.seed = context.real, context.seed
        self.parents = EvenParents(context.real, np.random.default_rng(np.random.SeedSequence([context.seed, 0])))
        self.record: dict[str, Any] = {"mix": self.mode, "alpha": self.alpha}

    def make(self, counts: np.ndarray, round_no: int) -> ImageSet:
        real = self.real
        parents = self.parents.draw(counts)
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, 2, round_no]))
        partners = rng.integers(0, len(real), len(parents))
        share = rng.beta(self.alpha, self.alpha, len(parents))
        share = np.maximum(share, 1 - share)
        if self.mode == "mixup":
            images = _mixup(real.images, parents, partners, share)
        else:
            images, share = _cutmix(real.images[parents], real.images[partners], share, rng)
        provenance = [
            {
                "source": self.mode,
                "parent": real.provenance[p].get("origin") if real.provenance else None,
                "mix_partner": real.provenance[q].get("origin") if real.provenance else None,
                "mix_partner_class": real.class_names[int(real.labels[q])],
                "mix_share": round(float(s), 4),
            }
            for p, q, s in zip(parents.tolist(), partners.tolist(), share.tolist(), strict=True)
        ]
        return ImageSet(images, real.labels[parents], list(real.class_names), provenance)


_CHUNK = 2048  # images blended at a time: a gain pool holds tens of thousands, float copies of all would be GBs


def _mixup(images: np.ndarray, parents: np.ndarray, partners: np.ndarray, share: np.ndarray) -> np.ndarray:
    """share × parent + (1 − share) × partner, rounded, in chunks of float32."""
    out = np.empty((len(parents), *images.shape[1:]), np.uint8)
    for start in range(0, len(parents), _CHUNK):
        part = slice(start, start + _CHUNK)
        weights = share[part, None, None, None].astype(np.float32)
        blend = weights * images[parents[part]] + (1 - weights) * images[partners[part]]
        out[part] = np.rint(blend).clip(0, 255)
    return out


def _cutmix(
    own: np.ndarray, other: np.ndarray, share: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Each image with a box of its partner pasted in: the box covers at most 1 − λ of the image (whole pixels,
    rounded down, so the image's own class still dominates), placed uniformly; the share returned is what is
    still the image's own."""
    images = own.copy()
    height, width = own.shape[2:]
    kept = np.empty(len(own))
    for i, s in enumerate(share.tolist()):
        cut_h, cut_w = math.floor(height * math.sqrt(1 - s)), math.floor(width * math.sqrt(1 - s))
        top, left = int(rng.integers(0, height - cut_h + 1)), int(rng.integers(0, width - cut_w + 1))
        images[i, :, top : top + cut_h, left : left + cut_w] = other[i, :, top : top + cut_h, left : left + cut_w]
        kept[i] = 1 - cut_h * cut_w / (height * width)
    return images, kept


def mixed_targets(images: ImageSet) -> np.ndarray:
    """Target rows for a pool: one-hot for ordinary images, λ·class + (1−λ)·partner's class for mixed ones."""
    return targets_onto(images.provenance, images.labels, images.class_names, "")


def targets_onto(provenance: list[dict], labels: np.ndarray, class_names: list[str], where: str) -> np.ndarray:
    """Target rows over ``class_names`` for images whose ``labels`` index them: one-hot, or the recorded mix
    (``mix_share`` of the image's class, the rest its ``mix_partner_class``). The mix comes from a manifest
    someone may have edited, so an unknown partner or a share outside 0..1 is a one-line error naming ``where``."""
    index = {name: k for k, name in enumerate(class_names)}
    targets = np.zeros((len(labels), len(class_names)), np.float32)
    targets[np.arange(len(labels)), labels] = 1.0
    for row, record in enumerate(provenance):
        partner = record.get("mix_partner_class")
        if partner is None:
            continue
        share = record.get("mix_share")
        if partner not in index or not isinstance(share, int | float) or not 0.0 <= share <= 1.0:
            raise UserError(
                f"{where}: image {row + 1} records a mix with class {partner!r} at share {share!r}; a mix needs a "
                "class of the training set and a share in 0..1: fix the manifest line or delete it"
            )
        targets[row] *= float(share)
        targets[row, index[partner]] += 1 - float(share)
    return targets
