"""CLI conventions: fast --help without torch or albumentations, --version, python -m augmentor."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO, run_cli

COMMANDS = [
    [],
    ["data"],
    ["data", "info"],
    ["data", "export"],
    ["data", "subset"],
    ["classic"],
    ["pipeline"],
    ["pipeline", "show"],
    ["pipeline", "check"],
    ["classify"],
    ["classify", "archs"],
    ["classify", "train"],
    ["classify", "eval"],
    ["inspect", "filters"],
    ["inspect", "activations"],
    ["gain"],
    ["train"],
    ["train", "dcgan"],
    ["train", "vae"],
    ["sample"],
    ["expand"],
    ["score"],
    ["interpolate"],
    ["directions"],
    ["edit"],
    ["project"],
]

_PROBE = """
import sys
sys.argv = ["augmentor", *{args!r}, "--help"]
import cli
try:
    cli.app(prog_name="augmentor")
except SystemExit as exit:
    assert exit.code == 0, exit.code
heavy = sorted(m for m in ("torch", "albumentations", "cv2", "numpy", "PIL") if m in sys.modules)
print("HEAVY:" + ",".join(heavy))
"""


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a) or "root")
def test_help_imports_nothing_heavy(args):
    result = subprocess.run(
        [sys.executable, "-c", _PROBE.format(args=args)], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert "Usage" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "HEAVY:"


def test_version_and_module_entry_point():
    result = subprocess.run(
        [sys.executable, "-m", "augmentor", "--version"], cwd=REPO, capture_output=True, text=True, check=True
    )
    from augmentor import __version__

    assert result.stdout.strip() == f"augmentor {__version__}"
    assert run_cli("--version").stdout.strip() == f"augmentor {__version__}"


def test_unexpected_errors_exit_1_and_debug_shows_traceback(tmp_path, monkeypatch):
    import augmentor.data.jobs as jobs

    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(jobs, "info", boom)
    result = run_cli("data", "info", tmp_path)
    assert result.exit_code == 1 and "RuntimeError: boom" in result.stderr and "--debug" in result.stderr
    with pytest.raises(RuntimeError):
        run_cli("--debug", "data", "info", tmp_path)
