"""Classifier architectures adapted to small (28–32 px) grey or colour images; pure nn.Modules, no I/O.

Every architecture is a ``ClassifierNet``: features (a Sequential of named stages) → pool → flatten →
neck → head (one ``nn.Linear``). The torchvision-based ones (ResNet, EfficientNet, ConvNeXt) keep
torchvision's module names inside their stages, so ``load_torchvision_state`` can map a torchvision
state dict onto them. Nothing is ever downloaded: torchvision models are built with ``weights=None``.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping

import torch
from torch import nn

from augmentor.classifiers.registry import register
from augmentor.core.errors import UserError


class ClassifierNet(nn.Module):
    """The network of a ``Classifier``: features → pool → flatten → neck → head, the shape of every architecture."""

    def __init__(self, features: nn.Sequential, pool: nn.Module, neck: nn.Module, head: nn.Linear) -> None:
        super().__init__()
        if not isinstance(features, nn.Sequential):
            raise TypeError("features must be an nn.Sequential of stages")
        if not isinstance(head, nn.Linear):
            raise TypeError("head must be an nn.Linear")
        self.features = features
        self.pool = pool
        self.neck = neck
        self.head = head
        # Registry name, set by create_model; load_torchvision_state uses it to pick the key map.
        self.arch = ""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits, N × num_classes."""
        return self.head(self.forward_features(x))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The vector the head sees (after pool and neck), N × head.in_features."""
        return self.neck(torch.flatten(self.pool(self.features(x)), 1))

    def stages(self) -> list[tuple[str, nn.Module]]:
        """The named stages of ``features``, in order (their outputs are what activation maps show)."""
        return list(self.features.named_children())

    def first_conv(self) -> nn.Conv2d:
        """The first convolution (the one whose kernels look at pixels)."""
        for module in self.features.modules():
            if isinstance(module, nn.Conv2d):
                return module
        raise LookupError("no Conv2d in features")

    def backbone_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters of features and pool: what --freeze-backbone freezes."""
        return itertools.chain(self.features.parameters(), self.pool.parameters())

    def head_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters of neck and head: what stays trainable with --freeze-backbone."""
        return itertools.chain(self.neck.parameters(), self.head.parameters())

    def replace_head(self, num_classes: int) -> None:
        """A new, freshly initialised head for ``num_classes`` (same inputs, same bias choice)."""
        old = self.head
        self.head = nn.Linear(old.in_features, num_classes, bias=old.bias is not None).to(
            device=old.weight.device, dtype=old.weight.dtype
        )


class Scale(nn.Module):
    """Multiply by a fixed factor (no parameters)."""

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x × factor."""
        return x * self.factor

    def extra_repr(self) -> str:
        """Shown by print(model)."""
        return f"factor={self.factor}"


def _init_conv_bn(model: nn.Module) -> None:
    """He init for convolutions (the ReLU-family default torchvision uses), unit BatchNorm."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


def _conv_bn_act(
    cin: int, cout: int, stride: int = 1, dilation: int = 1, act: Callable[[], nn.Module] = nn.ReLU
) -> nn.Sequential:
    """3×3 conv (no bias: BatchNorm's shift replaces it) → BatchNorm → activation; 'same' padding."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        act(),
    )


# --- LeNet-5 ----------------------------------------------------------------------------------------


@register("lenet5", "LeNet-5 (LeCun 1998): 2 conv 5×5 + 3 fully connected, ReLU/max-pool; ~62k params")
def lenet5(num_classes: int, in_channels: int, image_size: int) -> ClassifierNet:
    """LeNet-5; padding 2 on the first conv makes 28 px behave like the paper's 32 px."""
    features = nn.Sequential(
        OrderedDict(
            conv1=nn.Sequential(nn.Conv2d(in_channels, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2)),
            conv2=nn.Sequential(nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2)),
        )
    )
    # 28 px gives exactly 16×5×5 (the paper's C5 input); other sizes are pooled to 5×5 so the
    # fully connected layers, and the parameter count, do not depend on the image size.
    neck = nn.Sequential(nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU())
    model = ClassifierNet(features, nn.AdaptiveAvgPool2d(5), neck, nn.Linear(84, num_classes))
    _init_conv_bn(model)
    return model


# --- AlexNet ----------------------------------------------------------------------------------------


