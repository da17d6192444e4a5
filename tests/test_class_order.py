"""One class order (issue 26 item 5): the index a classifier run or ``dataset.json`` gives a class is the one
torchvision's ``ImageFolder`` gives it (sorted names), so a user's own torchvision loop scores by index."""

from __future__ import annotations

import json

import numpy as np
import torch
from torchvision.datasets import ImageFolder

from augmentor.classifiers.classifier import Classifier
from tests.conftest import REPO, make_shapes_folder, run_cli

SHIPPED = REPO / "weights" / "fashion-mnist"


def test_the_shipped_classifier_scores_an_imagefolder_of_the_shipped_samples_by_index(tmp_path):
    out = tmp_path / "samples"
    result = run_cli("sample", SHIPPED / "dcgan", "--per-class", "20", "--out", out, "--seed", "3")
    assert result.exit_code == 0, result.stderr
    folder = ImageFolder(str(out))  # torchvision's own numbering: sorted folder names
    assert json.loads((out / "dataset.json").read_text())["classes"] == folder.classes
    classifier = Classifier.from_run(SHIPPED / "classifier")
    assert classifier.config["class_names"] == folder.classes
    images = np.stack([np.asarray(folder.loader(path).convert("L"))[None] for path, _ in folder.samples])
    predicted = classifier.predict(images).numpy()
    by_index = float((predicted == np.array(folder.targets)).mean())
    assert by_index >= 0.90, by_index


def test_a_classifier_trained_on_data_listed_out_of_order_writes_its_head_in_name_order(tmp_path):
    """An .npz listing its classes as (square, disk, triangle): the run's output k is the k-th sorted name, and
    its predictions by name are those of the same weights in the data's own order."""
    shapes = make_shapes_folder(tmp_path / "shapes", per_class=8)
    folder = ImageFolder(str(shapes))
    images = np.stack([np.asarray(folder.loader(p).convert("L"))[None] for p, _ in folder.samples])
    names = ["square", "disk", "triangle"]  # the order this file lists them in
    labels = np.array([names.index(folder.classes[t]) for t in folder.targets])
    np.savez(tmp_path / "shapes.npz", images=images, labels=labels, class_names=np.array(names))
    run = tmp_path / "run"
    result = run_cli("classify", "train", tmp_path / "shapes.npz", "--steps", "30", "--out", run, "--device", "cpu")
    assert result.exit_code == 0, result.stderr
    classifier = Classifier.from_run(run)
    assert classifier.config["class_names"] == sorted(names) == folder.classes
    predicted = classifier.predict(images).numpy()
    assert float((predicted == np.array(folder.targets)).mean()) > 1 / 3 + 0.2  # learnt, and by torchvision's index
    assert torch.is_tensor(classifier.predict(images[:1]))
