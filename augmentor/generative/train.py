"""DCGAN and VAE training: data resident on the device, exact resume, signal-safe, NaN rollback.

Every random draw of step ``s`` comes from a generator seeded by (seed, s, rollbacks) and every batch
from a per-epoch permutation seeded by (seed, epoch). The whole random state is therefore the step
counter: a run resumed from its state file replays exactly what an uninterrupted run would have done
(bit-identical on CPU).

The run folder is updated in place at every checkpoint, each file written to a temporary name and
renamed: ``config.json``, ``model.safetensors`` (the weights sampling uses: the EMA generator when EMA
is on), ``state.safetensors`` + ``state.json`` (raw weights, optimisers, step), ``metrics.jsonl``,
``samples/step-NNNNNN.png`` and ``losses.png``. Without a folder nothing is written. Either way training
returns the ``Generator`` that ``Generator.from_run`` would load from the folder.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Callable, Collection, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from augmentor import __version__
from augmentor.core import jsonio
from augmentor.core.console import warn
from augmentor.core.device import resolve_device, to_device
from augmentor.core.errors import UserError
from augmentor.core.limits import MODEL_WIDTH, check_count
from augmentor.core.outdir import check_output, write_file_atomic
from augmentor.core.runs import (
    CONFIG_NAME,
    METRICS_NAME,
    RUN_FORMAT_VERSION,
    WEIGHTS_NAME,
    claim_run_folder,
    never_checkpointed,
    read_run_config,
)
from augmentor.data.imageset import ImageSet, fingerprint
from augmentor.data.measures import mean_pairwise_ssim
from augmentor.data.options import ReadOptions
from augmentor.data.readers import open_dataset
from augmentor.distributed import data_parallel
from augmentor.distributed.context import current
from augmentor.generative.generator import Generator
from augmentor.generative.kinds import StepInputs, get_kind
from augmentor.generative.layers import check_size, internal_size
from augmentor.generative.transfer import check_fits, init_config, warm_start
from augmentor.report.plots import losses_png
from augmentor.training import checkpoint as checkpoints
from augmentor.training.ema import WeightAverage
from augmentor.training.loop import Plan, Progress, fit
from augmentor.training.resume import check_resume_flags, was_given

DEFAULT_EPOCHS = 20.0
DEFAULT_MIN_STEPS = 600
MAX_AUGMENT_COPIES = 100
GAN_LOSSES = ("non-saturating", "hinge")


@dataclass(frozen=True)
class GenerativeConfig:
    """``augmentor train dcgan|vae`` options (field names = flag names)."""

    kind: str = "dcgan"
    conditional: bool | None = None  # None: conditional when the data has more than one class
    latent_dim: int | None = None  # None: the kind's (64 for the DCGAN, 32 for the VAE)
    width: int = 64
    steps: int | None = None
    epochs: float | None = None
    batch_size: int = 64
    lr: float | None = None  # generator / VAE; None: the kind's (2e-4 for the DCGAN, 1e-3 for the VAE)
    lr_d: float = 2e-4
    # The DCGAN's adversarial loss: "non-saturating" (Goodfellow et al.) or "hinge" (Miyato & Koyama's pairing with a
    # projection discriminator).
    gan_loss: str = "non-saturating"
    # The VAE's KL weight. 0.1, not the plain VAE's 1: measured better both on the full Fashion-MNIST train split
    # (FID 14.5×F0 from the prior, 9.1× from density codes, against 19.9× at β 1) and at 10 images per class
    # (CAS on validation 69.2 against 68.5 %, no class of samples collapsed to one image; weights/MODEL_CARD.md).
    beta: float = 0.1
    ema: float | None = None  # EMA decay of the sampling module; None: the kind's (DCGAN 0.999, VAE 0: off)
    diffaugment: bool = False
    # Adaptive DiffAugment: the target of the discriminator's mean sign on real images (StyleGAN2-ADA: 0.6);
    # the augmentations' probability adapts from 0. None: DiffAugment as --diffaugment says (all or nothing).
    ada_target: float | None = None
    seed: int = 0
    device: str = "auto"
    sample_every: int = 500
    log_every: int = 50
    max_nonfinite: int = 3  # rollbacks allowed before the run stops
    init: str | None = None  # a run of the same kind to start from (transfer.warm_start); None: from scratch
    # Classic-augmented copies as training data (a preset or pipeline file; a few images are too few to learn a
    # density from): ``augment_copies`` copies of every image beside it, made once from the seed. None: the images.
    augment: str | None = None
    augment_copies: int = 9
    flip: bool = True  # False: --augment's pipeline loses its mirroring transforms (digits, text)

    def __post_init__(self) -> None:
        for flag, size in (("--width", self.width), ("--latent-dim", self.latent_dim)):
            check_count(flag, size, MODEL_WIDTH)  # before the data is read: such a model would not fit anyway
        if self.gan_loss not in GAN_LOSSES:
            raise UserError(f"--gan-loss {self.gan_loss}: give one of {', '.join(GAN_LOSSES)}")
        if not 1 <= self.augment_copies <= MAX_AUGMENT_COPIES:
            raise UserError(f"--augment-copies {self.augment_copies}: give 1..{MAX_AUGMENT_COPIES}")

    def resolved(self, num_classes: int) -> GenerativeConfig:
        """Defaults that depend on the kind and the data filled in."""
        kind = get_kind(self.kind)
        return GenerativeConfig(
            **{
                **asdict(self),
                "conditional": num_classes > 1 if self.conditional is None else self.conditional,
                "latent_dim": self.latent_dim or kind.latent_dim,
                "lr": self.lr or kind.lr,
                "ema": self.ema if self.ema is not None else kind.ema,
            }
        )


@dataclass
class GenerativeResult:
    """The trained generator, where the run went (None: nowhere), how far it got, and its logged losses."""

    generator: Generator
    out: Path | None
    step: int
    steps: int
    metrics: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class _LogPoints:
    """The steps a run logs at: every ``every``-th and each checkpoint point, answered step by step (a set of
    them would hold one number per step of a budget that may be 10¹²)."""

    def __init__(self, every: int, steps: int, task: GenerativeTask) -> None:
        self.every, self.steps, self.task = every, steps, task

    def __contains__(self, step: object) -> bool:
        if not isinstance(step, int) or not 1 <= step <= self.steps:
            return False
        return step % self.every == 0 or self.task.is_checkpoint_point(step)


def _step_generator(seed: int, step: int, rollbacks: int, device: torch.device) -> torch.Generator:
    generator = torch.Generator(device=device)
    generator.manual_seed((seed * 1_000_003 + step * 7919 + rollbacks * 104_729) % (2**63 - 1))
    return generator


class _EpochOrder:
    """Batch indices for step ``s``: positions s·B … s·B+B−1 of back-to-back seeded permutations."""

    def __init__(self, n: int, batch_size: int, seed: int, device: torch.device) -> None:
        self.n, self.batch_size, self.seed, self.device = n, batch_size, seed, device
        self._cache: dict[int, torch.Tensor] = {}

    def _perm(self, epoch: int) -> torch.Tensor:
        if epoch not in self._cache:
            self._cache = {e: p for e, p in self._cache.items() if e >= epoch - 1}
            generator = torch.Generator().manual_seed(self.seed * 65_537 + epoch)
            self._cache[epoch] = torch.randperm(self.n, generator=generator).to(self.device)
        return self._cache[epoch]

    def batch(self, step: int) -> torch.Tensor:
        start = step * self.batch_size
        first, last = start // self.n, (start + self.batch_size - 1) // self.n
        order = torch.cat([self._perm(e) for e in range(first, last + 1)])
        offset = start - first * self.n
        return order[offset : offset + self.batch_size]


class _Trainer:
    """One kind's models, optimisers and step; the loop around it is shared."""

    def __init__(self, config: GenerativeConfig, model_args: dict[str, Any], device: torch.device) -> None:
        self.config = config
        self.kind = get_kind(config.kind)
        self.device = device
        self.cuda = device.type == "cuda"
        self.models = self.kind.build(model_args)
        for module in self.models.values():
            module.to(device)
        self.context = current()
        self.training = self.kind.training()(self.models, config, device, self.context.distributed)
        self.optimizers: dict[str, torch.optim.Optimizer] = self.training.optimizers
        # The sampler's average keeps the live module's buffers (BatchNorm statistics) as they are.
        sampler = self.models[self.kind.sampler]
        self.average = WeightAverage(sampler, config.ema, average_buffers=False) if config.ema else None

    @property
    def sampler(self) -> torch.nn.Module:
        return self.average.model if self.average is not None else self.models[self.kind.sampler]

    def restart_average(self) -> None:
        """The weight average started again from the sampling module as it is now (after a warm start)."""
        if self.average is not None:
            self.average = WeightAverage(self.models[self.kind.sampler], self.config.ema, average_buffers=False)

    def step(
        self,
        images: torch.Tensor,
        labels: torch.Tensor | None,
        generator: torch.Generator,
        shard: torch.Tensor | None = None,
        batch_size: int | None = None,
    ) -> dict[str, Any]:
        """One optimisation step on a uint8 batch; returns the losses as device tensors.

        Under torchrun ``images`` are this rank's ``shard`` (row numbers) of a global batch of ``batch_size``.
        """

        def noise(rows: int, dim: int) -> torch.Tensor:
            return self._noise(rows, dim, generator, shard, batch_size)

        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cuda):
            losses = self.training.step(
                StepInputs(images, labels, generator, noise, self._share(len(images), batch_size))
            )
        if self.average is not None:
            self.average.update(self.models[self.kind.sampler])
        return losses

    def _noise(self, rows: int, dim: int, generator: torch.Generator, shard: torch.Tensor | None, batch_size):
        """The global batch's latent noise (this rank's rows of it), so ranks see the single-process draws."""
        if shard is None:
            return torch.randn(rows, dim, device=self.device, generator=generator)
        return torch.randn(batch_size, dim, device=self.device, generator=generator)[shard.to(self.device)]

    def _share(self, rows: int, batch_size: int | None) -> float:
        """A rank's mean loss × this, averaged by DDP over ranks, is the global batch mean (unequal shards too)."""
        return 1.0 if batch_size is None else rows * self.context.world_size / batch_size

    def snapshot(self) -> dict[str, Any]:
        """An in-memory copy of everything a rollback restores."""
        return {
            "models": {k: copy.deepcopy(m.state_dict()) for k, m in self.models.items()},
            "optimizers": {k: copy.deepcopy(o.state_dict()) for k, o in self.optimizers.items()},
            "ema": copy.deepcopy(self.average.model.state_dict()) if self.average is not None else None,
            "updates": self.average.updates if self.average is not None else 0,
            "training": copy.deepcopy(self._training_state()),
        }

    def restore(self, snapshot: dict[str, Any]) -> None:
        for k, m in self.models.items():
            m.load_state_dict(snapshot["models"][k])
        for k, o in self.optimizers.items():
            o.load_state_dict(snapshot["optimizers"][k])
        if self.average is not None:
            self.average.model.load_state_dict(snapshot["ema"])
            self.average.updates = snapshot["updates"]
        self._load_training_state(snapshot["training"])

    def _training_state(self) -> dict[str, torch.Tensor]:
        """The kind's own training state beyond models and optimisers (adaptive DiffAugment's probability)."""
        state = getattr(self.training, "state", None)
        return state() if state is not None else {}

    def _load_training_state(self, tensors: dict[str, torch.Tensor]) -> None:
        load = getattr(self.training, "load_state", None)
        if load is not None:
            load(tensors)

    def state_tensors(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors: dict[str, torch.Tensor] = {}
        meta: dict[str, Any] = {"optimizers": {}}
        for name, module in self.models.items():
            tensors.update(checkpoints.prefixed(f"model.{name}", module.state_dict()))
        for name, optimizer in self.optimizers.items():
            packed, info = checkpoints.pack_optimizer(f"optimizer.{name}", optimizer.state_dict())
            tensors.update(packed)
            meta["optimizers"][name] = info
        if self.average is not None:
            tensors.update(checkpoints.prefixed("ema", self.average.model.state_dict()))
            meta["updates"] = self.average.updates
        tensors.update(checkpoints.prefixed("training", self._training_state()))
        return tensors, meta

    def load_state(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any], where: Path) -> None:
        from augmentor.core.runs import load_matching

        for name, module in self.models.items():
            load_matching(module, checkpoints.unprefixed(f"model.{name}", tensors), f"{where} ({name})")
        for name, optimizer in self.optimizers.items():
            optimizer.load_state_dict(
                checkpoints.unpack_optimizer(f"optimizer.{name}", tensors, meta["optimizers"][name])
            )
        if self.average is not None:
            load_matching(self.average.model, checkpoints.unprefixed("ema", tensors), f"{where} (ema)")
            self.average.updates = meta["updates"]
        self._load_training_state(checkpoints.unprefixed("training", tensors))


