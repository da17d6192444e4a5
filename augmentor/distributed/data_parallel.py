"""One training batch split over the torchrun ranks (DistributedDataParallel).

Every rank draws the same global batch (same seed, same index stream, same augmentation), keeps its rows
and scales its summed loss by world size / global rows: DDP's gradient average then equals the gradient
of the global batch mean, whatever the split, so a run does not change with the number of ranks except
through per-rank BatchNorm statistics (synchronised on CUDA with SyncBatchNorm; torch has no CPU SyncBatchNorm).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from augmentor.core.errors import UserError
from augmentor.distributed.context import Context, current

if TYPE_CHECKING:
    import torch


def rows(global_rows: int, context: Context | None = None) -> torch.Tensor | None:
    """This rank's rows of a global batch, strided so every rank gets the same mix of real and synthetic
    images (None in one process: all rows)."""
    import torch

    context = context or current()
    if not context.distributed:
        return None
    if global_rows < context.world_size:
        raise UserError(
            f"a batch of {global_rows} image(s) cannot be split over {context.world_size} ranks; "
            "raise --batch-size or use fewer processes"
        )
    return torch.arange(context.rank, global_rows, context.world_size)


def loss_scale(global_rows: int, context: Context | None = None) -> float:
    """Multiply a rank's summed loss by this: DDP's average over ranks then gives the global mean."""
    context = context or current()
    return context.world_size / global_rows


def wrap(model: torch.nn.Module, device: torch.device, context: Context | None = None) -> torch.nn.Module:
    """``model`` under DDP when running on several ranks (the module itself otherwise)."""
    context = context or current()
    if not context.distributed:
        return model
    import torch
    from torch.nn.parallel import DistributedDataParallel

    if device.type == "cuda":
        import os

        if int(os.environ.get("LOCAL_WORLD_SIZE", "1")) > torch.cuda.device_count():
            raise UserError(
                f"data-parallel training needs one GPU per rank; this node has {torch.cuda.device_count()}: "
                f"pass --nproc-per-node {torch.cuda.device_count()} (several ranks per GPU suit `gain` only)"
            )
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return DistributedDataParallel(
            model, device_ids=[device.index if device.index is not None else torch.cuda.current_device()]
        )
    return DistributedDataParallel(model)


def all_sum(tensor: torch.Tensor, context: Context | None = None) -> torch.Tensor:
    """The sum of ``tensor`` over the ranks (the tensor itself in one process)."""
    context = context or current()
    if context.distributed:
        import torch.distributed as dist

        tensor = tensor.clone()
        dist.all_reduce(tensor)
    return tensor
