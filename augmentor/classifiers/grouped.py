"""Several `fast` classifiers trained as one grouped network, each exactly as ``train_classifier`` trains it alone.

A `fast` step on a GPU is bound by kernel launches whatever the batch (README, Scaling out), so K small models
trained one after another pay K times the launches. ``GroupedFast`` holds K copies of `fast` as one module: every
convolution a grouped one (groups=K), every BatchNorm over K×C channels (so its statistics stay per model), the head one
batched matrix product. The K models' batches go in stacked along the channels and each model's channels only
ever meet its own weights, so the forward, the gradients of the summed per-model losses and AdamW's elementwise
update are those of K separate runs, up to float rounding. ``train_together`` runs that loop with each model's
own data stream, augmentation draws and normalisation, and hands back K ordinary ``Classifier`` objects.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from augmentor.classifiers.architectures import ClassifierNet, FastBlock, Scale
from augmentor.classifiers.augment import mix_batch, soft_targets
from augmentor.classifiers.classifier import Classifier
from augmentor.classifiers.evaluate import align_classes
from augmentor.classifiers.mixing import SyntheticPool, step_plan
from augmentor.classifiers.train import (
    FEW_STEPS,
    TrainConfig,
    _batches,
    _mixed_batches,
    budget_steps,
    check_trainable,
    compiled,
    make_schedule,
    run_record,
    update,
)
from augmentor.core.console import warn
from augmentor.core.device import channel_stats, resolve_device, seeded_generator, to_device
from augmentor.core.errors import UserError
from augmentor.data.imageset import ImageSet
from augmentor.distributed.context import current
from augmentor.training.batch_augment import random_crop, random_flip
from augmentor.training.ema import WeightAverage
from augmentor.training.loop import Plan, Progress, fit

# The layers a `fast` network's features are made of: convolutions and norms are widened, the rest act on
# each channel alone (GELU, max-pool), so K models' channels side by side never mix.
_FAST_LAYERS = (nn.Sequential, FastBlock, nn.Conv2d, nn.BatchNorm2d, nn.GELU, nn.MaxPool2d)
_HEAD = "head.weight"  # the one tensor stacked (K × classes × features) rather than concatenated along dim 0


class CannotGroup(UserError):
    """These models or runs cannot be trained as one grouped network; train them one at a time."""


def check_groupable(model: nn.Module) -> None:
    """Refuse anything but the `fast` architecture (any width): features of ``_FAST_LAYERS``, a global max-pool,
    a fixed scale and a bias-free head."""
    name = getattr(model, "arch", "") or type(model).__name__
    refused = CannotGroup(f"only the fast architecture trains grouped, not {name}: train these models one at a time")
    if not isinstance(model, ClassifierNet):
        raise refused
    pool = model.pool
    if not (isinstance(pool, nn.AdaptiveMaxPool2d) and pool.output_size in (1, (1, 1))):
        raise refused
    if not isinstance(model.neck, Scale) or model.head.bias is not None:
        raise refused
    for module in model.features.modules():
        if type(module) not in _FAST_LAYERS:
            raise refused
        if isinstance(module, nn.Conv2d) and (module.groups != 1 or module.padding_mode != "zeros"):
            raise refused
        if isinstance(module, nn.BatchNorm2d) and not (module.affine and module.track_running_stats):
            raise refused


def _widen(module: nn.Module, count: int) -> None:
    """Replace, in place, every Conv2d by a K-group one and every BatchNorm2d by one over K times the channels."""
    for name, child in module.named_children():
        if isinstance(child, nn.Conv2d):
            wide: nn.Module = nn.Conv2d(
                child.in_channels * count,
                child.out_channels * count,
                child.kernel_size,
                stride=child.stride,
                padding=child.padding,
                dilation=child.dilation,
                groups=child.groups * count,
                bias=child.bias is not None,
                device=child.weight.device,
                dtype=child.weight.dtype,
            )
        elif isinstance(child, nn.BatchNorm2d):
            wide = nn.BatchNorm2d(
                child.num_features * count,
                eps=child.eps,
                momentum=child.momentum,
                device=child.weight.device,
                dtype=child.weight.dtype,
            )
        else:
            _widen(child, count)
            continue
        setattr(module, name, wide)


class GroupedHead(nn.Module):
    """K bias-free linear heads as one batched matrix product: N×K×F features → N×K×classes logits."""

    def __init__(self, count: int, in_features: int, num_classes: int, *, device=None, dtype=None) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(count, num_classes, in_features, device=device, dtype=dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Model k's features times model k's head, for every k at once."""
        return torch.bmm(x.transpose(0, 1), self.weight.transpose(1, 2)).transpose(0, 1)


