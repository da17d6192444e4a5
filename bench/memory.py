"""Benchmark: peak memory of our commands at scale, each beside a plain peer measured in the same run.

Target (issue 10): sampling or expanding ``--count`` images (default 100,000) and the gain experiment on
the full Fashion-MNIST train split stay under 2 GiB peak on the CPU: images written in bounded chunks,
never all held. Every command below runs in its own subprocess, one at a time, ours first.

(a) sample  ours  ``augmentor sample weights/fashion-mnist/dcgan --per-class COUNT/10 --out DIR --seed 0
                  --device cpu`` (PNG encoding in its worker processes, the default ``--workers``);
            peer  a plain loop: the ``DCGANGenerator`` with the run's weights (``config.json`` model_args,
                  ``model.safetensors``), batches of 64 balanced labels with fresh noise, each image
                  converted to uint8 and saved with PIL as soon as its batch is made. One process.
(b) classic ours  ``augmentor classic fashion-mnist --per-class COUNT/10 --no-include-originals --out DIR
                  --seed 0`` (the ``medium`` preset; COUNT augmented train images plus the 10,000 test
                  images carried over, all as PNG, with the manifest; the default ``--workers``);
            peer  a plain loop: the IDX files read with gzip + numpy, the same albumentations Compose (the
                  ``medium`` preset, built once), COUNT/10 random parents per class, each augmented image
                  saved with PIL as it is made, then the 10,000 test images saved the same way. One process.
(c) gain    ours  ``augmentor gain fashion-mnist --per-class N --arms real,classic --draws 1 --budget 5
                  --gen-steps 10 --no-budget-curve --device cpu --out DIR`` with N = min(COUNT/10, the
                  smallest train class less the 200-per-class validation split) = 5,800 at full size (the
                  whole split the validation split allows) and 1,000 with ``--quick``. Two classifiers of 5
                  steps (the ``classic`` arm's pool is small at this budget; ``--gen-steps`` is unused by
                  these arms, given so a copy of the command that adds a generative arm stays short),
                  each scored on the 10,000 test images;
            peer  a plain script: the full train split (60,000) and the test split read with gzip + numpy
                  into float32 torch tensors (/255), the same ``fast`` classifier trained 10 steps of 128
                  (SGD), then scored on the test tensor in batches of 1,024 — the baseline cost of
                  holding the data plus torch.
(d) expand  ours  ``augmentor expand fashion-mnist --with vae:weights/fashion-mnist/vae --per-class P --out DIR
                  --seed 0 --device cpu`` with P = 6,000 + COUNT/10 (every class of the train split holds
                  6,000): COUNT synthetic images added, written beside the 60,000 real train images and the
                  10,000 test images carried over, all as PNG, with the manifest (the default ``--workers``);
            peer  a plain script: the ``ConvVAE`` with the run's weights (``config.json`` model_args,
                  ``model.safetensors``) decoding batches of 64 balanced labels with fresh noise, each image
                  converted to uint8 and saved with PIL as soon as its batch is made (the loop of (a)), then
                  the 60,000 train and 10,000 test images, read with gzip + numpy, saved with PIL as in (b).
                  One process.

Memory, per command (MiB, written MB):
  largest process  ``ru_maxrss`` from ``os.wait4`` on the command: the peak RSS of the largest single
                   process of its tree (itself or a reaped child), exact;
  parent           the command's own VmHWM (``/proc/<pid>/status``, sampled every ``--interval`` s, longer
                   under load; it can miss the last moments: Python's teardown of torch at exit adds up
                   to ~100 MB, which only the largest-process figure catches);
  tree PSS         the largest sum of Pss (``/proc/<pid>/smaps_rollup``) over the live tree at one sample:
                   what the tree really holds, pages shared after fork counted once (sampled: a spike
                   shorter than the interval can be missed);
  sum of HWMs      the largest sum of VmHWM over the live tree at one sample: an upper bound, since forked
                   PNG workers count the parent's pages they share again.
The verdict uses peak = max(largest process, tree PSS) against 2048 MB; the ratio is ours/peer on peak.
Seconds are wall time of the whole command (other work on the machine skews them; memory is not).

Run:  .venv/bin/python bench/memory.py [--quick] [--count N] [--parts sample,classic,gain,expand]
                                       [--interval S] [--tmp DIR] [--keep] [--out-json PATH]
Writes bench/results/memory-<timestamp>.json. On 2 busy CPU cores ``--quick`` (10,000) took 3 minutes and
the full size (100,000) 15 minutes for sample, classic and gain; expand alone took 3 minutes with ``--quick``
and 6 with ``--count 50000``. Outputs go under ``--tmp`` and are deleted as each command ends.
Importing torch alone peaks at ~510 MB here (albumentations imports torch too): both sides start there.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
RUN = ROOT / "weights" / "fashion-mnist" / "dcgan"
VAE_RUN = ROOT / "weights" / "fashion-mnist" / "vae"
PARTS = ("sample", "classic", "gain", "expand")
FULL_COUNT = 100_000
QUICK_COUNT = 10_000
LIMIT_MB = 2048.0
VALIDATION_PER_CLASS = 200  # gain's default --validation-per-class
GAIN_BUDGET = 5
GAIN_ARMS = "real,classic"
PEER_GAIN_STEPS = 2 * GAIN_BUDGET  # as many classifier steps as ours takes over its two arms
BATCH = 64
SAMPLE_FLAGS = ["--seed", "0", "--device", "cpu"]
CLASSIC_FLAGS = ["--no-include-originals", "--seed", "0"]
GAIN_FLAGS = (
    f"--arms {GAIN_ARMS} --draws 1 --budget {GAIN_BUDGET} --gen-steps 10 --no-budget-curve --device cpu".split()
)


# --- the data, read the plain way -------------------------------------------------------------------


def data_dir(given: Path | None) -> Path:
    """The Fashion-MNIST IDX folder, found as ``augmentor`` finds it."""
    from augmentor.data.builtin import fashion_mnist_dir

    return fashion_mnist_dir(given)


def read_idx_gz(path: Path) -> np.ndarray:
    """One gzipped IDX file as a uint8 array (images N×28×28 or labels N)."""
    raw = gzip.decompress(path.read_bytes())
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * k : 8 + 4 * k], "big") for k in range(dims)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * dims).reshape(shape)


def read_split(folder: Path, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    """``prefix`` = train | t10k: (images N×28×28 uint8, labels N uint8)."""
    return (
        read_idx_gz(folder / f"{prefix}-images-idx3-ubyte.gz"),
        read_idx_gz(folder / f"{prefix}-labels-idx1-ubyte.gz"),
    )


def gain_per_class(count: int, folder: Path) -> int:
    """The N gain uses: COUNT/10, at most what the smallest class keeps after the validation split."""
    labels = read_idx_gz(folder / "train-labels-idx1-ubyte.gz")
    return min(count // 10, int(np.bincount(labels).min()) - VALIDATION_PER_CLASS)


def expand_per_class(count: int, folder: Path) -> int:
    """The P expand uses: the largest train class (6,000) plus COUNT/10, so COUNT synthetic images in all."""
    labels = read_idx_gz(folder / "train-labels-idx1-ubyte.gz")
    return int(np.bincount(labels).max()) + count // 10


# --- peers (each runs as `memory.py --peer PART`, in its own process) ------------------------------------


def load_model(run: Path, model_class: Any) -> tuple[Any, int]:
    """``model_class`` built from the run's ``config.json`` model_args with its weights, in eval mode; classes."""
    from augmentor.core.runs import read_weights

    model_args = json.loads((run / "config.json").read_text())["model_args"]
    model = model_class(**model_args)
    model.load_state_dict(read_weights(run))
    model.eval()
    return model, int(model_args["num_classes"])


