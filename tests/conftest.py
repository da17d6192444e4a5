"""Small real datasets made on the fly, and a CLI runner."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
# A CLI command sizes torch's threads by the machine's load (augmentor.core.threads), and the thread count
# changes the last bits of CPU results: the tests pin it at torch's own default, so an in-process command
# computes what the library call beside it does whatever else runs (tests/test_threads.py unpins it).
if not os.environ.get("OMP_NUM_THREADS", "").strip():
    import torch

    os.environ["OMP_NUM_THREADS"] = str(torch.get_num_threads())

REPO = Path(__file__).resolve().parent.parent
SHAPE_CLASSES = ("disk", "square", "triangle")


def draw_shape(kind: str, size: int, rng: np.random.Generator, channels: int = 1) -> np.ndarray:
    """A filled shape drawn with scikit-image at a random place and size, as H×W×C uint8."""
    from skimage.draw import disk, polygon, rectangle

    canvas = np.zeros((size, size), dtype=np.uint8)
    radius = int(rng.integers(size // 6, size // 3))
    cy, cx = (int(v) for v in rng.integers(radius + 1, size - radius - 1, size=2))
    if kind == "disk":
        rr, cc = disk((cy, cx), radius, shape=canvas.shape)
    elif kind == "square":
        rr, cc = rectangle((cy - radius, cx - radius), extent=(2 * radius, 2 * radius), shape=canvas.shape)
    else:
        rr, cc = polygon([cy - radius, cy + radius, cy + radius], [cx, cx - radius, cx + radius], canvas.shape)
    canvas[rr, cc] = int(rng.integers(150, 256))
    if channels == 3:
        tint = rng.uniform(0.4, 1.0, size=3)
        return (canvas[:, :, None] * tint).astype(np.uint8)
    return canvas[:, :, None]


def write_png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array).save(path)


def make_shapes_folder(
    root: Path, per_class: int = 6, size: int = 28, channels: int = 1, splits: bool = False, seed: int = 0
) -> Path:
    """An ImageFolder of drawn disks, squares and triangles (optionally with train/ and test/)."""
    rng = np.random.default_rng(seed)
    for split in ("train", "test") if splits else (None,):
        base = root / split if split else root
        for kind in SHAPE_CLASSES:
            for i in range(per_class):
                write_png(base / kind / f"{kind}{i:03d}.png", draw_shape(kind, size, rng, channels))
    return root


@pytest.fixture(autouse=True, scope="session")
def private_cache(tmp_path_factory) -> Path:
    """A cache folder of the test session's own (``score`` caches the feature classifiers it trains there),
    so no test reads or fills the user's ``~/.cache``."""
    cache = tmp_path_factory.mktemp("xdg-cache")
    before = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(cache)
    yield cache
    if before is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = before


@pytest.fixture
def shapes_folder(tmp_path: Path) -> Path:
    """A flat grey 28×28 ImageFolder: 3 classes × 6 images."""
    return make_shapes_folder(tmp_path / "shapes")


@pytest.fixture
def shapes_splits(tmp_path: Path) -> Path:
    """A colour 32×32 ImageFolder with train/ and test/ splits."""
    return make_shapes_folder(tmp_path / "shapes-splits", per_class=5, size=32, channels=3, splits=True)


@pytest.fixture
def digits_npz(tmp_path: Path) -> Path:
    """scikit-learn's offline digits (1,797 8×8 images) as a .npz with class names."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images * 16).clip(0, 255).astype(np.uint8)
    path = tmp_path / "digits.npz"
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])
    np.savez(path, images=images, labels=digits.target.astype(np.int64), class_names=names)
    return path


@pytest.fixture(scope="session")
def fashion_dir() -> Path:
    """The Fashion-MNIST IDX folder; `make test` installs it, so its absence is a failure."""
    from augmentor.core.errors import UserError
    from augmentor.data.builtin import fashion_mnist_dir

    try:
        return fashion_mnist_dir(None)
    except UserError as exc:
        pytest.fail(f"Fashion-MNIST is required for this test (run `make data`): {exc}")


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


def run_cli(*args: str, input: str | None = None) -> CliResult:
    """Run the Typer app in-process with stdout and stderr kept apart."""
    from cli import app

    result = CliRunner().invoke(app, [str(a) for a in args], input=input)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return CliResult(result.exit_code, result.stdout, result.stderr)


# torchrun children in tests: one thread each, and a crash that says where it happened (faulthandler prints
# every thread's Python stack on SIGABRT or SIGSEGV). TORCH_DISTRIBUTED_DEBUG=DETAIL, which would check the
# ranks' collectives against each other, is left out: in torch 2.14 it crashes DDP on the CPU (SIGSEGV).
TORCHRUN_ENV = {
    **os.environ,
    "OMP_NUM_THREADS": "1",
    "NO_ALBUMENTATIONS_UPDATE": "1",
    "PYTHONPATH": str(REPO),
    "PYTHONFAULTHANDLER": "1",
}


def torchrun_failure(stderr: str, lines: int = 60) -> str:
    """A failed torchrun's stderr for an assertion message, the ranks' own words last: torchrun's summary
    (each rank's exit code) first, then the last ``lines`` lines the ranks printed, without the launcher's
    log and traceback in between, so a log that keeps only the tail still shows the ranks' error."""
    text = stderr.rstrip().splitlines()
    agent = next((i for i, line in enumerate(text) if line.startswith("torch.") and "ChildFailedError" in line), None)
    if agent is None:
        return "\n".join(text[-lines:])
    traceback = max((i for i in range(agent) if text[i].startswith("Traceback")), default=agent)
    ranks = [line for line in text[:traceback] if not re.match(r"[EWI]\d{4} ", line)]  # the launcher's log
    return "\n".join([*text[agent + 1 :], "--- the ranks' last lines ---", *ranks[-lines:]])


def files_under(root: Path) -> set[str]:
    """Relative posix paths of every file below ``root``."""
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def float64():
    """Float64 defaults for a test: in float32 a rounding difference near zero, blown up by Adam's
    normalisation, would hide (or fake) a real difference between two ways of training."""
    import torch

    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(before)
