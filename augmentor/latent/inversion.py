"""Projection of real images into a generator's latent space (GAN inversion / VAE encoding).

A DCGAN has no encoder, so its codes are found by optimisation: Adam on the latent code, started from
several seeded random codes per image (restarts), minimising the pixel MSE in [0, 1] plus, when a
feature classifier fits the images, ``feature_weight`` × the MSE of the classifier's penultimate
features; the restart with the lowest final loss is kept. A VAE starts from its encoder's mean and may
be refined by the same optimisation. The MSE of a random code is reported beside each result as the
baseline a projection has to beat.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from augmentor.core import jsonio
from augmentor.core.errors import UserError
from augmentor.core.limits import RESTARTS, check_count
from augmentor.core.outdir import check_output, staged_output
from augmentor.data.measures import mse, ssim
from augmentor.generative.generator import Generator

LEARNING_RATE = 0.05
FRAMES = 30  # pictures of the optimisation kept for each image's GIF (and the final one)
BASELINE_CODES = 4  # random codes averaged for the random-code MSE


@dataclass
class Projection:
    """One image's projection: the code found, its reconstruction and how close it came."""

    path: Path
    original: np.ndarray  # uint8 C×H×W
    reconstruction: np.ndarray  # uint8 C×H×W
    code: np.ndarray  # float32 (latent_dim,)
    label: int
    mse: float
    ssim: float
    random_code_mse: float
    frames: list[np.ndarray] = field(default_factory=list)  # uint8 C×H×W reconstructions along the optimisation
    frame_steps: list[int] = field(default_factory=list)  # the optimisation step of each frame (empty: no steps)


@dataclass
class ProjectionResult:
    generator: Generator
    images: list[Projection]
    class_name: str | None
    features_run: Path | None
    settings: dict[str, Any] = field(default_factory=dict)
    note: str | None = None

    def summary(self) -> dict[str, Any]:
        """The ``projection.json`` document (also the CLI's ``--json``)."""
        mean = {
            key: float(np.mean([getattr(p, key) for p in self.images])) for key in ("mse", "ssim", "random_code_mse")
        }
        return {
            "run_id": self.generator.run_id,
            "run": self.generator.where,
            "kind": self.generator.kind,
            "features": str(self.features_run) if self.features_run else None,
            "note": self.note,
            **self.settings,
            "mean": mean,
            "images": [
                {
                    "path": str(p.path),
                    "mse": p.mse,
                    "ssim": p.ssim,
                    "random_code_mse": p.random_code_mse,
                    "class": self.class_name,
                }
                for p in self.images
            ],
        }


def read_model_image(generator: Generator, path: Path) -> np.ndarray:
    """One image file as uint8 C×H×W, refused unless it has the model's shape (with a conversion hint)."""
    from augmentor.data.decode import BadImageFile, decode_image

    if not path.is_file():
        raise UserError(f"{path}: no such image file")
    try:
        image = decode_image(path).transpose(2, 0, 1)
    except BadImageFile as exc:
        raise UserError(f"{path}: {exc}") from None
    expected = generator.image_shape
    if image.shape != expected:
        raise UserError(
            f"{path}: image is {'×'.join(map(str, image.shape))} (C×H×W) but the model takes "
            f"{'×'.join(map(str, expected))}; convert it first (e.g. augmentor data export --image-size/--channels)"
        )
    return np.ascontiguousarray(image)


class _FeatureLoss:
    """MSE between a classifier's penultimate features of two [0, 1] batches (gradients flow)."""

    def __init__(self, run: Path, device: torch.device) -> None:
        from augmentor.classifiers.classifier import Classifier

        self.classifier = Classifier.from_run(run).to(device)
        self.classifier.model.requires_grad_(False)  # gradients flow to the pixels only
        self.image_shape = self.classifier.image_shape

    def features(self, pixels01: torch.Tensor) -> torch.Tensor:
        return self.classifier.model.forward_features(self.classifier.standardise(pixels01))

    def __call__(self, pixels01: torch.Tensor, target_features: torch.Tensor) -> torch.Tensor:
        return ((self.features(pixels01) - target_features) ** 2).mean(dim=1)


def _feature_loss(
    generator: Generator, features_run: Path | None, feature_weight: float, device: torch.device
) -> tuple[_FeatureLoss | None, Path | None, str | None]:
    """The feature term: ``--features RUN``, else the shipped classifier when it fits, else none (with a note)."""
    from augmentor.metrics.features import DEFAULT_FEATURES_RUN

    if feature_weight <= 0:
        return None, None, None
    shape = generator.image_shape
    if features_run is not None:
        loss = _FeatureLoss(Path(features_run), device)
        if loss.image_shape != shape:
            raise UserError(
                f"--features {features_run}: the classifier takes {'×'.join(map(str, loss.image_shape))} images, "
                f"the model makes {'×'.join(map(str, shape))}; pass a classifier trained on the model's domain"
            )
        return loss, Path(features_run), None
    if DEFAULT_FEATURES_RUN.is_dir():
        loss = _FeatureLoss(DEFAULT_FEATURES_RUN, device)
        if loss.image_shape == shape:
            return loss, DEFAULT_FEATURES_RUN, None
    return None, None, "pixel loss only: no feature classifier fits these images (pass --features RUN)"


