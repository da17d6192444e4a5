"""The generative kinds' run config check, registered with ``read_run_config`` for every kind on import (the
package's ``__init__`` imports this): ``model_args`` against the kind's model constructor, ``conditional``,
a square ``image_shape`` of 16..256 px with its ``internal_size``, and the model's size, checked before any
module is built."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from augmentor.core.errors import UserError
from augmentor.core.limits import CLASSES, IMAGE_SIDE, MODEL_WIDTH
from augmentor.core.runs import Range, check_model_args, check_model_size, register_run_kind, show_value
from augmentor.generative.kinds import KINDS


def check_generative_config(config: dict[str, Any], where: Path) -> None:
    """A DCGAN's or VAE's run: ``model_args`` are its model constructor's, whole numbers in range agreeing
    with ``image_shape`` (square) and ``class_names`` (when ``conditional``), and the modules' parameters,
    counted on the meta device, within ``PARAMETERS``. ``config`` has passed ``check_run_fields``."""
    kind = KINDS[config["kind"]]
    channels, height, width = config["image_shape"]
    expected = [name for name in inspect.signature(kind.model()).parameters if name != "self"]
    conditional = config.get("conditional")
    if not isinstance(conditional, bool):
        raise UserError(f"{where}: 'conditional' {show_value(conditional)} is not true or false; retrain the run")
    ranges: dict[str, Range] = {"num_classes": (0, CLASSES), "channels": (1, 3), "image_size": (1, IMAGE_SIDE)}
    ranges |= {"latent_dim": (1, MODEL_WIDTH), "width": (1, MODEL_WIDTH)}
    classes = len(config["class_names"]) if conditional else 0
    matches = {"num_classes": classes, "channels": channels, "image_size": height}
    if height != width:
        raise UserError(f"{where}: 'image_shape' is not square, as a {kind.name} makes images; retrain the run")
    check_model_args(config, where, expected, ranges, matches)
    _check_internal_size(config, where)
    check_model_size(lambda: kind.build(config["model_args"]), where)


for _name in KINDS:
    register_run_kind(_name, check_generative_config)


def _check_internal_size(config: dict[str, Any], where: Path) -> None:
    """The recorded ``internal_size`` (runs before it have none: 28, 32, 64 and 128 px, made at their size) is
    the one the networks are built at for ``image_shape``: a run edited by hand is refused, not mis-built."""
    from augmentor.generative.layers import internal_size

    side = config["image_shape"][1]
    try:
        inner = internal_size(side)
    except UserError as exc:
        raise UserError(f"{where}: {exc.message.split(';')[0]}; retrain the run on resized images") from None
    recorded = config.get("internal_size", inner)
    if recorded != inner or isinstance(recorded, bool):
        raise UserError(
            f"{where}: 'internal_size' {show_value(recorded)} is not the {inner} px the models build for "
            f"{side} px images; retrain the run"
        )
