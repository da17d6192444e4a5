"""Benchmark: classic expansion of one Fashion-MNIST class, ours against the ``Augmentor`` package.

Both sides take the same 1,000 train images of one class and make 9,000 new ones with the same
three operations (rotate ±10° with p=0.7, horizontal flip with p=0.5, zoom 1.0-1.2× with p=0.5),
written to disk as PNG files:

* ours: ``augmentor.classic.expand.expand`` (``--per-class 10000`` with the originals included)
  followed by ``augmentor.data.writers.write_imagefolder``, both timed, dataset loading excluded.
  Ours also writes the 1,000 originals, a manifest and ``dataset.json``; images/s still counts
  only the 9,000 generated images.
* peer: ``Augmentor.Pipeline(...).sample(9000)`` on the same images saved as PNGs beforehand
  (saving them is not timed). ``Augmentor`` is not a project dependency; install it into the
  virtualenv to compare: ``.venv/bin/pip install Augmentor``.

The operations are as close as the two libraries allow, not identical: Augmentor rotates by whole
degrees then crops the largest inside rectangle and scales it back up (a slight zoom; ours fills
the corners with black), and it applies an operation when ``round(uniform(0, 1), 1) <= p``, which
makes p=0.7 and p=0.5 really 0.75 and 0.55.

With ``--repeats N`` the two sides run N times each, alternating; the median run is reported and
every time is saved.

Both write under ``--tmp-dir`` (default: bench/results, on the project's disk), so both pay the same file
system; ``os.sync()`` runs (untimed) before each timed part so one side's dirty pages are not
flushed on the other side's clock. Other work on the machine skews everything: the 1-minute load
average at the start is printed and saved.

It also times ``augmentor --help`` (median of several runs after a warm-up) with ``python -c pass``
as the floor any Python command pays.

Targets: ours at least 4× Augmentor's images/s on a 2-core machine; ``augmentor --help`` under 0.3 s.

    .venv/bin/python bench/classic.py [--workers N] [--repeats N] [--class-index K] [--tmp-dir DIR]
                                      [--out-json PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from augmentor.classic.albu import BORDER_CONSTANT, A
from augmentor.classic.expand import ClassicConfig, expand
from augmentor.classic.pipelines import Pipeline
from augmentor.core.parallel import default_workers
from augmentor.data.imageset import ImageSet
from augmentor.data.readers import open_dataset
from augmentor.data.writers import encode_png, write_imagefolder

SOURCE_IMAGES = 1_000
TARGET_PER_CLASS = 10_000
HELP_RUNS = 5
RESULTS_JSON = Path(__file__).resolve().parent / "results" / "classic.json"
TARGET_RATIO = 4.0
TARGET_HELP_S = 0.3
PEER_INSTALL = ".venv/bin/pip install Augmentor"


def load_class(class_index: int, count: int) -> ImageSet:
    """The first ``count`` Fashion-MNIST train images of class ``class_index``."""
    train = open_dataset("fashion-mnist").train
    if not 0 <= class_index < len(train.class_names):
        raise SystemExit(f"--class-index must be in 0..{len(train.class_names) - 1}, got {class_index}")
    members = np.flatnonzero(train.labels == class_index)[:count]
    if len(members) < count:
        raise SystemExit(f"class {class_index} has only {len(members)} train images, need {count}")
    return train.take(members)


def our_pipeline() -> Pipeline:
    """The peer's rotate / flip / zoom as an albumentations compose, wrapped as the library does."""
    compose = A.Compose(
        [
            A.Rotate(limit=10, p=0.7, border_mode=BORDER_CONSTANT, fill=0),
            A.HorizontalFlip(p=0.5),
            A.Affine(scale=(1.0, 1.2), p=0.5, border_mode=BORDER_CONSTANT, fill=0),
        ]
    )
    return Pipeline("bench-rotate-flip-zoom", A.to_dict(compose)["transform"])