def _budget(config: GenerativeConfig, n: int) -> int:
    if config.steps is not None:
        if config.steps < 1:
            raise UserError(f"--steps must be at least 1, got {config.steps}")
        return config.steps
    if config.epochs is not None:
        return max(1, math.ceil(config.epochs * n / config.batch_size))
    # 20 passes, but never fewer than the 600 steps the gain experiment trains its generators for on 100
    # images: 20 passes over them is 32 steps, which draws noise.
    return max(DEFAULT_MIN_STEPS, math.ceil(DEFAULT_EPOCHS * n / config.batch_size))


def _grid_codes(config: GenerativeConfig, num_classes: int, device: torch.device):
    """The fixed latent codes and labels every sample grid of the run uses: one row per class (up to 10)."""
    generator = torch.Generator().manual_seed(config.seed + 12_345)
    columns = 8
    rows = min(num_classes, 10) if config.conditional else 8
    z = torch.randn(rows * columns, config.latent_dim, generator=generator).to(device)
    labels = torch.arange(rows).repeat_interleave(columns).to(device) if config.conditional else None
    return z, labels, rows, columns


@contextlib.contextmanager
def _evaluating(module: torch.nn.Module) -> Iterator[None]:
    """``module`` in eval mode for the block, its training mode restored afterwards."""
    was_training = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was_training)


