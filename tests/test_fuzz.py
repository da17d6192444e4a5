"""Fuzzing every reader: random bytes and mutated valid files raise only ``UserError``, within a memory cap.

One worker process (``tests/fuzz_target.py``, started once for the module because importing torch costs
seconds) runs the readers: it writes the bytes it is sent into a fresh folder, calls the reader and answers
``ok``, ``usererror: <message>`` or ``other: <type>: <message>``. It runs under ``RLIMIT_AS`` (the address
space its imports mapped plus 2 GiB; see ``HEADROOM`` there for the figures) and ``RLIMIT_CPU`` (10 s a
request), so a bomb that slips past a reader's checks meets MemoryError or SIGXCPU instead of the machine,
and the test names the input. Every outcome must be ``ok`` or a one-line ``UserError``.

Inputs: random bytes (after a valid magic number or not), and valid files built here (PNG, JPEG, …, IDX,
npz, pipelines written by ``A.save``, run folders written by ``write_run``) mutated by hypothesis: bytes
flipped, truncated, spliced, and for structured formats their values replaced (JSON values by drawn JSON,
npz arrays by drawn dtypes and shapes, IDX header dimensions by drawn 32-bit numbers, a safetensors header's
JSON). Mutations are drawn as short edit lists and applied in the test, so a failing example prints as a
recipe. The explicit bombs (``@example`` and ``test_bombs_are_refused_quickly``, which also holds the 1 MB gzip
bomb, built only when it runs) must be refused at once; other explicit examples pin defects fuzzing found.

Settings are derandomized (the same examples every run) and bounded: ~9,000 examples, about two minutes on
two cores when every reader passes (a failing test stops at its first failing explicit example, sooner).
``make test-slow`` runs it.
"""

from __future__ import annotations

import copy
import datetime
import functools
import gzip
import io
import json
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, reject, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tests.conftest import REPO, draw_shape

# --- the worker ----------------------------------------------------------------------------------

STARTUP_SECONDS = 120  # importing torch on a loaded two-core machine
REQUEST_SECONDS = 60  # wall clock; the worker's own CPU cap (10 s) normally ends a runaway first
BOMB_SECONDS = 10.0  # a refused bomb takes well under a second; one that inflates takes minutes or dies


class Result(NamedTuple):
    outcome: str  # "ok", "usererror: …", "other: …" or "died: …"
    seconds: float
    tail: str  # the traceback's last frames for "other", the worker's stderr for "died"


