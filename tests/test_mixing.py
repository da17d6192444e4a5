"""Mixed real/synthetic batches: the step plan, equal real exposure, soft targets, training with a pool."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from augmentor.classifiers.mixing import (
    SyntheticPool,
    batch_split,
    hard_targets,
    real_order,
    soft_targets,
    step_plan,
    synthetic_order,
)
from augmentor.classifiers.train import TrainConfig, _mixed_batches, train_classifier
from augmentor.core.errors import UserError
from augmentor.data.imageset import ImageSet
from tests.conftest import SHAPE_CLASSES, draw_shape

CPU = torch.device("cpu")


def shapes(per_class: int, seed: int, size: int = 28) -> ImageSet:
    """Drawn disks, squares and triangles, in memory."""
    rng = np.random.default_rng(seed)
    images = [draw_shape(k, size, rng).transpose(2, 0, 1) for k in SHAPE_CLASSES for _ in range(per_class)]
    return ImageSet(np.stack(images), np.repeat(np.arange(len(SHAPE_CLASSES)), per_class), list(SHAPE_CLASSES))


def entropy(p: np.ndarray) -> float:
    return float(-(p * np.log(np.clip(p, 1e-12, None))).sum(axis=1).mean())


# --- the step plan -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("finetune", [0.0, 0.3])
@pytest.mark.parametrize("batch_size", [16, 100, 128])
@pytest.mark.parametrize("share", [0.0, 0.25, 0.5, 0.75])
def test_step_plan_spends_exactly_the_real_presentations(share, batch_size, finetune):
    for presentations in (1, 99, 1000, 1283):
        real, synthetic = step_plan(presentations, batch_size, share, finetune)
        assert real.dtype == synthetic.dtype == np.int64
        assert len(real) == len(synthetic) >= 1
        assert int(real.sum()) == presentations  # exactly, whatever the share
        assert (real >= 1).all() and (synthetic >= 0).all()
        mixed = synthetic > 0
        if share == 0:
            assert not mixed.any()
            assert (real[:-1] == batch_size).all() and len(real) == math.ceil(presentations / batch_size)
            continue
        k = int(mixed.sum())
        assert mixed[:k].all() and not mixed[k:].any()  # mixed steps first, then the real-only tail
        assert int(real[:k].sum()) == round(presentations * (1 - finetune))
        real_part, synthetic_part = batch_split(batch_size, share)
        assert real_part + synthetic_part == batch_size
        assert abs(synthetic_part / batch_size - share) <= 0.5 / batch_size + 1e-9
        # every mixed batch is a full batch except possibly the last (partial) one
        assert ((real[:k] + synthetic[:k])[:-1] == batch_size).all()
        assert (synthetic[:k] == synthetic_part).all()
        tail = real[k:]
        assert int(tail.sum()) == presentations - round(presentations * (1 - finetune))
        assert (tail[:-1] == batch_size).all()
        if finetune == 0:
            assert len(tail) == 0
        elif presentations >= 99:
            assert len(tail) >= 1  # the finetune tail exists and has no synthetic image
            assert (synthetic[k:] == 0).all()


def test_batch_split_keeps_one_of_each():
    assert batch_split(16, 0.5) == (8, 8)
    assert batch_split(16, 0.25) == (12, 4)
    assert batch_split(2, 0.01) == (1, 1)
    assert batch_split(2, 0.99) == (1, 1)
    assert batch_split(128, 0.75) == (32, 96)


def test_step_plan_refuses_bad_budgets():
    with pytest.raises(UserError, match="at least 1 presentation"):
        step_plan(0, 16, 0.5)
    for finetune in (-0.1, 1.0):
        with pytest.raises(UserError, match="--finetune-real"):
            step_plan(100, 16, 0.5, finetune)


# --- equal real exposure ---------------------------------------------------------------------------------------


def exposure(n: int, presentations: int, seed: int, share: float, finetune: float = 0.0, batch_size: int = 16):
    """(how often each real index is drawn, the concatenated real stream, synthetic counts per pool index)."""
    real_counts, synthetic_counts = step_plan(presentations, batch_size, share, finetune)
    pool = 37 if share else 0
    counts = np.zeros(n, np.int64)
    drawn = np.zeros(max(pool, 1), np.int64)
    stream = []
    steps = 0
    batches = _mixed_batches(real_counts, synthetic_counts, n, pool, seed, CPU)
    for (index, synthetic), real_count, synthetic_count in zip(batches, real_counts, synthetic_counts, strict=True):
        assert len(index) == real_count
        assert (synthetic is None) == (synthetic_count == 0)
        if synthetic is not None:
            assert len(synthetic) == synthetic_count
            drawn += np.bincount(synthetic.numpy(), minlength=pool)
        counts += np.bincount(index.numpy(), minlength=n)
        stream.append(index.numpy())
        steps += 1
    assert steps == len(real_counts)
    return counts, np.concatenate(stream), drawn


@pytest.mark.parametrize("presentations", [90, 100, 257])  # a multiple of n, and two that are not
def test_every_equal_budget_arm_shows_each_real_image_equally_often(presentations):
    n, seed = 30, 5
    real_arm, real_stream, _ = exposure(n, presentations, seed, 0.0)
    assert real_arm.sum() == presentations and real_arm.max() - real_arm.min() <= 1
    if presentations % n == 0:
        assert (real_arm == presentations // n).all()
    for share, finetune in ((0.25, 0.0), (0.5, 0.0), (0.75, 0.0), (0.5, 0.3), (0.25, 0.3)):
        counts, stream, drawn = exposure(n, presentations, seed, share, finetune)
        np.testing.assert_array_equal(counts, real_arm)
        np.testing.assert_array_equal(stream, real_stream)  # the same images in the same order
        assert drawn.max() - drawn.min() <= 1  # every synthetic image once before any twice
    # real-long: more presentations, the same stream extended, so at least as often (and more in total)
    long_steps = len(step_plan(presentations, 16, 0.75)[0])
    longer, long_stream, _ = exposure(n, long_steps * 16, seed, 0.0)
    assert longer.sum() == long_steps * 16 > presentations
    assert (longer >= real_arm).all() and (longer > real_arm).any()
    np.testing.assert_array_equal(long_stream[:presentations], real_stream)
    # another seed: another order (the counts only differ in which indices get the extra draw)
    other = exposure(n, presentations, seed + 1, 0.0)[1]
    assert not np.array_equal(other, real_stream)


def test_orders_are_functions_of_their_arguments():
    assert torch.equal(real_order(10, 35, 3), real_order(10, 35, 3))
    assert not torch.equal(real_order(10, 35, 3), real_order(10, 35, 4))
    assert not torch.equal(real_order(10, 30, 3)[:10], synthetic_order(10, 30, 3)[:10])
    for k in range(3):  # back-to-back permutations
        assert sorted(real_order(10, 35, 3)[10 * k : 10 * (k + 1)].tolist()) == list(range(10))


# --- soft targets --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def teacher():
    train = shapes(8, seed=11)
    config = TrainConfig(steps=6, batch_size=16, device="cpu", evals=1, seed=0)
    return train_classifier(train, config), shapes(6, seed=12)


def test_soft_targets_of_a_real_teacher(teacher):
    classifier, images = teacher
    labels = images.labels
    one_hot = hard_targets(labels, 3)
    assert one_hot.dtype == np.float32 and (one_hot.sum(1) == 1).all() and (one_hot.argmax(1) == labels).all()
    entropies = {}
    for temperature in (1.0, 4.0):
        proba = classifier.proba(images, temperature=temperature).numpy()
        assert proba.shape == (len(images), 3)
        targets = soft_targets(proba, labels, 0.5)
        assert targets.shape == (len(images), 3) and targets.dtype == np.float32
        np.testing.assert_allclose(targets.sum(1), 1.0, atol=1e-6)
        assert (targets >= 0).all() and (targets[np.arange(len(labels)), labels] >= 0.5 - 1e-6).all()
        assert not np.array_equal(targets, one_hot)
        np.testing.assert_allclose(soft_targets(proba, labels, 1.0), proba, atol=1e-6)
        assert np.array_equal(soft_targets(proba, labels, 0.0), one_hot)  # exactly one-hot
        entropies[temperature] = (entropy(proba), entropy(targets))
    assert entropies[4.0][0] > entropies[1.0][0]  # a hotter teacher is less sure
    assert entropies[4.0][1] > entropies[1.0][1]
    with pytest.raises(UserError, match="--temperature"):
        classifier.proba(images, temperature=0)


@pytest.mark.parametrize("share", [-0.1, 1.5, float("nan")])
def test_bad_teacher_share_is_refused(share):
    with pytest.raises(UserError, match="--teacher-share"):
        soft_targets(np.full((2, 3), 1 / 3, np.float32), np.array([0, 1]), share)


def test_synthetic_pool_refuses_bad_settings():
    images = np.zeros((4, 1, 28, 28), np.uint8)
    targets = hard_targets(np.array([0, 1, 2, 0]), 3)
    for share in (0.0, 1.0, -0.5):
        with pytest.raises(UserError, match="--synthetic-share"):
            SyntheticPool(images, targets, share)
    with pytest.raises(UserError, match="--synthetic-weight"):
        SyntheticPool(images, targets, 0.5, weight=-1.0)
    with pytest.raises(UserError, match="empty"):
        SyntheticPool(images[:0], targets[:0], 0.5)
    with pytest.raises(UserError, match="targets"):
        SyntheticPool(images, targets[:3], 0.5)


# --- training with a pool ------------------------------------------------------------------------------------

PRESENTATIONS = 50  # 12 real images, batch 12: 5 real-only steps, 8 mixed-and-finetune steps


@pytest.fixture(scope="module")
def mixed_setup(teacher):
    classifier, _ = teacher
    train = shapes(4, seed=21)
    synthetic = shapes(5, seed=22)
    targets = soft_targets(classifier.proba(synthetic, temperature=2.0).numpy(), synthetic.labels, 0.5)
    pool = SyntheticPool(synthetic.images, targets, share=0.5, weight=0.7)
    config = TrainConfig(
        batch_size=16, device="cpu", evals=2, seed=4, real_presentations=PRESENTATIONS, finetune_real=0.3
    )
    return train, pool, config


def test_training_with_a_pool_is_reproducible_and_recorded(mixed_setup):
    train, pool, config = mixed_setup
    first = train_classifier(train, config, synthetic=pool)
    again = train_classifier(train, config, synthetic=pool)
    real_only = train_classifier(train, config)
    state, state_again = first.model.state_dict(), again.model.state_dict()
    assert state.keys() == state_again.keys()
    assert all(torch.equal(state[k], state_again[k]) for k in state)  # bit-identical on CPU
    other = real_only.model.state_dict()
    assert not all(torch.equal(state[k], other[k]) for k in state)  # the pool changed training

    real_counts, synthetic_counts = step_plan(PRESENTATIONS, 12, 0.5, 0.3)
    assert first.config["synthetic"] == {
        "pool_images": 15,
        "drawn": int(synthetic_counts.sum()),
        "share": 0.5,
        "weight": 0.7,
    }
    assert first.config["synthetic"]["drawn"] == 36
    assert first.config["training"]["steps"] == len(real_counts) == 8
    assert first.config["training"]["batch_size"] == 12
    assert first.metrics[-1]["step"] == 8
    assert first.metrics[-1]["epoch"] == pytest.approx(PRESENTATIONS / len(train), abs=1e-3)  # real images only
    # real-only with the same real budget: the same real presentations in fewer steps
    assert real_only.config["synthetic"] is None
    assert real_only.config["training"]["steps"] == math.ceil(PRESENTATIONS / 12) == 5
    assert real_only.metrics[-1]["epoch"] == pytest.approx(PRESENTATIONS / len(train), abs=1e-3)


def test_a_pool_of_the_wrong_shape_is_refused(mixed_setup):
    train, pool, config = mixed_setup
    small = SyntheticPool(pool.images[:, :, :16, :16].copy(), pool.targets, 0.5)
    with pytest.raises(UserError, match="synthetic pool of shape"):
        train_classifier(train, config, synthetic=small)
    four_classes = SyntheticPool(pool.images, np.pad(pool.targets, ((0, 0), (0, 1))), 0.5)
    with pytest.raises(UserError, match="4 classes"):
        train_classifier(train, config, synthetic=four_classes)


def test_the_plain_step_budget_still_works():
    train, test = shapes(4, seed=31), shapes(3, seed=32)
    config = TrainConfig(steps=3, batch_size=8, device="cpu", evals=3, seed=1)
    first = train_classifier(train, config, test=test)
    again = train_classifier(train, config, test=test)
    assert first.config["synthetic"] is None
    assert first.config["training"]["steps"] == 3 and first.config["training"]["real_presentations"] is None
    assert [m["step"] for m in first.metrics] == [1, 2, 3]
    assert first.metrics[-1]["epoch"] == pytest.approx(3 * 8 / 12, abs=1e-3)
    assert 0 <= first.final["accuracy"] <= 1 and "test" in first.config
    state, other = first.model.state_dict(), again.model.state_dict()
    assert all(torch.equal(state[k], other[k]) for k in state)


@pytest.mark.parametrize("steps", [1, 4, 7, 8])  # 4: one-cycle's warm-up of 0.25 × 4 steps once divided by zero
def test_short_budgets_train(steps):
    train = shapes(4, seed=41)
    classifier = train_classifier(train, TrainConfig(steps=steps, batch_size=12, device="cpu", evals=1))
    assert classifier.config["training"]["steps"] == steps
    assert classifier.metrics[-1]["step"] == steps and math.isfinite(classifier.metrics[-1]["train_loss"])
