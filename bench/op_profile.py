"""Where a training step's time goes, from ``torch.profiler``: for the benchmarks' ``--profile-steps``.

A training call has setup around its loop (the data copied to the device, the model built, a final grid or
checkpoint), so after one unprofiled call the call is profiled twice, with ``steps`` and with ``2 × steps``
optimiser steps, and every figure is the difference divided by ``steps``: what one more step costs, setup
cancelled out (give enough steps that a step outweighs the setup's run-to-run noise).

Per step it reports the wall time, the host (CPU) time of the ops, the device time of the kernels (CUDA
only), the kernels launched, and the ops that took the most device time (host time on the CPU). Read
together: device time well under the wall time means the step waits on the host (Python and kernel
launches: larger batches, CUDA graphs and fewer ops pay); device time close to it means the GPU is busy,
and the top ops say with what.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile


def _device_us(event: Any) -> float:
    """An op's self device time in µs (``self_device_time_total`` since torch 2.4; the CUDA name before)."""
    return float(getattr(event, "self_device_time_total", getattr(event, "self_cuda_time_total", 0.0)) or 0.0)


def _profiled(run: Callable[[int], Any], steps: int, cuda: bool) -> tuple[float, dict[str, dict[str, float]]]:
    """Wall seconds of ``run(steps)`` and, per op name: calls, self host µs, self device µs."""
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        if cuda:
            torch.cuda.synchronize()
        started = time.perf_counter()
        run(steps)
        if cuda:
            torch.cuda.synchronize()
        wall = time.perf_counter() - started
    ops = {
        event.key: {"calls": event.count, "host_us": event.self_cpu_time_total, "device_us": _device_us(event)}
        for event in prof.key_averages()
    }
    return wall, ops


def step_profile(run: Callable[[int], Any], steps: int, device: torch.device, rows: int = 15) -> dict[str, Any]:
    """What one optimiser step of ``run(number_of_steps)`` costs, with its ``rows`` costliest ops."""
    cuda = device.type == "cuda"
    run(steps)  # unprofiled first: the first call's one-time costs (allocator, autotuning) are not a step's
    short_wall, short = _profiled(run, steps, cuda)
    long_wall, long = _profiled(run, 2 * steps, cuda)

    def per_step(name: str, key: str) -> float:
        return max(0.0, long[name][key] - short.get(name, {}).get(key, 0.0)) / steps

    table = [
        {
            "op": name,
            "calls": round(per_step(name, "calls"), 2),
            "device_ms": round(per_step(name, "device_us") / 1000, 4),
            "host_ms": round(per_step(name, "host_us") / 1000, 4),
        }
        for name in long
    ]
    # Kernels (and copies) are device events with no host time; the ops that launch them carry the same
    # device time again as their own, so the total counts the kernels alone.
    kernels = [row for row in table if row["device_ms"] > 0 and row["host_ms"] == 0]
    ops = [row for row in table if row["host_ms"] > 0]
    by_cost = (lambda row: (row["device_ms"], row["host_ms"])) if cuda else (lambda row: row["host_ms"])
    return {
        "steps": steps,
        "device": device.type,
        "wall_ms": round((long_wall - short_wall) * 1000 / steps, 3),
        "host_ops_ms": round(sum(row["host_ms"] for row in ops), 3),
        "device_ms": round(sum(row["device_ms"] for row in kernels), 3) if cuda else None,
        "kernels": round(sum(row["calls"] for row in kernels), 1) if cuda else None,
        "top_ops": sorted(ops, key=by_cost, reverse=True)[:rows],
        "top_kernels": sorted(kernels, key=by_cost, reverse=True)[:rows] if cuda else [],
        "note": "per optimiser step: (a run of 2×steps) − (a run of steps), divided by steps; profiler on",
    }


def print_profile(title: str, found: dict[str, Any]) -> None:
    """The profile as a few lines of text."""
    device = f", device {found['device_ms']} ms in {found['kernels']} kernels" if found["device_ms"] is not None else ""
    print(f"{title}: per step wall {found['wall_ms']} ms, host ops {found['host_ops_ms']} ms{device}")
    for row in (found["top_kernels"] or found["top_ops"])[:8]:
        print(f"  {row['device_ms']:>8.3f} device ms {row['host_ms']:>8.3f} host ms {row['calls']:>6g}×  {row['op']}")
