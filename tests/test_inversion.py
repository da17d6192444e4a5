"""Projection of images into DCGAN / VAE latent spaces: reachable images come back, bad input is refused."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.numpy import load_file

from augmentor.core.errors import UserError
from augmentor.generative.train import GenerativeConfig, train_generative
from augmentor.latent.inversion import (
    FRAMES,
    Projection,
    ProjectionResult,
    _frame_steps,
    _optimise,
    project_run,
    write_projection,
)
from augmentor.report.grids import grid_picture
from tests.conftest import REPO, run_cli
from tests.test_generative import shapes_set


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Tiny DCGAN and VAE runs on drawn shapes, three images each model generated itself, and bad files."""
    root = tmp_path_factory.mktemp("inversion")
    data = shapes_set(per_class=8)
    for kind, steps in (("dcgan", 300), ("vae", 100)):
        config = GenerativeConfig(kind=kind, steps=steps, width=8, batch_size=8, sample_every=steps, log_every=steps)
        generator = train_generative(data, config, root / kind).generator
        images = generator.decode(generator.latents(np.arange(100, 103), 9), np.zeros(3, np.int64), device="cpu")
        for i, image in enumerate(images):
            Image.fromarray(image[0]).save(root / f"{kind}{i}.png")
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(root / "big.png")
    Image.fromarray(np.zeros((28, 28, 3), np.uint8)).save(root / "rgb.png")
    (root / "notes.png").write_text("not an image")
    return root


def _project(runs, kind, out, *args):
    images = [runs / f"{kind}{i}.png" for i in range(3)]
    result = run_cli("project", runs / kind, *images, "--class", "disk", "--out", out, "--json", *args)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def _assert_reached(summary, factor=0.5):
    for row in summary["images"]:
        assert row["mse"] < factor * row["random_code_mse"], row
        assert row["class"] == "disk"


def test_dcgan_projection_finds_its_own_images(runs, tmp_path):
    out = tmp_path / "dcgan"
    summary = _project(runs, "dcgan", out, "--inversion-steps", "100", "--restarts", "2")
    _assert_reached(summary)
    assert summary["kind"] == "dcgan" and summary["features"] is not None and summary["note"] is None
    assert {p.name for p in out.iterdir()} == {"codes.safetensors", "projection.json", "reconstructions.png", "images"}
    # Per image, as StyleGAN's projector: the target, the projection and the optimisation as a GIF.
    folders = sorted((out / "images").iterdir())
    assert [f.name for f in folders] == ["000-dcgan0", "001-dcgan1", "002-dcgan2"]
    for k, folder in enumerate(folders):
        assert {f.name for f in folder.iterdir()} == {"target.png", "projected.png", "optimisation.gif"}
        target = np.asarray(Image.open(folder / "target.png"))
        assert np.array_equal(target, np.asarray(Image.open(runs / f"dcgan{k}.png")))  # the image itself
        with Image.open(folder / "optimisation.gif") as gif:
            assert gif.n_frames >= 30  # 100 steps in frames of a few steps each, and the final code
            gif.seek(gif.n_frames - 1)
            last = np.asarray(gif.convert("L"))
        projected = np.asarray(Image.open(folder / "projected.png"))
        # The last frame is the labelled pair: "target" | "projected", titled with the final step.
        pair = [[target[None], projected[None]]]
        expected = grid_picture(pair, column_labels=["target", "projected"], title="step 100 of 100").convert("L")
        assert np.abs(last.astype(int) - np.asarray(expected)).max() <= 1
    codes = load_file(out / "codes.safetensors")
    assert codes["codes"].shape == (3, 64) and codes["labels"].tolist() == [0, 0, 0]
    assert json.loads((out / "projection.json").read_text())["images"] == summary["images"]
    again = run_cli("project", runs / "dcgan", runs / "dcgan0.png", "--class", "disk", "--out", out)
    assert again.exit_code == 2 and "--overwrite" in again.stderr


def test_vae_projection_encoder_and_refinement(runs, tmp_path):
    encoded = _project(runs, "vae", tmp_path / "encoded", "--feature-weight", "0")
    assert encoded["features"] is None and encoded["mean"]["mse"] < encoded["mean"]["random_code_mse"]
    refined = _project(runs, "vae", tmp_path / "refined", "--refine-steps", "50")
    _assert_reached(refined)
    assert refined["mean"]["mse"] <= encoded["mean"]["mse"] + 1e-4
    assert load_file(tmp_path / "refined" / "codes.safetensors")["codes"].shape == (3, 32)


def test_table_output(runs, tmp_path):
    result = run_cli("project", runs / "vae", runs / "vae0.png", "--class", "0", "--out", tmp_path / "t")
    assert result.exit_code == 0, result.stderr
    assert "SSIM" in result.stdout and "mean" in result.stdout and "0." in result.stdout