@register("alexnet", "AlexNet-style (Krizhevsky 2012) for small inputs: 5 conv, 3 max-pools, dropout FC 1024")
def alexnet(num_classes: int, in_channels: int, image_size: int) -> ClassifierNet:
    """AlexNet's widths (torchvision's 64-192-384-256-256) with stride-1 5×5/3×3 convs for small inputs."""
    features = nn.Sequential(
        OrderedDict(
            block1=nn.Sequential(nn.Conv2d(in_channels, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2)),
            block2=nn.Sequential(nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2)),
            block3=nn.Sequential(
                nn.Conv2d(192, 384, 3, padding=1),
                nn.ReLU(),
                nn.Conv2d(384, 256, 3, padding=1),
                nn.ReLU(),
                nn.Conv2d(256, 256, 3, padding=1),
                nn.ReLU(),
                nn.MaxPool2d(2),
            ),
        )
    )
    # 28 px ends at 3×3 after three pools; like torchvision's AdaptiveAvgPool2d((6, 6)) this fixes the
    # neck's input size for any image size.
    neck = nn.Sequential(
        nn.Dropout(0.5),
        nn.Linear(256 * 3 * 3, 1024),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(1024, 1024),
        nn.ReLU(),
    )
    model = ClassifierNet(features, nn.AdaptiveAvgPool2d(3), neck, nn.Linear(1024, num_classes))
    _init_conv_bn(model)
    return model


# --- VGG --------------------------------------------------------------------------------------------

# Configurations A (VGG-11) and D (VGG-16), widths halved (32…256 instead of 64…512): small
# inputs carry far less information than ImageNet images and halving cuts compute by 4.
_VGG_STAGES: dict[str, tuple[tuple[int, ...], ...]] = {
    "vgg11": ((32,), (64,), (128, 128), (256, 256), (256, 256)),
    "vgg16": ((32, 32), (64, 64), (128, 128, 128), (256, 256, 256), (256, 256, 256)),
}


def _vgg(config: str, num_classes: int, in_channels: int, image_size: int) -> ClassifierNet:
    """VGG with BatchNorm; each stage ends in a 2×2 max-pool only while the map is at least 4 px."""
    stages: OrderedDict[str, nn.Module] = OrderedDict()
    channels, size = in_channels, image_size
    for index, widths in enumerate(_VGG_STAGES[config], start=1):
        layers: list[nn.Module] = []
        for width in widths:
            layers.extend(_conv_bn_act(channels, width))
            channels = width
        # Five pools would take 28 px to 0; stopping at 2–3 px keeps a spatial map for the last
        # stages. Pools have no weights, so a model built at one size loads another size's weights.
        if size >= 4:
            layers.append(nn.MaxPool2d(2))
            size //= 2
        stages[f"stage{index}"] = nn.Sequential(*layers)
    neck = nn.Sequential(
        nn.Linear(channels, 512),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(512, 512),
        nn.ReLU(),
        nn.Dropout(0.5),
    )
    model = ClassifierNet(nn.Sequential(stages), nn.AdaptiveAvgPool2d(1), neck, nn.Linear(512, num_classes))
    _init_conv_bn(model)
    return model


@register("vgg11", "VGG-11 (config A) with BatchNorm, half width, global average pool, dropout FC 512")
def vgg11(num_classes: int, in_channels: int, image_size: int) -> ClassifierNet:
    """VGG-11 with BatchNorm for small inputs."""
    return _vgg("vgg11", num_classes, in_channels, image_size)


@register("vgg16", "VGG-16 (config D) with BatchNorm, half width, global average pool, dropout FC 512")
def vgg16(num_classes: int, in_channels: int, image_size: int) -> ClassifierNet:
    """VGG-16 with BatchNorm for small inputs."""
    return _vgg("vgg16", num_classes, in_channels, image_size)


# --- ResNet (torchvision) ---------------------------------------------------------------------------


def _resnet(depth: int, num_classes: int, in_channels: int) -> ClassifierNet:
    """torchvision's ResNet with a 3×3 stride-1 stem and no max-pool, so 28 px ends at 4×4, not 1×1."""
    from torchvision import models  # here, not at the top: importing torchvision.models takes a while

    tv = (models.resnet18 if depth == 18 else models.resnet34)(weights=None, num_classes=num_classes)
    tv.conv1 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
    nn.init.kaiming_normal_(tv.conv1.weight, mode="fan_out", nonlinearity="relu")  # as torchvision does
    stem = nn.Sequential(OrderedDict(conv1=tv.conv1, bn1=tv.bn1, relu=tv.relu))
    features = nn.Sequential(
        OrderedDict(stem=stem, layer1=tv.layer1, layer2=tv.layer2, layer3=tv.layer3, layer4=tv.layer4)
    )
    return ClassifierNet(features, tv.avgpool, nn.Identity(), tv.fc)


