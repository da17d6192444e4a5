"""Bad input is refused with exit code 2, a one-line ``error:`` naming what, and no output written.

Every test runs the real CLI on real files made in ``tmp_path``. The slow test at the end kills an
export with SIGKILL midway and checks that ``--out`` never holds a partial result.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import REPO, CliResult, files_under, make_shapes_folder, run_cli, write_png

GOOD_PER_CLASS = 4
GOOD_IMAGES = 3 * GOOD_PER_CLASS  # make_shapes_folder draws three classes
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# --- helpers -----------------------------------------------------------------------------------


def good_folder(tmp_path: Path, name: str = "data", **kwargs) -> Path:
    """A small valid ImageFolder (3 classes × 4 grey 28×28 PNGs) to put one bad thing into."""
    return make_shapes_folder(tmp_path / name, per_class=GOOD_PER_CLASS, **kwargs)


def staging_folders(out: Path) -> list[Path]:
    """Hidden ``.{out.name}.partial-*`` staging folders beside ``out``."""
    if not out.parent.is_dir():
        return []
    return [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.partial-")]


def assert_refused(result: CliResult, *mentions: str, out: Path | None = None) -> None:
    """Exit 2, nothing on stdout, one ``error:`` line (then only indented detail lines) naming
    every string in ``mentions``; and when ``out`` is given, no output folder and no staging left."""
    context = f"exit={result.exit_code}\nstdout={result.stdout!r}\nstderr={result.stderr!r}"
    assert result.exit_code == 2, context
    assert result.stdout == "", context
    lines = result.stderr.splitlines()
    assert lines, context
    assert lines[0].startswith("error: "), context
    assert all(line.startswith("  ") for line in lines[1:]), context
    for text in mentions:
        assert text in result.stderr, f"{text!r} not named in the error\n{context}"
    if out is not None:
        assert not out.exists(), f"{out} was created by a refused command"
        assert staging_folders(out) == [], "a refused command left a staging folder"


def tree_snapshot(root: Path) -> dict[str, bytes | None]:
    """Every file (with its bytes) and every folder (None) below ``root``, hidden ones included."""
    return {p.relative_to(root).as_posix(): p.read_bytes() if p.is_file() else None for p in root.rglob("*")}


def read_manifest(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines() if line]


def png_files(out: Path) -> set[str]:
    return {rel for rel in files_under(out) if rel.endswith(".png") and rel != "preview.png"}


def noise_png_bytes(size: int = 28, seed: int = 0) -> bytes:
    """A real PNG of random grey pixels (incompressible, so its IDAT fills most of the file)."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png_bytes(width: int, height: int, bit_depth: int, colour_type: int, full: bool = False) -> bytes:
    """A small PNG whose IHDR claims ``width``×``height`` pixels: signature, IHDR, one IDAT, IEND.

    The IDAT holds a few zero scanlines, or with ``full`` every scanline (zeros compress ~1000:1),
    so that a reader without a guard really would decode the whole image.
    """
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    if full:
        channels = {0: 1, 2: 3}[colour_type]
        row = b"\x00" * (1 + (width * channels * bit_depth + 7) // 8)
        packer = zlib.compressobj(9)
        step = 100
        idat = b"".join(packer.compress(row * min(step, height - y)) for y in range(0, height, step))
        idat += packer.flush()
    else:
        idat = zlib.compress(b"\x00" * 1024)
    return PNG_SIGNATURE + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def write_bad_file(folder: Path, kind: str, index: int = 0) -> Path:
    """Write one unusable file of ``kind`` into ``folder`` and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    if kind == "non-image":
        path = folder / f"notes{index:02d}.txt"
        path.write_text("these are my notes, not an image\n")
    elif kind == "empty":
        path = folder / f"empty{index:02d}.png"
        path.write_bytes(b"")
    elif kind == "truncated":
        path = folder / f"truncated{index:02d}.png"
        data = noise_png_bytes(seed=index)
        path.write_bytes(data[: len(data) // 2])
    elif kind == "corrupt":
        path = folder / f"corrupt{index:02d}.png"
        garbage = np.random.default_rng(index).integers(0, 256, 300, dtype=np.uint8).tobytes()
        path.write_bytes(PNG_SIGNATURE + garbage)
    else:
        raise AssertionError(kind)
    return path


def augmentor_subprocess_env() -> dict[str, str]:
    """Environment for ``python -m augmentor`` run from any folder."""
    pythonpath = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": pythonpath, "NO_ALBUMENTATIONS_UPDATE": "1"}


def augmentor_command(*args: object) -> list[str]:
    return [sys.executable, "-m", "augmentor", *(str(a) for a in args)]


BAD_KINDS = ["non-image", "empty", "truncated", "corrupt"]


# --- 1-3: missing, empty, class without images -----------------------------------------------------


def test_missing_path_info(tmp_path):
    missing = tmp_path / "no-such-dataset"
    assert_refused(run_cli("data", "info", missing), str(missing))


def test_missing_path_export(tmp_path):
    missing = tmp_path / "no-such-dataset"
    out = tmp_path / "out"
    assert_refused(run_cli("data", "export", missing, "--out", out), str(missing), out=out)


def test_empty_folder(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "out"
    assert_refused(run_cli("data", "export", empty, "--out", out), str(empty), out=out)


def test_class_folder_without_images(tmp_path):
    root = good_folder(tmp_path)
    hollow = root / "hexagon"
    hollow.mkdir()
    out = tmp_path / "out"
    assert_refused(run_cli("data", "export", root, "--out", out), str(hollow), out=out)


# --- 4: unreadable files -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_bad_file_is_refused_and_listed(tmp_path, kind):
    root = good_folder(tmp_path)
    bad = write_bad_file(root / "square", kind)
    out = tmp_path / "out"
    result = run_cli("data", "export", root, "--out", out)
    assert_refused(result, str(bad), "--skip-corrupt", out=out)
    assert any(line.startswith("  ") and str(bad) in line for line in result.stderr.splitlines())


def test_bad_file_listing_is_capped_at_ten(tmp_path):
    root = good_folder(tmp_path)
    bad = [write_bad_file(root / "disk", BAD_KINDS[i % 4], index=i) for i in range(12)]
    out = tmp_path / "out"
    result = run_cli("data", "export", root, "--out", out)
    assert_refused(result, "12", "… and 2 more", out=out)
    listed = [line for line in result.stderr.splitlines()[1:] if any(str(p) in line for p in bad)]
    assert len(listed) == 10, result.stderr
    assert result.stderr.splitlines()[-1].strip() == "… and 2 more"


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_skip_corrupt_export_writes_only_good_images(tmp_path, kind):
    root = good_folder(tmp_path)
    bad = write_bad_file(root / "square", kind)
    out = tmp_path / "out"
    result = run_cli("data", "export", root, "--out", out, "--skip-corrupt")
    assert result.exit_code == 0, result.stderr
    records = read_manifest(out)
    assert len(records) == GOOD_IMAGES
    assert png_files(out) == {r["path"] for r in records}
    assert json.loads((out / "dataset.json").read_text())["skipped"] == 1
    assert bad.name in result.stderr, f"the skipped file is not reported on stderr: {result.stderr!r}"


def test_skip_corrupt_info_reports_skipped(tmp_path):
    root = good_folder(tmp_path)
    bad = [write_bad_file(root / "triangle", kind, index=i) for i, kind in enumerate(BAD_KINDS)]
    result = run_cli("data", "info", root, "--skip-corrupt")
    assert result.exit_code == 0, result.stderr
    for path in bad:
        assert str(path) in result.stderr
    as_json = run_cli("data", "info", root, "--skip-corrupt", "--json")
    assert as_json.exit_code == 0, as_json.stderr
    info = json.loads(as_json.stdout)
    assert sum(info["splits"]["train"]["per_class"].values()) == GOOD_IMAGES
    assert sorted(item["file"] for item in info["skipped"]) == sorted(str(p) for p in bad)


# --- 5: another format under a .png name ---------------------------------------------------------


def test_jpeg_renamed_png_is_refused(tmp_path):
    root = good_folder(tmp_path)
    disguised = root / "disk" / "x.png"
    Image.fromarray(np.full((28, 28), 128, dtype=np.uint8)).save(disguised, format="JPEG")
    out = tmp_path / "out"
    assert_refused(run_cli("data", "export", root, "--out", out), str(disguised), "JPEG", out=out)


# --- 6: decompression bomb -----------------------------------------------------------------------


# A small Python that caps the address space at 2 GiB (so a missing guard fails instead of swapping),
# spawns the command and writes the command's own peak memory to a file. The command's ru_maxrss would
# otherwise include the fork of this test process (torch and all, once another test imported it).
_MEASURED = """
import os, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
pid = os.posix_spawn(sys.argv[2], sys.argv[2:], os.environ)
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as peak:
    peak.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


@pytest.mark.parametrize(
    ("width", "height", "bit_depth", "colour_type", "full"),
    [
        # 10 G pixels of 1-bit grey in a file of under 100 bytes: PIL's own bomb error at open
        (100_000, 100_000, 1, 0, False),
        # 80 M RGB pixels whose every scanline is there (~230 KB): under PIL's limits, over 2**26
        (20_000, 4_000, 8, 2, True),
    ],
    ids=["100000x100000-grey1", "20000x4000-rgb8"],
)
def test_decompression_bomb_is_refused_cheaply(tmp_path, width, height, bit_depth, colour_type, full):
    root = good_folder(tmp_path)
    bomb = root / "disk" / "bomb.png"
    bomb.write_bytes(bomb_png_bytes(width, height, bit_depth, colour_type, full))
    assert bomb.stat().st_size < 300_000
    out = tmp_path / "out"
    # In a grandchild process, so its own peak memory can be read (ru_maxrss from wait4).
    peak = tmp_path / "peak-kib"
    command = [sys.executable, "-c", _MEASURED, peak, *augmentor_command("data", "export", root, "--out", out)]
    with open(tmp_path / "stdout", "wb") as stdout, open(tmp_path / "stderr", "wb") as stderr:
        returncode = subprocess.run(
            [str(word) for word in command],
            cwd=tmp_path,
            env={**augmentor_subprocess_env(), "OPENBLAS_NUM_THREADS": "1"},
            stdout=stdout,
            stderr=stderr,
        ).returncode
    result = CliResult(returncode, (tmp_path / "stdout").read_text(), (tmp_path / "stderr").read_text())
    assert_refused(result, str(bomb), "decompression-bomb guard", "pixel", out=out)
    peak_mib = int(peak.read_text()) / 1024  # kilobytes on Linux
    assert peak_mib < 400, f"refusing a bomb peaked at {peak_mib:.0f} MiB"


# --- 7-8: mixed sizes, mixed channels ------------------------------------------------------------


def test_mixed_sizes_are_refused_then_resized_explicitly(tmp_path):
    root = good_folder(tmp_path, size=28)
    first = root / "disk" / "disk000.png"
    odd = root / "triangle" / "big.png"
    write_png(odd, np.zeros((32, 32, 1), dtype=np.uint8))
    out = tmp_path / "out"
    result = run_cli("data", "export", root, "--out", out)
    assert_refused(result, str(first), str(odd), "--image-size", out=out)
    fixed = run_cli("data", "info", root, "--image-size", "28", "--json")
    assert fixed.exit_code == 0, fixed.stderr
    assert json.loads(fixed.stdout)["image_size"] == [28, 28]


def test_mixed_grey_and_colour_are_refused_then_converted_explicitly(tmp_path):
    root = good_folder(tmp_path, channels=1)
    first = root / "disk" / "disk000.png"
    colour = root / "square" / "colour.png"
    write_png(colour, np.full((28, 28, 3), (200, 30, 30), dtype=np.uint8))
    out = tmp_path / "out"
    result = run_cli("data", "export", root, "--out", out)
    assert_refused(result, str(first), str(colour), "--channels", out=out)
    fixed = run_cli("data", "info", root, "--channels", "3", "--json")
    assert fixed.exit_code == 0, fixed.stderr
    assert json.loads(fixed.stdout)["channels"] == 3


# --- 9: hostile and misspelt pipeline files ------------------------------------------------------

EVIL_PIPELINES = {
    "apply": '__version__: 2.0.8\ntransform: !!python/object/apply:os.system ["touch PWNED"]\n',
    "new": (
        "__version__: 2.0.8\n"
        "transform: !!python/object/new:tuple [!!python/object/new:map "
        "[!!python/name:eval , [\"__import__('os').system('touch PWNED')\"]]]\n"
    ),
}


@pytest.mark.parametrize("variant", sorted(EVIL_PIPELINES))
def test_pipeline_with_python_tags_runs_nothing(tmp_path, monkeypatch, shapes_folder, variant):
    monkeypatch.chdir(tmp_path)
    Path("evil.yaml").write_text(EVIL_PIPELINES[variant])
    out = tmp_path / "out"
    result = run_cli("classic", shapes_folder, "--pipeline", "evil.yaml", "--per-image", "1", "--out", out)
    assert_refused(result, "evil.yaml", "refused", out=out)
    assert not (tmp_path / "PWNED").exists()
    checked = run_cli("pipeline", "check", "evil.yaml")
    assert_refused(checked, "evil.yaml", "refused")
    assert not (tmp_path / "PWNED").exists()


def test_unknown_transform_name_is_refused_with_suggestion(tmp_path, monkeypatch, shapes_folder):
    monkeypatch.chdir(tmp_path)
    shown = run_cli("pipeline", "show", "light")
    assert shown.exit_code == 0, shown.stderr
    assert "__class_fullname__: HorizontalFlip\n" in shown.stdout
    Path("typo.yaml").write_text(shown.stdout.replace("HorizontalFlip\n", "HorizontalFlipp\n"))
    out = tmp_path / "out"
    result = run_cli("classic", shapes_folder, "--pipeline", "typo.yaml", "--per-image", "1", "--out", out)
    assert_refused(result, "typo.yaml", "HorizontalFlipp", out=out)
    assert re.search(r"did you mean [^\n]*\bHorizontalFlip\b", result.stderr), result.stderr
    assert_refused(run_cli("pipeline", "check", "typo.yaml"), "typo.yaml", "HorizontalFlipp")


# --- 10: class names that would leave the output folder ------------------------------------------


@pytest.mark.parametrize("bad_name", ["../evil", "/abs", "a/b", "x\x00y"], ids=["dotdot", "abs", "slash", "nul"])
def test_npz_class_name_escaping_out_is_refused(tmp_path, bad_name):
    npz = tmp_path / "named.npz"
    images = np.random.default_rng(0).integers(0, 256, (4, 8, 8), dtype=np.uint8)
    np.savez(npz, images=images, labels=np.array([0, 1, 0, 1]), class_names=np.array(["fine", bad_name]))
    out = tmp_path / "work" / "out"
    out.parent.mkdir()
    outside_before = sorted(p.name for p in tmp_path.parent.iterdir())
    inside_before = tree_snapshot(tmp_path)
    existed_abs = Path("/abs").exists()
    assert_refused(run_cli("data", "export", npz, "--out", out), str(npz), out=out)
    assert tree_snapshot(tmp_path) == inside_before
    assert sorted(p.name for p in tmp_path.parent.iterdir()) == outside_before
    assert Path("/abs").exists() == existed_abs


def test_imagefolder_class_with_backslash_is_refused(tmp_path):
    root = good_folder(tmp_path)
    write_png(root / "a\\b" / "img.png", np.zeros((28, 28, 1), dtype=np.uint8))
    out = tmp_path / "out"
    before = tree_snapshot(tmp_path)
    assert_refused(run_cli("data", "export", root, "--out", out), "a\\b", out=out)
    assert tree_snapshot(tmp_path) == before


# --- 11: non-empty --out -------------------------------------------------------------------------


def test_non_empty_out_needs_overwrite(tmp_path, shapes_folder):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("precious\n")
    result = run_cli("data", "export", shapes_folder, "--out", out)
    assert_refused(result, str(out), "--overwrite")
    assert files_under(out) == {"keep.txt"}
    assert (out / "keep.txt").read_text() == "precious\n"
    assert staging_folders(out) == []

    replaced = run_cli("data", "export", shapes_folder, "--out", out, "--overwrite")
    assert replaced.exit_code == 0, replaced.stderr
    assert not (out / "keep.txt").exists()
    assert len(read_manifest(out)) == 18
    assert staging_folders(out) == []


def test_out_that_is_a_file_is_refused(tmp_path, shapes_folder):
    out = tmp_path / "out"
    out.write_text("not a folder\n")
    assert_refused(run_cli("data", "export", shapes_folder, "--out", out), str(out))
    assert out.read_text() == "not a folder\n"


# --- 12-13: usage errors -------------------------------------------------------------------------


@pytest.mark.parametrize("quota", [["--per-image", "1", "--per-class", "10"], []], ids=["both", "neither"])
def test_classic_needs_exactly_one_quota(tmp_path, shapes_folder, quota):
    out = tmp_path / "out"
    result = run_cli("classic", shapes_folder, *quota, "--out", out)
    assert_refused(result, "--per-image", "--per-class", out=out)


def test_unknown_builtin_like_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    result = run_cli("data", "export", "fashion-mnistt", "--out", out)
    assert_refused(result, "fashion-mnistt", "fashion-mnist", out=out)


def test_channels_two_is_refused(tmp_path, shapes_folder):
    out = tmp_path / "out"
    result = run_cli("data", "export", shapes_folder, "--channels", "2", "--out", out)
    assert_refused(result, "--channels 2", out=out)


def test_channels_are_checked_by_the_library_and_classify_archs(tmp_path):
    from augmentor.core.errors import UserError
    from augmentor.data.options import ReadOptions

    for channels in (0, 2, 4):
        with pytest.raises(UserError, match=rf"--channels {channels} is not supported; use 1 \(grey\) or 3 \(colour\)"):
            ReadOptions(channels=channels)
    assert ReadOptions(channels=3).channels == 3
    assert_refused(run_cli("classify", "archs", "--channels", "2"), "--channels 2")


def test_channels_out_of_range_is_a_usage_error(tmp_path, shapes_folder):
    out = tmp_path / "out"
    result = run_cli("data", "export", shapes_folder, "--channels", "4", "--out", out)
    assert result.exit_code == 2, result.stderr
    assert result.stdout == ""
    assert "--channels" in result.stderr
    assert not out.exists()


def test_image_size_not_a_size_is_refused(tmp_path, shapes_folder):
    out = tmp_path / "out"
    result = run_cli("data", "export", shapes_folder, "--image-size", "abc", "--out", out)
    assert_refused(result, "--image-size", "'abc'", out=out)


# --- SIGKILL safety ------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("out_existed", [False, True], ids=["fresh-out", "existing-out"])
def test_sigkill_midway_leaves_no_partial_output(tmp_path, out_existed):
    rng = np.random.default_rng(0)
    count = 20_000
    npz = tmp_path / "big.npz"
    np.savez(
        npz,
        images=rng.integers(0, 256, (count, 28, 28), dtype=np.uint8),
        labels=rng.integers(0, 10, count).astype(np.int64),
        class_names=np.array([f"class{i}" for i in range(10)]),
    )
    out = tmp_path / "out"
    env = augmentor_subprocess_env()
    before: dict[str, bytes] = {}
    if out_existed:
        small = good_folder(tmp_path, name="small")
        done = subprocess.run(augmentor_command("data", "export", small, "--out", out), env=env, cwd=tmp_path)
        assert done.returncode == 0
        before = tree_snapshot(out)
        assert "manifest.jsonl" in before

    args = ["data", "export", npz, "--out", out, "--workers", "2"] + (["--overwrite"] if out_existed else [])
    proc = subprocess.Popen(
        augmentor_command(*args),
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group, so its pool workers die with it
    )
    staging = tmp_path / f".{out.name}.partial-{proc.pid}"
    deadline = time.monotonic() + 120

    def writing_started() -> bool:
        # PNGs in the staging folder, or (were the export not staged) straight under a new --out.
        watched = [staging] if out_existed else [staging, out]
        return any(d.is_dir() and next(d.rglob("*.png"), None) is not None for d in watched)

    try:
        while proc.poll() is None and time.monotonic() < deadline and not writing_started():
            time.sleep(0.005)
        assert proc.poll() is None, (
            f"the export ended (rc={proc.returncode}) before any PNG appeared in {staging.name}; "
            "it could not be killed midway"
        )
        assert time.monotonic() < deadline, f"no PNG appeared in {staging.name} within 120 s"
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL

    if out_existed:
        assert tree_snapshot(out) == before, "the killed run changed the existing --out"
    else:
        assert not out.exists(), "the killed run published a partial --out"
    assert staging.is_dir(), "the killed run should leave only its staging folder behind"

    rerun = subprocess.run(
        augmentor_command("data", "export", npz, "--out", out, "--overwrite"),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert rerun.returncode == 0, rerun.stderr
    records = read_manifest(out)
    assert len(records) == count
    assert {r["path"] for r in records} == png_files(out)
    assert len(png_files(out)) == count
    for record in records:
        assert hashlib.sha256((out / record["path"]).read_bytes()).hexdigest() == record["sha256"]
    assert not staging.exists(), "the stale staging folder of the killed run was not removed"
    assert staging_folders(out) == []


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("class_names", "../../escaped", "contains a path separator"),
        ("class_names", "..", "would leave the output folder"),
        ("image_shape", [1, 200000, 200000], "is not [channels 1 or 3"),
        ("model_args", {"width": 200000}, "model_args width 200000"),
        ("class_names", None, "has no 'class_names'"),
    ],
)
def test_a_hostile_run_config_is_refused_before_anything_is_written(tmp_path, field, value, message):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(REPO / "weights" / "fashion-mnist" / "dcgan", run)
    config = json.loads((run / "config.json").read_text())
    if value is None:
        del config[field]
    elif field == "class_names":
        config[field][0] = value
    elif field == "model_args":
        config[field].update(value)
    else:
        config[field] = value
    (run / "config.json").write_text(json.dumps(config))
    work = tmp_path / "work" / "deeper"
    work.mkdir(parents=True)
    before = files_under(tmp_path)
    result = run_cli("sample", run, "--per-class", "1", "--out", work / "s")
    assert result.exit_code == 2
    assert message in result.stderr and "config.json" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert files_under(tmp_path) == before  # nothing written, inside --out or outside it