def save_generated(model: Any, classes: int, count: int, out: Path, prefix: str = "") -> None:
    """Batches of 64 balanced labels with fresh noise; each image to uint8 and saved with PIL per batch.

    ``model(z, labels)`` gives images that ``model.to_unit`` maps to [0, 1] (DCGAN generator, VAE).
    """
    import torch
    from PIL import Image

    for k in range(classes):
        (out / str(k)).mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    with torch.no_grad():
        for first in range(0, count, BATCH):
            labels = torch.arange(first, min(first + BATCH, count)) % classes
            fake = model.to_unit(model(torch.randn(len(labels), model.latent_dim), labels))
            pixels = fake.mul(255).round().clamp(0, 255).to(torch.uint8).numpy()
            for j, label in enumerate(labels.tolist()):
                Image.fromarray(pixels[j, 0]).save(out / str(label) / f"{prefix}{first + j:06d}.png")


def save_split(images: np.ndarray, labels: np.ndarray, out: Path) -> None:
    """Uint8 N×28×28 images into ``out/<label>/`` as PNG with PIL, one at a time."""
    from PIL import Image

    for label in np.unique(labels).tolist():
        (out / str(label)).mkdir(parents=True, exist_ok=True)
    for k, (image, label) in enumerate(zip(images, labels.tolist(), strict=True)):
        Image.fromarray(image).save(out / str(label) / f"{k:06d}.png")