@pytest.mark.parametrize(
    ("run", "image", "extra", "message"),
    [
        ("vae", "big.png", ["--class", "disk"], "1×32×32"),
        ("dcgan", "rgb.png", ["--class", "disk"], "3×28×28"),
        ("vae", "notes.png", ["--class", "disk"], "notes.png"),
        ("vae", "missing.png", ["--class", "disk"], "no such image file"),
        (REPO / "weights" / "fashion-mnist" / "classifier", "vae0.png", [], "a dcgan or vae run is needed"),
        ("dcgan", "dcgan0.png", [], "pass --class"),
        ("vae", "vae0.png", ["--class", "hexagon"], "does not know class 'hexagon'"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_written(runs, tmp_path, run, image, extra, message):
    out = tmp_path / "out"
    result = run_cli("project", runs / run, runs / image, *extra, "--inversion-steps", "5", "--out", out)
    assert result.exit_code == 2 and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not out.exists() and not list(tmp_path.iterdir())


def test_project_run_checks_out_and_steps_before_loading_the_model(tmp_path):
    missing, image = tmp_path / "no-run", tmp_path / "no.png"  # never read: each refusal comes first
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "x").write_text("x")
    with pytest.raises(UserError, match="not empty; pass --overwrite"):
        project_run(missing, [image], taken)
    with pytest.raises(UserError, match="--inversion-steps and --refine-steps must not be negative"):
        project_run(missing, [image], tmp_path / "out", inversion_steps=-1)
    assert [p.name for p in tmp_path.iterdir()] == ["taken"]
    result = run_cli("project", missing, image, "--out", taken)
    assert result.exit_code == 2 and "--overwrite" in result.stderr


class _Identity(torch.nn.Module):
    """A "generator" whose 4-number code is its 2×2 picture, for ``_optimise``'s frame bookkeeping."""

    def forward(self, z, labels):
        return z.view(-1, 1, 2, 2)

    def to_unit(self, x):
        return x


@pytest.mark.parametrize("steps", [0, 7, FRAMES, 65])
def test_each_frame_knows_its_optimisation_step(steps):
    frames: list = []
    targets = torch.full((1, 1, 2, 2), 0.5)
    _optimise(_Identity(), torch.zeros(1, 4), None, targets, steps, 0.0, None, frames)
    assert len(frames) == len(_frame_steps(steps))
    assert _frame_steps(steps)[0] == 0 and _frame_steps(steps)[-1] == steps


def _fake_result(tmp_path, frame_steps):
    """Two projections of files that share a name (from two folders), without a model."""
    image = np.full((1, 28, 28), 200, np.uint8)
    images = [
        Projection(
            path=tmp_path / folder / "real-000000.png",
            original=image,
            reconstruction=image,
            code=np.zeros(4, np.float32),
            label=0,
            mse=0.0,
            ssim=1.0,
            random_code_mse=0.1,
            frames=[image] * max(1, len(frame_steps)),
            frame_steps=frame_steps,
        )
        for folder in ("a", "b")
    ]
    generator = SimpleNamespace(kind="dcgan", run_id="dcgan:0:run", where="run")
    return ProjectionResult(generator, images, "disk", None, {"steps": 4})


def test_projection_pictures_are_labelled(tmp_path, monkeypatch):
    """reconstructions.png tells two same-named inputs apart; each GIF frame says target, projected and its step."""
    import augmentor.report.grids as grids

    calls: list[tuple[str, dict]] = []
    for name in ("grid_png", "grid_picture"):
        real = getattr(grids, name)
        monkeypatch.setattr(
            grids, name, lambda *a, _real=real, _name=name, **k: calls.append((_name, k)) or _real(*a, **k)
        )
    write_projection(_fake_result(tmp_path, [0, 2, 4]), tmp_path / "out")
    rows = next(k for name, k in calls if name == "grid_png")["row_labels"]
    assert rows == ["000 real-000000.png", "001 real-000000.png"]
    frames = [k for name, k in calls if name == "grid_picture" and "row_labels" not in k]  # not grid_png's own
    assert all(k["column_labels"] == ["target", "projected"] for k in frames)
    assert [k["title"] for k in frames] == ["step 0 of 4", "step 2 of 4", "step 4 of 4"] * 2
    with Image.open(tmp_path / "out" / "images" / "001-real-000000" / "optimisation.gif") as gif:
        assert gif.n_frames == 3
    calls.clear()
    write_projection(_fake_result(tmp_path, []), tmp_path / "encoded")  # a VAE's encoder, no optimisation
    assert [k["title"] for name, k in calls if name == "grid_picture" and "row_labels" not in k] == [
        "encoder (dcgan)"
    ] * 2
