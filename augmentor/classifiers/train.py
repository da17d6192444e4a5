"""Classifier training as a task of the one training loop (``augmentor.training.loop``).

The dataset is resident on the device and augmented there; bf16 autocast on CUDA, channels_last everywhere,
fused AdamW on CUDA, label smoothing, a one-cycle or cosine schedule; CPU runs with the same seed are
bit-identical. The task's checkpoint holds the weights, AdamW moments, EMA and best-so-far weights, every random
generator's state and the unfinished permutation of the data order, so a resumed run ends with the same
weights, bit for bit on the CPU, as one never interrupted.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from augmentor.classifiers.augment import mix_batch, parse_randaugment, rand_augment, soft_targets
from augmentor.classifiers.classifier import Classifier
from augmentor.classifiers.evaluate import align_classes
from augmentor.classifiers.mixing import SyntheticPool, real_order, step_plan, synthetic_order
from augmentor.core.console import warn
from augmentor.core.device import channel_stats, resolve_device, seeded_generator, to_device
from augmentor.core.errors import UserError
from augmentor.core.limits import IMAGE_SIDE, check_count
from augmentor.data.imageset import ImageSet, fingerprint
from augmentor.distributed import data_parallel
from augmentor.distributed.context import current
from augmentor.training.batch_augment import random_crop, random_flip
from augmentor.training.checkpoint import (
    Checkpoint,
    has_checkpoint,
    pack_optimizer,
    prefixed,
    read_checkpoint,
    unpack_optimizer,
    unprefixed,
)
from augmentor.training.ema import WeightAverage
from augmentor.training.loop import Plan, Progress, fit
from augmentor.training.resume import check_resume_flags

SCHEDULES = ("onecycle", "cosine")
ONECYCLE_MIN_STEPS = 8
FEW_STEPS = 100  # an epoch budget below this many steps (small data, default 10 epochs) scored near chance
# The default budget: 10 passes, but never fewer than 300 steps (10 passes over 100 images is 8 steps, which
# left digits at chance; 300 is the gain experiment's budget at 10 images per class, 300 passes).
DEFAULT_EPOCHS = 10.0
DEFAULT_MIN_STEPS = 300
# torch.compile modes --compile accepts ("default" fuses kernels; "reduce-overhead" also replays CUDA graphs,
# which is what a small model on a GPU needs: its steps are bound by kernel launches, not arithmetic).
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
KIND = "classifier"


@dataclass(frozen=True)
class TrainConfig:
    """``augmentor classify train`` options (field names = flag names)."""

    arch: str = "fast"
    steps: int | None = None  # the budget: optimiser steps; or give epochs
    epochs: float | None = None
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    schedule: str = "onecycle"
    flip: bool = True
    crop_padding: int = 2
    seed: int = 0
    device: str = "auto"
    evals: int = 10  # test evaluations spread over training (when a test set is given)
    freeze_backbone: bool = False
    # The gain experiment's budget: real-image presentations (mixing.step_plan turns them into steps, the
    # same real index stream in every arm); None keeps the plain step/epoch budget above.
    real_presentations: int | None = None
    finetune_real: float = 0.0  # with a synthetic pool: the last fraction of the real presentations real-only
    compile_mode: str | None = None  # a torch.compile mode for the training forward/backward; None runs eager
    keep: str = "best"  # with a validation set: the weights kept, "best" (its best evaluation point) or "last"
    ema: float = 0.0  # decay of an exponential moving average of the weights, evaluated and kept; 0 off
    mixup: float = 0.0  # Beta(α, α) of mixup's blend share; 0 off
    cutmix: float = 0.0  # Beta(α, α) of CutMix's kept share; 0 off (both on: each batch picks one)
    randaugment: str | None = None  # timm's "rand-m9-n2": RandAugment on every training image; None off
    # Scored with its mirror too: the mean of the image's and its left-right flip's class probabilities (airbench's
    # test-time augmentation; its gain is in the README's changelog).
    tta: bool = False

    def __post_init__(self) -> None:
        check_count("--crop-padding", self.crop_padding, IMAGE_SIDE)  # padding makes an image this much larger
        if self.randaugment is not None:  # kept in one spelling, so a resumed run's config compares equal
            ops, magnitude = parse_randaugment(self.randaugment)
            object.__setattr__(self, "randaugment", f"rand-m{magnitude}-n{ops}")
        for name, alpha in (("--mixup", self.mixup), ("--cutmix", self.cutmix)):
            if not (math.isfinite(alpha) and alpha >= 0):
                raise UserError(f"{name} {alpha}: give the Beta distribution's α ≥ 0 (0 turns it off), e.g. 0.2")
        if not 0 <= self.ema < 1:
            raise UserError(f"--ema {self.ema}: give a decay in [0, 1), e.g. 0.999 (0 turns it off)")
        if self.keep not in ("best", "last"):
            raise UserError(f"--keep {self.keep!r}: use best or last")
        if self.compile_mode is not None and self.compile_mode not in COMPILE_MODES:
            raise UserError(f"--compile {self.compile_mode!r} is unknown; use one of {', '.join(COMPILE_MODES)}")


def read_train_state(run: Path, *, tensors: bool = True) -> Checkpoint:
    """The classifier checkpoint in ``run``, or a UserError naming why there is none to resume (``tensors=False``
    reads the JSON only: enough for the checks made before the dataset is read)."""
    fresh = f"start it again with --out {run} without --resume"
    if not run.is_dir():
        raise UserError(f"{run}: no such run folder to resume; {fresh}")
    if not has_checkpoint(run):
        kind = _run_kind(run)
        if kind not in (None, KIND):
            raise UserError(f"{run}: is a {kind!r} run, not a classifier run; resume it with `augmentor train {kind}`")
        why = "finished before checkpoints were kept" if kind == KIND else "stopped before its first checkpoint"
        raise UserError(f"{run}: holds no classifier training state (state.json): {why}; {fresh} (or --overwrite)")
    return read_checkpoint(run, KIND, f"{fresh} (or --overwrite)", tensors=tensors)


def _run_kind(run: Path) -> str | None:
    """The ``kind`` in ``run``'s config.json, if it has a readable one."""
    from augmentor.core.bounded import read_json

    try:
        kind = read_json(run / "config.json", "a run config").get("kind")
    except (UserError, AttributeError):
        return None
    return kind if isinstance(kind, str) else None