@pytest.mark.parametrize(
    "command",
    [
        ("sample", "{run}", "--per-class", "1", "--out", "{out}"),
        ("interpolate", "{run}", "--from", "1", "--to", "2", "--out", "{out}.png"),
        ("edit", "{run}", "--direction", "d:x", "--out", "{out}"),
        ("directions", "{run}", "--by", "class", "--out", "{out}"),
        ("project", "{run}", "{image}", "--out", "{out}"),
        ("expand", "{data}", "--with", "vae:{run}", "--per-class", "2", "--out", "{out}"),
        ("score", "{run}", "--real", "{data}", "--n", "10"),
    ],
    ids=lambda command: command[0],
)
def test_a_hostile_class_name_in_a_run_is_refused_by_every_command_that_takes_a_run(tmp_path, command):
    """Issue 11: a run whose class_names held '../../dir' made sample and edit write outside --out."""
    import shutil

    data = make_shapes_folder(tmp_path / "data", per_class=2)
    run = tmp_path / "run"
    shutil.copytree(REPO / "weights" / "fashion-mnist" / "vae", run)
    config = json.loads((run / "config.json").read_text())
    config["class_names"][0] = "../../escaped"
    (run / "config.json").write_text(json.dumps(config))
    image = next((data / "disk").iterdir())
    names = {"run": run, "out": tmp_path / "work" / "out", "data": data, "image": image}
    before = files_under(tmp_path)
    result = run_cli(*(part.format(**names) for part in command))
    # score reads its reference data first, and says that the data has no test split
    said = "".join(line + "\n" for line in result.stderr.splitlines() if not line.startswith("warning: "))
    result = CliResult(result.exit_code, result.stdout, said)
    assert_refused(result, "class name '../../escaped' is refused", "config.json")
    assert files_under(tmp_path) == before  # nothing written, inside --out or outside it


