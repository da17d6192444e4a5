"""Inception-v3 pool3 features (2048-d) from a local safetensors file, for FID/KID comparable with papers.

Two weight sets are recognised by their keys (``fc.weight``'s rows), never downloaded:

- ``inception-fid``: pytorch-fid's ``pt_inception-2015-12-05`` port of TensorFlow's FID network (1008 classes).
  It is torchvision's ``inception_v3`` skeleton with four blocks changed to behave like TensorFlow's graph:
  average pools that leave the zero padding out of the mean, and a max pool in ``Mixed_7c``'s pool branch;
- ``inception-torchvision``: torchvision's own ImageNet ``inception_v3`` weights (1000 classes, ``AuxLogits``
  ignored). Not the FID network: its numbers do not compare with papers, only with each other.

Images are preprocessed as pytorch-fid does: uint8 → 0..1, grey repeated to RGB, bilinear resize to
299×299 (``align_corners=False``, no antialias), scaled to -1..1. The file is read with safetensors only:
its header is checked against the network's shapes before a single weight is allocated.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.inception import BasicConv2d, Inception3, InceptionA, InceptionC, InceptionE

from augmentor.core.errors import UserError
from augmentor.core.runs import refuse_non_finite
from augmentor.data.imageset import ImageSet

FID = "inception-fid"
TORCHVISION = "inception-torchvision"
NUM_FEATURES = 2048
SIZE = 299
BATCH = 50  # pytorch-fid's default; 299×299 activations make larger CPU batches slower, not faster
# fc rows tell the two weight sets apart: TensorFlow's graph has 1008 classes, torchvision's 1000.
_CLASSES = {FID: 1008, TORCHVISION: 1000}
# The modules from the input to pool3 (fc and dropout are not needed for features).
_STAGES = (
    "Conv2d_1a_3x3",
    "Conv2d_2a_3x3",
    "Conv2d_2b_3x3",
    "maxpool1",
    "Conv2d_3b_1x1",
    "Conv2d_4a_3x3",
    "maxpool2",
    "Mixed_5b",
    "Mixed_5c",
    "Mixed_5d",
    "Mixed_6a",
    "Mixed_6b",
    "Mixed_6c",
    "Mixed_6d",
    "Mixed_6e",
    "Mixed_7a",
    "Mixed_7b",
    "Mixed_7c",
    "avgpool",
)
CONVERT = (
    'convert the .pth once where you trust it: python -c "import torch, safetensors.torch as s; '
    "sd = torch.load('pt_inception-2015-12-05-6726825d.pth', map_location='cpu', weights_only=True); "
    "s.save_file({k: v.contiguous() for k, v in sd.items()}, 'inception-fid.safetensors')\""
)
INCEPTION_FIX = "convert them to grey or RGB with --channels 3"
Images = np.ndarray | torch.Tensor | ImageSet  # uint8 N×C×H×W


def _tf_avg_pool(x: torch.Tensor) -> torch.Tensor:
    # TensorFlow's average pool divides by the pixels inside the image; torchvision's counts the zero padding.
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class FIDInceptionA(InceptionA):
    """torchvision's InceptionA with TensorFlow's average pool in the pool branch."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch5x5 = self.branch5x5_2(self.branch5x5_1(x))
        branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch1x1(x), branch5x5, branch3x3dbl, self.branch_pool(_tf_avg_pool(x))], 1)


class FIDInceptionC(InceptionC):
    """torchvision's InceptionC with TensorFlow's average pool in the pool branch."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch7x7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        branch7x7dbl = self.branch7x7dbl_3(self.branch7x7dbl_2(self.branch7x7dbl_1(x)))
        branch7x7dbl = self.branch7x7dbl_5(self.branch7x7dbl_4(branch7x7dbl))
        return torch.cat([self.branch1x1(x), branch7x7, branch7x7dbl, self.branch_pool(_tf_avg_pool(x))], 1)


def _inception_e(block: InceptionE, x: torch.Tensor, pooled: torch.Tensor) -> torch.Tensor:
    """InceptionE's branches, with the pool branch's input ``pooled`` chosen by the caller."""
    branch3x3 = block.branch3x3_1(x)
    branch3x3dbl = block.branch3x3dbl_2(block.branch3x3dbl_1(x))
    outputs = [
        block.branch1x1(x),
        block.branch3x3_2a(branch3x3),
        block.branch3x3_2b(branch3x3),
        block.branch3x3dbl_3a(branch3x3dbl),
        block.branch3x3dbl_3b(branch3x3dbl),
        block.branch_pool(pooled),
    ]
    return torch.cat(outputs, 1)


class FIDInceptionE1(InceptionE):
    """``Mixed_7b``: torchvision's InceptionE with TensorFlow's average pool in the pool branch."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _inception_e(self, x, _tf_avg_pool(x))


