"""The child side of the pipeline probe (``augmentor.classic.probe``): run as a script, never imported.

It reads one JSON request from stdin, imports albumentations without torch (0.3 s and 90 MB instead of 1.2 s
and 700 MB; the parent leaves the tensor conversions out of the steps), caps its own address space at what
the imports mapped plus the request's ``memory`` (``RLIMIT_AS``), says ``ready``, then runs each step: one
transform alone with p=1, or the whole pipeline as written, on a random uint8 image of the step's shape.
Before each step it prints the step's index, so a parent that kills it for taking too long knows which
step it was in; a step that fails for lack of memory ends the child with ``{"memory": index}``. Any other
failure of a step (a crop larger than the probe image, a transform that needs bounding boxes) is not the
probe's business: the real run reports it with the data's own size.

Self-contained (numpy, OpenCV, albumentations and the standard library only) and started with ``python -P``,
so nothing beside this file shadows a module the imports need.
"""

from __future__ import annotations

import json
import os
import random
import sys

_MEMORY_WORDS = ("memory", "allocate", "bad_alloc")
_replies = sys.stdout  # replaced in main by a private copy of stdout: what a library prints goes to stderr


def _say(message: dict) -> None:
    _replies.write(json.dumps(message) + "\n")
    _replies.flush()


def _mapped_bytes() -> int | None:
    """This process's address space now (``VmSize``), or None where /proc is not there."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _lower(kind: int, limit: int) -> None:
    """Lower one resource limit to ``limit`` (never raise it past what the parent was given)."""
    import resource

    soft, hard = resource.getrlimit(kind)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    if soft == resource.RLIM_INFINITY or limit < soft:
        resource.setrlimit(kind, (limit, hard))


def _limit(memory: int, seconds: int) -> None:
    """Address space: what the imports mapped plus ``memory``. CPU time: what the imports used plus twice the
    parent's time limit, so a child whose parent died without killing it (SIGKILL, SIGTERM) still ends."""
    try:
        import resource
    except ImportError:  # not POSIX: the parent's time limit still holds
        return
    mapped = _mapped_bytes()
    if mapped is not None and memory:
        _lower(resource.RLIMIT_AS, mapped + memory)
    if seconds:
        used = resource.getrusage(resource.RUSAGE_SELF)
        _lower(resource.RLIMIT_CPU, int(used.ru_utime + used.ru_stime) + 2 * seconds + 1)


def main() -> None:
    global _replies
    request = json.loads(sys.stdin.read())
    _replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    sys.modules["torch"] = None  # albumentations then leaves out ToTensorV2 (``suppress(ImportError)``)
    os.environ["NO_ALBUMENTATIONS_UPDATE"] = "1"
    import warnings

    warnings.simplefilter("ignore")
    import albumentations as A
    import cv2
    import numpy as np

    cv2.setNumThreads(1)
    _limit(int(request.get("memory") or 0), int(request.get("seconds") or 0))
    _say({"ready": True})
    rng = np.random.default_rng(0)
    images = {}
    for index, step in enumerate(request["steps"]):
        _say({"step": index})
        shape = tuple(step["shape"])
        try:
            if shape not in images:
                images[shape] = rng.integers(0, 256, shape, dtype=np.uint8)
            transform = A.from_dict({"transform": step["spec"]})
            transform.set_random_state(np.random.default_rng(index), random.Random(index))
            transform(image=images[shape])
        except MemoryError:
            _say({"memory": index})
            return
        except Exception as error:  # noqa: BLE001 - see the module's docstring
            text = f"{type(error).__name__} {error}".lower()
            if isinstance(error, cv2.error) and any(word in text for word in _MEMORY_WORDS):
                _say({"memory": index})
                return
            _say({"failed": index, "error": type(error).__name__})
    _say({"done": True})


if __name__ == "__main__":
    main()
