"""CLI conventions, checked on every command the Typer app defines (walked, not hand-listed).

Each command's ``--help`` answers without torch, albumentations or numpy and shows every flag name
whole at 80 columns; each command refuses bad input with exit code 2 and one ``error:`` line; renamed
flags still take their old spelling (hidden) with a note.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys
import typing
from collections.abc import Iterator
from typing import Any

import pytest
import typer.main

import cli
from tests.conftest import REPO, make_shapes_folder, run_cli

HEAVY = ("torch", "albumentations", "cv2", "numpy", "PIL")


def _walk(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every group and command below ``command`` with its path of names (groups first)."""
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _walk(sub, (*path, name))


TREE = dict(_walk(typer.main.get_command(cli.app)))
COMMANDS = {path: command for path, command in TREE.items() if not hasattr(command, "commands")}


def _label(path: tuple[str, ...]) -> str:
    return " ".join(path) or "augmentor"


def _annotation(command: Any, name: str) -> Any:
    """The Python type of one parameter of a command's function (``Annotated`` stripped)."""
    hints = typing.get_type_hints(inspect.unwrap(command.callback), include_extras=True)
    return typing.get_args(hints[name])[0]


def _bad_value(command: Any, name: str) -> str:
    """A number where the flag takes one, else a path that does not exist."""
    annotation = _annotation(command, name)
    members = set(typing.get_args(annotation)) or {annotation}  # int | None → {int, None}
    return "2" if members & {int, float} else "missing/input"


def _args(command: Any, params: list[Any]) -> list[str]:
    """Command-line words that give each of ``params`` a bad value (arguments in order, then options)."""
    words: list[str] = []
    for param in params:
        value = _bad_value(command, param.name)
        words += [value] if param.param_type_name == "argument" else [param.opts[0], value]
    return words


def _assert_one_error_line(result: Any) -> None:
    context = f"exit={result.exit_code}\nstdout={result.stdout!r}\nstderr={result.stderr!r}"
    assert result.exit_code == 2, context
    assert result.stdout == "", context
    assert "Traceback" not in result.stderr, context
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), context


_PROBE = """
import contextlib, io, json, sys
import cli

pages = {}
for path in json.loads(sys.argv[1]):
    # Modules stay imported, so a heavy import is charged to the first command whose --help made it.
    before = {m for m in HEAVY if m in sys.modules}
    page = io.StringIO()
    with contextlib.redirect_stdout(page):
        try:
            cli.app([*path, "--help"], prog_name="augmentor")
        except SystemExit as stop:
            assert stop.code in (0, None), (path, stop.code)
    pages[" ".join(path)] = {"help": page.getvalue(), "heavy": sorted({m for m in HEAVY if m in sys.modules} - before)}
print(json.dumps(pages))
"""


@pytest.fixture(scope="module")
def help_pages() -> dict[str, dict[str, Any]]:
    """Every ``--help`` page at 80 columns, and the heavy modules each one imported, from one fresh interpreter."""
    paths = json.dumps([list(path) for path in TREE])
    env = {**os.environ, "COLUMNS": "80", "NO_ALBUMENTATIONS_UPDATE": "1"}
    script = f"HEAVY = {HEAVY!r}\n{_PROBE}"
    result = subprocess.run(
        [sys.executable, "-c", script, paths], cwd=REPO, env=env, capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout)


@pytest.mark.parametrize("path", list(TREE), ids=_label)
def test_help_imports_nothing_heavy_and_shows_whole_flag_names(path, help_pages):
    page = help_pages[" ".join(path)]
    assert "Usage" in page["help"]
    assert page["heavy"] == [], f"--help imported {page['heavy']}"
    for param in TREE[path].params:
        names = [n for n in (*param.opts, *param.secondary_opts) if n.startswith("--")]
        for name in names:
            shown = re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", page["help"]) is not None
            assert shown != param.hidden, f"{name} {'is hidden but shown' if param.hidden else 'is cut or missing'}"
    assert max(len(line) for line in page["help"].splitlines()) <= 80


