"""Start a generator from another run's weights (``--init RUN``, issue 23 item 3): transfer learning for
generators trained on a handful of images per class.

The init run gives its architecture (width, latent size) and every weight of its sampling module whose name
and shape fit: the whole VAE (encoder warm, decoder warm) or the DCGAN's generator (a run folder keeps no
discriminator, so that one starts fresh). Class embeddings are taken only when the classes are the same, by
name and order: another dataset's "class 3" means nothing here. Images must have the run's channels and side.

Leakage rule: a generator that serves a gain experiment or a study must never have seen that dataset's test
or validation images. ``check_unseen`` refuses an init run whose training set is the dataset's own train or
test split (the validation split is carved from train), and callers say which run the generators start from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from augmentor.core.errors import UserError
from augmentor.core.runs import read_run_config, read_weights

EMBEDDINGS = ("embed",)  # tensor names holding the class embeddings of either kind


def init_config(init: str | Path, kind: str) -> dict[str, Any]:
    """The init run's config, refused unless it is a run of ``kind``."""
    config = init_config_any(init)
    if config.get("kind") != kind:
        raise UserError(f"--init {init}: is a {config.get('kind')!r} run; start a {kind} from a {kind} run")
    return config


def check_fits(init: str | Path, config: dict[str, Any], channels: int, side: int) -> None:
    """Refuse images the init run's networks were not built for (naming the conversion that fixes it)."""
    run_channels, run_side = int(config["model_args"]["channels"]), int(config["model_args"]["image_size"])
    if (run_channels, run_side) != (channels, side):
        made = f"{run_channels}×{run_side}×{run_side}"
        raise UserError(
            f"--init {init}: the run makes {made} images, the data is {channels}×{side}×{side}; convert the data "
            f"with --image-size {run_side} --channels {run_channels}, or train without --init"
        )


def warm_start(module: torch.nn.Module, init: str | Path, config: dict[str, Any], class_names: list[str]) -> dict:
    """Copy the init run's weights into ``module`` (the kind's sampling module) where names and shapes fit;
    class embeddings only when the classes are the same. What was taken, for the run's record."""
    weights = read_weights(Path(init))
    same_classes = list(config.get("class_names") or []) == list(class_names)
    own = module.state_dict()
    taken, fresh = [], []
    for name, tensor in own.items():
        theirs = weights.get(name)
        embedding = any(part in name for part in EMBEDDINGS)
        if theirs is None or tuple(theirs.shape) != tuple(tensor.shape) or (embedding and not same_classes):
            fresh.append(name)
            continue
        own[name] = theirs.to(tensor.dtype)
        taken.append(name)
    if not taken:
        raise UserError(f"--init {init}: none of its weights fit this model; train without --init")
    module.load_state_dict(own)
    return {
        "run": str(init),
        "weights_sha256": weights_sha256(init),
        "dataset": config.get("dataset"),  # what the init run was trained on (its fingerprint and size)
        "tensors_taken": len(taken),
        "tensors_fresh": sorted(fresh),
        "class_embeddings": "taken" if same_classes else "fresh (other classes)",
    }


def weights_sha256(init: str | Path) -> str:
    """The sha256 of the init run's weights file."""
    import hashlib

    digest = hashlib.sha256()
    with open(Path(init) / "model.safetensors", "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_generator_run(init: str | Path) -> None:
    """Refuse an init run that is not a generator run of a registered kind."""
    from augmentor.generative.kinds import KINDS

    kind = init_config_any(init).get("kind")
    if kind not in KINDS:
        raise UserError(f"--gen-init {init}: is a {kind!r} run; give a {' or '.join(KINDS)} run folder")


def check_unseen(init: str | Path, splits: dict[str, str]) -> None:
    """Refuse an init run trained on one of the dataset's own splits (``splits``: name → fingerprint of the
    whole split): its generators would have seen the images the experiment validates or tests on."""
    trained_on = (init_config_any(init).get("dataset") or {}).get("fingerprint")
    for name, print_ in splits.items():
        if trained_on is not None and trained_on == print_:
            raise UserError(
                f"--gen-init {init}: that run was trained on this dataset's {name} split, which holds the images "
                "the experiment chooses on or tests on; start from a run trained on other data, or drop --gen-init"
            )


def init_config_any(init: str | Path) -> dict[str, Any]:
    """The init run's config whatever its kind (the kind is checked where the generator is built)."""
    import augmentor.classifiers  # noqa: F401

    return read_run_config(Path(init))