def train_generative(
    train: ImageSet,
    config: GenerativeConfig,
    out: Path | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    command: str = "",
    in_gain: bool = False,
    budget_points: Collection[int] = (),
    on_budget_point: Callable[[int, Generator], None] | None = None,
) -> GenerativeResult:
    """Train a DCGAN or VAE on ``train`` (into the run folder ``out`` when given, or continue it with ``resume``).

    With ``out``, SIGTERM / Ctrl-C stop the run after a checkpoint there and raise ``TrainingInterrupted``.
    ``in_gain``: trained by the gain experiment, so a warning's advice names ``gain``'s flags, not ``train``'s.
    ``on_budget_point(step, generator)`` is called at each of ``budget_points`` with a copy of the generator as it
    stands: the learning rate is constant, so it is the generator a run of ``step`` steps ends with (a budget is
    chosen from one run, not one run per budget).
    """
    height, width = train.size
    if height != width:
        raise UserError(f"generative models take square images, got {height}×{width}; pass --image-size")
    check_size(height)
    if len(train) < 2:
        raise UserError("a generative model needs at least 2 training images")
    if resume and out is None:
        raise ValueError("resume needs the run folder to continue")
    if config.augment:
        augment_pipeline(config, train)  # a bad --augment is refused before any output is touched
    checkpoint = None
    init_run = None
    if resume:
        checkpoint, config, model_args = _resumed(out, config, train)
    else:
        if config.init is not None:
            config, init_run = _with_init_architecture(config, train, height)
        config = config.resolved(len(train.class_names))
        model_args = {
            "latent_dim": config.latent_dim,
            "num_classes": len(train.class_names) if config.conditional else 0,
            "channels": train.channels,
            "image_size": height,
            "width": config.width,
        }
        if out is not None:
            check_output(out, overwrite)
            if overwrite and out.exists() and current().is_main:
                import shutil

                shutil.rmtree(out)
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    trainer = _Trainer(config, model_args, device)
    init_record = None
    if init_run is not None:  # before the weight average copies the sampling module
        init_record = warm_start(trainer.models[trainer.kind.sampler], config.init, init_run, train.class_names)
        trainer.restart_average()
    progress_so_far = None
    if checkpoint is not None:
        trainer.load_state(checkpoint.tensors, checkpoint.meta, out)
        progress_so_far = Progress.from_checkpoint(checkpoint, device)
    steps = _budget(config, len(train))
    if progress_so_far is not None and progress_so_far.step >= steps:
        raise UserError(
            f"{out}: already trained for {progress_so_far.step} of {steps} steps; pass a larger --steps to go on"
        )
    config = GenerativeConfig(**{**asdict(config), "steps": steps, "epochs": None})
    record = {
        "format_version": RUN_FORMAT_VERSION,
        "augmentor_version": __version__,
        "kind": config.kind,
        "arch": config.kind,
        "model_args": model_args,
        "conditional": bool(model_args["num_classes"]),
        "class_names": list(train.class_names),
        "image_shape": [train.channels, height, width],
        # The side the networks work at: the samples are made there and resized to image_shape when it differs.
        "internal_size": internal_size(height),
        "training": asdict(config),
        "dataset": {"fingerprint": fingerprint(train), "images": len(train)},
        **({"init": init_record} if init_record is not None else {}),
        "command": command,
        "device": str(device),
    }
    if out is not None and current().is_main:  # under torchrun rank 0 alone writes the run folder
        out.mkdir(parents=True, exist_ok=True)
        write_file_atomic(out / CONFIG_NAME, (jsonio.dumps(record, indent=2) + "\n").encode())
    task = GenerativeTask(config, trainer, train, record, out, in_gain, frozenset(budget_points), on_budget_point)
    plan = Plan(
        steps,
        _LogPoints(config.log_every, steps, task),
        check_every=1,  # every step: a rollback must not replay more than the one bad step
        snapshot_every=max(1, min(config.log_every, 50)),
        max_rollbacks=config.max_nonfinite,
        folder=out,
        kind=config.kind,
    )
    progress = fit(task, plan, progress_so_far)
    # A CPU copy built as ``Generator.from_run`` builds it, so both give the same images.
    trained = Generator.from_weights(record, trainer.sampler.state_dict(), out, "the trained weights")
    return GenerativeResult(trained, out, progress.step, steps, progress.metrics, task.warnings)


