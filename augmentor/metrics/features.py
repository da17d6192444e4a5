"""Domain features for FID/KID: a trained classifier's penultimate vector instead of Inception's.

Inception-v3 features describe 299×299 ImageNet photos and need a download; a classifier trained on the
user's own domain (by default the shipped Fashion-MNIST one) is offline and sees what matters there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from augmentor.classifiers.classifier import LoadedClassifier, load_classifier
from augmentor.core.errors import UserError

# The run ships with the repository: augmentor/metrics/features.py → parents[2] is the repository root.
DEFAULT_FEATURES_RUN = Path(__file__).resolve().parents[2] / "weights" / "fashion-mnist" / "classifier"
FEATURE_BATCH = 1024


class ClassifierFeatures(torch.nn.Module):
    """uint8 N×C×H×W images → float64 N×F ``forward_features`` vectors; a torchmetrics ``feature`` module."""

    def __init__(self, loaded: LoadedClassifier, run: Path | None = None) -> None:
        super().__init__()
        self.model = loaded.model.eval()
        self.run = run
        self.class_names = list(loaded.class_names)
        self.image_shape = tuple(int(v) for v in loaded.config["image_shape"])
        mean, std = loaded.normalisation("cpu")
        self.register_buffer("mean", mean.float())
        self.register_buffer("std", std.float())
        # torchmetrics reads this instead of probing the module with a 299×299 dummy image.
        self.num_features = int(self.model.head.in_features)

    def train(self, mode: bool = True) -> ClassifierFeatures:
        """Stay in evaluation mode (BatchNorm statistics are part of the feature definition)."""
        return super().train(False)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dtype != torch.uint8:
            raise TypeError(f"ClassifierFeatures takes uint8 images (torchmetrics normalize=False), got {images.dtype}")
        x = (images.float() / 255 - self.mean) / self.std
        # float32 on every device: bf16 would shift the statistics FID compares.
        return self.model.forward_features(x.contiguous(memory_format=torch.channels_last)).double()

    def check_images(self, images: np.ndarray, what: str) -> None:
        """Refuse images of another shape than the classifier's, pointing at ``--features``."""
        shape = tuple(int(v) for v in images.shape[1:])
        if shape != self.image_shape:
            c, h, w = self.image_shape
            raise UserError(
                f"{what}: images are {shape[0]}×{shape[1]}×{shape[2]} but the feature classifier {self.run} takes "
                f"{c}×{h}×{w}; pass --features RUN with a classifier trained on that domain "
                "(augmentor classify train SRC --out RUN)"
            )


def load_features(run: Path | None = None) -> ClassifierFeatures:
    """The feature module of a classifier run (default: the shipped Fashion-MNIST classifier)."""
    if run is None:
        run = DEFAULT_FEATURES_RUN
        if not run.is_dir():
            raise UserError(
                f"{run}: the default feature classifier is not installed here; pass --features RUN "
                "(a classifier run folder from `augmentor classify train`)"
            )
    return ClassifierFeatures(load_classifier(Path(run)), Path(run))


def extract_features(
    run_or_loaded: Path | str | LoadedClassifier | ClassifierFeatures | None,
    images: np.ndarray,
    device: Any = "auto",
    batch_size: int = FEATURE_BATCH,
) -> torch.Tensor:
    """Features of uint8 N×C×H×W ``images`` as a float64 N×F CPU tensor, computed in batches on ``device``."""
    from augmentor.core.device import resolve_device

    if isinstance(run_or_loaded, ClassifierFeatures):
        module = run_or_loaded
    elif isinstance(run_or_loaded, LoadedClassifier):
        module = ClassifierFeatures(run_or_loaded)
    else:
        module = load_features(Path(run_or_loaded) if run_or_loaded is not None else None)
    module.check_images(images, "images")
    device = resolve_device(device) if isinstance(device, str) else torch.device(device)
    module.to(device)
    array = images if images.flags.writeable else images.copy()
    out = [torch.empty(0, module.num_features, dtype=torch.float64)]
    with torch.inference_mode():
        for start in range(0, len(array), batch_size):
            batch = torch.from_numpy(array[start : start + batch_size]).to(device, non_blocking=True)
            out.append(module(batch).cpu())
    return torch.cat(out)
