"""The confidence gate's judge: a ``Classifier`` of the real images, or none for one class."""

from __future__ import annotations

import numpy as np
import pytest

from augmentor.data.imageset import ImageSet
from augmentor.synthetic.gates import confidence_mask, judge_record, label_confidence, train_judge
from tests.conftest import make_shapes_folder


@pytest.fixture(scope="module")
def real(tmp_path_factory) -> ImageSet:
    """Grey 28×28 disks, squares and triangles, 16 of each."""
    from augmentor.data.readers import open_dataset

    return open_dataset(str(make_shapes_folder(tmp_path_factory.mktemp("gates") / "d", per_class=16, seed=4))).train


def test_confidence_is_the_judges_probability_of_each_label(real):
    judge = train_judge(real, steps=30, seed=0, device="cpu")
    confidence = label_confidence(judge, real)
    assert confidence.dtype == np.float32 and confidence.shape == (48,)
    proba = judge.proba(real).numpy()
    assert np.array_equal(confidence, proba[np.arange(48), real.labels])
    # Scored on the images it was trained on, most get their own label above chance (1/3).
    assert (confidence > 1 / 3).mean() > 0.8
    assert np.array_equal(confidence_mask(judge, real, 0.5), confidence >= 0.5)
    assert judge_record(real, 30, 0) == {"arch": "fast", "steps": 30, "seed": 0, "label_smoothing": 0.0, "images": 48}


def test_one_class_has_no_judge_and_keeps_every_image(real):
    disks = real.take(np.flatnonzero(real.labels == 0))
    one = ImageSet(disks.images, np.zeros(len(disks), np.int64), ["disk"])
    judge = train_judge(one, steps=30)
    assert judge is None
    assert np.array_equal(label_confidence(judge, one), np.ones(16, np.float32))
    assert confidence_mask(judge, one, 0.99).all()
    assert judge_record(one, 30, 0)["steps"] == 0