def resumed_config(asked: TrainConfig, saved: dict[str, Any], run: Path) -> TrainConfig:
    """The config a resumed run goes on with: its own, but for a budget or device given anew (any other flag
    that differs from the run's value is refused: ``training.resume``)."""
    default = TrainConfig()
    check_resume_flags(asked, saved, default, run, {"compile_mode": "--compile"})
    known = {f for f in asdict(default)}
    kept = {k: v for k, v in saved.items() if k in known}
    budget = {"steps": asked.steps, "epochs": asked.epochs} if asked.steps or asked.epochs else {}
    device = {"device": asked.device} if asked.device != default.device else {}
    return TrainConfig(**{**kept, **budget, **device})


def check_trainable(train: ImageSet) -> None:
    """Refuse classes too small to learn from."""
    counts = train.class_counts()
    small = [name for name, n in counts.items() if n < 2]
    if small:
        raise UserError(
            f"class {small[0]!r} has {counts[small[0]]} image(s) in the training set; a classifier needs at "
            "least 2 per class: add images or remove the class"
        )


def budget_steps(config: TrainConfig, num_images: int, batch_size: int) -> int:
    """The step budget from ``steps`` or ``epochs``; given neither, ``DEFAULT_EPOCHS`` with a floor of
    ``DEFAULT_MIN_STEPS`` optimiser steps, so the default learns on small data too."""
    if config.steps is not None:
        if config.steps < 1:
            raise UserError(f"--steps must be at least 1, got {config.steps}")
        return config.steps
    if config.epochs is not None:
        return max(1, math.ceil(config.epochs * num_images / batch_size))
    return max(DEFAULT_MIN_STEPS, math.ceil(DEFAULT_EPOCHS * num_images / batch_size))


def make_schedule(optimizer: torch.optim.Optimizer, name: str, lr: float, steps: int) -> Any:
    """One-cycle (warm-up then anneal) or cosine, both stepped once per optimiser step."""
    if name == "onecycle" and steps >= ONECYCLE_MIN_STEPS:
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=lr, total_steps=steps, pct_start=0.25, anneal_strategy="linear"
        )
    if name in SCHEDULES:  # cosine, and one-cycle runs too short for a warm-up phase (torch divides by zero)
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    raise UserError(f"--schedule {name!r} is unknown; use one of {', '.join(SCHEDULES)}")