class FIDInceptionE2(InceptionE):
    """``Mixed_7c``: a max pool in the pool branch, as in the graph the published FID statistics came from."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _inception_e(self, x, F.max_pool2d(x, kernel_size=3, stride=1, padding=1))


def _fid_inception_e(in_channels: int) -> InceptionE:
    # Inception3 builds both E blocks with one factory: Mixed_7b takes 1280 channels, Mixed_7c 2048.
    return FIDInceptionE1(in_channels) if in_channels == 1280 else FIDInceptionE2(in_channels)


def build_inception(variant: str = FID) -> Inception3:
    """The Inception-v3 network of ``variant`` (``FID`` or ``TORCHVISION``) with untrained weights, no aux head."""
    if variant not in _CLASSES:
        raise ValueError(f"unknown Inception variant {variant!r}; use {FID!r} or {TORCHVISION!r}")
    blocks = None
    if variant == FID:
        # Inception3's order: conv, A, B, C, D, E, aux (B, D and the unused aux are torchvision's own).
        from torchvision.models.inception import InceptionAux, InceptionB, InceptionD

        blocks = [BasicConv2d, FIDInceptionA, InceptionB, FIDInceptionC, InceptionD, _fid_inception_e, InceptionAux]
    # transform_input=False: the input is scaled to -1..1 here, as both weight sets expect.
    return Inception3(
        num_classes=_CLASSES[variant],
        aux_logits=False,
        transform_input=False,
        inception_blocks=blocks,
        init_weights=False,
    )


def _expected(variant: str) -> dict[str, tuple[int, ...]]:
    """The network's tensor shapes by key, from a network on the meta device (nothing allocated)."""
    with torch.device("meta"):
        network = build_inception(variant)
    return {k: tuple(v.shape) for k, v in network.state_dict().items() if not k.endswith("num_batches_tracked")}


def _header(path: Path) -> dict[str, tuple[tuple[int, ...], str]]:
    """Shape and dtype of every tensor in the safetensors file, from its header alone."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as file:
            header = {}
            for key in file.keys():  # noqa: SIM118 - safe_open is not iterable
                tensor = file.get_slice(key)
                header[key] = (tuple(tensor.get_shape()), tensor.get_dtype())
            return header
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"{path}: not a safetensors file ({reason}); {CONVERT}") from None


def _variant(path: Path, header: dict[str, tuple[tuple[int, ...], str]]) -> str:
    """Which weight set the file holds, told by ``fc.weight``'s shape."""
    fc = header.get("fc.weight", ((), ""))[0]
    for variant, classes in _CLASSES.items():
        if fc == (classes, NUM_FEATURES):
            return variant
    found = f"fc.weight is {'×'.join(map(str, fc))}" if "fc.weight" in header else "it has no fc.weight"
    raise UserError(
        f"{path}: not Inception-v3 weights ({found}; pytorch-fid's has 1008×2048, torchvision's 1000×2048); "
        f"give the whole state dict, {CONVERT}"
    )


def _check(path: Path, variant: str, header: dict[str, tuple[tuple[int, ...], str]]) -> list[str]:
    """The keys to load, after refusing any missing, unexpected, mis-shaped or non-float tensor."""
    expected = _expected(variant)
    # BatchNorm's step counters do not affect inference; torchvision's aux classifier is not used.
    ignored = ("num_batches_tracked",)
    found = {
        k: v
        for k, v in header.items()
        if not k.endswith(ignored) and not (variant == TORCHVISION and k.startswith("AuxLogits."))
    }
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    wrong = [
        f"{k} {'×'.join(map(str, found[k][0]))} (expected {'×'.join(map(str, expected[k]))})"
        for k in sorted(set(expected) & set(found))
        if found[k][0] != expected[k]
    ]
    not_float = sorted(k for k in set(expected) & set(found) if found[k][1] not in ("F16", "BF16", "F32", "F64"))
    problems = [
        f"{what}: {', '.join(items[:3])}{' …' if len(items) > 3 else ''}"
        for what, items in (
            ("missing", missing),
            ("unexpected", unexpected),
            ("wrong shape", wrong),
            ("not floating point", not_float),
        )
        if items
    ]
    if problems:
        raise UserError(
            f"{path}: does not match the {variant} network ({'; '.join(problems)}); save the original state dict "
            f"unchanged, {CONVERT}"
        )
    return sorted(expected)


