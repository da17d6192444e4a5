"""DCGAN and VAE run folders as library calls: train one, load one, and generate labelled images from it.

Latent codes are drawn in fixed chunks of ``CHUNK`` codes, chunk ``k`` from a generator seeded by
(seed, k), so image ``i`` of a seed is the same whatever the batch size or device batch, and the
manifest's ``latent_index`` names exactly one code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from augmentor.core.errors import UserError
from augmentor.core.runs import load_matching, read_run_config, read_weights
from augmentor.data.imageset import ImageSet
from augmentor.data.options import ReadOptions
from augmentor.data.readers import open_dataset

GENERATIVE_KINDS = ("dcgan", "vae")
CHUNK = 1024


def train_run(
    src: str,
    config: Any,
    out: Path,
    *,
    read_options: ReadOptions | None = None,
    resume: bool = False,
    overwrite: bool = False,
    command: str = "",
) -> Any:
    """Read ``src``'s train split and train (or resume) a DCGAN / VAE run folder at ``out``."""
    from augmentor.generative.train import train_generative

    dataset = open_dataset(src, read_options or ReadOptions())
    return train_generative(dataset.train, config, out, resume=resume, overwrite=overwrite, command=command)


@dataclass
class LoadedGenerator:
    """A generative run ready to sample: the sampling module and its config."""

    module: Any
    config: dict[str, Any]
    run: Path

    @property
    def kind(self) -> str:
        return self.config["kind"]

    @property
    def class_names(self) -> list[str]:
        return self.config["class_names"]

    @property
    def conditional(self) -> bool:
        return bool(self.config["conditional"])

    @property
    def latent_dim(self) -> int:
        return int(self.config["model_args"]["latent_dim"])

    @property
    def run_id(self) -> str:
        return f"{self.kind}:{self.config['dataset']['fingerprint'][:12]}:{self.run.name}"

    def class_index(self, name: str) -> int:
        """The label of class ``name`` (or of a class number), with the known classes on error."""
        if name in self.class_names:
            return self.class_names.index(name)
        if name.isdigit() and int(name) < len(self.class_names):
            return int(name)
        raise UserError(f"{self.run}: the model does not know class {name!r}; it knows: {', '.join(self.class_names)}")

    def latents(self, indices: np.ndarray, seed: int, truncation: float | None = None) -> Any:
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

    def render(self, z: Any, labels: np.ndarray | None, device: Any, batch_size: int | None = None) -> np.ndarray:
        """Latent codes (+ labels) → uint8 N×C×H×W images, generated in batches on ``device``."""
        import torch

        self.module.to(device)
        cuda = torch.device(device).type == "cuda"
        # Large batches feed a GPU; on a CPU they fall out of cache (4,096 ran at half the rate of 256).
        batch_size = batch_size or (4096 if cuda else 256)
        out = []
        with torch.inference_mode(), torch.autocast(torch.device(device).type, torch.bfloat16, enabled=cuda):
            for start in range(0, len(z), batch_size):
                codes = z[start : start + batch_size].to(device, non_blocking=True)
                y = None
                if self.conditional:
                    y = torch.from_numpy(np.asarray(labels[start : start + batch_size])).to(device)
                pixels = self.module.to_unit(self.module(codes, y)).clamp_(0, 1)
                out.append(pixels.mul_(255).round_().to(torch.uint8).cpu())
        return torch.cat(out).numpy() if out else np.zeros((0, *self.config["image_shape"]), np.uint8)

    def generate(
        self,
        labels: np.ndarray,
        seed: int,
        *,
        truncation: float | None = None,
        device: str = "auto",
        first_index: int = 0,
    ) -> ImageSet:
        """One image per entry of ``labels`` (latent indices first_index…), with provenance."""
        from augmentor.core.device import resolve_device

        labels = np.asarray(labels, dtype=np.int64)
        if not self.conditional and len(self.class_names) > 1:
            raise UserError(
                f"{self.run}: an unconditional model cannot make images of a chosen class; "
                "train it with --conditional, or sample without --class / --per-class"
            )
        indices = np.arange(first_index, first_index + len(labels))
        images = self.render(self.latents(indices, seed, truncation), labels, resolve_device(device))
        provenance = [
            {"source": self.kind, "run_id": self.run_id, "seed": seed, "latent_index": int(i)} for i in indices
        ]
        return ImageSet(images, labels, list(self.class_names), provenance)


def load_generator(run: Path) -> LoadedGenerator:
    """Rebuild the sampling module of a DCGAN or VAE run folder (weights checked tensor by tensor)."""
    from augmentor.generative.train import build_models, sampling_module_name

    config = read_run_config(run)
    if config.get("kind") not in GENERATIVE_KINDS:
        raise UserError(f"{run}: is a {config.get('kind')!r} run; a dcgan or vae run is needed here")
    module = build_models(config["kind"], config["model_args"])[sampling_module_name(config["kind"])]
    load_matching(module, read_weights(run), str(run / "model.safetensors"))
    return LoadedGenerator(module.eval(), config, run)


def balanced_labels(num_classes: int, per_class: int) -> np.ndarray:
    """``per_class`` of every class, interleaved (0,1,…,K−1,0,1,…) so any prefix stays balanced."""
    return np.tile(np.arange(num_classes), per_class)