class GroupedFast(nn.Module):
    """K `fast` networks as one: input N×(K·C)×H×W (model k's batch in channels k·C … k·C+C-1), output N×K×classes.

    Its state dict has the plain model's keys: each tensor is the K models' tensors concatenated along dim 0
    (the head's stacked into K×classes×F), BatchNorm's step counter shared. Build it with ``from_models``; get
    the weights back with ``copy_to`` (into existing models) or ``to_models`` (new ones).
    """

    def __init__(self, template: ClassifierNet, count: int) -> None:
        super().__init__()
        check_groupable(template)
        if count < 1:
            raise ValueError(f"a group needs at least one model, got {count}")
        wide = copy.deepcopy(template)
        _widen(wide.features, count)
        self.features = wide.features
        self.pool = wide.pool
        self.neck = wide.neck
        head = template.head
        self.head = GroupedHead(
            count, head.in_features, head.out_features, device=head.weight.device, dtype=head.weight.dtype
        )
        self.count = count
        self.arch = template.arch
        # A plain model to clone in ``to_models``; in a tuple so it is no submodule (not in state_dict, not moved).
        self._plain = (copy.deepcopy(template).cpu(),)

    @classmethod
    def from_models(cls, models: Sequence[ClassifierNet]) -> GroupedFast:
        """One grouped network holding ``models``' weights and BatchNorm buffers, on their device."""
        if not models:
            raise ValueError("from_models needs at least one model")
        for model in models:
            check_groupable(model)
        shapes = {k: v.shape for k, v in models[0].state_dict().items()}
        for index, model in enumerate(models[1:], start=1):
            other = {k: v.shape for k, v in model.state_dict().items()}
            if other != shapes or model.neck.factor != models[0].neck.factor:
                raise CannotGroup(
                    f"model {index} differs in shape from model 0 (another width, class or channel count)"
                )
        grouped = cls(models[0], len(models))
        grouped.load_models(models)
        return grouped

    @torch.no_grad()
    def load_models(self, models: Sequence[ClassifierNet]) -> None:
        """Copy the K models' weights and buffers into the grouped layout."""
        if len(models) != self.count:
            raise ValueError(f"{len(models)} models for a group of {self.count}")
        states = [model.state_dict() for model in models]
        for key, target in self.state_dict().items():
            parts = [state[key] for state in states]
            if key == _HEAD:
                target.copy_(torch.stack(parts))
            elif target.ndim == 0:  # num_batches_tracked: equal in models trained in step
                target.copy_(parts[0])
            else:
                target.copy_(torch.cat(parts))

    @torch.no_grad()
    def copy_to(self, models: Sequence[ClassifierNet]) -> None:
        """Write the grouped weights and buffers into K existing plain models (their device and strides kept)."""
        if len(models) != self.count:
            raise ValueError(f"{len(models)} models for a group of {self.count}")
        grouped = self.state_dict()
        for index, model in enumerate(models):
            for key, target in model.state_dict().items():
                source = grouped[key]
                if key == _HEAD:
                    target.copy_(source[index])
                elif source.ndim == 0:
                    target.copy_(source)
                else:
                    target.copy_(source.chunk(self.count)[index])

    def to_models(self) -> list[ClassifierNet]:
        """K new plain models with the grouped weights and BatchNorm running statistics, on the grouped device."""
        weight = self.head.weight
        models = [copy.deepcopy(self._plain[0]).to(device=weight.device, dtype=weight.dtype) for _ in range(self.count)]
        self.copy_to(models)
        for model in models:
            model.train(self.training)
        return models

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """N×(K·C)×H×W → N×K×classes logits; as ``ClassifierNet.forward`` per model."""
        features = self.neck(torch.flatten(self.pool(self.features(x)), 1))
        return self.head(features.view(len(features), self.count, -1))