class _IndexStream:
    """Index batches of a fixed size from back-to-back permutations: every image equally often. Its generator's
    state and ``pending`` (the unused rest of the current permutation) are all a checkpoint needs to go on."""

    def __init__(
        self,
        n: int,
        batch_size: int,
        generator: torch.Generator,
        device: torch.device,
        pending: torch.Tensor | None = None,
    ) -> None:
        self.n, self.batch_size, self.generator, self.device = n, batch_size, generator, device
        self.pending = torch.empty(0, dtype=torch.long, device=device) if pending is None else pending.to(device)

    def take(self) -> torch.Tensor:
        while self.pending.numel() < self.batch_size:
            fresh = torch.randperm(self.n, device=self.device, generator=self.generator)
            self.pending = torch.cat([self.pending, fresh])
        batch, self.pending = self.pending[: self.batch_size], self.pending[self.batch_size :]
        return batch


def _batches(n: int, batch_size: int, steps: int, generator: torch.Generator, device: torch.device):
    """``steps`` index batches of an ``_IndexStream``."""
    stream = _IndexStream(n, batch_size, generator, device)
    for _ in range(steps):
        yield stream.take()


def _mixed_batches(real_counts, synthetic_counts, n_real: int, pool_size: int, seed: int, device: torch.device):
    """(real indices, synthetic indices) per step of a ``mixing.step_plan``."""
    real = real_order(n_real, int(real_counts.sum()), seed).to(device)
    synthetic = synthetic_order(pool_size, int(synthetic_counts.sum()), seed).to(device) if pool_size else None
    r = s = 0
    for real_count, synthetic_count in zip(real_counts.tolist(), synthetic_counts.tolist(), strict=True):
        yield real[r : r + real_count], (synthetic[s : s + synthetic_count] if synthetic_count else None)
        r, s = r + real_count, s + synthetic_count


def _mixed_loss(
    logits: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor, weight: float, smoothing: float
) -> torch.Tensor:
    """Cross-entropy over a mixed batch: real rows on their labels, synthetic rows on their target
    distributions, each synthetic image's term weighted by ``weight``."""
    n = len(labels)
    real = F.cross_entropy(logits[:n], labels, label_smoothing=smoothing, reduction="sum")
    synthetic = F.cross_entropy(logits[n:], targets, label_smoothing=smoothing, reduction="sum")
    return (real + weight * synthetic) / len(logits)


def _shard_loss(
    logits: torch.Tensor,
    rows: torch.Tensor,
    labels: torch.Tensor,
    targets: torch.Tensor | None,
    weight: float,
    smoothing: float,
    scale: float,
) -> torch.Tensor:
    """This rank's part of the global batch loss: ``rows`` index the global batch (real rows first, then
    synthetic), the sum is scaled so DDP's average over ranks is the single-process loss's gradient."""
    real = rows < len(labels)
    loss = F.cross_entropy(logits[real], labels[rows[real]], label_smoothing=smoothing, reduction="sum")
    if targets is not None:
        synthetic = rows[~real] - len(labels)
        loss = loss + weight * F.cross_entropy(
            logits[~real], targets[synthetic], label_smoothing=smoothing, reduction="sum"
        )
    return loss * scale


def run_record(
    train: ImageSet,
    config: TrainConfig,
    steps: int,
    batch_size: int,
    normalisation: tuple[list[float], list[float]],
    synthetic: SyntheticPool | None,
    drawn: int,
    device: torch.device,
) -> dict[str, Any]:
    """A classifier run's ``config.json`` record: architecture, classes, normalisation, budget, data."""
    height, width = train.size
    mean, std = normalisation
    return {
        "kind": "classifier",
        "arch": config.arch,
        "model_args": {"num_classes": len(train.class_names), "in_channels": train.channels, "image_size": height},
        "class_names": list(train.class_names),
        "image_shape": [train.channels, height, width],
        "normalisation": {"mean": mean, "std": std},
        "training": {**asdict(config), "steps": steps, "batch_size": batch_size},
        "synthetic": None
        if synthetic is None
        else {
            "pool_images": len(synthetic.images),
            "drawn": drawn,
            "share": synthetic.share,
            "weight": synthetic.weight,
        },
        "dataset": {"fingerprint": fingerprint(train), "images": len(train)},
        "device": str(device),
    }