class Worker:
    """The reader process: restarted after it dies, so one fatal input fails one example, not the module."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch  # the worker's temporary folders, left there when it is killed midway
        self.process: subprocess.Popen | None = None
        self.stderr: Any = None
        self.baseline = self.cap = 0
        self.timed_out = False

    def start(self) -> None:
        if self.stderr is not None:
            self.stderr.close()
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 - the worker's stderr, kept while it runs
        pythonpath = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
        env = {
            **os.environ,
            "PYTHONPATH": pythonpath,
            "AUGMENTOR_FUZZ_SCRATCH": str(self.scratch),
            "NO_ALBUMENTATIONS_UPDATE": "1",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.fuzz_target"],
            cwd=REPO,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
        )
        hello = self._receive(STARTUP_SECONDS)
        if not isinstance(hello, dict):
            raise RuntimeError(f"the fuzz worker did not start: {self._death()}")
        self.baseline, self.cap = hello["baseline"], hello["cap"]

    def call(self, reader: str, files: dict[str, bytes], target: str) -> Result:
        if self.process is None or self.process.poll() is not None:
            self.start()
        assert self.process is not None and self.process.stdin is not None
        payload = pickle.dumps((reader, files, target))
        try:
            self.process.stdin.write(struct.pack(">I", len(payload)) + payload)
            self.process.stdin.flush()
        except BrokenPipeError:
            pass
        started = time.perf_counter()
        reply = self._receive(REQUEST_SECONDS)
        if reply is None:
            return Result(f"died: {self._death()}", time.perf_counter() - started, self._stderr_tail())
        return Result(*reply)

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if self.stderr is not None:
            self.stderr.close()
            self.stderr = None

    def _receive(self, timeout: float) -> Any:
        """One frame, or None when the worker died or ran past ``timeout`` (then it is killed)."""
        assert self.process is not None and self.process.stdout is not None
        fd = self.process.stdout.fileno()
        deadline = time.monotonic() + timeout
        buffer = b""
        needed = 4
        while len(buffer) < needed:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                self.process.kill()
                self.process.wait()
                self.timed_out = True
                return None
            chunk = os.read(fd, needed - len(buffer))
            if not chunk:
                self.process.wait()
                return None
            buffer += chunk
            if needed == 4 and len(buffer) == 4:
                needed += struct.unpack(">I", buffer)[0]
        return pickle.loads(buffer[4:])

    def _death(self) -> str:
        assert self.process is not None
        code = self.process.wait()
        timed_out, self.timed_out = self.timed_out, False
        if timed_out:
            return f"no answer within {REQUEST_SECONDS} s (killed)"
        if code < 0:
            name = signal.Signals(-code).name
            cause = " (its CPU cap)" if name == "SIGXCPU" else ""
            return f"the worker was killed by {name}{cause}"
        return f"the worker exited with code {code}"

    def _stderr_tail(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read()[-3000:].decode(errors="replace")


@pytest.fixture(scope="module")
def worker(tmp_path_factory):
    reader = Worker(tmp_path_factory.mktemp("fuzz-worker"))
    reader.start()
    yield reader
    reader.close()


def assert_own_error(result: Result, what: str) -> None:
    """Pass for ``ok`` and a one-line UserError; anything else (other exceptions, a dead worker) fails."""
    if result.outcome.startswith("usererror: "):
        assert "\n" not in result.outcome, f"{what}: a UserError message of several lines: {result.outcome!r}"
        return
    assert result.outcome == "ok", f"{what}: {result.outcome}\n{result.tail}"


def check(worker: Worker, reader: str, files: dict[str, bytes], target: str) -> Result:
    result = worker.call(reader, files, target)
    sizes = ", ".join(f"{name} ({len(data):,} bytes)" for name, data in files.items())
    assert_own_error(result, f"{reader} reader on {target} [{sizes}]")
    return result


FUZZ = settings(
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=False,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
        HealthCheck.filter_too_much,
    ],
)

# --- mutations -----------------------------------------------------------------------------------

# Tokens worth splicing into text formats (an AFL-style dictionary): what parsers special-case, among them
# more digits than int() converts by default and nesting deeper than the recursion limit.
TOKENS = (b"1" * 5000, b"[" * 2000, b"{", b"}", b"[", b"]", b",", b'"', b"\\u0000", b"\x00", b"\xff\xfe", b"\n")
TOKENS += (b"NaN", b"-Infinity", b"1e999", b"-1", b"0", b"4294967296", b"18446744073709551616", b"null", b"true")
TOKENS += (b": ", b"- ", b"? ", b"*a", b"&a ", b"<<: ", b"!!binary ", b"!!set ", b"!!python/object/apply:os.system ")
TOKENS += (b"2020-01-01", b"---\n", b"%YAML 1.1\n")

POSITION = st.one_of(st.integers(0, 255), st.integers(0, 1 << 24))
BYTE_EDITS = st.lists(
    st.one_of(
        st.tuples(st.just("xor"), POSITION, st.integers(1, 255)),
        st.tuples(st.just("set"), POSITION, st.sampled_from([0, 1, 0x7F, 0x80, 0xFF]) | st.integers(0, 255)),
        st.tuples(st.just("truncate"), POSITION),
        st.tuples(st.just("insert"), POSITION, st.binary(min_size=1, max_size=32) | st.sampled_from(TOKENS)),
        st.tuples(st.just("delete"), POSITION, st.integers(1, 256)),
        st.tuples(st.just("repeat"), POSITION, st.integers(1, 64), st.integers(2, 100)),
    ),
    min_size=1,
    max_size=4,
)


def apply_byte_edits(data: bytes, edits: list[tuple]) -> bytes:
    """Apply edits drawn from BYTE_EDITS; a position is taken modulo the length (+1 for inserts)."""
    out = bytearray(data)
    for edit in edits:
        kind, position = edit[0], edit[1]
        if kind in ("xor", "set"):
            if not out:
                continue
            at = position % len(out)
            out[at] = out[at] ^ edit[2] if kind == "xor" else edit[2]
        elif kind == "truncate":
            del out[position % (len(out) + 1) :]
        elif kind == "insert":
            at = position % (len(out) + 1)
            out[at:at] = edit[2]
        elif kind == "delete":
            at = position % (len(out) + 1)
            del out[at : at + edit[2]]
        elif kind == "repeat":
            at = position % (len(out) + 1)
            piece = bytes(out[at : at + edit[2]])
            out[at:at] = piece * (edit[3] - 1)
    return bytes(out)


INTERESTING_INTS = (0, 1, -1, 2, 3, 7, 8, 28, 32, 64, 128, 255, 256, 1023, 1024, 1025, 4096, 4097, 65535, 65536)
INTERESTING_INTS += (200_000, 10**9, 2**31 - 1, 2**31, 2**32, 2**53 + 1, 2**63, 2**64)
INTERESTING_TEXT = ("", ".", "..", "../escaped", "a/b", " a", "a\x00b", "\n", "dcgan", "vae", "classifier", "fast")
INTERESTING_TEXT += ("lenet5", "convnext-tiny", "Compose", "OneOf", "HorizontalFlip", "Resize", "Lambda")
INTERESTING_TEXT += ("albumentations.core.composition.Compose", "F32", "F8_E4M3", "U64", "BOOL")
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from(INTERESTING_INTS),
    st.integers(),
    st.floats(),
    st.sampled_from(INTERESTING_TEXT),
    st.text(max_size=12),
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=8,
)
# What YAML holds beyond JSON: dates, bytes (!!binary), sets, keys that are not strings.
YAML_SCALARS = st.one_of(
    SCALARS,
    st.dates(),
    st.datetimes(),
    st.binary(max_size=8),
    st.frozensets(st.integers(0, 9), max_size=3),
)
YAML_VALUES = st.recursive(
    YAML_SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.one_of(st.text(max_size=10), st.integers(), st.none(), st.booleans()), children, max_size=4
        )
    ),
    max_leaves=8,
)


KEYS = st.sampled_from(INTERESTING_TEXT) | st.text(max_size=10)


def json_edits(values: st.SearchStrategy, keys: st.SearchStrategy = KEYS) -> st.SearchStrategy:
    """Edits of a JSON-like document: replace the value at the n-th path, delete it, or add a key beside it
    (inside it, for the root)."""
    index = st.integers(0, 1 << 16)
    return st.lists(
        st.one_of(
            st.tuples(st.just("replace"), index, values),
            st.tuples(st.just("delete"), index),
            st.tuples(st.just("add"), index, keys, values),
        ),
        min_size=1,
        max_size=3,
    )


def _paths(document: Any, prefix: tuple = ()) -> list[tuple]:
    paths = [prefix]
    if isinstance(document, dict):
        for key, value in document.items():
            paths += _paths(value, (*prefix, key))
    elif isinstance(document, list):
        for i, value in enumerate(document):
            paths += _paths(value, (*prefix, i))
    return paths


def apply_json_edits(document: Any, edits: list[tuple]) -> Any:
    """Apply edits drawn from ``json_edits`` to a copy of ``document``; a path index is taken modulo the count.
    Explicit examples also name a key to remove: ``("remove", "model_args", "num_classes")``."""
    document = copy.deepcopy(document)
    for edit in edits:
        if edit[0] == "remove":
            parent = document
            for key in edit[1:-1]:
                parent = parent[key]
            del parent[edit[-1]]
            continue
        paths = _paths(document)
        path = paths[edit[1] % len(paths)]
        if not path:  # the root itself
            if edit[0] == "replace":
                document = copy.deepcopy(edit[2])
            elif edit[0] == "add" and isinstance(document, dict):
                document[edit[2]] = copy.deepcopy(edit[3])
            continue
        parent = document
        for key in path[:-1]:
            parent = parent[key]
        if edit[0] == "replace":
            parent[path[-1]] = copy.deepcopy(edit[2])
        elif edit[0] == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[edit[2]] = copy.deepcopy(edit[3])
        else:
            parent.insert(path[-1], copy.deepcopy(edit[3]))
    return document


def dump_json(document: Any) -> bytes:
    try:
        return json.dumps(document).encode()
    except (ValueError, TypeError, RecursionError):
        reject()  # not writable as JSON: nothing to test
        raise


def dump_yaml(document: Any) -> bytes:
    import yaml

    try:
        return yaml.safe_dump(document).encode()
    except (yaml.YAMLError, ValueError, TypeError, RecursionError):
        reject()
        raise


# --- valid files ----------------------------------------------------------------------------------


def _shape(channels: int = 1, seed: int = 0, kind: str = "disk") -> np.ndarray:
    return draw_shape(kind, 28, np.random.default_rng(seed), channels)


def encode_image(array: np.ndarray, image_format: str, **options: Any) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array).save(buffer, format=image_format, **options)
    return buffer.getvalue()


@functools.cache
def valid_images() -> dict[str, list[bytes]]:
    """A few valid 28×28 files per extension: grey and colour, and the variants a format has."""
    grey, colour = _shape(1, 0, "disk"), _shape(3, 1, "triangle")
    from PIL import Image

    palette = Image.fromarray(colour).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    buffer = io.BytesIO()
    palette.save(buffer, format="PNG", transparency=0)
    return {
        ".png": [
            encode_image(grey, "PNG"),
            encode_image(colour, "PNG"),
            buffer.getvalue(),
            encode_image(grey, "PNG", exif=_exif(6)),
        ],
        ".jpg": [
            encode_image(grey, "JPEG", quality=90),
            encode_image(colour, "JPEG", quality=75),
            encode_image(colour, "JPEG", progressive=True, exif=_exif(8)),
        ],
        ".bmp": [encode_image(grey, "BMP"), encode_image(colour, "BMP")],
        ".gif": [encode_image(grey, "GIF")],
        ".tif": [encode_image(grey, "TIFF"), encode_image(colour, "TIFF", compression="tiff_lzw")],
        ".webp": [encode_image(colour, "WEBP", quality=80), encode_image(grey, "WEBP", lossless=True)],
    }


def _exif(orientation: Any) -> bytes:
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def image_files(name: str, data: bytes) -> dict[str, bytes]:
    """An ImageFolder of one class holding one valid image and the fuzzed one."""
    return {"data/shape/a-valid.png": valid_images()[".png"][0], f"data/shape/{name}": data}


IMAGE_TARGET = "data/shape/{}"

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks, at = [], len(PNG_SIGNATURE)
    while at + 8 <= len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        chunks.append((data[at + 4 : at + 8], data[at + 8 : at + 8 + length]))
        at += 12 + length
    return chunks


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


CHUNK_TYPES = (b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"iCCP", b"sBIT")
CHUNK_TYPES += (b"tEXt", b"zTXt", b"iTXt", b"bKGD", b"pHYs", b"eXIf", b"acTL", b"fcTL", b"fdAT", b"tIME")
SIDE = st.sampled_from([0, 1, 28, 255, 4096, 8192, 65535, 2**31 - 1, 2**32 - 1]) | st.integers(0, 2**32 - 1)
CHUNK_DATA = st.one_of(
    st.binary(max_size=48),
    st.binary(max_size=2000).map(zlib.compress),
    st.builds(lambda a, b, c, d: struct.pack(">IIII", a, b, c, d), SIDE, SIDE, SIDE, SIDE),
)
PNG_CHUNK_EDITS = st.lists(
    st.one_of(
        st.tuples(
            st.just("ihdr"),
            SIDE,
            SIDE,
            st.sampled_from([1, 2, 4, 8, 16]) | st.integers(0, 255),
            st.sampled_from([0, 2, 3, 4, 6]) | st.integers(0, 255),
            st.integers(0, 2),
            st.integers(0, 1),
        ),
        st.tuples(st.just("insert"), st.integers(0, 8), st.sampled_from(CHUNK_TYPES), CHUNK_DATA),
        st.tuples(st.just("replace"), st.integers(0, 8), CHUNK_DATA),
        st.tuples(st.just("drop"), st.integers(0, 8)),
        st.tuples(st.just("edit"), st.integers(0, 8), BYTE_EDITS),
    ),
    min_size=1,
    max_size=4,
)


def apply_png_edits(data: bytes, edits: list[tuple]) -> bytes:
    """Edit a PNG chunk by chunk, every CRC recomputed (a flipped byte alone only meets the CRC check)."""
    chunks = png_chunks(data)
    for edit in edits:
        at = edit[1] % max(len(chunks), 1)
        if edit[0] == "ihdr":
            chunks[:1] = [(b"IHDR", struct.pack(">IIBBBBB", *edit[1:], 0))]
        elif edit[0] == "insert":
            chunks.insert(edit[1] % (len(chunks) + 1), (edit[2], edit[3]))
        elif edit[0] == "replace" and chunks:
            chunks[at] = (chunks[at][0], edit[2])
        elif edit[0] == "drop" and chunks:
            del chunks[at]
        elif edit[0] == "edit" and chunks:
            chunks[at] = (chunks[at][0], apply_byte_edits(chunks[at][1], edit[2]))
    return PNG_SIGNATURE + b"".join(png_chunk(kind, body) for kind, body in chunks)


def bomb_png(width: int, height: int, bit_depth: int = 8, colour_type: int = 0) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 4096)
    return PNG_SIGNATURE + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def jpeg_with_size(data: bytes, height: int, width: int, components: int | None = None) -> bytes:
    """The JPEG with its frame header (SOF0/SOF2) declaring another size (and component count)."""
    out = bytearray(data)
    for marker in (b"\xff\xc0", b"\xff\xc2"):
        at = out.find(marker)
        if at >= 0:
            out[at + 5 : at + 9] = struct.pack(">HH", height, width)
            if components is not None:
                out[at + 9] = components
    return bytes(out)


# IDX: the pair of files a folder holds, built from (magic, dims, payload) so edits can target each part.


def idx_bytes(shape: tuple[int, ...], payload: bytes | None = None, magic: bytes = b"\x00\x00\x08") -> bytes:
    header = magic + bytes([len(shape) % 256]) + b"".join((d % 2**32).to_bytes(4, "big") for d in shape)
    return header + (bytes(int(np.prod(shape))) if payload is None else payload)


@functools.cache
def valid_idx() -> dict[str, tuple[tuple[int, ...], bytes]]:
    images = np.stack([_shape(1, i, kind)[:, :, 0] for i, kind in enumerate(("disk", "square", "triangle", "disk"))])
    return {
        "images": ((4, 28, 28), images.tobytes()),
        "labels": ((4,), bytes([0, 1, 2, 0])),
    }


def idx_folder(images: bytes, labels: bytes, gz: bool) -> dict[str, bytes]:
    suffix = ".gz" if gz else ""
    pack = gzip.compress if gz else (lambda data: data)
    return {
        f"idx/train-images-idx3-ubyte{suffix}": pack(images),
        f"idx/train-labels-idx1-ubyte{suffix}": pack(labels),
    }


def gzip_bomb_idx(declared: int = 2**31, inflated_chunks: int = 64) -> bytes:
    """A gzip IDX whose header declares ``declared`` bytes of 28×28 images, then ~1 GB of zeros in ~1 MB of
    gzip (deflate segments of 16 MB of zeros, each flushed so it is byte-identical and can be repeated)."""
    header = idx_bytes((declared // 784, 28, 28), b"")
    chunk = bytes(16 << 20)
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = packer.compress(header + chunk) + packer.flush(zlib.Z_FULL_FLUSH)
    middle = packer.compress(chunk) + packer.flush(zlib.Z_FULL_FLUSH)
    last = packer.flush()
    crc = zlib.crc32(chunk, zlib.crc32(header))
    for _ in range(inflated_chunks - 1):
        crc = zlib.crc32(chunk, crc)
    size = len(header) + inflated_chunks * len(chunk)
    trailer = struct.pack("<II", crc, size & 0xFFFFFFFF)
    return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + first + middle * (inflated_chunks - 1) + last + trailer


# npz


def npz_bytes(arrays: dict[str, Any], compressed: bool = False) -> bytes:
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, **arrays)
    return buffer.getvalue()


@functools.cache
def valid_npz_arrays() -> dict[str, np.ndarray]:
    images = np.stack([_shape(1, i, kind)[:, :, 0] for i, kind in enumerate(("disk", "square", "triangle", "disk"))])
    return {
        "images": images,
        "labels": np.array([0, 1, 2, 0], np.int64),
        "class_names": np.array(["disk", "square", "triangle"]),
        "test_images": images[:2].copy(),
        "test_labels": np.array([0, 1], np.int64),
    }


def npy_member(header: str, payload: bytes, version: bytes = b"\x01\x00") -> bytes:
    """A .npy file with a literal header text (the dict numpy parses with ast.literal_eval)."""
    text = header.encode("latin1", errors="replace")
    text += b" " * (-(len(text) + 11) % 64) + b"\n"
    size = struct.pack("<H", len(text)) if version == b"\x01\x00" else struct.pack("<I", len(text))
    return b"\x93NUMPY" + version + size + text + payload


def zip_of(members: dict[str, bytes], method: int = zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


DTYPES = ["u1", "i1", "<i2", "<u2", "<i4", "<u4", "<i8", "<u8", ">i8", "<f2", "<f4", "<f8", "<c8", "?", "<U4", "S3"]
DTYPES += ["<M8[s]", "<m8[D]", [("a", "u1"), ("b", "<i4")]]
NPZ_DTYPES = st.sampled_from(DTYPES).map(np.dtype)
NPZ_ARRAYS = NPZ_DTYPES.flatmap(
    lambda dtype: hnp.arrays(dtype, hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=5))
)
# Integers a label may hold: the edges a reader compares against.
LABEL_VALUES = (0, 1, 2, 3, 127, 255, 10**5, 10**9, 2**62)
LABELS = st.sampled_from(["<i8", "<u8", "i1", "u1", "<i4"]).flatmap(
    lambda dtype: hnp.arrays(
        dtype,
        st.integers(0, 5),
        elements=st.sampled_from([v for v in LABEL_VALUES if v <= np.iinfo(dtype).max]),
    )
)
NPY_HEADERS = st.builds(
    lambda descr, fortran, shape: f"{{'descr': {descr!r}, 'fortran_order': {fortran!r}, 'shape': {shape!r}, }}",
    st.sampled_from(["|u1", "<i8", "<u8", "<f8", "|O", "<U3", "|V0", "x", "", "|b1", "<M8"]) | st.text(max_size=6),
    st.booleans() | st.sampled_from([0, 2, None]),
    st.lists(st.sampled_from(INTERESTING_INTS) | st.integers(-(2**70), 2**70), max_size=5).map(tuple),
)


# pipelines and run folders


@functools.cache
def valid_pipelines() -> dict[str, Any]:
    """The presets as albumentations' A.save writes them (the project's own ``Pipeline.dump``), parsed."""
    import yaml

    from augmentor.classic.pipelines import load_pipeline

    return {name: yaml.safe_load(load_pipeline(name).dump("yaml")) for name in ("light", "medium", "heavy")}


def billion_laughs() -> bytes:
    """Nested YAML aliases that expand to 10^9 list items."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in "bcdefghi":
        previous = chr(ord(level) - 1)
        lines.append(f"{level}: &{level} [" + ",".join([f"*{previous}"] * 10) + "]")
    return ("\n".join(lines) + "\ntransform: {__class_fullname__: Compose, transforms: *i}\n").encode()


