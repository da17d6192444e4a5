"""Latent directions and edits on drawn disks, where the attribute (ink area) is known."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from augmentor.core.errors import UserError
from augmentor.data.imageset import ImageSet
from augmentor.generative.generator import Generator
from augmentor.generative.train import GenerativeConfig, train_generative
from augmentor.latent.attributes import ATTRIBUTES, ink_area
from augmentor.latent.directions import auc, directions_run, find_directions
from augmentor.latent.edit import edit, edit_direction, edit_run, parse_strengths
from tests.conftest import REPO, run_cli


def disks(count: int, seed: int = 0) -> np.ndarray:
    """``count`` 28×28 white disks of radius 3..12 near the centre, N×1×28×28 uint8."""
    from skimage.draw import disk

    rng = np.random.default_rng(seed)
    images = np.zeros((count, 1, 28, 28), np.uint8)
    for i in range(count):
        radius = int(rng.integers(3, 13))
        cy, cx = (int(v) for v in rng.integers(13, 16, size=2))
        rr, cc = disk((cy, cx), radius, shape=(28, 28))
        images[i, 0, rr, cc] = 255
    return images


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("directions")
    images = disks(256)
    data = root / "disks.npz"
    np.savez(data, images=images[:, 0], labels=np.zeros(256, np.int64), class_names=np.array(["disk"]))
    config = GenerativeConfig(
        kind="vae", steps=400, width=8, batch_size=32, latent_dim=8, sample_every=1000, log_every=100, device="cpu"
    )
    train_generative(ImageSet(images, np.zeros(256, np.int64), ["disk"]), config, root / "vae")
    for method, out in (("mean-diff", "ink_area"), ("pca", "pca")):
        args = ["--by", "attribute:ink_area", "--method", method, "--out", root / out]
        result = run_cli("directions", root / "vae", "--data", data, *args)
        assert result.exit_code == 0, result.stderr
    Image.fromarray(images[0, 0]).save(root / "disk.png")
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(root / "big.png")
    return root


def test_attributes_measure_drawn_disks():
    images = disks(20, seed=1)
    areas = ink_area(images)
    assert np.allclose(areas, (images[:, 0] > 0).mean(axis=(1, 2)))
    widths = ATTRIBUTES["bbox_width"](images)
    assert np.allclose(widths, ATTRIBUTES["bbox_height"](images)) and widths.min() >= 5
    assert ATTRIBUTES["eccentricity"](images).max() < 0.5  # disks are round
    assert ink_area(np.zeros((1, 1, 8, 8), np.uint8))[0] == 0.0


def test_auc_is_the_rank_statistic():
    assert auc(np.array([1.0, 2.0, 3.0, 4.0]), np.array([0, 0, 1, 1])) == 1.0
    assert auc(np.array([1.0, 1.0]), np.array([0, 1])) == 0.5


def test_ink_area_direction_separates_held_out_codes_and_edits_monotonically(setup):
    info = json.loads((setup / "ink_area" / "directions.json").read_text())
    record = info["directions"][0]
    assert record["name"] == "ink_area" and record["auc"] > 0.8 and record["n_test"] == 51
    assert info["run_id"] == Generator.from_run(setup / "vae").run_id
    strengths = parse_strengths("-2:2:5")
    result = edit(setup / "vae", f"{setup / 'ink_area'}:ink_area", strengths, seeds=list(range(6)))
    assert result.images.shape == (6, 5, 1, 28, 28)
    measured = ink_area(result.images.reshape(-1, 1, 28, 28)).reshape(6, 5)
    increasing = sum(np.all(np.diff(row) > 0) for row in measured)
    mean = measured.mean(axis=0)
    assert increasing > 3 or np.all(np.diff(mean) > 0), measured


def test_linear_and_pca_methods(setup):
    linear = find_directions(setup / "vae", str(setup / "disks.npz"), "attribute:ink_area", "linear", device="cpu")
    assert linear.info["directions"][0]["auc"] > 0.8
    assert torch.isclose(linear.directions["ink_area"].norm(), torch.tensor(1.0))
    pca = find_directions(setup / "vae", str(setup / "disks.npz"), "attribute:ink_area", "pca", device="cpu")
    assert list(pca.directions) == [f"pc{k}" for k in range(8)]
    assert max(r["auc"] for r in pca.info["directions"]) > 0.8


def test_condition_on_projects_the_other_direction_out(setup):
    generator = Generator.from_run(setup / "vae")
    _, other = edit_direction(generator, f"{setup / 'pca'}:pc1")
    _, conditioned = edit_direction(generator, f"{setup / 'ink_area'}:ink_area", f"{setup / 'pca'}:pc1")
    assert abs(float(conditioned @ other)) < 1e-5 and abs(float(conditioned.norm()) - 1) < 1e-5


def test_edit_grid_and_folder(setup, tmp_path):
    grid = tmp_path / "grid.png"
    args = ["edit", setup / "vae", "--direction", f"{setup / 'ink_area'}:ink_area", "--strengths", "-2,0,2"]
    assert run_cli(*args, "--seeds", "1,2", "--out", grid).exit_code == 0
    height, width = np.asarray(Image.open(grid)).shape[:2]
    assert width > height * 1.3  # 2 rows × 3 columns
    folder = tmp_path / "edits"
    result = run_cli(*args, "--images", setup / "disk.png", "--condition-on", f"{setup / 'pca'}:pc1", "--out", folder)
    assert result.exit_code == 0, result.stderr
    records = [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]
    assert len(records) == 3 and {r["source"] for r in records} == {"edit"}
    first = records[0]
    assert (first["direction"], first["strength"], first["pipeline"]) == ("ink_area", -2.0, "condition-on=pc1")
    assert records[0]["parent"] == str(setup / "disk.png")
    assert "leakage" not in result.stderr
    held_out = tmp_path / "test" / "disk"  # an image of a test split: its edits must not become training data
    held_out.mkdir(parents=True)
    (held_out / "disk.png").write_bytes((setup / "disk.png").read_bytes())
    leaked = run_cli(*args, "--images", held_out / "disk.png", "--out", tmp_path / "leaked")
    assert leaked.exit_code == 0, leaked.stderr
    assert "leakage: 1 of 1 listed images lie under a test/ folder" in " ".join(leaked.stderr.split())
    assert json.loads((tmp_path / "leaked" / "dataset.json").read_text())["warnings"]


def test_bad_input_exits_2_and_writes_nothing(setup, tmp_path):
    vae, direction = setup / "vae", f"{setup / 'ink_area'}:ink_area"
    other = tmp_path / "other"
    other.mkdir()
    info = json.loads((setup / "ink_area" / "directions.json").read_text())
    (other / "directions.json").write_text(json.dumps({**info, "run_id": "vae:000000000000:elsewhere"}))
    (other / "directions.safetensors").write_bytes((setup / "ink_area" / "directions.safetensors").read_bytes())
    classifier = REPO / "weights" / "fashion-mnist" / "classifier"
    out = tmp_path / "out"
    cases = [
        (["edit", vae, "--direction", f"{setup / 'ink_area'}:size", "--out", out], "it has: ink_area"),
        (["edit", vae, "--direction", f"{other}:ink_area", "--out", out], "directions were found for run"),
        (["edit", vae, "--direction", direction, "--images", setup / "big.png", "--out", out], "1×32×32"),
        (["edit", classifier, "--direction", direction, "--out", out], "a dcgan or vae run is needed"),
        (["directions", classifier, "--data", setup / "disks.npz", "--out", out], "a dcgan or vae run is needed"),
        (
            ["directions", vae, "--data", setup / "disks.npz", "--by", "attribute:hue", "--out", out],
            "known attributes: mean_intensity, ink_area",
        ),
        (["directions", vae, "--data", setup / "disks.npz", "--method", "svm", "--out", out], "--method 'svm'"),
        (["directions", vae, "--data", setup / "disks.npz", "--out", out], "at least two classes"),
    ]
    for args, message in cases:
        result = run_cli(*args)
        assert result.exit_code == 2 and message in result.stderr, (args, result.stderr)
        assert not out.exists()
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "x").write_text("x")
    refused = run_cli("directions", vae, "--data", setup / "disks.npz", "--by", "attribute:ink_area", "--out", taken)
    assert refused.exit_code == 2 and "--overwrite" in refused.stderr


def test_directions_and_edit_refuse_a_taken_out_before_loading_the_model(tmp_path):
    missing = tmp_path / "no-run"  # never loaded: the output check comes first
    folder = tmp_path / "taken"
    folder.mkdir()
    (folder / "x").write_text("x")
    grid = tmp_path / "grid.png"
    grid.write_bytes(b"x")
    with pytest.raises(UserError, match="not empty; pass --overwrite"):
        directions_run(missing, None, folder)
    for out, message in ((folder, "not empty; pass --overwrite"), (grid, "exists; pass --overwrite")):
        with pytest.raises(UserError, match=message):
            edit_run(missing, f"{tmp_path / 'dirs'}:size", [1.0], out)
        result = run_cli("edit", missing, "--direction", f"{tmp_path / 'dirs'}:size", "--out", out)
        assert result.exit_code == 2 and message in result.stderr, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.png", "taken"] and grid.read_bytes() == b"x"


def test_the_directions_table_leads_with_auc_beside_the_larger_group_alone(setup, tmp_path):
    """Issue 12 item 10: a one-class-against-the-rest accuracy of 0.9 is the base rate, not a direction."""
    result = run_cli("directions", setup / "vae", "--data", setup / "disks.npz", "--by", "attribute:ink_area",
                     "--out", tmp_path / "d")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    header = next(line for line in result.stdout.splitlines() if "direction" in line and "AUC" in line)
    assert header.index("AUC") < header.index("accuracy") < header.index("larger group alone")
    record = json.loads((tmp_path / "d" / "directions.json").read_text())["directions"][0]
    assert 0.5 <= record["majority_accuracy"] <= 1 and record["auc"] > 0.8