def update(
    loss: torch.Tensor, optimizer: torch.optim.Optimizer, schedule: Any, average: WeightAverage | None, module: Any
) -> float:
    """Backward, the optimiser's step, the weight average and the schedule's step; the rate the step used."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    if average is not None:
        average.update(module)
    used = optimizer.param_groups[0]["lr"]
    schedule.step()
    return used


def compiled(network: torch.nn.Module, mode: str | None) -> tuple[torch.nn.Module, Any]:
    """``network`` under ``torch.compile(mode=...)`` (unchanged for None), and the call that starts a step.

    Only the training forward/backward is compiled; evaluation runs the plain model (no second graph to
    build for eval mode). With CUDA graphs ("reduce-overhead"), each step is marked as a new replay so the
    previous step's outputs may be overwritten."""
    if mode is None:
        return network, lambda: None
    # Harmless where no CUDA graphs are replayed, so every mode gets it.
    return torch.compile(network, mode=None if mode == "default" else mode), torch.compiler.cudagraph_mark_step_begin


def train_classifier(
    train: ImageSet,
    config: TrainConfig,
    test: ImageSet | None = None,
    init_model: torch.nn.Module | None = None,
    synthetic: SyntheticPool | None = None,
    validation: ImageSet | None = None,
    *,
    checkpoint_dir: Path | None = None,
    resume: Checkpoint | None = None,
    should_stop: Callable[[int], bool] | None = None,
    state_info: dict[str, Any] | None = None,
) -> Classifier:
    """Train ``config.arch`` on ``train`` for the budget, scoring ``test`` along the way.

    With ``validation``, it is scored at every evaluation point and the weights of the best point are the
    ones kept (``config.keep`` "best"; "last" keeps the final ones): the choice reads validation, never test.

    With ``synthetic``, every batch mixes real images and pool images at the pool's share, the budget
    counted in real presentations (``config.real_presentations``, else steps × batch size of a real-only
    run). The ``Classifier`` comes back on the training device, with ``metrics`` and (given ``test``) ``final``.

    With ``checkpoint_dir``, a resumable state is saved there (rank 0 alone writes; ``state_info`` goes into
    its JSON) and SIGTERM / Ctrl-C stop the run after a checkpoint, raising ``TrainingInterrupted``, as does
    ``should_stop(step)`` returning True. ``resume`` continues from such a state (``init_model`` is then unused).
    """
    check_trainable(train)
    test = align_classes(train.class_names, test) if test is not None else None
    validation = align_classes(train.class_names, validation) if validation is not None else None
    device = resolve_device(config.device)
    if resume is not None and resume.meta["device_type"] != device.type:
        raise UserError(
            f"--device {config.device}: the run was trained on {resume.meta['device_type']}, and its random streams "
            f"(data order, augmentation) go on only there; resume it where {resume.meta['device_type']} is available"
        )
    torch.manual_seed(config.seed)
    model = _build_model(train, config, None if resume is not None else init_model, device)
    batch_size = min(config.batch_size, len(train))
    steps, plan_counts = _budget(config, train, synthetic, batch_size, resume)
    task = ClassifierTask(config, train, test, validation, model, synthetic, steps, batch_size, plan_counts, device)
    progress_so_far = None
    if resume is not None:
        task.load(resume)
        progress_so_far = Progress.from_checkpoint(resume, device)
    info = {
        "config": asdict(config),
        "device_type": device.type,
        "fingerprints": {"train": task.record["dataset"]["fingerprint"], **_fingerprints(test, validation, synthetic)},
        **(state_info or {}),
    }
    plan = Plan(
        steps,
        task.eval_points,
        check_every=1 if device.type != "cuda" else 50,  # a finite-loss check costs a device sync: rarer on GPU
        folder=checkpoint_dir,
        kind=KIND,
        info=info if checkpoint_dir is not None and current().is_main else {},
        should_stop=should_stop,
    )
    return task.finish(fit(task, plan, progress_so_far))


