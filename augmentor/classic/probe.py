"""The probe: a pipeline file tried once on small images in a child process, under a time and a memory limit.

The bounds table (``augmentor.classic.bounds``) refuses the arguments known to ask for too much; what it
cannot see (an ``Affine`` shear near 90° with ``fit_output``, a legal grid that is slow, a combination) would
otherwise surface as a process that allocates gigabytes or runs for minutes inside OpenCV, deaf to SIGTERM
and SIGINT. So before a user's file does real work, a child process (``probe_child.py``) applies each of
its transforms alone with p=1 to one 64×64×3 image, then the whole pipeline as written to that image and to
one of the data's own size where the caller knows it. The child's address space is capped (``RLIMIT_AS``)
at what its imports mapped plus ``AUGMENTOR_MAX_PIPELINE_PROBE_MEMORY`` and the parent kills it (SIGKILL)
after ``AUGMENTOR_MAX_PIPELINE_PROBE_SECONDS``; either becomes a ``UserError`` naming the file, the
transform and the variable. A transform that fails for another reason (a crop larger than the trial image,
one that needs bounding boxes) is left to the real run, which says so with the data's own size.

Cost: the child imports albumentations without torch (0.3 s and 90 MB instead of 1.2 s and 700 MB; the
tensor conversions ToTensorV2 and ToTensor3D, which need it and ask nothing of memory, are left out of the
trial) and runs each step in milliseconds: 0.4-0.7 s in all for a normal pipeline on the 2-core development
machine, once per file and image size per process. Presets are not probed (this project's own, and tested).
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from augmentor.core.errors import UserError
from augmentor.core.limits import PIPELINE_PROBE_MEMORY, PIPELINE_PROBE_SECONDS, human_bytes

if TYPE_CHECKING:
    from augmentor.classic.pipelines import Pipeline

PROBE_SHAPE = (64, 64, 3)  # height, width, channels
_CHILD = Path(__file__).with_name("probe_child.py")
_TENSOR_TRANSFORMS = ("ToTensorV2", "ToTensor3D")
# The child's start (Python and albumentations' imports), which no pipeline argument can lengthen: a machine
# too busy to start it in this time skips the probe rather than blame the file.
_START_SECONDS = 120
_probed: set[tuple[str, tuple[tuple[int, int, int], ...]]] = set()


def probe_pipeline(pipeline: Pipeline, image_shape: tuple[int, int, int] | None = None) -> None:
    """Try ``pipeline`` (when it came from a file) once in a child process; refuse it if that runs out of
    time or memory. ``image_shape``: the data's own (height, width, channels), tried besides 64×64×3."""
    if pipeline.source is None or os.name != "posix" or not sys.executable:
        return
    shapes = [PROBE_SHAPE]
    if image_shape is not None and tuple(image_shape) != PROBE_SHAPE:
        shapes.append(tuple(int(n) for n in image_shape))
    key = (pipeline.name, tuple(shapes))
    if key in _probed:
        return
    steps = _steps(pipeline.spec, shapes)
    outcome, index, detail = _run_child(steps)
    if outcome in ("done", "skipped"):
        _probed.add(key)
        return
    what, shape = steps[index]["what"], "×".join(map(str, steps[index]["shape"]))
    trial = f"one {shape} image (a trial run before the real one)"
    if outcome == "time":
        raise UserError(
            f"{pipeline.source}: {what} did not finish within {PIPELINE_PROBE_SECONDS.value()} s on {trial}; "
            f"lower its arguments, or {PIPELINE_PROBE_SECONDS.lift()}"
        )
    if outcome == "memory":
        raise UserError(
            f"{pipeline.source}: {what} needs more than {human_bytes(PIPELINE_PROBE_MEMORY.value())} of memory for "
            f"{trial}; lower its arguments, or {PIPELINE_PROBE_MEMORY.lift()}"
        )
    raise UserError(f"{pipeline.source}: {what} crashed {trial} ({detail}); lower its arguments or remove it")


