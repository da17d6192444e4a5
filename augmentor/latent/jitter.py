"""Latent jitter: variations of the user's own images from a VAE — encode, perturb the code, decode.

Where a fresh VAE sample can be anything of its class, a jittered one stays close to a real parent, so
it is a learned, data-shaped analogue of classic augmentation. ``sigma`` is in units of the prior's
standard deviation.
"""

from __future__ import annotations

import numpy as np
import torch

from augmentor.core.errors import UserError
from augmentor.data.imageset import ImageSet
from augmentor.generative.generator import Generator


def jitter_parents(
    generator: Generator,
    real: ImageSet,
    parents: np.ndarray,
    *,
    sigma: float = 0.5,
    seed: int = 0,
    device: str = "auto",
    batch_size: int = 256,
) -> ImageSet:
    """One jittered decoding of each ``real`` image at ``parents`` (labels matched to the model by name)."""
    from augmentor.core.device import resolve_device

    if not generator.can_encode:
        raise UserError(
            f"{generator.where}: latent jitter needs a model with an encoder (a VAE); this is a {generator.kind} run"
        )
    if sigma < 0:
        raise UserError(f"latent jitter: sigma must be at least 0, got {sigma}")
    if generator.image_shape != (real.channels, *real.size):
        raise UserError(
            f"{generator.where}: the model takes {list(generator.image_shape)} images, the data has "
            f"{[real.channels, *real.size]}"
        )
    to_model = np.array([generator.class_index(name) for name in real.class_names], np.int64)
    target = resolve_device(device)
    noise_source = torch.Generator().manual_seed(seed)
    out = []
    # Batch by batch, so the noise of each batch is drawn as one block whatever the number of parents.
    for start in range(0, len(parents), batch_size):
        index = parents[start : start + batch_size]
        labels = to_model[real.labels[index]]
        mu, logvar = generator.posterior(real.images[index], labels, device=target, batch_size=batch_size)
        noise = torch.randn(mu.shape, generator=noise_source)
        # Posterior spread plus sigma of the prior's: near-copies at sigma 0, freer variations above.
        z = mu + noise * (torch.exp(0.5 * logvar) + sigma)
        out.append(generator.decode(z, labels, device=target, batch_size=batch_size))
    images = np.concatenate(out) if out else np.zeros((0, *real.images.shape[1:]), np.uint8)
    provenance = [
        {
            "source": "vae-jitter",
            "parent": real.provenance[p].get("origin", f"#{p}"),
            "run_id": generator.run_id,
            "seed": seed,
            "sigma": float(sigma),
        }
        for p in parents.tolist()
    ]
    return ImageSet(images, real.labels[parents], list(real.class_names), provenance)
