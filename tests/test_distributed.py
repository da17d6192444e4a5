"""torchrun on the CPU (gloo, 2 processes): the same numbers as one process, one writer, shared failures."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from augmentor.core.errors import UserError
from augmentor.distributed.jobs import assign, run_jobs
from tests.conftest import TORCHRUN_ENV, make_shapes_folder, torchrun_failure

ROOT = Path(__file__).resolve().parents[1]
TINY_GENERATIVE = ["--width", "8", "--batch-size", "16", "--sample-every", "3", "--device", "cpu"]


def augmentor(*args: object, ranks: int = 0, wait: bool = True) -> subprocess.CompletedProcess | subprocess.Popen:
    """``augmentor ARGS`` in a fresh process, under ``torchrun --nproc-per-node ranks`` when ranks > 0."""
    launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={ranks}"] if ranks else []
    command = [sys.executable, *launcher, "-m", "augmentor", *map(str, args)]
    if not wait:
        return subprocess.Popen(
            command, env=TORCHRUN_ENV, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    return subprocess.run(command, env=TORCHRUN_ENV, cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_shapes_folder(tmp_path_factory.mktemp("dist") / "data", per_class=12, splits=True, seed=2)


def test_assign_puts_the_longest_jobs_first_on_the_least_loaded_rank():
    assert assign([5, 1, 1, 1, 1, 1], 2) == [0, 1, 1, 1, 1, 1]
    assert assign([1, 1, 1, 1], 2) == [0, 1, 0, 1]
    assert assign([3, 3], 4) == [0, 1]


def test_run_jobs_in_one_process_is_the_plain_map():
    assert run_jobs([1, 2, 3], lambda job: job * 10) == [10, 20, 30]


def _two_rank_jobs(rank: int, port: int, folder: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2")
    torch.distributed.init_process_group("gloo", rank=rank, world_size=2)

    def job(k: int) -> int:
        if k == 3:
            raise UserError(f"job {k} found a bad file")
        return k * k

    outcome: dict = {"squares": run_jobs([0, 1, 2], job)}
    try:
        run_jobs([0, 1, 2, 3], job)
    except UserError as error:
        outcome["error"] = error.message
    Path(folder, f"rank{rank}.json").write_text(json.dumps(outcome))
    torch.distributed.destroy_process_group()


def test_run_jobs_gathers_results_in_order_and_raises_one_ranks_error_on_every_rank(tmp_path):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    torch.multiprocessing.spawn(_two_rank_jobs, args=(port, str(tmp_path)), nprocs=2)
    outcomes = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert [o["squares"] for o in outcomes] == [[0, 1, 4], [0, 1, 4]]
    failing = assign([1, 1, 1, 1], 2)[3]  # the rank job 3 ran on
    assert outcomes[failing]["error"] == "job 3 found a bad file"
    assert outcomes[1 - failing]["error"] == f"job 3 found a bad file (on rank {failing})"


def _two_rank_failure_stops_the_other(rank: int, port: int, folder: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2")
    torch.distributed.init_process_group("gloo", rank=rank, world_size=2)
    started = time.monotonic()

    def job(k: int) -> None:
        if k == 1:
            time.sleep(0.5)
            raise UserError("job 1 found a bad file")
        while time.monotonic() - started < 60:  # a long job: a minute of work unless it is stopped
            time.sleep(0.05)

    outcome: dict = {}
    try:
        run_jobs([0, 1], job)  # equal costs: job r on rank r
    except UserError as error:
        outcome["error"] = error.message
    outcome["seconds"] = time.monotonic() - started
    outcome["squares"] = run_jobs([2, 3], lambda k: k * k)  # a later call is not stopped by the old failure
    Path(folder, f"rank{rank}.json").write_text(json.dumps(outcome))
    torch.distributed.destroy_process_group()


def test_a_failed_job_stops_the_other_ranks_job_at_once(tmp_path):
    """helper-26's audit: a rank whose job failed waited in the gather while the others finished their whole
    share (a whole study, on a real run). Now the others stop within about a second, with its error."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    torch.multiprocessing.spawn(_two_rank_failure_stops_the_other, args=(port, str(tmp_path)), nprocs=2)
    outcomes = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert outcomes[1]["error"] == "job 1 found a bad file"
    assert outcomes[0]["error"] == "job 1 found a bad file (on rank 1)"
    assert outcomes[0]["seconds"] < 20, outcomes  # not the minute its job would have run
    assert [o["squares"] for o in outcomes] == [[4, 9], [4, 9]]


