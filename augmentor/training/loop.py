"""The one step loop under every trainer (classifier, grouped classifiers, DCGAN, VAE).

A capability supplies a ``Task``: how to take one optimiser step, what a log entry holds, what its checkpoint
holds and how to put it back. The loop owns the rest, once: the step budget and progress, periodic finite-loss
checks (a device sync, so rarer on a GPU), rollback to the last good snapshot or a ``TrainingDiverged`` error,
metrics at log points with the evaluation time kept apart, checkpoints (at the task's checkpoint points, every
``CHECKPOINT_SECONDS`` between them and on a stop), SIGTERM / Ctrl-C turned into a checkpoint and
``TrainingInterrupted``, under torchrun the ranks agreeing on every stop, rollback and logged loss, and in a
CLI command the torch thread count following the cores other processes leave free (``core.threads``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Container
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from augmentor.core import threads
from augmentor.core.console import progress, warn
from augmentor.core.errors import UserError
from augmentor.distributed import data_parallel
from augmentor.distributed.context import barrier, current
from augmentor.training.checkpoint import Checkpoint, prefixed, unprefixed, write_checkpoint
from augmentor.training.stopping import stop_requests

# Between checkpoint points a checkpoint at most this often: checkpoint points may be hours apart on a long run,
# and a preempted job should lose minutes, not hours.
CHECKPOINT_SECONDS = 600.0


class TrainingDiverged(UserError):
    """The loss became non-finite (after the allowed rollbacks); ``last_good`` is the task's last good snapshot."""

    def __init__(self, message: str, last_good: Any, step: int) -> None:
        super().__init__(message)
        self.last_good = last_good
        self.step = step


class TrainingInterrupted(Exception):
    """Training stopped on request (SIGTERM, Ctrl-C or ``should_stop``) at ``step`` of ``steps``; when it had a
    checkpoint folder, the state it stopped in is saved there and ``--resume`` continues it."""

    def __init__(self, step: int, steps: int, saved: bool) -> None:
        super().__init__(f"interrupted at step {step} of {steps}")
        self.step, self.steps, self.saved = step, steps, saved


class Task(Protocol):
    """What a capability supplies to ``fit``."""

    title: str  # the progress bar's

    def train_step(self, step: int) -> dict[str, torch.Tensor]:
        """Take optimiser step number ``step`` (1-based); its losses as device tensors, "loss" the total."""

    def log_entry(self, step: int, means: dict[str, float]) -> dict[str, Any]:
        """The metrics entry at a log point from the mean losses since the last one (before any evaluation)."""

    def evaluate(self, step: int, entry: dict[str, Any]) -> None:
        """Evaluations at a log point, added to ``entry`` (timed apart from training)."""

    def is_checkpoint_point(self, step: int) -> bool:
        """Whether a checkpoint is saved after ``step`` (beside the time-based ones and a stop's)."""

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """The task's checkpoint: its tensors and its JSON fields."""

    def write_beside(self, folder: Path, step: int, metrics: list[dict[str, Any]]) -> None:
        """Derived files kept beside a checkpoint (weights for sampling, metrics, plots), written before it commits."""

    def snapshot(self) -> Any:
        """An in-memory copy of what a rollback restores (and a divergence reports as the last good weights)."""

    def restore(self, snapshot: Any, rollbacks: int) -> None:
        """Put a snapshot back after a non-finite loss; ``rollbacks`` so far (a task may reseed by it)."""

    def diverged_advice(self, step: int, last_good_step: int, rollbacks: int, sums: dict[str, torch.Tensor]) -> str:
        """The one-line error when the loss stays non-finite (``sums``: the losses summed since the last log)."""


@dataclass
class Progress:
    """Where a run stands: what a checkpoint records for the loop and a resume gives back."""

    step: int = 0
    rollbacks: int = 0
    seconds: float = 0.0  # training and evaluation time so far (resumed runs go on from the checkpoint's)
    eval_seconds: float = 0.0  # evaluation alone, so "train_seconds" measures training (time-to-accuracy)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    sums: dict[str, torch.Tensor] = field(default_factory=dict)  # losses summed since the last log point
    count: int = 0  # steps in those sums

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint, device: torch.device) -> Progress:
        meta = checkpoint.meta
        step = int(meta["step"])
        sums = {k: v.to(device) for k, v in unprefixed("loop.sum", checkpoint.tensors).items()}
        metrics = [m for m in meta["metrics"] if m["step"] <= step]
        return cls(
            step,
            int(meta["rollbacks"]),
            float(meta["seconds"]),
            float(meta["eval_seconds"]),
            metrics,
            sums,
            int(meta["loss_count"]),
        )


