"""Classifier registry and architectures: every arch trains a step on 28 and 32 px, grey and colour.

The torchvision-sized architectures take one of those shapes each in the fast suite and all four under
``-m slow``; the small ones take all four always.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from augmentor.classifiers import create_model, list_archs
from augmentor.classifiers.architectures import load_torchvision_state
from augmentor.classifiers.registry import describe_archs
from augmentor.core.errors import UserError

ARCHS = [info.name for info in list_archs()]
HEAVY = ["alexnet", "vgg11", "vgg16", "resnet18", "resnet34", "efficientnet-b0", "convnext-tiny"]
SHAPES = [(1, 28), (1, 32), (3, 28), (3, 32)]  # (in_channels, image_size)


def _forward_cases() -> list:
    """Every (arch, channels, size); a heavy arch's shapes other than its fast one are marked slow."""
    cases = []
    for arch in ARCHS:
        # Each heavy arch gets a different fast shape, so the fast suite still sees all four among them.
        fast_shape = SHAPES[HEAVY.index(arch) % len(SHAPES)] if arch in HEAVY else None
        for in_channels, image_size in SHAPES:
            slow = fast_shape is not None and (in_channels, image_size) != fast_shape
            marks = [pytest.mark.slow] if slow else []
            cases.append(
                pytest.param(arch, in_channels, image_size, marks=marks, id=f"{arch}-{in_channels}-{image_size}")
            )
    return cases


@pytest.fixture(autouse=True, scope="module")
def _two_threads():
    """The time budget assumes a 2-core CPU; restore the thread count for the other test files."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_registry_has_every_family() -> None:
    expected = {"lenet5", "alexnet", "vgg11", "vgg16", "resnet18", "resnet34", "efficientnet-b0"}
    assert expected | {"convnext-tiny", "dilated", "fast", "fast-wide"} == set(ARCHS)
    assert set(HEAVY) < set(ARCHS)  # a misspelt name here would quietly run that arch's full matrix


@pytest.mark.parametrize(("arch", "in_channels", "image_size"), _forward_cases())
def test_forward_backward(arch: str, in_channels: int, image_size: int) -> None:
    torch.manual_seed(0)
    model = create_model(arch, num_classes=7, in_channels=in_channels, image_size=image_size).train()
    logits = model(torch.randn(2, in_channels, image_size, image_size))
    assert logits.shape == (2, 7)
    assert torch.isfinite(logits).all()
    logits.square().mean().backward()
    # No architecture has unused parameters, so every one must get a gradient.
    for name, param in model.named_parameters():
        assert param.grad is not None, f"{arch}: {name} got no gradient"
        assert torch.isfinite(param.grad).all(), f"{arch}: {name} has a non-finite gradient"


def test_stages_and_first_conv() -> None:
    for arch in ARCHS:
        for in_channels in (1, 3):
            model = create_model(arch, 5, in_channels, 28)
            stages = model.stages()
            assert len(stages) >= 2, arch
            assert all(isinstance(name, str) and isinstance(stage, nn.Module) for name, stage in stages)
            assert [module for _, module in stages] == list(model.features)
            conv = model.first_conv()
            assert isinstance(conv, nn.Conv2d) and conv.in_channels == in_channels, arch
            # backbone and head parameters split the model, nothing missed or counted twice.
            split = [id(p) for p in model.backbone_parameters()] + [id(p) for p in model.head_parameters()]
            assert sorted(split) == sorted(id(p) for p in model.parameters()), arch


def test_unknown_name_and_bad_arguments() -> None:
    with pytest.raises(UserError, match=r"unknown architecture 'nope'; known: alexnet, convnext-tiny, .*vgg16"):
        create_model("nope", 10, 1, 28)
    with pytest.raises(UserError, match="at least 16×16 px, got 8"):
        create_model("fast", 10, 1, 8)
    with pytest.raises(UserError, match="in_channels must be 1"):
        create_model("fast", 10, 4, 28)
    with pytest.raises(UserError, match="num_classes must be"):
        create_model("fast", 1, 1, 28)
    with pytest.raises(UserError, match="no option 'depth'; its options: width"):
        create_model("fast", 10, 1, 28, depth=3)
    assert create_model("ConvNeXt_Tiny", 10, 1, 28).arch == "convnext-tiny"
    assert create_model("fast", 10, 1, 28).head.in_features == 128
    assert create_model("fast", 10, 1, 28, width=1.0).head.in_features == 256
    assert create_model("fast-wide", 10, 1, 28).head.in_features == 256


def test_describe_archs() -> None:
    rows = describe_archs()
    assert [row["arch"] for row in rows] == ARCHS
    for row in rows:
        assert row["params"] > 0 and row["flops"] > 0, row["arch"]
    by_arch = {row["arch"]: row for row in rows}
    assert by_arch["fast"]["flops"] < 150e6
    # The textbook LeNet-5 count: conv 156 + 2,416, FC 48,120 + 10,164 + 850 = 61,706 (C3 fully
    # connected, as every modern re-implementation does; the paper's sparse C3 gives ~60k).
    assert by_arch["lenet5"]["params"] == 61_706
    with pytest.raises(UserError, match=r"--channels 2 is not supported; use 1 \(grey\) or 3 \(colour\)"):
        describe_archs(in_channels=2)  # refused before any model is built


def test_replace_head() -> None:
    for arch in ("lenet5", "fast", "convnext-tiny"):
        model = create_model(arch, 10, 1, 28)
        had_bias = model.head.bias is not None
        in_features = model.head.in_features
        model.replace_head(3)
        assert model.head.out_features == 3 and model.head.in_features == in_features
        assert (model.head.bias is not None) == had_bias
        assert model(torch.randn(2, 1, 28, 28)).shape == (2, 3)


def test_torchvision_resnet18_state_maps() -> None:
    from torchvision.models import resnet18

    torch.manual_seed(0)
    source = resnet18(weights=None, num_classes=1000).state_dict()
    model = create_model("resnet18", 10, 3, 32)
    skipped = load_torchvision_state(model, source)
    # conv1 is 7×7 there, 3×3 here; the head has 1000 classes there, 10 here.
    assert set(skipped) == {"conv1.weight", "fc.weight", "fc.bias"}
    ours = model.state_dict()
    for key, value in source.items():
        if key.startswith("layer1.") and "conv" in key:
            assert torch.equal(ours[f"features.{key}"], value), key
    assert torch.equal(ours["features.stem.bn1.running_var"], source["bn1.running_var"])
    assert not torch.equal(ours["head.weight"][:10], source["fc.weight"][:10])
    with pytest.raises(UserError, match="none of the"):
        load_torchvision_state(create_model("resnet18", 10, 3, 32), {"x.weight": torch.zeros(1)})
    with pytest.raises(UserError, match="no torchvision weights mapping for 'fast'"):
        load_torchvision_state(create_model("fast", 10, 3, 32), source)
