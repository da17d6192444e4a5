"""Issue 26 item 2: the generative commands on any image side from 16 to 256 px."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import REPO, make_shapes_folder, run_cli

TINY_VAE = ["--steps", "4", "--width", "8", "--batch-size", "16", "--device", "cpu"]


def _sides(folder: Path) -> set[tuple[int, ...]]:
    """The shapes of every PNG under ``folder`` (H×W for grey, H×W×3 for colour)."""
    return {np.asarray(Image.open(p)).shape for p in folder.rglob("*.png")}


# (side, channels, the side the networks work at): 25 and 90 are made at 28 and 96 and resized, 40 is a stem.
SIZES = [(25, 1, 28), (40, 3, 40), (90, 3, 96)]


@pytest.mark.parametrize(("side", "channels", "inner"), SIZES, ids=[f"{s}px-{c}ch" for s, c, _ in SIZES])
def test_train_sample_expand_and_gain_at_any_side(tmp_path, side, channels, inner):
    data = make_shapes_folder(tmp_path / "data", per_class=12, size=side, channels=channels, splits=True, seed=1)
    want = {(side, side)} if channels == 1 else {(side, side, 3)}
    run = tmp_path / "run"
    trained = run_cli("train", "vae", data, "--out", run, *TINY_VAE)
    assert trained.exit_code == 0, trained.stderr
    config = json.loads((run / "config.json").read_text())
    assert config["image_shape"] == [channels, side, side] and config["internal_size"] == inner
    resized = f"made at {inner}×{inner} and resized to {side}×{side} (bilinear, antialiased)"

    sampled = run_cli("sample", run, "--per-class", "2", "--out", tmp_path / "samples", "--device", "cpu")
    assert sampled.exit_code == 0, sampled.stderr
    assert _sides(tmp_path / "samples") == want
    made = json.loads((tmp_path / "samples" / "dataset.json").read_text())["generator"]
    assert made["internal_size"] == inner and made.get("resized") == (resized if inner != side else None)

    expanded = run_cli(
        "expand", data, "--per-class", "14", "--with", f"vae:{run}", "--out", tmp_path / "expanded", "--device", "cpu"
    )
    assert expanded.exit_code == 0, expanded.stderr
    assert _sides(tmp_path / "expanded") == want and len(list((tmp_path / "expanded" / "train").rglob("*.png"))) == 42
    source = json.loads((tmp_path / "expanded" / "dataset.json").read_text())["expand"]["sources"][0]
    assert source["internal_size"] == inner and source.get("resized") == (resized if inner != side else None)

    # gain's default recipe trains a VAE on each draw's subset (kept tiny here).
    gained = run_cli(
        "gain", data, "--per-class", "10", "--draws", "1", "--budget", "3", "--gen-steps", "4", "--gen-width", "8",
        "--batch-size", "16", "--validation-per-class", "2", "--no-budget-curve", "--device", "cpu",
        "--workers", "1", "--out", tmp_path / "gain", "--json",
    )  # fmt: skip
    assert gained.exit_code == 0, gained.stderr
    results = json.loads((tmp_path / "gain" / "results.json").read_text())
    assert {a["arm"] for a in results["runs"]} >= {"real", "vae"}
    assert [g["internal_size"] for g in results["generators"]] == [inner]
    report = (tmp_path / "gain" / "report.md").read_text()
    assert (f"The generators were {resized}." in report) == (inner != side)


def test_a_dcgan_at_an_odd_side_trains_resumes_and_samples(tmp_path):
    data = make_shapes_folder(tmp_path / "data", per_class=4, size=25)
    run = tmp_path / "run"
    args = ["--width", "8", "--batch-size", "8", "--device", "cpu", "--sample-every", "2"]
    first = run_cli("train", "dcgan", data, "--out", run, "--steps", "2", *args)
    assert first.exit_code == 0, first.stderr
    more = run_cli("train", "dcgan", data, "--out", run, "--resume", "--steps", "4")
    assert more.exit_code == 0, more.stderr
    sampled = run_cli("sample", run, "--per-class", "2", "--out", tmp_path / "s", "--grid", tmp_path / "g.png")
    assert sampled.exit_code == 0, sampled.stderr
    assert _sides(tmp_path / "s") == {(25, 25)} and (tmp_path / "g.png").is_file()


def test_a_run_whose_internal_size_was_edited_is_refused(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(REPO / "weights" / "fashion-mnist" / "vae", run)
    config = json.loads((run / "config.json").read_text())
    assert "internal_size" not in config  # shipped before it was recorded: 28 px is made at 28
    config["internal_size"] = 32
    (run / "config.json").write_text(json.dumps(config))
    result = run_cli("sample", run, "--per-class", "1", "--out", tmp_path / "s")
    assert result.exit_code == 2 and "'internal_size' 32 is not the 28 px" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "s").exists()