def test_a_run_config_that_is_not_an_object_is_refused(tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(REPO / "weights" / "fashion-mnist" / "dcgan", run)
    for text in ("[1, 2]", "[" * 100_000 + "]" * 100_000):
        (run / "config.json").write_text(text)
        result = run_cli("sample", run, "--per-class", "1", "--out", tmp_path / "s")
        assert result.exit_code == 2, result.stderr
        assert "config.json" in result.stderr and not (tmp_path / "s").exists()


def _billion_laughs() -> str:
    """617 bytes of nested YAML aliases that expand to 10^9 list items."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in "bcdefghi":
        previous = chr(ord(level) - 1)
        lines.append(f"{level}: &{level} [" + ",".join([f"*{previous}"] * 10) + "]")
    return "\n".join(lines) + "\ntransform: {__class_fullname__: Compose, transforms: *i}\n"


def _nested_compose(levels: int) -> str:
    """Compose inside Compose ``levels`` deep, written as text (json.dumps itself recurses)."""
    opening = '{"__class_fullname__": "Compose", "p": 1.0, "transforms": ['
    leaf = '{"__class_fullname__": "HorizontalFlip", "p": 0.5}'
    return '{"__version__": "2.0.8", "transform": ' + opening * levels + leaf + "]}" * levels + "}"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("laughs.yaml", _billion_laughs(), "aliases (*name) are refused"),
        ("deep.json", _nested_compose(2000), "nested too deeply"),
        ("nested.json", _nested_compose(12), "more than 8 levels"),
        ("huge.yaml", "transform: {}\n#" + "x" * (1 << 20), "too large for a pipeline file"),
    ],
)
def test_small_pipeline_bombs_are_refused_at_once(tmp_path, monkeypatch, name, content, message):
    monkeypatch.chdir(tmp_path)
    Path(name).write_text(content)
    started = time.perf_counter()
    result = run_cli("pipeline", "check", name)
    assert result.exit_code == 2 and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert time.perf_counter() - started < 30  # not a timing target: a bomb would take minutes or fail


def test_a_pipeline_bomb_is_refused_before_albumentations_is_imported(tmp_path):
    """Issue 11 audit: the refusal came after importing albumentations (3 s and 700 MB of a fresh process);
    the file is read and refused first, so a bomb costs what reading a few bytes costs."""
    for name, content in (("laughs.yaml", _billion_laughs()), ("deep.json", _nested_compose(2000))):
        (tmp_path / name).write_text(content)
        script = (
            "import sys\n"
            "from augmentor.classic.pipelines import load_pipeline\n"
            "from augmentor.core.errors import UserError\n"
            f"try:\n    load_pipeline({str(tmp_path / name)!r})\nexcept UserError:\n    pass\n"
            "print(sorted(m for m in ('albumentations', 'torch', 'cv2') if m in sys.modules))\n"
        )
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and done.stdout.strip() == "[]", (name, done.stdout, done.stderr)


def test_an_npz_whose_zip_claims_a_version_zipfile_cannot_read_is_one_line(tmp_path):
    """Found by the fuzz test: a zip entry needing "version 12.7" raised zipfile's NotImplementedError."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, images=np.zeros((4, 8, 8), np.uint8), labels=np.array([0, 1, 0, 1]))
    data = bytearray(buffer.getvalue())
    entry = data.find(b"PK\x01\x02")  # the central directory's entries
    while entry != -1:
        data[entry + 6] = 127  # "version needed to extract": 12.7
        entry = data.find(b"PK\x01\x02", entry + 4)
    (tmp_path / "v.npz").write_bytes(bytes(data))
    assert_refused(run_cli("data", "info", tmp_path / "v.npz"), "v.npz", "zip file version 12.7")


def _npz_declaring(path: Path, shape: tuple[int, ...]) -> None:
    """A 300-byte .npz whose 'images' header declares ``shape`` (the data is not there): a bomb's signature."""
    import zipfile

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False, "shape": shape})
    labels = io.BytesIO()
    np.save(labels, np.zeros(shape[0] if shape[0] < 10 else 2, np.int64))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("images.npy", header.getvalue() + b"\x00" * 16)
        archive.writestr("labels.npy", labels.getvalue())