@functools.cache
def valid_runs() -> dict[str, dict[str, bytes]]:
    """Tiny run folders written by ``write_run`` (the project's writer): a DCGAN and a VAE of width 8 (~75 KB
    of weights) and a LeNet-5 classifier (~250 KB), from the shipped runs' configs with small model arguments."""
    import torch

    from augmentor.classifiers.registry import create_model
    from augmentor.core.runs import write_run
    from augmentor.generative.kinds import KINDS

    torch.manual_seed(0)
    names = ["disk", "square", "triangle"]
    runs: dict[str, dict[str, bytes]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for kind in ("dcgan", "vae", "classifier"):
            config = json.loads((REPO / "weights" / "fashion-mnist" / kind / "config.json").read_text())
            for key in ("format_version", "augmentor_version"):
                config.pop(key, None)
            config.update(class_names=names, image_shape=[1, 28, 28])
            if kind == "classifier":
                config.update(arch="lenet5", model_args={"num_classes": 3, "in_channels": 1, "image_size": 28})
                config["normalisation"] = {"mean": [0.5], "std": [0.25]}
                module = create_model("lenet5", 3, 1, 28)
            else:
                config["model_args"] = {"latent_dim": 8, "num_classes": 3, "channels": 1, "image_size": 28, "width": 8}
                module = KINDS[kind].build(config["model_args"])[KINDS[kind].sampler]
            out = write_run(Path(folder) / kind, config=config, state_dict=module.state_dict(), metrics=[])
            runs[kind] = {
                f"run/{name}": (out / name).read_bytes()
                for name in ("config.json", "model.safetensors", "metrics.jsonl")
            }
    return runs


RUN_READERS = {"dcgan": "generator", "vae": "generator", "classifier": "classifier"}


def split_safetensors(data: bytes) -> tuple[dict, bytes]:
    size = int.from_bytes(data[:8], "little")
    return json.loads(data[8 : 8 + size]), data[8 + size :]


SAFETENSORS_DTYPES = ("F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "U16", "U32", "U64", "BOOL")
SAFETENSORS_DTYPES += ("F8_E4M3", "F8_E5M2", "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2", "C64", "X", "")
HEADER_VALUES = st.one_of(
    JSON_VALUES,
    st.sampled_from(SAFETENSORS_DTYPES),
    st.lists(st.sampled_from(INTERESTING_INTS) | st.integers(0, 100), max_size=5),
    st.tuples(st.integers(0, 2**20), st.integers(0, 2**20)).map(list),
    st.dictionaries(st.text(max_size=6), st.text(max_size=6), max_size=3),
)

# manifests


@functools.cache
def valid_manifest_folder() -> tuple[dict[str, bytes], list[dict]]:
    """An ImageFolder of two classes (one PNG each) and the manifest an augmentor output would hold."""
    import hashlib

    from augmentor.data.manifest import manifest_record

    files: dict[str, bytes] = {}
    records = []
    for i, kind in enumerate(("disk", "square")):
        path = f"{kind}/{kind}000.png"
        data = encode_image(_shape(1, i, kind), "PNG")
        files[f"out/{path}"] = data
        provenance = {"source": "classic", "origin": f"src.npz#images[{i}]", "pipeline": "direction=smile strength=1.5"}
        records.append(manifest_record(path, "train", kind, provenance, hashlib.sha256(data).hexdigest()))
    return files, records


def manifest_text(records: Any) -> bytes:
    lines = records if isinstance(records, list) else [records]
    try:
        return "".join(json.dumps(line) + "\n" for line in lines).encode()
    except (ValueError, TypeError, RecursionError):
        reject()
        raise


# --- images ---------------------------------------------------------------------------------------

IMAGE_EXTENSIONS = (".png", ".jpg", ".bmp", ".gif", ".tif", ".webp")
SIGNATURES = {
    ".png": PNG_SIGNATURE,
    ".jpg": b"\xff\xd8\xff",
    ".bmp": b"BM",
    ".gif": b"GIF89a",
    ".tif": b"II*\x00",
    ".webp": b"RIFF\x00\x00\x00\x00WEBPVP8 ",
}


@pytest.mark.slow
@settings(FUZZ, max_examples=500)
@given(
    extension=st.sampled_from(IMAGE_EXTENSIONS),
    signed=st.booleans(),
    data=st.binary(max_size=600),
)
@example(extension=".png", signed=False, data=bomb_png(8192, 8192))  # 64M pixels declared in 100 bytes
@example(extension=".png", signed=False, data=bomb_png(100_000, 100_000))
@example(extension=".png", signed=False, data=bomb_png(8192, 8192, 16, 6))
@example(extension=".png", signed=False, data=b"")
def test_image_random_bytes(worker, extension, signed, data):
    name = f"x{extension}"
    body = SIGNATURES[extension] + data if signed else data
    check(worker, "image", image_files(name, body), IMAGE_TARGET.format(name))


@pytest.mark.slow
@settings(FUZZ, max_examples=600)
@given(extension=st.sampled_from(IMAGE_EXTENSIONS), which=st.integers(0, 3), edits=BYTE_EDITS)
def test_image_mutated_bytes(worker, extension, which, edits):
    seeds = valid_images()[extension]
    name = f"x{extension}"
    data = apply_byte_edits(seeds[which % len(seeds)], edits)
    check(worker, "image", image_files(name, data), IMAGE_TARGET.format(name))


@pytest.mark.slow
@settings(FUZZ, max_examples=600)
@given(which=st.integers(0, 3), edits=PNG_CHUNK_EDITS)
@example(which=0, edits=[("ihdr", 28, 28, 8, 3, 0, 0), ("insert", 1, b"tRNS", b"\x00")])  # palette, no PLTE
@example(which=0, edits=[("insert", 2, b"iCCP", b"")])  # an empty iCCP chunk after the image data
@example(which=0, edits=[("insert", 1, b"eXIf", b"MM\x00*")])  # EXIF cut after its 4-byte TIFF header
def test_png_mutated_chunks(worker, which, edits):
    seeds = valid_images()[".png"]
    data = apply_png_edits(seeds[which % len(seeds)], edits)
    check(worker, "image", image_files("x.png", data), IMAGE_TARGET.format("x.png"))


@pytest.mark.slow
@settings(FUZZ, max_examples=200)
@given(
    which=st.integers(0, 2),
    height=SIDE.map(lambda v: v % 65536),
    width=SIDE.map(lambda v: v % 65536),
    components=st.none() | st.integers(0, 255),
    edits=st.none() | BYTE_EDITS,
)
def test_jpeg_mutated_frame_header(worker, which, height, width, components, edits):
    seeds = valid_images()[".jpg"]
    data = jpeg_with_size(seeds[which], height, width, components)
    data = apply_byte_edits(data, edits) if edits else data
    check(worker, "image", image_files("x.jpg", data), IMAGE_TARGET.format("x.jpg"))


ORIENTATIONS = st.one_of(
    st.integers(0, 9),
    st.sampled_from(INTERESTING_INTS).filter(lambda v: 0 <= v < 2**32),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=5),
    st.binary(max_size=5),
    st.tuples(st.integers(0, 9), st.integers(0, 9)),
)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Metadata Warning:UserWarning")  # PIL writing a TIFF orientation of 2 values
@settings(FUZZ, max_examples=120)
@given(image_format=st.sampled_from(["PNG", "JPEG", "WEBP", "TIFF"]), orientation=ORIENTATIONS)
@example(image_format="PNG", orientation=(6, 6))
@example(image_format="JPEG", orientation="6")
def test_exif_orientation_values(worker, image_format, orientation):
    """The EXIF orientation a phone writes is a number 1-8; a file may hold any type and count there."""
    try:
        exif = _exif(orientation)
    except (TypeError, ValueError, struct.error, OverflowError):
        reject()
    extension = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "TIFF": ".tif"}[image_format]
    data = encode_image(_shape(1, 0), image_format, exif=exif)
    name = f"x{extension}"
    check(worker, "image", image_files(name, data), IMAGE_TARGET.format(name))


