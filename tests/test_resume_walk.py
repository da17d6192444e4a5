"""The printed resume command works for every flag a training can be started with (issue 25 item 6).

For each training command and each of its settings, the CLI is run for real with a non-default value; the
trainer is replaced by one that stops at once (as SIGTERM would), so the CLI prints its resume command; that
command is then run against the run's saved settings with the same checks a real resume makes. No training
happens: the walk covers the CLI's defaults, the printed command and the resume rule, in a second.
"""

from __future__ import annotations

import shlex
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
import typer

from augmentor.training.loop import TrainingInterrupted
from tests.conftest import run_cli

# Settings that are not the run's (where it is written, how the data is read, output format) or whose values
# are files (covered by the classifier's source tests).
NOT_SETTINGS = {
    "src",
    "out",
    "resume",
    "overwrite",
    "as_json",
    "data_dir",
    "old_data",
    "image_size",
    "channels",
    "skip_corrupt",
    "test",
    "init",
    "synthetic",
    "teacher",
    "help",
}
# Values for settings whose non-default value cannot be derived from their type.
CHOSEN = {
    "arch": "lenet5",
    "schedule": "cosine",
    "keep": "last",
    "randaugment": "rand-m9-n2",
    "compile_mode": "default",
    "ema": "0.5",
    "label_smoothing": "0.2",
    "val_fraction": "0.2",
    "synthetic_share": "0.25",
    "device": "cpu",
    "steps": "7",
    "epochs": "3",
    "latent_dim": "16",
    "lr": "0.001",
    "ada_target": "0.6",
    "gan_loss": "hinge",
    "augment": "light",
}
COMMANDS = [("classify", "train"), ("train", "dcgan"), ("train", "vae")]


def command_params(group: str, name: str) -> list[Any]:
    from cli import app

    root = typer.main.get_command(app)
    return list(root.commands[group].commands[name].params)  # type: ignore[attr-defined]


def other_value(param: Any) -> list[str]:
    """The flag spelt with a value other than its default, as a user would type it."""
    if param.is_flag:
        on, off = param.opts[0], (param.secondary_opts or [None])[0]
        return [off] if param.default and off else [on]
    if param.name in CHOSEN:
        return [param.opts[0], CHOSEN[param.name]]
    default = param.default
    if isinstance(default, bool) or not isinstance(default, int | float):
        raise AssertionError(f"--{param.name}: add a value other than its default ({default!r}) to CHOSEN")
    return [param.opts[0], str(default + 3 if isinstance(default, int) else default * 2)]


def settings_of(group: str, name: str) -> list[tuple[str, list[str]]]:
    return [
        (p.name, other_value(p))
        for p in command_params(group, name)
        if p.opts[0].startswith("--") and p.name not in NOT_SETTINGS
    ]


WALK = [(group, name, flag, argv) for group, name in COMMANDS for flag, argv in settings_of(group, name)]


class Interrupting:
    """Stands in for a trainer: a new run records its settings and stops at once; a resume is checked against
    them the way the real trainer checks it."""

    def __init__(self, group: str) -> None:
        self.group = group
        self.saved: dict[str, Any] | None = None
        self.sources: dict[str, Any] = {}

    def __call__(self, src: str, config: Any, out: Path, **kwargs: Any) -> Any:
        names = ("synthetic_share", "synthetic_weight", "temperature", "teacher_share", "val_fraction")
        sources = {k: kwargs.get(k) for k in names}
        if not kwargs.get("resume"):
            if self.group == "classify":
                self.saved, self.sources = asdict(config), sources
            else:
                self.saved = asdict(config.resolved(num_classes=3))
            raise TrainingInterrupted(1, 10, saved=True)
        assert self.saved is not None
        if self.group == "classify":
            from augmentor.classifiers.classifier import _resumed_sources
            from augmentor.classifiers.train import resumed_config

            resumed_config(config, self.saved, out)
            _resumed_sources(out, sources, self.sources)
        else:
            from augmentor.generative.train import resumed_config

            resumed_config(config, self.saved, out)
        raise TrainingInterrupted(10, 10, saved=True)  # checked: stop before any output is shown


def patch_trainer(monkeypatch, group: str) -> Interrupting:
    fake = Interrupting(group)
    module = "augmentor.classifiers.classifier" if group == "classify" else "augmentor.generative.train"
    monkeypatch.setattr(f"{module}.train_run", fake)
    return fake


@pytest.mark.parametrize(("group", "name", "flag", "argv"), WALK, ids=[f"{g}-{n}-{f}" for g, n, f, _ in WALK])
def test_the_printed_resume_command_resumes_a_run_started_with_any_setting(
    monkeypatch, tmp_path, group, name, flag, argv
):
    patch_trainer(monkeypatch, group)
    out = tmp_path / "run"
    started = run_cli(group, name, "data-folder", "--out", out, *argv)
    assert started.exit_code == 130, started.stderr
    printed = started.stderr.strip().splitlines()[-1].split("continue with: ", 1)[1]
    again = shlex.split(printed)
    assert again[:3] == ["augmentor", group, name] and again[-1] == "--resume"
    resumed = run_cli(*again[1:])
    assert resumed.exit_code == 130, f"{printed} was refused: {resumed.stderr}"  # 130: past the check


@pytest.mark.parametrize(("group", "name"), COMMANDS)
def test_a_setting_given_anew_that_differs_is_still_refused(monkeypatch, tmp_path, group, name):
    patch_trainer(monkeypatch, group)
    out = tmp_path / "run"
    started = run_cli(group, name, "data-folder", "--out", out, "--lr", "0.001")
    assert started.exit_code == 130, started.stderr
    same = run_cli(group, name, "data-folder", "--out", out, "--resume", "--lr", "0.001")
    assert same.exit_code == 130, same.stderr
    default = "0.003" if group == "classify" else "0.0002"  # the CLI's default, now typed: it differs
    other = run_cli(group, name, "data-folder", "--out", out, "--resume", "--lr", default)
    assert other.exit_code == 2 and "--lr" in other.stderr and "differs" in other.stderr, other.stderr
