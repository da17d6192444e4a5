"""The hostile-input suite (issue 25 item 7): every hostile or careless case found so far, each run as a fresh
``python -m augmentor`` process under a memory ceiling, and each held to the same rules:

- the expected exit (2 for a refusal, with one ``error:`` line naming what it must, indented detail lines
  at most; 0 where the input is legitimate after all);
- bounded memory: the process's peak resident memory under ``MAX_RSS`` (1 GiB), and an address-space
  ceiling (``ulimit -v``) so that a runaway allocation fails instead of taking the machine;
- bounded time: done within ``MAX_SECONDS`` (startup included);
- nothing written outside the case's ``--out``, and nothing the case reads destroyed.

Add a case to ``CASES`` for every new finding: a function that makes its files in a folder and returns the
``Case``. Cases reuse the builders of ``test_bad_input``.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import REPO, make_shapes_folder
from tests.test_bad_input import (
    HUGE_SIGMA_YAML,
    _billion_laughs,
    _idx_bytes,
    _nested_compose,
    _npz_declaring,
    _pipeline_file,
    _write_idx_folder,
    bomb_png_bytes,
)

MAX_RSS = 1 << 30  # bytes: a 200-byte file may make no command use more
MAX_SECONDS = 60  # wall clock, a fresh interpreter's torch import included (a bomb would run for minutes)
ADDRESS_SPACE = 12 << 30  # ulimit -v: torch maps a few GB of address space at import; a runaway stops here
SHIPPED = REPO / "weights" / "fashion-mnist"


@dataclass
class Case:
    argv: list[str]
    mentions: tuple[str, ...] = ()  # what the one error line must name
    exit_code: int = 2
    out: Path | None = None  # the one place the command may write
    env: dict[str, str] = field(default_factory=dict)
    stdin: bytes | None = None


def _copy_run(root: Path, kind: str) -> Path:
    run = root / kind
    shutil.copytree(SHIPPED / kind, run)
    return run


# --- the cases: each makes its files under ``root`` --------------------------------------------------


def pipeline_resize_bomb(root: Path) -> Case:
    data = make_shapes_folder(root / "data", per_class=2)
    (root / "big.yaml").write_text("transform: {__class_fullname__: Resize, height: 100000, width: 100000}\n")
    return Case(["classic", data, "--pipeline", root / "big.yaml", "--per-image", "1", "--out", root / "out"],
                ("Resize", "at most 4096"), out=root / "out")  # fmt: skip


def pipeline_billion_laughs(root: Path) -> Case:
    (root / "laughs.yaml").write_text(_billion_laughs())
    return Case(["pipeline", "check", root / "laughs.yaml"], ("aliases (*name) are refused",))


def pipeline_deep_json(root: Path) -> Case:
    (root / "deep.json").write_text(_nested_compose(2000))
    return Case(["pipeline", "check", root / "deep.json"], ("nested too deeply",))


def png_decompression_bomb(root: Path) -> Case:
    folder = make_shapes_folder(root / "data", per_class=2)
    (folder / "disk" / "bomb.png").write_bytes(bomb_png_bytes(100_000, 100_000, 8, 0))
    return Case(["data", "info", folder], ("bomb.png",))


def npz_header_bomb(root: Path) -> Case:
    _npz_declaring(root / "bomb.npz", (2, 100_000, 100_000))
    return Case(["data", "info", root / "bomb.npz"], ("GiB once inflated",))


def idx_gzip_bomb(root: Path) -> Case:
    folder = _write_idx_folder(root / "idx", (4, 28, 28))
    bomb = gzip.compress(_idx_bytes((4, 28, 28), bytes(200 * 2**20)), compresslevel=9)
    (folder / "train-images-idx3-ubyte.gz").write_bytes(bomb)
    return Case(["data", "info", folder], ("train-images-idx3-ubyte.gz",))


def pickled_checkpoint(root: Path) -> Case:
    (root / "model.pt").write_bytes(b"\x80\x04\x95" + b"\x00" * 64)
    return Case(["sample", root / "model.pt", "--count", "2", "--out", root / "out"], ("pickled",), out=root / "out")


def huge_image_size(root: Path) -> Case:
    data = make_shapes_folder(root / "data", per_class=2)
    return Case(["data", "info", data, "--image-size", "100000"], ("--image-size",))


def sample_into_its_own_run(root: Path) -> Case:
    run = _copy_run(root, "vae")
    return Case(["sample", run, "--count", "2", "--out", run, "--overwrite"], ("overlaps",))


def grid_onto_the_run_weights(root: Path) -> Case:
    run = _copy_run(root, "vae")
    argv = ["sample", run, "--count", "2", "--out", root / "s", "--grid", run / "model.safetensors", "--overwrite"]
    return Case(argv, ("overlaps", "model.safetensors"), out=root / "s")


def predictions_onto_the_run_config(root: Path) -> Case:
    run = _copy_run(root, "classifier")
    image = next((make_shapes_folder(root / "data", per_class=1) / "disk").glob("*.png"))
    argv = ["classify", "predict", run, image, "--out", run / "config.json", "--overwrite"]
    return Case(argv, ("overlaps", "config.json"))


def misspelt_switch(root: Path) -> Case:
    data = make_shapes_folder(root / "data", per_class=2)
    return Case(["data", "info", data], ("AUGMENTOR_FOLLOW_SYMLINKS",), env={"AUGMENTOR_FOLLOW_SYMLINKS": "flase"})


def garbage_cap_variable(root: Path) -> Case:
    data = make_shapes_folder(root / "data", per_class=2)
    return Case(["data", "info", data], ("AUGMENTOR_MAX_IMAGE_PIXELS",), env={"AUGMENTOR_MAX_IMAGE_PIXELS": "lots"})


def interpolation_frames(root: Path) -> Case:
    run = _copy_run(root, "vae")
    argv = ["interpolate", run, "--from", "seed:1", "--to", "seed:2", "--frames", "100000000", "--out", root / "i.png"]
    return Case(argv, ("--frames",))


def a_million_seeds(root: Path) -> Case:
    run = _copy_run(root, "vae")
    return Case(["sample", run, "--seeds", "0-999999", "--out", root / "s"], ("seeds",), out=root / "s")


def legitimate_small_folder(root: Path) -> Case:
    """Not hostile: the same rules hold for a command that succeeds."""
    data = make_shapes_folder(root / "data", per_class=2)
    return Case(["classic", data, "--per-image", "1", "--out", root / "out"], exit_code=0, out=root / "out")


CASES: list[Callable[[Path], Case]] = [
    pipeline_resize_bomb,
    pipeline_billion_laughs,
    pipeline_deep_json,
    png_decompression_bomb,
    npz_header_bomb,
    idx_gzip_bomb,
    pickled_checkpoint,
    huge_image_size,
    sample_into_its_own_run,
    grid_onto_the_run_weights,
    predictions_onto_the_run_config,
    misspelt_switch,
    garbage_cap_variable,
    interpolation_frames,
    a_million_seeds,
    legitimate_small_folder,
]


# --- count flags (issue 25 item 3): capped before any work ---------------------------------------------


def edit_strengths_count(root: Path) -> Case:
    run = _copy_run(root, "vae")
    argv = ["edit", run, "--direction", f"{root}/dirs:x", "--strengths", "-3:3:100000000", "--out", root / "e.png"]
    return Case(argv, ("--strengths", "AUGMENTOR_MAX_GRID_IMAGES"))


def edit_seeds_into_one_grid(root: Path) -> Case:
    run = _copy_run(root, "vae")
    argv = ["edit", run, "--direction", f"{root}/dirs:x", "--seeds", "0-99999", "--out", root / "e.png"]
    return Case(argv, ("--seeds × --strengths", "AUGMENTOR_MAX_GRID_IMAGES"))


def directions_codes(root: Path) -> Case:
    run = _copy_run(root, "vae")
    return Case(["directions", run, "--n", "1000000000", "--out", root / "d"], ("--n", "AUGMENTOR_MAX_CODES"))


def score_count(root: Path) -> Case:
    run = _copy_run(root, "vae")
    data = make_shapes_folder(root / "data", per_class=2)
    argv = ["score", run, "--real", data, "--n", "1000000000"]
    return Case(argv, ("--n", "AUGMENTOR_MAX_SCORE_IMAGES"))


def sample_count(root: Path) -> Case:
    run = _copy_run(root, "vae")
    return Case(["sample", run, "--n", "10000000000", "--out", root / "s"], ("--n", "AUGMENTOR_MAX_IMAGES_OUT"))


def expand_ratio(root: Path) -> Case:
    data = make_shapes_folder(root / "data", per_class=2)
    argv = ["expand", data, "--with", "classic:light", "--ratio", "1:1e12", "--out", root / "x"]
    return Case(argv, ("--ratio", "AUGMENTOR_MAX_IMAGES_OUT"), out=root / "x")


CASES += [edit_strengths_count, edit_seeds_into_one_grid, directions_codes, score_count, sample_count, expand_ratio]


# --- non-finite tensors (issue 25 item 5): refused where they are read ---------------------------------


def _poison(run: Path, name_part: str, value: float) -> str:
    """Set one tensor of ``run``'s weights whose name contains ``name_part`` to ``value``; its name."""
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(run / "model.safetensors"))
    name = next(k for k in tensors if name_part in k and tensors[k].is_floating_point())
    tensors[name] = tensors[name].clone().fill_(value)
    save_file(tensors, str(run / "model.safetensors"), metadata={"format": "pt"})
    return name