# --- IDX ------------------------------------------------------------------------------------------


@pytest.mark.slow
@settings(FUZZ, max_examples=300)
@given(
    which=st.sampled_from(["images", "labels"]),
    gz=st.booleans(),
    signed=st.booleans(),
    data=st.binary(max_size=600),
)
@example(which="images", gz=False, signed=False, data=idx_bytes((2**31 - 1, 2, 2), b""))  # 16 GiB declared, raw
@example(which="images", gz=False, signed=False, data=idx_bytes((8191, 1024, 1024), b""))  # just under the cap
def test_idx_random_bytes(worker, which, gz, signed, data):
    images = idx_bytes(*valid_idx()["images"])
    labels = idx_bytes(*valid_idx()["labels"])
    body = (b"\x00\x00\x08" + bytes([3 if which == "images" else 1]) if signed else b"") + data
    files = idx_folder(body if which == "images" else images, body if which == "labels" else labels, gz)
    check(worker, "dataset", files, "idx")


@pytest.mark.slow
@settings(FUZZ, max_examples=150)
@given(data=st.binary(max_size=64))
@example(data=b"")
@example(data=b"\x00\x00\x00\x00\x00\x00\x06")  # a deflate block of the reserved type
def test_idx_gzip_random_stream(worker, data):
    """Gzip-level garbage (and the bomb): the .gz file itself is the drawn bytes."""
    files = idx_folder(b"", idx_bytes(*valid_idx()["labels"]), gz=True)
    files["idx/train-images-idx3-ubyte.gz"] = b"\x1f\x8b\x08\x00" + data
    check(worker, "dataset", files, "idx")