@dataclass
class Plan:
    """How ``fit`` runs a task: the budget, when to log and check, where and whether to save, when to stop."""

    steps: int
    log_points: Container[int]  # the last step is always one
    check_every: int = 1  # finite-loss checks (a device sync)
    snapshot_every: int | None = None  # rollback snapshots between log points too; None: at log points only
    max_rollbacks: int = 0  # 0: a non-finite loss is a TrainingDiverged at once
    folder: Path | None = None  # checkpoints (rank 0 writes); None: nothing is saved and signals act as usual
    kind: str = ""  # recorded in the checkpoint, checked on resume
    info: dict[str, Any] = field(default_factory=dict)  # more JSON for the checkpoint (config, data prints)
    should_stop: Callable[[int], bool] | None = None


def fit(task: Task, plan: Plan, progress_so_far: Progress | None = None) -> Progress:
    """Run ``task`` from ``progress_so_far`` (a resume) or step 0 to ``plan.steps``; the finished ``Progress``."""
    state = progress_so_far or Progress()
    context = current()
    writes = plan.folder is not None and context.is_main  # under torchrun rank 0 alone writes
    interruptible = plan.folder is not None or plan.should_stop is not None
    snapshot, snapshot_step = task.snapshot(), state.step
    started = time.perf_counter() - state.seconds
    saved_at = time.perf_counter()

    def save(step: int) -> None:
        tensors, meta = task.state()
        tensors.update(prefixed("loop.sum", state.sums))
        meta = {
            **plan.info,
            **meta,
            "kind": plan.kind,
            "step": step,
            "steps": plan.steps,
            "rollbacks": state.rollbacks,
            "seconds": time.perf_counter() - started,
            "eval_seconds": state.eval_seconds,
            "metrics": state.metrics,
            "loss_count": state.count,
        }
        write_checkpoint(plan.folder, tensors, meta, lambda: task.write_beside(plan.folder, step, state.metrics))

    with (
        stop_requests(plan.folder is not None) as stop,
        progress(task.title, plan.steps - state.step) as advance,
    ):
        step = state.step
        while step < plan.steps:
            losses = task.train_step(step + 1)
            step += 1
            sums = state.sums
            for key, value in losses.items():
                sums[key] = sums[key] + value.detach() if key in sums else value.detach().clone()
            state.count += 1
            logging = step in plan.log_points or step == plan.steps
            check = step % plan.check_every == 0 or logging
            requested = interruptible and (
                stop["stop"] or (plan.should_stop is not None and bool(plan.should_stop(step)))
            )
            if not context.distributed:
                stopping = requested
                check = check or stopping  # nothing non-finite is saved
            elif interruptible and check:  # every rank stops at the same step (a collective: check steps only)
                stopping = bool(
                    data_parallel.all_sum(torch.tensor(float(requested), device=_device(sums)), context) > 0
                )
            else:
                stopping = False
            if check and context.distributed:  # every rank judges (and logs) the ranks' mean losses
                sums = state.sums = {k: data_parallel.all_sum(v, context) / context.world_size for k, v in sums.items()}
            if check and not bool(torch.isfinite(sums["loss"]).all()):
                state.rollbacks += 1
                if state.rollbacks > plan.max_rollbacks:
                    error = TrainingDiverged(
                        task.diverged_advice(step, snapshot_step, state.rollbacks, sums), snapshot, step
                    )
                    error.every_rank = context.distributed  # type: ignore[attr-defined] - rank 0 reports it
                    raise error
                warn(
                    f"non-finite loss at step {step}: rolled back to step {snapshot_step} (rollback {state.rollbacks})"
                )
                task.restore(snapshot, state.rollbacks)
                advance(snapshot_step - (step - 1))  # the failed step was never counted
                step, state.sums, state.count = snapshot_step, {}, 0
                state.metrics = [m for m in state.metrics if m["step"] <= step]
                continue
            if logging:
                means = {k: float(v) / state.count if v.dim() == 0 else v / state.count for k, v in sums.items()}
                entry = task.log_entry(step, means)
                now = time.perf_counter()
                entry["seconds"] = round(now - started, 3)
                entry["train_seconds"] = round(now - started - state.eval_seconds, 3)
                state.sums, state.count = {}, 0
                task.evaluate(step, entry)
                state.eval_seconds += time.perf_counter() - now
                state.metrics.append(entry)
            if logging or (plan.snapshot_every and step % plan.snapshot_every == 0):
                snapshot, snapshot_step = task.snapshot(), step
            state.step = step
            if writes and (
                task.is_checkpoint_point(step)
                or stopping
                or (check and time.perf_counter() - saved_at > CHECKPOINT_SECONDS)
            ):
                save(step)
                saved_at = time.perf_counter()
            advance(1)
            threads.adapt()  # others started or finished: the CLI's share of the cores follows (unless pinned)
            if stopping:
                if context.distributed:  # the other ranks wait for rank 0's checkpoint before they exit
                    barrier()
                raise TrainingInterrupted(step, plan.steps, saved=plan.folder is not None)
    state.seconds = time.perf_counter() - started
    if context.distributed:  # the other ranks wait for rank 0's last checkpoint
        barrier()
    return state


def _device(sums: dict[str, torch.Tensor]) -> torch.device:
    return next(iter(sums.values())).device