def _with_init_architecture(
    config: GenerativeConfig, train: ImageSet, side: int
) -> tuple[GenerativeConfig, dict[str, Any]]:
    """``config`` with the init run's width and latent size (a --width or --latent-dim given that differs is
    refused), and the init run's config, checked to be of this kind and to fit the images."""
    assert config.init is not None
    run_config = init_config(config.init, config.kind)
    check_fits(config.init, run_config, train.channels, side)
    args = run_config["model_args"]
    defaults = GenerativeConfig(kind=config.kind)
    for name, flag in (("width", "--width"), ("latent_dim", "--latent-dim")):
        asked = getattr(config, name)
        if was_given(name, asked, getattr(defaults, name)) and asked is not None and asked != args[name]:
            raise UserError(f"{flag} {asked}: --init {config.init} has {args[name]}; drop {flag} to take the run's")
    return replace(config, width=int(args["width"]), latent_dim=int(args["latent_dim"])), run_config


def _resumed(
    out: Path, asked: GenerativeConfig, train: ImageSet
) -> tuple[checkpoints.Checkpoint, GenerativeConfig, dict[str, Any]]:
    """The checkpoint in ``out``, the config the run goes on with (its own, but for a budget or device given anew;
    any other flag that differs is refused: ``training.resume``) and its model arguments."""
    record = read_run_config(out, kind=asked.kind)
    fresh = "start a new run instead"
    if not checkpoints.has_checkpoint(out):
        raise UserError(
            f"{out}: has no training state (state.json) to resume from (shipped weights keep none); {fresh}"
        )
    checkpoint = checkpoints.read_checkpoint(out, asked.kind, fresh)
    if record["dataset"]["fingerprint"] != fingerprint(train):
        raise UserError(f"{out}: was trained on other images (dataset fingerprint differs); resume with its data")
    return checkpoint, resumed_config(asked, record["training"], out), record["model_args"]


