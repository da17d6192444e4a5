"""On a CUDA device: every classifier under bf16 autocast, DCGAN / VAE training and exact resume, one-rank DDP.

Skipped where ``torch.cuda.is_available()`` is False; ``bench/gpu.sh`` runs them on the GPU host.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from augmentor.classifiers.registry import create_model, list_archs
from augmentor.data.imageset import ImageSet
from augmentor.generative.train import GenerativeConfig, train_generative
from tests.conftest import REPO, SHAPE_CLASSES, draw_shape, make_shapes_folder

# Deterministic cuBLAS for the resume test: read when cuBLAS starts, which no test has done at import time.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        not torch.cuda.is_available(), reason="needs a CUDA device (torch.cuda.is_available() is False)"
    ),
]

ARCHS = [info.name for info in list_archs()]


def shapes(per_class: int, size: int = 28, channels: int = 1, seed: int = 0) -> ImageSet:
    """Drawn disks, squares and triangles in memory: small real images, not noise."""
    rng = np.random.default_rng(seed)
    images = [draw_shape(k, size, rng, channels).transpose(2, 0, 1) for k in SHAPE_CLASSES for _ in range(per_class)]
    return ImageSet(np.stack(images), np.repeat(np.arange(len(SHAPE_CLASSES)), per_class), list(SHAPE_CLASSES))


def generative_config(kind: str, steps: int, **overrides: object) -> GenerativeConfig:
    base = {"kind": kind, "steps": steps, "width": 8, "batch_size": 16, "sample_every": 6, "log_every": 3}
    return GenerativeConfig(**{**base, "device": "cuda", **overrides})


@pytest.fixture
def deterministic():
    """Deterministic kernels for one test (cuDNN and scatter-adds otherwise vary run to run), then restored."""
    before = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.benchmark,
    )
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    yield
    torch.use_deterministic_algorithms(before[0], warn_only=before[1])
    torch.backends.cudnn.benchmark = before[2]


@pytest.mark.parametrize("channels,size", [(1, 28), (3, 32)])
@pytest.mark.parametrize("arch", ARCHS)
def test_every_architecture_trains_a_step_under_bf16_autocast(arch: str, channels: int, size: int) -> None:
    """The training loop's recipe (channels_last, bf16 autocast, loss in fp32) gives a finite loss and grads."""
    data = shapes(per_class=4, size=size, channels=channels)
    device = torch.device("cuda")
    model = create_model(arch, len(data.class_names), channels, size).to(device, memory_format=torch.channels_last)
    model.train()
    inputs = torch.from_numpy(data.images).to(device).float().div(255).contiguous(memory_format=torch.channels_last)
    labels = torch.from_numpy(data.labels).to(device)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        logits = model(inputs)
    assert logits.shape == (len(data), len(data.class_names))
    loss = F.cross_entropy(logits.float(), labels)
    loss.backward()
    assert torch.isfinite(loss), f"{arch}: loss {loss.item()}"
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert any(g is not None for g in grads), f"{arch}: no gradient reached the parameters"
    assert all(torch.isfinite(g).all() for g in grads if g is not None), f"{arch}: non-finite gradients"


@pytest.mark.parametrize("kind", ["dcgan", "vae"])
def test_generative_training_steps_on_cuda(tmp_path: Path, kind: str) -> None:
    """Two steps on the GPU leave finite losses, the weights and a generator that renders images."""
    torch.cuda.reset_peak_memory_stats()
    result = train_generative(shapes(per_class=8), generative_config(kind, steps=2, log_every=1), tmp_path / "run")
    assert torch.cuda.max_memory_allocated() > 0, "nothing was allocated on the GPU"
    assert result.step == 2
    losses = [v for m in result.metrics for k, v in m.items() if k not in ("step", "epoch", "seconds", "train_seconds")]
    assert losses and all(np.isfinite(losses)), result.metrics
    assert (tmp_path / "run" / "model.safetensors").is_file()
    z = result.generator.latents(np.arange(6), seed=0)
    images = result.generator.decode(z, np.arange(6) % 3, device=torch.device("cuda"))
    assert images.shape == (6, 1, 28, 28) and images.dtype == np.uint8


@pytest.mark.parametrize("kind", ["dcgan", "vae"])
def test_resumed_run_on_cuda_equals_an_uninterrupted_one(tmp_path: Path, kind: str, deterministic: None) -> None:
    """6 steps, saved, resumed to 12 ends where 12 steps in one go end: same logged losses, same weights."""
    from safetensors.torch import load_file

    data = shapes(per_class=16)
    extra = {"diffaugment": kind == "dcgan"}
    train_generative(data, generative_config(kind, steps=12, **extra), tmp_path / "whole")
    train_generative(data, generative_config(kind, steps=6, **extra), tmp_path / "part")
    train_generative(data, generative_config(kind, steps=12), tmp_path / "part", resume=True)

    def logged(run: Path) -> list[dict]:
        lines = (run / "metrics.jsonl").read_text().splitlines()
        timing = ("seconds", "train_seconds")
        return [{k: v for k, v in json.loads(line).items() if k not in timing} for line in lines]

    whole, part = logged(tmp_path / "whole"), logged(tmp_path / "part")
    assert [m["step"] for m in whole] == [m["step"] for m in part]
    for a, b in zip(whole, part, strict=True):
        assert a == pytest.approx(b, rel=1e-4, abs=1e-6), (a, b)
    whole_weights = load_file(tmp_path / "whole" / "model.safetensors")
    part_weights = load_file(tmp_path / "part" / "model.safetensors")
    assert whole_weights.keys() == part_weights.keys()
    for name, tensor in whole_weights.items():
        torch.testing.assert_close(part_weights[name], tensor, rtol=1e-4, atol=1e-6, msg=lambda m, n=name: f"{n}: {m}")


def test_one_rank_ddp_with_nccl_through_torchrun(tmp_path: Path) -> None:
    """``torchrun --nproc-per-node 1 -m augmentor classify train --device cuda`` joins NCCL and writes the run."""
    import torch.distributed as dist

    assert dist.is_available() and dist.is_nccl_available(), "this torch build has no NCCL"
    data = make_shapes_folder(tmp_path / "shapes", per_class=8)
    run = tmp_path / "run"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "1"]
    command += ["-m", "augmentor", "classify", "train", str(data), "--out", str(run)]
    command += ["--steps", "5", "--batch-size", "8", "--device", "cuda"]
    path = os.environ.get("PYTHONPATH")
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{path}" if path else str(REPO)}
    # A session of its own: on a hang the rank torchrun started is ended with it (it would hold the pipe open).
    process = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        output, _ = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"torchrun did not finish in 60 s:\n{output[-3000:]}")
    assert process.returncode == 0, f"exit {process.returncode}\n{output[-3000:]}"
    assert run.is_dir() and (run / "config.json").is_file(), sorted(p.name for p in run.iterdir())
