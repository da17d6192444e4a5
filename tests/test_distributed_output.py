"""Sharded output under torchrun: two ranks write the bytes one process writes, or nothing at all.

torchrun launches cost seconds each, so there are three: ``augmentor sample`` through the CLI, one script
that runs ``expand``, ``classic`` and a rank that fails, and a bad input through the CLI.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from augmentor.classic.expand import ClassicConfig, run_classic
from augmentor.data.options import ReadOptions
from augmentor.distributed.output import shares
from augmentor.synthetic.expand import ExpandConfig, run_expand
from tests.conftest import REPO, TORCHRUN_ENV, make_shapes_folder, torchrun_failure

TORCHRUN = (sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2")

# Work that reaches both ranks: expand fills its two sources on different ranks and writes train and test
# from different ranks; classic augments 4 chunks of 128 copies.
EXPAND = ExpandConfig(
    with_=("classic",),  # the test adds vae:RUN
    per_class=20,
    dedupe=0.01,
    min_confidence=0.3,
    confidence_steps=3,
    workers=1,
    device="cpu",
)
CLASSIC = ClassicConfig(per_image=30, workers=1)

# Run under torchrun with: DATA VAE OUT_FOLDER. Rank 0 prints one JSON line.
SCRIPT = """
import dataclasses, json, sys
from pathlib import Path

from augmentor.classic.expand import run_classic
from augmentor.core.errors import UserError
from augmentor.data.options import ReadOptions
from augmentor.distributed.context import setup, teardown
from augmentor.distributed.output import run_shares, shared_staging
from augmentor.synthetic.expand import run_expand
from tests.test_distributed_output import CLASSIC, EXPAND

context = setup()
data, vae, work = sys.argv[1], sys.argv[2], Path(sys.argv[3])
report = {"shares": run_shares(list(range(5)), lambda share: [context.rank, share])}
expand = dataclasses.replace(EXPAND, with_=(*EXPAND.with_, f"vae:{vae}"))
run_expand(data, expand, work / "expand", ReadOptions())
run_classic(data, CLASSIC, ReadOptions(), work / "classic")
failing = work / "failing"
try:
    with shared_staging(failing, overwrite=False) as staging:
        (staging / f"rank{context.rank}.png").write_bytes(b"half")
        if context.rank == 1:
            raise UserError("disk full")
except UserError as error:
    report["error"] = [error.message, getattr(error, "every_rank", False)]
report["left"] = sorted(p.name for p in work.iterdir())
teardown()
# A process group that outlives teardown keeps gloo's threads, which can abort the interpreter's shutdown.
# They are read for up to 10 s: on a loaded machine gloo's TCP loop thread ends a moment after teardown
# returns (seen once in a full CI-like run), while a group kept alive keeps its threads for good.
import time


def gloo_threads():
    names = []
    for task in Path("/proc/self/task").iterdir():
        try:
            names.append((task / "comm").read_text().strip())
        except FileNotFoundError:  # a thread that ended while being listed
            pass
    return sorted(name for name in names if "gloo" in name)


for _ in range(100):
    report["gloo_threads"] = gloo_threads()
    if not report["gloo_threads"]:
        break
    time.sleep(0.1)
if context.is_main:
    print(json.dumps(report))
"""


def torchrun(*args: object) -> subprocess.CompletedProcess:
    command = [*TORCHRUN, *(str(a) for a in args)]
    return subprocess.run(command, cwd=REPO, env=TORCHRUN_ENV, capture_output=True, text=True, timeout=300)


def contents(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def assert_same_files(written: Path, reference: Path) -> None:
    ours, theirs = contents(written), contents(reference)
    assert sorted(ours) == sorted(theirs)
    assert [path for path in ours if ours[path] != theirs[path]] == []


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """Grey 28×28 shapes, 6 per class, with train/ and test/."""
    return make_shapes_folder(tmp_path_factory.mktemp("sharded") / "data", per_class=6, splits=True, seed=2)


@pytest.fixture(scope="module")
def vae(data, tmp_path_factory) -> Path:
    """A tiny (conditional) VAE run on ``data``'s train split."""
    from augmentor.data.readers import open_dataset
    from augmentor.generative.train import GenerativeConfig, train_generative

    run = tmp_path_factory.mktemp("vae") / "vae"
    config = GenerativeConfig(kind="vae", steps=4, width=8, sample_every=4, device="cpu")
    train_generative(open_dataset(str(data), ReadOptions()).train, config, run)
    return run