IMAGES = np.zeros((4, 8, 8), np.uint8)
BAD_NPZ = {
    "label 10^9": ({"labels": np.array([0, 1, 2, 10**9])}, "would make 1,000,000,001 classes"),
    "no images": ({"images": np.zeros((0, 8, 8), np.uint8), "labels": np.zeros(0, np.int64)}, "holds no images"),
    "uint64 label": ({"labels": np.array([0, 1, 2, 2**63 + 5], np.uint64)}, "labels are 0..K-1"),
    "negative label": ({"labels": np.array([0, -1, 1, 0])}, "labels are 0..K-1"),
    "2-D labels": ({"labels": np.zeros((4, 2), np.int64)}, "1-D array of non-negative integers"),
    "0x0 images": ({"images": np.zeros((4, 0, 0), np.uint8)}, "0×0 pixels"),
    "2-D class names": ({"class_names": np.array([["a", "b"], ["c", "d"]])}, "1-D array of names"),
    "float test labels": (
        {"test_images": IMAGES, "test_labels": np.array([0.0, 1.5, 1.0, 0.0])},
        "'test_labels' must be a 1-D array",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_NPZ))
def test_bad_npz_is_one_error_line(tmp_path, case):
    arrays, message = BAD_NPZ[case]
    npz = tmp_path / "bad.npz"
    np.savez(npz, **{"images": IMAGES, "labels": np.array([0, 1, 0, 1]), **arrays})
    out = tmp_path / "out"
    assert_refused(run_cli("data", "export", npz, "--out", out), str(npz), message, out=out)


def test_npz_bomb_is_refused_from_its_header(tmp_path):
    npz = tmp_path / "bomb.npz"
    _npz_declaring(npz, (2, 100_000, 100_000))  # 20 GB declared in a few hundred bytes
    assert npz.stat().st_size < 1000
    assert_refused(run_cli("data", "info", npz), str(npz), "GiB once inflated")


def _idx_bytes(shape: tuple[int, ...], data: bytes | None = None) -> bytes:
    header = bytes([0, 0, 8, len(shape)]) + b"".join(d.to_bytes(4, "big") for d in shape)
    return header + (bytes(int(np.prod(shape))) if data is None else data)


def _write_idx_folder(folder: Path, train: tuple[int, int, int], test: tuple[int, int, int] | None = None) -> Path:
    import gzip

    folder.mkdir(parents=True, exist_ok=True)
    for stem, shape in (("train", train), ("t10k", test)):
        if shape is None:
            continue
        (folder / f"{stem}-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx_bytes(shape)))
        labels = bytes([i % 2 for i in range(shape[0])])
        (folder / f"{stem}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx_bytes((shape[0],), labels)))
    return folder


def test_idx_gzip_bomb_is_refused_without_inflating(tmp_path):
    import gzip

    folder = _write_idx_folder(tmp_path / "idx", (4, 28, 28))
    bomb = gzip.compress(_idx_bytes((4, 28, 28), bytes(200 * 2**20)), compresslevel=9)  # 200 MB of zeros
    assert len(bomb) < 2**20
    (folder / "train-images-idx3-ubyte.gz").write_bytes(bomb)
    assert_refused(run_cli("data", "info", folder), "train-images-idx3-ubyte.gz", "holds more")


@pytest.mark.parametrize(
    ("train", "test", "message"),
    [
        ((0, 28, 28), None, "holds no images"),
        ((4, 28, 28), (4, 10, 10), "10×10 images beside 28×28 train images"),
        ((4, 60000, 60000), None, "GiB of data"),
    ],
)
def test_bad_idx_is_one_error_line(tmp_path, train, test, message):
    folder = tmp_path / "idx"
    if train[1] > 1000:  # declared only: the header alone is the test
        import gzip

        _write_idx_folder(folder, (4, 28, 28))
        (folder / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx_bytes(train, b"")))
    else:
        _write_idx_folder(folder, train, test)
    assert_refused(run_cli("data", "info", folder), message)


def test_a_class_emptied_by_skip_corrupt_is_said_against_per_class(tmp_path):
    """Issue 11: a class whose images were all skipped stayed at 0 against --per-class N without a word."""
    folder = make_shapes_folder(tmp_path / "data", per_class=3)
    for image in (folder / "disk").iterdir():
        image.write_bytes(b"not a png")
    result = run_cli("classic", folder, "--skip-corrupt", "--per-class", "5", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    assert "1 class has no training images ('disk')" in result.stderr and "get no folder ('disk')" in result.stderr
    summary = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert summary["classes_without_images"] == ["disk"] and not (tmp_path / "out" / "disk").exists()


def test_idx_test_labels_outside_the_train_classes_are_refused(tmp_path):
    """Issue 11: IDX test labels were never checked against the classes the train split has."""
    import gzip

    folder = _write_idx_folder(tmp_path / "idx", (4, 28, 28), (4, 28, 28))  # train labels 0 and 1
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx_bytes((4,), bytes([0, 1, 7, 1]))))
    assert_refused(run_cli("data", "info", folder), "t10k-labels-idx1-ubyte.gz", "label 7 is outside the 2 classes")


def test_an_output_written_by_another_run_meanwhile_is_not_replaced(tmp_path):
    from augmentor.core.errors import UserError
    from augmentor.core.outdir import staged_output

    out = tmp_path / "out"
    refused = pytest.raises(UserError, match="another run wrote it while this one was working")
    with refused, staged_output(out, overwrite=False) as staging:
        (staging / "mine.txt").write_text("mine")
        out.mkdir()  # the other run finishes first
        (out / "theirs.txt").write_text("theirs")
    assert files_under(tmp_path) == {"out/theirs.txt"}  # theirs kept, no staging folder left


def test_an_overwrite_that_cannot_finish_puts_the_previous_output_back(tmp_path, monkeypatch):
    """Review: with --overwrite the old output is moved aside first; if the new one cannot take its place
    the old one used to stay aside, under a name the next run cleans as stale."""
    import augmentor.core.outdir as outdir
    from augmentor.core.errors import UserError

    out = tmp_path / "out"
    out.mkdir()
    (out / "previous.txt").write_text("previous")
    real_replace = outdir.os.replace

    def refuse_the_new_one(source, target):
        if ".partial-" in Path(source).name and not Path(source).name.endswith("-old"):
            raise OSError(39, "Directory not empty")
        real_replace(source, target)

    monkeypatch.setattr(outdir.os, "replace", refuse_the_new_one)
    with pytest.raises(UserError, match="could not be replaced"), outdir.staged_output(out, overwrite=True) as staging:
        (staging / "new.txt").write_text("new")
    assert files_under(tmp_path) == {"out/previous.txt"}  # the previous output back in place, no staging left


def test_out_may_not_be_the_current_folder_or_above_it(tmp_path, monkeypatch, shapes_folder):
    monkeypatch.chdir(tmp_path)
    for out in (".", ".."):
        result = run_cli("classic", shapes_folder, "--per-image", "1", "--out", out, "--overwrite")
        assert_refused(result, "current folder or one above it")
    assert not list(tmp_path.glob(".*"))


def _pipeline_file(path: Path, transform: str, **arguments: object) -> Path:
    step = {"__class_fullname__": transform, "p": 1.0, **arguments}
    document = {"__version__": "2.0.8", "transform": {"__class_fullname__": "Compose", "p": 1.0, "transforms": [step]}}
    path.write_text(json.dumps(document))
    return path


def test_a_pipeline_that_cannot_run_on_the_images_is_one_error_line(tmp_path, shapes_folder):
    crop = _pipeline_file(tmp_path / "crop.json", "RandomCrop", height=64, width=64)
    out = tmp_path / "out"
    result = run_cli("classic", shapes_folder, "--pipeline", crop, "--per-image", "1", "--out", out)
    assert_refused(result, "cannot run on 28×28×1 images", "CropSizeError", out=out)
    huge = _pipeline_file(tmp_path / "huge.json", "Resize", height=100_000, width=100_000)
    assert_refused(run_cli("pipeline", "check", huge), "huge.json", "at most 4096 px")
    boxes = _pipeline_file(tmp_path / "boxes.json", "BBoxSafeRandomCrop")  # needs bounding boxes, not a size
    result = run_cli("classic", shapes_folder, "--pipeline", boxes, "--per-image", "1", "--out", out)
    assert_refused(result, "needs 'bboxes'", "bounding boxes, masks or keypoints", out=out)