@register("resnet18", "ResNet-18 (torchvision) with a 3×3 stride-1 stem and no max-pool")
def resnet18(num_classes: int, in_channels: int, image_size: int) -> ClassifierNet:
    """ResNet-18 for small inputs."""
    return _resnet(18, num_classes, in_channels)


@register("resnet34", "ResNet-34 (torchvision) with a 3×3 stride-1 stem and no max-pool")
def resnet34(num_classes: int, in_channels: int, image_size: int) -> ClassifierNet:
    """ResNet-34 for small inputs."""
    return _resnet(34, num_classes, in_channels)


# --- EfficientNet-B0 (torchvision) ------------------------------------------------------------------


@register("efficientnet-b0", "EfficientNet-B0 (torchvision) with a stride-1 stem: 28 px ends at 2×2")
def efficientnet_b0(num_classes: int, in_channels: int, image_size: int) -> ClassifierNet:
    """EfficientNet-B0; the stem is stride 1 because a 28 px image cannot afford five halvings."""
    from torchvision import models

    tv = models.efficientnet_b0(weights=None, num_classes=num_classes)
    stem = tv.features[0][0]
    tv.features[0][0] = nn.Conv2d(in_channels, stem.out_channels, 3, stride=1, padding=1, bias=False)
    nn.init.kaiming_normal_(tv.features[0][0].weight, mode="fan_out")  # as torchvision does
    # Keep torchvision's numbered stages (features.0 … features.8) so its state dict maps 1:1.
    return ClassifierNet(tv.features, tv.avgpool, tv.classifier[0], tv.classifier[1])


# --- ConvNeXt-Tiny (torchvision) --------------------------------------------------------------------


@register("convnext-tiny", "ConvNeXt-Tiny (torchvision) with a 2×2 stride-2 stem: 28 → 14 → 7 → 3 → 1")
def convnext_tiny(num_classes: int, in_channels: int, image_size: int) -> ClassifierNet:
    """ConvNeXt-Tiny; the 4×4/4 patchify stem becomes 2×2/2 so the three downsamplings still fit."""
    from torchvision import models

    tv = models.convnext_tiny(weights=None, num_classes=num_classes)
    stem = tv.features[0][0]
    tv.features[0][0] = nn.Conv2d(in_channels, stem.out_channels, 2, stride=2)
    nn.init.trunc_normal_(tv.features[0][0].weight, std=0.02)  # as torchvision does
    nn.init.zeros_(tv.features[0][0].bias)
    # torchvision's head is LayerNorm2d → Flatten → Linear; LayerNorm2d wants 4-D input, so the
    # norm moves after the flatten as a plain LayerNorm with the same weights and epsilon.
    norm2d = tv.classifier[0]
    norm = nn.LayerNorm(norm2d.normalized_shape, eps=norm2d.eps)
    norm.load_state_dict(norm2d.state_dict())
    return ClassifierNet(tv.features, nn.AdaptiveAvgPool2d(1), norm, tv.classifier[2])


# --- Dilated ----------------------------------------------------------------------------------------


@register("dilated", "dilated-conv net (Yu & Koltun 2016): dilations 1-2-4-8 at one resolution, no pooling")
def dilated(num_classes: int, in_channels: int, image_size: int) -> ClassifierNet:
    """One stride-2 stem, then 3×3 convs with dilation 1, 2, 4, 8 at the same resolution."""
    # Each dilated conv doubles the receptive field without pooling: after the stride-2 stem it is
    # 5 px, then 9, 17, 33, 65, so the last stage sees all of a 28 or 32 px image.
    features = nn.Sequential(
        OrderedDict(
            stem=nn.Sequential(*_conv_bn_act(in_channels, 32), *_conv_bn_act(32, 64, stride=2)),
            dilation1=_conv_bn_act(64, 64, dilation=1),
            dilation2=_conv_bn_act(64, 128, dilation=2),
            dilation4=_conv_bn_act(128, 128, dilation=4),
            dilation8=_conv_bn_act(128, 128, dilation=8),
        )
    )
    model = ClassifierNet(features, nn.AdaptiveAvgPool2d(1), nn.Identity(), nn.Linear(128, num_classes))
    _init_conv_bn(model)
    return model


# --- fast (the default) -----------------------------------------------------------------------------