@pytest.fixture(scope="module")
def script_run(data, vae, tmp_path_factory) -> tuple[dict, Path]:
    """SCRIPT's report and its output folder, from one torchrun launch."""
    root = tmp_path_factory.mktemp("script")
    (root / "work").mkdir()
    (root / "script.py").write_text(SCRIPT)
    result = torchrun(root / "script.py", data, vae, root / "work")
    assert result.returncode == 0, torchrun_failure(result.stderr)
    return json.loads(result.stdout.strip().splitlines()[-1]), root / "work"


def test_sample_on_two_ranks_writes_the_bytes_of_one_process(vae, tmp_path):
    from augmentor.generative.sample import SampleConfig, sample_run

    out, grid = tmp_path / "out", tmp_path / "grid.png"
    # 300 images: two decode batches of 256, one per rank.
    args = ["sample", str(vae), "--out", str(out), "--per-class", "100", "--seed", "3", "--grid", str(grid)]
    args += ["--device", "cpu", "--workers", "1"]
    config = SampleConfig(per_class=100, seed=3, device="cpu", workers=1)
    sample_run(vae, config, out, grid=grid, command=shlex.join(["augmentor", *args]))  # as the CLI records it
    reference, reference_grid = tmp_path / "reference", grid.read_bytes()
    out.rename(reference)  # the same --out, so dataset.json's command line is the same too
    grid.unlink()

    result = torchrun("-m", "augmentor", *args)
    assert result.returncode == 0, torchrun_failure(result.stderr)
    assert result.stdout.count("images:") == 1  # rank 0 alone prints
    assert_same_files(out, reference)
    assert grid.read_bytes() == reference_grid
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.png", "out", "reference"]


def test_expand_on_two_ranks_writes_the_bytes_of_one_process(data, vae, script_run, tmp_path):
    config = dataclasses.replace(EXPAND, with_=(*EXPAND.with_, f"vae:{vae}"))
    run_expand(str(data), config, tmp_path / "expand", ReadOptions())
    assert_same_files(script_run[1] / "expand", tmp_path / "expand")


def test_classic_on_two_ranks_writes_the_bytes_of_one_process(data, script_run, tmp_path):
    run_classic(str(data), CLASSIC, ReadOptions(), tmp_path / "classic")
    assert_same_files(script_run[1] / "classic", tmp_path / "classic")


def test_a_failing_rank_fails_every_rank_and_leaves_no_staging_folder(script_run):
    report, _ = script_run
    assert report["shares"] == [[0, [0, 1, 2]], [1, [3, 4]]]  # contiguous, in rank order
    assert report["error"] == ["disk full (on rank 1)", True]  # rank 1's error, raised on rank 0 too
    assert report["left"] == ["classic", "expand"]  # no failing/, no staging folder


def test_teardown_stops_every_gloo_thread(script_run):
    # The script trains a judge (an optimiser step imports torch._dynamo, which imports torch.distributed.nn
    # after the process group exists): left running, these threads can abort the interpreter's shutdown.
    assert script_run[0]["gloo_threads"] == []


@pytest.mark.parametrize(
    ("command", "says"),
    [
        (["sample", "{missing}", "--per-class", "3"], "not a run folder"),
        # These check their input on every rank outside any shared step: rank 1 used to print it again
        # ("rank 1: error: …", helper-26's audit); it now stays quiet when rank 0 said the same.
        (["gain", "{missing}", "--per-class", "5"], "missing"),
        (["classify", "train", "fashion-mnist", "--arch", "nosuch"], "nosuch"),
        (["train", "vae", "{missing}"], "missing"),
    ],
)
def test_bad_input_on_two_ranks_is_one_error_and_no_output(tmp_path, command, says):
    out = tmp_path / "out"
    args = [str(tmp_path / "missing") if arg == "{missing}" else arg for arg in command]
    result = torchrun("-m", "augmentor", *args, "--out", out)
    errors = [line for line in result.stderr.splitlines() if re.match(r"(rank \d+: )?error:", line)]
    assert len(errors) == 1 and errors[0].startswith("error:") and says in errors[0], result.stderr
    assert result.returncode != 0 and re.search(r"exitcode\s*:\s*2\b", result.stderr), torchrun_failure(result.stderr)
    assert list(tmp_path.iterdir()) == []


def test_shares_are_contiguous_and_balanced():
    assert shares(list(range(7)), 3) == [[0, 1, 2], [3, 4], [5, 6]]
    assert shares([1], 2) == [[1], []]
    assert shares([], 1) == [[]]