@pytest.mark.slow
@settings(FUZZ, max_examples=600)
@given(
    which=st.sampled_from(["images", "labels"]),
    gz=st.booleans(),
    one_file=st.booleans(),
    magic=st.none() | st.binary(min_size=3, max_size=3),
    dims=st.none()
    | st.lists(st.sampled_from(INTERESTING_INTS).map(lambda v: v % 2**32) | st.integers(0, 2**32 - 1), max_size=6),
    payload_edits=st.none() | BYTE_EDITS,
    file_edits=st.none() | BYTE_EDITS,
)
def test_idx_mutated(worker, which, gz, one_file, magic, dims, payload_edits, file_edits):
    """Header dimensions replaced with drawn 32-bit numbers, magic bytes, payload and (gzip) file edits."""
    shape, payload = valid_idx()[which]
    if payload_edits:
        payload = apply_byte_edits(payload, payload_edits)
    body = idx_bytes(tuple(dims) if dims is not None else shape, payload, magic or b"\x00\x00\x08")
    pair = {"images": idx_bytes(*valid_idx()["images"]), "labels": idx_bytes(*valid_idx()["labels"])}
    pair[which] = body
    files = idx_folder(pair["images"], pair["labels"], gz)
    if file_edits:
        name = f"idx/train-{which}-idx{3 if which == 'images' else 1}-ubyte{'.gz' if gz else ''}"
        files[name] = apply_byte_edits(files[name], file_edits)
    target = f"idx/train-images-idx3-ubyte{'.gz' if gz else ''}" if one_file else "idx"
    check(worker, "dataset", files, target)