def nan_generator_weights(root: Path) -> Case:
    run = _copy_run(root, "vae")
    name = _poison(run, "weight", float("nan"))
    return Case(["sample", run, "--n", "4", "--out", root / "s"], (name, "holds NaN"), out=root / "s")


def infinite_classifier_head(root: Path) -> Case:
    run = _copy_run(root, "classifier")
    _poison(run, "head", float("inf"))
    image = next((make_shapes_folder(root / "data", per_class=1) / "disk").glob("*.png"))
    return Case(["classify", "predict", run, image, "--json"], ("'head.weight' holds an infinity",))


CASES += [nan_generator_weights, infinite_classifier_head]


# --- files read whole (issue 25 item 2): sizes checked before a byte is read -----------------------------


def _sparse(path: Path, size: int = 20 << 30) -> None:
    """``path`` made ``size`` bytes long without a block on disk (a sparse file)."""
    with open(path, "ab") as handle:
        handle.truncate(size)


def sparse_manifest(root: Path) -> Case:
    data = make_shapes_folder(root / "data", per_class=2)
    _sparse(data / "manifest.jsonl")
    return Case(["data", "info", data], ("manifest.jsonl", "too large", "AUGMENTOR_MAX_JSONL_BYTES"))


def sparse_run_config(root: Path) -> Case:
    run = _copy_run(root, "vae")
    _sparse(run / "config.json")
    return Case(["sample", run, "--n", "2", "--out", root / "s"], ("config.json", "too large"), out=root / "s")


