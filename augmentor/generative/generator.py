"""The ``Generator``: a trained DCGAN or VAE as one object — load a run, draw codes, decode, encode, generate.

Training (``generative.train``) returns one and ``Generator.from_run`` loads the same one; every consumer
(sampling, the latent tools, expansion, metrics, the gain experiment) uses it. Loading builds the modules
through the kinds registry and never imports the training module.

Latent codes are drawn in fixed chunks of ``CHUNK`` codes, chunk ``k`` from a generator seeded by
(seed, k), so image ``i`` of a seed is the same whatever the batch size or device batch, and the
manifest's ``latent_index`` names exactly one code.
"""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np

from augmentor.core.errors import UserError
from augmentor.core.limits import SEEDS
from augmentor.core.runs import WEIGHTS_NAME, load_matching, read_run_config, read_weights
from augmentor.data.imageset import ImageSet
from augmentor.generative.kinds import KINDS

if TYPE_CHECKING:
    from collections.abc import Callable, Collection

    import torch
    from torch.overrides import TorchFunctionMode

CHUNK = 1024
ENCODE_BATCH = 512
# A CPU renders a batch in pieces whose widest feature map (float32) stays within this: a whole 256-row batch
# at 28 px still page-faulted at times where 128-row pieces did not, and at 64 px small pieces ran faster than
# whole batches (figures in the README, "Scaling out").
PIECE_BYTES = 8 << 20
MIN_PIECE = 16  # checked to give their batch's bits; MKL takes another path for 1-5 rows, with other bits
Labels: TypeAlias = "np.ndarray | torch.Tensor | None"  # class numbers, or N×K class weights (a blend of classes)
Device: TypeAlias = "str | torch.device"  # a name as --device takes it, or a device


def _device(device: Device) -> torch.device:
    import torch

    from augmentor.core.device import resolve_device

    return resolve_device(device) if isinstance(device, str) else torch.device(device)


def decode_batch(device: Device) -> int:
    """Codes ``decode`` renders per batch by default. An image's last bits may depend on its batch's size,
    so work split at multiples of this (``sample`` under torchrun) gives the bytes of one call."""
    # Large batches feed a GPU. On a CPU, 256 is only the unit that fixes the bytes: it runs in pieces.
    return 4096 if _device(device).type == "cuda" else 256


@functools.cache
def _keep_freed_memory() -> None:
    """Have glibc keep freed activations in the heap for the next piece instead of returning them.

    glibc serves blocks above its mmap threshold with mmap and gives the heap's free top back above its
    trim threshold; freeing an mmapped block raises both (to its size and twice that), up to a 32 MiB cap
    (mallopt(3)). Left low, every piece's buffers came back as fresh zeroed pages: minor page faults on every
    image and much of the CPU time in the kernel (README, "Scaling out"). This block is allocated and freed
    untouched; other allocators just map and unmap it."""
    import torch

    torch.empty(30 << 20, dtype=torch.uint8)  # freed at once, which raises the thresholds


@functools.cache
def _bias_after_mode() -> type[TorchFunctionMode]:
    """A torch function mode in which a transposed convolution runs without its bias, added afterwards.

    oneDNN adds a transposed convolution's bias in a reference (scalar) loop over channels padded to 16: for
    the DCGAN's 1-channel output layer a third of that layer's time, and every VAE decoder layer has a bias.
    Added afterwards it is the same one float addition per element, so the bits are the same."""
    import torch
    from torch.overrides import TorchFunctionMode

    class BiasAfter(TorchFunctionMode):
        def __torch_function__(
            self,
            func: Callable[..., Any],
            types: Collection[type],
            args: tuple[Any, ...] = (),
            kwargs: dict[str, Any] | None = None,
        ) -> Any:
            # nn.ConvTranspose2d passes (input, weight, bias, stride, padding, output_padding, groups, dilation).
            if func is torch.conv_transpose2d and len(args) > 2 and args[2] is not None and not kwargs:
                return func(args[0], args[1], None, *args[3:]).add_(args[2].view(-1, 1, 1))
            return func(*args, **(kwargs or {}))

    return BiasAfter


