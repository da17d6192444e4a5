"""A command's torch threads: its share of the cores, less what other processes keep busy (augmentor.core.threads).

The /proc readers are replaced, so each case is a machine state, not whatever runs beside the tests.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from augmentor.core import threads
from augmentor.core.errors import UserError
from tests.conftest import REPO, run_cli


@pytest.fixture
def machine(monkeypatch):
    """A 2-core machine whose load a test sets: ``state["others"]`` other runnable threads at ``state["weight"]``
    each (1: our niceness), ``state["own"]`` of ours; no pin from the environment; torch's count given back."""
    state = {"cores": 2, "others": 0, "own": 1, "weight": 1.0}
    for variable in ("OMP_NUM_THREADS", threads.THREADS_VARIABLE, "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(threads, "cores", lambda: state["cores"])
    monkeypatch.setattr(threads, "_procs_running", lambda: state["own"] + state["others"])
    monkeypatch.setattr(threads, "_own_running", lambda: state["own"])
    monkeypatch.setattr(threads, "_scan", lambda cpus: state["others"] * state["weight"])
    monkeypatch.setattr(threads, "SAMPLE_GAP", 0.0)
    before = torch.get_num_threads()
    yield state
    torch.set_num_threads(before)


def test_the_share_is_the_cores_left_free(machine, monkeypatch):
    assert threads.share(threads.busy()) == 2  # idle: every core
    machine["others"] = 1  # one other busy thread on 2 cores
    assert threads.share(threads.busy()) == 1
    machine["others"] = 5  # never below one
    assert threads.share(threads.busy()) == 1
    machine["others"], machine["weight"] = 2, 1.25**-19  # a nice-19 job's threads yield to ours
    assert threads.share(threads.busy()) == 2
    machine["weight"] = 1.25**-5  # two at nice 5: 0.66 of a core, still worth two threads of ours
    assert threads.share(threads.busy()) == 2
    machine["weight"] = 1.25**-1  # nearly ours: a core taken
    assert threads.share(threads.busy()) == 1


def test_torchrun_ranks_divide_the_node_and_do_not_count_each_other_as_strangers(machine, monkeypatch):
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert threads.share(threads.busy()) == 1
    machine["cores"], machine["others"] = 8, 4  # the other rank, 4 threads
    assert threads.share(threads.busy(), current=4) == 4
    machine["others"] = 8  # and a stranger on 4 cores: the ranks split the 4 left
    assert threads.share(threads.busy(), current=4) == 2


def test_a_passing_spike_is_outvoted_and_no_proc_means_all_cores(machine, monkeypatch):
    sample = threads.busy_sample
    looks = iter([0.0, 3.0, 0.0, 0.0, 1.0])
    monkeypatch.setattr(threads, "busy_sample", lambda: next(looks))
    assert threads.busy() == 0.0  # the median of five looks

    def missing() -> int:
        raise FileNotFoundError("/proc/stat")

    monkeypatch.setattr(threads, "busy_sample", sample)
    monkeypatch.setattr(threads, "_procs_running", missing)
    assert threads.busy() is None
    assert threads.share(None) == threads.node_share()


def test_the_stat_fields_survive_a_command_name_with_spaces_and_parentheses():
    after = ["R", *["0"] * 15, "5", *["0"] * 19, "1", "0", "0"]  # proc(5): state is field 3, nice 19, processor 39
    fields = threads._fields(b"42 (a) b (c) " + " ".join(after).encode() + b"\n")
    assert fields[0] == b"R" and fields[16] == b"5" and fields[36] == b"1"


def test_a_pin_wins_and_a_bad_one_is_a_one_line_error(machine, monkeypatch):
    assert threads.pinned() is None
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert threads.pinned() == threads.Pin(1, "OMP_NUM_THREADS")
    monkeypatch.setenv(threads.THREADS_VARIABLE, "3")
    assert threads.pinned() == threads.Pin(3, threads.THREADS_VARIABLE)
    assert threads.pinned(2) == threads.Pin(2, "--threads")
    for bad in ("0", "two", "-1", "1.5"):
        monkeypatch.setenv(threads.THREADS_VARIABLE, bad)
        with pytest.raises(UserError, match="is not a thread count"):
            threads.pinned()
        result = run_cli("classify", "archs")
        assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.stderr
        assert result.stderr.startswith(f"error: AUGMENTOR_THREADS='{bad}' is not a thread count")


def test_applied_once_in_a_command_and_given_back(machine, monkeypatch):
    torch.set_num_threads(2)
    machine["others"] = 1
    threads.apply()  # outside a command: the library never changes the caller's count
    assert torch.get_num_threads() == 2
    with threads.in_charge():
        threads.apply()
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2
    monkeypatch.setenv(threads.THREADS_VARIABLE, "3")
    with threads.in_charge():
        threads.apply()
        assert torch.get_num_threads() == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # torch applied it when it started: left as it is
    monkeypatch.delenv(threads.THREADS_VARIABLE)
    with threads.in_charge():
        threads.apply()
        assert torch.get_num_threads() == 2 and threads.changes() == []


def test_training_follows_the_others_unless_pinned(machine, monkeypatch):
    clock = {"now": 1000.0}
    monkeypatch.setattr(threads.time, "monotonic", lambda: clock["now"])

    def steps(seconds: float) -> None:
        for _ in range(int(seconds * 10)):  # a step every 0.1 s
            clock["now"] += 0.1
            threads.adapt()

    torch.set_num_threads(2)
    with threads.in_charge():
        threads.adapt()  # the first step applies the share: the machine is idle
        assert torch.get_num_threads() == 2
        machine["others"] = 2  # a second training starts
        steps(2.5)
        assert torch.get_num_threads() == 2  # not yet: a decision takes three looks a second apart
        steps(1.0)
        assert torch.get_num_threads() == 1
        machine["others"] = 0  # it finished
        steps(3.5)
        assert torch.get_num_threads() == 2
        assert threads.changes() == [1, 2]
    with threads.in_charge(flag=2):
        threads.adapt()
        machine["others"] = 2
        steps(10)
        assert torch.get_num_threads() == 2 and threads.changes() == []


def test_a_command_trains_on_its_share_and_threads_may_follow_the_subcommand(machine, monkeypatch, shapes_splits):
    seen = []
    apply, adapt = threads.apply, threads.adapt

    def watched(original):
        def call() -> None:
            original()
            seen.append(torch.get_num_threads())

        return call

    monkeypatch.setattr(threads, "apply", watched(apply))
    monkeypatch.setattr(threads, "adapt", watched(adapt))
    torch.set_num_threads(2)
    machine["others"] = 1
    run = shapes_splits.parent / "run"
    args = ["classify", "train", shapes_splits, "--steps", "2", "--batch-size", "8", "--arch", "fast", "--out", run]
    result = run_cli(*args)
    assert result.exit_code == 0, result.stderr
    assert seen[-2:] == [1, 1] and set(seen) == {1}  # at the device choice and at both steps
    assert torch.get_num_threads() == 2  # given back after the command
    seen.clear()
    result = run_cli("classify", "eval", run, shapes_splits, "--threads", "2")  # pinned: the load is ignored
    assert result.exit_code == 0, result.stderr
    assert seen and set(seen) == {2}
    result = run_cli("classify", "eval", run, shapes_splits, "--threads=0")
    assert result.exit_code == 2 and "--threads" in result.stderr


def test_pool_workers_divide_the_cores(machine, monkeypatch):
    from augmentor.core.parallel import parallel_map

    def count(shared: None, task: int) -> int:
        return torch.get_num_threads()

    assert threads.per_worker(2) == 1 and threads.per_worker(1) == 2 and threads.per_worker(5) == 1
    assert parallel_map(count, None, [0, 1, 2, 3], workers=2) == [1, 1, 1, 1]


def test_pool_workers_forked_after_opencv_ran_do_not_hang():
    """A ``data export`` after albumentations ran in the same process hung for ever: each forked worker called
    ``cv2.setNumThreads``, which waits in ``pthread_cond_destroy`` on the parent's sleeping OpenCV threads."""
    script = (
        "import time, numpy as np, cv2\n"
        "from augmentor.core.parallel import parallel_map\n"
        "for _ in range(3): cv2.GaussianBlur(np.zeros((2000, 2000), np.float32), (31, 31), 5)\n"
        "time.sleep(1)  # the OpenCV pool's threads asleep on their condition variable\n"
        "print(parallel_map(lambda shared, task: task * shared, 2, [1, 2, 3, 4], workers=2))\n"
    )
    environment = {**os.environ, "OMP_NUM_THREADS": "2"}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, env=environment, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[2, 4, 6, 8]"
