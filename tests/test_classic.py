"""Classic expansion: quotas, determinism across workers, flips, pipelines in A.save format."""

from __future__ import annotations

import io
import json
import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from augmentor.classic.albu import A
from augmentor.classic.expand import ClassicConfig, expand
from augmentor.classic.pipelines import Pipeline, load_pipeline, seed_compose
from augmentor.classic.presets import PRESET_NAMES
from augmentor.data.readers import open_dataset
from tests.conftest import files_under, run_cli


def manifest(root: Path) -> list[dict]:
    return [json.loads(line) for line in (root / "manifest.jsonl").read_text().splitlines()]


def test_per_image_counts_and_provenance(shapes_folder, tmp_path):
    out = tmp_path / "out"
    result = run_cli("classic", shapes_folder, "--per-image", "3", "--pipeline", "light", "--out", out, "--json")
    assert result.exit_code == 0, result.stderr
    records = manifest(out)
    sources = Counter(r["source"] for r in records)
    assert sources == {"real": 18, "classic": 54}
    classic = [r for r in records if r["source"] == "classic"]
    assert Counter(r["parent"] for r in classic) == {r["origin"]: 3 for r in records if r["source"] == "real"}
    assert all(r["pipeline"] == "light" and isinstance(r["seed"], int) for r in classic)
    assert (out / "preview.png").stat().st_size > 0
    assert json.loads(result.stdout)["counts"]["train"]["disk"] == {"classic": 18, "real": 6}


def test_per_class_balances_minority_classes_evenly(tmp_path):
    rng = np.random.default_rng(0)
    counts = {"big": 20, "mid": 7, "small": 3}
    labels = np.concatenate([np.full(n, i) for i, n in enumerate(counts.values())])
    images = rng.integers(0, 256, (len(labels), 28, 28), dtype=np.uint8)
    np.savez(tmp_path / "imbalanced.npz", images=images, labels=labels, class_names=np.array(list(counts)))
    out = tmp_path / "balanced"
    result = run_cli("classic", tmp_path / "imbalanced.npz", "--per-class", "20", "--out", out)
    assert result.exit_code == 0, result.stderr
    records = manifest(out)
    assert Counter(r["class"] for r in records) == {"big": 20, "mid": 20, "small": 20}
    for name, n in counts.items():
        parents = Counter(r["parent"] for r in records if r["source"] == "classic" and r["class"] == name)
        need = 20 - n
        if need:  # drawn without replacement until exhausted: copies per parent differ by at most one
            assert sum(parents.values()) == need
            assert max(parents.values()) - min(parents.values(), default=0) <= 1
            assert len(parents) == min(n, need)


def test_json_and_text_come_from_one_document(shapes_folder, tmp_path):
    out = tmp_path / "out"
    document = json.loads(run_cli("classic", shapes_folder, "--per-image", "1", "--out", out, "--json").stdout)
    assert document["preview"] == str(out / "preview.png") and (out / "preview.png").is_file()
    text = run_cli("classic", shapes_folder, "--per-image", "1", "--out", tmp_path / "again").stdout
    assert f"manifest: {tmp_path / 'again' / 'manifest.jsonl'}" in text and "preview:" in text


def test_nothing_to_augment_writes_no_preview(shapes_folder, tmp_path):
    # Every class already holds 6 ≥ 4 images: no copies, so no preview grid (and none named in the summary).
    out = tmp_path / "out"
    result = run_cli("classic", shapes_folder, "--per-class", "4", "--out", out, "--json")
    assert result.exit_code == 0, result.stderr
    assert "preview" not in json.loads(result.stdout) and not (out / "preview.png").exists()
    assert Counter(r["source"] for r in manifest(out)) == {"real": 18}


def test_no_originals_gives_exactly_n(shapes_folder, tmp_path):
    out = tmp_path / "only-aug"
    result = run_cli("classic", shapes_folder, "--per-class", "10", "--no-include-originals", "--out", out)
    assert result.exit_code == 0, result.stderr
    assert Counter(r["source"] for r in manifest(out)) == {"classic": 30}


def test_same_seed_same_bytes_whatever_the_workers(shapes_folder, tmp_path):
    outs = []
    for name, workers, seed in (("w1", 1, 7), ("w2", 2, 7), ("other", 2, 8)):
        out = tmp_path / name
        args = [
            "classic",
            shapes_folder,
            "--per-class",
            "40",
            "--seed",
            seed,
            "--workers",
            workers,
            "--out",
            out,
        ]
        assert run_cli(*args).exit_code == 0
        outs.append(out)
    names = files_under(outs[0]) - {"dataset.json"}
    assert names == files_under(outs[1]) - {"dataset.json"}
    for name in names:
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name
    assert (outs[0] / "manifest.jsonl").read_bytes() != (outs[2] / "manifest.jsonl").read_bytes()