def resumed_config(asked: GenerativeConfig, saved: dict[str, Any], out: Path) -> GenerativeConfig:
    """The config a resumed run goes on with: its own (``saved``), but for a budget or device given anew; any
    other setting given that differs from the run's is refused (``training.resume``)."""
    check_resume_flags(asked, saved, GenerativeConfig(kind=asked.kind), out)
    budget = {"steps": asked.steps, "epochs": asked.epochs} if asked.steps or asked.epochs else {}
    device = {"device": asked.device} if asked.device != GenerativeConfig.device else {}
    return GenerativeConfig(**{**saved, **budget, **device})


class GenerativeTask:
    """A DCGAN's or VAE's step, log entry, sample grids and checkpoint: the generators' part of ``training.fit``."""

    def __init__(
        self,
        config: GenerativeConfig,
        trainer: _Trainer,
        train: ImageSet,
        record: dict[str, Any],
        out: Path | None,
        in_gain: bool,
        budget_points: frozenset[int] = frozenset(),
        on_budget_point: Callable[[int, Generator], None] | None = None,
    ) -> None:
        self.config, self.trainer, self.train, self.record, self.in_gain = config, trainer, train, record, in_gain
        self.budget_points, self.on_budget_point = budget_points, on_budget_point
        self.device, self.context = trainer.device, trainer.context
        self.out = out if self.context.is_main else None  # where this rank writes (rank 0 alone)
        self.title = f"training {config.kind}"
        self.rollbacks = 0
        self.saved_step = 0  # the step of the last checkpoint, for the divergence advice
        self.warnings: list[str] = []
        self.conditional = bool(record["conditional"])
        data = with_augmented_copies(train, config) if config.augment else train
        self.images, self.labels = to_device(data, self.device)
        self.order = _EpochOrder(len(data), min(config.batch_size, len(data)), config.seed, self.device)
        num_classes = len(train.class_names) if self.conditional else 0
        self.grid_z, self.grid_labels, rows, self.columns = _grid_codes(config, num_classes, self.device)
        self.grid_names = list(train.class_names[:rows]) if self.conditional else None  # row r shows class r
        picked = np.random.default_rng(config.seed).permutation(len(train))[:24]
        self.real_diversity = mean_pairwise_ssim(train.images[picked])
        # Within a class: a conditional model can make one image per class (a colour blob for each) while the
        # classes differ from each other, which the across-grid measure above does not see.
        self.real_within = within_class_ssim(train, rows, self.columns, config.seed) if self.conditional else None
        self.best_diversity = 1.0
        for module in trainer.models.values():
            module.train()

    def train_step(self, step: int) -> dict[str, torch.Tensor]:
        generator = _step_generator(self.config.seed, step - 1, self.rollbacks, self.device)
        index = self.order.batch(step - 1)
        shard = data_parallel.rows(len(index), self.context)  # every rank draws the global batch, keeps its rows
        local = index if shard is None else index[shard.to(self.device)]
        batch_labels = self.labels[local] if self.conditional else None
        parallel = () if shard is None else (shard, len(index))
        return self.trainer.step(self.images[local], batch_labels, generator, *parallel)

    def log_entry(self, step: int, means: dict[str, Any]) -> dict[str, Any]:
        entry = {"step": step, "epoch": round(step * self.order.batch_size / len(self.train), 3)}
        return entry | {k: round(v, 5) for k, v in means.items()}

    def is_checkpoint_point(self, step: int) -> bool:
        return step % self.config.sample_every == 0 or step == self.config.steps or step in self.budget_points

    def evaluate(self, step: int, entry: dict[str, Any]) -> None:
        """At a sample point: the generator as it stands, through the same decode as sampling, judged for collapse."""
        if not self.is_checkpoint_point(step) or not self.context.is_main:
            return
        if step in self.budget_points and self.on_budget_point is not None:
            self._hand_over(step)
        sampler, config = self.trainer.sampler, self.config
        with _evaluating(sampler):
            pictures = Generator(sampler, self.record, self.out).decode(
                self.grid_z, self.grid_labels, device=self.device
            )
        diversity = mean_pairwise_ssim(pictures)
        entry["diversity_ssim"] = round(diversity, 4)
        # Collapse is a drop in diversity: early samples are all alike, so compare with the best seen.
        self.best_diversity = min(self.best_diversity, diversity)
        if collapsed_share(diversity, self.real_diversity) >= COLLAPSE_SHARE and diversity > self.best_diversity + 0.15:
            self._warn(
                f"possible mode collapse at step {step}: samples' mean pairwise SSIM {diversity:.2f} against "
                f"{self.real_diversity:.2f} among real images"
            )
        # Not after a few steps: an untrained generator's samples are all alike without having collapsed.
        judged = step in self.budget_points or step == config.steps
        if self.real_within is not None and judged and step >= COLLAPSE_MIN_STEPS:
            advice = collapse_advice(config.kind, self.in_gain)
            message = class_collapse_message(pictures, self.columns, self.real_within, self.grid_names or [], advice)
            if self.budget_points:  # the caller keeps one budget and warns of that one (from the log entry)
                entry.update({"class_collapse": message} if message else {})
            else:
                self._warn(message)
        if self.out is not None:
            title = f"{config.kind} step {step}"
            _write_grid(self.out / "samples" / f"step-{step:06d}.png", pictures, self.columns, title, self.grid_names)

    def _hand_over(self, step: int) -> None:
        """``on_budget_point`` with a CPU copy of the generator as a ``step``-step run would end, the random state
        left as it was (whatever the callback does, the training goes on as without it)."""
        assert self.on_budget_point is not None
        record = {**self.record, "training": {**self.record["training"], "steps": step}}
        cuda = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):
            weights = {k: v.detach().cpu().clone() for k, v in self.trainer.sampler.state_dict().items()}
            self.on_budget_point(step, Generator.from_weights(record, weights, None, f"the weights at step {step}"))

    def _warn(self, message: str) -> None:
        if message:
            warn(message)
            self.warnings.append(message)

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        return self.trainer.state_tensors()

    def write_beside(self, folder: Path, step: int, metrics: list[dict[str, Any]]) -> None:
        """The sampling weights, metrics.jsonl and losses.png, as of this checkpoint."""
        from safetensors.torch import save

        weights = {k: v.detach().cpu().contiguous() for k, v in self.trainer.sampler.state_dict().items()}
        write_file_atomic(folder / WEIGHTS_NAME, save(weights))
        write_file_atomic(folder / METRICS_NAME, "".join(jsonio.dumps(m) + "\n" for m in metrics).encode())
        if metrics:
            write_file_atomic(folder / "losses.png", losses_png(metrics, self.trainer.kind.loss_keys))
        self.saved_step = step

    def snapshot(self) -> dict[str, Any]:
        return self.trainer.snapshot()

    def restore(self, snapshot: Any, rollbacks: int) -> None:
        self.trainer.restore(snapshot)
        self.rollbacks = rollbacks  # the steps after a rollback draw other noise (their seeds count rollbacks)

    def diverged_advice(self, step: int, last_good_step: int, rollbacks: int, sums: dict[str, torch.Tensor]) -> str:
        config, out = self.config, self.out
        advice = f"lower --lr (now {config.lr})"
        if config.kind == "vae" and config.beta > 1e3:  # a huge KL weight overflows whatever the lr
            advice = f"lower --beta (now {config.beta:g}; 1 is the plain VAE)"
        if out is not None and self.saved_step > 0:
            advice = f"{out} holds the last good checkpoint (step {self.saved_step}); {advice} and --resume"
        elif out is not None:
            advice = f"no checkpoint was saved yet; {advice} and run the same command again"
        return f"the loss became non-finite {rollbacks} times (last at step {step}); {advice}"