def test_pipeline_check_with_data_tests_the_datas_own_size(tmp_path):
    small = make_shapes_folder(tmp_path / "small", per_class=2, size=24)
    crop = _pipeline_file(tmp_path / "crop.json", "RandomResizedCrop", size=[24, 24])
    assert_refused(run_cli("pipeline", "check", crop), "turned a 28×28×1 uint8 image into 24×24×1")  # built-in probe
    checked = run_cli("pipeline", "check", crop, "--data", small)
    assert checked.exit_code == 0, checked.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--device", "mps"], "only cpu and cuda are supported"),
        (["--seed", "-5"], "--seed"),
        (["--truncation", "nan"], "--truncation"),
    ],
)
def test_bad_sampling_flags_are_one_error_line(tmp_path, args, message):
    out = tmp_path / "s"
    result = run_cli("sample", REPO / "weights" / "fashion-mnist" / "dcgan", "--per-class", "1", "--out", out, *args)
    assert_refused(result, message, out=out)


def test_absurd_sizes_are_refused_before_any_allocation(tmp_path, shapes_folder):
    assert_refused(run_cli("data", "info", shapes_folder, "--image-size", "20000"), "at most 1024 pixels")
    run = REPO / "weights" / "fashion-mnist" / "vae"
    result = run_cli("interpolate", run, "--frames", "100000000", "--out", tmp_path / "i.png")
    assert result.exit_code == 2 and "--frames" in result.stderr


def test_out_may_not_overlap_the_dataset_it_reads(tmp_path, shapes_folder):
    before = files_under(shapes_folder)
    for out in (shapes_folder, shapes_folder / "disk" / "more", tmp_path):
        result = run_cli("classic", shapes_folder, "--per-image", "1", "--out", out, "--overwrite")
        assert_refused(result, "overlaps the dataset it reads")
    assert files_under(shapes_folder) == before


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_an_out_or_grid_that_cannot_be_written_is_refused_before_any_work(tmp_path, shapes_folder, monkeypatch):
    """Issue 11: --out in /proc (or under a file, or on a read-only mount) used to fail after the work."""
    import augmentor.classic.expand as classic_expand

    def no_work(*args, **kwargs):
        raise AssertionError("images were augmented before the unwritable --out was refused")

    monkeypatch.setattr(classic_expand, "expand", no_work)
    (tmp_path / "notes.txt").write_text("a file where a folder should be")
    under_a_file = tmp_path / "notes.txt" / "out"
    for out, reason in (("/proc/augmentor-out", "cannot write in /proc"), (under_a_file, "is a file, not a folder")):
        assert_refused(run_cli("classic", shapes_folder, "--per-image", "1", "--out", out), reason)
    sample = run_cli("sample", REPO / "weights" / "fashion-mnist" / "vae", "--per-class", "1", "--out",
                     tmp_path / "s", "--grid", "/proc/augmentor-grid.png")  # fmt: skip
    assert_refused(sample, "cannot write in /proc")
    assert not (tmp_path / "s").exists()
    # Training commands create their run folder before the first step: the same one line, not a bare OSError.
    unwritable = (("/proc/augmentor-run", "cannot write in /proc"), (under_a_file, "is a file, not a folder"))
    for command in (("train", "dcgan"), ("train", "vae"), ("classify", "train")):
        for out, reason in unwritable:
            assert_refused(run_cli(*command, shapes_folder, "--steps", "1", "--out", out), reason)


def test_a_folder_holding_someone_elses_config_json_is_not_taken_for_a_stopped_run(tmp_path, shapes_folder):
    """Issue 11 audit: a folder holding only config.json was reused as a run stopped before its first
    checkpoint, and a user's own config.json was replaced without --overwrite."""
    out = tmp_path / "mine"
    out.mkdir()
    (out / "config.json").write_text('{"my": "precious"}')
    result = run_cli("train", "dcgan", shapes_folder, "--steps", "1", "--out", out)
    assert_refused(result, "is not empty", "--overwrite")
    assert (out / "config.json").read_text() == '{"my": "precious"}'


def _claim_staging_together(out: str, barrier, results) -> None:
    """One of two processes started together: look for another writer, claim ``out``'s staging folder."""
    import augmentor.core.outdir as outdir
    from augmentor.core.errors import UserError

    looked = outdir._live_writer

    def slow_look(target):  # both would look before either claims, were looking and claiming two steps
        found = looked(target)
        time.sleep(0.3)
        return found

    outdir._live_writer = slow_look
    barrier.wait()
    try:
        outdir.open_staging(Path(out), overwrite=True)
        results.put("claimed")
    except UserError:
        results.put("refused")


