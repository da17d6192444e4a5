"""The shipped classifier loads from its run folder and scores what its model card says."""

from __future__ import annotations

import json

import pytest

from tests.conftest import REPO, run_cli

SHIPPED = REPO / "weights" / "fashion-mnist" / "classifier"


def test_shipped_classifier_scores_as_documented(fashion_dir):
    result = run_cli("classify", "eval", SHIPPED, "fashion-mnist", "--json")
    assert result.exit_code == 0, result.stderr
    scores = json.loads(result.stdout)
    config = json.loads((SHIPPED / "config.json").read_text())
    assert scores["images"] == 10000
    assert scores["accuracy"] >= 0.93
    assert abs(scores["accuracy"] - config["test"]["accuracy"]) < 1e-3
    assert (SHIPPED / "model.safetensors").stat().st_size < 10 * 2**20
    assert "94.18%" in (REPO / "weights" / "MODEL_CARD.md").read_text()


@pytest.mark.parametrize("kind", ["dcgan", "vae"])
def test_shipped_generators_sample_images_the_shipped_classifier_recognises(tmp_path, kind):
    from torchvision.datasets import ImageFolder

    from augmentor.classifiers import Classifier
    from augmentor.data.options import ReadOptions
    from augmentor.data.readers import open_dataset

    run = REPO / "weights" / "fashion-mnist" / kind
    assert sum(p.stat().st_size for p in run.rglob("*") if p.is_file()) < 20 * 2**20
    out = tmp_path / "samples"
    result = run_cli("sample", run, "--per-class", "20", "--seed", "1", "--out", out)
    assert result.exit_code == 0, result.stderr
    assert len(ImageFolder(str(out))) == 200
    samples = open_dataset(str(out), ReadOptions()).train
    # The sample folder lists classes alphabetically, the classifier in Fashion-MNIST's order: matched by name.
    accuracy = Classifier.from_run(SHIPPED).evaluate(samples)["accuracy"]
    # A class-conditional generator worth shipping makes images of the class it was asked for.
    assert accuracy > 0.7, accuracy