def _build_model(
    train: ImageSet, config: TrainConfig, init_model: torch.nn.Module | None, device: torch.device
) -> torch.nn.Module:
    """The network to train (``init_model`` or a fresh ``config.arch``), frozen as asked, on ``device``."""
    from augmentor.classifiers.registry import create_model

    height, width = train.size
    if height != width:
        raise UserError(f"classifiers take square images, got {height}×{width}; pass --image-size {max(height, width)}")
    model = init_model or create_model(config.arch, len(train.class_names), train.channels, height)
    if config.freeze_backbone:
        for parameter in model.backbone_parameters():
            parameter.requires_grad_(False)
    # channels_last pays on CPU too: oneDNN's convolutions run faster with it (README, Performance).
    return model.to(device).to(memory_format=torch.channels_last)


def _budget(
    config: TrainConfig,
    train: ImageSet,
    synthetic: SyntheticPool | None,
    batch_size: int,
    resume: Checkpoint | None,
) -> tuple[int, tuple[np.ndarray, np.ndarray] | None]:
    """The step budget, and with mixing the step plan's (real, synthetic) images per step."""
    num_classes = len(train.class_names)
    mixing = config.real_presentations is not None or synthetic is not None
    plan_counts = None
    if mixing:
        presentations = config.real_presentations or budget_steps(config, len(train), batch_size) * batch_size
        plan_counts = step_plan(presentations, batch_size, synthetic.share if synthetic else 0.0, config.finetune_real)
        steps = len(plan_counts[0])
        if synthetic is not None and (
            synthetic.images.shape[1:] != train.images.shape[1:] or synthetic.targets.shape[1] != num_classes
        ):
            raise UserError(
                f"internal: synthetic pool of shape {list(synthetic.images.shape[1:])} with "
                f"{synthetic.targets.shape[1]} classes for a {list(train.images.shape[1:])} set of {num_classes}"
            )
    else:
        steps = budget_steps(config, len(train), batch_size)
        if config.steps is None and config.epochs is not None and steps < FEW_STEPS and resume is None:
            epochs = config.epochs
            warn(
                f"{epochs:g} epochs of {len(train)} images at batch {batch_size} is only {steps} optimiser steps, "
                f"too few to learn much from small data; pass --steps {FEW_STEPS * 3} or more"
            )
    start_step = resume.step if resume is not None else 0
    if resume is not None and mixing and steps != resume.steps:
        raise UserError(
            f"the run mixes in synthetic images, whose step plan is fixed by its budget: keep its {resume.steps} "
            f"steps (drop --steps/--epochs) or start a new run"
        )
    if start_step > steps:
        raise UserError(f"the run is at step {start_step}, past the {steps} steps asked; give a larger budget")
    return steps, plan_counts