def _grouped_loss(
    logits: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor | None, weights: torch.Tensor, smoothing: float
) -> torch.Tensor:
    """Each model's loss (a K vector) from N×K×classes logits: cross-entropy on ``labels`` (n×K) as
    ``train_classifier`` computes it, or with pool ``targets`` (m×K×classes) ``train._mixed_loss`` per model."""
    logits = logits.permute(0, 2, 1)  # N×classes×K: cross_entropy's class dimension is dim 1
    if targets is None:
        return F.cross_entropy(logits, labels, label_smoothing=smoothing, reduction="none").mean(0)
    n = len(labels)
    real = F.cross_entropy(logits[:n], labels, label_smoothing=smoothing, reduction="none").sum(0)
    synthetic = F.cross_entropy(logits[n:], targets.permute(0, 2, 1), label_smoothing=smoothing, reduction="none").sum(
        0
    )
    return (real + weights * synthetic) / len(logits)


def _plan(
    train: ImageSet, config: TrainConfig, synthetic: SyntheticPool | None
) -> tuple[bool, int, int, np.ndarray | None, np.ndarray | None]:
    """``train_classifier``'s budget for one run: (mixed, batch size, steps, real and synthetic images per step)."""
    batch_size = min(config.batch_size, len(train))
    if config.real_presentations is None and synthetic is None:
        return False, batch_size, budget_steps(config, len(train), batch_size), None, None
    presentations = config.real_presentations or budget_steps(config, len(train), batch_size) * batch_size
    share = synthetic.share if synthetic else 0.0
    real_counts, synthetic_counts = step_plan(presentations, batch_size, share, config.finetune_real)
    return True, batch_size, len(real_counts), real_counts, synthetic_counts


def _check_same_runs(
    trains: Sequence[ImageSet], configs: Sequence[TrainConfig], synthetic: Sequence[SyntheticPool | None]
) -> tuple[bool, int, int, np.ndarray | None, np.ndarray | None]:
    """The runs' common plan; refuse runs that are not K copies of one run but for the seed and the data."""
    first = configs[0]
    if first.randaugment:  # its per-image op draws are one generator's; K models would need K of them
        raise CannotGroup("--randaugment runs train one at a time")
    for index, config in enumerate(configs[1:], start=1):
        differ = [
            f.name
            for f in fields(TrainConfig)
            if f.name != "seed" and getattr(config, f.name) != getattr(first, f.name)
        ]
        if differ:
            raise CannotGroup(
                f"runs trained together may differ only in seed; run {index} also differs in {', '.join(differ)}"
            )
    for index, train in enumerate(trains[1:], start=1):
        if train.class_names != trains[0].class_names or train.images.shape[1:] != trains[0].images.shape[1:]:
            raise CannotGroup(f"run {index}'s images or classes differ in shape from run 0's; train them one at a time")
    plans = [_plan(train, config, pool) for train, config, pool in zip(trains, configs, synthetic, strict=True)]
    for index, plan in enumerate(plans[1:], start=1):
        same = plan[:3] == plans[0][:3] and all(
            (a is None and b is None) or (a is not None and b is not None and np.array_equal(a, b))
            for a, b in zip(plan[3:], plans[0][3:], strict=True)
        )
        if not same:
            raise CannotGroup(
                f"run {index} takes other batches than run 0 (steps, batch size or real/synthetic images per step "
                "differ: another set size, budget or synthetic share); train them one at a time"
            )
    return plans[0]


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def train_together(
    trains: list[ImageSet],
    configs: list[TrainConfig],
    synthetic: list[SyntheticPool | None] | None = None,
    test: ImageSet | None = None,
) -> list[Classifier]:
    """Train K `fast` models as one grouped network, each as ``train_classifier(trains[k], configs[k], test,
    synthetic=synthetic[k])`` would: its initial weights, batches, augmentation draws, normalisation, loss and
    AdamW schedule, up to float rounding. The K configs may differ only in ``seed``, and every run must take the
    same number of real and synthetic images at every step; otherwise ``CannotGroup`` (train one at a time).

    Returns K ``Classifier`` objects as ``train_classifier`` returns them (record, ``metrics``, ``final`` given
    ``test``); ``training.seconds`` in each record is the whole group's time. A group keeps no checkpoint: it
    is the gain experiment's, whose jobs restart whole.
    """
    count = len(trains)
    pools: list[SyntheticPool | None] = list(synthetic) if synthetic is not None else [None] * count
    if count == 0 or len(configs) != count or len(pools) != count:
        raise UserError(f"internal: {count} training sets, {len(configs)} configs and {len(pools)} synthetic pools")
    if current().distributed:  # train_classifier's DDP path shards each batch over ranks; a group has no such path
        raise CannotGroup("grouped training runs in one process; under torchrun train the models one at a time")
    task = GroupedTask(trains, configs, pools, test)
    check_every = 1 if task.device.type != "cuda" else 50  # a finite-loss check costs a device sync: rarer on GPU
    return task.finish(fit(task, Plan(task.steps, task.eval_points, check_every=check_every)))


