"""The process group a torchrun launch sets up, or a one-process stand-in when there is none."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from augmentor.core.errors import UserError

_LAUNCH_VARIABLES = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
_alone = {"depth": 0}  # > 0 inside ``alone()``


@dataclass(frozen=True)
class Context:
    """This process's place in the job: rank 0 of 1 without torchrun."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 alone writes outputs and prints results."""
        return self.rank == 0


def launched() -> bool:
    """True inside a torchrun (or any env:// style) launch."""
    return all(name in os.environ for name in _LAUNCH_VARIABLES)


def _group_ready() -> bool:
    import torch.distributed as dist  # here, not at import: `--help` stays free of torch

    return dist.is_available() and dist.is_initialized()


def current() -> Context:
    """The running process group's context (one process when none was started, or inside ``alone()``)."""
    if _alone["depth"] or not _group_ready():
        return Context()
    import torch.distributed as dist

    return Context(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


@contextlib.contextmanager
def alone() -> Iterator[None]:
    """Work one rank does by itself (a job of ``run_jobs``) runs as one process: the ranks are busy with
    other work, so DDP, barriers or nested job lists inside it must not wait for them."""
    _alone["depth"] += 1
    try:
        yield
    finally:
        _alone["depth"] -= 1


def setup(device: str = "auto") -> Context:
    """Join torchrun's process group (gloo for CPU work, NCCL for CUDA tensors); a no-op without torchrun.

    Each rank takes the GPU of its LOCAL_RANK (modulo the GPU count), so ``--device auto`` / ``cuda`` means
    "this rank's GPU".
    """
    if not launched() or _group_ready():
        return current()
    import torch
    import torch.distributed as dist

    if not dist.is_available():
        raise UserError("this torch build has no torch.distributed; run without torchrun")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = device != "cpu" and torch.cuda.is_available()
    if cuda:
        # More ranks than GPUs share them round-robin: several small gain jobs per GPU; DDP refuses it.
        torch.cuda.set_device(local_rank % torch.cuda.device_count())
    # torch.distributed.nn binds ``group=group.WORLD`` as default arguments when it is first imported; imported
    # after init_process_group (torch._dynamo imports it, and an optimiser's first step imports torch._dynamo)
    # those defaults hold the process group past destroy_process_group. Its worker threads then outlive
    # teardown and may free a tensor during interpreter shutdown: "terminate called without an active
    # exception", SIGABRT after the work is done (1 run in 15 of tests/test_distributed_output.py's script).
    # Imported first, the defaults are the WORLD placeholder and teardown stops every gloo thread.
    import torch.distributed.nn

    # Objects (job results, errors) travel over gloo; CUDA tensors (gradients) over NCCL.
    dist.init_process_group(backend="cpu:gloo,cuda:nccl" if cuda else "gloo")
    return current()


def teardown() -> None:
    """Leave the process group (torchrun waits for every rank to exit)."""
    if _group_ready():
        import torch.distributed as dist

        dist.destroy_process_group()


def barrier() -> None:
    """Wait for every rank (a no-op in one process)."""
    if current().distributed:
        import torch.distributed as dist

        dist.barrier()


def store_client() -> Any:
    """A client of the key-value store torchrun's rendezvous (or rank 0) serves at MASTER_ADDR:MASTER_PORT,
    for word between ranks outside collectives; None without a launch or when it cannot be reached."""
    try:
        from torch.distributed import TCPStore

        return TCPStore(
            os.environ["MASTER_ADDR"],
            int(os.environ["MASTER_PORT"]),
            is_master=False,
            timeout=timedelta(seconds=30),
            wait_for_workers=False,
        )
    except (KeyError, ValueError, RuntimeError):
        return None


_ERROR_KEY = "augmentor/error"  # the error line rank 0 printed, so the other ranks need not print it again


def tell_error(line: str) -> None:
    """Rank 0 printed ``line``: the other ranks, which found the same bad input, stay quiet."""
    if (store := store_client()) is not None:
        with contextlib.suppress(RuntimeError):
            store.set(_ERROR_KEY, line)


def said_by_rank_zero(line: str, wait: float = 3.0) -> bool:
    """Whether rank 0 printed this same ``line`` (waiting up to ``wait`` seconds for it to say)."""
    if (store := store_client()) is None:
        return False
    try:
        store.wait([_ERROR_KEY], timedelta(seconds=wait))
        return store.get(_ERROR_KEY).decode() == line
    except RuntimeError:  # rank 0 said nothing in time (an error of this rank alone), or the store is gone
        return False
