"""Datasets in and out: every reader, the writer's layout, the manifest, subsets."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from augmentor.data.options import ReadOptions
from augmentor.data.readers import open_dataset
from tests.conftest import files_under, make_shapes_folder, run_cli


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if path.suffix == ".gz":
        data = gzip.compress(data)
    path.write_bytes(data)


def read_manifest(root: Path) -> list[dict]:
    return [json.loads(line) for line in (root / "manifest.jsonl").read_text().splitlines()]


def assert_manifest_matches_disk(root: Path) -> list[dict]:
    records = read_manifest(root)
    pngs = {p for p in files_under(root) if p.endswith(".png") and p != "preview.png"}
    assert {r["path"] for r in records} == pngs
    for record in records:
        assert hashlib.sha256((root / record["path"]).read_bytes()).hexdigest() == record["sha256"]
    return records


def test_imagefolder_flat(shapes_folder):
    dataset = open_dataset(str(shapes_folder))
    assert list(dataset.splits) == ["train"]
    assert dataset.train.images.shape == (18, 1, 28, 28)
    assert dataset.train.class_counts() == {"disk": 6, "square": 6, "triangle": 6}
    assert dataset.train.provenance[0] == {"source": "real", "origin": "disk/disk000.png"}


def test_imagefolder_with_splits(shapes_splits):
    dataset = open_dataset(str(shapes_splits))
    assert set(dataset.splits) == {"train", "test"}
    assert dataset.test.images.shape == (15, 3, 32, 32)


def test_npz_reader_and_info(digits_npz):
    result = run_cli("data", "info", digits_npz, "--json")
    assert result.exit_code == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["classes"][:3] == ["zero", "one", "two"]
    assert info["image_size"] == [8, 8] and info["channels"] == 1
    assert info["splits"]["train"]["total"] == 1797
    assert sum(info["splits"]["train"]["per_class"].values()) == 1797


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_reader_raw_and_gz(tmp_path, suffix):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (30, 12, 10), dtype=np.uint8)
    labels = rng.integers(0, 3, 30, dtype=np.uint8)
    write_idx(tmp_path / f"train-images-idx3-ubyte{suffix}", images)
    write_idx(tmp_path / f"train-labels-idx1-ubyte{suffix}", labels)
    dataset = open_dataset(str(tmp_path))
    assert np.array_equal(dataset.train.images[:, 0], images)
    assert np.array_equal(dataset.train.labels, labels)
    # One images file given directly: its labels file is found beside it.
    single = open_dataset(str(tmp_path / f"train-images-idx3-ubyte{suffix}"))
    assert len(single.train) == 30


def test_idx_truncated_is_refused(tmp_path):
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((5, 4, 4), np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(5, np.uint8))
    data = (tmp_path / "train-images-idx3-ubyte").read_bytes()
    (tmp_path / "train-images-idx3-ubyte").write_bytes(data[:-7])
    result = run_cli("data", "info", tmp_path)
    assert result.exit_code == 2
    assert "train-images-idx3-ubyte" in result.stderr and "truncated" in result.stderr


def test_fashion_mnist_info(fashion_dir):
    result = run_cli("data", "info", "fashion-mnist", "--json")
    assert result.exit_code == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["splits"]["train"]["total"] == 60000 and info["splits"]["test"]["total"] == 10000
    assert set(info["splits"]["train"]["per_class"].values()) == {6000}
    assert info["image_size"] == [28, 28] and info["channels"] == 1
    # Flip safety (issue 12): the shoes all face one way; the clothes are left-right symmetric.
    assert set(info["mirror"]["flip_sensitive"]) == {"Sandal", "Sneaker", "Ankle_boot"}
    table = run_cli("data", "info", "fashion-mnist")
    assert "hint: flips change how 3 of 10 classes look (Sandal, Sneaker, Ankle_boot)" in table.stdout


def test_info_hints_that_flips_change_digits_but_not_symmetric_shapes(digits_npz, tmp_path):
    digits = json.loads(run_cli("data", "info", digits_npz, "--json").stdout)["mirror"]
    assert {"two", "three", "five", "six", "seven"} <= set(digits["flip_sensitive"])
    assert "zero" not in digits["flip_sensitive"] and "--no-flip" in digits["hint"]
    many = make_shapes_folder(tmp_path / "shapes", per_class=60, seed=3)
    shapes = json.loads(run_cli("data", "info", many, "--json").stdout)["mirror"]
    assert shapes["flip_sensitive"] == [] and shapes["hint"] is None
    small = make_shapes_folder(tmp_path / "few", per_class=6, seed=3)
    few = json.loads(run_cli("data", "info", small, "--json").stdout)["mirror"]
    assert few["classes"] == {} and few["flip_sensitive"] == []  # too few images to tell, and it says so
    assert few["hint"].startswith("too few images to judge flip safety (it needs 30 per class)")
    assert "hint: too few images to judge flip safety" in run_cli("data", "info", small).stdout


def test_info_reports_duplicates(tmp_path):
    folder = make_shapes_folder(tmp_path / "dups", per_class=3)
    (folder / "disk" / "copy.png").write_bytes((folder / "disk" / "disk000.png").read_bytes())
    info = json.loads(run_cli("data", "info", folder, "--json").stdout)
    assert info["duplicates"]["groups"] == 1 and info["duplicates"]["extra_copies"] == 1


def test_export_is_read_by_torchvision(shapes_splits, tmp_path):
    from torchvision.datasets import ImageFolder

    out = tmp_path / "exported"
    result = run_cli("data", "export", shapes_splits, "--out", out, "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["out"] == str(out)
    train = ImageFolder(str(out / "train"))
    assert train.classes == ["disk", "square", "triangle"] and len(train) == 15
    assert train[0][0].size == (32, 32)
    records = assert_manifest_matches_disk(out)
    assert {r["source"] for r in records} == {"real"}
    assert {r["split"] for r in records} == {"train", "test"}
    summary = json.loads((out / "dataset.json").read_text())
    assert summary["splits"]["test"]["total"] == 15 and summary["augmentor_version"]
    # Pixels survive the round trip exactly.
    again = open_dataset(str(out))
    original = open_dataset(str(shapes_splits))
    assert np.array_equal(
        np.sort(again.train.images.reshape(15, -1), 0), np.sort(original.train.images.reshape(15, -1), 0)
    )


def test_export_flat_layout_and_stdin(shapes_folder, tmp_path):
    paths = sorted(str(p) for p in shapes_folder.rglob("*.png"))[:7]
    out = tmp_path / "from-stdin"
    result = run_cli("data", "export", "-", "--out", out, input="\n".join(paths) + "\n")
    assert result.exit_code == 0, result.stderr
    assert len(read_manifest(out)) == 7
    assert (out / "disk").is_dir() and not (out / "train").exists()


def test_subset_is_deterministic_and_keeps_test(fashion_dir, tmp_path):
    outs = []
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        out = tmp_path / name
        result = run_cli("data", "subset", "fashion-mnist", "--per-class", "5", "--seed", seed, "--out", out)
        assert result.exit_code == 0, result.stderr
        outs.append(out)
    records = [read_manifest(o) for o in outs]
    train = [[(r["origin"], r["sha256"]) for r in recs if r["split"] == "train"] for recs in records]
    assert len(train[0]) == 50
    assert train[0] == train[1]  # same seed, same draw
    assert train[0] != train[2]  # another seed, another draw
    test = [r for r in records[0] if r["split"] == "test"]
    assert len(test) == 10000
    counts = json.loads((outs[0] / "dataset.json").read_text())["splits"]["train"]["per_class"]
    assert all(c == {"real": 5} for c in counts.values())


def test_subset_larger_than_a_class_names_it(shapes_folder, tmp_path):
    result = run_cli("data", "subset", shapes_folder, "--per-class", "7", "--out", tmp_path / "x")
    assert result.exit_code == 2
    assert "'disk' has 6" in result.stderr and not (tmp_path / "x").exists()


def test_explicit_conversions(shapes_folder):
    dataset = open_dataset(str(shapes_folder), ReadOptions(image_size=(16, 20), channels=3))
    assert dataset.train.images.shape == (18, 3, 16, 20)
    grey = dataset.train.images
    assert np.array_equal(grey[:, 0], grey[:, 1])


def test_manifests_written_before_format_2_read_with_explicit_fields(shapes_folder, tmp_path):
    """An older output's packed ``sigma=…`` / ``direction=… strength=…`` pipeline comes back as fields."""
    out = tmp_path / "old"
    assert run_cli("data", "export", shapes_folder, "--out", out).exit_code == 0
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    packed = ["sigma=0.5", "direction=ink_area strength=-2 condition-on=pc1", "light"]
    for record, pipeline in zip(records, packed, strict=False):
        record["pipeline"] = pipeline
        for key in ("direction", "strength", "sigma"):
            record.pop(key, None)  # format 1 had no such fields
    (out / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    provenance = {p.get("origin"): p for p in open_dataset(str(out), ReadOptions()).train.provenance}
    first, second, third = (provenance[r["origin"]] for r in records[:3])
    assert first["sigma"] == 0.5 and "pipeline" not in first
    assert (second["direction"], second["strength"], second["pipeline"]) == ("ink_area", -2.0, "condition-on=pc1")
    assert third["pipeline"] == "light" and "sigma" not in third