class GroupedTask:
    """K runs' step as one grouped network, their log entries and evaluations: the group's part of ``training.fit``."""

    def __init__(
        self,
        trains: list[ImageSet],
        configs: list[TrainConfig],
        pools: list[SyntheticPool | None],
        test: ImageSet | None,
    ) -> None:
        from augmentor.classifiers.registry import create_model

        self.trains, self.configs, self.pools, self.count = trains, configs, pools, len(trains)
        self.config = config = configs[0]
        mixing, batch_size, steps, real_counts, synthetic_counts = _check_same_runs(trains, configs, pools)
        for train in trains:
            check_trainable(train)
        first = trains[0]
        self.test = align_classes(first.class_names, test) if test is not None else None
        self.device = device = resolve_device(config.device)
        self.cuda = device.type == "cuda"
        self.steps, self.title = steps, f"training {self.count}× {config.arch} together"
        self.num_classes = num_classes = len(first.class_names)
        height, width = first.size
        if height != width:
            raise UserError(
                f"classifiers take square images, got {height}×{width}; pass --image-size {max(height, width)}"
            )
        self.models = []
        for run in configs:
            torch.manual_seed(run.seed)  # each model's initial weights as train_classifier draws them
            self.models.append(create_model(config.arch, num_classes, first.channels, height))
        for model in self.models:
            if config.freeze_backbone:
                for parameter in model.backbone_parameters():
                    parameter.requires_grad_(False)
            model.to(device).to(memory_format=torch.channels_last)
        self.grouped = grouped = GroupedFast.from_models(self.models).to(memory_format=torch.channels_last)
        if config.freeze_backbone:
            for parameter in itertools.chain(grouped.features.parameters(), grouped.pool.parameters()):
                parameter.requires_grad_(False)
        self.data = [to_device(train, device) for train in trains]
        stats = [_flat_channels_said(index, images) for index, (images, _) in enumerate(self.data)]
        if not mixing and config.steps is None and config.epochs is not None and steps < FEW_STEPS:
            epochs = config.epochs
            warn(
                f"{epochs:g} epochs of {len(first)} images at batch {batch_size} is only {steps} optimiser steps, "
                f"too few to learn much from small data; pass --steps {FEW_STEPS * 3} or more"
            )
        self.pool_images, self.pool_targets = _pools_on_device(trains, pools, num_classes, device)
        self.pool_weights = [pool.weight if pool is not None else 1.0 for pool in pools]
        self.weights = torch.tensor(self.pool_weights, device=device)
        trainable = [p for p in grouped.parameters() if p.requires_grad]
        # AdamW is elementwise, so one optimiser over the grouped tensors is K optimisers with one schedule.
        self.optimizer = torch.optim.AdamW(
            trainable, lr=config.lr, weight_decay=config.weight_decay, fused=self.cuda or None
        )
        if config.compile_mode is not None and not self.cuda:
            warn(f"--compile {config.compile_mode} on the CPU: compiling takes minutes and the step runs no faster")
        self.network, self.mark_step = compiled(grouped, config.compile_mode)
        self.schedule = make_schedule(self.optimizer, config.schedule, config.lr, steps)
        self.generators = [seeded_generator(run.seed, device) for run in configs]
        self.classifiers: list[Classifier] = []
        for train, run, model, pool, normalisation in zip(trains, configs, self.models, pools, stats, strict=True):
            drawn = int(synthetic_counts.sum()) if pool is not None else 0
            record = run_record(train, run, steps, batch_size, normalisation, pool, drawn, device)
            self.classifiers.append(Classifier(model, record))
        if self.test is not None:
            self.classifiers[0].check_images(self.test, "the test set")
        self.average = WeightAverage(grouped, config.ema) if config.ema else None
        self.averaged = (
            [copy.deepcopy(model).eval().requires_grad_(False) for model in self.models]
            if self.average
            else self.models
        )
        self.evaluated = [Classifier(model, c.config) for model, c in zip(self.averaged, self.classifiers, strict=True)]
        evals = max(1, config.evals)
        self.eval_points = {max(1, round(steps * (k + 1) / evals)) for k in range(evals)}
        self.batches: list[Iterator[tuple[torch.Tensor, torch.Tensor | None]]] = []
        for train, run, pool, generator in zip(trains, configs, pools, self.generators, strict=True):
            if mixing:
                pool_size = len(pool.images) if pool is not None else 0
                self.batches.append(
                    _mixed_batches(real_counts, synthetic_counts, len(train), pool_size, run.seed, device)
                )
            else:
                self.batches.append((i, None) for i in _batches(len(train), batch_size, steps, generator, device))
        self.presented = 0
        self.lr_used = config.lr
        self.mix_rngs = [np.random.default_rng([run.seed, 77]) for run in configs]
        grouped.train()

    def train_step(self, step: int) -> dict[str, torch.Tensor]:
        config = self.config
        self.mark_step()
        mixing_batches = config.mixup > 0 or config.cutmix > 0
        inputs, real_labels, targets, rows, row_weights = [], [], [], [], []
        # Each model's batch from its own streams, drawn in train_classifier's order.
        for k in range(self.count):
            index, synthetic_index = next(self.batches[k])
            images, labels = self.data[k]
            batch = images[index]
            if synthetic_index is not None:
                batch = torch.cat([batch, self.pool_images[k][synthetic_index]])
            batch = random_crop(batch, config.crop_padding, self.generators[k])
            if config.flip:
                batch = random_flip(batch, self.generators[k])
            target = self.pool_targets[k][synthetic_index] if synthetic_index is not None else None
            x = self.classifiers[k].normalise(batch)
            if mixing_batches:
                rows_k, weights_k = soft_targets(
                    labels[index], target, self.num_classes, self.pool_weights[k], config.label_smoothing
                )
                x, rows_k, weights_k = mix_batch(
                    x, rows_k, weights_k, config.mixup, config.cutmix, self.mix_rngs[k], self.generators[k]
                )
                rows.append(rows_k)
                row_weights.append(weights_k)
            inputs.append(x)
            real_labels.append(labels[index])
            if target is not None:
                targets.append(target)
        stacked = torch.cat(inputs, dim=1).contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cuda):
            logits = self.network(stacked)
        if mixing_batches:
            log_proba = F.log_softmax(logits.float(), dim=2)
            losses = (-(torch.stack(rows, 1) * log_proba).sum(2) * torch.stack(row_weights, 1)).mean(0)
        else:
            losses = _grouped_loss(
                logits.float(),
                torch.stack(real_labels, 1),
                torch.stack(targets, 1) if targets else None,
                self.weights,
                config.label_smoothing,
            )
        self.presented += len(real_labels[0])
        # A sum of per-model losses: each model's gradient is its own loss's.
        self.lr_used = update(losses.sum(), self.optimizer, self.schedule, self.average, self.grouped)
        return {"loss": losses}

    def log_entry(self, step: int, means: dict[str, Any]) -> dict[str, Any]:
        """One entry for the group (``finish`` splits it per model): each model's mean loss in a list."""
        return {"step": step, "presented": self.presented, "train_loss": means["loss"].tolist(), "lr": self.lr_used}

    def evaluate(self, step: int, entry: dict[str, Any]) -> None:
        self.grouped.copy_to(self.models)
        if self.average is not None:
            self.average.model.copy_to(self.averaged)
        if self.test is not None:
            entry["test_accuracy"] = [model.evaluate(self.test)["accuracy"] for model in self.evaluated]

    def is_checkpoint_point(self, step: int) -> bool:
        return False

    def write_beside(self, folder: Path, step: int, metrics: list[dict[str, Any]]) -> None:
        raise AssertionError("a group keeps no checkpoint")

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        raise AssertionError("a group keeps no checkpoint")

    def snapshot(self) -> list[dict[str, torch.Tensor]]:
        return [{k: v.detach().clone() for k, v in model.state_dict().items()} for model in self.models]

    def restore(self, snapshot: Any, rollbacks: int) -> None:
        raise AssertionError("a group takes no rollbacks (Plan.max_rollbacks is 0)")

    def diverged_advice(self, step: int, last_good_step: int, rollbacks: int, sums: dict[str, torch.Tensor]) -> str:
        bad = int((~torch.isfinite(sums["loss"])).nonzero()[0])
        return (
            f"run {bad} (seed {self.configs[bad].seed}): the loss became non-finite by step {step} (last finite "
            f"check: step {last_good_step}); lower --lr (now {self.config.lr})"
        )

    def finish(self, progress: Progress) -> list[Classifier]:
        """The K classifiers with the kept (averaged) weights, each with its own metrics and test scores."""
        config, num_classes = self.config, self.num_classes
        seconds = round(progress.seconds, 3)
        (self.average.model if self.average is not None else self.grouped).copy_to(self.models)
        for k, classifier in enumerate(self.classifiers):
            metrics = [_entry_of(entry, k, len(self.trains[k])) for entry in progress.metrics]
            classifier.config["training"]["seconds"] = seconds
            last_loss = metrics[-1]["train_loss"] if metrics else float("nan")
            if self.steps >= FEW_STEPS and num_classes > 1 and last_loss >= 0.95 * np.log(num_classes):
                warn(
                    f"run {k}: the training loss ended at {last_loss:.3f}, no better than guessing among "
                    f"{num_classes} classes (ln {num_classes} = {np.log(num_classes):.3f}): the model learnt nothing; "
                    f"lower --lr (now {config.lr:g}) or check the labels"
                )
            if self.test is not None:
                classifier.final = classifier.evaluate(self.test)
                classifier.config["test"] = {"accuracy": classifier.final["accuracy"], "images": len(self.test)}
            classifier.metrics = metrics
            classifier.model.eval()
        return self.classifiers


