"""The source registry: every synthetic-image source honours the same contract (counts, seeds, provenance)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from augmentor.core.errors import UserError
from augmentor.data.imageset import ImageSet
from augmentor.synthetic.quota import Gates, fill_quota
from augmentor.synthetic.sources import (
    SOURCES,
    DensitySource,
    ExtrapolateSource,
    SourceContext,
    build_source,
    parse_source,
)
from tests.conftest import make_shapes_folder

# What each source's images must say about themselves in the manifest (besides ``source``).
EXPECTED_FIELDS = {
    "classic": ("parent", "pipeline", "seed"),
    "mixup": ("parent", "mix_partner", "mix_partner_class", "mix_share"),
    "cutmix": ("parent", "mix_partner", "mix_partner_class", "mix_share"),
    "dcgan": ("run_id", "seed", "latent_index"),
    "vae": ("run_id", "seed", "latent_index"),
    "vae-jitter": ("parent", "run_id", "seed", "sigma"),
    "vae-extrapolate": ("parent", "neighbour", "run_id", "seed", "strength"),
    "vae-density": ("run_id", "seed", "temperature"),
    "edit": ("run_id", "seed", "latent_index", "direction", "strength"),
}


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> Path:
    return make_shapes_folder(tmp_path_factory.mktemp("sources") / "shapes", per_class=5, seed=4)


@pytest.fixture(scope="module")
def real(shapes: Path) -> ImageSet:
    from augmentor.data.options import ReadOptions
    from augmentor.data.readers import open_dataset

    return open_dataset(str(shapes), ReadOptions()).train


@pytest.fixture(scope="module")
def runs(real: ImageSet, shapes: Path, tmp_path_factory) -> dict[str, Path]:
    """Tiny DCGAN and VAE run folders trained on ``real``, and latent directions of the VAE."""
    from augmentor.generative.train import GenerativeConfig, train_generative
    from augmentor.latent.directions import find_directions, write_directions

    base = tmp_path_factory.mktemp("source-runs")
    for kind in ("dcgan", "vae"):
        config = GenerativeConfig(kind=kind, steps=4, width=8, sample_every=4, device="cpu")
        train_generative(real, config, base / kind)
    directions = find_directions(base / "vae", str(shapes), "attribute:ink_area", "mean-diff", device="cpu")
    write_directions(directions, base / "dirs")
    return {"dcgan": base / "dcgan", "vae": base / "vae", "dirs": base / "dirs"}


def spec_text(kind: str, runs: dict[str, Path]) -> str:
    return {
        "classic": "classic:light",
        "mixup": "mixup",
        "cutmix": "cutmix:0.5",
        "dcgan": f"dcgan:{runs['dcgan']}",
        "vae": f"vae:{runs['vae']}",
        "vae-jitter": f"vae-jitter:{runs['vae']}:0.3",
        "vae-extrapolate": f"vae-extrapolate:{runs['vae']}:0.8",
        "vae-density": f"vae-density:{runs['vae']}:0.7",
        "edit": f"edit:{runs['vae']}:{runs['dirs']}:ink_area:-1,1",
    }[kind]


def context(real: ImageSet, seed: int) -> SourceContext:
    from augmentor.generative.generator import Generator

    return SourceContext(real, seed, lambda kind, run: Generator.from_run(Path(run)), device="cpu")


def test_every_registered_source_is_covered():
    assert set(SOURCES) == set(EXPECTED_FIELDS)


@pytest.mark.parametrize("kind", sorted(EXPECTED_FIELDS))
def test_source_contract(kind: str, real: ImageSet, runs: dict[str, Path]) -> None:
    spec = parse_source(spec_text(kind, runs))
    counts = np.array([2, 0, 3])
    made = build_source(spec, context(real, 7)).make(counts, 0)
    # Counts per class, in the real set's class order and with its shape.
    assert made.class_names == real.class_names
    assert np.bincount(made.labels, minlength=3).tolist() == counts.tolist()
    assert made.images.shape[1:] == real.images.shape[1:] and made.images.dtype == np.uint8
    # Provenance: the source's name and every field it owes the manifest.
    for record in made.provenance:
        assert record["source"] == kind
        assert all(record.get(key) is not None for key in EXPECTED_FIELDS[kind]), record
    # Determinism: the same seed stream gives the same images; another round or stream gives others.
    again = build_source(spec, context(real, 7))
    assert np.array_equal(again.make(counts, 0).images, made.images)
    other = build_source(spec, context(real, 8)).make(counts, 0)
    assert not np.array_equal(other.images, made.images)


@pytest.mark.parametrize("kind", ["classic", "vae"])
def test_rounds_continue_the_stream(kind: str, real: ImageSet, runs: dict[str, Path]) -> None:
    source = build_source(parse_source(spec_text(kind, runs)), context(real, 3))
    first = source.make(np.array([5, 5, 5]), 0)
    second = source.make(np.array([5, 5, 5]), 1)
    assert not np.array_equal(first.images, second.images)
    if kind == "classic":  # parents in shuffled passes: each image once per round of five
        assert sorted(p["parent"] for p in first.provenance) == sorted(p["parent"] for p in second.provenance)
    else:
        assert max(p["latent_index"] for p in first.provenance) < min(p["latent_index"] for p in second.provenance)


def test_gated_fill_meets_the_quota_or_reports_the_shortfall(real: ImageSet, runs: dict[str, Path]) -> None:
    source = build_source(parse_source(spec_text("classic", runs)), context(real, 1))
    # A dedupe distance no copy can reach: every round is rejected, and the budget ends the loop.
    images, stats = fill_quota(source, np.array([3, 3, 3]), Gates(real, dedupe=2.0, device="cpu"))
    assert len(images) == 0 and stats["kept"].tolist() == [0, 0, 0]
    assert stats["generated"].tolist() == [24, 24, 24] and stats["dropped"]["dedupe"] == 72
    images, stats = fill_quota(source, np.array([3, 3, 3]), Gates(real, dedupe=0.0, device="cpu"))
    assert np.bincount(images.labels).tolist() == [3, 3, 3] and stats["rounds"] == 1


@pytest.mark.parametrize(
    "text, message",
    [
        ("gan:x", "unknown source"),
        ("dcgan", "name the run folder"),
        ("vae-jitter:0.5", "name the run folder"),
        ("vae-jitter:run:-1", "sigma must be"),
        ("vae-extrapolate:0.5", "name the run folder"),
        ("vae-extrapolate:run:0", "strength must be a number > 0"),
        ("vae-extrapolate:run:-1", "strength must be a number > 0"),
        ("vae-extrapolate:run:nan", "strength must be a number > 0"),
        ("vae-extrapolate:0", "--with vae-extrapolate:0: strength must be"),
        ("vae-gated:run", "unknown source"),  # gated sources belong to the gain experiment
    ],
)
def test_bad_source_specs_are_refused_before_any_work(text: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        parse_source(text)


def test_gain_specs_may_omit_the_run_and_be_gated() -> None:
    spec = parse_source("vae-gated", where="--arms", allow_gated=True, need_run=False)
    assert (spec.kind, spec.arg, spec.gated) == ("vae", None, True)
    jitter = parse_source("vae-jitter:0.25", where="--arms", allow_gated=True, need_run=False)
    assert (jitter.kind, jitter.arg) == ("vae-jitter", "0.25")


@pytest.mark.parametrize(
    "text, run, strength",
    [
        ("vae-extrapolate", None, 0.5),
        ("vae-extrapolate:0.8", None, 0.8),
        ("vae-extrapolate:runs/v:0.8", "runs/v", 0.8),
        ("vae-extrapolate:runs/v", "runs/v", 0.5),
    ],
)
def test_extrapolate_spec_takes_an_optional_run_and_strength(text: str, run: str | None, strength: float) -> None:
    spec = parse_source(text, where="--arms", need_run=False)
    assert spec.kind == "vae-extrapolate" and ExtrapolateSource.run_in(spec) == run
    assert ExtrapolateSource.model_kind(spec) == "vae" and ExtrapolateSource._split(spec)[1] == strength


def test_a_bad_strength_is_refused_even_where_the_run_may_be_omitted() -> None:
    with pytest.raises(UserError, match="--arms vae-extrapolate:0: strength must be a number > 0"):
        parse_source("vae-extrapolate:0", where="--arms", allow_gated=True, need_run=False)


def test_vae_density_draws_from_the_gaussian_fitted_to_each_class(real: ImageSet, runs: dict[str, Path]) -> None:
    """Ex-post density sampling (issue 23 item 1): the codes follow each class's fitted Gaussian, the mean of
    the class's encoded images, and the temperature scales their spread."""
    import torch

    from augmentor.generative.generator import Generator
    from augmentor.latent.density import density_codes, fit_class_densities

    generator = Generator.from_run(runs["vae"])
    to_model = np.array([generator.class_index(n) for n in real.class_names])
    densities = fit_class_densities(generator, real, to_model, "cpu")
    members = np.flatnonzero(real.labels == 1)
    encoded = generator.encode(real.images[members], np.full(len(members), to_model[1]), device="cpu").double()
    assert torch.allclose(densities[1].mean, encoded.mean(0), atol=1e-5)
    labels = np.full(20_000, 1)
    codes = density_codes(densities, labels, 1.0, seed=5).double()
    covariance = densities[1].factor @ densities[1].factor.T
    assert torch.allclose(codes.mean(0), densities[1].mean, atol=0.05 * covariance.diagonal().sqrt().max().item())
    assert torch.allclose(torch.cov(codes.T), covariance, rtol=0.1, atol=0.05 * covariance.diagonal().max().item())
    cool = density_codes(densities, labels, 0.1, seed=5).double()
    assert torch.allclose(cool.std(0), 0.1 * codes.std(0), rtol=0.05)
    assert torch.equal(density_codes(densities, labels[:10], 1.0, seed=5), codes[:10].float())  # seeded
    spec = parse_source("vae-density:0.5", where="--arms", allow_gated=True, need_run=False)
    assert (spec.kind, DensitySource._split(spec)[1]) == ("vae-density", 0.5)


def test_density_shrinkage_follows_how_many_images_support_the_correlations() -> None:
    """The weight of the diagonal target is estimated from the data (Schäfer & Strimmer): codes with a strong
    real correlation keep it once there are many of them, a few images' chance correlations are shrunk away."""
    import torch

    from augmentor.latent.density import shrinkage_intensity

    rng = torch.Generator().manual_seed(0)
    mixing = torch.tensor([[1.0, 0.0, 0.0], [0.9, 0.4, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)

    def weight(n: int, correlated: bool) -> float:
        x = torch.randn(n, 3, generator=rng, dtype=torch.float64)
        x = x @ mixing.T if correlated else x
        return shrinkage_intensity(x - x.mean(0))

    assert weight(5000, correlated=True) < 0.01  # a real correlation, well measured: kept
    assert weight(5000, correlated=False) > 0.5  # no correlation: the diagonal is the better estimate
    assert weight(8, correlated=True) > weight(5000, correlated=True)  # few images: shrunk more
    assert shrinkage_intensity(torch.zeros(2, 3, dtype=torch.float64)) == 1.0  # too few to estimate
