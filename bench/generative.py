"""Benchmark: DCGAN / VAE training and sampling speed, ours against pytorch/examples-style loops.

Every part uses the same architecture on both sides (``augmentor.generative.dcgan.DCGANGenerator`` /
``DCGANDiscriminator`` and ``augmentor.generative.vae.ConvVAE``, conditional, ``--width``), the same
batch size and the same number of optimiser steps, on the first ``--images`` Fashion-MNIST train images.

(a) DCGAN training images/s.
    ours   ``train_generative`` (data resident on the device, per-step seeded generators, EMA of the
           generator, an in-memory snapshot every 50 steps, bf16 autocast on CUDA), ``sample_every`` set
           to the budget so only the final grid and checkpoint are made;
    peer   pytorch/examples dcgan/main.py: a Dataset of PIL images, per-sample ``ToTensor`` +
           ``Normalize((0.5,), (0.5,))``, a ``DataLoader`` (shuffle; ``--peer-workers``, default 0 on the
           CPU and 2 with pinned memory on CUDA; ``drop_last`` so every step sees a full batch), fp32,
           the D step on a real and a fake batch (BCE on the logits, two backward passes), then the G step.
           No EMA, no snapshots, no checkpoint (less work than ours).
(b) VAE training images/s.
    ours   ``train_generative`` with ``kind="vae"``;
    peer   pytorch/examples vae/main.py: a DataLoader with per-sample ``ToTensor``, ``encode``,
           reparameterise with ``randn_like``, ``decode``, sigmoid + BCE (sum) + KL, Adam(lr=1e-3).
    For both, three rates are given for ours:
      end-to-end  the whole ``train_generative`` call: setup (copy to the device, diversity of real
                  images, config.json), the loop, the final sample grid and the checkpoint (safetensors,
                  metrics, losses.png with matplotlib);
      loop        the training loop alone (our metrics' ``seconds`` at the last step, taken before the
                  final grid and checkpoint);
      steady      the loop after the first ``--warmup`` steps (from the metrics logged every 50 steps).
    The peer gets loop and steady (its Dataset of PIL images is built untimed). Ratios: loop/loop and
    steady/steady.
    With ``--profile-steps N``, one step of ours is also profiled (``bench/op_profile.py``): wall, host and
    device milliseconds, kernels launched, the costliest kernels and ops.
(c) Sampling.
    write  ours ``sample_run`` of ``--sample`` images (load the run, draw latents, render, encode the
           PNGs in worker processes, write the ImageFolder and manifest) against a peer loop: the plain
           DCGANGenerator with the run's weights (loaded untimed), one batch of 64 at a time, each image
           saved alone with ``torchvision.utils.save_image``. ``os.sync()`` runs untimed before each.
    memory ``Generator.decode`` on ``--render`` latent codes (drawn untimed, their time shown
           apart; one warm-up batch first, untimed) against the peer's batch-of-64 loop without saving
           (one warm-up batch untimed).

Timings use ``time.perf_counter`` with ``torch.cuda.synchronize`` around them on CUDA. Other work on
the machine skews everything (the 1-minute load average at the start is printed and saved): on a
shared machine pass ``--repeats N``, which alternates the two sides N times and reports the median run
(every run's rate is saved too).

Run:  .venv/bin/python bench/generative.py [--quick] [--device cpu|cuda] [--images N] [--steps N]
                                           [--sample N] [--render N] [--repeats N] [--threads N] [--tmp DIR]
                                           [--parts dcgan,vae,sample] [--out-json PATH]
Writes bench/results/generative-<timestamp>.json. ``--quick`` takes under about a minute on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from op_profile import print_profile, step_profile

from augmentor.core.device import resolve_device
from augmentor.core.runs import read_weights
from augmentor.data.imageset import ImageSet
from augmentor.data.options import ReadOptions
from augmentor.data.readers import open_dataset
from augmentor.generative.dcgan import DCGANDiscriminator, DCGANGenerator
from augmentor.generative.generator import Generator, balanced_labels
from augmentor.generative.sample import SampleConfig, sample_run
from augmentor.generative.train import GenerativeConfig, train_generative
from augmentor.generative.vae import ConvVAE

RESULTS = Path(__file__).resolve().parent / "results"
PARTS = ("dcgan", "vae", "sample")
FULL = {"images": 10_000, "steps": 400, "sample": 10_000, "render": 100_000}
QUICK = {"images": 2_000, "steps": 100, "sample": 2_000, "render": 10_000}
TARGET_RATIO = 3.0
TRAIN_RATES = ("steady_images_per_s", "loop_images_per_s", "end_to_end_images_per_s")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def note(started: float, message: str) -> None:
    """A progress line on stderr with the seconds since ``started``."""
    print(f"[{time.perf_counter() - started:6.1f} s] {message}", file=sys.stderr)


def cpu_name() -> str:
    """The CPU's model name where Linux tells it, else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "cpu"