def _entry_of(entry: dict[str, Any], k: int, images: int) -> dict[str, Any]:
    """Model ``k``'s metrics entry from the group's (whose losses and accuracies are lists over the models)."""
    own = {
        "step": entry["step"],
        "epoch": round(entry["presented"] / images, 3),
        "train_loss": round(entry["train_loss"][k], 5),
    }
    own.update(lr=entry["lr"], seconds=entry["seconds"], train_seconds=entry["train_seconds"])
    if "test_accuracy" in entry:
        own["test_accuracy"] = entry["test_accuracy"][k]
    return own


def _flat_channels_said(index: int, images: torch.Tensor) -> tuple[list[float], list[float]]:
    """Run ``index``'s normalisation (per-channel mean and std); a flat channel is said."""
    mean, std = channel_stats(images)
    flat = [c for c, deviation in enumerate(std) if deviation < 2e-3]
    if flat:
        warn(
            f"run {index}: channel {', '.join(map(str, flat))} of the training images is one flat value "
            "everywhere: there is nothing in it to learn from (check the data, or --channels 1 for grey images "
            "saved as colour)"
        )
    return mean, std


def _pools_on_device(
    trains: list[ImageSet], pools: list[SyntheticPool | None], num_classes: int, device: torch.device
) -> tuple[list[torch.Tensor | None], list[torch.Tensor | None]]:
    """Each run's synthetic pool images and targets on the device (None where a run has no pool)."""
    images: list[torch.Tensor | None] = []
    targets: list[torch.Tensor | None] = []
    for train, pool in zip(trains, pools, strict=True):
        if pool is not None and (
            pool.images.shape[1:] != train.images.shape[1:] or pool.targets.shape[1] != num_classes
        ):
            raise UserError(
                f"internal: synthetic pool of shape {list(pool.images.shape[1:])} with "
                f"{pool.targets.shape[1]} classes for a {list(train.images.shape[1:])} set of {num_classes}"
            )
        images.append(torch.from_numpy(pool.images).to(device) if pool is not None else None)
        targets.append(torch.from_numpy(pool.targets).to(device) if pool is not None else None)
    return images, targets
