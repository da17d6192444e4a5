"""Classifier training: the dataset resident on the device, augmentation there, a fixed step budget.

One loop serves every architecture, CPU and GPU: bf16 autocast on CUDA, channels_last everywhere, fused
AdamW on CUDA, label smoothing, a one-cycle or cosine schedule. CPU runs with the same seed are
bit-identical.

Given a checkpoint folder, the loop saves a resumable state there (``state.json`` naming one
``state-STEP.safetensors``: weights, AdamW moments, EMA and best-so-far weights, every random generator's state,
the unfinished permutation of the data order, the loss accumulators and the metrics so far) at every evaluation
point, every ``CHECKPOINT_SECONDS`` between them, and when SIGTERM or Ctrl-C asks it to stop. A run resumed from
it ends with the same weights, bit for bit on the CPU, as one that was never interrupted.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from augmentor.classifiers.augment import (
    mix_batch,
    parse_randaugment,
    rand_augment,
    random_crop,
    random_flip,
    soft_targets,
)
from augmentor.classifiers.classifier import Classifier
from augmentor.classifiers.evaluate import align_classes
from augmentor.classifiers.mixing import SyntheticPool, real_order, step_plan, synthetic_order
from augmentor.core.console import progress, warn
from augmentor.core.device import channel_stats, resolve_device, seeded_generator, to_device
from augmentor.core.errors import UserError
from augmentor.core.stopping import stop_requests
from augmentor.data.imageset import ImageSet, fingerprint
from augmentor.distributed import data_parallel
from augmentor.distributed.context import barrier, current
from augmentor.generative.state_io import pack_optimizer, prefixed, unpack_optimizer, unprefixed

SCHEDULES = ("onecycle", "cosine")
ONECYCLE_MIN_STEPS = 8
FEW_STEPS = 100  # an epoch budget below this many steps (small data, default 10 epochs) scored near chance
# torch.compile modes --compile accepts ("default" fuses kernels; "reduce-overhead" also replays CUDA graphs,
# which is what a small model on a GPU needs: its steps are bound by kernel launches, not arithmetic).
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
STATE_JSON = "state.json"  # the checkpoint's commit point: names the tensors file it goes with
STATE_FORMAT = 1
# Between evaluation points a checkpoint at most this often: evaluation points are 10% of the budget apart,
# hours on a long run, and a preempted job should lose minutes, not hours.
CHECKPOINT_SECONDS = 600.0


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
    # test-time augmentation). Fashion-MNIST, fast, batch 512 (CPU): +0.41 points at 2 epochs, +0.49 at 4.
    tta: bool = False

    def __post_init__(self) -> None:
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


class TrainingDiverged(UserError):
    """The loss became non-finite; ``last_good`` holds the weights of the last finite check."""

    def __init__(self, message: str, last_good: dict[str, torch.Tensor], step: int) -> None:
        super().__init__(message)
        self.last_good = last_good
        self.step = step


class TrainingInterrupted(Exception):
    """Training stopped on request (SIGTERM, Ctrl-C or ``should_stop``) at ``step`` of ``steps``; when it had a
    checkpoint folder, the state it stopped in is saved there and ``--resume`` continues it."""

    def __init__(self, step: int, steps: int, saved: bool) -> None:
        super().__init__(f"interrupted at step {step} of {steps}")
        self.step, self.steps, self.saved = step, steps, saved


@dataclass
class TrainState:
    """A checkpoint read back: its tensors and its JSON (step, optimiser groups, metrics, config, data prints)."""

    tensors: dict[str, torch.Tensor]
    meta: dict[str, Any]

    @property
    def step(self) -> int:
        return int(self.meta["step"])

    @property
    def steps(self) -> int:
        return int(self.meta["steps"])


def has_train_state(run: Path) -> bool:
    """Whether ``run`` holds a classifier checkpoint (finished or not)."""
    return (run / STATE_JSON).is_file()


def read_train_state(run: Path, *, tensors: bool = True) -> TrainState:
    """The checkpoint in ``run``, or a UserError naming why there is none to resume (``tensors=False`` reads
    the JSON only: enough for the checks made before the dataset is read)."""
    fresh = f"start it again with --out {run} without --resume"
    if not run.is_dir():
        raise UserError(f"{run}: no such run folder to resume; {fresh}")
    if not has_train_state(run):
        kind = _run_kind(run)
        if kind not in (None, "classifier"):
            raise UserError(f"{run}: is a {kind!r} run, not a classifier run; resume it with `augmentor train {kind}`")
        why = "finished before checkpoints were kept" if kind == "classifier" else "stopped before its first checkpoint"
        raise UserError(f"{run}: holds no classifier training state ({STATE_JSON}): {why}; {fresh} (or --overwrite)")
    try:
        meta = json.loads((run / STATE_JSON).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, OSError) as exc:
        raise UserError(f"{run / STATE_JSON}: unreadable training state ({exc}); {fresh} (or --overwrite)") from None
    if not isinstance(meta, dict) or meta.get("kind") != "classifier":
        raise UserError(f"{run / STATE_JSON}: not a classifier training state; {fresh} (or --overwrite)")
    if meta.get("format") != STATE_FORMAT:
        raise UserError(f"{run / STATE_JSON}: state format {meta.get('format')!r} is not {STATE_FORMAT}; {fresh}")
    if not tensors:
        return TrainState({}, meta)
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    name = str(meta.get("tensors", ""))
    if os.sep in name or name.startswith(".") or not name.endswith(".safetensors"):
        raise UserError(f"{run / STATE_JSON}: names {name!r} as its tensors file; {fresh} (or --overwrite)")
    try:
        return TrainState(load_file(str(run / name)), meta)
    except (SafetensorError, OSError) as exc:
        raise UserError(f"{run / name}: unreadable training state ({exc}); {fresh} (or --overwrite)") from None


def _run_kind(run: Path) -> str | None:
    """The ``kind`` in ``run``'s config.json, if it has a readable one."""
    try:
        kind = json.loads((run / "config.json").read_text()).get("kind")
    except (OSError, ValueError, AttributeError):
        return None
    return kind if isinstance(kind, str) else None