def peer_sample(count: int, out: Path, folder: Path) -> None:
    """Batches of 64 from the plain generator, each image saved with PIL as soon as it is made."""
    from augmentor.generative.dcgan import DCGANGenerator

    save_generated(*load_model(RUN, DCGANGenerator), count, out)


def peer_classic(count: int, out: Path, folder: Path) -> None:
    """COUNT/10 augmented images per class, then the test split, each saved with PIL as it is made."""
    from PIL import Image

    from augmentor.classic.pipelines import load_pipeline

    compose = load_pipeline("medium").build()  # the same albumentations Compose ours applies
    images, labels = read_split(folder, "train")
    rng = np.random.default_rng(0)
    for label in range(int(labels.max()) + 1):
        (out / "train" / str(label)).mkdir(parents=True, exist_ok=True)
        members = np.flatnonzero(labels == label)
        for j, parent in enumerate(rng.choice(members, count // 10)):
            augmented = compose(image=images[parent][:, :, None])["image"]
            Image.fromarray(augmented[:, :, 0]).save(out / "train" / str(label) / f"{j:06d}.png")
    save_split(*read_split(folder, "t10k"), out / "test")


def peer_gain(count: int, out: Path, folder: Path) -> None:
    """The full train split as a float tensor, the ``fast`` classifier a few steps, scored on test."""
    import torch
    import torch.nn.functional as F

    from augmentor.classifiers.architectures import fast

    def tensors(prefix: str) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = read_split(folder, prefix)
        return torch.from_numpy(images).float().div_(255).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))

    x, y = tensors("train")
    test_x, test_y = tensors("t10k")
    torch.manual_seed(0)
    model = fast(10, 1, 28)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    model.train()
    for _ in range(PEER_GAIN_STEPS):
        batch = torch.randint(0, len(x), (128,))
        loss = F.cross_entropy(model(x[batch]), y[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    correct = 0
    with torch.no_grad():
        for first in range(0, len(test_x), 1024):
            logits = model(test_x[first : first + 1024])
            correct += int((logits.argmax(1) == test_y[first : first + 1024]).sum())
    (out / "accuracy.json").write_text(json.dumps({"accuracy": correct / len(test_x)}) + "\n")


def peer_expand(count: int, out: Path, folder: Path) -> None:
    """COUNT images from the plain VAE decoder as in ``peer_sample``, then the train and test splits saved."""
    from augmentor.generative.vae import ConvVAE

    save_generated(*load_model(VAE_RUN, ConvVAE), count, out / "train", prefix="vae-")
    save_split(*read_split(folder, "train"), out / "train")
    save_split(*read_split(folder, "t10k"), out / "test")


PEERS = {"sample": peer_sample, "classic": peer_classic, "gain": peer_gain, "expand": peer_expand}


# --- measuring one command --------------------------------------------------------------------------


def _kib(text: str, key: str) -> int | None:
    """The ``key:  N kB`` value of a /proc status-like text, in KiB."""
    for line in text.splitlines():
        if line.startswith(key):
            return int(line.split()[1])
    return None


def process_tree(root: int) -> list[int]:
    """``root`` and its live descendants, from each /proc entry's parent pid."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue  # gone since the scan
        ppid = int(stat.rsplit(")", 1)[1].split()[1])  # after "(comm)": state, ppid, …
        children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo += children.get(pid, [])
    return tree


def sample_tree(root: int) -> dict[int, tuple[int, int, int]]:
    """(VmHWM, VmRSS, Pss) in KiB of every live process of the tree; zombies and vanished ones left out."""
    found = {}
    for pid in process_tree(root):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        hwm, rss, pss = _kib(status, "VmHWM:"), _kib(status, "VmRSS:"), _kib(rollup, "Pss:")
        if hwm is not None and rss is not None and pss is not None:
            found[pid] = (hwm, rss, pss)
    return found


def measure(command: list[str], log: Path, interval: float) -> dict[str, Any]:
    """Run ``command``, sampling its process tree every ``interval`` s until it ends; peaks in MB (MiB)."""
    parent_hwm = tree_pss = tree_rss = sum_hwm = 0
    processes: set[int] = set()
    samples = 0
    with log.open("wb") as sink:
        start = time.perf_counter()
        proc = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, cwd=ROOT)
        while True:
            # wait4, not Popen.wait: its rusage holds the largest RSS of the process and its reaped children.
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            found = sample_tree(proc.pid)
            samples += 1
            processes |= found.keys()
            if proc.pid in found:
                parent_hwm = max(parent_hwm, found[proc.pid][0])
            tree_pss = max(tree_pss, sum(v[2] for v in found.values()))
            tree_rss = max(tree_rss, sum(v[1] for v in found.values()))
            sum_hwm = max(sum_hwm, sum(v[0] for v in found.values()))
            time.sleep(interval)
        seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, so Popen must not wait again
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise SystemExit(f"{' '.join(command)} failed ({proc.returncode}); the end of {log}:\n{tail}")
    row = {
        "command": command,
        "seconds": seconds,
        "largest_process_mb": usage.ru_maxrss / 1024,
        "parent_mb": parent_hwm / 1024,
        "tree_pss_mb": tree_pss / 1024,
        "tree_rss_mb": tree_rss / 1024,
        "sum_of_hwm_mb": sum_hwm / 1024,
        "processes_seen": len(processes),
        "samples": samples,
    }
    row["peak_mb"] = max(row["largest_process_mb"], row["tree_pss_mb"])
    return row


def count_pngs(folder: Path) -> int:
    """PNG files in class folders (a top-level preview.png is not a dataset image)."""
    return sum(1 for p in folder.rglob("*.png") if p.parent != folder)


def command_for(side: str, part: str, count: int, out: Path, folder: Path) -> list[str]:
    """The command line one side of one part runs."""
    if side == "peer":
        script = str(Path(__file__).resolve())
        return [sys.executable, script, "--peer", part, "--count", str(count), "--peer-out", str(out)]
    augmentor = str(Path(sys.executable).parent / "augmentor")
    if part == "sample":
        return [augmentor, "sample", str(RUN), "--out", str(out), "--per-class", str(count // 10), *SAMPLE_FLAGS]
    data = [augmentor, part, "fashion-mnist", "--out", str(out), "--data-dir", str(folder), "--per-class"]
    if part == "classic":
        return [*data, str(count // 10), *CLASSIC_FLAGS]
    if part == "expand":
        return [*data, str(expand_per_class(count, folder)), "--with", f"vae:{VAE_RUN}", *SAMPLE_FLAGS]
    return [*data, str(gain_per_class(count, folder)), *GAIN_FLAGS]


def expected_files(part: str, count: int) -> int | None:
    return {"sample": count, "classic": count + 10_000, "expand": count + 70_000}.get(part)


# --- report -----------------------------------------------------------------------------------------


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "cpu"


def version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def print_table(results: dict[str, Any], count: int) -> None:
    header = f"{'part':<9}{'side':<6}{'peak':>8}{'largest':>9}{'parent':>8}{'PSS':>8}{'sum HWM':>9}{'procs':>6}"
    print(f"{header}{'files':>9}{'seconds':>9}{'ratio':>8}  verdict")
    for part, row in results.items():
        for side in ("ours", "peer"):
            r = row[side]
            ratio = f"{row['ratio']:7.2f}x" if side == "ours" else ""
            verdict = ("PASS" if r["peak_mb"] < LIMIT_MB else "FAIL") if side == "ours" else ""
            files = "-" if r["files"] is None else f"{r['files']:,}"
            print(
                f"{part:<9}{side:<6}{r['peak_mb']:>8.0f}{r['largest_process_mb']:>9.0f}{r['parent_mb']:>8.0f}"
                f"{r['tree_pss_mb']:>8.0f}{r['sum_of_hwm_mb']:>9.0f}{r['processes_seen']:>6}{files:>9}"
                f"{r['seconds']:>9.1f}{ratio:>8}  {verdict}"
            )
    print(
        f"MB = MiB; peak = max(largest process [wait4 ru_maxrss], tree PSS [sampled]); ratio = ours/peer peak; "
        f"verdict: ours peak < {LIMIT_MB:.0f} MB. count {count:,}"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, help=f"images to sample / expand (default {FULL_COUNT:,})")
    parser.add_argument("--quick", action="store_true", help=f"--count {QUICK_COUNT:,}")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}")
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between /proc samples")
    parser.add_argument("--data-dir", type=Path, help="Fashion-MNIST IDX folder (default: as augmentor finds it)")
    parser.add_argument("--tmp", type=Path, default=RESULTS / "tmp", help="where the outputs go (deleted after)")
    parser.add_argument("--keep", action="store_true", help="keep the outputs and logs")
    parser.add_argument("--out-json", type=Path, help="default: bench/results/memory-<timestamp>.json")
    parser.add_argument("--peer", choices=PARTS, help=argparse.SUPPRESS)  # internal: run one peer
    parser.add_argument("--peer-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.count is None:
        args.count = QUICK_COUNT if args.quick else FULL_COUNT
    if args.count < 10 or args.count % 10:
        parser.error("--count must be a positive multiple of 10 (ten balanced classes)")
    args.parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    if unknown := set(args.parts) - set(PARTS):
        parser.error(f"unknown --parts {sorted(unknown)}; choose from {','.join(PARTS)}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    folder = data_dir(args.data_dir)
    if args.peer:
        args.peer_out.mkdir(parents=True, exist_ok=True)
        PEERS[args.peer](args.count, args.peer_out, folder)
        return
    load = os.getloadavg()[0]
    results: dict[str, Any] = {}
    args.tmp.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="bench-memory-", dir=args.tmp))
    try:
        for part in args.parts:
            row: dict[str, Any] = {}
            for side in ("ours", "peer"):
                out = root / f"{part}-{side}"
                command = command_for(side, part, args.count, out, folder)
                print(f"[{time.perf_counter() - started:6.0f} s] {part}: {side}: {' '.join(command)}", file=sys.stderr)
                row[side] = measure(command, root / f"{part}-{side}.log", args.interval)
                expected = expected_files(part, args.count)
                row[side]["files"] = count_pngs(out) if expected else None
                if expected and row[side]["files"] != expected:
                    print(
                        f"warning: {part} {side} wrote {row[side]['files']} PNGs, expected {expected}", file=sys.stderr
                    )
                if not args.keep:
                    shutil.rmtree(out, ignore_errors=True)
            row["ratio"] = row["ours"]["peak_mb"] / row["peer"]["peak_mb"]
            row["pass"] = row["ours"]["peak_mb"] < LIMIT_MB
            if part == "gain":
                row["per_class"] = gain_per_class(args.count, folder)
            if part == "expand":
                row["per_class"] = expand_per_class(args.count, folder)
            results[part] = row
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    total = time.perf_counter() - started
    print(f"{cpu_name()}, {os.cpu_count()} CPUs, load {load:.2f} at start, torch {version('torch')}")
    print_table(results, args.count)
    results["setup"] = {
        "cpu": cpu_name(),
        "cpus": os.cpu_count(),
        "memory_total_mb": os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**20,
        "load_average_at_start": load,
        "python": platform.python_version(),
        "torch": version("torch"),
        "numpy": version("numpy"),
        "pillow": version("pillow"),
        "albumentations": version("albumentations"),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "count": args.count,
        "quick": args.quick,
        "interval_s": args.interval,
        "limit_mb": LIMIT_MB,
        "gain": {"arms": GAIN_ARMS, "budget": GAIN_BUDGET, "draws": 1, "peer_steps": PEER_GAIN_STEPS},
        "total_seconds": total,
    }
    out_json = args.out_json or RESULTS / f"memory-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out_json} (the benchmark took {total:.0f} s)")


if __name__ == "__main__":
    main()