def test_two_writers_started_together_cannot_both_claim_one_out(tmp_path):
    """Issue 11 audit: two runs started at the same moment both passed the live-writer check, and one output
    replaced the other; looking and claiming are one step now."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(2), context.Queue()
    workers = [
        context.Process(target=_claim_staging_together, args=(str(tmp_path / "out"), barrier, results))
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert sorted(results.get(timeout=5) for _ in workers) == ["claimed", "refused"]


def test_links_out_of_the_dataset_and_unicode_twins_are_refused(tmp_path):
    """Issue 11: a class folder or image that links outside SRC would read files the dataset does not hold;
    two class folders named alike in different Unicode forms would be two classes of one name."""
    data = make_shapes_folder(tmp_path / "data", per_class=3)
    outside = make_shapes_folder(tmp_path / "elsewhere", per_class=3)
    (data / "ring").symlink_to(outside / "disk", target_is_directory=True)
    assert_refused(run_cli("data", "info", data), "ring: links to", "outside")
    (data / "ring").unlink()
    (data / "disk" / "extra.png").symlink_to(next((outside / "disk").iterdir()))
    assert_refused(run_cli("data", "info", data), "extra.png: links to")
    (data / "disk" / "extra.png").unlink()
    (data / "disk" / "inner.png").symlink_to(next((data / "square").iterdir()))  # inside: fine
    assert run_cli("data", "info", data).exit_code == 0
    twins = make_shapes_folder(tmp_path / "twins", per_class=3)
    (twins / "disk").rename(twins / "caf\u00e9")
    (twins / "square").rename(twins / "cafe\u0301")
    assert_refused(run_cli("data", "info", twins), "same name in two Unicode forms")


def test_a_test_split_of_another_shape_is_refused_when_read(tmp_path):
    """Issue 11: it used to be read, then refused by the classifier minutes later (or never, by data info)."""
    np.savez(
        tmp_path / "odd.npz",
        images=np.zeros((10, 28, 28), np.uint8),
        labels=np.arange(10) % 2,
        test_images=np.zeros((4, 32, 32), np.uint8),
        test_labels=np.arange(4) % 2,
    )
    assert_refused(run_cli("data", "info", tmp_path / "odd.npz"), "'test_images' are 1×32×32", "--image-size")
    assert run_cli("data", "info", tmp_path / "odd.npz", "--image-size", "28").exit_code == 0  # converted: fine
    folder = make_shapes_folder(tmp_path / "folder", per_class=3)
    make_shapes_folder(tmp_path / "split" / "train", per_class=3)
    make_shapes_folder(tmp_path / "split" / "test", per_class=3, size=32)
    assert_refused(run_cli("data", "info", tmp_path / "split"), "train 1×28×28, test 1×32×32")
    assert run_cli("data", "info", folder).exit_code == 0


def test_a_class_without_training_images_is_a_warning(tmp_path):
    images = np.random.default_rng(0).integers(0, 255, (10, 28, 28), dtype=np.uint8)
    np.savez(tmp_path / "e.npz", images=images, labels=np.arange(10) % 2, class_names=np.array(["a", "b", "c"]))
    result = run_cli("data", "info", tmp_path / "e.npz")
    assert result.exit_code == 0 and "1 class has no training images ('c')" in result.stderr


def test_an_exif_rotated_photo_is_read_upright_as_viewers_show_it(tmp_path):
    """Issue 11: a JPEG whose EXIF orientation says "rotate 90°" was read with its stored, sideways pixels."""
    from PIL import Image

    from augmentor.data.readers import open_dataset

    upright = np.zeros((20, 12), np.uint8)
    upright[:4, :] = 255  # a bar at the top: any rotation moves it
    stored = np.rot90(upright, k=1)  # what a camera held sideways stores (12 rows × 20 columns)
    folder = tmp_path / "photos" / "bar"
    folder.mkdir(parents=True)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to view"
    Image.fromarray(np.ascontiguousarray(stored)).save(folder / "a.jpg", exif=exif, quality=100)
    Image.fromarray(upright).save(folder / "b.jpg", quality=100)  # no orientation tag: read as stored
    train = open_dataset(str(tmp_path / "photos")).train
    assert train.images.shape[2:] == (20, 12)  # both upright, so one size
    assert np.abs(train.images[0, 0].astype(int) - upright).max() < 40  # JPEG: close, not exact
    assert np.abs(train.images[1, 0].astype(int) - upright).max() < 40


def test_a_manifest_with_nested_provenance_is_one_error_line(tmp_path):
    """Issue 11: a manifest.jsonl whose "source" is an object crashed with "unhashable type: 'dict'"."""
    root = make_shapes_folder(tmp_path / "data", per_class=3)
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.png"))
    records = [{"path": f, "split": "train", "class": f.split("/")[0], "source": "real"} for f in files]
    records[2]["source"] = {"x": [1]}
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    assert_refused(run_cli("data", "info", root), "manifest.jsonl: record 3: 'source' is a dict", "delete the manifest")
    records[2]["source"] = "real"
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    assert run_cli("data", "info", root).exit_code == 0


def test_follow_symlinks_reads_links_out_of_the_dataset_when_asked(tmp_path, monkeypatch):
    """Issue 11: links out of SRC are refused unless --follow-symlinks (a root flag, also after the command)."""
    monkeypatch.setenv("AUGMENTOR_FOLLOW_SYMLINKS", "0")  # the flag sets it; teardown restores it
    data = make_shapes_folder(tmp_path / "data", per_class=3)
    outside = make_shapes_folder(tmp_path / "elsewhere", per_class=2)
    (data / "ring").symlink_to(outside / "disk", target_is_directory=True)
    assert_refused(run_cli("data", "info", data), "ring: links to", "--follow-symlinks")
    result = run_cli("data", "info", data, "--follow-symlinks", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["splits"]["train"]["per_class"]["ring"] == 2


@pytest.mark.parametrize(("spelling", "follows"), [("false", False), ("No", False), ("yes", True), ("TRUE", True)])
def test_the_symlink_switch_takes_the_usual_spellings(tmp_path, monkeypatch, spelling, follows):
    """Issue 25: AUGMENTOR_FOLLOW_SYMLINKS=false turned link-following on (anything but "0" did)."""
    monkeypatch.setenv("AUGMENTOR_FOLLOW_SYMLINKS", spelling)
    data = make_shapes_folder(tmp_path / "data", per_class=3)
    outside = make_shapes_folder(tmp_path / "elsewhere", per_class=2)
    (data / "ring").symlink_to(outside / "disk", target_is_directory=True)
    result = run_cli("data", "info", data, "--json")
    if follows:
        assert result.exit_code == 0 and json.loads(result.stdout)["splits"]["train"]["per_class"]["ring"] == 2
    else:
        assert_refused(result, "ring: links to")


def test_a_misspelt_switch_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("AUGMENTOR_FOLLOW_SYMLINKS", "flase")
    data = make_shapes_folder(tmp_path / "data", per_class=3)
    assert_refused(run_cli("data", "info", data), "AUGMENTOR_FOLLOW_SYMLINKS='flase' is not a switch", "1 or 0")


def test_a_decomposed_unicode_class_folder_becomes_one_nfc_class_name(tmp_path):
    """Issue 11: class names are normalised to NFC, so a folder macOS wrote decomposed writes composed."""
    import unicodedata

    data = make_shapes_folder(tmp_path / "data", per_class=3)
    (data / "disk").rename(data / "cafe\u0301")  # NFD: "e" + combining acute
    result = run_cli("classic", data, "--per-image", "1", "--pipeline", "light", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    written = {p.name for p in (tmp_path / "out").iterdir() if p.is_dir() and not p.name.startswith(".")}
    assert "caf\u00e9" in written and all(unicodedata.is_normalized("NFC", name) for name in written)
    assert len(list((tmp_path / "out" / "caf\u00e9").glob("*.png"))) == 6  # 3 originals and 3 copies


def test_npz_class_names_are_nfc_as_folder_names_are(tmp_path):
    """Issue 25: an .npz's decomposed 'café' stayed decomposed while a folder's became composed."""
    path = tmp_path / "cafe.npz"
    images = np.zeros((4, 8, 8), np.uint8)
    np.savez(path, images=images, labels=np.array([0, 1, 0, 1]), class_names=np.array(["cafe\u0301", "tea"]))
    result = run_cli("data", "info", path, "--json")
    assert result.exit_code == 0, result.stderr
    assert "caf\u00e9" in json.loads(result.stdout)["splits"]["train"]["per_class"]


def test_an_unreadable_class_folder_is_one_line(tmp_path, monkeypatch):
    """Issue 25: an unreadable class folder was exit 1 with a bare PermissionError (faked here: root reads all)."""
    data = good_folder(tmp_path)
    listing = Path.iterdir

    def refuse(self):
        if self.name == "disk":
            raise PermissionError(13, "Permission denied", str(self))
        return listing(self)

    monkeypatch.setattr(Path, "iterdir", refuse)
    assert_refused(run_cli("data", "info", data), "disk: cannot list the class folder (permission denied)")


def test_the_exif_orientation_applied_is_recorded_in_the_provenance(tmp_path):
    """Issue 11: the rotation applied to an EXIF-tagged photo is said in the manifest's record."""
    from augmentor.data.readers import open_dataset

    folder = tmp_path / "photos" / "bar"
    folder.mkdir(parents=True)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.zeros((12, 20), np.uint8)).save(folder / "a.jpg", exif=exif)
    Image.fromarray(np.zeros((20, 12), np.uint8)).save(folder / "b.jpg")
    provenance = open_dataset(str(tmp_path / "photos")).train.provenance
    assert [record.get("exif_orientation") for record in provenance] == [6, None]
    # ... and in the written manifest, on that photo's line alone (other lines keep their keys).
    assert run_cli("data", "export", tmp_path / "photos", "--out", tmp_path / "out").exit_code == 0
    lines = (tmp_path / "out" / "manifest.jsonl").read_text().splitlines()
    records = {record["origin"]: record for record in map(json.loads, lines)}
    assert [records[name].get("exif_orientation") for name in ("bar/a.jpg", "bar/b.jpg")] == [6, None]
    assert "exif_orientation" not in records["bar/b.jpg"]


def test_caps_name_their_variable_and_the_variable_lifts_them(tmp_path, monkeypatch):
    """Issue 11: every resource cap names the environment variable that lifts it, and the variable works."""
    data = make_shapes_folder(tmp_path / "data", per_class=2)
    assert_refused(run_cli("data", "info", data, "--image-size", "1100"), "AUGMENTOR_MAX_IMAGE_SIDE")
    monkeypatch.setenv("AUGMENTOR_MAX_IMAGE_SIDE", "2K")
    assert run_cli("data", "info", data, "--image-size", "1100").exit_code == 0
    monkeypatch.setenv("AUGMENTOR_MAX_IMAGE_SIDE", "lots")
    assert_refused(run_cli("data", "info", data, "--image-size", "28"), "AUGMENTOR_MAX_IMAGE_SIDE='lots'", "unset")
    monkeypatch.delenv("AUGMENTOR_MAX_IMAGE_SIDE")
    monkeypatch.setenv("AUGMENTOR_MAX_IMAGE_PIXELS", "500")  # below 28×28: every image refused, naming it
    assert_refused(run_cli("data", "info", data), "decompression-bomb guard", "AUGMENTOR_MAX_IMAGE_PIXELS")


def test_a_gzip_idx_that_claims_to_inflate_far_is_refused_before_inflating(tmp_path, monkeypatch):
    """Issue 11: a small gzip IDX file whose header declares hundreds of MB is refused from the header and
    the file's size (real IDX files inflate 2-5×), before a byte of data is inflated."""
    import gzip

    from augmentor.core.errors import UserError
    from augmentor.data.idx import read_idx_array

    bomb = tmp_path / "train-images-idx3-ubyte.gz"
    header = bytes([0, 0, 8, 3]) + struct.pack(">III", 300_000, 28, 28)  # 235 MB declared
    bomb.write_bytes(gzip.compress(header + bytes(1000)))
    with pytest.raises(UserError, match=r"gzip bomb.*AUGMENTOR_MAX_INFLATION"):
        read_idx_array(bomb)
    monkeypatch.setenv("AUGMENTOR_MAX_INFLATION", "100000")  # lifted: now the truncation is what is wrong
    with pytest.raises(UserError, match="file holds 1000"):
        read_idx_array(bomb)


def test_data_larger_than_the_memory_available_is_refused_before_it_is_read(tmp_path, monkeypatch):
    """Issue 11: arrays whose declared size exceeds the memory available now are refused from their headers."""
    from augmentor.core import limits

    np.savez(tmp_path / "d.npz", images=np.zeros((10, 28, 28), np.uint8), labels=np.arange(10) % 2)
    monkeypatch.setattr(limits, "available_memory", lambda: 4000)
    assert_refused(run_cli("data", "info", tmp_path / "d.npz"), "d.npz: the arrays need", "of memory is available")
    monkeypatch.setenv("AUGMENTOR_MAX_ARRAY_BYTES", "1G")  # the user says how much they mean: no memory check
    assert run_cli("data", "info", tmp_path / "d.npz").exit_code == 0


