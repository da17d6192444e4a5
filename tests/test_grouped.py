"""K `fast` models as one grouped network: the layout round-trips, the forward is the K forwards, and training
together is training one at a time, step for step.

The equivalence runs use float64 (``torch.set_default_dtype``): in float32 a rounding difference in a gradient
near zero is blown up by Adam's normalisation, and within 30 steps two ``train_classifier`` runs that differ only
in thread count end ~0.8 apart in some weight and several test points apart. In float64 that noise is gone, so
any real difference in data, draws, loss or update would show.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from augmentor.classifiers.architectures import fast
from augmentor.classifiers.classifier import Classifier
from augmentor.classifiers.grouped import CannotGroup, GroupedFast, train_together
from augmentor.classifiers.mixing import SyntheticPool, hard_targets
from augmentor.classifiers.registry import create_model
from augmentor.classifiers.train import TrainConfig, train_classifier
from augmentor.data.imageset import ImageSet
from augmentor.distributed.context import Context

SIZE = 16  # the smallest size `fast` takes: float64 training stays quick


@pytest.fixture(scope="module")
def digits() -> ImageSet:
    """scikit-learn's digits upscaled to SIZE×SIZE, uint8."""
    from sklearn.datasets import load_digits

    data = load_digits()
    pixels = torch.from_numpy(data.images).float()[:, None] * 16
    images = F.interpolate(pixels, size=SIZE, mode="bilinear", align_corners=False).round().clamp(0, 255)
    return ImageSet(images.to(torch.uint8).numpy(), data.target, [str(d) for d in range(10)])


def per_class(data: ImageSet, start: int, count: int) -> ImageSet:
    """Images start … start+count-1 of every class: disjoint subsets for disjoint ranges."""
    return data.take(np.concatenate([np.flatnonzero(data.labels == c)[start : start + count] for c in range(10)]))


def randomised(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Non-trivial BatchNorm weights and running statistics, so eval mode is not the identity norm."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.endswith(("running_mean", "bias")):
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.1)
            elif name.endswith("running_var") or (tensor.ndim == 1 and name.endswith("weight")):
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
    return model


def compare(together: list[Classifier], alone: list[Classifier]) -> float:
    """The largest weight difference; everything else a caller could read must be the same."""
    worst = 0.0
    for a, b in zip(together, alone, strict=True):
        ours, theirs = a.model.state_dict(), b.model.state_dict()
        assert ours.keys() == theirs.keys()
        for key in ours:
            assert ours[key].shape == theirs[key].shape and ours[key].dtype == theirs[key].dtype
            worst = max(worst, (ours[key] - theirs[key]).abs().max().item())
            torch.testing.assert_close(ours[key], theirs[key], atol=1e-4, rtol=1e-3, msg=key)
        assert a.final["accuracy"] == b.final["accuracy"]  # in float64: the very same predictions
        # The run record and the metrics, but for wall-clock times.
        timeless = ("seconds", "train_seconds")
        assert [{k: v for k, v in m.items() if k not in timeless} for m in a.metrics] == [
            {k: v for k, v in m.items() if k not in timeless} for m in b.metrics
        ]
        config_a, config_b = (
            {**c.config, "training": {k: v for k, v in c.config["training"].items() if k != "seconds"}} for c in (a, b)
        )
        assert config_a == config_b
        assert not a.model.training
    return worst


# --- the grouped layout -----------------------------------------------------------------------------


@pytest.mark.parametrize(("channels", "width"), [(1, 0.5), (3, 0.25)])
def test_the_grouped_layout_round_trips_and_forwards_as_the_models_do(channels, width):
    torch.manual_seed(0)
    models = [randomised(fast(5, channels, 28, width=width), seed) for seed in range(3)]
    grouped = GroupedFast.from_models(models)
    for original, back in zip(models, grouped.to_models(), strict=True):
        for (key, a), (_, b) in zip(original.state_dict().items(), back.state_dict().items(), strict=True):
            assert torch.equal(a, b), key
    inputs = [torch.randn(8, channels, 28, 28, generator=torch.Generator().manual_seed(k)) for k in range(3)]
    for train in (False, True):
        grouped.train(train)
        for model in models:
            model.train(train)
        logits = grouped(torch.cat(inputs, dim=1))
        assert logits.shape == (8, 3, 5)
        expected = torch.stack([model(x) for model, x in zip(models, inputs, strict=True)], dim=1)
        torch.testing.assert_close(logits, expected, atol=1e-5, rtol=0)
    # Train mode updated every model's running statistics as the separate forwards did.
    for updated, model in zip(grouped.to_models(), models, strict=True):
        for (key, a), (_, b) in zip(updated.state_dict().items(), model.state_dict().items(), strict=True):
            torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5, msg=key)


