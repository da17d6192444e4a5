"""The worker process behind ``tests/test_fuzz.py``: runs one reader at a time on bytes it is sent, capped.

Started once per test module (``python -m tests.fuzz_target``) because importing torch costs seconds. It
imports every reader, then caps its own address space (``RLIMIT_AS``) at what those imports mapped plus
``HEADROOM`` and, before each request, its CPU time (``RLIMIT_CPU``) at what it has used plus
``CPU_SECONDS``: a decompression bomb meets MemoryError (or torch's allocation error) instead of the
machine's memory, and a CPU bomb meets SIGXCPU, which kills this process (the test then names the input).

Protocol on stdin/stdout, frames of a 4-byte big-endian length and a pickle:

* out, once at start: ``{"baseline": bytes mapped after the imports, "cap": the RLIMIT_AS set}``;
* in: ``(reader, files, target)``: ``files`` maps relative paths to bytes, written into a fresh temporary
  folder (under ``$AUGMENTOR_FUZZ_SCRATCH``); the reader is called on ``folder / target``;
* out: ``(outcome, seconds, traceback_tail)`` where ``outcome`` is ``"ok"``, ``"usererror: <message>"``
  or ``"other: <exception type>: <message>"``.

Anything the library prints goes to stderr (stdout carries only the frames).
"""

from __future__ import annotations

import os
import pickle
import resource
import struct
import sys
import tempfile
import time
import traceback
from pathlib import Path

# Address space allowed above what the imports mapped. Measured here (x86_64, torch 2.14.1+cu130): a bare
# ``import torch`` maps 3.1 GiB of virtual memory (CUDA libraries, 0.5 GiB resident) and all the readers'
# imports (torchvision models, albumentations and cv2, every PIL plugin, safetensors) 3.6 GiB, 0.6 GiB
# resident; an absolute 1.5-2 GiB cap could not even import torch, so the cap is relative: baseline + 2 GiB
# (~5.6 GiB in all). The largest decode a fuzz input may rightly ask for is a 64-Mpixel RGBA PNG (~0.5 GB
# with its conversions), so 2 GiB stops only a bomb.
HEADROOM = 2 << 30
CPU_SECONDS = 10  # per request; the readers take milliseconds on these small files, a refused bomb under a second


def _vm_size() -> int:
    """This process's mapped address space in bytes (``VmSize``)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize in /proc/self/status")


def _import_everything() -> dict:
    """Import every reader and what it imports lazily, so the baseline holds them and the cap does not."""
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    import numpy as np
    import torch
    import torchvision.models  # noqa: F401 - efficientnet/convnext factories import it lazily
    from PIL import Image

    torch.set_num_threads(1)
    Image.init()  # every PIL plugin

    import safetensors.torch  # noqa: F401
    import yaml  # noqa: F401
    from albumentations.core.serialization import SERIALIZABLE_REGISTRY  # noqa: F401

    import augmentor.classic.albu
    import augmentor.classifiers.architectures
    import augmentor.generative.dcgan
    import augmentor.generative.vae  # noqa: F401
    from augmentor.classic.pipelines import load_pipeline
    from augmentor.classifiers.classifier import Classifier
    from augmentor.core.errors import UserError
    from augmentor.data.decode import BadImageFile, read_image
    from augmentor.data.idx import read_idx_array
    from augmentor.data.readers import open_dataset
    from augmentor.generative.generator import Generator

    np.zeros(1)
    return {
        "UserError": UserError,
        "BadImageFile": BadImageFile,
        "dataset": lambda path: open_dataset(str(path)),
        "image": read_image,
        "idx_array": read_idx_array,
        "pipeline": lambda path: load_pipeline(str(path)),
        "generator": Generator.from_run,
        "classifier": Classifier.from_run,
        "allocate": lambda path: bytearray(int(path.read_text())),  # the test of the cap itself
    }


def _write_files(root: Path, files: dict[str, bytes]) -> None:
    for relative, data in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def _where(exc: BaseException) -> str:
    """The innermost frame in the project's code, the line a defect report names."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "/augmentor/" in f.filename]
    if not frames:
        return "raised outside augmentor/\n"
    frame = frames[-1]
    return f"raised via augmentor/{frame.filename.rsplit('/augmentor/', 1)[-1]}:{frame.lineno} ({frame.line})\n"


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _run(readers: dict, reader: str, files: dict[str, bytes], target: str, scratch: str) -> tuple[str, str]:
    """Call one reader; ``image`` also reads the file's folder as a dataset (BadImageFile is the decoder's
    own error type, turned into a UserError by the dataset reader)."""
    user_error, bad_image = readers["UserError"], readers["BadImageFile"]
    with tempfile.TemporaryDirectory(prefix="fuzz-", dir=scratch) as folder:
        root = Path(folder)
        _write_files(root, files)
        try:
            if reader == "image":
                try:
                    readers["image"](root / target)
                except bad_image as exc:
                    if "\n" in str(exc):
                        return f"other: BadImageFile with a line break: {exc}", ""
                readers["dataset"](root / Path(target).parent.parent)
            else:
                readers[reader](root / target)
        except user_error as exc:
            return f"usererror: {exc}", ""
        except Exception as exc:  # noqa: BLE001 - anything else is what the fuzz test reports
            return f"other: {_describe(exc)}", _where(exc) + "".join(traceback.format_exception(exc)[-6:])
    return "ok", ""


def _send(stream, payload: object) -> None:
    data = pickle.dumps(payload)
    stream.write(struct.pack(">I", len(data)) + data)
    stream.flush()


def _receive(stream) -> object | None:
    head = stream.read(4)
    if len(head) < 4:
        return None
    (size,) = struct.unpack(">I", head)
    return pickle.loads(stream.read(size))


def main() -> None:
    # stdin/stdout carry the frames; whatever the library prints goes to stderr.
    requests = os.fdopen(os.dup(0), "rb")
    replies = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    scratch = os.environ.get("AUGMENTOR_FUZZ_SCRATCH") or tempfile.gettempdir()  # the test removes it
    os.chdir(scratch)
    readers = _import_everything()
    baseline = _vm_size()
    _, as_hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = baseline + HEADROOM if as_hard == resource.RLIM_INFINITY else min(baseline + HEADROOM, as_hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, as_hard))
    _send(replies, {"baseline": baseline, "cap": cap})
    _, cpu_hard = resource.getrlimit(resource.RLIMIT_CPU)
    while True:
        request = _receive(requests)
        if request is None:
            return
        reader, files, target = request
        used = resource.getrusage(resource.RUSAGE_SELF)
        soft = int(used.ru_utime + used.ru_stime) + CPU_SECONDS
        if cpu_hard != resource.RLIM_INFINITY:
            soft = min(soft, cpu_hard)
        resource.setrlimit(resource.RLIMIT_CPU, (soft, cpu_hard))
        started = time.perf_counter()
        outcome, tail = _run(readers, reader, files, target, scratch)
        _send(replies, (outcome, time.perf_counter() - started, tail))


if __name__ == "__main__":
    main()