def test_manifest_seed_reproduces_the_image_with_albumentations(shapes_folder, tmp_path):
    out = tmp_path / "out"
    assert run_cli("classic", shapes_folder, "--per-image", "1", "--out", out).exit_code == 0
    pipeline = A.load(out / "pipeline.yaml", data_format="yaml")  # albumentations reads our file
    source = open_dataset(str(shapes_folder)).train
    by_origin = {p["origin"]: source.images[i] for i, p in enumerate(source.provenance)}
    from PIL import Image

    for record in [r for r in manifest(out) if r["source"] == "classic"][:5]:
        seed = record["seed"]
        pipeline.set_random_state(np.random.default_rng(seed), random.Random(seed))  # plain albumentations
        expected = pipeline(image=by_origin[record["parent"]].transpose(1, 2, 0))["image"]
        written = np.asarray(Image.open(out / record["path"]))
        assert np.array_equal(written, expected.reshape(written.shape))


def test_pipeline_saved_by_albumentations_loads_and_reproduces(tmp_path, shapes_folder):
    compose = A.Compose(
        [
            A.Affine(rotate=(-20, 20), p=1.0),
            A.HorizontalFlip(p=0.5),
            A.GaussNoise(std_range=(0.1, 0.2), p=1.0),
        ]
    )
    for data_format in ("yaml", "json"):
        path = tmp_path / f"saved.{data_format}"
        A.save(compose, str(path), data_format=data_format)
        pipeline = load_pipeline(str(path))
        image = open_dataset(str(shapes_folder)).train.images[0].transpose(1, 2, 0)
        ours = pipeline.build()
        theirs = A.load(str(path), data_format=data_format)
        ours.set_random_seed(11)
        theirs.set_random_seed(11)
        assert np.array_equal(ours(image=image)["image"], theirs(image=image)["image"])


@pytest.mark.parametrize("preset", PRESET_NAMES)
@pytest.mark.parametrize("data_format", ["yaml", "json"])
def test_pipeline_show_output_loads_in_albumentations(preset, data_format):
    result = run_cli("pipeline", "show", preset, "--format", data_format)
    assert result.exit_code == 0, result.stderr
    loaded = A.load(io.StringIO(result.stdout), data_format=data_format)
    assert [type(t).__name__ for t in loaded.transforms] == [
        type(t).__name__ for t in load_pipeline(preset).build().transforms
    ]


def test_no_flip_classes_are_never_mirrored(tmp_path):
    # An image that changes under a horizontal flip; the only transform is a certain flip.
    image = np.zeros((1, 1, 9, 9), np.uint8)
    image[0, 0, :, :3] = 255
    np.savez(
        tmp_path / "d.npz",
        images=np.repeat(image, 2, 0),
        labels=np.array([0, 1]),
        class_names=np.array(["left", "free"]),
    )
    pipe = tmp_path / "flip.yaml"
    A.save(A.Compose([A.HorizontalFlip(p=1.0)]), str(pipe), data_format="yaml")
    dataset = open_dataset(str(tmp_path / "d.npz"))
    config = ClassicConfig(pipeline=str(pipe), per_image=3, no_flip_classes=("left",), workers=1)
    augmented = expand(dataset.train, config).augmented
    left = augmented.images[augmented.labels == 0]
    free = augmented.images[augmented.labels == 1]
    assert (left == image[0]).all()
    assert (free == image[0, :, :, ::-1]).all()
    name = load_pipeline(str(pipe)).name
    assert name.startswith("flip.yaml@")
    assert {p["pipeline"] for p in augmented.provenance} == {name, name + "-noflip"}