class ClassifierTask:
    """One classifier's step, log entry, evaluations and checkpoint: the classifier's part of ``training.fit``."""

    def __init__(
        self,
        config: TrainConfig,
        train: ImageSet,
        test: ImageSet | None,
        validation: ImageSet | None,
        model: torch.nn.Module,
        synthetic: SyntheticPool | None,
        steps: int,
        batch_size: int,
        plan_counts: tuple[np.ndarray, np.ndarray] | None,
        device: torch.device,
    ) -> None:
        self.config, self.train, self.test, self.validation = config, train, test, validation
        self.model, self.synthetic, self.steps, self.device = model, synthetic, steps, device
        self.title = f"training {config.arch}"
        self.cuda = device.type == "cuda"
        self.num_classes = len(train.class_names)
        self.images, self.labels = to_device(train, device)
        normalisation = _channel_stats(self.images)
        if synthetic is not None:
            self.pool_images = torch.from_numpy(synthetic.images).to(device)
            self.pool_targets = torch.from_numpy(synthetic.targets).to(device)
        trainable = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(
            trainable, lr=config.lr, weight_decay=config.weight_decay, fused=self.cuda or None
        )
        # Under torchrun every rank draws the same global batch and trains on its rows (distributed.data_parallel).
        self.context = current()
        network = data_parallel.wrap(model, device, self.context)
        if config.compile_mode is not None and not self.cuda:
            warn(f"--compile {config.compile_mode} on the CPU: compiling takes minutes and the step runs no faster")
        self.network, self.mark_step = compiled(network, config.compile_mode)
        self.schedule = make_schedule(self.optimizer, config.schedule, config.lr, steps)
        self.generator = seeded_generator(config.seed, device)
        # RandAugment's op and sign draws: their own CPU generator (no device sync to group images by op), so the
        # crop/flip stream is the same with or without it.
        self.augment_ops = parse_randaugment(config.randaugment) if config.randaugment else None
        self.augment_generator = torch.Generator().manual_seed(
            int(np.random.SeedSequence([config.seed, 91]).generate_state(1)[0])
        )
        drawn = int(plan_counts[1].sum()) if synthetic is not None else 0
        self.record = run_record(train, config, steps, batch_size, normalisation, synthetic, drawn, device)
        self.classifier = Classifier(model, self.record)
        if test is not None:
            self.classifier.check_images(test, "the test set")  # before training, not at the first evaluation
        self.average = WeightAverage(model, config.ema) if config.ema else None
        self.evaluated = Classifier(self.average.model, self.record) if self.average else self.classifier
        # Log (and evaluate, with a test set) at ``evals`` points; each is also a "last good" snapshot.
        evals = max(1, config.evals)
        self.eval_points = {max(1, round(steps * (k + 1) / evals)) for k in range(evals)}
        self.presented = 0  # real images shown so far
        self.lr_used = config.lr
        self.mix_rng = np.random.default_rng([config.seed, 77])  # mixup/cutmix shares and boxes: seeded, on the CPU
        self.best: tuple[int, float, dict[str, torch.Tensor]] | None = None  # (step, validation accuracy, weights)
        self.plan_counts = plan_counts
        self.stream = None if plan_counts is not None else _IndexStream(len(train), batch_size, self.generator, device)
        self.batches = self._batches_from(0)
        model.train()

    def _batches_from(self, step: int):
        """(real indices, synthetic indices or None) per step, from step ``step`` on."""
        if self.plan_counts is None:
            return ((self.stream.take(), None) for _ in itertools.count())
        real_counts, synthetic_counts = self.plan_counts
        pool_size = len(self.synthetic.images) if self.synthetic else 0
        mixed = _mixed_batches(real_counts, synthetic_counts, len(self.train), pool_size, self.config.seed, self.device)
        return itertools.islice(mixed, step, None)

    def train_step(self, step: int) -> dict[str, torch.Tensor]:
        config, context = self.config, self.context
        self.mark_step()
        index, synthetic_index = next(self.batches)
        batch = self.images[index]
        if synthetic_index is not None:
            batch = torch.cat([batch, self.pool_images[synthetic_index]])
        batch = random_crop(batch, config.crop_padding, self.generator)
        if config.flip:
            batch = random_flip(batch, self.generator)
        if self.augment_ops is not None:  # after crop and flip, as timm orders them
            batch = rand_augment(batch, *self.augment_ops, self.augment_generator)
        shard = data_parallel.rows(len(batch), context)
        targets = self.pool_targets[synthetic_index] if synthetic_index is not None else None
        weight = self.synthetic.weight if self.synthetic is not None else 1.0
        global_rows = len(index) + (len(targets) if targets is not None else 0)
        if config.mixup > 0 or config.cutmix > 0:  # on the whole (global) batch: the ranks' shards are one process's
            loss = self._mixed_batch_loss(batch, index, targets, weight, shard, global_rows)
        else:
            if shard is not None:
                batch = batch[shard.to(self.device)]
            inputs = self.classifier.normalise(batch).contiguous(memory_format=torch.channels_last)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cuda):
                logits = self.network(inputs)
            smoothing = config.label_smoothing
            if shard is not None:
                scale = data_parallel.loss_scale(global_rows, context)
                loss = _shard_loss(
                    logits.float(), shard.to(self.device), self.labels[index], targets, weight, smoothing, scale
                )
            elif targets is None:
                loss = F.cross_entropy(logits.float(), self.labels[index], label_smoothing=smoothing)
            else:
                loss = _mixed_loss(logits.float(), self.labels[index], targets, weight, smoothing)
        self.presented += len(index)
        self.lr_used = update(loss, self.optimizer, self.schedule, self.average, self.model)
        return {"loss": loss}

    def _mixed_batch_loss(self, batch, index, targets, weight, shard, global_rows) -> torch.Tensor:
        """Mixup / CutMix over the soft targets of the whole batch, then this rank's rows."""
        config = self.config
        inputs = self.classifier.normalise(batch)
        rows, row_weights = soft_targets(self.labels[index], targets, self.num_classes, weight, config.label_smoothing)
        inputs, rows, row_weights = mix_batch(
            inputs, rows, row_weights, config.mixup, config.cutmix, self.mix_rng, self.generator
        )
        if shard is not None:
            shard = shard.to(self.device)
            inputs, rows, row_weights = inputs[shard], rows[shard], row_weights[shard]
        inputs = inputs.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cuda):
            logits = self.network(inputs)
        per_row = -(rows * F.log_softmax(logits.float(), dim=1)).sum(dim=1) * row_weights
        if shard is not None:
            return per_row.sum() * data_parallel.loss_scale(global_rows, self.context)
        return per_row.mean()

    def log_entry(self, step: int, means: dict[str, Any]) -> dict[str, Any]:
        epoch = round(self.presented / len(self.train), 3)
        return {"step": step, "epoch": epoch, "train_loss": round(means["loss"], 5), "lr": self.lr_used}

    def evaluate(self, step: int, entry: dict[str, Any]) -> None:
        if not self.context.is_main:  # the weights are the same on every rank
            return
        if self.validation is not None:
            entry["val_accuracy"] = self.evaluated.evaluate(self.validation)["accuracy"]
        if self.test is not None:
            entry["test_accuracy"] = self.evaluated.evaluate(self.test)["accuracy"]
        self.model.train()
        if "val_accuracy" in entry and (self.best is None or entry["val_accuracy"] > self.best[1]):
            scored = self.evaluated.model.state_dict()
            self.best = (step, entry["val_accuracy"], {k: v.detach().clone() for k, v in scored.items()})

    def is_checkpoint_point(self, step: int) -> bool:
        return step in self.eval_points or step == self.steps

    def write_beside(self, folder: Path, step: int, metrics: list[dict[str, Any]]) -> None:
        """Nothing: a classifier run's results are written when it is done."""

    def snapshot(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def restore(self, snapshot: Any, rollbacks: int) -> None:
        raise AssertionError("a classifier run takes no rollbacks (Plan.max_rollbacks is 0)")

    def diverged_advice(self, step: int, last_good_step: int, rollbacks: int, sums: dict[str, torch.Tensor]) -> str:
        return (
            f"the loss became non-finite by step {step} (last finite check: step {last_good_step}); lower --lr "
            f"(now {self.config.lr})"
        )

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors = prefixed("model", self.model.state_dict())
        packed, optimizer_meta = pack_optimizer("optimizer", self.optimizer.state_dict())
        tensors.update(packed)
        if self.average is not None:
            tensors.update(prefixed("ema", self.average.model.state_dict()))
        if self.best is not None:
            tensors.update(prefixed("best", self.best[2]))
        tensors["rng.data"] = self.generator.get_state()
        tensors["rng.torch"] = torch.get_rng_state()  # dropout draws from the global generators
        if self.cuda:
            tensors["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        tensors["rng.randaugment"] = self.augment_generator.get_state()
        if self.stream is not None:
            tensors["data.pending"] = self.stream.pending.detach().cpu()
        meta = {
            "optimizer": optimizer_meta,
            "ema_updates": self.average.updates if self.average is not None else 0,
            "best": {"step": self.best[0], "accuracy": self.best[1]} if self.best is not None else None,
            "mix_rng": self.mix_rng.bit_generator.state,
            "presented": self.presented,
        }
        return tensors, meta

    def load(self, checkpoint: Checkpoint) -> None:
        """Put a checkpoint back: weights, AdamW moments, EMA, schedule position, random states, data order."""
        from augmentor.core.runs import load_matching

        tensors, meta, device = checkpoint.tensors, checkpoint.meta, self.device
        load_matching(self.model, unprefixed("model", tensors), "the checkpoint's weights")
        # The schedule replayed to the step over this run's budget (the same floats as the run computed, or the
        # budget re-laid when --steps grew); the optimiser's own groups would hold the old budget's rates.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "scheduler.step() before optimizer.step()"
            for _ in range(checkpoint.step):
                self.schedule.step()
        optimizer = self.optimizer
        groups = [{k: v for k, v in group.items() if k != "params"} for group in optimizer.param_groups]
        optimizer.load_state_dict(unpack_optimizer("optimizer", tensors, meta["optimizer"]))
        for group, replayed in zip(optimizer.param_groups, groups, strict=True):
            group.update(replayed)
        for group in optimizer.param_groups:
            for parameter in group["params"]:
                slots = optimizer.state.get(parameter, {})
                for key, value in slots.items():
                    # Moments back in the parameter's memory layout (channels_last): the update's kernels, and so
                    # its rounding, follow the layout.
                    if (
                        torch.is_tensor(value)
                        and value.shape == parameter.shape
                        and value.stride() != parameter.stride()
                    ):
                        slots[key] = torch.empty_like(parameter, dtype=value.dtype).copy_(value)
        if self.average is not None:
            load_matching(self.average.model, unprefixed("ema", tensors), "the checkpoint's averaged weights")
            self.average.updates = meta["ema_updates"]
        self.generator.set_state(tensors["rng.data"])
        self.augment_generator.set_state(tensors["rng.randaugment"])
        torch.set_rng_state(tensors["rng.torch"])
        if "rng.cuda" in tensors and device.type == "cuda":
            torch.cuda.set_rng_state(tensors["rng.cuda"], device)
        if self.stream is not None:
            self.stream.pending = tensors["data.pending"].to(device)
        self.presented, self.mix_rng.bit_generator.state = meta["presented"], meta["mix_rng"]
        if meta["best"] is not None:
            best = {k: v.to(device) for k, v in unprefixed("best", tensors).items()}
            self.best = (meta["best"]["step"], meta["best"]["accuracy"], best)
        self.batches = self._batches_from(checkpoint.step)

    def finish(self, progress: Progress) -> Classifier:
        """The trained classifier: the kept weights (EMA, best validation point), its record, metrics and scores."""
        config, record, model = self.config, self.record, self.model
        metrics = progress.metrics
        record["training"]["seconds"] = round(progress.seconds, 3)
        last_loss = metrics[-1]["train_loss"] if metrics else float("nan")
        classes = self.num_classes
        if self.steps >= FEW_STEPS and classes > 1 and last_loss >= 0.95 * math.log(classes):
            warn(
                f"the training loss ended at {last_loss:.3f}, no better than guessing among {classes} classes "
                f"(ln {classes} = {math.log(classes):.3f}): the model learnt nothing; lower --lr (now "
                f"{config.lr:g}) or check the labels"
            )
        if self.average is not None:  # the averaged weights are the ones evaluated, so the ones kept
            model.load_state_dict(self.average.model.state_dict())
        if self.best is not None:
            if config.keep == "best":
                model.load_state_dict(self.best[2])
            record["validation"] = {
                "images": len(self.validation),
                "best_step": self.best[0],
                "best_accuracy": self.best[1],
                "kept": config.keep,
                "kept_step": self.best[0] if config.keep == "best" else self.steps,
            }
        if self.test is not None and self.context.is_main:
            self.classifier.final = self.classifier.evaluate(self.test)
            record["test"] = {"accuracy": self.classifier.final["accuracy"], "images": len(self.test)}
        self.classifier.metrics = metrics
        model.eval()
        return self.classifier


def _channel_stats(images: torch.Tensor) -> tuple[list[float], list[float]]:
    """The training images' per-channel mean and std (the run's normalisation); a flat channel is said."""
    mean, std = channel_stats(images)
    flat = [c for c, deviation in enumerate(std) if deviation < 2e-3]  # at channel_stats' floor: no spread
    if flat:
        warn(
            f"channel {', '.join(map(str, flat))} of the training images is one flat value everywhere: there is "
            "nothing in it to learn from (check the data, or --channels 1 for grey images saved as colour)"
        )
    return mean, std


def _fingerprints(
    test: ImageSet | None, validation: ImageSet | None, synthetic: SyntheticPool | None
) -> dict[str, str | None]:
    """What a resume checks besides the training images: the same test, validation and synthetic images."""
    import hashlib

    pool = None
    if synthetic is not None:
        digest = hashlib.sha256(np.ascontiguousarray(synthetic.images).tobytes())
        digest.update(np.ascontiguousarray(synthetic.targets).tobytes())
        digest.update(repr((synthetic.share, synthetic.weight)).encode())
        pool = digest.hexdigest()
    return {
        "test": fingerprint(test) if test is not None else None,
        "validation": fingerprint(validation) if validation is not None else None,
        "synthetic": pool,
    }