def sparse_training_state(root: Path) -> Case:
    data = make_shapes_folder(root / "data", per_class=2)
    run = root / "run"
    run.mkdir()
    _sparse(run / "state.json")
    return Case(["train", "vae", data, "--out", run, "--steps", "2"], ("state.json", "too large"))


def endless_stdin_line(root: Path) -> Case:
    return Case(["data", "info", "-"], ("stdin", "longer than", "AUGMENTOR_MAX_LINE_BYTES"), stdin=bytes(8 << 20))


CASES += [sparse_manifest, sparse_run_config, sparse_training_state, endless_stdin_line]


# --- values a pipeline file declares (issue 25 item 1): bounded by a table, then probed in a child -------


def huge_sigma_pipeline(root: Path) -> Case:
    data = make_shapes_folder(root / "data", per_class=2)
    (root / "sigma.yaml").write_text(HUGE_SIGMA_YAML)
    return Case(["classic", data, "--pipeline", root / "sigma.yaml", "--per-image", "1", "--out", root / "out"],
                ("GaussianBlur", "sigma_limit", "AUGMENTOR_MAX_PIPELINE_SIGMA"), out=root / "out")  # fmt: skip


def elastic_sigma_pipeline(root: Path) -> Case:
    path = _pipeline_file(root / "elastic.json", "ElasticTransform", alpha=20, sigma=1e6)
    return Case(["pipeline", "check", path], ("ElasticTransform", "AUGMENTOR_MAX_PIPELINE_SIGMA"))


def affine_scale_pipeline(root: Path) -> Case:
    data = make_shapes_folder(root / "data", per_class=2)
    path = _pipeline_file(root / "scale.json", "Affine", scale=[1e4, 1e4])
    return Case(["expand", data, "--with", f"classic:{path}", "--ratio", "1:1", "--out", root / "out"],
                ("Affine", "AUGMENTOR_MAX_PIPELINE_SCALE"), out=root / "out")  # fmt: skip


def shear_only_the_probe_catches(root: Path) -> Case:
    data = make_shapes_folder(root / "data", per_class=2)
    path = _pipeline_file(root / "shear.json", "Affine", shear=[89.9999, 89.9999], fit_output=True)
    return Case(["classic", data, "--pipeline", path, "--per-image", "1", "--out", root / "out"],
                ("shear.json", "AUGMENTOR_MAX_PIPELINE_PROBE_MEMORY"), out=root / "out")  # fmt: skip