# --- npz ------------------------------------------------------------------------------------------


@pytest.mark.slow
@settings(FUZZ, max_examples=200)
@given(signed=st.booleans(), data=st.binary(max_size=600))
def test_npz_random_bytes(worker, signed, data):
    body = (b"PK\x03\x04" if signed else b"") + data
    check(worker, "dataset", {"d.npz": body}, "d.npz")


@pytest.mark.slow
@settings(FUZZ, max_examples=400)
@given(compressed=st.booleans(), edits=BYTE_EDITS)
@example(compressed=True, edits=[("xor", 28, 1)])  # the first member's extra-field length: deflate misread
def test_npz_mutated_bytes(worker, compressed, edits):
    """Zip-level edits: local headers, the central directory, compression methods, the .npy headers."""
    data = apply_byte_edits(npz_bytes(valid_npz_arrays(), compressed), edits)
    check(worker, "dataset", {"d.npz": data}, "d.npz")


@pytest.mark.slow
@settings(FUZZ, max_examples=500)
@given(
    compressed=st.booleans(),
    drop=st.lists(st.sampled_from(["images", "labels", "class_names", "test_images", "test_labels"]), max_size=2),
    replaced=st.dictionaries(
        st.sampled_from(["images", "labels", "class_names", "test_images", "test_labels", "other"]),
        NPZ_ARRAYS | LABELS,
        max_size=2,
    ),
)
@example(
    compressed=False, drop=["class_names", "test_images", "test_labels"], replaced={"labels": np.array([0, 10**9])}
)
@example(compressed=False, drop=[], replaced={"labels": np.array([0, 1, 2, 0], "m8[D]")})  # numpy: an integer
def test_npz_drawn_arrays(worker, compressed, drop, replaced):
    """Arrays replaced with drawn dtypes and shapes (and dropped): what a numpy.savez of anything holds."""
    arrays = {k: v for k, v in valid_npz_arrays().items() if k not in drop}
    arrays.update(replaced)
    labels = replaced.get("labels")
    if labels is not None and labels.ndim == 1 and len(labels) and "images" in arrays and "images" not in replaced:
        arrays["images"] = np.zeros((len(labels), 8, 8), np.uint8)  # as many images: reach the label checks
    check(worker, "dataset", {"d.npz": npz_bytes(arrays, compressed)}, "d.npz")


