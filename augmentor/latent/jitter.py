"""Variations of the user's own images from a VAE: encode, move the code, decode — never a prior sample.

Where a fresh VAE sample can be anything of its class, these stay close to a real parent, so they are a
learned, data-shaped analogue of classic augmentation. Two moves:

- jitter: ``z = mu + sigma * noise * exp(logvar / 2)``, noise in units of the encoder's own posterior
  standard deviation per dimension (sigma 1 is a draw from the posterior, 0 its mean: a reconstruction),
  so dimensions the encoder is sure of move little and the ones it ignores move freely;
- extrapolation (DeVries & Taylor 2017, where it beat interpolation and noise): ``z_i + s (z_i - z_j)``,
  the parent's mean code moved away from one of its nearest same-class neighbours.
"""

from __future__ import annotations

import numpy as np
import torch

from augmentor.core.errors import UserError
from augmentor.data.imageset import ImageSet
from augmentor.generative.generator import Generator


def _model_labels(generator: Generator, real: ImageSet, what: str) -> np.ndarray:
    """Real label → the model's label (matched by class name), once the model can encode ``real``."""
    if not generator.can_encode:
        raise UserError(
            f"{generator.where}: {what} needs a model with an encoder (a VAE); this is a {generator.kind} run"
        )
    if generator.image_shape != (real.channels, *real.size):
        raise UserError(
            f"{generator.where}: the model takes {list(generator.image_shape)} images, the data has "
            f"{[real.channels, *real.size]}"
        )
    return np.array([generator.class_index(name) for name in real.class_names], np.int64)


def _origin(real: ImageSet, index: int) -> str:
    """How the manifest names real image ``index``: its source file, or its position when it has none."""
    return real.provenance[index].get("origin", f"#{index}")


def jitter_parents(
    generator: Generator,
    real: ImageSet,
    parents: np.ndarray,
    *,
    sigma: float = 1.0,
    seed: int = 0,
    device: str = "auto",
    batch_size: int = 256,
) -> ImageSet:
    """One jittered decoding of each ``real`` image at ``parents``; ``sigma`` in posterior standard deviations."""
    from augmentor.core.device import resolve_device

    to_model = _model_labels(generator, real, "latent jitter")
    if not (np.isfinite(sigma) and sigma >= 0):
        raise UserError(f"latent jitter: sigma must be a number ≥ 0, got {sigma}")
    target = resolve_device(device)
    noise_source = torch.Generator().manual_seed(seed)
    out = []
    # Batch by batch, so the noise of each batch is drawn as one block whatever the number of parents.
    for start in range(0, len(parents), batch_size):
        index = parents[start : start + batch_size]
        labels = to_model[real.labels[index]]
        mu, logvar = generator.posterior(real.images[index], labels, device=target, batch_size=batch_size)
        noise = torch.randn(mu.shape, generator=noise_source)
        z = mu + sigma * noise * torch.exp(0.5 * logvar)
        out.append(generator.decode(z, labels, device=target, batch_size=batch_size))
    provenance = [
        {
            "source": "vae-jitter",
            "parent": _origin(real, p),
            "run_id": generator.run_id,
            "seed": seed,
            "sigma": float(sigma),
        }
        for p in parents.tolist()
    ]
    images = np.concatenate(out) if out else np.zeros((0, *real.images.shape[1:]), np.uint8)
    return ImageSet(images, real.labels[parents], list(real.class_names), provenance)


def extrapolated_codes(
    generator: Generator,
    real: ImageSet,
    parents: np.ndarray,
    *,
    strength: float = 0.5,
    neighbours: int = 3,
    seed: int = 0,
    device: str = "auto",
    batch_size: int = 256,
) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """The codes ``extrapolate_parents`` decodes, the neighbour (a ``real`` index) of each, and model labels.

    Each parent's neighbour is drawn uniformly (numpy, seeded by ``seed``, one draw per parent in order)
    from its ``neighbours`` nearest same-class mean codes, the parent itself excluded. A parent alone in
    its class is its own neighbour, so its code is unchanged: a plain reconstruction.
    """
    to_model = _model_labels(generator, real, "latent extrapolation")
    if not (np.isfinite(strength) and strength >= 0):
        raise UserError(f"latent extrapolation: strength must be a number ≥ 0, got {strength}")
    if neighbours < 1:
        raise UserError(f"latent extrapolation: neighbours must be at least 1, got {neighbours}")
    parents = np.asarray(parents, np.int64)
    # Every image of the classes involved, encoded once for the whole call, not once per parent.
    members = np.flatnonzero(np.isin(real.labels, np.unique(real.labels[parents])))
    mu = generator.encode(real.images[members], to_model[real.labels[members]], device=device, batch_size=batch_size)
    codes = mu.double().numpy()
    row = np.full(len(real), -1, np.int64)
    row[members] = np.arange(len(members))
    rng = np.random.default_rng(seed)
    choice = rng.random(len(parents))  # drawn before any branching, so one parent never shifts another's draw
    neighbour = parents.copy()
    for label in np.unique(real.labels[parents]).tolist():
        same = np.flatnonzero(real.labels[members] == label)  # rows of the class's codes
        if len(same) < 2:
            continue
        where = np.flatnonzero(real.labels[parents] == label)
        block = codes[same]
        norms = (block**2).sum(1)
        for start in range(0, len(where), batch_size):  # batches of parents keep the distance block small
            these = where[start : start + batch_size]
            own = row[parents[these]]
            distance = (codes[own] ** 2).sum(1)[:, None] + norms[None, :] - 2 * codes[own] @ block.T
            distance[members[same][None, :] == parents[these][:, None]] = np.inf  # not the parent itself
            k = min(neighbours, len(same) - 1)
            nearest = np.argsort(distance, axis=1, kind="stable")[:, :k]
            picked = nearest[np.arange(len(these)), (choice[these] * k).astype(np.int64)]
            neighbour[these] = members[same[picked]]
    z_i = torch.from_numpy(codes[row[parents]]).float()
    z_j = torch.from_numpy(codes[row[neighbour]]).float()
    return z_i + strength * (z_i - z_j), neighbour, to_model[real.labels[parents]]


def extrapolate_parents(
    generator: Generator,
    real: ImageSet,
    parents: np.ndarray,
    *,
    strength: float = 0.5,
    neighbours: int = 3,
    seed: int = 0,
    device: str = "auto",
    batch_size: int = 256,
) -> ImageSet:
    """One decoding of each parent's code moved away from a near same-class code (see ``extrapolated_codes``)."""
    parents = np.asarray(parents, np.int64)
    z, neighbour, labels = extrapolated_codes(
        generator,
        real,
        parents,
        strength=strength,
        neighbours=neighbours,
        seed=seed,
        device=device,
        batch_size=batch_size,
    )
    images = generator.decode(z, labels, device=device, batch_size=batch_size)
    provenance = [
        {
            "source": "vae-extrapolate",
            "parent": _origin(real, p),
            "neighbour": _origin(real, n),
            "run_id": generator.run_id,
            "seed": seed,
            "strength": float(strength),
        }
        for p, n in zip(parents.tolist(), neighbour.tolist(), strict=True)
    ]
    return ImageSet(images, real.labels[parents], list(real.class_names), provenance)