def test_other_architectures_and_mismatched_models_are_refused():
    with pytest.raises(CannotGroup, match="only the fast architecture"):
        GroupedFast.from_models([create_model("lenet5", 3, 1, 28)])
    with pytest.raises(CannotGroup, match="only the fast architecture"):
        GroupedFast.from_models([create_model("dilated", 3, 1, 28)])
    with pytest.raises(CannotGroup, match="differs in shape"):
        GroupedFast.from_models([fast(3, 1, 28), fast(3, 1, 28, width=0.25)])
    assert GroupedFast.from_models([create_model("fast-wide", 3, 1, 28)] * 2)(torch.zeros(2, 2, 28, 28)).shape == (
        2,
        2,
        3,
    )


# --- training together is training one at a time ---------------------------------------------------


def test_training_together_equals_training_one_at_a_time(digits, float64):
    trains = [per_class(digits, 12 * k, 12) for k in range(3)]  # three disjoint real subsets of 120
    test = per_class(digits, 100, 20)
    configs = [TrainConfig(steps=30, batch_size=16, seed=seed, device="cpu", evals=3) for seed in (11, 12, 13)]
    together = train_together(trains, configs, test=test)
    alone = [train_classifier(train, config, test) for train, config in zip(trains, configs, strict=True)]
    worst = compare(together, alone)
    assert worst < 1e-5, worst
    assert all(c.metrics[-1]["train_loss"] < c.metrics[0]["train_loss"] for c in together)  # each one learnt
    assert len({c.config["dataset"]["fingerprint"] for c in together}) == 3


def test_training_together_with_synthetic_pools_equals_one_at_a_time(digits, float64):
    trains = [per_class(digits, 12 * k, 12) for k in range(3)]
    test = per_class(digits, 100, 20)
    # The pools are other real images, hard-labelled, of different sizes (each run draws its own pool order).
    pools = []
    for k, count in enumerate((4, 6, 9)):
        images = per_class(digits, 40 + 10 * k, count)
        pools.append(SyntheticPool(images.images, hard_targets(images.labels, 10), share=0.5, weight=0.5 + 0.25 * k))
    # 240 real presentations: 192 at 8 real + 8 pool images a step, the last fifth real-only: 24 + 3 steps.
    base = TrainConfig(batch_size=16, device="cpu", evals=3, real_presentations=240, finetune_real=0.2)
    configs = [replace(base, seed=seed) for seed in (21, 22, 23)]
    together = train_together(trains, configs, pools, test)
    alone = [
        train_classifier(train, config, test, synthetic=pool)
        for train, config, pool in zip(trains, configs, pools, strict=True)
    ]
    worst = compare(together, alone)
    assert worst < 1e-5, worst
    assert together[0].config["training"]["steps"] == 27
    assert [c.config["synthetic"]["weight"] for c in together] == [0.5, 0.75, 1.0]


def test_mixup_and_weight_averaging_train_together_as_alone(digits, float64):
    trains = [per_class(digits, 12 * k, 6) for k in range(2)]
    test = per_class(digits, 100, 10)
    base = TrainConfig(steps=12, batch_size=16, device="cpu", evals=2, mixup=0.4, cutmix=0.4, ema=0.9)
    configs = [replace(base, seed=seed) for seed in (31, 32)]
    together = train_together(trains, configs, test=test)
    alone = [train_classifier(train, config, test) for train, config in zip(trains, configs, strict=True)]
    assert compare(together, alone) < 1e-5


# --- what cannot train together -------------------------------------------------------------------------


def test_runs_that_differ_in_more_than_seed_and_data_are_refused(digits, monkeypatch):
    trains = [per_class(digits, 0, 4), per_class(digits, 4, 4)]
    base = TrainConfig(steps=2, batch_size=16, device="cpu")
    with pytest.raises(CannotGroup, match="differs in lr"):
        train_together(trains, [base, replace(base, seed=1, lr=1e-3)])
    with pytest.raises(CannotGroup, match="differs in arch, batch_size"):
        train_together(trains, [base, replace(base, arch="lenet5", batch_size=8)])
    with pytest.raises(CannotGroup, match="only the fast architecture"):
        train_together(trains, [replace(base, arch="lenet5"), replace(base, arch="lenet5", seed=1)])
    augmented = replace(base, randaugment="rand-m9-n2")
    with pytest.raises(CannotGroup, match="--randaugment runs train one at a time"):
        train_together(trains, [augmented, replace(augmented, seed=1)])
    # An epoch budget over sets of other sizes: other step counts.
    epochs = replace(base, steps=None, epochs=2)
    with pytest.raises(CannotGroup, match="takes other batches"):
        train_together([trains[0], per_class(digits, 8, 6)], [epochs, replace(epochs, seed=1)])
    # A pool for one run and none for the other: other batch compositions.
    pool = SyntheticPool(trains[1].images, hard_targets(trains[1].labels, 10), share=0.5)
    with pytest.raises(CannotGroup, match="takes other batches"):
        train_together(trains, [base, replace(base, seed=1)], [pool, None])
    monkeypatch.setattr("augmentor.classifiers.grouped.current", lambda: Context(rank=0, world_size=2))
    with pytest.raises(CannotGroup, match="torchrun"):
        train_together(trains, [base, replace(base, seed=1)])
