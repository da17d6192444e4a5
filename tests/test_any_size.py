"""Issue 26 items 2 and 3: the generative commands on any image side from 16 to 256 px, and ``score`` on any two
folders (a feature classifier trained on the reference and cached when the shipped one does not fit)."""

from __future__ import annotations

import json
import math
import re
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
    assert config["internal_size"] == 28
    # A run written before the size was recorded: 28 px is made at 28, and it still samples.
    del config["internal_size"]
    (run / "config.json").write_text(json.dumps(config))
    older = run_cli("sample", run, "--per-class", "1", "--out", tmp_path / "older")
    assert older.exit_code == 0, older.stderr
    config["internal_size"] = 32
    (run / "config.json").write_text(json.dumps(config))
    result = run_cli("sample", run, "--per-class", "1", "--out", tmp_path / "s")
    assert result.exit_code == 2 and "'internal_size' 32 is not the 28 px" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "s").exists()


def test_score_on_two_folders_trains_a_feature_classifier_once(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    a = make_shapes_folder(tmp_path / "A", per_class=8, size=24, seed=1)
    b = make_shapes_folder(tmp_path / "B", per_class=8, size=24, seed=2)
    args = ["score", "--input1", a, "--input2", b, "--json", "--device", "cpu", "--cas-steps", "20"]
    first = run_cli(*args)
    assert first.exit_code == 0, first.stderr
    notes = [line for line in first.stderr.splitlines() if line.startswith("note:")]
    folders = list((cache / "augmentor" / "features").iterdir())
    assert len(folders) == 1 and (folders[0] / "model.safetensors").is_file()
    # classify train's default budget: 300 steps on these few images (no validation split: 4 a class are left)
    pattern = (
        rf"note: no feature classifier fits 24×24 grey images: trained one on {re.escape(str(b))} \(300 steps, "
        rf"[0-9.]+ s\), cached in {re.escape(str(folders[0]))}; pass --features {re.escape(str(folders[0]))} "
        "to reuse it"
    )
    assert len(notes) == 1 and re.fullmatch(pattern, notes[0]), notes
    scores = json.loads(first.stdout)
    assert math.isfinite(scores["fid"]) and math.isfinite(scores["kid_mean"]) and scores["features"] == str(folders[0])
    assert not {p.name for p in a.iterdir()} - {"disk", "square", "triangle"}  # nothing written beside the data
    assert not {p.name for p in b.iterdir()} - {"disk", "square", "triangle"}
    trained_at = (folders[0] / "model.safetensors").stat().st_mtime_ns

    again = run_cli(*args)
    assert again.exit_code == 0, again.stderr
    assert [line for line in again.stderr.splitlines() if line.startswith("note:")] == [
        f"note: no feature classifier fits 24×24 grey images: reused the one trained on {b} before, cached in "
        f"{folders[0]}; pass --features {folders[0]} to name it"
    ]
    assert (folders[0] / "model.safetensors").stat().st_mtime_ns == trained_at
    second = json.loads(again.stdout)
    assert {k: v for k, v in second.items() if k != "seconds"} == {k: v for k, v in scores.items() if k != "seconds"}

    named = run_cli("score", "--input1", a, "--input2", b, "--json", "--no-cas", "--features", folders[0])
    assert named.exit_code == 0, named.stderr
    assert "note:" not in named.stderr and json.loads(named.stdout)["fid"] == scores["fid"]


def test_score_trains_features_when_the_shipped_ones_know_other_classes(tmp_path, monkeypatch):
    """28×28 grey fits the shipped Fashion-MNIST classifier's input, but disks and squares are not its classes."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    data = make_shapes_folder(tmp_path / "data", per_class=10, splits=True, seed=3)
    result = run_cli("score", data, "--real", data, "--no-cas", "--json", "--device", "cpu")
    assert result.exit_code == 0, result.stderr
    assert "note: the shipped feature classifier knows other classes: trained one on" in result.stderr
    assert "best of 3 held-out images" in result.stderr  # 10 a class: 10 % of each held out to keep the best
    assert "trained on other classes" not in result.stderr and math.isfinite(json.loads(result.stdout)["fid"])


def test_score_of_one_class_that_no_classifier_fits_names_the_flags(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    data = make_shapes_folder(tmp_path / "data", per_class=6, size=24)
    for kind in ("square", "triangle"):
        shutil.rmtree(data / kind)
    result = run_cli("score", data, "--real", data, "--no-cas")
    assert result.exit_code == 2
    assert "with one class no feature classifier can be trained" in result.stderr and "--features" in result.stderr
    assert not (tmp_path / "cache").exists()
