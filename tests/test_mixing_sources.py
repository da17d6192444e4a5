"""mixup and CutMix as pool sources: the classic side's mixing candidates, with mixed targets in the gain pool."""

from __future__ import annotations

import json

import numpy as np
import pytest

from augmentor.core.errors import UserError
from augmentor.data.imageset import ImageSet
from augmentor.experiments.arms import parse_arm
from augmentor.synthetic.mixing_sources import mixed_targets
from augmentor.synthetic.sources import SourceContext, build_source, parse_source
from tests.conftest import make_shapes_folder, run_cli


def two_flat_classes() -> ImageSet:
    """Class ``dark`` all 0, class ``light`` all 200: a mixed pixel tells the share it came from."""
    images = np.concatenate([np.zeros((6, 1, 8, 8), np.uint8), np.full((6, 1, 8, 8), 200, np.uint8)])
    provenance = [{"source": "real", "origin": f"#{i}"} for i in range(12)]
    return ImageSet(images, np.repeat([0, 1], 6), ["dark", "light"], provenance)


def make(kind: str, seed: int = 5) -> ImageSet:
    real = two_flat_classes()
    source = build_source(parse_source(kind, need_run=False), SourceContext(real, seed, lambda *_: None))
    return source.make(np.array([40, 40]), 0)


@pytest.mark.parametrize("kind", ["mixup", "cutmix:0.4"])
def test_each_image_is_its_class_mixed_with_a_partner_at_the_share_it_records(kind):
    made = make(kind)
    assert made.images.shape == (80, 1, 8, 8) and np.bincount(made.labels).tolist() == [40, 40]
    crossed = 0
    for image, label, record in zip(made.images, made.labels, made.provenance, strict=True):
        share = record["mix_share"]
        assert 0.5 <= share <= 1.0 and record["source"] == kind.split(":")[0]
        if record["mix_partner_class"] == made.class_names[label]:
            assert len(np.unique(image)) == 1  # same flat class: nothing to tell
            continue
        crossed += 1
        own, other = (0, 200) if label == 0 else (200, 0)
        if kind == "mixup":  # every pixel the blend
            assert np.all(np.abs(image.astype(float) - (share * own + (1 - share) * other)) <= 0.5)
        else:  # the pasted box covers the rest of the image
            assert abs(np.mean(image == own) - share) < 1e-4  # the record keeps 4 decimals
    assert crossed > 20  # partners come from every class


def test_mixed_targets_put_the_share_on_each_class():
    made = make("mixup")
    targets = mixed_targets(made)
    np.testing.assert_allclose(targets.sum(axis=1), 1.0, atol=1e-6)
    for row, label, record in zip(targets, made.labels, made.provenance, strict=True):
        partner = made.class_names.index(record["mix_partner_class"])
        expected = np.zeros(2)
        expected[label] += record["mix_share"]
        expected[partner] += 1 - record["mix_share"]
        np.testing.assert_allclose(row, expected, atol=1e-6)
    plain = ImageSet(made.images[:3], made.labels[:3], made.class_names, [{} for _ in range(3)])
    assert mixed_targets(plain).tolist() == np.eye(2)[made.labels[:3]].tolist()  # ordinary images: one-hot


def test_the_same_seed_mixes_the_same_images():
    assert np.array_equal(make("cutmix").images, make("cutmix").images)
    assert not np.array_equal(make("cutmix", seed=5).images, make("cutmix", seed=6).images)


def test_mixes_are_classic_candidates_and_a_bad_alpha_is_refused():
    assert parse_arm("mixup").classic_only and parse_arm("cutmix:0.4+classic:light").classic_only
    assert not parse_arm("mixup+vae").classic_only
    with pytest.raises(UserError, match="ALPHA 'x'"):
        parse_source("mixup:x", need_run=False)
    from augmentor.experiments.study import StudyConfig

    StudyConfig(classic=("mixup", "cutmix"), generative=("vae", "vae@soft")).validate()
    with pytest.raises(UserError, match="every candidate is a classic arm"):
        StudyConfig(classic=("mixup", "vae"), generative=("vae", "vae@soft")).validate()