@pytest.mark.slow
@settings(FUZZ, max_examples=400)
@given(
    key=st.sampled_from(["images", "labels", "class_names"]),
    header=NPY_HEADERS,
    payload=st.binary(max_size=64),
    version=st.sampled_from([b"\x01\x00", b"\x02\x00", b"\x03\x00", b"\x09\x00"]),
    method=st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA]),
)
@example(  # the labels of 10^9 classes without class_names
    key="labels",
    header="{'descr': '<i8', 'fortran_order': False, 'shape': (4,), }",
    payload=np.array([0, 1, 2, 10**9], "<i8").tobytes(),
    version=b"\x01\x00",
    method=zipfile.ZIP_STORED,
)
@example(  # 20 GB declared by a 300-byte member
    key="images",
    header="{'descr': '|u1', 'fortran_order': False, 'shape': (2, 100000, 100000), }",
    payload=b"",
    version=b"\x01\x00",
    method=zipfile.ZIP_DEFLATED,
)
@example(  # negative dimensions whose product wraps around to 2^62 in int64
    key="labels",
    header="{'descr': '|u1', 'fortran_order': False, 'shape': (3, -4611686018427387904), }",
    payload=b"",
    version=b"\x01\x00",
    method=zipfile.ZIP_STORED,
)
@example(
    key="labels",
    header=f"{{'descr': '|u1', 'fortran_order': False, 'shape': (-1, {2**70}), }}",
    payload=b"",
    version=b"\x01\x00",
    method=zipfile.ZIP_STORED,
)
def test_npz_drawn_npy_headers(worker, key, header, payload, version, method):
    """A member's .npy header as text: drawn dtypes, orders and shapes (negative, huge), beside valid members."""
    arrays = {k: v for k, v in valid_npz_arrays().items() if k not in ("test_images", "test_labels")}
    if key != "class_names":
        arrays.pop("class_names")
    members = {}
    for name, array in arrays.items():
        buffer = io.BytesIO()
        np.save(buffer, array)
        members[f"{name}.npy"] = buffer.getvalue()
    members[f"{key}.npy"] = npy_member(header, payload, version)
    check(worker, "dataset", {"d.npz": zip_of(members, method)}, "d.npz")


# --- pipelines ------------------------------------------------------------------------------------


@pytest.mark.slow
@settings(FUZZ, max_examples=300)
@given(suffix=st.sampled_from([".yaml", ".json", ".yml"]), data=st.binary(max_size=400))
@example(suffix=".yaml", data=billion_laughs())
@example(suffix=".json", data=b"[" * 100_000)
@example(suffix=".json", data=b'{"transform": ' + b"1" * 5000 + b"}")
@example(suffix=".yaml", data=b"transform: " + b"1" * 5000)
def test_pipeline_random_bytes(worker, suffix, data):
    check(worker, "pipeline", {f"p{suffix}": data}, f"p{suffix}")


@pytest.mark.slow
@settings(FUZZ, max_examples=300)
@given(preset=st.sampled_from(["light", "medium", "heavy"]), as_json=st.booleans(), edits=BYTE_EDITS)
def test_pipeline_mutated_text(worker, preset, as_json, edits):
    document = valid_pipelines()[preset]
    text = dump_json(document) if as_json else dump_yaml(document)
    suffix = ".json" if as_json else ".yaml"
    check(worker, "pipeline", {f"p{suffix}": apply_byte_edits(text, edits)}, f"p{suffix}")


@pytest.mark.slow
@settings(FUZZ, max_examples=500)
@given(preset=st.sampled_from(["light", "medium", "heavy"]), edits=json_edits(JSON_VALUES))
def test_pipeline_mutated_values_json(worker, preset, edits):
    """Transform arguments, names and nesting replaced by drawn JSON, written as A.save's JSON."""
    document = apply_json_edits(valid_pipelines()[preset], edits)
    check(worker, "pipeline", {"p.json": dump_json(document)}, "p.json")


@pytest.mark.slow
@settings(FUZZ, max_examples=400)
@given(
    preset=st.sampled_from(["light", "medium", "heavy"]),
    edits=json_edits(YAML_VALUES, KEYS | st.integers() | st.none() | st.booleans()),
)
@example(preset="light", edits=[("add", 1, 1, 2)])  # a key that is not a string beside the transform's own
@example(preset="light", edits=[("add", 1, "p", datetime.date(2020, 1, 1))])
def test_pipeline_mutated_values_yaml(worker, preset, edits):
    """The same as YAML, which also holds dates, bytes, sets and keys that are not strings."""
    document = apply_json_edits(valid_pipelines()[preset], edits)
    check(worker, "pipeline", {"p.yaml": dump_yaml(document)}, "p.yaml")


# --- run folders: config.json and the safetensors header --------------------------------------------


@pytest.mark.slow
@settings(FUZZ, max_examples=200)
@given(kind=st.sampled_from(["dcgan", "vae", "classifier"]), data=st.binary(max_size=300))
@example(kind="dcgan", data=b"[" * 100_000)
@example(kind="dcgan", data=b'{"format_version": ' + b"1" * 5000 + b"}")
def test_run_config_random_bytes(worker, kind, data):
    files = {**valid_runs()[kind], "run/config.json": data}
    check(worker, RUN_READERS[kind], files, "run")


@pytest.mark.slow
@settings(FUZZ, max_examples=300)
@given(kind=st.sampled_from(["dcgan", "vae", "classifier"]), edits=BYTE_EDITS)
def test_run_config_mutated_text(worker, kind, edits):
    files = dict(valid_runs()[kind])
    files["run/config.json"] = apply_byte_edits(files["run/config.json"], edits)
    check(worker, RUN_READERS[kind], files, "run")


MODEL_ARGS = st.dictionaries(
    st.sampled_from(["width", "latent_dim", "num_classes", "image_size", "channels", "in_channels"]),
    st.sampled_from(INTERESTING_INTS) | SCALARS,
    max_size=2,
)


@pytest.mark.slow
@settings(FUZZ, max_examples=700)
@given(kind=st.sampled_from(["dcgan", "vae", "classifier"]), edits=json_edits(JSON_VALUES), model_args=MODEL_ARGS)
@example(kind="dcgan", edits=[], model_args={"width": 200_000})
@example(kind="dcgan", edits=[], model_args={"num_classes": 10**9})
@example(kind="dcgan", edits=[], model_args={"width": 4096, "latent_dim": 4096})  # both at their cap
@example(kind="vae", edits=[], model_args={"image_size": 10**6})
@example(kind="classifier", edits=[], model_args={"num_classes": 10**9})
@example(kind="classifier", edits=[], model_args={"image_size": 10**5})
@example(kind="dcgan", edits=[("add", 0, "kind", ["dcgan"])], model_args={})
@example(kind="dcgan", edits=[], model_args={"in_channels": 1})  # a classifier's argument in a DCGAN's config
@example(kind="vae", edits=[], model_args={"latent_dim": None})
@example(kind="dcgan", edits=[], model_args={"channels": -1})
@example(kind="dcgan", edits=[], model_args={"channels": 10**9})
@example(kind="classifier", edits=[("remove", "arch")], model_args={})
@example(kind="classifier", edits=[("remove", "model_args", "num_classes")], model_args={})
@example(kind="classifier", edits=[("remove", "normalisation")], model_args={})
@example(kind="classifier", edits=[("add", 0, "normalisation", None)], model_args={})
@example(kind="classifier", edits=[("add", 0, "normalisation", {"mean": "x", "std": [0.25]})], model_args={})
def test_run_config_mutated_values(worker, kind, edits, model_args):
    """config.json values replaced by drawn JSON (and model_args set to drawn numbers): what a run folder
    from someone else may hold."""
    files = dict(valid_runs()[kind])
    config = json.loads(files["run/config.json"])
    config["model_args"].update(model_args)
    files["run/config.json"] = dump_json(apply_json_edits(config, edits))
    check(worker, RUN_READERS[kind], files, "run")