def load_train(count: int) -> ImageSet:
    """The first ``count`` Fashion-MNIST train images."""
    train = open_dataset("fashion-mnist", ReadOptions()).train
    if not 2 <= count <= len(train):
        raise SystemExit(f"--images must be in 2..{len(train)}, got {count}")
    return train.take(np.arange(count))


# --- (a), (b): ours ---------------------------------------------------------------------------------


def ours_config(kind: str, args: argparse.Namespace, device: torch.device, steps: int) -> GenerativeConfig:
    """Our run's settings: ``steps`` optimiser steps, only the final grid and checkpoint."""
    return GenerativeConfig(
        kind=kind,
        conditional=True,
        width=args.width,
        steps=steps,
        batch_size=args.batch_size,
        seed=0,
        device=str(device),
        sample_every=steps,  # only the final grid and checkpoint
        log_every=max(1, min(50, args.warmup)),  # a metric at the warm-up's end: the steady rate starts there
    )


def train_ours(train: ImageSet, kind: str, args: argparse.Namespace, device: torch.device, out: Path) -> dict:
    """One ``train_generative`` run: end-to-end, loop and steady-state seconds and images/s."""
    config = ours_config(kind, args, device, args.steps)
    sync(device)
    start = time.perf_counter()
    result = train_generative(train, config, out, overwrite=True)
    sync(device)
    end_to_end = time.perf_counter() - start
    batch = min(args.batch_size, len(train))
    metrics = result.metrics
    loop = metrics[-1]["seconds"]
    warm = next((m for m in metrics if m["step"] >= args.warmup and m["step"] < result.step), None)
    row: dict[str, Any] = {
        "steps": result.step,
        "images": result.step * batch,
        "end_to_end_s": end_to_end,
        "end_to_end_images_per_s": result.step * batch / end_to_end,
        "loop_s": loop,
        "loop_images_per_s": result.step * batch / loop,
        "warmup_steps": warm["step"] if warm else None,
        "steady_images": None,
        "steady_s": None,
        "steady_images_per_s": None,
        "final_losses": {k: v for k, v in metrics[-1].items() if k not in ("step", "epoch", "seconds")},
    }
    if warm:
        row["steady_images"] = (result.step - warm["step"]) * batch
        row["steady_s"] = loop - warm["seconds"]
        row["steady_images_per_s"] = row["steady_images"] / row["steady_s"]
    return row


# --- (a), (b): the pytorch/examples peer ------------------------------------------------------------


class ExamplesDataset(torch.utils.data.Dataset):
    """What pytorch/examples does: one PIL image per item, converted (and normalised) alone."""

    def __init__(self, train: ImageSet, normalize: bool) -> None:
        from PIL import Image
        from torchvision import transforms

        self.images = [Image.fromarray(image[0]) for image in train.images]
        self.labels = train.labels.tolist()
        steps = [transforms.ToTensor()] + ([transforms.Normalize((0.5,), (0.5,))] if normalize else [])
        self.transform = transforms.Compose(steps)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.transform(self.images[index]), self.labels[index]


def peer_batches(train: ImageSet, normalize: bool, args: argparse.Namespace, device: torch.device):
    """Endless (images, labels) batches from a shuffling DataLoader, epoch after epoch."""
    dataset = ExamplesDataset(train, normalize)
    workers = args.peer_workers if args.peer_workers is not None else (2 if device.type == "cuda" else 0)
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=args.batch_size,
        shuffle=True,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        drop_last=len(dataset) >= args.batch_size,
        persistent_workers=workers > 0,
    )
    while True:
        for data, labels in loader:
            yield data.to(device), labels.to(device)


