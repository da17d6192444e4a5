"""One registry of classifier architectures: ``@register`` a factory, ``create_model`` by name."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from augmentor.core.errors import UserError
from augmentor.core.limits import CLASSES, check_count

if TYPE_CHECKING:
    from augmentor.classifiers.architectures import ClassifierNet

Factory = Callable[..., "ClassifierNet"]


@dataclass(frozen=True)
class ArchInfo:
    """What ``list_archs`` shows about one architecture."""

    name: str
    summary: str
    min_size: int


@dataclass(frozen=True)
class _Entry:
    info: ArchInfo
    factory: Factory


_REGISTRY: dict[str, _Entry] = {}
# Every factory takes these three; anything else it accepts is an option (e.g. `width` for fast).
_POSITIONAL = ("num_classes", "in_channels", "image_size")


def register(name: str, summary: str, min_size: int = 16) -> Callable[[Factory], Factory]:
    """Decorator: register ``factory(num_classes, in_channels, image_size, **options) -> ClassifierNet``."""

    def decorate(factory: Factory) -> Factory:
        if name in _REGISTRY:
            raise ValueError(f"architecture {name!r} is registered twice")
        _REGISTRY[name] = _Entry(ArchInfo(name, summary, min_size), factory)
        return factory

    return decorate


def _entries() -> dict[str, _Entry]:
    """The registry, filled on first use (imported here, not at the top, because it imports us)."""
    import augmentor.classifiers.architectures  # noqa: F401  (registers every architecture)

    return _REGISTRY


def _lookup(name: str) -> _Entry:
    entries = _entries()
    # Forgive case and underscores: "ConvNeXt_Tiny" is what people type after reading torchvision.
    key = str(name).strip().lower().replace("_", "-")
    if key not in entries:
        raise UserError(f"unknown architecture {name!r}; known: {', '.join(sorted(entries))}")
    return entries[key]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def create_model(name: str, num_classes: int, in_channels: int, image_size: int, **options: Any) -> ClassifierNet:
    """Build architecture ``name`` (randomly initialised) for the given classes, channels and size."""
    entry = _lookup(name)
    arch = entry.info.name
    if not _is_int(num_classes) or num_classes < 2:
        raise UserError(f"{arch}: num_classes must be an integer of at least 2, got {num_classes!r}")
    if in_channels not in (1, 3) or not _is_int(in_channels):
        raise UserError(
            f"{arch}: in_channels must be 1 (grey) or 3 (colour), got {in_channels!r}; "
            "convert the images with --channels 1|3"
        )
    if not _is_int(image_size) or image_size < entry.info.min_size:
        raise UserError(
            f"{arch} needs images of at least {entry.info.min_size}×{entry.info.min_size} px, "
            f"got {image_size!r}; resize them with --image-size N"
        )
    if options:
        accepted = [p for p in inspect.signature(entry.factory).parameters if p not in _POSITIONAL]
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            raise UserError(
                f"{arch} has no option {', '.join(map(repr, unknown))}; its options: {', '.join(accepted) or 'none'}"
            )
    model = entry.factory(num_classes, in_channels, image_size, **options)
    model.arch = arch
    return model


def list_archs() -> list[ArchInfo]:
    """Every registered architecture, sorted by name."""
    return [entry.info for _, entry in sorted(_entries().items())]


def describe_archs(in_channels: int = 1, image_size: int = 28, num_classes: int = 10) -> list[dict]:
    """``augmentor classify archs``: every architecture described at one input shape, ``arch`` first."""
    from augmentor.data.options import check_channels

    check_channels(in_channels)  # before any model is built
    check_count("--num-classes", num_classes, CLASSES)
    return [
        {"arch": info.name, **describe_arch(info.name, in_channels, image_size, num_classes)} for info in list_archs()
    ]


def describe_arch(name: str, in_channels: int = 1, image_size: int = 28, num_classes: int = 10) -> dict:
    """Name, summary, trainable parameter count and forward FLOPs for one image of the given shape."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    info = _lookup(name).info
    model = create_model(info.name, num_classes, in_channels, image_size).eval()
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, in_channels, image_size, image_size))
    return {
        "name": info.name,
        "summary": info.summary,
        "min_size": info.min_size,
        "in_channels": in_channels,
        "image_size": image_size,
        "num_classes": num_classes,
        "params": int(params),
        # Convolutions and matrix products (2 FLOPs per multiply-add); norms, pools, activations not counted.
        "flops": int(counter.get_total_flops()),
    }
