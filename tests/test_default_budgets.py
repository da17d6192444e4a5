"""Defaults that learn on a small folder (issue 26 item 1): with no --steps/--epochs, ``classify train`` on 10
images per class beats chance by a wide margin, grey and colour; the generators' default budget has a floor."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from augmentor.data.offline_sets import COLOUR_PHOTOS, photo_crops, sklearn_digits
from tests.conftest import run_cli


def ten_per_class(arrays: dict[str, np.ndarray], path: Path) -> Path:
    """The first 10 train images of every class (and the whole test split) as an .npz."""
    labels = arrays["labels"]
    keep = np.concatenate([np.flatnonzero(labels == c)[:10] for c in np.unique(labels)])
    np.savez(
        path,
        images=arrays["images"][keep],
        labels=labels[keep],
        test_images=arrays["test_images"],
        test_labels=arrays["test_labels"],
        class_names=arrays["class_names"],
    )
    return path


@pytest.mark.slow
@pytest.mark.parametrize("name", ["digits", "colour-crops"])
def test_classify_train_with_defaults_learns_from_ten_images_per_class(tmp_path, name):
    if name == "digits":  # 8×8 is below the classifiers' 16 px: a user's 24×24 grey folder
        arrays = sklearn_digits()
        for key in ("images", "test_images"):
            arrays[key] = np.kron(arrays[key], np.ones((1, 3, 3), np.uint8))
    else:
        arrays = photo_crops(COLOUR_PHOTOS, channels=3, size=32, per_class=60)
    data = ten_per_class(arrays, tmp_path / f"{name}.npz")
    result = run_cli("classify", "train", data, "--out", tmp_path / "run", "--device", "cpu", "--json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    chance = 1 / len(arrays["class_names"])
    assert document["steps"] == 300  # 10 passes over 100 (80) images is 8 (7) steps: the floor holds
    assert document["test_accuracy"] >= chance + 0.30, document


def test_an_explicit_budget_is_obeyed_and_the_floor_is_the_defaults_only():
    from augmentor.classifiers.train import DEFAULT_MIN_STEPS, TrainConfig, budget_steps
    from augmentor.generative.train import GenerativeConfig, _budget

    assert budget_steps(TrainConfig(), 100, 100) == DEFAULT_MIN_STEPS
    assert budget_steps(TrainConfig(), 60_000, 128) == 4688  # large data: 10 passes, above the floor
    assert budget_steps(TrainConfig(epochs=10), 100, 100) == 10
    assert budget_steps(TrainConfig(steps=7), 100, 100) == 7
    assert _budget(GenerativeConfig(), 100) == 600
    assert _budget(GenerativeConfig(), 60_000) == 18_750
    assert _budget(GenerativeConfig(epochs=20), 100) == 32
