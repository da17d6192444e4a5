"""Latent interpolation (slerp's geometry, class and image endpoints, bad input), jitter and extrapolation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from augmentor.core.errors import UserError
from augmentor.data.imageset import ImageSet
from augmentor.generative.generator import Generator
from augmentor.generative.train import GenerativeConfig, train_generative
from augmentor.latent.interpolate import interpolate_run, lerp, slerp
from augmentor.latent.jitter import extrapolate_parents, extrapolated_codes, jitter_parents
from tests.conftest import run_cli
from tests.test_generative import shapes_set


def test_slerp_endpoints_are_its_inputs_and_the_path_stays_on_the_sphere():
    generator = torch.Generator().manual_seed(0)
    a, b = torch.randn(64, generator=generator), torch.randn(64, generator=generator)
    b = b / b.norm() * a.norm()  # equal norms: the whole path lies on that sphere
    t = torch.linspace(0, 1, 9)
    path = slerp(a, b, t)
    assert torch.allclose(path[0], a, atol=1e-5) and torch.allclose(path[-1], b, atol=1e-5)
    assert torch.allclose(path.norm(dim=1), a.norm().expand(9), rtol=1e-5)
    # Equal angular steps: neighbouring points are equally far apart.
    gaps = (path[1:] - path[:-1]).norm(dim=1)
    assert torch.allclose(gaps, gaps.mean().expand(8), rtol=1e-4)
    # lerp cuts through the ball instead.
    assert lerp(a, b, t)[4].norm() < 0.9 * a.norm()


def test_slerp_of_parallel_codes_does_not_divide_by_zero():
    a = torch.ones(8)
    path = slerp(a, 2 * a, torch.linspace(0, 1, 5))
    assert torch.isfinite(path).all() and torch.allclose(path[-1], 2 * a)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("latent")
    data = shapes_set(per_class=8)
    for kind in ("dcgan", "vae"):
        config = GenerativeConfig(kind=kind, steps=4, width=8, batch_size=8, sample_every=4)
        train_generative(data, config, root / kind)
    image = root / "disk.png"
    Image.fromarray(data.images[0, 0]).save(image)
    wrong = root / "big.png"
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(wrong)
    return root


def test_interpolate_rows_and_gif(runs, tmp_path):
    out = tmp_path / "strip.png"
    result = run_cli(
        "interpolate",
        runs / "vae",
        "--from",
        "1",
        "--to",
        "2",
        "--from",
        "disk",
        "--to",
        "square",
        "--from",
        runs / "disk.png",
        "--to",
        "3",
        "--class",
        "disk",
        "--frames",
        "5",
        "--out",
        out,
    )
    assert result.exit_code == 0, result.stderr
    grid = np.asarray(Image.open(out))
    assert grid.shape[0] > grid.shape[1] / 5 * 2  # three rows of five
    gif = tmp_path / "walk.gif"
    assert run_cli("interpolate", runs / "dcgan", "--from", "1", "--to", "2", "--out", gif).exit_code == 0
    assert Image.open(gif).n_frames > 2


def test_interpolation_gif_frames_say_their_pair_and_position(runs, tmp_path):
    """Issue 12: every GIF frame carries the pair above it and its t in the title, so frames differ in text."""
    gif = tmp_path / "walk.gif"
    args = ("interpolate", runs / "dcgan", "--from", "1", "--to", "2", "--frames", "4", "--out", gif)
    assert run_cli(*args).exit_code == 0
    frames = []
    with Image.open(gif) as animation:
        for k in range(4):  # forward, then the bounce back
            animation.seek(k)
            frames.append(np.asarray(animation.convert("L")))
    height = frames[0].shape[0]
    image_side = 64  # 28 px upscaled to at least 64: the label bands make the frame taller than one image
    assert height > image_side + 20
    bands = [frame[: height - image_side] for frame in frames]
    assert all((band < 128).any() for band in bands)  # text in the band
    assert not np.array_equal(bands[0], bands[1])  # the t changes


def test_interpolation_title_and_row_labels_say_what_the_rows_are(runs, tmp_path, monkeypatch):
    """A class pair's row is labelled by its classes and --class goes in the title only when it holds for every
    row (seed and image rows); otherwise those rows carry it."""
    import augmentor.latent.interpolate as interpolate

    calls: list[dict] = []
    monkeypatch.setattr(interpolate, "write_interpolation", lambda rows, out, overwrite, **k: calls.append(k) or out)
    run = runs / "dcgan"
    interpolate_run(run, ["disk", "1"], ["square", "2"], tmp_path / "mixed.png", frames=3, class_name="triangle")
    interpolate_run(run, ["disk", "square"], ["square", "triangle"], tmp_path / "classes.png", frames=3, seed=4)
    interpolate_run(run, ["1", "3"], ["2", "4"], tmp_path / "seeds.png", frames=3, class_name="triangle")
    mixed, classes, seeds = calls
    assert mixed["row_labels"] == ["disk -> square", "seed 1 -> seed 2, triangle"]
    assert mixed["title"] == "slerp interpolation / class blend (dcgan)"  # no class for the whole picture
    assert classes["row_labels"] == ["disk -> square", "square -> triangle"]
    assert classes["title"] == "class blend (dcgan), code of seed 4"
    assert seeds["row_labels"] == ["seed 1 -> seed 2", "seed 3 -> seed 4"]
    assert seeds["title"] == "slerp interpolation (dcgan), class triangle"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "hexagon", "--to", "1"], "not a seed, a class"),
        (["--from", "1", "--to", "2", "--method", "cubic"], "--method 'cubic' is unknown"),
        (["--from", "1", "--to", "2", "--from", "3"], "as many --to as --from"),
    ],
)
def test_interpolate_bad_input(runs, tmp_path, args, message):
    result = run_cli("interpolate", runs / "dcgan", *args, "--out", tmp_path / "x.png")
    assert result.exit_code == 2 and message in result.stderr
    assert not (tmp_path / "x.png").exists()


def test_interpolate_run_checks_pairs_frames_and_out_before_loading_the_model(tmp_path):
    missing = tmp_path / "no-run"  # never loaded: each refusal comes first
    taken = tmp_path / "taken.png"
    taken.write_bytes(b"x")
    cases = [
        ((["1", "2"], ["3"], tmp_path / "a.png"), {}, "give as many --to as --from (2 --from, 1 --to)"),
        ((["1"], ["2"], taken), {}, "exists; pass --overwrite"),
        ((["1"], ["2"], tmp_path / "a.jpg"), {}, "give a .png (grid) or .gif (animation)"),
        ((["1"], ["2"], tmp_path / "a.png"), {"frames": 1}, "--frames must be 2..1000"),
    ]
    for args, kwargs, message in cases:
        with pytest.raises(UserError) as refused:
            interpolate_run(missing, *args, **kwargs)
        assert message in refused.value.message
    assert taken.read_bytes() == b"x" and [p.name for p in tmp_path.iterdir()] == ["taken.png"]


def test_image_endpoints_are_encoded_or_inverted_and_must_have_the_right_size(runs, tmp_path):
    # A DCGAN has no encoder: its image endpoints go through inversion (augmentor project).
    dcgan = run_cli(
        "interpolate",
        runs / "dcgan",
        "--from",
        runs / "disk.png",
        "--to",
        "1",
        "--class",
        "disk",
        "--out",
        tmp_path / "a.png",
    )
    assert dcgan.exit_code == 0, dcgan.stderr
    for kind in ("vae", "dcgan"):
        out = tmp_path / f"{kind}.png"
        size = run_cli(
            "interpolate", runs / kind, "--from", runs / "big.png", "--to", "1", "--class", "disk", "--out", out
        )
        assert size.exit_code == 2 and "32×32" in size.stderr and "28×28" in size.stderr, size.stderr
        assert not out.exists()
    kind = run_cli("interpolate", runs / "missing", "--from", "1", "--to", "2", "--out", tmp_path / "c.png")
    assert kind.exit_code == 2 and "not a run folder" in kind.stderr


def _index(origin: str) -> int:
    """The position an in-memory set's origin ``#k`` names."""
    return int(origin.removeprefix("#"))


