"""No output can replace what a command reads or what a live training writes (hardening round 2, item 4).

Each case runs the real CLI on a copy of a shipped run: the refusal is exit 2 with one line, and the run
is byte for byte what it was.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO, make_shapes_folder, run_cli, write_png

SHIPPED = REPO / "weights" / "fashion-mnist"


def digest(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` and its sha256: what "nothing destroyed" compares."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def vae_run(tmp_path: Path) -> Path:
    run = tmp_path / "vae"
    shutil.copytree(SHIPPED / "vae", run)
    return run


@pytest.fixture
def classifier_run(tmp_path: Path) -> Path:
    run = tmp_path / "classifier"
    shutil.copytree(SHIPPED / "classifier", run)
    return run


def assert_refused_intact(result, run: Path, before: dict[str, str], *mentions: str) -> None:
    context = f"exit={result.exit_code}\nstderr={result.stderr!r}"
    assert result.exit_code == 2, context
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), context
    for text in mentions:
        assert text in result.stderr, context
    assert digest(run) == before, "the run was changed"


def test_sample_into_its_own_run_is_refused(vae_run):
    before = digest(vae_run)
    result = run_cli("sample", vae_run, "--count", "4", "--out", vae_run, "--overwrite")
    assert_refused_intact(result, vae_run, before, "overlaps", str(vae_run))
    inside = run_cli("sample", vae_run, "--count", "4", "--out", vae_run / "more", "--overwrite")
    assert_refused_intact(inside, vae_run, before, "overlaps")


def test_a_grid_onto_the_run_weights_is_refused(vae_run, tmp_path):
    before = digest(vae_run)
    grid = vae_run / "model.safetensors"
    result = run_cli("sample", vae_run, "--count", "4", "--out", tmp_path / "s", "--grid", grid, "--overwrite")
    assert_refused_intact(result, vae_run, before, "overlaps", "model.safetensors")
    assert not (tmp_path / "s").exists()


def test_predictions_onto_the_run_config_are_refused(classifier_run, tmp_path):
    image = tmp_path / "one.png"
    write_png(image, np.zeros((28, 28, 1), np.uint8))
    before = digest(classifier_run)
    out = classifier_run / "config.json"
    result = run_cli("classify", "predict", classifier_run, image, "--out", out, "--overwrite")
    assert_refused_intact(result, classifier_run, before, "overlaps", "config.json")
    # The image read is an input too.
    again = run_cli("classify", "predict", classifier_run, image, "--out", tmp_path / "one.png.json")
    assert again.exit_code == 0, again.stderr


def test_an_output_a_live_training_holds_is_refused_even_with_overwrite(tmp_path):
    """A run folder claimed by a training (its flock) is nobody else's output, --overwrite or not."""
    data = make_shapes_folder(tmp_path / "data", per_class=3)
    held = tmp_path / "training"
    held.mkdir()
    (held / "state.json").write_text("{}")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl,os,sys,time; h=os.open(sys.argv[1],os.O_RDONLY); "
            "fcntl.flock(h,fcntl.LOCK_EX); print('held',flush=True); time.sleep(60)",
            str(held),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        result = run_cli("classic", data, "--per-image", "1", "--out", held, "--overwrite")
        assert result.exit_code == 2 and "a training process is writing now" in result.stderr, result.stderr
        assert sorted(p.name for p in held.iterdir()) == ["state.json"]
        inside = run_cli("classic", data, "--per-image", "1", "--out", held / "copies")
        assert inside.exit_code == 2 and "is inside the run folder" in inside.stderr, inside.stderr
    finally:
        holder.kill()
        holder.wait()
    # The training ended: --overwrite replaces its folder.
    freed = run_cli("classic", data, "--per-image", "1", "--out", held, "--overwrite")
    assert freed.exit_code == 0, freed.stderr


def test_a_symlinked_out_is_replaced_through_the_link_again_and_again(tmp_path):
    data = make_shapes_folder(tmp_path / "data", per_class=3)
    target = tmp_path / "disk" / "copies"
    target.mkdir(parents=True)
    link = tmp_path / "copies"
    link.symlink_to(target, target_is_directory=True)
    for _ in range(3):
        result = run_cli("classic", data, "--per-image", "1", "--out", link, "--overwrite")
        assert result.exit_code == 0, result.stderr
        assert link.is_symlink() and os.path.realpath(link) == str(target.resolve())
        assert (target / "manifest.jsonl").is_file()
        leftovers = [p.name for p in (*tmp_path.iterdir(), *target.parent.iterdir()) if ".partial-" in p.name]
        assert leftovers == []


def test_a_stale_staging_entry_is_never_taken_for_a_live_writer(tmp_path):
    """A previous output set aside by an interrupted publish (named by a pid that is alive now: ours) and a
    link left by an older version do not block --out."""
    data = make_shapes_folder(tmp_path / "data", per_class=3)
    out = tmp_path / "copies"
    (tmp_path / f".copies.partial-{os.getppid()}-old").mkdir()
    dead = subprocess.Popen(["true"])
    dead.wait()
    (tmp_path / f".copies.partial-{dead.pid}").symlink_to(tmp_path / "nowhere")
    result = run_cli("classic", data, "--per-image", "1", "--out", out)
    assert result.exit_code == 0, result.stderr
    assert not (tmp_path / f".copies.partial-{dead.pid}").is_symlink()  # removed as stale
