"""Domain features for FID/KID: a trained ``Classifier``'s penultimate vector instead of Inception's.

Inception-v3 features describe 299×299 ImageNet photos and need weights from elsewhere (``--inception FILE``,
``metrics.inception``, for numbers that compare with papers); a classifier trained on the user's own domain
(by default the shipped Fashion-MNIST one) ships offline and sees what matters there.
``Classifier.features`` computes them; ``FeatureModule`` only hands that to torchmetrics as an ``nn.Module``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from augmentor.classifiers.classifier import Classifier
from augmentor.core.errors import UserError

# The run ships with the repository: augmentor/metrics/features.py → parents[2] is the repository root.
DEFAULT_FEATURES_RUN = Path(__file__).resolve().parents[2] / "weights" / "fashion-mnist" / "classifier"
# What to do when images do not fit the feature classifier (``Classifier.check_images``'s ``fix``).
FEATURES_FIX = "pass --features RUN with a classifier trained on that domain (augmentor classify train SRC --out RUN)"


def load_features(run: Path | None = None) -> Classifier:
    """The feature classifier: the run at ``run``, by default the shipped Fashion-MNIST classifier."""
    if run is None:
        run = DEFAULT_FEATURES_RUN
        if not run.is_dir():
            raise UserError(
                f"{run}: the default feature classifier is not installed here; pass --features RUN "
                "(a classifier run folder from `augmentor classify train`)"
            )
    return Classifier.from_run(Path(run))


class FeatureModule(torch.nn.Module):
    """A ``Classifier`` as torchmetrics' ``feature`` module: uint8 N×C×H×W → float64 N×F on the images' device."""

    def __init__(self, classifier: Classifier) -> None:
        super().__init__()
        self.classifier = classifier
        # torchmetrics reads this instead of probing the module with a 299×299 dummy image.
        self.num_features = classifier.num_features

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """The classifier's features of ``images``, where the metric keeps its sums."""
        return self.classifier.to(images.device).features(images).to(images.device)