def _write_train_state(folder: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Save a checkpoint atomically: the tensors under a new name, then ``state.json`` naming them replaced in
    one rename (the commit), then older tensors files removed. A kill at any point leaves a consistent pair."""
    from safetensors.torch import save

    from augmentor.core.outdir import write_file_atomic

    name = f"state-{meta['step']:07d}.safetensors"
    write_file_atomic(folder / name, save(tensors))
    write_file_atomic(folder / STATE_JSON, (json.dumps({**meta, "tensors": name}) + "\n").encode())
    for old in folder.glob("state-*.safetensors"):
        if old.name != name:
            old.unlink(missing_ok=True)


# What --resume may change: the budget (the schedule is re-laid over it) and the device name ("auto"/"cuda:0").
_RESUME_FREE = {"steps", "epochs", "device"}
_FLAGS = {"compile_mode": "--compile"}  # TrainConfig fields whose flag is not --field-name


def resumed_config(asked: TrainConfig, saved: dict[str, Any], run: Path) -> TrainConfig:
    """The config a resumed run goes on with: its own, but for a budget or device given anew. Any other flag
    given with --resume that differs from the run's value is refused (it would be silently ignored); one left
    at its default cannot be told from one not given, so it takes the run's value."""
    default = TrainConfig()
    known = {f.name for f in fields(TrainConfig)}
    for name in sorted(known - _RESUME_FREE):
        value = getattr(asked, name)
        if value == getattr(default, name) or value == saved.get(name, getattr(default, name)):
            continue
        flag = _FLAGS.get(name, "--" + name.replace("_", "-"))
        given, own = (f"{flag} {value}", f"{saved.get(name)}") if not isinstance(value, bool) else (flag, "off")
        if name == "flip":  # the one flag on by default: given as --no-flip
            given, own, flag = "--no-flip", "--flip", "--no-flip"
        raise UserError(
            f"{run}: --resume goes on with the run's own settings, and {given} differs from its {own}; "
            f"drop {flag} (only --steps, --epochs and --device may change) or start a new run"
        )
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
    """The step budget from ``steps`` or ``epochs``."""
    if config.steps is not None:
        if config.steps < 1:
            raise UserError(f"--steps must be at least 1, got {config.steps}")
        return config.steps
    epochs = config.epochs if config.epochs is not None else 10.0
    return max(1, math.ceil(epochs * num_images / batch_size))


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


class WeightAverage:
    """An exponential moving average of a model's weights and buffers (model EMA, as timm's ModelEmaV2),
    its decay ramped as min(decay, (1 + t) / (10 + t)) so early steps do not pin it to the initial weights."""

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        import copy

        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay, self.updates = decay, 0

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        ours = [t for t in self.model.state_dict().values() if t.is_floating_point()]
        theirs = [t.detach() for t in model.state_dict().values() if t.is_floating_point()]
        torch._foreach_lerp_(ours, theirs, 1 - decay)
        for mine, live in zip(self.model.buffers(), model.buffers(), strict=True):
            if not mine.is_floating_point():  # counters (BatchNorm's num_batches_tracked) follow the model
                mine.copy_(live)


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
    resume: TrainState | None = None,
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
    from augmentor.classifiers.registry import create_model

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
    num_classes = len(train.class_names)
    height, width = train.size
    if height != width:
        raise UserError(f"classifiers take square images, got {height}×{width}; pass --image-size {max(height, width)}")
    model = (init_model if resume is None else None) or create_model(config.arch, num_classes, train.channels, height)
    if config.freeze_backbone:
        for parameter in model.backbone_parameters():
            parameter.requires_grad_(False)
    model.to(device)
    cuda = device.type == "cuda"
    # channels_last pays on CPU too: oneDNN's convolutions ran a `fast` step 1.5× faster with it.
    model.to(memory_format=torch.channels_last)

    images, labels = to_device(train, device)
    mean, std = channel_stats(images)
    flat = [c for c, deviation in enumerate(std) if deviation < 2e-3]  # at channel_stats' floor: no spread
    if flat:
        warn(
            f"channel {', '.join(map(str, flat))} of the training images is one flat value everywhere: there is "
            "nothing in it to learn from (check the data, or --channels 1 for grey images saved as colour)"
        )
    batch_size = min(config.batch_size, len(train))
    mixing = config.real_presentations is not None or synthetic is not None
    if mixing:
        presentations = config.real_presentations or budget_steps(config, len(train), batch_size) * batch_size
        real_counts, synthetic_counts = step_plan(
            presentations, batch_size, synthetic.share if synthetic else 0.0, config.finetune_real
        )
        steps = len(real_counts)
        if synthetic is not None:
            if synthetic.images.shape[1:] != train.images.shape[1:] or synthetic.targets.shape[1] != num_classes:
                raise UserError(
                    f"internal: synthetic pool of shape {list(synthetic.images.shape[1:])} with "
                    f"{synthetic.targets.shape[1]} classes for a {list(train.images.shape[1:])} set of {num_classes}"
                )
            pool_images = torch.from_numpy(synthetic.images).to(device)
            pool_targets = torch.from_numpy(synthetic.targets).to(device)
    else:
        steps = budget_steps(config, len(train), batch_size)
        if config.steps is None and steps < FEW_STEPS and resume is None:
            epochs = config.epochs if config.epochs is not None else 10.0
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
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=config.weight_decay, fused=cuda or None)
    # Under torchrun every rank draws the same global batch and trains on its rows (distributed.data_parallel).
    context = current()
    network = data_parallel.wrap(model, device, context)
    if config.compile_mode is not None and not cuda:
        warn(
            f"--compile {config.compile_mode} on the CPU: measured on 2 cores, it compiled for a minute and then "
            "ran a `fast` step 1.4x slower than without"
        )
    network, mark_step = compiled(network, config.compile_mode)
    schedule = make_schedule(optimizer, config.schedule, config.lr, steps)
    generator = seeded_generator(config.seed, device)
    # RandAugment's op and sign draws: their own CPU generator (no device sync to group images by op), so the
    # crop/flip stream is the same with or without it.
    augment_ops = parse_randaugment(config.randaugment) if config.randaugment else None
    augment_generator = torch.Generator().manual_seed(
        int(np.random.SeedSequence([config.seed, 91]).generate_state(1)[0])
    )

    drawn = int(synthetic_counts.sum()) if synthetic is not None else 0
    record = run_record(train, config, steps, batch_size, (mean, std), synthetic, drawn, device)
    classifier = Classifier(model, record)
    if test is not None:
        classifier.check_images(test, "the test set")  # before training, not at the first evaluation
    average = WeightAverage(model, config.ema) if config.ema else None
    evaluated = Classifier(average.model, record) if average else classifier  # what evaluations score
    # Log (and evaluate, with a test set) at ``evals`` points; each is also a "last good" checkpoint.
    eval_points = {max(1, round(steps * (k + 1) / max(1, config.evals))) for k in range(max(1, config.evals))}
    check_every = 1 if not cuda else 50  # a finite-loss check costs a device sync: rarer on GPU
    metrics: list[dict[str, Any]] = []
    loss_sum = torch.zeros((), device=device)
    loss_count = 0
    eval_seconds = 0.0  # kept apart so "train_seconds" measures training alone (time-to-accuracy)
    presented = 0  # real images shown so far
    mix_rng = np.random.default_rng([config.seed, 77])  # mixup/cutmix shares and boxes: seeded, on the CPU
    best: tuple[int, float, dict[str, torch.Tensor]] | None = None  # (step, validation accuracy, weights)
    stream = None if mixing else _IndexStream(len(train), batch_size, generator, device)
    if resume is not None:
        _load_state(resume, model, optimizer, schedule, average, device, stream, generator, augment_generator)
        meta = resume.meta
        metrics = [m for m in meta["metrics"] if m["step"] <= start_step]
        loss_sum = resume.tensors["loss.sum"].to(device)
        loss_count, presented, eval_seconds = meta["loss_count"], meta["presented"], meta["eval_seconds"]
        mix_rng.bit_generator.state = meta["mix_rng"]
        if meta["best"] is not None:
            best = (meta["best"]["step"], meta["best"]["accuracy"], _unprefixed("best", resume.tensors, device))
    # After a resume: the clock goes on from the checkpoint, the weights it saved are the last good ones.
    started = time.perf_counter() - (resume.meta["seconds"] if resume is not None else 0.0)
    last_good = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.train()
    if mixing:
        batches = itertools.islice(
            _mixed_batches(
                real_counts,
                synthetic_counts,
                len(train),
                len(synthetic.images) if synthetic else 0,
                config.seed,
                device,
            ),
            start_step,
            None,
        )
    else:
        batches = ((stream.take(), None) for _ in range(steps - start_step))
    mixing_batches = config.mixup > 0 or config.cutmix > 0
    writes = checkpoint_dir is not None and context.is_main  # under torchrun rank 0 alone writes
    if writes:
        prints = _fingerprints(test, validation, synthetic)

    def save(step: int) -> None:
        tensors = prefixed("model", model.state_dict())
        packed, optimizer_meta = pack_optimizer("optimizer", optimizer.state_dict())
        tensors.update(packed)
        if average is not None:
            tensors.update(prefixed("ema", average.model.state_dict()))
        if best is not None:
            tensors.update(prefixed("best", best[2]))
        tensors["rng.data"] = generator.get_state()
        tensors["rng.torch"] = torch.get_rng_state()  # dropout draws from the global generators
        if cuda:
            tensors["rng.cuda"] = torch.cuda.get_rng_state(device)
        tensors["rng.randaugment"] = augment_generator.get_state()
        if stream is not None:
            tensors["data.pending"] = stream.pending.detach().cpu()
        tensors["loss.sum"] = loss_sum.detach().cpu()
        meta = {
            "format": STATE_FORMAT,
            "kind": "classifier",
            "step": step,
            "steps": steps,
            "config": asdict(config),
            "device_type": device.type,
            "fingerprints": {"train": record["dataset"]["fingerprint"], **prints},
            **(state_info or {}),
            "optimizer": optimizer_meta,
            "ema_updates": average.updates if average is not None else 0,
            "best": {"step": best[0], "accuracy": best[1]} if best is not None else None,
            "mix_rng": mix_rng.bit_generator.state,
            "loss_count": loss_count,
            "presented": presented,
            "seconds": time.perf_counter() - started,
            "eval_seconds": eval_seconds,
            "metrics": metrics,
        }
        _write_train_state(checkpoint_dir, tensors, meta)

    saved_at = time.perf_counter()
    interruptible = checkpoint_dir is not None or should_stop is not None
    with (
        stop_requests(checkpoint_dir is not None) as stop,
        progress(f"training {config.arch}", steps - start_step) as advance,
    ):
        for step, (index, synthetic_index) in enumerate(batches, start=start_step + 1):
            mark_step()
            batch = images[index]
            if synthetic_index is not None:
                batch = torch.cat([batch, pool_images[synthetic_index]])
            batch = random_crop(batch, config.crop_padding, generator)
            if config.flip:
                batch = random_flip(batch, generator)
            if augment_ops is not None:  # after crop and flip, as timm orders them
                batch = rand_augment(batch, *augment_ops, augment_generator)
            shard = data_parallel.rows(len(batch), context)
            targets = pool_targets[synthetic_index] if synthetic_index is not None else None
            weight = synthetic.weight if synthetic is not None else 1.0
            if mixing_batches:  # on the whole (global) batch, so the ranks' shards are those of one process
                inputs = classifier.normalise(batch)
                rows, row_weights = soft_targets(labels[index], targets, num_classes, weight, config.label_smoothing)
                inputs, rows, row_weights = mix_batch(
                    inputs, rows, row_weights, config.mixup, config.cutmix, mix_rng, generator
                )
                if shard is not None:
                    shard = shard.to(device)
                    inputs, rows, row_weights = inputs[shard], rows[shard], row_weights[shard]
                inputs = inputs.contiguous(memory_format=torch.channels_last)
            else:
                if shard is not None:
                    batch = batch[shard.to(device)]
                inputs = classifier.normalise(batch).contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
                logits = network(inputs)
            if mixing_batches:
                per_row = -(rows * F.log_softmax(logits.float(), dim=1)).sum(dim=1) * row_weights
                if shard is not None:
                    loss = per_row.sum() * data_parallel.loss_scale(
                        len(index) + (len(targets) if targets is not None else 0), context
                    )
                else:
                    loss = per_row.mean()
            elif shard is not None:
                scale = data_parallel.loss_scale(len(index) + (len(targets) if targets is not None else 0), context)
                loss = _shard_loss(
                    logits.float(), shard.to(device), labels[index], targets, weight, config.label_smoothing, scale
                )
            elif targets is None:
                loss = F.cross_entropy(logits.float(), labels[index], label_smoothing=config.label_smoothing)
            else:
                loss = _mixed_loss(logits.float(), labels[index], targets, weight, config.label_smoothing)
            presented += len(index)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if average is not None:
                average.update(model)
            lr_used = optimizer.param_groups[0]["lr"]
            schedule.step()
            loss_sum += loss.detach()
            loss_count += 1
            checkpoint = step % check_every == 0 or step in eval_points or step == steps
            requested = interruptible and (stop["stop"] or (should_stop is not None and bool(should_stop(step))))
            if not context.distributed:
                stopping = requested
                checkpoint = checkpoint or stopping  # nothing non-finite is saved
            elif interruptible and checkpoint:  # every rank stops at the same step (a collective: check steps only)
                stopping = bool(data_parallel.all_sum(torch.tensor(float(requested), device=device), context) > 0)
            else:
                stopping = False
            if checkpoint and context.distributed:  # every rank stops together, and logs the global loss
                loss_sum = data_parallel.all_sum(loss_sum, context) / context.world_size
            if checkpoint and not torch.isfinite(loss_sum):
                raise TrainingDiverged(
                    f"the loss became non-finite by step {step} (last finite check: step "
                    f"{metrics[-1]['step'] if metrics else 0}); lower --lr (now {config.lr})",
                    last_good,
                    step,
                )
            evaluation = step in eval_points or step == steps
            if evaluation:
                entry = {
                    "step": step,
                    "epoch": round(presented / len(train), 3),
                    "train_loss": round(float(loss_sum) / loss_count, 5),
                    "lr": lr_used,
                    "seconds": round(time.perf_counter() - started, 3),
                    "train_seconds": round(time.perf_counter() - started - eval_seconds, 3),
                }
                loss_sum.zero_()
                loss_count = 0
                if context.is_main:  # the weights are the same on every rank
                    eval_started = time.perf_counter()
                    if validation is not None:
                        entry["val_accuracy"] = evaluated.evaluate(validation)["accuracy"]
                    if test is not None:
                        entry["test_accuracy"] = evaluated.evaluate(test)["accuracy"]
                    model.train()
                    eval_seconds += time.perf_counter() - eval_started
                metrics.append(entry)
                last_good = {k: v.detach().clone() for k, v in model.state_dict().items()}
                if "val_accuracy" in entry and (best is None or entry["val_accuracy"] > best[1]):
                    scored = evaluated.model.state_dict()
                    best = (step, entry["val_accuracy"], {k: v.detach().clone() for k, v in scored.items()})
            # Saved after a finite check only: at evaluation points, on a stop, and every CHECKPOINT_SECONDS.
            if writes and (
                evaluation or stopping or (checkpoint and time.perf_counter() - saved_at > CHECKPOINT_SECONDS)
            ):
                save(step)
                saved_at = time.perf_counter()
            advance(1)
            if stopping:
                if context.distributed:  # the other ranks wait for rank 0's checkpoint before they exit
                    barrier()
                raise TrainingInterrupted(step, steps, saved=checkpoint_dir is not None)
    record["training"]["seconds"] = round(time.perf_counter() - started, 3)
    last_loss = metrics[-1]["train_loss"] if metrics else float("nan")
    if steps >= FEW_STEPS and num_classes > 1 and last_loss >= 0.95 * math.log(num_classes):
        warn(
            f"the training loss ended at {last_loss:.3f}, no better than guessing among {num_classes} classes "
            f"(ln {num_classes} = {math.log(num_classes):.3f}): the model learnt nothing; lower --lr (now "
            f"{config.lr:g}) or check the labels"
        )
    if average is not None:  # the averaged weights are the ones evaluated, so the ones kept
        model.load_state_dict(average.model.state_dict())
    if best is not None:
        if config.keep == "best":
            model.load_state_dict(best[2])
        record["validation"] = {
            "images": len(validation),
            "best_step": best[0],
            "best_accuracy": best[1],
            "kept": config.keep,
            "kept_step": best[0] if config.keep == "best" else steps,
        }
    if test is not None and context.is_main:
        classifier.final = classifier.evaluate(test)
        record["test"] = {"accuracy": classifier.final["accuracy"], "images": len(test)}
    classifier.metrics = metrics
    model.eval()
    return classifier


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