def test_a_folder_whose_images_outgrow_the_memory_available_stops_while_reading(tmp_path, monkeypatch):
    """Issue 11: the total decoded bytes of an ImageFolder are held against the memory available."""
    from augmentor.core import limits

    data = make_shapes_folder(tmp_path / "data", per_class=4)  # 12 × 784 bytes decoded
    monkeypatch.setattr(limits, "available_memory", lambda: 5000)
    assert_refused(run_cli("data", "info", data), "the images read so far need", "resize them")
    monkeypatch.setattr(limits, "available_memory", lambda: 20_000)
    assert run_cli("data", "info", data).exit_code == 0


def test_a_second_writer_to_the_same_out_is_refused_at_once_naming_the_first(tmp_path, shapes_folder):
    """Issue 11: two runs writing one --out both exited 0 and one silently replaced the other; the second
    is now refused before any work, naming the first (a live process holding a staging folder)."""
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        out = tmp_path / "out"
        staging = tmp_path / f".out.partial-{sleeper.pid}"
        staging.mkdir()
        result = run_cli("classic", shapes_folder, "--per-image", "1", "--out", out)
        assert_refused(result, f"another augmentor process (pid {sleeper.pid}) is writing it now")
        assert not out.exists() and staging.is_dir()  # the first writer's work is untouched
    finally:
        sleeper.kill()
        sleeper.wait()
    assert run_cli("classic", shapes_folder, "--per-image", "1", "--out", out).exit_code == 0  # stale: cleaned
    assert not staging.exists()


def test_a_class_without_images_is_named_in_dataset_json_and_warned_on_writing(tmp_path):
    """Issue 11: dataset.json listed a class that got no folder, with no word about it."""
    images = np.random.default_rng(0).integers(0, 255, (10, 28, 28), dtype=np.uint8)
    np.savez(tmp_path / "e.npz", images=images, labels=np.arange(10) % 2, class_names=np.array(["a", "b", "c"]))
    result = run_cli("classic", tmp_path / "e.npz", "--per-image", "1", "--out", tmp_path / "out")
    assert result.exit_code == 0 and "have no images and get no folder ('c')" in result.stderr
    summary = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert summary["classes"] == ["a", "b", "c"] and summary["classes_without_images"] == ["c"]
    assert not (tmp_path / "out" / "c").exists()


def test_a_named_data_dir_without_the_files_is_refused_not_replaced_by_another_copy(tmp_path, monkeypatch):
    """Issue 11: `--data-dir /nonexistent` silently read the system's Fashion-MNIST instead."""
    assert_refused(run_cli("data", "info", "fashion-mnist", "--data-dir", tmp_path / "none"), "none: no Fashion-MNIST")
    monkeypatch.setenv("AUGMENTOR_DATA", str(tmp_path / "empty"))
    assert_refused(run_cli("data", "info", "fashion-mnist"), "AUGMENTOR_DATA=", "or drop it")


def test_a_compressed_npz_that_claims_to_inflate_far_is_refused_from_its_headers(tmp_path, monkeypatch):
    """Issue 11: a savez_compressed of zeros inflates ~1000×: refused before the array is read."""
    images = np.zeros((300_000, 28, 28), np.uint8)  # 235 MB of zeros, a few hundred KB compressed
    np.savez_compressed(tmp_path / "bomb.npz", images=images, labels=np.zeros(300_000, np.int64))
    assert (tmp_path / "bomb.npz").stat().st_size < 1 << 20
    assert_refused(run_cli("data", "info", tmp_path / "bomb.npz"), "'images' claims", "AUGMENTOR_MAX_INFLATION")


def test_a_json_pipeline_with_a_5000_digit_integer_is_refused(tmp_path):
    """Fuzz defect 11: json.loads raised a plain ValueError (int digit limit), not JSONDecodeError."""
    (tmp_path / "p.json").write_bytes(b"1" * 5000)
    assert_refused(run_cli("pipeline", "check", tmp_path / "p.json"), "p.json: not valid JSON", "A.save wrote")


def test_a_yaml_pipeline_with_a_5000_digit_integer_is_refused(tmp_path):
    """Fuzz defect 12: YAML's int constructor raised a plain ValueError."""
    (tmp_path / "p.yaml").write_bytes(b"transform: " + b"1" * 5000)
    assert_refused(run_cli("pipeline", "check", tmp_path / "p.yaml"), "p.yaml: not valid YAML", "A.save wrote")


@pytest.mark.parametrize(
    "body",
    [
        b"transform: {__class_fullname__: HorizontalFlip, 1: 2}\n",
        b"transform: {__class_fullname__: HorizontalFlip, p: 2020-01-01}\n",
        b"transform: {__class_fullname__: HorizontalFlip, p: !!binary aGVsbG8=}\n",
        b"transform: {__class_fullname__: HorizontalFlip, p: !!set {a}}\n",
        b"transform: {__class_fullname__: HorizontalFlip, ~: 1}\n",
    ],
)
def test_a_yaml_pipeline_holding_what_json_cannot_is_refused(tmp_path, body):
    """Fuzz defect 13: non-string keys, dates, bytes and sets passed validation, then broke the id's hash."""
    (tmp_path / "p.yaml").write_bytes(body)
    assert_refused(run_cli("pipeline", "check", tmp_path / "p.yaml"), "p.yaml: ", "transform", "A.save wrote")


def test_a_flow_bracket_bomb_is_refused_in_well_under_a_second(tmp_path):
    """Fuzz defect 14: 100 KB of `[` took >10 s in PyYAML's quadratic scanner, parsed twice."""
    (tmp_path / "p.yaml").write_bytes(b"[" * 100_000)
    start = time.monotonic()
    result = run_cli("pipeline", "check", tmp_path / "p.yaml")
    assert time.monotonic() - start < 2
    assert_refused(result, "p.yaml: nested too deeply", "brackets more than", "AUGMENTOR_MAX_PIPELINE_DEPTH")


def _edited_run(tmp_path: Path, kind: str, edit) -> Path:
    """A copy of a shipped run folder whose config.json ``edit`` changed (a dict edit, or bytes to write)."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(REPO / "weights" / "fashion-mnist" / kind, run)
    if isinstance(edit, bytes):
        (run / "config.json").write_bytes(edit)
    else:
        config = json.loads((run / "config.json").read_text())
        edit(config)
        (run / "config.json").write_text(json.dumps(config))
    return run


@pytest.mark.parametrize(
    ("kind", "edit", "message"),
    [
        ("dcgan", b'{"format_version": ' + b"1" * 5000 + b"}", "number too long"),
        ("dcgan", lambda c: c.update(kind=["dcgan"]), "'kind' ['dcgan']"),
        ("dcgan", lambda c: c["model_args"].update(matent_dim=8), "'matent_dim' (known: latent_dim"),
        ("vae", lambda c: c["model_args"].update(latent_dim=None), "latent_dim None"),
        ("dcgan", lambda c: c["model_args"].update(num_classes="3"), "num_classes '3'"),
        ("dcgan", lambda c: c["model_args"].update(channels=7.9e-150), "channels 7.9e-150"),
        ("dcgan", lambda c: c["model_args"].update(channels=10**9), "channels 1000000000"),
        ("dcgan", lambda c: c["model_args"].update(num_classes=10**9), "AUGMENTOR_MAX_CLASSES"),
        ("dcgan", lambda c: c["model_args"].update(width=4096, latent_dim=4096), "AUGMENTOR_MAX_PARAMETERS"),
        ("dcgan", lambda c: c.pop("model_args"), "has no 'model_args'"),
        ("vae", lambda c: c.pop("image_shape"), "has no 'image_shape'"),
        ("dcgan", lambda c: c.pop("class_names"), "has no 'class_names'"),
        ("classifier", lambda c: c.pop("arch"), "'arch' None"),
        ("classifier", lambda c: c["model_args"].pop("in_channels"), "no 'in_channels'"),
        ("classifier", lambda c: c.update(normalisation=None), "'normalisation' None"),
        ("classifier", lambda c: c["normalisation"].update(mean="x"), "normalisation mean 'x'"),
        ("classifier", lambda c: c["normalisation"].update(std=[["0.3"]]), "normalisation std"),
        ("classifier", lambda c: c["normalisation"].update(std=[0.0]), "normalisation std [0.0] must be positive"),
        ("classifier", lambda c: c["normalisation"].update(std=[-1.0]), "normalisation std [-1.0] must be positive"),
        ("classifier", lambda c: c["model_args"].update(num_classes=2**64), "num_classes 18446744073709551616"),
        ("classifier", lambda c: c.update(training=True), "'training' True is not an object"),
        ("classifier", lambda c: c["training"].update(tta="yes"), "with a true/false 'tta'"),
    ],
)
def test_a_malformed_model_config_is_one_error_line_before_any_model_is_built(tmp_path, kind, edit, message):
    """Issue 15-20: config.json values that crashed the loaders or built a model of many GB."""
    import resource

    from augmentor.classifiers.classifier import Classifier
    from augmentor.core.errors import UserError
    from augmentor.generative.generator import Generator

    run = _edited_run(tmp_path, kind, edit)
    loader = Classifier.from_run if kind == "classifier" else Generator.from_run
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(UserError) as refused:
        loader(run)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 << 10  # KiB: no layer was allocated
    text = str(refused.value)
    assert message in text and "config.json" in text and "\n" not in text and "retrain the run" in text
    if kind != "classifier":
        result = run_cli("sample", run, "--per-class", "1", "--out", tmp_path / "s")
        assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert not (tmp_path / "s").exists()


# --- declared values: the bounds table and the probe (hardening item 1) ----------------------------------

# The report's file: 209 bytes of YAML as A.save writes it, a GaussianBlur whose sigma is 10^6 with the kernel
# size left to be derived (blur_limit 0). Before the table it allocated 2.8 GB and ran past a minute, deaf to
# SIGTERM and SIGINT.
HUGE_SIGMA_YAML = """\
__version__: 2.0.8
transform:
  __class_fullname__: Compose
  is_check_shapes: true
  p: 1.0
  transforms:
  - __class_fullname__: GaussianBlur
    blur_limit: 0
    p: 1.0
    sigma_limit: [1000000, 1000000]
