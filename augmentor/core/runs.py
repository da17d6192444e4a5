"""Run folders: ``config.json`` + ``model.safetensors`` + ``metrics.jsonl`` + plots.

Training output and shipped weights share this format. Nothing here unpickles: weights are
safetensors, everything else is JSON. Nothing here knows a model either: the capability that writes a run
kind (classifiers, generative) registers the check of its model config with ``register_run_kind``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from augmentor import __version__
from augmentor.core import jsonio
from augmentor.core.bounded import read_json, read_jsonl
from augmentor.core.errors import UserError
from augmentor.core.limits import IMAGE_SIDE, MODEL_WIDTH, PARAMETERS, Cap
from augmentor.core.outdir import CLAIMED_BY_THIS_PROCESS, check_writable, staged_output

RUN_FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
METRICS_NAME = "metrics.jsonl"
# Checkpoint files of pickle-based formats: refused by name, never opened (unpickling runs code).
PICKLE_SUFFIXES = frozenset({".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin"})

ModelCheck = Callable[[dict[str, Any], Path], None]  # (config, config.json's path) → raises UserError
Range = tuple[int, int | Cap]  # a model argument's lowest and highest value (a cap: the variable's)
# Run kind → the check of its model config. Core reads every run folder but knows no model: the classifiers
# and generative packages register their kinds when imported.
_MODEL_CHECKS: dict[str, ModelCheck] = {}


def register_run_kind(kind: str, check: ModelCheck) -> None:
    """Let ``read_run_config`` accept runs of ``kind``: ``check(config, where)`` refuses a config whose model
    is malformed or too large, before any is built (after ``check_run_fields``'s model-free checks)."""
    _MODEL_CHECKS[kind] = check


def never_checkpointed(folder: Path) -> bool:
    """A training run stopped before its first checkpoint (killed, or non-finite at once): a folder holding
    its ``config.json`` and nothing else. Neither resumable nor worth keeping: a new run may reuse it."""
    if not folder.is_dir():
        return False
    entries = list(folder.iterdir())
    leftovers = all(e.name == CONFIG_NAME or (e.is_dir() and not any(e.iterdir())) for e in entries)
    return bool(entries) and leftovers and _is_training_record(folder / CONFIG_NAME)


def _is_training_record(path: Path) -> bool:
    """``path`` is the config a training run writes before its first step (not a user's own config.json,
    which a new run must never replace without --overwrite)."""
    try:
        record = read_json(path, "a run config")
    except UserError:
        return False
    return isinstance(record, dict) and {"format_version", "kind", "training", "dataset"} <= record.keys()


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
    check_writable(folder / CONFIG_NAME)  # a read-only place, /proc or a file: one line, before any work
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
        claimed = Path(os.path.realpath(folder))
        CLAIMED_BY_THIS_PROCESS.add(claimed)  # this process's own writers may write into it
        try:
            yield
        except BaseException:
            if created and folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()  # refused before anything was written: leave no empty folder behind
            raise
        finally:
            CLAIMED_BY_THIS_PROCESS.discard(claimed)
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
        (staging / METRICS_NAME).write_text("".join(jsonio.dumps(m) + "\n" for m in metrics))
        for name, data in (files or {}).items():
            (staging / name).write_bytes(data)
        (staging / CONFIG_NAME).write_text(jsonio.dumps(document, indent=2) + "\n")
    return out


def read_run_config(run: Path, kind: str | None = None) -> dict[str, Any]:
    """The run's config, after checking that ``run`` is a run folder (of ``kind`` when given)."""
    if run.is_file() and run.suffix.lower() in PICKLE_SUFFIXES:
        raise UserError(
            f"{run}: pickled checkpoints are refused (loading them can run arbitrary code); "
            "give a run folder with config.json and model.safetensors"
        )
    if not run.is_dir() or not (run / CONFIG_NAME).is_file() or not (run / WEIGHTS_NAME).is_file():
        raise UserError(f"{run}: not a run folder (expected {CONFIG_NAME} and {WEIGHTS_NAME} inside)")
    try:
        config = read_json(run / CONFIG_NAME, "a run config")
    except UserError as exc:
        raise UserError(f"{exc.message}; retrain the run") from None
    if not isinstance(config, dict):
        raise UserError(f"{run / CONFIG_NAME}: holds a {type(config).__name__}, not a run config; retrain the run")
    version = config.get("format_version")
    if version != RUN_FORMAT_VERSION:
        raise UserError(
            f"{run}: run format version {show_value(version)} is not supported (expected {RUN_FORMAT_VERSION})"
        )
    # Another kind than the one asked for is named as such first: its capability may not be imported (registered).
    if kind is not None and isinstance(config.get("kind"), str) and config["kind"] != kind:
        raise UserError(f"{run}: is a {show_value(config['kind'])} run, a {kind!r} run is needed here")
    known = sorted(_MODEL_CHECKS)  # one order, whichever capability registered first
    if not isinstance(config.get("kind"), str) or config["kind"] not in known:
        raise UserError(
            f"{run / CONFIG_NAME}: 'kind' {show_value(config.get('kind'))} is not one of {', '.join(known)}; "
            "retrain the run"
        )
    if "status" in config:  # a diverged run keeps its last good weights but records no classes
        status = config["status"]
        status = (
            status if isinstance(status, str) and status.isprintable() and len(status) <= 80 else show_value(status)
        )
        raise UserError(f"{run}: training {status}; train it again (with a lower --lr)")
    check_run_fields(config, run / CONFIG_NAME)
    return config


def check_run_fields(config: dict[str, Any], where: Path) -> None:
    """Refuse a config whose fields would write outside ``--out`` (class names become folder names) or
    allocate without bound (image shape): run folders arrive from other people, as datasets do."""
    from augmentor.core.names import check_class_name

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
    if not isinstance(config["model_args"], dict):
        raise UserError(f"{where}: 'model_args' must be an object; retrain the run")
    _MODEL_CHECKS[config["kind"]](config, where)


def check_model_args(
    config: dict[str, Any], where: Path, expected: list[str], ranges: dict[str, Range], matches: dict[str, int]
) -> None:
    """``model_args`` holds exactly the ``expected`` keys (the model constructor's), each a whole number in its
    range (``ranges``, else 0..``MODEL_WIDTH``) and equal to the value ``matches`` gives it, if any (what
    ``image_shape`` and ``class_names`` imply)."""
    arguments = config["model_args"]
    unknown = sorted(set(arguments) - set(expected), key=str)
    if unknown:
        raise UserError(
            f"{where}: model_args has no use for {show_value(unknown[0])} (known: {', '.join(expected)}); "
            "retrain the run"
        )
    for key in expected:
        if key not in arguments:
            raise UserError(f"{where}: model_args has no {key!r}; it is not a complete run config (retrain the run)")
        value = arguments[key]
        low, high = ranges.get(key, (0, MODEL_WIDTH))
        top = high if isinstance(high, int) else high.value()
        if not (isinstance(value, int) and not isinstance(value, bool) and low <= value <= top):
            lift = "" if isinstance(high, int) else f" (or {high.lift()})"
            raise UserError(
                f"{where}: model_args {key} {show_value(value)} is outside {low}..{top}; retrain the run{lift}"
            )
        if key in matches and value != matches[key]:
            raise UserError(
                f"{where}: model_args {key} {value} disagrees with the run's image_shape/class_names "
                f"({matches[key]}); retrain the run"
            )


def check_model_size(build: Callable[[], dict[str, Any]], where: Path) -> None:
    """Build the run's modules (``build``: name → module) on the meta device, so no memory is allocated
    whatever the arguments ask, and refuse a model of more than ``PARAMETERS`` parameters."""
    import torch

    try:
        with torch.device("meta"), _skip_normal():
            modules = build()
    except (UserError, TypeError, ValueError, RuntimeError) as exc:
        text = " ".join(str(exc).split())[:200]
        raise UserError(f"{where}: its model cannot be built ({text}); retrain the run") from None
    count = sum(p.numel() for module in modules.values() for p in module.parameters())
    if count > PARAMETERS.value():
        raise UserError(
            f"{where}: its model has {count:,} parameters, more than {PARAMETERS.value():,}; retrain the run "
            f"smaller (or {PARAMETERS.lift()})"
        )


def _skip_normal() -> Any:
    """A torch function mode that leaves ``normal_`` and ``torch.nn.init`` undone: on the meta device there are
    no values to fill, and ``normal_``'s first call there imports ``torch._dynamo`` (seconds added to every
    command that loads a run: README, Classifiers and training)."""
    import torch
    from torch.overrides import TorchFunctionMode

    class SkipNormal(TorchFunctionMode):
        def __torch_function__(
            self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
        ) -> Any:
            if func is torch.Tensor.normal_ or getattr(func, "__module__", None) == "torch.nn.init":
                return args[0] if args else (kwargs or {}).get("tensor")
            return func(*args, **(kwargs or {}))

    return SkipNormal()


def show_value(value: Any, limit: int = 40) -> str:
    """``repr`` cut short, for a value from a file in a one-line message."""
    try:
        text = repr(value)
    except ValueError:  # an int too long to print
        text = f"<a {type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def read_weights(run: Path) -> dict[str, Any]:
    """The run's tensors (safetensors: no code runs while loading)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(run / WEIGHTS_NAME))
    except (SafetensorError, OSError) as exc:
        raise UserError(f"{run / WEIGHTS_NAME}: unreadable weights ({exc})") from None
    refuse_non_finite(tensors, run / WEIGHTS_NAME, "retrain the run or restore it from a good copy")
    return tensors


def refuse_non_finite(tensors: dict[str, Any], path: Path, fix: str) -> None:
    """Refuse tensors holding NaN or an infinity, naming the first: NaN weights sample all-black images and
    predict with probability NaN, silently, so they are stopped where they are read."""
    import torch

    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            what = "NaN" if bool(torch.isnan(tensor).any()) else "an infinity"
            raise UserError(f"{path}: tensor {name!r} holds {what}; {fix}")


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
    return read_jsonl(path, METRICS_NAME)