def load_inception(path: Path | str) -> InceptionFeatures:
    """Inception features from a local safetensors file, checked before any weight is read (see module doc)."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such Inception weights file (nothing is downloaded); {CONVERT}")
    header = _header(path)
    variant = _variant(path, header)
    keys = _check(path, variant, header)
    with torch.device("meta"):  # assign=True below swaps in the file's tensors: nothing is initialised twice
        network = build_inception(variant)
    with safe_open(str(path), framework="pt") as file:
        state = {k: file.get_tensor(k).float() for k in keys}
    refuse_non_finite(state, path, CONVERT)
    state.update(
        {k: torch.zeros((), dtype=torch.long) for k in network.state_dict() if k.endswith("num_batches_tracked")}
    )
    network.load_state_dict(state, strict=True, assign=True)
    return InceptionFeatures(network, variant, path)


class InceptionFeatures(nn.Module):
    """Inception-v3 pool3 features: uint8 N×C×H×W (C = 1 or 3, any size) → float64 N×2048.

    ``features`` takes numpy, torch or an ``ImageSet`` and returns CPU tensors; called as a module (torchmetrics'
    ``feature``), it returns them on the images' device.
    """

    num_features = NUM_FEATURES

    def __init__(self, network: Inception3, variant: str, source: Path | None = None) -> None:
        super().__init__()
        self.network = network.eval().requires_grad_(False)
        self.variant = variant
        self.source = source

    @property
    def description(self) -> str:
        """What the scores were computed in, for results: e.g. ``inception-fid (weights/inception.safetensors)``."""
        return f"{self.variant} ({self.source})" if self.source is not None else self.variant

    @property
    def device(self) -> torch.device:
        return next(self.network.parameters()).device

    def check_images(self, images: Images, what: str = "images", fix: str = INCEPTION_FIX) -> None:
        """Refuse images Inception cannot take (it takes grey or RGB of any size: they are resized to 299×299)."""
        channels = images.channels if isinstance(images, ImageSet) else int(images.shape[1])
        if channels not in (1, 3):
            raise UserError(f"{what}: images have {channels} channels, Inception-v3 takes grey or RGB; {fix}")

    def preprocess(self, batch: torch.Tensor) -> torch.Tensor:
        """uint8 N×C×H×W → float N×3×299×299 in -1..1, as pytorch-fid prepares its input."""
        pixels = batch.float() / 255
        if pixels.shape[1] == 1:
            pixels = pixels.expand(-1, 3, -1, -1)  # grey as RGB, as PIL's convert("RGB") does
        pixels = F.interpolate(pixels, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
        return 2 * pixels - 1

    def pool3(self, inputs: torch.Tensor) -> torch.Tensor:
        """The 2048-d average pool after ``Mixed_7c`` of preprocessed inputs."""
        x = inputs
        for stage in _STAGES:
            x = getattr(self.network, stage)(x)
        return x.flatten(1)

    @torch.inference_mode()
    def features(self, images: Images) -> torch.Tensor:
        """pool3 features per image, float64 N×2048 on the CPU, computed in float32 batch by batch."""
        self.check_images(images)
        array = images.images if isinstance(images, ImageSet) else images
        if array.dtype != (torch.uint8 if isinstance(array, torch.Tensor) else np.uint8):
            raise TypeError(f"Inception features take uint8 images, got {array.dtype}")
        self.network.eval()
        out = [torch.empty(0, NUM_FEATURES, dtype=torch.float64)]
        for start in range(0, len(array), BATCH):
            batch = array[start : start + BATCH]
            if isinstance(batch, np.ndarray):
                # A read-only array (e.g. IDX data mapped from its file) must be copied for torch to wrap it.
                batch = torch.from_numpy(batch if batch.flags.writeable else batch.copy())
            out.append(self.pool3(self.preprocess(batch.to(self.device))).double().cpu())
        return torch.cat(out)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``features`` on the images' device (torchmetrics keeps its sums there)."""
        return self.features(images).to(images.device)
