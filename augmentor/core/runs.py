"""Run folders: ``config.json`` + ``model.safetensors`` + ``metrics.jsonl`` + plots.

Training output and shipped weights share this format. Nothing here unpickles: weights are
safetensors, everything else is JSON.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from augmentor import __version__
from augmentor.core.errors import UserError
from augmentor.core.limits import IMAGE_SIDE, MODEL_WIDTH
from augmentor.core.outdir import staged_output

RUN_FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
METRICS_NAME = "metrics.jsonl"
_PICKLE_SUFFIXES = {".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin"}


def never_checkpointed(folder: Path) -> bool:
    """A training run stopped before its first checkpoint (killed, or non-finite at once): a folder holding
    its ``config.json`` and nothing else. Neither resumable nor worth keeping: a new run may reuse it."""
    if not folder.is_dir():
        return False
    entries = list(folder.iterdir())
    return bool(entries) and all(e.name == CONFIG_NAME or (e.is_dir() and not any(e.iterdir())) for e in entries)


@contextlib.contextmanager
def claim_run_folder(folder: Path) -> Iterator[None]:
    """Hold ``folder`` for one training process: a second run into (or resume of) the same folder is refused
    at once instead of mixing its config with the other's weights. The claim is a lock on the folder
    itself (flock), so a killed run leaves no stale lock behind."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no claim, as before
        yield
        return
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    handle = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(
                f"{folder}: another training process is writing this run folder; wait for it to finish "
                "or give another --out"
            ) from None
        try:
            yield
        except BaseException:
            if created and folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()  # refused before anything was written: leave no empty folder behind
            raise
    finally:
        os.close(handle)


def write_run(
    out: Path,
    *,
    config: dict[str, Any],
    state_dict: dict[str, Any],
    metrics: list[dict[str, Any]],
    files: dict[str, bytes] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a complete run folder atomically (it appears whole or not at all)."""
    from safetensors.torch import save_file

    document = {"format_version": RUN_FORMAT_VERSION, "augmentor_version": __version__, **config}
    with staged_output(out, overwrite) as staging:
        tensors = {k: v.detach().to("cpu").contiguous() for k, v in state_dict.items()}
        save_file(tensors, str(staging / WEIGHTS_NAME), metadata={"format": "pt"})
        (staging / METRICS_NAME).write_text("".join(json.dumps(m) + "\n" for m in metrics))
        for name, data in (files or {}).items():
            (staging / name).write_bytes(data)
        (staging / CONFIG_NAME).write_text(json.dumps(document, indent=2) + "\n")
    return out


def read_run_config(run: Path, kind: str | None = None) -> dict[str, Any]:
    """The run's config, after checking that ``run`` is a run folder (of ``kind`` when given)."""
    if run.is_file() and run.suffix.lower() in _PICKLE_SUFFIXES:
        raise UserError(
            f"{run}: pickled checkpoints are refused (loading them can run arbitrary code); "
            "give a run folder with config.json and model.safetensors"
        )
    if not run.is_dir() or not (run / CONFIG_NAME).is_file() or not (run / WEIGHTS_NAME).is_file():
        raise UserError(f"{run}: not a run folder (expected {CONFIG_NAME} and {WEIGHTS_NAME} inside)")
    try:
        config = json.loads((run / CONFIG_NAME).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{run / CONFIG_NAME}: not valid JSON ({exc})") from None
    except RecursionError:
        raise UserError(f"{run / CONFIG_NAME}: nested too deeply to be a run config; retrain the run") from None
    if not isinstance(config, dict):
        raise UserError(f"{run / CONFIG_NAME}: holds a {type(config).__name__}, not a run config; retrain the run")
    version = config.get("format_version")
    if version != RUN_FORMAT_VERSION:
        raise UserError(f"{run}: run format version {version!r} is not supported (expected {RUN_FORMAT_VERSION})")
    if kind is not None and config.get("kind") != kind:
        raise UserError(f"{run}: is a {config.get('kind')!r} run, a {kind!r} run is needed here")
    if "status" in config:  # a diverged run keeps its last good weights but records no classes
        raise UserError(f"{run}: training {config['status']}; train it again (with a lower --lr)")
    check_run_fields(config, run / CONFIG_NAME)
    return config


def check_run_fields(config: dict[str, Any], where: Path) -> None:
    """Refuse a config whose fields would write outside ``--out`` (class names become folder names) or
    allocate without bound (image shape): run folders arrive from other people, as datasets do."""
    from augmentor.data.imageset import check_class_name

    missing = [key for key in ("class_names", "image_shape", "model_args") if key not in config]
    if missing:
        raise UserError(f"{where}: has no {missing[0]!r}; it is not a complete run config (retrain the run)")
    names = config["class_names"]
    if not isinstance(names, list) or not names:
        raise UserError(f"{where}: 'class_names' must be a non-empty list of names; retrain the run")
    for name in names:
        check_class_name(name, str(where))
    if len(set(names)) != len(names):
        raise UserError(f"{where}: 'class_names' lists a class twice; retrain the run")
    shape = config["image_shape"]
    plausible = (
        isinstance(shape, list)
        and len(shape) == 3
        and all(isinstance(v, int) and not isinstance(v, bool) for v in shape)
        and shape[0] in (1, 3)
        and all(1 <= side <= IMAGE_SIDE.value() for side in shape[1:])
    )
    if not plausible:
        raise UserError(
            f"{where}: 'image_shape' {shape!r} is not [channels 1 or 3, height, width ≤ {IMAGE_SIDE.value()}]; "
            f"retrain the run (or {IMAGE_SIDE.lift()})"
        )
    arguments = config["model_args"]
    if not isinstance(arguments, dict):
        raise UserError(f"{where}: 'model_args' must be an object; retrain the run")
    for key in ("width", "latent_dim"):
        value = arguments.get(key)
        if value is not None and not (isinstance(value, int) and 1 <= value <= MODEL_WIDTH.value()):
            raise UserError(
                f"{where}: model_args {key} {value!r} is outside 1..{MODEL_WIDTH.value()}; retrain the run "
                f"(or {MODEL_WIDTH.lift()})"
            )


def read_weights(run: Path) -> dict[str, Any]:
    """The run's tensors (safetensors: no code runs while loading)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(run / WEIGHTS_NAME))
    except (SafetensorError, OSError) as exc:
        raise UserError(f"{run / WEIGHTS_NAME}: unreadable weights ({exc})") from None


def load_matching(module: Any, state: dict[str, Any], source: str) -> None:
    """Load ``state`` into ``module`` strictly, naming any missing, unexpected or mis-shaped tensors."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or wrong:
        parts = []
        if wrong:
            shapes = ", ".join(f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in wrong[:4])
            parts.append(f"shape mismatch: {shapes}")
        if missing:
            parts.append(f"missing: {', '.join(missing[:4])}" + (" …" if len(missing) > 4 else ""))
        if unexpected:
            parts.append(f"unexpected: {', '.join(unexpected[:4])}" + (" …" if len(unexpected) > 4 else ""))
        raise UserError(f"{source}: weights do not match the model ({'; '.join(parts)})")
    module.load_state_dict(state)


def read_metrics(run: Path) -> list[dict[str, Any]]:
    """The run's metrics lines."""
    path = run / METRICS_NAME
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