class FastBlock(nn.Module):
    """conv 3×3 → max-pool 2 → BN → GELU, then a residual conv 3×3 → BN → GELU (ResNet-9 / airbench)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        # Pool before the norm: the norm and activation then run on a quarter of the pixels.
        self.pool = nn.MaxPool2d(2)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Halve the resolution, change the width, add one residual conv."""
        x = self.act(self.bn1(self.pool(self.conv1(x))))
        return x + self.act(self.bn2(self.conv2(x)))


@register("fast", "default: ResNet-9/airbench-style, 3 residual blocks 32-64-128, ~0.3M params, fast on CPU too")
def fast(num_classes: int, in_channels: int, image_size: int, width: float = 0.5) -> ClassifierNet:
    """Small ResNet-9-like net for time-to-accuracy; ``width`` multiplies every channel count."""
    if not width > 0:
        raise UserError(f"fast: width must be positive, got {width!r}")
    stem_width, *widths = (max(8, round(c * width)) for c in (32, 64, 128, 256))
    stages: OrderedDict[str, nn.Module] = OrderedDict(
        stem=_conv_bn_act(in_channels, stem_width, act=nn.GELU),
    )
    channels = stem_width
    for index, block_width in enumerate(widths, start=1):
        stages[f"block{index}"] = FastBlock(channels, block_width)
        channels = block_width
    # The logits are multiplied by 1/8 (the "Mul(0.125)" after the classifier of Page's ResNet-9,
    # airbench's logit scale). Max-pooled features are positive and large (mean ≈ 2 at init),
    # so without it the head moves the logits much faster than the body learns: the scale is a
    # fixed softmax temperature and, for a bias-free head, a lower learning rate for the head alone.
    # With SGD (one-cycle, a high peak lr) it scores clearly better early in training; AdamW does as well
    # either way (README, "Classifiers and training"). It sits in the neck because the head must stay a
    # plain nn.Linear; without a bias the order does not matter.
    model = ClassifierNet(
        nn.Sequential(stages), nn.AdaptiveMaxPool2d(1), Scale(1 / 8), nn.Linear(channels, num_classes, bias=False)
    )
    _init_conv_bn(model)
    return model


# Half width is the default: a CPU step costs a fraction of full width's (README, "Classifiers and training").
@register("fast-wide", "fast at full width: blocks 64-128-256, ~1.2M params, for GPUs and larger data")
def fast_wide(num_classes: int, in_channels: int, image_size: int, width: float = 1.0) -> ClassifierNet:
    """``fast`` with every channel count doubled."""
    return fast(num_classes, in_channels, image_size, width=width)


# --- torchvision state dicts ------------------------------------------------------------------------

_RESNET_KEYS = {
    "conv1.": "features.stem.conv1.",
    "bn1.": "features.stem.bn1.",
    **{f"layer{i}.": f"features.layer{i}." for i in range(1, 5)},
    "fc.": "head.",
}
_TORCHVISION_KEYS: dict[str, dict[str, str]] = {
    "resnet18": _RESNET_KEYS,
    "resnet34": _RESNET_KEYS,
    "efficientnet-b0": {"features.": "features.", "classifier.1.": "head."},
    "convnext-tiny": {"features.": "features.", "classifier.0.": "neck.", "classifier.2.": "head."},
}


def torchvision_key_map(arch: str) -> dict[str, str]:
    """Key prefixes of torchvision's model for ``arch`` → our module's prefixes."""
    if arch not in _TORCHVISION_KEYS:
        raise UserError(
            f"no torchvision weights mapping for {arch!r}; supported: {', '.join(sorted(_TORCHVISION_KEYS))}"
        )
    return dict(_TORCHVISION_KEYS[arch])


def load_torchvision_state(
    model: ClassifierNet, state_dict: Mapping[str, torch.Tensor], arch: str | None = None
) -> list[str]:
    """Copy a torchvision state dict into ``model``; return the torchvision keys that were skipped.

    A key is skipped when it has no counterpart or its shape differs: conv1 of a ResNet (7×7, 3
    channels there, 3×3 here), any stem with another channel count, a head with other classes.
    """
    arch = arch or model.arch
    prefixes = torchvision_key_map(arch)
    own = model.state_dict()
    loaded: dict[str, torch.Tensor] = {}
    skipped: list[str] = []
    for key, value in state_dict.items():
        target = next((ours + key[len(theirs) :] for theirs, ours in prefixes.items() if key.startswith(theirs)), None)
        if target is None or target not in own or own[target].shape != value.shape:
            skipped.append(key)
        else:
            loaded[target] = value
    if not loaded:
        raise UserError(f"none of the {len(state_dict)} tensors fit {arch}; is this a torchvision {arch} state dict?")
    model.load_state_dict(loaded, strict=False)
    return skipped