def _steps(spec: dict[str, Any], shapes: list[tuple[int, int, int]]) -> list[dict[str, Any]]:
    """Each transform alone with p=1 on the first shape, then the whole pipeline as written on every shape;
    without the tensor conversions (the child does not import torch)."""
    steps: list[dict[str, Any]] = []

    def visit(node: dict[str, Any], where: str) -> dict[str, Any] | None:
        children = node.get("transforms")
        if isinstance(children, list):
            kept = [visit(child, f"{where}.transforms[{i}]") for i, child in enumerate(children)]
            return {**node, "transforms": [child for child in kept if child is not None]}
        name = _short_name(node)
        if name in _TENSOR_TRANSFORMS:
            return None
        steps.append({"what": f"{name} at {where}", "spec": {**node, "p": 1.0}, "shape": list(shapes[0])})
        return node

    whole = visit(spec, "transform")
    if whole is not None:
        steps.extend({"what": "the whole pipeline", "spec": whole, "shape": list(shape)} for shape in shapes)
    return steps


def _short_name(node: dict[str, Any]) -> str:
    return str(node.get("__class_fullname__", "")).rsplit(".", 1)[-1]


def _run_child(steps: list[dict[str, Any]]) -> tuple[str, int, str]:
    """Run the steps in a child; ``(outcome, step index, detail)`` with outcome ``done``, ``skipped`` (the
    child did not start: nothing learnt), ``time``, ``memory`` or ``crash``."""
    request: dict[str, Any] = {"steps": [{"spec": s["spec"], "shape": s["shape"]} for s in steps]}
    seconds = PIPELINE_PROBE_SECONDS.value()
    request.update(memory=PIPELINE_PROBE_MEMORY.value(), seconds=seconds)
    threads = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    environment = {**os.environ, **threads, "NO_ALBUMENTATIONS_UPDATE": "1"}
    try:
        child = subprocess.Popen(
            [sys.executable, "-P", str(_CHILD)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=environment,
            start_new_session=True,  # Ctrl-C reaches the parent, which kills the child below
        )
    except OSError:
        return "skipped", 0, ""
    try:
        try:
            child.stdin.write(json.dumps(request).encode())  # the child reads it all before anything else
            child.stdin.close()
        except OSError:
            return "skipped", 0, ""
        return _follow(child, seconds)
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
        child.stdout.close()


def _follow(child: subprocess.Popen, seconds: int) -> tuple[str, int, str]:
    """Read the child's lines until it reports an end, dies, or runs past its deadline."""
    descriptor = child.stdout.fileno()
    deadline = time.monotonic() + _START_SECONDS
    ready, step, pending = False, 0, b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return ("time", step, "") if ready else ("skipped", 0, "")
        readable, _, _ = select.select([descriptor], [], [], left)
        if not readable:
            continue
        chunk = os.read(descriptor, 1 << 16)
        if not chunk:
            break
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if not isinstance(message, dict):
                continue
            if message.get("ready"):
                ready, deadline = True, time.monotonic() + seconds
            elif "step" in message:
                step = int(message["step"])
            elif "memory" in message:
                return "memory", int(message["memory"]), ""
            elif message.get("done"):
                return "done", 0, ""
    try:
        code = child.wait(timeout=max(deadline - time.monotonic(), 1))
    except subprocess.TimeoutExpired:  # its output closed but still running: as good as running on
        return ("time", step, "") if ready else ("skipped", 0, "")
    if not ready or code == 0:  # not started, or ended well: nothing learnt
        return "skipped", 0, ""
    if code == -getattr(signal, "SIGXCPU", 0):  # its own CPU limit, twice the time limit: not before it
        return "time", step, ""
    if code < 0:
        try:
            detail = signal.Signals(-code).name
        except ValueError:
            detail = f"signal {-code}"
    else:
        detail = f"exit status {code}"
    return "crash", step, detail