def augment_pipeline(config: GenerativeConfig, train: ImageSet) -> Any:
    """``--augment``'s pipeline, checked on images of ``train``'s shape (a bad one refused in one line)."""
    from augmentor.classic.pipelines import load_pipeline

    assert config.augment is not None
    pipeline = load_pipeline(config.augment, image_shape=(*train.size, train.channels))
    return pipeline if config.flip else pipeline.without_flips()


def with_augmented_copies(train: ImageSet, config: GenerativeConfig) -> ImageSet:
    """``train`` and ``config.augment_copies`` classic-augmented copies of each of its images, made once from the
    seed (every rank makes them all alike: a torchrun shard is rows of the same array)."""
    from augmentor.classic.expand import augment_plan

    pipeline = augment_pipeline(config, train)
    parents = np.tile(np.arange(len(train)), config.augment_copies)
    plan = augment_plan(train, pipeline, parents, config.seed)
    copies = plan.render(0, len(parents), workers=1)
    return ImageSet(
        np.concatenate([train.images, copies]),
        np.concatenate([train.labels, train.labels[parents]]),
        list(train.class_names),
    )


def within_class_ssim(train: ImageSet, classes: int, per_class: int, seed: int) -> list[float]:
    """Mean pairwise SSIM among ``per_class`` random real images of each of the first ``classes`` classes."""
    rng = np.random.default_rng([seed, 3])
    found = []
    for label in range(classes):
        members = np.flatnonzero(train.labels == label)
        picked = rng.permutation(members)[:per_class]
        found.append(mean_pairwise_ssim(train.images[np.sort(picked)], limit=per_class))
    return found