def test_pipeline_check_lists_and_previews(tmp_path, shapes_folder):
    grid = tmp_path / "grid.png"
    result = run_cli("pipeline", "check", "medium", "--preview", grid, "--data", shapes_folder, "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    names = [t["transform"] for t in report["transforms"]]
    assert names[:3] == ["Compose", "Affine", "HorizontalFlip"]
    from PIL import Image

    with Image.open(grid) as im:
        width, height = im.size
    assert height > width / 8 * 3 * 0.9  # three rows (one per class) of eight cells
    again = run_cli("pipeline", "check", "medium", "--preview", grid)
    assert again.exit_code == 2 and "--overwrite" in again.stderr


def test_pipeline_that_changes_size_is_refused(tmp_path, shapes_folder):
    pipe = tmp_path / "crop.json"
    A.save(A.Compose([A.CenterCrop(10, 10)]), str(pipe), data_format="json")
    result = run_cli("classic", shapes_folder, "--pipeline", pipe, "--per-image", "1", "--out", tmp_path / "o")
    assert result.exit_code == 2 and "keeps size" in result.stderr
    assert not (tmp_path / "o").exists()


def test_seeded_transforms_draw_independently():
    flips = A.Compose([A.HorizontalFlip(p=0.5), A.VerticalFlip(p=0.5)])
    compose = Pipeline("flips", A.to_dict(flips)["transform"]).build()
    image = np.arange(16, dtype=np.uint8).reshape(4, 4, 1)
    outputs = set()
    for seed in range(64):
        seed_compose(compose, seed)
        outputs.add(compose(image=image)["image"].tobytes())
    assert len(outputs) == 4  # none, H, V, both; one seed per child made it only none or both


def test_the_readme_snippet_reproduces_every_augmented_image(tmp_path, shapes_folder):
    from PIL import Image

    out = tmp_path / "out"
    assert run_cli("classic", shapes_folder, "--per-image", "1", "--out", out).exit_code == 0
    pipeline = A.load(str(out / "pipeline.yaml"), data_format="yaml")  # as the README says
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    copies = [r for r in records if r["source"] == "classic"]
    assert len(copies) == 18
    for record in copies:
        parent = np.array(Image.open(shapes_folder / record["parent"]))
        pipeline.set_random_state(np.random.default_rng(record["seed"]), random.Random(record["seed"]))
        again = pipeline(image=parent)["image"]
        assert np.array_equal(again, np.array(Image.open(out / record["path"]))), record["path"]


def test_no_flip_drops_flips_for_every_class_and_writes_the_pipeline_that_ran(tmp_path):
    image = np.zeros((1, 1, 9, 9), np.uint8)
    image[0, 0, :, :3] = 255  # changes under a horizontal flip
    np.savez(tmp_path / "d.npz", images=np.repeat(image, 2, 0), labels=np.array([0, 1]), class_names=["a", "b"])
    pipe = tmp_path / "flip.yaml"
    A.save(A.Compose([A.HorizontalFlip(p=1.0)]), str(pipe), data_format="yaml")
    args = ("classic", tmp_path / "d.npz", "--pipeline", pipe, "--per-image", "3")
    result = run_cli(*args, "--no-flip", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    written = open_dataset(str(tmp_path / "out")).train
    assert len(written) == 2 + 6 and (written.images == image[0]).all()  # nothing mirrored, in any class
    saved = A.load(str(tmp_path / "out" / "pipeline.yaml"), data_format="yaml")
    assert not any(type(t).__name__ == "HorizontalFlip" for t in saved.transforms)
    both = run_cli(*args, "--no-flip", "--no-flip-classes", "a", "--out", tmp_path / "both")
    assert both.exit_code == 2 and "drop --no-flip-classes" in both.stderr and not (tmp_path / "both").exists()


def test_copies_are_made_while_written_in_bounded_groups_with_the_same_bytes(shapes_folder, tmp_path, monkeypatch):
    import augmentor.classic.expand as classic
    import augmentor.data.writers as writers

    args = ["classic", shapes_folder, "--per-class", "1500", "--seed", "3", "--workers", "1"]  # 18 + 4,482 copies
    assert run_cli(*args, "--out", tmp_path / "whole").exit_code == 0  # one group: all copies at once
    events: list[int | str] = []  # copies per render, "png" per chunk written
    render, write_chunk = classic.AugmentPlan.render, writers._write_chunk
    monkeypatch.setattr(
        classic.AugmentPlan, "render", lambda self, a, b, *r, **k: events.append(b - a) or render(self, a, b, *r, **k)
    )
    monkeypatch.setattr(writers, "_write_chunk", lambda *a: events.append("png") or write_chunk(*a))
    monkeypatch.setattr(writers, "_RENDERED_BYTES", 2048 * 28 * 28)  # two write batches of 1,024 rows a group
    assert run_cli(*args, "--out", tmp_path / "grouped").exit_code == 0
    renders = [e for e in events if e != "png" and e > 1]  # (the preview makes its few copies one by one)
    assert renders == [2048 - 18, 2048, 4500 - 2 * 2048]  # rows 0-2047 hold the 18 originals, then copies
    assert events.index("png") < events.index(2048)  # the first group is written before the second is made
    names = files_under(tmp_path / "whole") - {"dataset.json"}
    assert names == files_under(tmp_path / "grouped") - {"dataset.json"}
    for name in names:
        assert (tmp_path / "whole" / name).read_bytes() == (tmp_path / "grouped" / name).read_bytes(), name
