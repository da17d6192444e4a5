"""Domain features for FID/KID: a trained ``Classifier``'s penultimate vector instead of Inception's.

The shipped classifier where it fits the real images; elsewhere ``domain_features`` trains one on them (once:
it is cached under ``$XDG_CACHE_HOME/augmentor/features`` by the images' fingerprint and the recipe).

Inception-v3 features describe 299×299 ImageNet photos and need weights from elsewhere (``--inception FILE``,
``metrics.inception``, for numbers that compare with papers); a classifier trained on the user's own domain
(by default the shipped Fashion-MNIST one) ships offline and sees what matters there.
``Classifier.features`` computes them; ``FeatureModule`` only hands that to torchmetrics as an ``nn.Module``.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from augmentor.classifiers.classifier import Classifier
from augmentor.core.errors import UserError

if TYPE_CHECKING:
    from augmentor.classifiers.train import TrainConfig
    from augmentor.data.imageset import ImageSet

# The run ships with the repository: augmentor/metrics/features.py → parents[2] is the repository root.
DEFAULT_FEATURES_RUN = Path(__file__).resolve().parents[2] / "weights" / "fashion-mnist" / "classifier"
# What to do when images do not fit the feature classifier given (``Classifier.check_images``'s ``fix``).
FEATURES_FIX = (
    "pass --features RUN with a classifier trained on that domain (augmentor classify train SRC --out RUN), "
    "or leave --features out to have one trained on the real images"
)


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


# The feature classifier ``score`` trains when none fits the reference images: ``classify train``'s defaults
# (the ``fast`` net, 10 passes with a floor of 300 steps), seed 0, 10 % of each class held out to keep the best
# weights when every class has at least VALIDATION_MIN_PER_CLASS images. Changing it changes FEATURES_RECIPE's
# version, so a cached classifier of the old recipe is never taken for one of the new.
FEATURES_RECIPE = {"version": 1, "arch": "fast", "budget": "classify train's default", "seed": 0, "val_fraction": 0.1}
VALIDATION_MIN_PER_CLASS = 10


def features_cache() -> Path:
    """Where trained feature classifiers are kept: ``$XDG_CACHE_HOME/augmentor/features`` (``~/.cache`` when unset)."""
    import os

    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "augmentor" / "features"


def default_features_fit(reference: ImageSet) -> str | None:
    """Why the shipped feature classifier does not fit ``reference`` (another image shape, other classes, not
    installed here), or None when it does."""
    if not DEFAULT_FEATURES_RUN.is_dir():
        return "the shipped feature classifier is not installed here"
    from augmentor.core.runs import read_run_config

    config = read_run_config(DEFAULT_FEATURES_RUN, kind="classifier")
    if tuple(config["image_shape"]) != (reference.channels, *reference.size):
        return f"no feature classifier fits {describe_images(reference)} images"
    if set(config["class_names"]) != set(reference.class_names):
        return "the shipped feature classifier knows other classes"
    return None


def describe_images(images: ImageSet) -> str:
    """``24×24 grey`` / ``32×32 colour``."""
    height, width = images.size
    return f"{height}×{width} {'grey' if images.channels == 1 else 'colour'}"


def domain_features(reference: ImageSet, where: str, reason: str, *, device: str = "auto") -> Classifier:
    """A feature classifier of ``reference`` (the real images ``where`` names): the one cached for these exact
    images and ``FEATURES_RECIPE``, or one trained now and cached; a one-line note says which, and where."""
    import json
    import time

    from augmentor.classifiers.train import budget_steps, train_classifier
    from augmentor.core.console import note
    from augmentor.data.imageset import fingerprint

    if len(reference.class_names) < 2:
        raise UserError(
            f"{where}: {reason}, and with one class no feature classifier can be trained on it; pass --features "
            "RUN (a classifier of this domain) or --inception FILE"
        )
    data = fingerprint(reference)
    key = hashlib.sha256(json.dumps({"data": data, **FEATURES_RECIPE}, sort_keys=True).encode()).hexdigest()[:20]
    folder = features_cache() / key
    cached = _cached(folder, data)
    if cached is not None:
        note(
            f"{reason}: reused the one trained on {where} before, cached in {folder}; "
            f"pass --features {folder} to name it"
        )
        return cached
    config, train, validation = _recipe(reference, device)
    started = time.perf_counter()
    classifier = train_classifier(train, config, validation=validation)
    seconds = time.perf_counter() - started
    steps = budget_steps(config, len(train), min(config.batch_size, len(train)))
    classifier.config["features"] = {
        "trained_by": "augmentor score",
        "reference": where,
        "reference_fingerprint": data,  # all of it; "dataset" names the part trained on (without validation)
        "recipe": FEATURES_RECIPE,
    }
    what = f"trained one on {where} ({steps} steps, {seconds:.1f} s"
    what += f", best of {len(validation)} held-out images)" if validation is not None else ")"
    try:
        _write(folder, classifier)
    except (OSError, UserError) as exc:
        text = exc.message if isinstance(exc, UserError) else str(exc)
        note(f"{reason}: {what}; it could not be cached in {folder} ({text}), so the next call trains again")
        return classifier
    note(f"{reason}: {what}, cached in {folder}; pass --features {folder} to reuse it")
    return Classifier.from_run(folder)  # as a later call loads it, so both give the same numbers


def _recipe(reference: ImageSet, device: str) -> tuple[TrainConfig, ImageSet, ImageSet | None]:
    """``FEATURES_RECIPE``'s training config, training images and validation images (None when too few)."""
    from augmentor.classifiers.train import TrainConfig
    from augmentor.data.subset import split_fraction

    smallest = min(reference.class_counts().values())
    seed = int(FEATURES_RECIPE["seed"])
    config = TrainConfig(arch=str(FEATURES_RECIPE["arch"]), seed=seed, device=device, evals=1)
    if smallest < VALIDATION_MIN_PER_CLASS:
        return config, reference, None
    train, validation = split_fraction(reference, float(FEATURES_RECIPE["val_fraction"]), seed)
    return replace(config, evals=10), train, validation


def _cached(folder: Path, data: str) -> Classifier | None:
    """The classifier cached in ``folder`` if it is a whole run trained on the reference of fingerprint ``data``."""
    if not folder.is_dir():
        return None
    try:
        classifier = Classifier.from_run(folder)
    except UserError:
        return None  # half-written or damaged: trained again and replaced
    made = classifier.config.get("features")
    return classifier if isinstance(made, dict) and made.get("reference_fingerprint") == data else None


def _write(folder: Path, classifier: Classifier) -> None:
    """The classifier as a run folder (``Classifier.from_run`` reads it), written whole or not at all."""
    from augmentor.core.runs import write_run

    document = {k: v for k, v in classifier.config.items() if k not in ("format_version", "augmentor_version")}
    write_run(
        folder, config=document, state_dict=classifier.model.state_dict(), metrics=classifier.metrics, overwrite=True
    )
