"""FID and KID with torchmetrics, in a domain classifier's features or local Inception weights' (never a download).

torchmetrics accepts any ``nn.Module`` as ``feature`` (with a ``num_features`` attribute it is not probed
with a dummy 299×299 image), so both routes below are torchmetrics' own arithmetic:

- ``fid_metric`` / ``kid_metric`` take a ``Classifier`` (or any feature module): update them with uint8
  images (``normalize=False``), as with torchmetrics' defaults;
- ``frechet_distance`` / ``kernel_distance`` take features already extracted (``Classifier.features``) and
  feed them through a pass-through module, so one extraction of the real set serves several comparisons
  (``score`` compares the real train sample with the generated images and with the real test sample).
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from augmentor.classifiers.classifier import Classifier

KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000


class PrecomputedFeatures(torch.nn.Module):
    """A torchmetrics ``feature`` module for inputs that already are N×F features (as float64)."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = int(num_features)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features.double()


def _module(feature: Classifier | torch.nn.Module) -> torch.nn.Module:
    from augmentor.classifiers.classifier import Classifier
    from augmentor.metrics.features import FeatureModule

    return FeatureModule(feature) if isinstance(feature, Classifier) else feature


def fid_metric(feature: Classifier | torch.nn.Module):
    """torchmetrics' FrechetInceptionDistance in ``feature``'s features (uint8 inputs, no Inception instantiated)."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    return FrechetInceptionDistance(feature=_module(feature), normalize=False, reset_real_features=False)


def kid_metric(feature: Classifier | torch.nn.Module, subset_size: int = KID_SUBSET_SIZE, subsets: int = KID_SUBSETS):
    """torchmetrics' KernelInceptionDistance in ``feature``'s features (cubic polynomial kernel, ``subsets`` draws)."""
    from torchmetrics.image.kid import KernelInceptionDistance

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
        return KernelInceptionDistance(
            feature=_module(feature), subsets=subsets, subset_size=subset_size, normalize=False
        )


def _check(real: torch.Tensor, fake: torch.Tensor) -> None:
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"features must be N×F with the same F, got {tuple(real.shape)} and {tuple(fake.shape)}")
    if len(real) < 2 or len(fake) < 2:
        raise ValueError("FID and KID need at least 2 images on each side")


def frechet_distance(real: torch.Tensor, fake: torch.Tensor) -> float:
    """FID between two N×F feature sets (0 for identical sets)."""
    _check(real, fake)
    metric = fid_metric(PrecomputedFeatures(real.shape[1]))
    metric.update(real.double(), real=True)
    metric.update(fake.double(), real=False)
    # Numerically the two sides of an identical set can cancel to a hair below zero.
    return max(0.0, float(metric.compute()))


def kernel_distance(
    real: torch.Tensor,
    fake: torch.Tensor,
    *,
    subset_size: int = KID_SUBSET_SIZE,
    subsets: int = KID_SUBSETS,
    seed: int = 0,
) -> tuple[float, float]:
    """KID: mean and std over ``subsets`` random subsets of ``subset_size`` (at most half the smaller set)."""
    _check(real, fake)
    # Subsets as large as the sets would all be the same set, and the std would say nothing.
    size = max(2, min(subset_size, len(real) // 2, len(fake) // 2))
    metric = kid_metric(PrecomputedFeatures(real.shape[1]), size, subsets)
    metric.update(real.double(), real=True)
    metric.update(fake.double(), real=False)
    # torchmetrics draws the subsets from the global generator: seed it without disturbing the caller's.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return float(mean), float(std)