def cpu_seconds() -> float:
    """CPU time of this process and its reaped children (worker pools), user plus system."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def count_files(folder: Path, suffix: str = ".png") -> int:
    """Files under ``folder`` (recursively) whose name ends with ``suffix``."""
    return sum(1 for p in folder.rglob(f"*{suffix}") if p.is_file())


def run_ours(images: ImageSet, target: int, workers: int, root: Path) -> dict[str, Any]:
    """Expand ``images`` to ``target`` and write an ImageFolder; seconds for each half and in all."""
    pipeline = our_pipeline()
    config = ClassicConfig(per_class=target, include_originals=True, workers=workers, seed=0)
    out = root / "ours"
    os.sync()
    cpu = cpu_seconds()
    start = time.perf_counter()
    expansion = expand(images, config, pipeline)
    middle = time.perf_counter()
    write_imagefolder(out, {"train": expansion.expanded}, workers=workers, overwrite=True)
    end = time.perf_counter()
    return {
        "generated": len(expansion.augmented),
        "files": count_files(out),
        "seconds": end - start,
        "expand_seconds": middle - start,
        "write_seconds": end - middle,
        "cpu_seconds": cpu_seconds() - cpu,
    }


def write_sources(images: ImageSet, folder: Path) -> None:
    """The source images as PNG files in one flat folder (the peer's input)."""
    folder.mkdir(parents=True)
    for i, image in enumerate(images.images):
        (folder / f"{i:05d}.png").write_bytes(encode_png(image))


def run_peer(augmentor_module: Any, source: Path, count: int, root: Path) -> dict[str, Any]:
    """``Augmentor.Pipeline.sample(count)`` with the same three operations; seconds and files made."""
    # Augmentor joins output_directory onto the source folder; an absolute path stays as given.
    # A flat source folder puts every image straight into it, named <label>_original_<file>_<uuid>.png.
    out = root / "peer"
    random.seed(0)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        pipeline = augmentor_module.Pipeline(str(source), output_directory=str(out))
        pipeline.rotate(probability=0.7, max_left_rotation=10, max_right_rotation=10)
        pipeline.flip_left_right(probability=0.5)
        pipeline.zoom(probability=0.5, min_factor=1.0, max_factor=1.2)
        os.sync()
        cpu = cpu_seconds()
        start = time.perf_counter()
        pipeline.sample(count)
        end = time.perf_counter()
        cpu = cpu_seconds() - cpu
    return {"generated": count, "files": count_files(out), "seconds": end - start, "cpu_seconds": cpu}


def import_peer() -> Any | None:
    """The ``Augmentor`` module, or None with a note on how to install it."""
    try:
        import Augmentor
    except ImportError:
        print(
            f"note: the Augmentor package is not installed, so only our side runs; "
            f"install it with `{PEER_INSTALL}` to compare",
            file=sys.stderr,
        )
        return None
    return Augmentor


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median time (the lower middle one for an even count), plus every time."""
    ordered = sorted(runs, key=lambda r: r["seconds"])
    chosen = dict(ordered[(len(ordered) - 1) // 2])
    chosen["images_per_s"] = chosen["generated"] / chosen["seconds"]
    chosen["all_seconds"] = [r["seconds"] for r in runs]
    return chosen


def time_command(argv: list[str], runs: int) -> dict[str, Any]:
    """Median wall time of ``argv`` over ``runs`` runs after one untimed warm-up."""
    subprocess.run(argv, check=True, capture_output=True)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return {"command": " ".join(argv), "median_seconds": statistics.median(times), "all_seconds": times}


def print_table(ours: dict[str, Any], peer: dict[str, Any] | None, help_times: dict[str, Any]) -> None:
    """The results as a fixed-width table on stdout."""
    print(f"{'method':<34}{'images':>8}{'seconds':>10}{'images/s':>11}{'cpu s':>8}")
    rows = [("ours (expand + write_imagefolder)", ours)]
    if peer:
        rows.append(("Augmentor Pipeline.sample", peer))
    for name, run in rows:
        print(
            f"{name:<34}{run['generated']:>8}{run['seconds']:>10.3f}{run['images_per_s']:>11.0f}"
            f"{run['cpu_seconds']:>8.2f}"
        )
    print(f"{'  ours: expand only':<34}{'':>8}{ours['expand_seconds']:>10.3f}")
    print(f"{'  ours: write only':<34}{'':>8}{ours['write_seconds']:>10.3f}")
    for name, run in help_times.items():
        print(f"{name:<34}{'':>8}{run['median_seconds']:>10.3f}")
    if peer:
        ratio = ours["images_per_s"] / peer["images_per_s"]
        verdict = "meets" if ratio >= TARGET_RATIO else "misses"
        print(f"ratio ours/peer: {ratio:.2f}x ({verdict} the {TARGET_RATIO:g}x target)")
    help_s = help_times["augmentor --help"]["median_seconds"]
    verdict = "meets" if help_s < TARGET_HELP_S else "misses"
    print(f"augmentor --help: {help_s:.3f} s ({verdict} the {TARGET_HELP_S:g} s target)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=default_workers(), help="our worker processes")
    parser.add_argument("--repeats", type=int, default=1, help="runs per method; the median is reported")
    parser.add_argument("--class-index", type=int, default=0, help="Fashion-MNIST class to expand")
    parser.add_argument("--source-images", type=int, default=SOURCE_IMAGES, help="images of that class")
    parser.add_argument("--target", type=int, default=TARGET_PER_CLASS, help="images per class after")
    parser.add_argument(
        "--tmp-dir",
        type=Path,
        default=Path(__file__).resolve().parent / "results",
        help="where both sides write (default: bench/results; /tmp here can cost 0.6 ms per file created)",
    )
    parser.add_argument("--out-json", type=Path, default=RESULTS_JSON, help="where to write the numbers")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.workers < 1 or args.target <= args.source_images:
        parser.error("need --repeats >= 1, --workers >= 1 and --target > --source-images")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    load = os.getloadavg()[0]
    if load > 0.5:
        print(f"warning: load average {load:.2f} before starting; timings will be noisy", file=sys.stderr)
    images = load_class(args.class_index, args.source_images)
    generated = args.target - args.source_images
    peer_module = import_peer()
    ours_runs: list[dict[str, Any]] = []
    peer_runs: list[dict[str, Any]] = []
    args.tmp_dir = args.tmp_dir.resolve()  # Augmentor resolves output folders against its source
    args.tmp_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-classic-", dir=args.tmp_dir) as tmp:
        source = Path(tmp) / "source"
        if peer_module:
            write_sources(images, source)
        for k in range(args.repeats):
            root = Path(tmp) / f"run-{k}"
            root.mkdir()
            ours_runs.append(run_ours(images, args.target, args.workers, root))
            if peer_module:
                peer_runs.append(run_peer(peer_module, source, generated, root))
    for name, runs, expected in (("ours", ours_runs, args.target), ("peer", peer_runs, generated)):
        for run in runs:
            if run["files"] != expected:
                print(f"warning: {name} wrote {run['files']} PNG files, expected {expected}", file=sys.stderr)
    ours = median_run(ours_runs)
    peer = median_run(peer_runs) if peer_runs else None
    cli = Path(sys.executable).parent / "augmentor"
    help_times = {
        "augmentor --help": time_command([str(cli), "--help"], HELP_RUNS),
        "python -c pass": time_command([sys.executable, "-c", "pass"], HELP_RUNS),
    }
    print_table(ours, peer, help_times)
    results = {
        "machine": {
            "cpus": os.cpu_count(),
            "workers": args.workers,
            "python": platform.python_version(),
            "load_average_at_start": load,
            "tmp_dir": str(args.tmp_dir),
        },
        "class_index": args.class_index,
        "source_images": args.source_images,
        "target_per_class": args.target,
        "repeats": args.repeats,
        "ours": ours,
        "peer": peer,
        "ratio_ours_over_peer": ours["images_per_s"] / peer["images_per_s"] if peer else None,
        "help": help_times,
        "targets": {"ratio": TARGET_RATIO, "help_seconds": TARGET_HELP_S},
    }
    args.out_json.parent.mkdir(parents=True, exist_ok=True)
    args.out_json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out_json}")


if __name__ == "__main__":
    main()
