"""The classifier run kind's config check, registered with ``read_run_config`` on import (the package's
``__init__`` imports this): ``model_args``, normalisation and training fields, and the model's size,
checked before any classifier is built from a run folder that may come from someone else."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from augmentor.classifiers.registry import create_model
from augmentor.core.errors import UserError
from augmentor.core.limits import CLASSES, IMAGE_SIDE
from augmentor.core.runs import Range, check_model_args, check_model_size, register_run_kind, show_value

CLASSIFIER_ARGS = ("num_classes", "in_channels", "image_size")  # what ``Classifier.from_run`` builds from


def check_classifier_config(config: dict[str, Any], where: Path) -> None:
    """A classifier run's model: a named ``arch``, ``model_args`` of ``CLASSIFIER_ARGS`` agreeing with
    ``image_shape`` and ``class_names``, a normalisation of one finite number per channel, a true/false
    ``training.tta``, and parameters (counted on the meta device) within ``PARAMETERS``. ``config`` has passed
    ``check_run_fields``."""
    arguments, channels, height, _ = config["model_args"], *config["image_shape"]
    arch = config.get("arch")
    if not isinstance(arch, str):
        raise UserError(f"{where}: 'arch' {show_value(arch)} is not an architecture name; retrain the run")
    ranges: dict[str, Range] = {"num_classes": (2, CLASSES), "in_channels": (1, 3), "image_size": (1, IMAGE_SIDE)}
    matches = {"num_classes": len(config["class_names"]), "in_channels": channels, "image_size": height}
    check_model_args(config, where, list(CLASSIFIER_ARGS), ranges, matches)
    _check_normalisation(config.get("normalisation"), channels, where)
    training = config.get("training", {})
    if not isinstance(training, dict) or not isinstance(training.get("tta", False), bool):
        raise UserError(
            f"{where}: 'training' {show_value(training)} is not an object with a true/false 'tta'; retrain the run"
        )
    check_model_size(lambda: {"model": create_model(arch, *(arguments[key] for key in CLASSIFIER_ARGS))}, where)


def _check_normalisation(normalisation: Any, channels: int, where: Path) -> None:
    """A classifier's ``normalisation``: ``mean`` and ``std``, each one finite number per channel, std > 0."""
    if not isinstance(normalisation, dict):
        raise UserError(f"{where}: 'normalisation' {show_value(normalisation)} is not an object; retrain the run")
    for key in ("mean", "std"):
        values = normalisation.get(key)
        fine = (
            isinstance(values, list)
            and len(values) == channels
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values)
        )
        if not fine:
            raise UserError(
                f"{where}: normalisation {key} {show_value(values)} is not {channels} finite number(s), one per "
                "channel; retrain the run"
            )
    # A std of 0 divides by zero (every image the same input, 10% on Fashion-MNIST); a negative one flips it.
    if not all(v > 0 for v in normalisation["std"]):
        raise UserError(
            f"{where}: normalisation std {show_value(normalisation['std'])} must be positive (it divides the "
            "pixels); retrain the run"
        )


register_run_kind("classifier", check_classifier_config)
