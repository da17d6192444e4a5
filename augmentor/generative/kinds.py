"""The registry of generative kinds: what each one builds, which module samples, and what it can do.

Everything that differs between a DCGAN and a VAE outside the training step lives in one ``Kind`` entry,
so the rest of the package asks the entry (or the ``Generator``) instead of comparing kind names.
Importing this module builds nothing and imports no torch; ``build`` imports the architectures.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from augmentor.core.errors import UserError

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class Kind:
    """One generative kind: its modules, its sampling module and its defaults."""

    name: str
    build: Callable[[dict[str, Any]], dict[str, nn.Module]]  # model args → the modules a run trains, by name
    model: Callable[[], type[nn.Module]]  # the class whose constructor takes a run's model args (their schema)
    sampler: str  # the module whose weights ``model.safetensors`` holds and that makes images
    can_encode: bool  # has an encoder: images → codes without optimisation
    adversarial: bool  # trained against a discriminator: two optimisers, and DiffAugment applies
    latent_dim: int
    lr: float
    ema: float  # EMA decay of the sampling module; 0 is off
    loss_keys: tuple[str, str]  # the two losses ``losses.png`` plots


def _dcgan_generator() -> type[nn.Module]:
    from augmentor.generative.dcgan import DCGANGenerator

    return DCGANGenerator


def _conv_vae() -> type[nn.Module]:
    from augmentor.generative.vae import ConvVAE

    return ConvVAE


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
        latent_dim=64,
        lr=2e-4,
        ema=0.999,
        loss_keys=("d_loss", "g_loss"),
    ),
    "vae": Kind(
        name="vae",
        build=_build_vae,
        model=_conv_vae,
        sampler="vae",
        can_encode=True,
        adversarial=False,
        latent_dim=32,
        lr=1e-3,
        ema=0.0,
        loss_keys=("reconstruction", "kl"),
    ),
}


def get_kind(name: str | None) -> Kind:
    """The entry of kind ``name``, with the known kinds on error."""
    if name not in KINDS:
        raise UserError(f"unknown generative model {name!r}; use one of {', '.join(KINDS)}")
    return KINDS[name]
