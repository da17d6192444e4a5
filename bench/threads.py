"""Benchmark: two augmentor trainings at once on a small machine, with the thread share and without it.

Issue 26, item 4: each process used to start torch with one thread per core, and torch's OpenMP threads spin
at barriers when they outnumber the cores, so two commands at once on a 2-core machine ran about 17× slower
than one, not 2×. A command now takes its share of the cores (``augmentor.core.threads``).

What runs (each a subprocess, ``OMP_NUM_THREADS`` and ``AUGMENTOR_THREADS`` removed from its environment, as a
user's shell has them):
  data   ``augmentor data subset fashion-mnist --per-class P`` into a temporary folder (not timed);
  alone  ``augmentor --quiet classify train DATA --steps S --arch fast --device cpu --out RUN``, by itself;
  pair   the same twice, the second started 1 s after the first (as a user starts a second command):
         ours  the default, the share;
         peer  ``AUGMENTOR_THREADS=<cores>`` for both: every core each, the old behaviour, in the same run.
Figures: each command's wall seconds (start to exit), its training seconds (``config.json``), its CPU seconds
(``os.wait4``) and the cores it kept busy on average (CPU over wall); the ratio is the pair's slower command's
wall seconds over the one alone. Target: ours under 2.5×. Wall figures are only as clean as the machine: run
it with nothing else busy, and report a run beside other jobs as such, with the load average it prints. CPU
seconds are the steadier figure there: threads that spin at barriers burn CPU without progress, so a command
that needs more CPU seconds in the pair than alone is fighting for cores.

Run:  .venv/bin/python bench/threads.py [--steps 150] [--per-class 30] [--skip-peer]
Writes bench/results/threads.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"


def environment(threads: int | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "AUGMENTOR_THREADS")}
    env.update(PYTHONPATH=str(REPO), NO_ALBUMENTATIONS_UPDATE="1")
    if threads is not None:
        env["AUGMENTOR_THREADS"] = str(threads)
    return env


def train_command(data: Path, out: Path, steps: int) -> list[str]:
    command = [sys.executable, "-m", "augmentor", "--quiet", "classify", "train", str(data), "--steps", str(steps)]
    return [*command, "--arch", "fast", "--device", "cpu", "--out", str(out), "--overwrite"]


def run_together(commands: list[list[str]], env: dict[str, str], gap: float) -> list[dict[str, float]]:
    """Start ``commands`` ``gap`` seconds apart; each one's wall seconds and average busy cores."""
    started, processes = [], []
    for k, command in enumerate(commands):
        if k:
            time.sleep(gap)
        started.append(time.perf_counter())
        processes.append(subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL))
    done: dict[int, dict[str, float]] = {}
    while len(done) < len(processes):
        for k, process in enumerate(processes):
            if k in done:
                continue
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                wall = time.perf_counter() - started[k]
                if os.waitstatus_to_exitcode(status) != 0:
                    raise SystemExit(f"{' '.join(commands[k])} failed (exit {os.waitstatus_to_exitcode(status)})")
                cpu = usage.ru_utime + usage.ru_stime
                done[k] = {"wall": wall, "cpu": cpu, "cores": cpu / wall}
        time.sleep(0.02)
    return [done[k] for k in range(len(processes))]


def measured(runs: list[Path], timings: list[dict[str, float]]) -> list[dict[str, float]]:
    for run, timing in zip(runs, timings, strict=True):
        timing["train"] = json.loads((run / "config.json").read_text())["training"]["seconds"]
    return timings


def line(name: str, timings: list[dict[str, float]], alone: float | None) -> str:
    each = ", ".join(
        f"{t['wall']:.1f} s wall ({t['train']:.1f} s training, {t['cpu']:.1f} CPU s, {t['cores']:.2f} cores)"
        for t in timings
    )
    ratio = f"  ratio {max(t['wall'] for t in timings) / alone:.2f}×" if alone else ""
    return f"{name:<28} {each}{ratio}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=150, help="training steps of each command")
    parser.add_argument("--per-class", type=int, default=30, help="Fashion-MNIST train images per class")
    parser.add_argument("--gap", type=float, default=1.0, help="seconds between the pair's starts")
    parser.add_argument("--skip-peer", action="store_true", help="leave out the pair at every core each")
    args = parser.parse_args(argv)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    with tempfile.TemporaryDirectory(prefix="bench-threads-") as folder:
        root = Path(folder)
        data = root / "data"
        subset = [sys.executable, "-m", "augmentor", "--quiet", "data", "subset", "fashion-mnist"]
        subprocess.run(
            [*subset, "--per-class", str(args.per_class), "--out", str(data)],
            cwd=REPO,
            env={**environment(None), "OMP_NUM_THREADS": "1"},
            stdout=subprocess.DEVNULL,
            check=True,
        )
        runs = [root / "a", root / "b"]
        alone = measured(runs[:1], run_together([train_command(data, runs[0], args.steps)], environment(None), 0))
        commands = [train_command(data, run, args.steps) for run in runs]
        ours = measured(runs, run_together(commands, environment(None), args.gap))
        peer = None if args.skip_peer else measured(runs, run_together(commands, environment(cores), args.gap))
    single = alone[0]["wall"]
    print(f"{cores} cores, load average {load:.2f} at the start, {args.steps} steps of fast on {args.per_class}/class")
    print(line("alone (share)", alone, None))
    print(line("pair, ours (share)", ours, single))
    if peer is not None:
        print(line(f"pair, peer ({cores} threads each)", peer, single))
    result = {
        "cores": cores,
        "load_average_at_start": load,
        "steps": args.steps,
        "per_class": args.per_class,
        "gap_seconds": args.gap,
        "alone": alone,
        "pair_ours": ours,
        "pair_peer": peer,
        "ratio_ours": max(t["wall"] for t in ours) / single,
        "ratio_peer": None if peer is None else max(t["wall"] for t in peer) / single,
        "target_ratio": 2.5,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "threads.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