# A class's samples count as collapsed when they close at least COLLAPSE_SHARE of the gap between the real images'
# own diversity and one image repeated: (SSIM_samples − SSIM_real) / (1 − SSIM_real), judged against each dataset's
# own real images, so diverse colour photos (real SSIM near 0.1) are flagged at about 0.64 and Fashion-MNIST's
# trousers (0.51) at 0.80. The shipped DCGAN and VAE close at most 0.25 of it in every class.
COLLAPSE_SHARE = 0.6
COLLAPSE_MIN_STEPS = 100  # fewer: a smoke test, not a model to judge


def collapse_advice(kind: str, in_gain: bool) -> str:
    """What to try against collapse, in flags the command at hand has (``gain`` trains its generators itself)."""
    if in_gain:
        return (
            "try other --gen-steps or --gen-width, a lower --gen-beta (VAE), or compare with the other generative arm"
        )
    return get_kind(kind).collapse_advice


def collapsed_share(samples_ssim: float, real_ssim: float) -> float:
    """How much of the way from the real images' diversity to one image repeated the samples have gone."""
    return (samples_ssim - real_ssim) / max(1e-6, 1.0 - real_ssim)


def class_collapse_message(
    pictures: np.ndarray, columns: int, real_within: list[float], names: list[str], advice: str
) -> str:
    """A warning naming the classes whose grid row (one class per row) is nearly one image repeated."""
    collapsed = []
    for row, real in enumerate(real_within):
        ssim = mean_pairwise_ssim(pictures[row * columns : (row + 1) * columns], limit=columns)
        if collapsed_share(ssim, real) >= COLLAPSE_SHARE:
            collapsed.append(f"{names[row] if row < len(names) else row} ({ssim:.2f} vs {real:.2f} real)")
    if not collapsed:
        return ""
    return (
        f"per-class mode collapse: the samples of {len(collapsed)} of {len(real_within)} classes are nearly one "
        f"image repeated (mean pairwise SSIM within the class): {', '.join(collapsed)}; {advice}"
    )