def _unprefixed(prefix: str, tensors: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device) for k, v in unprefixed(prefix, tensors).items()}


def _load_state(
    state: TrainState,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    schedule: Any,
    average: WeightAverage | None,
    device: torch.device,
    stream: _IndexStream | None,
    generator: torch.Generator,
    augment_generator: torch.Generator,
) -> None:
    """Put a checkpoint's tensors back: weights, AdamW moments, EMA, schedule position and random states."""
    from augmentor.core.runs import load_matching

    tensors, meta = state.tensors, state.meta
    load_matching(model, unprefixed("model", tensors), "the checkpoint's weights")
    # The schedule replayed to the step over this run's budget (the same floats as the run computed, or the
    # budget re-laid when --steps grew); the optimiser's own groups would hold the old budget's rates.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "scheduler.step() before optimizer.step()"
        for _ in range(state.step):
            schedule.step()
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
                if torch.is_tensor(value) and value.shape == parameter.shape and value.stride() != parameter.stride():
                    slots[key] = torch.empty_like(parameter, dtype=value.dtype).copy_(value)
    if average is not None:
        load_matching(average.model, unprefixed("ema", tensors), "the checkpoint's averaged weights")
        average.updates = meta["ema_updates"]
    generator.set_state(tensors["rng.data"])
    augment_generator.set_state(tensors["rng.randaugment"])
    torch.set_rng_state(tensors["rng.torch"])
    if "rng.cuda" in tensors and device.type == "cuda":
        torch.cuda.set_rng_state(tensors["rng.cuda"], device)
    if stream is not None:
        stream.pending = tensors["data.pending"].to(device)