"""


def test_the_209_byte_huge_sigma_pipeline_is_refused_at_once_naming_the_field_and_cap(tmp_path):
    assert len(HUGE_SIGMA_YAML.encode()) == 209
    data, out, bad = good_folder(tmp_path), tmp_path / "out", tmp_path / "bad.yaml"
    bad.write_text(HUGE_SIGMA_YAML)
    started = time.perf_counter()
    result = run_cli("classic", data, "--pipeline", bad, "--per-image", "1", "--out", out)
    assert time.perf_counter() - started < 10
    assert_refused(
        result,
        "bad.yaml: GaussianBlur at transform.transforms[0] asks for sigma_limit [1000000, 1000000]; at most 100 px",
        "AUGMENTOR_MAX_PIPELINE_SIGMA",
        out=out,
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml", "data"]


@pytest.mark.parametrize(
    ("transform", "arguments", "mentions"),
    [
        ("ElasticTransform", {"alpha": 1e9, "sigma": 4}, ["alpha 1000000000.0", "AUGMENTOR_MAX_PIPELINE_SIDE"]),
        ("ElasticTransform", {"alpha": 20, "sigma": 1e6}, ["sigma 1000000.0", "AUGMENTOR_MAX_PIPELINE_SIGMA"]),
        ("Affine", {"scale": [1e4, 1e4]}, ["scale [10000.0, 10000.0]; at most 16×", "AUGMENTOR_MAX_PIPELINE_SCALE"]),
        ("Affine", {"scale": {"x": [1, 1], "y": [1e4, 1e4]}}, ["scale {", "AUGMENTOR_MAX_PIPELINE_SCALE"]),
        ("CoarseDropout", {"num_holes_range": [10**9, 10**9]}, ["num_holes_range", "AUGMENTOR_MAX_PIPELINE_COUNT"]),
        ("GridDistortion", {"num_steps": 10**7}, ["num_steps 10000000; at most 10000", "AUGMENTOR_MAX_PIPELINE_COUNT"]),
        ("GridDropout", {"holes_number_xy": [1000, 1000]}, ["1,000,000 cells", "AUGMENTOR_MAX_PIPELINE_COUNT"]),
        ("MedianBlur", {"blur_limit": [3, 100001]}, ["blur_limit [3, 100001]", "AUGMENTOR_MAX_PIPELINE_KERNEL"]),
        ("PiecewiseAffine", {"nb_rows": 200, "nb_cols": 200}, ["40,000 grid points", "AUGMENTOR_MAX_PIPELINE_COUNT"]),
        ("Pad", {"padding": 100_000}, ["padding 100000; at most 4096 px", "AUGMENTOR_MAX_PIPELINE_SIDE"]),
        # pydantic reads numbers written as strings: so does the table
        ("GaussianBlur", {"sigma_limit": ["1e6", "1e6"]}, ['sigma_limit ["1e6", "1e6"]', "_PIPELINE_SIGMA"]),
        # a kernel derived from a sigma the sigma cap lets through: int(50 * 3.5) * 2 + 1
        ("GaussianBlur", {"blur_limit": 0, "sigma_limit": 50}, ["a 351-px kernel", "AUGMENTOR_MAX_PIPELINE_KERNEL"]),
        # albumentations reads one step_factor s as [0, s]: a draw near 0 zooms millions of times
        ("ZoomBlur", {"max_factor": 1.5, "step_factor": 0.03}, ["zoom steps without end", "_PIPELINE_COUNT"]),
    ],
)
def test_a_pipeline_value_past_its_cap_is_refused_naming_field_value_and_variable(
    tmp_path, transform, arguments, mentions
):
    path = _pipeline_file(tmp_path / "p.json", transform, **arguments)
    started = time.perf_counter()
    result = run_cli("pipeline", "check", path)
    assert time.perf_counter() - started < 10
    assert_refused(result, f"p.json: {transform} at transform.transforms[0] asks for", *mentions)


def test_the_variable_lifts_a_pipeline_value_cap(tmp_path, monkeypatch):
    sigma = _pipeline_file(tmp_path / "sigma.json", "GaussianBlur", blur_limit=[3, 3], sigma_limit=[150, 150])
    holes = _pipeline_file(tmp_path / "holes.json", "CoarseDropout", num_holes_range=[20_000, 20_000])
    assert_refused(run_cli("pipeline", "check", sigma), "at most 100 px", "AUGMENTOR_MAX_PIPELINE_SIGMA")
    assert_refused(run_cli("pipeline", "check", holes), "at most 10000", "AUGMENTOR_MAX_PIPELINE_COUNT")
    monkeypatch.setenv("AUGMENTOR_MAX_PIPELINE_SIGMA", "200")
    monkeypatch.setenv("AUGMENTOR_MAX_PIPELINE_COUNT", "20K")
    for path in (sigma, holes):
        checked = run_cli("pipeline", "check", path)
        assert checked.exit_code == 0, checked.stderr


def test_every_preset_and_every_transforms_defaults_pass_the_caps(tmp_path):
    """The caps stop only what no real pipeline asks: each preset, written out as a user's file, passes the
    table and the probe, and so does every transform of albumentations' registry built with its defaults."""
    import warnings

    from albumentations.core.serialization import SERIALIZABLE_REGISTRY

    from augmentor.classic.albu import A
    from augmentor.classic.bounds import check_arguments
    from augmentor.classic.presets import PRESET_NAMES

    for preset in PRESET_NAMES:
        path = tmp_path / f"{preset}.yaml"
        path.write_text(run_cli("pipeline", "show", preset).stdout)
        checked = run_cli("pipeline", "check", path)
        assert checked.exit_code == 0, checked.stderr
    built = 0
    for name, cls in sorted(SERIALIZABLE_REGISTRY.items()):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                spec = A.to_dict(cls())["transform"]
            except Exception:  # noqa: BLE001 - needs arguments of its own (a crop's size, a container's list)
                continue
        check_arguments(spec, name, "transform", tmp_path / "defaults.yaml")
        built += 1
    assert built > 90


def test_a_pipeline_only_the_probe_can_catch_is_refused_with_nothing_written(tmp_path):
    """An Affine shear near 90° with fit_output: no argument past a cap (an angle is no size), yet the output
    image would be thousands of times larger. The probe's child runs out of its memory limit instead."""
    from augmentor.classic.pipelines import load_pipeline

    path = _pipeline_file(tmp_path / "shear.json", "Affine", shear=[89.9999, 89.9999], fit_output=True)
    assert load_pipeline(str(path), probe=False).source == str(path)  # the table and albumentations let it by
    data, out = good_folder(tmp_path), tmp_path / "out"
    started = time.perf_counter()
    result = run_cli("classic", data, "--pipeline", path, "--per-image", "1", "--out", out)
    assert time.perf_counter() - started < 10
    assert_refused(
        result,
        "shear.json: Affine at transform.transforms[0] needs more than 1.0 GiB of memory for one 64×64×3 image",
        "AUGMENTOR_MAX_PIPELINE_PROBE_MEMORY",
        out=out,
    )


def test_a_pipeline_slower_than_the_probes_time_limit_is_refused_and_its_child_killed(tmp_path, monkeypatch):
    """GlassBlur at 10,000 iterations is within the count cap, but takes 3-4 s on a 64×64 image (a 100 × 100
    GridElasticDeform grid took over 20 s with OpenCV 5.1, 0.6 s with the pinned 5.0): with the time limit
    lowered to 1 s the probe's child is killed and the file refused, at p=0.1 too (the probe tries every
    transform alone with p=1)."""
    monkeypatch.setenv("AUGMENTOR_MAX_PIPELINE_PROBE_SECONDS", "1")
    path = _pipeline_file(tmp_path / "slow.json", "GlassBlur", sigma=0.7, max_delta=4, iterations=10_000)
    document = json.loads(path.read_text())
    document["transform"]["transforms"][0]["p"] = 0.1
    path.write_text(json.dumps(document))
    data, out = good_folder(tmp_path), tmp_path / "out"
    started = time.perf_counter()
    result = run_cli("classic", data, "--pipeline", path, "--per-image", "1", "--out", out)
    assert time.perf_counter() - started < 10
    assert_refused(
        result,
        "slow.json: GlassBlur at transform.transforms[0] did not finish within 1 s on one 64×64×3 image",
        "AUGMENTOR_MAX_PIPELINE_PROBE_SECONDS",
        out=out,
    )