def test_jitter_sigma_is_in_posterior_standard_deviations(runs):
    vae, data = Generator.from_run(runs / "vae"), shapes_set(per_class=8)
    parents = np.arange(len(data))
    mu, _ = vae.posterior(data.images, data.labels, device="cpu", batch_size=256)
    reconstruction = vae.decode(mu, data.labels, device="cpu", batch_size=256)
    # sigma 0 is the posterior mean: a plain reconstruction, byte for byte.
    assert np.array_equal(jitter_parents(vae, data, parents, sigma=0, device="cpu").images, reconstruction)
    distance = [
        np.abs(jitter_parents(vae, data, parents, sigma=s, device="cpu").images.astype(float) - reconstruction).mean()
        for s in (0.5, 2.0)
    ]
    assert 0 < distance[0] < distance[1]
    for bad in (-1.0, float("nan")):
        with pytest.raises(UserError, match="sigma must be"):
            jitter_parents(vae, data, parents, sigma=bad, device="cpu")


def test_extrapolation_moves_each_code_away_from_a_near_same_class_code(runs):
    vae, data = Generator.from_run(runs / "vae"), shapes_set(per_class=8)
    parents = np.array([3, 3, 0, 9, 17, 23, 12])  # a parent twice, every class, out of order
    made = extrapolate_parents(vae, data, parents, strength=0.8, neighbours=3, seed=5, device="cpu")
    codes = vae.encode(data.images, data.labels, device="cpu", batch_size=256)
    expected = []
    for parent, record in zip(parents.tolist(), made.provenance, strict=True):
        assert record["source"] == "vae-extrapolate" and record["strength"] == 0.8 and record["seed"] == 5
        neighbour = _index(record["neighbour"])
        assert _index(record["parent"]) == parent and neighbour != parent
        # Of the same class, and among the parent's three nearest same-class codes.
        same = np.flatnonzero((data.labels == data.labels[parent]) & (np.arange(len(data)) != parent))
        nearest = same[np.argsort((codes[same] - codes[parent]).norm(dim=1).numpy())[:3]]
        assert data.labels[neighbour] == data.labels[parent] and neighbour in nearest
        expected.append(codes[parent] + 0.8 * (codes[parent] - codes[neighbour]))
    expected = torch.stack(expected)
    z, _, labels = extrapolated_codes(vae, data, parents, strength=0.8, neighbours=3, seed=5, device="cpu")
    assert torch.allclose(z, expected, atol=1e-6)
    assert np.array_equal(made.images, vae.decode(z, labels, device="cpu", batch_size=256))
    assert made.labels.tolist() == data.labels[parents].tolist()
    # Deterministic for a seed; another seed picks other neighbours among the three.
    again = extrapolate_parents(vae, data, parents, strength=0.8, neighbours=3, seed=5, device="cpu")
    assert np.array_equal(again.images, made.images) and again.provenance == made.provenance
    every = np.arange(len(data))
    picks = [
        [r["neighbour"] for r in extrapolate_parents(vae, data, every, seed=s, device="cpu").provenance] for s in (0, 1)
    ]
    assert picks[0] != picks[1]


def test_extrapolation_of_a_class_with_one_image_reconstructs_it(runs):
    vae, data = Generator.from_run(runs / "vae"), shapes_set(per_class=8)
    keep = np.array([0, 8, 9, 10, 16, 17])  # a single disk
    subset = ImageSet(data.images[keep], data.labels[keep], list(data.class_names))
    made = extrapolate_parents(vae, subset, np.array([0, 1]), strength=0.5, device="cpu")
    assert made.provenance[0]["neighbour"] == made.provenance[0]["parent"] == "#0"
    assert made.provenance[1]["neighbour"] in ("#2", "#3")
    z = extrapolated_codes(vae, subset, np.array([0, 1]), strength=0.5, device="cpu")[0]
    assert torch.allclose(z[0], vae.encode(subset.images[:1], subset.labels[:1], device="cpu")[0], atol=1e-6)
    with pytest.raises(UserError, match="needs a model with an encoder"):
        extrapolate_parents(Generator.from_run(runs / "dcgan"), subset, np.array([0]), device="cpu")
    with pytest.raises(UserError, match="strength must be"):
        extrapolate_parents(vae, subset, np.array([0]), strength=float("nan"), device="cpu")