def time_peer_loop(step_fn, batches, steps: int, warmup: int, device: torch.device) -> dict:
    """Run ``steps`` steps of ``step_fn`` over ``batches``: loop and steady-state seconds and images/s."""
    seen = seen_after_warmup = 0
    warm_time = None
    sync(device)
    start = time.perf_counter()
    for step in range(steps):
        if step == warmup:
            sync(device)
            warm_time = time.perf_counter()
        data, labels = next(batches)
        step_fn(data, labels)
        seen += len(labels)
        if warm_time is not None:
            seen_after_warmup += len(labels)
    sync(device)
    end = time.perf_counter()
    row: dict[str, Any] = {
        "steps": steps,
        "images": seen,
        "loop_s": end - start,
        "loop_images_per_s": seen / (end - start),
        "warmup_steps": warmup if warm_time is not None else None,
        "steady_images": None,
        "steady_s": None,
        "steady_images_per_s": None,
    }
    if warm_time is not None:
        row["steady_images"] = seen_after_warmup
        row["steady_s"] = end - warm_time
        row["steady_images_per_s"] = seen_after_warmup / (end - warm_time)
    return row


def peer_dcgan(train: ImageSet, args: argparse.Namespace, device: torch.device, warmup: int) -> dict:
    """pytorch/examples dcgan/main.py's loop on our DCGANGenerator / DCGANDiscriminator."""
    torch.manual_seed(0)
    classes = len(train.class_names)
    net_g = DCGANGenerator(64, classes, train.channels, train.size[0], args.width).to(device)
    net_d = DCGANDiscriminator(classes, train.channels, train.size[0], args.width).to(device)
    criterion = torch.nn.BCEWithLogitsLoss()  # our D returns logits; the example's ends in a Sigmoid + BCELoss
    optimizer_d = torch.optim.Adam(net_d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optimizer_g = torch.optim.Adam(net_g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    net_g.train()
    net_d.train()

    def step(real: torch.Tensor, labels: torch.Tensor) -> None:
        batch = real.size(0)
        # (1) update D: maximise log(D(x)) + log(1 - D(G(z)))
        net_d.zero_grad()
        label = torch.full((batch,), 1.0, device=device)
        err_d_real = criterion(net_d(real, labels), label)
        err_d_real.backward()
        noise = torch.randn(batch, 64, device=device)
        fake = net_g(noise, labels)
        label.fill_(0.0)
        err_d_fake = criterion(net_d(fake.detach(), labels), label)
        err_d_fake.backward()
        optimizer_d.step()
        # (2) update G: maximise log(D(G(z)))
        net_g.zero_grad()
        label.fill_(1.0)
        err_g = criterion(net_d(fake, labels), label)
        err_g.backward()
        optimizer_g.step()

    return time_peer_loop(step, peer_batches(train, True, args, device), args.steps, warmup, device)


def peer_vae(train: ImageSet, args: argparse.Namespace, device: torch.device, warmup: int) -> dict:
    """pytorch/examples vae/main.py's loop on our ConvVAE."""
    torch.manual_seed(0)
    model = ConvVAE(32, len(train.class_names), train.channels, train.size[0], args.width).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()

    def step(data: torch.Tensor, labels: torch.Tensor) -> None:
        optimizer.zero_grad()
        mu, logvar = model.encode(data, labels)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)  # reparameterize
        recon = torch.sigmoid(model.decode(z, labels))
        bce = F.binary_cross_entropy(recon, data, reduction="sum")
        kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        loss = bce + kld
        loss.backward()
        optimizer.step()

    return time_peer_loop(step, peer_batches(train, False, args, device), args.steps, warmup, device)


# --- (c): sampling ----------------------------------------------------------------------------------


def count_files(folder: Path, suffix: str = ".png") -> int:
    return sum(1 for p in folder.rglob(f"*{suffix}") if p.is_file())


def sample_ours(run: Path, count: int, device: torch.device, out: Path, batch_size: int) -> dict:
    """``sample_run`` of ``count`` images to ``out``: seconds and images/s, run loading included.

    ``batch_size`` is the peer's; ``sample_run`` renders in its own batches (4096 codes).
    """
    os.sync()
    sync(device)
    start = time.perf_counter()
    sample_run(run, SampleConfig(n=count, seed=0, device=str(device)), out, overwrite=True)
    sync(device)
    seconds = time.perf_counter() - start
    return {"images": count, "files": count_files(out), "seconds": seconds, "images_per_s": count / seconds}


def plain_generator(run: Path, device: torch.device) -> tuple[DCGANGenerator, int]:
    """The run's weights in a plain DCGANGenerator, as a user of the example would load them."""
    config = json.loads((run / "config.json").read_text())
    net_g = DCGANGenerator(**config["model_args"])
    net_g.load_state_dict(read_weights(run))
    return net_g.to(device).eval(), int(config["model_args"]["num_classes"])


def sample_peer(run: Path, count: int, device: torch.device, out: Path, batch_size: int) -> dict:
    """Batches of 64 from the plain generator, each image saved alone with ``save_image``."""
    from torchvision.utils import save_image

    net_g, classes = plain_generator(run, device)
    for k in range(classes):
        (out / str(k)).mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    os.sync()
    sync(device)
    start = time.perf_counter()
    with torch.no_grad():
        for first in range(0, count, batch_size):
            labels = torch.arange(first, min(first + batch_size, count), device=device) % classes
            noise = torch.randn(len(labels), net_g.latent_dim, device=device)
            fake = net_g(noise, labels)
            for j, label in enumerate(labels.tolist()):
                save_image(fake[j], out / str(label) / f"{first + j:06d}.png", normalize=True, value_range=(-1, 1))
    sync(device)
    seconds = time.perf_counter() - start
    return {"images": count, "files": count_files(out), "seconds": seconds, "images_per_s": count / seconds}


def render_ours(run: Path, count: int, device: torch.device) -> dict:
    """``Generator.decode`` on ``count`` codes after one untimed warm-up batch."""
    generator = Generator.from_run(run)
    start = time.perf_counter()
    z = generator.latents(np.arange(count), seed=0)
    latents_s = time.perf_counter() - start
    labels = balanced_labels(len(generator.class_names), -(-count // len(generator.class_names)))[:count]
    generator.decode(z[:4096], labels[:4096], device=device)  # warm-up: one batch of decode's default size
    sync(device)
    start = time.perf_counter()
    images = generator.decode(z, labels, device=device)
    sync(device)
    seconds = time.perf_counter() - start
    assert images.shape[0] == count and images.dtype == np.uint8
    return {"images": count, "seconds": seconds, "images_per_s": count / seconds, "latents_s": latents_s}


def render_peer(run: Path, count: int, device: torch.device, batch_size: int) -> dict:
    """The plain generator one batch of 64 at a time (new noise per batch), kept in memory."""
    net_g, classes = plain_generator(run, device)
    torch.manual_seed(0)
    out = []
    with torch.no_grad():

        def batch(first: int) -> torch.Tensor:
            labels = torch.arange(first, min(first + batch_size, count), device=device) % classes
            noise = torch.randn(len(labels), net_g.latent_dim, device=device)
            return net_g(noise, labels).cpu()

        batch(0)  # warm-up
        sync(device)
        start = time.perf_counter()
        for first in range(0, count, batch_size):
            out.append(batch(first))
        sync(device)
        seconds = time.perf_counter() - start
    assert sum(len(x) for x in out) == count
    return {"images": count, "seconds": seconds, "images_per_s": count / seconds}


# --- report -----------------------------------------------------------------------------------------


def median_run(runs: list[dict[str, Any]], keys: tuple[str, ...]) -> dict[str, Any]:
    """The run with the median rate (the first of ``keys`` every run has; the lower middle for an even
    count), plus every run's rates."""
    key = next(k for k in keys if all(r.get(k) for r in runs))
    ordered = sorted(runs, key=lambda r: r[key])
    chosen = dict(ordered[(len(ordered) - 1) // 2])
    chosen["median_of"] = key
    for k in keys:
        chosen[f"all_{k}"] = [r.get(k) for r in runs]
    return chosen


def ratio(ours: float | None, peer: float | None) -> float | None:
    return ours / peer if ours and peer else None


def fmt(value: float | None, spec: str, width: int) -> str:
    return f"{'-' if value is None else format(value, spec):>{width}}"


def print_table(results: dict[str, Any]) -> None:
    print(f"{'part / method':<46}{'images':>9}{'seconds':>9}{'images/s':>11}{'ratio':>8}")
    for part in ("dcgan", "vae"):
        if part not in results:
            continue
        ours, peer = results[part]["ours"], results[part]["peer"]
        rows = [
            (f"{part}: ours end-to-end (train_generative)", ours["images"], ours["end_to_end_s"], "end_to_end"),
            (f"{part}: ours loop", ours["images"], ours["loop_s"], "loop"),
            (
                f"{part}: ours steady (after {ours['warmup_steps']} steps)",
                ours["steady_images"],
                ours["steady_s"],
                "steady",
            ),
            (f"{part}: peer loop (DataLoader, examples)", peer["images"], peer["loop_s"], "loop"),
            (
                f"{part}: peer steady (after {peer['warmup_steps']} steps)",
                peer["steady_images"],
                peer["steady_s"],
                "steady",
            ),
        ]
        for name, images, seconds, key in rows:
            side = ours if "ours" in name else peer
            rate = side[f"{key}_images_per_s"]
            # ours end-to-end against the peer's loop (the peer has no setup or checkpoint to count)
            peer_key = "loop" if key == "end_to_end" else key
            r = ratio(rate, peer[f"{peer_key}_images_per_s"]) if side is ours else None
            ratio_text = f"{r:7.2f}x" if r else ""
            print(f"{name:<46}{fmt(images, ',', 9)}{fmt(seconds, '.2f', 9)}{fmt(rate, ',.0f', 11)}{ratio_text}")
    if "sample" in results:
        s = results["sample"]
        rows = [
            ("write: ours sample_run (PNG ImageFolder)", s["write"]["ours"], s["write"]["peer"]),
            ("write: peer batch-64 + save_image per file", s["write"]["peer"], None),
            ("memory: ours Generator.decode", s["memory"]["ours"], s["memory"]["peer"]),
            ("memory: peer batch-64 loop", s["memory"]["peer"], None),
        ]
        for name, side, peer in rows:
            r = ratio(side["images_per_s"], peer["images_per_s"]) if peer else None
            ratio_text = f"{r:7.2f}x" if r else ""
            print(f"{name:<46}{side['images']:>9,}{side['seconds']:>9.2f}{side['images_per_s']:>11,.0f}{ratio_text}")
        print(f"{'  (ours: drawing the latent codes, untimed)':<46}{'':>9}{s['memory']['ours']['latents_s']:>9.2f}")
    verdicts = []
    for part in ("dcgan", "vae"):
        if part in results:
            r = results[part]["ratio_steady"] or results[part]["ratio_loop"]
            verdicts.append(f"{part} {r:.2f}x")
    if "sample" in results:
        verdicts.append(f"sample+write {results['sample']['write']['ratio']:.2f}x")
        verdicts.append(f"render {results['sample']['memory']['ratio']:.2f}x")
    print(f"ratios ours/peer (steady where measured): {', '.join(verdicts)} (target {TARGET_RATIO:g}x)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    parser.add_argument("--quick", action="store_true", help=f"small sizes (under a minute on 2 cores): {QUICK}")
    parser.add_argument("--images", type=int, help=f"Fashion-MNIST train images (default {FULL['images']})")
    parser.add_argument("--steps", type=int, help=f"optimiser steps per training run (default {FULL['steps']})")
    parser.add_argument("--sample", type=int, help=f"images sample_run writes (default {FULL['sample']})")
    parser.add_argument("--render", type=int, help=f"latent codes rendered in memory (default {FULL['render']})")
    parser.add_argument("--repeats", type=int, default=1, help="runs per side, alternating; the median is shown")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads for both sides (default: torch's)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=50, help="steps left out of the steady-state rate")
    parser.add_argument("--peer-workers", type=int, help="peer DataLoader workers (default 0 on CPU, 2 on CUDA)")
    parser.add_argument("--parts", default=",".join(PARTS), help="comma-separated subset of dcgan,vae,sample")
    parser.add_argument("--profile-steps", type=int, default=0, help="also profile a training step (0: off)")
    parser.add_argument("--tmp", type=Path, default=RESULTS / "tmp", help="where run folders and PNGs go")
    parser.add_argument("--out-json", type=Path, help="default: bench/results/generative-<timestamp>.json")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    for key, value in sizes.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    if unknown := set(args.parts) - set(PARTS):
        parser.error(f"unknown --parts {sorted(unknown)}; choose from {','.join(PARTS)}")
    if min(args.steps, args.sample, args.render, args.batch_size, args.warmup, args.repeats) < 1:
        parser.error("--steps, --sample, --render, --batch-size, --warmup and --repeats must be at least 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    load = os.getloadavg()[0]
    if load > 0.5:
        print(f"warning: load average {load:.2f} before starting; timings will be noisy", file=sys.stderr)
    train = load_train(args.images)
    results: dict[str, Any] = {}
    args.tmp.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-generative-", dir=args.tmp) as tmp:
        root = Path(tmp)
        run = root / "dcgan-run"
        for part, peer_fn in (("dcgan", peer_dcgan), ("vae", peer_vae)):
            if part not in args.parts:
                continue
            ours_runs, peer_runs = [], []
            for k in range(args.repeats):
                note(started, f"{part}: ours (run {k + 1} of {args.repeats})")
                out = run if part == "dcgan" else root / f"{part}-run"
                ours_runs.append(train_ours(train, part, args, device, out))
                warmup = ours_runs[-1]["warmup_steps"] or args.warmup  # the same warm-up on both sides
                note(started, f"{part}: peer (run {k + 1} of {args.repeats})")
                peer_runs.append(peer_fn(train, args, device, warmup))
            ours, peer = median_run(ours_runs, TRAIN_RATES), median_run(peer_runs, TRAIN_RATES)
            results[part] = {
                "ours": ours,
                "peer": peer,
                "ratio_loop": ratio(ours["loop_images_per_s"], peer["loop_images_per_s"]),
                "ratio_steady": ratio(ours["steady_images_per_s"], peer["steady_images_per_s"]),
            }
            if args.profile_steps > 0:
                note(
                    started,
                    f"{part}: ours under the profiler ({args.profile_steps} and {2 * args.profile_steps} steps)",
                )
                out = root / f"{part}-profiled"
                try:
                    results[part]["profile"] = step_profile(
                        lambda steps, kind=part, out=out: train_generative(
                            train, ours_config(kind, args, device, steps), out, overwrite=True
                        ),
                        args.profile_steps,
                        device,
                    )
                    print_profile(f"{part}: one training step", results[part]["profile"])
                except Exception as exc:  # noqa: BLE001 - recorded in the JSON, the rates above stand
                    results[part]["profile"] = {"error": f"{type(exc).__name__}: {exc}"}
        if "sample" in args.parts:
            if "dcgan" not in args.parts:  # sampling needs a DCGAN run folder: a one-step one will do
                one_step = argparse.Namespace(**{**vars(args), "steps": 1})
                train_ours(train, "dcgan", one_step, device, run)
            runs: dict[str, list[dict]] = {"write_ours": [], "write_peer": [], "memory_ours": [], "memory_peer": []}
            for k in range(args.repeats):
                note(started, f"sample + write: ours, then peer (run {k + 1} of {args.repeats})")
                for side, fn in (("ours", sample_ours), ("peer", sample_peer)):
                    folder = root / f"sample-{side}"
                    runs[f"write_{side}"].append(fn(run, args.sample, device, folder, args.batch_size))
                    shutil.rmtree(folder)
                    if runs[f"write_{side}"][-1]["files"] != args.sample:
                        files = runs[f"write_{side}"][-1]["files"]
                        print(f"warning: {side} wrote {files} PNG files, expected {args.sample}", file=sys.stderr)
                note(started, f"render in memory: ours, then peer (run {k + 1} of {args.repeats})")
                runs["memory_ours"].append(render_ours(run, args.render, device))
                runs["memory_peer"].append(render_peer(run, args.render, device, args.batch_size))
            results["sample"] = {}
            for what in ("write", "memory"):
                ours = median_run(runs[f"{what}_ours"], ("images_per_s",))
                peer = median_run(runs[f"{what}_peer"], ("images_per_s",))
                results["sample"][what] = {
                    "ours": ours,
                    "peer": peer,
                    "ratio": ratio(ours["images_per_s"], peer["images_per_s"]),
                }
    total = time.perf_counter() - started
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    print(
        f"device {device} ({name}), {torch.get_num_threads()} threads, load {load:.2f}, "
        f"{args.images:,} images, {args.steps} steps of {args.batch_size}, width {args.width}"
        + (f"; the median of {args.repeats} alternating runs per side" if args.repeats > 1 else "")
    )
    print_table(results)
    results["setup"] = {
        "device": str(device),
        "device_name": name,
        "threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "load_average_at_start": load,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "quick": args.quick,
        "images": args.images,
        "steps": args.steps,
        "batch_size": args.batch_size,
        "width": args.width,
        "warmup": args.warmup,
        "repeats": args.repeats,
        "sample": args.sample,
        "render": args.render,
        "tmp": str(args.tmp),
        "total_seconds": total,
    }
    out_json = args.out_json or RESULTS / f"generative-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out_json} (the benchmark took {total:.0f} s)")


if __name__ == "__main__":
    main()