@pytest.mark.parametrize("path", list(COMMANDS), ids=_label)
def test_bad_input_is_one_error_line_and_exit_2(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the missing paths are relative: nothing outside tmp_path can be touched
    command = COMMANDS[path]
    _assert_one_error_line(run_cli(*path, "--no-such-flag"))
    required = [p for p in command.params if p.required]
    if required:
        _assert_one_error_line(run_cli(*path, *_args(command, required)))
    assert list(tmp_path.iterdir()) == [], "a refused command wrote something"


def test_unknown_command_is_one_error_line():
    _assert_one_error_line(run_cli("no-such-command"))


HIDDEN = [
    (path, param)
    for path, command in COMMANDS.items()
    for param in command.params
    if getattr(param, "hidden", False) and param.param_type_name == "option"
]
# A hidden flag is an old spelling that still works, or one whose meaning changed ("Replaced by …"): refused.
RENAMED = [(path, param) for path, param in HIDDEN if not (param.help or "").startswith("Replaced by")]
REPLACED = [(path, param) for path, param in HIDDEN if (param.help or "").startswith("Replaced by")]


@pytest.mark.parametrize("path, param", RENAMED, ids=[f"{_label(path)} {param.opts[0]}" for path, param in RENAMED])
def test_old_spellings_still_work_with_a_note(path, param, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    command = COMMANDS[path]
    required = [p for p in command.params if p.required]
    result = run_cli(*path, *_args(command, required), *_args(command, [param]))
    note, *rest = result.stderr.splitlines()
    assert re.fullmatch(rf"note: {re.escape(param.opts[0])} is now --[\w-]+; the old spelling goes .*", note), note
    # The old spelling reached the command (the note), which then refused the missing input as usual.
    assert result.exit_code == 2 and len(rest) == 1 and rest[0].startswith("error: "), result.stderr


@pytest.mark.parametrize("path, param", REPLACED, ids=[f"{_label(path)} {param.opts[0]}" for path, param in REPLACED])
def test_replaced_flags_are_refused_with_a_pointer(path, param, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    command = COMMANDS[path]
    required = [p for p in command.params if p.required]
    result = run_cli(*path, *_args(command, required), *_args(command, [param]))
    _assert_one_error_line(result)
    replacement = param.help.removeprefix("Replaced by ").rstrip(".")
    assert f"{param.opts[0]} was replaced by {replacement}" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_old_and_new_spelling_together_are_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run_cli("gain", "missing/input", "--out", "out", "--seeds", "2", "--draws", "5")
    _assert_one_error_line(result)
    assert "--seeds is the old spelling of --draws" in result.stderr


def test_old_data_spelling_maps_onto_data_dir(tmp_path, monkeypatch):
    import augmentor.data.jobs as jobs
    from augmentor.core.errors import UserError

    seen = {}

    def info(src, options):
        seen["options"] = options
        raise UserError("read options seen")

    monkeypatch.setattr(jobs, "info", info)
    assert run_cli("data", "info", "fashion-mnist", "--data", tmp_path).exit_code == 2
    assert seen["options"].data_dir == tmp_path


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
    with pytest.raises(RuntimeError):  # after the subcommand too, where a surprised user types it
        run_cli("data", "info", tmp_path, "--debug")
    assert run_cli("data", "info", tmp_path).exit_code == 1  # and it does not stick


def test_every_flag_has_a_spelling_torchrun_passes_through():
    # torchrun's argparse rejects an ambiguous abbreviation of its own options (`--n`: --nnodes,
    # --nproc-per-node, ...) even after `-m augmentor`: such a flag needs another name.
    from torch.distributed.run import get_args_parser

    theirs = {name for action in get_args_parser()._actions for name in action.option_strings}

    def passes(name: str) -> bool:
        return name in theirs or sum(option.startswith(name) for option in theirs) < 2

    for path, command in TREE.items():
        for param in command.params:
            names = [*getattr(param, "opts", []), *getattr(param, "secondary_opts", [])]
            long_names = [name for name in names if name.startswith("--")]
            if long_names and not any(passes(name) for name in long_names):
                pytest.fail(f"augmentor {' '.join(path)} {long_names[0]}: torchrun refuses it; add an unambiguous name")


def test_progress_on_a_log_is_a_plain_line_now_and_then(capsys, monkeypatch):
    from augmentor.core import console

    with console.progress("short job", 3) as advance:  # under the interval: silent, as tests and CI want
        advance(3)
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(console, "LOG_EVERY_SECONDS", 0.0)
    with console.progress("training fast", 4) as advance:
        for _ in range(4):
            advance(1)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("training fast: 1/4 (25%), 0:00 elapsed, ~")
    assert lines[-1].startswith("training fast: 4/4 (100%)") and lines[-1].endswith("done")


def test_progress_on_a_log_speaks_while_a_long_step_runs(capsys, monkeypatch):
    """A step longer than the interval (a gain study's whole training) still gets its lines: a log
    that stays silent for minutes reads as a hung job."""
    import time

    from augmentor.core import console

    monkeypatch.setattr(console, "LOG_EVERY_SECONDS", 0.2)  # the heartbeat then wakes once a second
    with console.progress("one long step", 2) as advance:
        time.sleep(2.6)  # no step ends meanwhile
        advance(2)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) >= 3, lines
    assert all(line.startswith("one long step: 0/2 (0%), 0:0") for line in lines[:-1]), lines
    assert lines[-1].startswith("one long step: 2/2 (100%)") and lines[-1].endswith("done")


def test_tables_in_a_pipe_or_log_keep_their_full_width(tmp_path):
    """Issue 12 audit: result tables written to a file were cut to 80 columns, so two long arm or class
    names ended alike ("classi…")."""
    folder = make_shapes_folder(tmp_path / "d", per_class=3)
    long_name = "a_class_whose_name_is_longer_than_a_terminal_of_eighty_columns_" + "x" * 30
    (folder / "disk").rename(folder / long_name)
    result = run_cli("data", "info", folder)
    assert result.exit_code == 0 and long_name in result.stdout and "…" not in result.stdout


def test_quiet_turns_progress_off_and_keeps_warnings(capsys, monkeypatch):
    from augmentor.core import console

    monkeypatch.setattr(console, "LOG_EVERY_SECONDS", 0.0)  # every advance would print a line
    for quiet in (False, True):
        console.set_quiet(quiet)
        with console.progress("some work", 2) as advance:
            advance(1)
            advance(1)
        console.warn("still said")
        err = capsys.readouterr().err
        assert ("some work" in err) is not quiet and "still said" in err
    console.set_quiet(False)


def test_quiet_is_a_root_flag_also_after_the_subcommand(tmp_path):
    from augmentor.core import console

    folder = make_shapes_folder(tmp_path / "d", per_class=3)
    assert run_cli("data", "info", folder, "--quiet").exit_code == 0
    assert console._quiet["on"] is True
    assert run_cli("data", "info", folder).exit_code == 0 and console._quiet["on"] is False