def test_expand_writes_mixed_images_with_their_mix_in_the_manifest(tmp_path):
    data = make_shapes_folder(tmp_path / "data", per_class=5, seed=1)
    out = tmp_path / "out"
    result = run_cli("expand", data, "--with", "cutmix", "--per-class", "8", "--workers", "1", "--out", out)
    assert result.exit_code == 0, result.stderr
    lines = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    mixed = [line for line in lines if line["source"] == "cutmix"]
    assert len(mixed) == 3 * 3  # 8 per class: 5 real + 3 mixed
    assert all(0.5 <= line["mix_share"] <= 1 and line["mix_partner_class"] for line in mixed)
    bad = run_cli("expand", data, "--with", "mixup:-1", "--per-class", "8", "--out", tmp_path / "bad")
    assert bad.exit_code == 2 and "ALPHA '-1'" in bad.stderr and not (tmp_path / "bad").exists()


def test_a_gain_run_trains_on_mixed_targets(tmp_path):
    data = make_shapes_folder(tmp_path / "data", per_class=8, splits=True, seed=3)
    out = tmp_path / "g"
    result = run_cli(
        "gain", data, "--per-class", "3", "--arms", "real,mixup,cutmix@soft", "--draws", "2", "--budget", "3",
        "--validation-per-class", "3", "--development", "--no-budget-curve", "--batch-size", "8",
        "--device", "cpu", "--workers", "1", "--out", out, "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    runs = json.loads((out / "results.json").read_text())["runs"]
    assert {r["arm"] for r in runs} == {"real", "mixup", "cutmix@soft"}
    assert all(r["pool_images"] > 0 for r in runs if r["arm"] != "real")


def test_classify_train_on_an_expand_output_trains_mixed_images_on_their_mix(tmp_path):
    """`classify train --synthetic` reads the mix expand recorded (as gain trained it), not the folder's class;
    a mix edited into nonsense is refused in one line naming the manifest."""
    from augmentor.classifiers.classifier import synthetic_pool
    from augmentor.data.readers import ReadOptions, open_dataset

    data = make_shapes_folder(tmp_path / "data", per_class=5, seed=2)
    out = tmp_path / "out"
    assert run_cli("expand", data, "--with", "mixup", "--per-class", "8", "--workers", "1", "--out", out).exit_code == 0
    real = open_dataset(str(data), ReadOptions()).train
    pool = synthetic_pool(str(out), real, ReadOptions(), share=0.5, weight=1.0)
    lines = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    mixed = [line for line in lines if line["source"] == "mixup"]
    assert len(pool.images) == len(mixed) == 9
    targets = np.asarray(pool.targets)
    np.testing.assert_allclose(targets.sum(axis=1), 1.0, atol=1e-6)
    for line in mixed:  # each mixed image's row: its class at the recorded share, its partner's at the rest
        own, partner = real.class_names.index(line["class"]), real.class_names.index(line["mix_partner_class"])
        expected = np.zeros(len(real.class_names))
        expected[own] += line["mix_share"]
        expected[partner] += 1 - line["mix_share"]
        assert any(np.allclose(row, expected, atol=1e-4) for row in targets)
    across = sum(line["mix_partner_class"] != line["class"] and line["mix_share"] < 1 for line in mixed)
    assert (targets.max(axis=1) < 1).sum() == across > 0  # a partner of another class makes a soft row

    edited = [{**line, "mix_share": 3.0} if line["source"] == "mixup" else line for line in lines]
    (out / "manifest.jsonl").write_text("".join(json.dumps(line) + "\n" for line in edited))
    result = run_cli("classify", "train", data, "--synthetic", out, "--steps", "2", "--out", tmp_path / "run")
    assert result.exit_code == 2 and "manifest.jsonl: image" in result.stderr and "share in 0..1" in result.stderr
    assert not (tmp_path / "run").exists()
