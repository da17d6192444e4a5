"""Benchmark: K `fast` classifiers trained as one grouped network against K runs one after another.

The gain study trains 10 draws of each arm; on a GPU each small model's step is bound by kernel launches, so
``classifiers.grouped.train_together`` launches one grouped network's kernels per step instead of K models'.
Both sides train the same K real subsets of Fashion-MNIST (100 images each, as 10 per class) for the same
steps and batch; the figure is the wall-time ratio (one at a time / together) and the accuracy of each side.

Run:  .venv/bin/python bench/grouped.py [--device cuda] [--models 10] [--steps 300] [--out-json FILE]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from augmentor.classifiers.grouped import train_together
from augmentor.classifiers.train import TrainConfig, train_classifier
from augmentor.core.device import resolve_device
from augmentor.data.readers import open_dataset
from augmentor.data.subset import stratified_indices


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--models", type=int, default=10, help="K: the draws trained together")
    parser.add_argument("--per-class", type=int, default=10)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--test-images", type=int, default=2000)
    parser.add_argument("--data-dir", type=Path, help="folder of the Fashion-MNIST files (default: the usual)")
    parser.add_argument("--out-json", type=Path)
    args = parser.parse_args()

    from augmentor.data.options import ReadOptions

    dataset = open_dataset("fashion-mnist", ReadOptions(data_dir=args.data_dir) if args.data_dir else None)
    device = resolve_device(args.device)
    test = dataset.test.take(np.arange(min(args.test_images, len(dataset.test))))
    reals = [
        dataset.train.take(stratified_indices(dataset.train, args.per_class, 1000 + k)) for k in range(args.models)
    ]
    configs = [
        TrainConfig(steps=args.steps, batch_size=args.batch_size, seed=k, device=str(device), evals=1)
        for k in range(args.models)
    ]
    # Warm-up on both paths (kernels, allocator, autotuning), untimed.
    train_together(reals[:2], [TrainConfig(**{**c.__dict__, "steps": 5}) for c in configs[:2]])
    train_classifier(reals[0], TrainConfig(**{**configs[0].__dict__, "steps": 5}))

    sync(device)
    started = time.perf_counter()
    together = train_together(reals, configs, test=test)
    sync(device)
    together_s = time.perf_counter() - started
    started = time.perf_counter()
    alone = [train_classifier(real, config, test=test) for real, config in zip(reals, configs, strict=True)]
    sync(device)
    alone_s = time.perf_counter() - started

    accuracy = {
        "together": [c.final["accuracy"] for c in together],
        "one_at_a_time": [c.final["accuracy"] for c in alone],
    }
    results = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "models": args.models,
        "steps": args.steps,
        "batch_size": args.batch_size,
        "together_s": together_s,
        "one_at_a_time_s": alone_s,
        "speedup": alone_s / together_s,
        "mean_accuracy": {side: float(np.mean(values)) for side, values in accuracy.items()},
        "accuracy": accuracy,
    }
    print(f"device {results['device_name']}, K={args.models} `fast` models, {args.steps} steps of {args.batch_size}")
    print(f"  together (grouped)   {together_s:8.2f} s   mean test accuracy {results['mean_accuracy']['together']:.4f}")
    print(
        f"  one at a time        {alone_s:8.2f} s   mean test accuracy {results['mean_accuracy']['one_at_a_time']:.4f}"
    )
    print(f"  speed-up of grouping: {results['speedup']:.2f}x")
    if args.out_json:
        args.out_json.parent.mkdir(parents=True, exist_ok=True)
        args.out_json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