class Generator:
    """A trained sampling module (eval mode, frozen) and its run config: codes ↔ images, labelled samples."""

    def __init__(self, module: torch.nn.Module, config: dict[str, Any], run: Path | None = None) -> None:
        self.module = module
        self.config = config
        self.run = run  # None for one training kept in memory without writing a folder
        self._kind = KINDS[config["kind"]]

    @classmethod
    def from_run(cls, run: Path | str) -> Generator:
        """Load a DCGAN or VAE run folder (weights checked tensor by tensor)."""
        import augmentor.classifiers  # noqa: F401  (registers the classifier kind: its runs are named, not unknown)

        run = Path(run)
        config = read_run_config(run)
        if config.get("kind") not in KINDS:
            raise UserError(f"{run}: is a {config.get('kind')!r} run; a {' or '.join(KINDS)} run is needed here")
        return cls.from_weights(config, read_weights(run), run, str(run / WEIGHTS_NAME))

    @classmethod
    def from_weights(
        cls, config: dict[str, Any], weights: dict[str, Any], run: Path | None = None, source: str = "weights"
    ) -> Generator:
        """Build the sampling module that ``config`` describes and load ``weights`` into it (a CPU copy)."""
        kind = KINDS[config["kind"]]
        # Every module of the kind is built, as training builds them, so the global RNG advances alike.
        module = kind.build(config["model_args"])[kind.sampler]
        load_matching(module, weights, source)
        return cls(module.eval().requires_grad_(False), config, run)

    @property
    def kind(self) -> str:
        """``dcgan`` or ``vae``: the manifest's source name, and a key of the kinds registry."""
        return self._kind.name

    @property
    def can_encode(self) -> bool:
        """Whether ``encode`` works (a VAE); a DCGAN's images go through inversion instead."""
        return self._kind.can_encode

    @property
    def class_names(self) -> list[str]:
        """The classes it was trained on, in label order."""
        return self.config["class_names"]

    @property
    def conditional(self) -> bool:
        """Whether it takes a class with each code."""
        return bool(self.config["conditional"])

    @property
    def latent_dim(self) -> int:
        """The length of a latent code."""
        return int(self.config["model_args"]["latent_dim"])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """C×H×W of the images it makes (and, for encoding, takes)."""
        channels, height, width = (int(v) for v in self.config["image_shape"])
        return channels, height, width

    @property
    def internal_size(self) -> int:
        """The side its networks work at: the images are made there and resized to ``image_shape`` if it differs."""
        return int(self.module.internal_size)

    @property
    def size_record(self) -> dict[str, Any]:
        """What manifests record of its sizes: the internal side, and how images were resized when they were."""
        side = self.image_shape[1]
        record: dict[str, Any] = {"internal_size": self.internal_size}
        if self.internal_size != side:
            record["resized"] = (
                f"made at {self.internal_size}×{self.internal_size} and resized to {side}×{side} "
                "(bilinear, antialiased)"
            )
        return record

    @property
    def fingerprint(self) -> str:
        """The fingerprint of the dataset it was trained on."""
        return self.config["dataset"]["fingerprint"]

    @property
    def where(self) -> str:
        """The run folder as text for messages, or what stands in for it when none was written."""
        return str(self.run) if self.run is not None else f"the in-memory {self.kind}"

    @property
    def run_id(self) -> str:
        """``kind:fingerprint:run-name``, recorded in manifests and checked by saved directions."""
        name = self.run.name if self.run is not None else "in-memory"
        return f"{self.kind}:{self.fingerprint[:12]}:{name}"

    def class_index(self, name: str) -> int:
        """The label of class ``name`` (or of a class number), with the known classes on error."""
        if name in self.class_names:
            return self.class_names.index(name)
        if name.isdigit() and int(name) < len(self.class_names):
            return int(name)
        raise UserError(
            f"{self.where}: the model does not know class {name!r}; it knows: {', '.join(self.class_names)}"
        )

    def latents(self, indices: np.ndarray, seed: int, truncation: float | None = None) -> torch.Tensor:
        """The latent codes at ``indices`` of the seed's stream (truncated to ±t when given)."""
        import torch

        indices = np.asarray(indices, dtype=np.int64)
        codes = torch.empty(len(indices), self.latent_dim)
        for chunk in np.unique(indices // CHUNK):
            generator = torch.Generator().manual_seed(seed * 100_003 + int(chunk))
            block = torch.empty(CHUNK, self.latent_dim)
            if truncation:
                torch.nn.init.trunc_normal_(block, 0.0, 1.0, -truncation, truncation, generator=generator)
            else:
                block.normal_(generator=generator)
            where = np.nonzero(indices // CHUNK == chunk)[0]
            codes[torch.from_numpy(where)] = block[torch.from_numpy(indices[where] % CHUNK)]
        return codes

    def _labels(self, labels: Labels, start: int, stop: int, target: torch.device) -> torch.Tensor | None:
        """Rows start…stop of ``labels`` (class numbers or weights) on ``target``; None when unconditional."""
        import torch

        if labels is None or not self.conditional:
            return None
        return torch.as_tensor(labels[start:stop]).to(target)

    def _cpu_piece(self) -> int:
        """Rows per forward pass on a CPU: the most (a power of two, 16 to 256) whose widest feature map fits
        ``PIECE_BYTES``, so that a piece's activations stay in cache and in the heap."""
        module = self.module
        widest = 4 * max(width * (module.base << k) ** 2 for k, width in enumerate(module.widths))
        rows = 256
        while rows > MIN_PIECE and rows * widest > PIECE_BYTES:
            rows //= 2
        return rows

    def decode(
        self, codes: torch.Tensor, labels: Labels = None, *, device: Device = "auto", batch_size: int | None = None
    ) -> np.ndarray:
        """Latent codes (+ labels, or N×K class weights) → uint8 N×C×H×W images, in batches on ``device``."""
        import torch

        target = _device(device)
        self.module.to(target)
        cuda = target.type == "cuda"
        batch_size = batch_size or decode_batch(target)
        piece = batch_size if cuda else self._cpu_piece()
        if not cuda:
            _keep_freed_memory()
        conv_mode = contextlib.nullcontext() if cuda else _bias_after_mode()()
        # Filled in place: no per-piece results left in the heap between the pieces' freed buffers, and no
        # copy to join them at the end.
        out = torch.empty((len(codes), *self.image_shape), dtype=torch.uint8)
        with torch.inference_mode(), torch.autocast(target.type, torch.bfloat16, enabled=cuda):
            for first in range(0, len(codes), batch_size):
                rows = min(batch_size, len(codes) - first)
                # A row gets the same bits from a piece as from its whole batch where the batch is whole
                # pieces of 16 rows or more (checked: DCGAN and VAE, 28 to 64 px, 1 and 2 threads); any other
                # batch (the last one, say) runs whole, as before, since a few sizes give other bits.
                step = piece if rows % piece == 0 else rows
                for start in range(first, first + rows, step):
                    z = codes[start : start + step].to(target, non_blocking=True)
                    y = self._labels(labels, start, start + step, target)
                    with conv_mode:
                        raw = self.module(z, y)
                    pixels = self.module.to_unit(raw).clamp_(0, 1)
                    out[start : start + step] = pixels.mul_(255).round_().to(torch.uint8)
        return out.numpy()

    def posterior(
        self, images: np.ndarray, labels: Labels = None, *, device: Device = "auto", batch_size: int = ENCODE_BATCH
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 N×C×H×W images → the encoder's means and log-variances (float32, on the CPU)."""
        import torch

        if not self.can_encode:
            raise UserError(
                f"{self.where}: a {self.kind} has no encoder; its images go through inversion (augmentor project)"
            )
        target = _device(device)
        self.module.to(target)
        means, log_variances = [], []
        with torch.inference_mode():
            for start in range(0, len(images), batch_size):
                # IDX data is a read-only view of the file's bytes; torch wants a writable array to wrap.
                batch = np.require(images[start : start + batch_size], requirements="W")
                pixels = torch.from_numpy(batch).to(target).float() / 255
                y = self._labels(labels, start, start + batch_size, target)
                mu, logvar = self.module.encode(pixels, y)
                means.append(mu.float().cpu())
                log_variances.append(logvar.float().cpu())
        if not means:
            return torch.zeros(0, self.latent_dim), torch.zeros(0, self.latent_dim)
        return torch.cat(means), torch.cat(log_variances)

    def encode(
        self, images: np.ndarray, labels: Labels = None, *, device: Device = "auto", batch_size: int = ENCODE_BATCH
    ) -> torch.Tensor:
        """uint8 N×C×H×W images → their latent codes, the encoder's means (float32, on the CPU)."""
        return self.posterior(images, labels, device=device, batch_size=batch_size)[0]

    def generate(
        self,
        labels: np.ndarray,
        seed: int,
        *,
        truncation: float | None = None,
        device: Device = "auto",
        first_index: int = 0,
        psi: float | None = None,
    ) -> ImageSet:
        """One image per entry of ``labels`` (latent indices first_index…), with provenance. ``psi`` < 1 pulls
        every code toward the prior's mean (StyleGAN's ψ truncation: z ← ψ·z), fidelity over variety."""
        labels = np.asarray(labels, dtype=np.int64)
        if not self.conditional and len(self.class_names) > 1:
            raise UserError(
                f"{self.where}: an unconditional model cannot make images of a chosen class; "
                "train it with --conditional, or sample without --class / --per-class"
            )
        indices = np.arange(first_index, first_index + len(labels))
        codes = self.latents(indices, seed, truncation)
        if psi is not None:
            codes = codes * psi
        images = self.decode(codes, labels, device=device)
        return ImageSet(images, labels, list(self.class_names), self.provenance(indices, seed, psi))

    def provenance(self, indices: np.ndarray, seed: int, psi: float | None = None) -> list[dict]:
        """The provenance ``generate`` gives the images of latent ``indices`` (known before they are made)."""
        extra = {} if psi is None else {"psi": psi}
        return [
            {"source": self.kind, "run_id": self.run_id, "seed": seed, "latent_index": int(i), **extra} for i in indices
        ]


def parse_seeds(text: str, flag: str = "--seeds") -> list[int]:
    """``1,2,3``, ``0-35`` or ``0-3,10`` (StyleGAN's habit) → the seeds, in order, each in 0..2³²−1."""
    seeds: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        low, dash, high = part.partition("-")
        try:
            first, last = int(low), int(high) if dash else int(low)
        except ValueError:
            raise UserError(f"{flag} {text!r}: give seeds like 1,2,3 or a range 0-35") from None
        if not 0 <= first <= last <= 2**32 - 1:
            raise UserError(f"{flag} {text!r}: {part} is not a range of seeds in 0..{2**32 - 1} (low-high)")
        if len(seeds) + last - first + 1 > SEEDS.value():
            raise UserError(
                f"{flag} {text!r}: more than {SEEDS.value():,} seeds; use --n for many images, or {SEEDS.lift()}"
            )
        seeds.extend(range(first, last + 1))
    if not seeds:
        raise UserError(f"{flag} {text!r}: give seeds like 1,2,3 or a range 0-35")
    return seeds


def balanced_labels(num_classes: int, per_class: int) -> np.ndarray:
    """``per_class`` of every class, interleaved (0,1,…,K−1,0,1,…) so any prefix stays balanced."""
    return np.tile(np.arange(num_classes), per_class)