def test_gain_on_two_ranks_gives_the_single_process_numbers(data, tmp_path):
    args = ["gain", data, "--per-class", "3", "--draws", "3", "--budget", "3", "--validation-per-class", "4"]
    args += ["--arms", "real,real-long,classic:light,classic:light@soft,vae-jitter@soft", "--curve-draws", "1"]
    args += ["--gen-steps", "4", "--gen-width", "8", "--batch-size", "16", "--device", "cpu", "--workers", "1"]
    one = augmentor(*args, "--out", tmp_path / "one")
    two = augmentor(*args, "--out", tmp_path / "two", ranks=2)
    assert one.returncode == 0, torchrun_failure(one.stderr)
    assert two.returncode == 0, torchrun_failure(two.stderr)
    results = [json.loads((tmp_path / name / "results.json").read_text()) for name in ("one", "two")]

    def numbers(document: dict) -> tuple:
        runs = [{k: v for k, v in run.items() if k != "seconds"} for run in document["runs"]]
        generators = [{k: v for k, v in g.items() if "second" not in k} for g in document["generators"]]
        return runs, document["curve_runs"], document["summary"], generators

    assert len(results[0]["runs"]) == 3 * 5
    assert numbers(results[0]) == numbers(results[1])
    # Each (N, draw) job says where it ran and for how long: every job on rank 0 alone, both ranks on two.
    jobs = [[(job["draw"], job["rank"]) for job in document["jobs"]] for document in results]
    assert jobs[0] == [(0, 0), (1, 0), (2, 0)] and {rank for _, rank in jobs[1]} == {0, 1}
    assert all(job["seconds"] > 0 for document in results for job in document["jobs"])
    assert sum(job["cost_share"] for job in results[1]["jobs"]) == pytest.approx(1, abs=1e-3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "two"]  # one writer, no staging left


@pytest.mark.parametrize("mixing", [[], ["--mixup", "0.4", "--cutmix", "1.0"]], ids=["plain", "mixup-cutmix"])
def test_a_data_parallel_step_gives_the_single_process_weights(data, tmp_path, mixing):
    # LeNet-5 has no BatchNorm, whose statistics are per rank on the CPU: the gradients must agree exactly
    # up to float summation order. Mixup and CutMix mix the global batch before it is sharded.
    args = ["classify", "train", data, "--arch", "lenet5", "--steps", "1", "--batch-size", "15", "--no-flip"]
    args += ["--device", "cpu", "--lr", "0.01", *mixing]
    one = augmentor(*args, "--out", tmp_path / "one")
    two = augmentor(*args, "--out", tmp_path / "two", ranks=2)
    assert one.returncode == 0, torchrun_failure(one.stderr)
    assert two.returncode == 0, torchrun_failure(two.stderr)
    assert "test_accuracy" in two.stdout  # rank 0's summary; the other rank printed nothing
    weights = [load_file(str(tmp_path / name / "model.safetensors")) for name in ("one", "two")]
    assert weights[0].keys() == weights[1].keys()
    difference = max((weights[0][k] - weights[1][k]).abs().max().item() for k in weights[0])
    assert difference < 1e-4  # a step moves each weight by about lr = 0.01
    config = json.loads((tmp_path / "two" / "config.json").read_text())
    assert config["training"]["steps"] == 1


def test_two_rank_generative_run_resumes_exactly_and_on_one_rank(data, tmp_path):
    straight = augmentor("train", "vae", data, "--steps", "6", *TINY_GENERATIVE, "--out", tmp_path / "a", ranks=2)
    assert straight.returncode == 0, torchrun_failure(straight.stderr)
    for name, ranks in (("b", 2), ("c", 0)):
        first = augmentor("train", "vae", data, "--steps", "3", *TINY_GENERATIVE, "--out", tmp_path / name, ranks=2)
        assert first.returncode == 0, torchrun_failure(first.stderr)
        resumed = augmentor("train", "vae", data, "--steps", "6", "--out", tmp_path / name, "--resume", ranks=ranks)
        assert resumed.returncode == 0, torchrun_failure(resumed.stderr)
        assert json.loads((tmp_path / name / "state.json").read_text())["step"] == 6
        steps = [json.loads(line)["step"] for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
        assert steps == sorted(set(steps)) and steps[-1] == 6
    states = {}
    for name in "abc":
        tensors = json.loads((tmp_path / name / "state.json").read_text())["tensors"]
        states[name] = load_file(str(tmp_path / name / tensors))
    assert all(torch.equal(states["a"][k], states["b"][k]) for k in states["a"])  # same world size: exact
    # One rank after two: the same data stream, BatchNorm statistics over the whole batch instead of halves.
    assert states["c"].keys() == states["a"].keys()


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid``, from /proc (no procps needed on a bare CI machine)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return sorted(children)


def test_sigterm_on_one_rank_saves_once_and_stops_every_rank(data, tmp_path):
    run = tmp_path / "run"
    process = augmentor(
        "train", "dcgan", data, "--steps", "100000", *TINY_GENERATIVE[:4], "--sample-every", "100000",
        "--device", "cpu", "--out", run, ranks=2, wait=False,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not (run / "config.json").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(2)  # some steps in
    workers = _children(process.pid)
    assert len(workers) == 2
    os.kill(workers[-1], signal.SIGTERM)  # one rank only
    _, stderr = process.communicate(timeout=120)
    assert process.returncode != 0  # 130 from every rank, as one interrupted process: torchrun says failed
    state = json.loads((run / "state.json").read_text())
    assert 0 < state["step"] < 100000
    # Rank 0 saved the step every rank stopped at, and says it once.
    assert stderr.count(f"interrupted at step {state['step']} of 100000; continue with:") == 1
    assert not list(tmp_path.glob(".*")) and not list(run.glob(".*"))  # nothing half-written