def _optimise(
    module: Any,
    start: torch.Tensor,
    labels: torch.Tensor | None,
    targets: torch.Tensor,
    steps: int,
    feature_weight: float,
    feature_loss: _FeatureLoss | None,
    frames: list[torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Adam on the codes ``start`` (one per row of ``targets``); returns the codes and their final losses.
    With ``frames``, the reconstructions (0..1, every row) at FRAMES points of the way are appended to it."""
    target_features = None
    if feature_loss is not None:
        with torch.no_grad():
            target_features = feature_loss.features(targets)

    def losses(z: torch.Tensor) -> torch.Tensor:
        pixels = module.to_unit(module(z, labels)).clamp(0, 1)
        loss = ((pixels - targets) ** 2).flatten(1).mean(dim=1)
        if feature_loss is not None:
            loss = loss + feature_weight * feature_loss(pixels, target_features)
        return loss

    z = start.clone().requires_grad_(True)
    optimiser = torch.optim.Adam([z], lr=LEARNING_RATE)
    every = max(1, steps // FRAMES)
    for step in range(steps):
        if frames is not None and step % every == 0:
            with torch.no_grad():
                frames.append(module.to_unit(module(z, labels)).clamp(0, 1).cpu())
        optimiser.zero_grad(set_to_none=True)
        losses(z).sum().backward()  # a sum: each code's gradient is its own image's
        optimiser.step()
    with torch.no_grad():
        if frames is not None:
            frames.append(module.to_unit(module(z, labels)).clamp(0, 1).cpu())
        return z.detach(), losses(z)


def _frame_steps(steps: int) -> list[int]:
    """The steps at which ``_optimise`` keeps its frames: every ``steps // FRAMES`` steps, then the last."""
    return [*range(0, steps, max(1, steps // FRAMES)), steps]


def _uint8(pixels01: torch.Tensor) -> np.ndarray:
    """A 0..1 float C×H×W picture as uint8, rounded as decoding rounds."""
    return (pixels01.float() * 255).round().clamp(0, 255).to(torch.uint8).numpy()


def project(
    run: Path,
    image_paths: list[Path],
    *,
    class_name: str | None = None,
    inversion_steps: int = 300,
    restarts: int = 4,
    feature_weight: float = 0.1,
    features_run: Path | None = None,
    refine_steps: int = 0,
    seed: int = 0,
    device: str = "auto",
) -> ProjectionResult:
    """Find a latent code for every image of ``image_paths`` (one class for all of them)."""
    from augmentor.core.device import resolve_device

    if not image_paths:
        raise UserError("give at least one image file to project")
    if inversion_steps < 0 or refine_steps < 0:
        raise UserError("--inversion-steps and --refine-steps must not be negative")
    if restarts < 1:
        raise UserError(f"--restarts must be at least 1, got {restarts}")
    check_count("--restarts", restarts, RESTARTS)
    if feature_weight < 0:
        raise UserError(f"--feature-weight must not be negative, got {feature_weight}")
    generator = Generator.from_run(Path(run))
    if generator.conditional and class_name is None:
        raise UserError(
            f"{generator.where}: the model is conditional; pass --class C for the images "
            f"(one of: {', '.join(generator.class_names)})"
        )
    if not generator.conditional and class_name is not None:
        raise UserError(f"{generator.where}: an unconditional model has no classes; leave out --class {class_name}")
    label = generator.class_index(class_name) if class_name is not None else 0
    originals = np.stack([read_model_image(generator, Path(p)) for p in image_paths])
    device_ = resolve_device(device)

    module = generator.module.to(device_)  # its parameters are frozen: gradients flow to the codes only
    n = len(originals)
    targets = torch.from_numpy(originals).float().to(device_) / 255

    def labels_for(count: int) -> torch.Tensor | None:
        return torch.full((count,), label, dtype=torch.long, device=device_) if generator.conditional else None

    optimise = not generator.can_encode or refine_steps > 0
    feature_loss, used_features, note = (
        _feature_loss(generator, features_run, feature_weight, device_) if optimise else (None, None, None)
    )
    if not generator.can_encode:
        starts = generator.latents(np.arange(BASELINE_CODES, BASELINE_CODES + n * restarts), seed).to(device_)
        repeated = targets.repeat(restarts, 1, 1, 1)  # row r·n + i is restart r of image i
        snapshots: list[torch.Tensor] = []
        codes, losses = _optimise(
            module, starts, labels_for(n * restarts), repeated, inversion_steps, feature_weight, feature_loss, snapshots
        )
        best = losses.view(restarts, n).argmin(dim=0)
        codes = codes.view(restarts, n, -1)[best, torch.arange(n, device=device_)]
        kept = (best.cpu() * n + torch.arange(n)).tolist()  # each image's best restart's rows
        frames = [[_uint8(shot[row]) for shot in snapshots] for row in kept]
        settings = {"steps": inversion_steps, "restarts": restarts}  # projection.json's key, kept as written
        steps = inversion_steps
    else:
        codes = generator.encode(originals, labels_for(n), device=device_).to(device_)
        snapshots = []
        if refine_steps:
            codes, _ = _optimise(
                module, codes, labels_for(n), targets, refine_steps, feature_weight, feature_loss, snapshots
            )
        frames = [[_uint8(shot[i]) for shot in snapshots] for i in range(n)]
        settings = {"refine_steps": refine_steps}
        steps = refine_steps
    settings.update({"feature_weight": feature_weight if feature_loss is not None else 0.0, "seed": seed})

    reconstructions = generator.decode(codes, labels_for(n), device=device_)
    baseline = generator.decode(
        generator.latents(np.arange(BASELINE_CODES), seed), labels_for(BASELINE_CODES), device=device_
    )
    images = [
        Projection(
            path=Path(path),
            original=originals[i],
            reconstruction=reconstructions[i],
            code=codes[i].float().cpu().numpy(),
            label=label,
            mse=mse(originals[i], reconstructions[i]),
            ssim=ssim(originals[i], reconstructions[i]),
            random_code_mse=float(np.mean([mse(originals[i], random) for random in baseline])),
            frames=frames[i] or [reconstructions[i]],
            frame_steps=_frame_steps(steps) if frames[i] else [],
        )
        for i, path in enumerate(image_paths)
    ]
    return ProjectionResult(generator, images, class_name, used_features, settings, note)


def project_run(
    run: Path,
    image_paths: list[Path],
    out: Path,
    *,
    class_name: str | None = None,
    inversion_steps: int = 300,
    restarts: int = 4,
    feature_weight: float = 0.1,
    features_run: Path | None = None,
    refine_steps: int = 0,
    seed: int = 0,
    device: str = "auto",
    overwrite: bool = False,
) -> ProjectionResult:
    """``augmentor project``: refuse a taken ``out`` first, then project the images and write the folder."""
    check_output(out, overwrite, reads=[run, features_run, *image_paths])  # before the optimisation (minutes)
    result = project(
        run,
        image_paths,
        class_name=class_name,
        inversion_steps=inversion_steps,
        restarts=restarts,
        feature_weight=feature_weight,
        features_run=features_run,
        refine_steps=refine_steps,
        seed=seed,
        device=device,
    )
    write_projection(result, out, overwrite)
    return result


def write_projection(result: ProjectionResult, out: Path, overwrite: bool = False) -> Path:
    """``codes.safetensors``, ``projection.json`` and ``reconstructions.png`` in a folder that appears whole."""
    from safetensors.torch import save_file

    from augmentor.report.grids import grid_picture, grid_png, image_png, labelled_gif_bytes

    with staged_output(out, overwrite) as staging:
        save_file(
            {
                "codes": torch.from_numpy(np.stack([p.code for p in result.images])).contiguous(),
                "labels": torch.tensor([p.label for p in result.images], dtype=torch.int64),
            },
            str(staging / "codes.safetensors"),
        )
        (staging / "projection.json").write_text(jsonio.dumps(result.summary(), indent=2, ensure_ascii=False) + "\n")
        rows = [[p.original, p.reconstruction] for p in result.images]
        title = f"reconstructions ({result.generator.kind})" + (
            f", class {result.class_name}" if result.class_name else ""
        )
        names = [f"{k:03d} {p.path.name}" for k, p in enumerate(result.images)]  # as images/NNN-NAME: unique
        grid = grid_png(rows, row_labels=names, column_labels=["original", "reconstructed"], title=title)
        (staging / "reconstructions.png").write_bytes(grid)
        # Per image, as StyleGAN's projector writes them: the target, the projection, the optimisation.
        for k, p in enumerate(result.images):
            folder = staging / "images" / f"{k:03d}-{p.path.stem}"
            folder.mkdir(parents=True)
            (folder / "target.png").write_bytes(image_png(p.original))
            (folder / "projected.png").write_bytes(image_png(p.reconstruction))
            steps = p.frame_steps[-1] if p.frame_steps else 0
            captions = [f"step {s} of {steps}" for s in p.frame_steps] or [f"encoder ({result.generator.kind})"]
            frames = [  # target | code so far, step by step
                grid_picture([[p.original, frame]], column_labels=["target", "projected"], title=caption)
                for frame, caption in zip(p.frames, captions, strict=True)
            ]
            (folder / "optimisation.gif").write_bytes(labelled_gif_bytes(frames, duration_ms=100))
    return out
