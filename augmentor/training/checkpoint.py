"""The one checkpoint format: ``state.json`` naming one ``state-STEP.safetensors`` (never pickle).

A checkpoint is written as (1) its tensors under a new name, (2) the run's derived files a task keeps beside it,
(3) ``state.json`` replaced in one rename: the commit, (4) older tensors files removed. A kill between any two
writes leaves ``state.json`` naming a complete tensors file of the same step, so ``--resume`` always continues
from a consistent pair. Optimiser states are flattened into tensors + JSON (``pack_optimizer``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from augmentor.core import jsonio
from augmentor.core.bounded import InputTooLarge, read_json
from augmentor.core.errors import UserError
from augmentor.core.outdir import write_file_atomic
from augmentor.core.runs import refuse_non_finite

STATE_JSON = "state.json"  # the commit point: names the tensors file it goes with
STATE_FORMAT = 2  # 1: the classifier's own (kind "classifier" only); 2: every trainer's
STATE_LIMIT = 64 << 20  # bytes: a state.json larger than this is no checkpoint of ours (metrics included)


@dataclass
class Checkpoint:
    """A checkpoint read back: its tensors and its JSON (step, budget, metrics, the task's own fields)."""

    tensors: dict[str, torch.Tensor]
    meta: dict[str, Any]

    @property
    def step(self) -> int:
        return int(self.meta["step"])

    @property
    def steps(self) -> int:
        return int(self.meta["steps"])


def has_checkpoint(run: Path) -> bool:
    """Whether ``run`` holds a checkpoint (finished or not)."""
    return (run / STATE_JSON).is_file()


def refuse_interrupted(run: Path, kind: str) -> None:
    """Refuse a new run into a folder holding an interrupted one (a checkpoint short of its budget): say --resume."""
    try:
        meta = read_json(run / STATE_JSON, "a training state") if has_checkpoint(run) else None
        step, steps = int(meta["step"]), int(meta["steps"])
    except InputTooLarge:
        raise
    except (UserError, ValueError, KeyError, TypeError):  # no checkpoint, or not one of ours: check_output's turn
        return
    if step < steps:
        raise UserError(
            f"{run}: holds an interrupted {meta.get('kind', kind)} run (step {step} of {steps}); pass --resume to "
            "continue it, or --overwrite to start again"
        )


def read_checkpoint(run: Path, kind: str, fresh: str, *, tensors: bool = True) -> Checkpoint:
    """The checkpoint in ``run`` of a ``kind`` run, or a UserError that names why and ``fresh`` (how to start over).
    ``tensors=False`` reads the JSON alone: enough for the checks made before the dataset is read."""
    path = run / STATE_JSON
    try:
        if path.stat().st_size > STATE_LIMIT:
            raise UserError(f"{path}: {path.stat().st_size:,} bytes is no training state of ours; {fresh}")
    except OSError as exc:
        raise UserError(f"{path}: unreadable training state ({exc}); {fresh}") from None
    try:
        meta = read_json(path, "a training state")
    except UserError as exc:
        raise UserError(f"{exc.message}; {fresh}") from None
    if not isinstance(meta, dict) or meta.get("kind") != kind:
        found = meta.get("kind") if isinstance(meta, dict) else None
        raise UserError(f"{path}: not a {kind} training state (kind {found!r}); {fresh}")
    if meta.get("format") != STATE_FORMAT:
        raise UserError(f"{path}: state format {meta.get('format')!r} is not {STATE_FORMAT}; {fresh}")
    if not tensors:
        return Checkpoint({}, meta)
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    name = str(meta.get("tensors", ""))
    if os.sep in name or name.startswith(".") or not name.endswith(".safetensors"):
        raise UserError(f"{path}: names {name!r} as its tensors file; {fresh}")
    try:
        state = load_file(str(run / name))
    except (SafetensorError, OSError) as exc:
        raise UserError(f"{run / name}: unreadable training state ({exc}); {fresh}") from None
    refuse_non_finite(state, run / name, fresh)
    return Checkpoint(state, meta)


def write_checkpoint(
    folder: Path,
    tensors: dict[str, torch.Tensor],
    meta: dict[str, Any],
    beside: Callable[[], None] | None = None,
) -> None:
    """Save a checkpoint atomically (the module docstring's order); ``beside`` writes the task's derived files
    (weights for sampling, metrics, plots) after the tensors and before the commit."""
    from safetensors.torch import save

    name = f"state-{meta['step']:07d}.safetensors"
    write_file_atomic(folder / name, save(tensors))
    if beside is not None:
        beside()
    write_file_atomic(
        folder / STATE_JSON, (jsonio.dumps({**meta, "format": STATE_FORMAT, "tensors": name}) + "\n").encode()
    )
    for old in folder.glob("state-*.safetensors"):
        if old.name != name:
            old.unlink(missing_ok=True)


def pack_optimizer(prefix: str, state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """An optimiser's ``state_dict()`` → tensors named ``prefix.ID.KEY`` and its param groups as JSON."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {}
    for param_id, slots in state["state"].items():
        for key, value in slots.items():
            name = f"{prefix}.{param_id}.{key}"
            if isinstance(value, torch.Tensor):
                tensors[name] = value.detach().cpu().contiguous()
            else:
                scalars[name] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def unpack_optimizer(prefix: str, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    """The inverse of ``pack_optimizer``: a dict ``optimizer.load_state_dict`` accepts."""
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith(prefix + "."):
            param_id, key = name[len(prefix) + 1 :].split(".", 1)
            state.setdefault(int(param_id), {})[key] = value
    for name, value in meta.get("scalars", {}).items():
        param_id, key = name[len(prefix) + 1 :].split(".", 1)
        state.setdefault(int(param_id), {})[key] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def prefixed(prefix: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` with every name under ``prefix.`` (detached CPU copies)."""
    return {f"{prefix}.{k}": v.detach().cpu().contiguous() for k, v in state.items()}


def unprefixed(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The tensors under ``prefix.``, with the prefix removed."""
    start = len(prefix) + 1
    return {k[start:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