@pytest.mark.slow
@settings(FUZZ, max_examples=300)
@given(kind=st.sampled_from(["dcgan", "classifier"]), data=st.binary(max_size=300), length=st.none() | SIDE)
def test_safetensors_random_bytes(worker, kind, data, length):
    files = dict(valid_runs()[kind])
    prefix = b"" if length is None else length.to_bytes(8, "little")
    files["run/model.safetensors"] = prefix + data
    check(worker, RUN_READERS[kind], files, "run")


@pytest.mark.slow
@settings(FUZZ, max_examples=700)
@given(
    kind=st.sampled_from(["dcgan", "vae", "classifier"]),
    edits=json_edits(HEADER_VALUES),
    length=st.none() | st.integers(-64, 64) | st.sampled_from([2**32, 2**63, 2**64 - 1, 100 << 20]),
    pad=st.sampled_from([b"", b" ", b"\x00", b"x"]),
)
def test_safetensors_header_mutated(worker, kind, edits, length, pad):
    """The header (8 bytes little-endian length + JSON): tensors' dtypes, shapes, offsets and metadata
    replaced by drawn values, and the length prefix off by a little or a lot."""
    files = dict(valid_runs()[kind])
    header, body = split_safetensors(files["run/model.safetensors"])
    text = dump_json(apply_json_edits(header, edits)) + pad
    declared = len(text) if length is None else (len(text) + length if -64 <= length <= 64 else length)
    files["run/model.safetensors"] = (declared % 2**64).to_bytes(8, "little") + text + body
    check(worker, RUN_READERS[kind], files, "run")


@pytest.mark.slow
@settings(FUZZ, max_examples=300)
@given(kind=st.sampled_from(["dcgan", "classifier"]), edits=BYTE_EDITS)
def test_safetensors_mutated_bytes(worker, kind, edits):
    """Byte edits of the whole file, positions biased to the header (the first 256 bytes)."""
    files = dict(valid_runs()[kind])
    files["run/model.safetensors"] = apply_byte_edits(files["run/model.safetensors"], edits)
    check(worker, RUN_READERS[kind], files, "run")


# --- manifests --------------------------------------------------------------------------------------


@pytest.mark.slow
@settings(FUZZ, max_examples=300)
@given(edits=json_edits(JSON_VALUES), text_edits=st.none() | BYTE_EDITS)
@example(edits=[("replace", 0, [])], text_edits=[("insert", 0, b"[" * 2000)])
@example(edits=[("replace", 0, [])], text_edits=[("insert", 0, b"1" * 5000)])
def test_manifest_mutated(worker, edits, text_edits):
    """An ImageFolder's manifest.jsonl (the provenance an augmentor output keeps) edited value by value."""
    files, records = valid_manifest_folder()
    text = manifest_text(apply_json_edits(records, edits))
    if text_edits:
        text = apply_byte_edits(text, text_edits)
    check(worker, "dataset", {**files, "out/manifest.jsonl": text}, "out")


# --- bombs ----------------------------------------------------------------------------------------


def _bombs() -> dict[str, tuple[str, Any, str]]:
    """name → (reader, a function making the files, target): small files that declare a lot."""
    labels = idx_bytes((4,), bytes([0, 1, 2, 0]))

    def config_with(kind: str, **model_args: Any) -> dict[str, bytes]:
        files = dict(valid_runs()[kind])
        config = json.loads(files["run/config.json"])
        config["model_args"].update(model_args)
        files["run/config.json"] = json.dumps(config).encode()
        return files

    return {
        "idx gzip 2 GiB from 1 MB": (
            "dataset",
            lambda: {
                "idx/train-images-idx3-ubyte.gz": gzip_bomb_idx(),
                "idx/train-labels-idx1-ubyte.gz": gzip.compress(labels),
            },
            "idx",
        ),
        "idx raw 8 GiB declared in 16 bytes": (
            "dataset",
            lambda: idx_folder(idx_bytes((8191, 1024, 1024), b""), labels, gz=False),
            "idx",
        ),
        "yaml billion laughs": ("pipeline", lambda: {"p.yaml": billion_laughs()}, "p.yaml"),
        "yaml 100000 nested flow sequences": ("pipeline", lambda: {"p.yaml": b"[" * 100_000}, "p.yaml"),
        "npz label 10^9 without class_names": (
            "dataset",
            lambda: {"d.npz": npz_bytes({"images": np.zeros((2, 8, 8), np.uint8), "labels": np.array([0, 10**9])})},
            "d.npz",
        ),
        "run config width 200000": ("generator", lambda: config_with("dcgan", width=200_000), "run"),
        "run config num_classes 10^9": ("generator", lambda: config_with("dcgan", num_classes=10**9), "run"),
        "run config width and latent_dim 4096": (
            "generator",
            lambda: config_with("dcgan", width=4096, latent_dim=4096),
            "run",
        ),
        "png 100000×100000": ("image", lambda: image_files("x.png", bomb_png(100_000, 100_000)), "data/shape/x.png"),
    }


@pytest.mark.slow
@pytest.mark.parametrize("name", list(_bombs()))
def test_bombs_are_refused_quickly(worker, name):
    reader, make, target = _bombs()[name]
    result = check(worker, reader, make(), target)
    assert result.outcome.startswith("usererror: "), f"{name}: accepted ({result.outcome})"
    assert result.seconds < BOMB_SECONDS, f"{name}: refused only after {result.seconds:.1f} s"


@pytest.mark.slow
def test_the_worker_runs_under_its_caps(worker):
    """The cap holds: 3 GiB asked of the worker fails there with MemoryError, not on the machine; 1 GiB fits."""
    assert worker.cap - worker.baseline == 2 << 30
    refused = worker.call("allocate", {"n": str(3 << 30).encode()}, "n")
    assert refused.outcome.startswith("other: MemoryError"), refused
    assert worker.call("allocate", {"n": str(1 << 30).encode()}, "n").outcome == "ok"