def _write_grid(
    path: Path, pictures: np.ndarray, columns: int, title: str, row_labels: list[str] | None = None
) -> None:
    """``pictures`` in rows of ``columns``, titled, each row named when ``row_labels`` are given."""
    from augmentor.report.grids import grid_png

    rows = [list(pictures[r : r + columns]) for r in range(0, len(pictures), columns)]
    write_file_atomic(path, grid_png(rows, gap_after_first=False, row_labels=row_labels, title=title))


def train_run(
    src: str,
    config: GenerativeConfig,
    out: Path,
    *,
    resume: bool = False,
    read_options: ReadOptions | None = None,
    overwrite: bool = False,
    command: str = "",
) -> GenerativeResult:
    """Train ``src``'s train split into a new DCGAN / VAE run folder ``out``, or continue the run in it (``resume``)."""
    if resume and overwrite:
        raise UserError(f"{out}: --resume continues the run in it, --overwrite replaces it; give one of them")
    if resume and not out.is_dir():  # before the claim, which creates the folder
        raise UserError(f"{out}: no such run folder to resume; start it with --out {out} without --resume")
    main = current().is_main  # under torchrun rank 0 alone writes, so rank 0 alone claims the folder
    with contextlib.ExitStack() as claim:
        # The run folder is checked before the dataset is read, which can take far longer than the refusal; a new
        # run claims it once the data is read (claiming creates the folder, which a refusal must not leave).
        if resume:
            if main:
                claim.enter_context(claim_run_folder(out))
            if never_checkpointed(out):
                raise UserError(
                    f"{out}: stopped before its first checkpoint, so there is nothing to resume; start it again "
                    f"with --out {out} without --resume (the folder is reused)"
                )
            read_run_config(out, kind=config.kind)
        elif not never_checkpointed(out):
            if main and not overwrite:
                checkpoints.refuse_interrupted(out, config.kind)
            check_output(out, overwrite, source=src)
        dataset = open_dataset(src, read_options or ReadOptions())
        if not resume and main:
            claim.enter_context(claim_run_folder(out))
            if never_checkpointed(out):
                (out / CONFIG_NAME).unlink()  # the config of a run that saved nothing: start afresh
            check_output(out, overwrite, source=src)  # again: another run may have filled it meanwhile
        return train_generative(dataset.train, config, out, resume=resume, overwrite=overwrite, command=command)
