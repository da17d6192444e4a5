"""Sampling a VAE where the data is, not from its prior: ex-post density estimation (Ghosh et al. 2020,
"From variational to deterministic autoencoders"; Dai & Wipf 2019's two-stage VAE makes the same point).

A VAE trained on a few images per class leaves most of its prior N(0, I) unused: fresh prior samples land
between and away from the encoded images, which is where its decodings are blurred or off-class. Instead, for
each class, the encoder's means of that class's real images are fitted with one Gaussian, and new codes are
drawn from it. With 10 images and a 16-32-dimensional code the sample covariance has rank 9 at most, so it is
shrunk toward its own diagonal by the weight the data itself supports (Schäfer & Strimmer 2005's estimate of the
optimal Ledoit-Wolf intensity, target D: high for a few images, near 0 for thousands, where the codes'
correlations are real and a fixed weight would blur them), and the encoder's mean posterior variance is added: the
aggregate posterior's spread around each code. Codes then combine what the
class's images share rather than copying one of them (``vae-jitter`` stays near a parent).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from augmentor.core.errors import UserError
from augmentor.data.imageset import ImageSet
from augmentor.generative.generator import Generator

JITTER = 1e-5  # added to the diagonal so the Cholesky factor exists for a class of one image


@dataclass
class ClassDensity:
    """One class's Gaussian over codes: its mean and a Cholesky factor of its covariance (float64, CPU)."""

    mean: torch.Tensor
    factor: torch.Tensor


def fit_class_densities(generator: Generator, real: ImageSet, to_model: np.ndarray, device: str) -> list[ClassDensity]:
    """A Gaussian per class of ``real``, fitted to the encoder's means of that class's images."""
    densities = []
    for label in range(len(real.class_names)):
        members = np.flatnonzero(real.labels == label)
        if len(members) == 0:
            raise UserError(f"vae-density: class {real.class_names[label]!r} has no real images to fit")
        labels = np.full(len(members), to_model[label], np.int64)
        mu, logvar = generator.posterior(real.images[members], labels, device=device)
        mu, variance = mu.double(), logvar.double().exp()
        mean = mu.mean(0)
        centred = mu - mean
        sample = centred.T @ centred / max(1, len(members) - 1)
        weight = shrinkage_intensity(centred)
        shrunk = (1 - weight) * sample + weight * torch.diag(sample.diagonal())
        covariance = shrunk + torch.diag(variance.mean(0) + JITTER)
        densities.append(ClassDensity(mean, torch.linalg.cholesky(covariance)))
    return densities


def shrinkage_intensity(centred: torch.Tensor) -> float:
    """The weight of the diagonal target in the shrunk covariance of the rows of ``centred`` (n×d, mean 0):
    the estimated variance of the off-diagonal sample covariances over their squared size, clipped to [0, 1]
    (Schäfer & Strimmer 2005, target D). Computed from the n×d data, never an n×d×d array."""
    n = len(centred)
    if n < 3:
        return 1.0  # no spread to estimate correlations from
    cross = centred.T @ centred  # Σ_k x_ki x_kj
    squares = centred.pow(2)
    # Σ_k (x_ki x_kj − mean_k)² = Σ_k x_ki² x_kj² − (Σ_k x_ki x_kj)² / n
    spread = (squares.T @ squares - cross.pow(2) / n).clamp_min(0)
    variance = spread * n / (n - 1) ** 3  # of each sample covariance s_ij = cross_ij / (n − 1)
    covariance = cross / (n - 1)
    off = ~torch.eye(centred.shape[1], dtype=torch.bool)
    size = covariance[off].pow(2).sum()
    if size <= 0:
        return 1.0
    return float((variance[off].sum() / size).clamp(0.0, 1.0))


def density_codes(densities: list[ClassDensity], labels: np.ndarray, temperature: float, seed: int) -> torch.Tensor:
    """One code per entry of ``labels`` (real labels), drawn from its class's Gaussian with the spread scaled by
    ``temperature``; the noise is one block drawn from ``seed``, so a rerun gives the same codes."""
    if not (np.isfinite(temperature) and temperature > 0):
        raise UserError(f"vae-density: temperature must be a number > 0, got {temperature}")
    dim = densities[0].mean.shape[0]
    noise = torch.randn(len(labels), dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    codes = torch.empty(len(labels), dim, dtype=torch.float64)
    for label in np.unique(labels).tolist():
        rows = torch.from_numpy(np.flatnonzero(labels == label))
        density = densities[label]
        codes[rows] = density.mean + temperature * noise[rows] @ density.factor.T
    return codes.float()


def density_samples(
    generator: Generator,
    densities: list[ClassDensity],
    labels: np.ndarray,
    to_model: np.ndarray,
    class_names: list[str],
    temperature: float,
    seed: int,
    device: str,
) -> ImageSet:
    """One decoded image per entry of ``labels`` (real labels; ``to_model`` maps them to the model's), its code
    drawn by ``density_codes``, with ``vae-density`` provenance."""
    codes = density_codes(densities, labels, temperature, seed)
    images = generator.decode(codes, to_model[labels], device=device)
    record = {"source": "vae-density", "run_id": generator.run_id, "seed": seed, "temperature": temperature}
    return ImageSet(images, labels, list(class_names), [dict(record) for _ in range(len(labels))])


def fitted_samples(
    generator: Generator, real: ImageSet, labels: np.ndarray, temperature: float, seed: int, device: str
) -> ImageSet:
    """Densities fitted to ``real``'s encodings of each class, then one decoded sample per entry of ``labels``
    (real labels): what a ``vae-density`` source of ``real`` makes (``score --latent density``, gain's report)."""
    to_model = np.array([generator.class_index(name) for name in real.class_names], np.int64)
    densities = fit_class_densities(generator, real, to_model, device)
    return density_samples(generator, densities, labels, to_model, real.class_names, temperature, seed, device)