CASES += [huge_sigma_pipeline, elastic_sigma_pipeline, affine_scale_pipeline, shear_only_the_probe_catches]


# --- the runner -----------------------------------------------------------------------------------------


def _fingerprint(path: Path) -> str:
    """A file's sha256; for a file over 64 MiB (the sparse 20 GB cases) its size, mtime and first MiB's sha256:
    reading it whole took the test process to 9 GB and half a minute of hashing zeros."""
    status = path.stat()
    with open(path, "rb") as handle:
        if status.st_size <= 64 << 20:
            return hashlib.sha256(handle.read()).hexdigest()
        return f"{status.st_size}:{status.st_mtime_ns}:{hashlib.sha256(handle.read(1 << 20)).hexdigest()}"


def _snapshot(root: Path) -> dict[str, str | None]:
    """Every path under ``root``: a file's fingerprint, None for a folder (links are not followed)."""
    found: dict[str, str | None] = {}
    for path in sorted(root.rglob("*")):
        key = path.relative_to(root).as_posix()
        found[key] = _fingerprint(path) if path.is_file() else None
    return found


def _limit_address_space() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


# ``python -m augmentor`` that writes its own peak resident memory (VmHWM, KiB) when it exits, normally or through
# SystemExit. Not ru_maxrss: Linux carries that over from the forked copy of the test process across exec, so a
# large pytest process (1.4 GB late in the suite) made a refusal look like a 1.4 GB command.
_MEASURED = (
    "import atexit, os, runpy, sys\n"
    "def _peak():\n"
    "    with open('/proc/self/status') as status:\n"
    "        kib = next(line.split()[1] for line in status if line.startswith('VmHWM:'))\n"
    "    with open(os.environ['AUGMENTOR_TEST_PEAK'], 'w') as f:\n"
    "        f.write(kib)\n"
    "atexit.register(_peak)\n"
    "sys.argv = ['augmentor', *sys.argv[1:]]\n"
    "runpy.run_module('augmentor', run_name='__main__')\n"
)


def run_case(case: Case, cwd: Path, peak_file: Path) -> tuple[int, str, float, int]:
    """(exit code, stderr, seconds, peak RSS in bytes) of the case as its own process."""
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "NO_ALBUMENTATIONS_UPDATE": "1",
        "OMP_NUM_THREADS": "1",
        "COLUMNS": "200",
        "AUGMENTOR_TEST_PEAK": str(peak_file),
        **case.env,
    }
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-c", _MEASURED, *(str(a) for a in case.argv)],
        cwd=cwd,
        env=env,
        stdin=subprocess.PIPE if case.stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=_limit_address_space,  # a fresh child, nothing threaded yet
    )
    try:
        _, err = process.communicate(case.stdin, timeout=MAX_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail(f"{case.argv}: still running after {MAX_SECONDS} s")
    seconds = time.monotonic() - started
    peak = int(peak_file.read_text()) * 1024 if peak_file.is_file() else MAX_RSS  # no report: it did not exit cleanly
    return process.returncode, err.decode(errors="replace"), seconds, peak


@pytest.mark.parametrize("make_case", CASES, ids=lambda case: case.__name__)
def test_a_hostile_case_is_refused_within_bounds(make_case, tmp_path):
    root = tmp_path / "case"
    root.mkdir()
    case = make_case(root)
    before = _snapshot(root)
    code, err, seconds, peak = run_case(case, cwd=root, peak_file=tmp_path / "peak")
    lines = err.strip().splitlines()
    context = f"{make_case.__name__}: exit {code} in {seconds:.1f} s, peak {peak / 2**20:.0f} MiB\n{err[-2000:]}"
    assert code == case.exit_code, context
    if case.exit_code == 2:
        # One error line; only indented detail lines (a list of files) may follow it.
        assert lines and lines[0].startswith("error: ") and all(x.startswith("  ") for x in lines[1:]), context
        for text in case.mentions:
            assert text in err, f"{text!r} not named\n{context}"
    assert peak < MAX_RSS, context
    after = _snapshot(root)
    written = {k for k in after if k not in before or after[k] != before[k]}
    allowed = case.out.relative_to(root).as_posix() if case.out is not None and case.exit_code == 0 else None
    outside = sorted(k for k in written if allowed is None or not (k == allowed or k.startswith(allowed + "/")))
    assert outside == [], f"written or changed outside --out: {outside[:5]}\n{context}"
    destroyed = sorted(k for k in before if k not in after)
    assert destroyed == [], f"destroyed: {destroyed[:5]}\n{context}"
