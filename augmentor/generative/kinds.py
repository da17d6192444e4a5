"""The registry of generative kinds: what each one builds, which module samples, and what it can do.

Everything that differs between a DCGAN and a VAE lives in the kind's module (its networks and its training
hook) and one ``Kind`` entry here, so the rest of the package asks the entry (or the ``Generator``) instead of
comparing kind names. A new kind is one new module and one entry (README, "Adding a generator kind").
Importing this module builds nothing and imports no torch; ``build`` imports the architectures.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from augmentor.core.errors import UserError

if TYPE_CHECKING:
    import torch
    from torch import nn


@dataclass(frozen=True)
class StepInputs:
    """What a kind's training hook gets for one step: a uint8 batch (this rank's rows of it under torchrun), its
    labels (None when unconditional), the step's generator, the global batch's latent noise for this rank's rows
    (``noise(rows, dim)``) and the factor that makes this rank's mean loss the global one under DDP."""

    images: torch.Tensor
    labels: torch.Tensor | None
    generator: torch.Generator
    noise: Callable[[int, int], torch.Tensor]
    share: float


@dataclass(frozen=True)
class Kind:
    """One generative kind: its modules, its sampling module and its defaults."""

    name: str
    build: Callable[[dict[str, Any]], dict[str, nn.Module]]  # model args → the modules a run trains, by name
    model: Callable[[], type[nn.Module]]  # the class whose constructor takes a run's model args (their schema)
    sampler: str  # the module whose weights ``model.safetensors`` holds and that makes images
    can_encode: bool  # has an encoder: images → codes without optimisation
    adversarial: bool  # trained against a discriminator: DiffAugment applies
    # The class that trains the kind's modules: built from (modules, config, device, distributed), it holds the
    # optimisers by name and takes one ``step(StepInputs)``; generative.train and
    # training.fit do everything else (data order, EMA, checkpoints, rollbacks, sample grids).
    training: Callable[[], type]
    latent_dim: int
    lr: float
    ema: float  # EMA decay of the sampling module; 0 is off
    loss_keys: tuple[str, str]  # the two losses ``losses.png`` plots
    collapse_advice: str  # what ``train KIND`` can try when its samples collapse


def _dcgan_generator() -> type[nn.Module]:
    from augmentor.generative.dcgan import DCGANGenerator

    return DCGANGenerator


def _conv_vae() -> type[nn.Module]:
    from augmentor.generative.vae import ConvVAE

    return ConvVAE


def _dcgan_training() -> type:
    from augmentor.generative.dcgan import AdversarialTraining

    return AdversarialTraining


def _vae_training() -> type:
    from augmentor.generative.vae import VAETraining

    return VAETraining


def _build_dcgan(model_args: dict[str, Any]) -> dict[str, nn.Module]:
    from augmentor.generative.dcgan import DCGANDiscriminator, DCGANGenerator

    d_args = {k: v for k, v in model_args.items() if k != "latent_dim"}
    return {"generator": DCGANGenerator(**model_args), "discriminator": DCGANDiscriminator(**d_args)}


def _build_vae(model_args: dict[str, Any]) -> dict[str, nn.Module]:
    from augmentor.generative.vae import ConvVAE

    return {"vae": ConvVAE(**model_args)}


KINDS: dict[str, Kind] = {
    "dcgan": Kind(
        name="dcgan",
        build=_build_dcgan,
        model=_dcgan_generator,
        sampler="generator",
        can_encode=False,
        adversarial=True,
        training=_dcgan_training,
        latent_dim=64,
        lr=2e-4,
        ema=0.999,
        loss_keys=("d_loss", "g_loss"),
        collapse_advice="try --diffaugment, more --steps, a lower --lr, or the VAE",
    ),
    "vae": Kind(
        name="vae",
        build=_build_vae,
        model=_conv_vae,
        sampler="vae",
        can_encode=True,
        adversarial=False,
        training=_vae_training,
        latent_dim=32,
        lr=1e-3,
        ema=0.0,
        loss_keys=("reconstruction", "kl"),
        collapse_advice=(
            "try more --steps or a lower --beta (a strong KL term pulls every sample toward one mean image)"
        ),
    ),
}


def get_kind(name: str | None) -> Kind:
    """The entry of kind ``name``, with the known kinds on error."""
    if name not in KINDS:
        raise UserError(f"unknown generative model {name!r}; use one of {', '.join(KINDS)}")
    return KINDS[name]
