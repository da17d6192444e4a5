"""The ``augmentor`` command line: parse flags, build a config, call one library function, print.

Only typer and the standard library are imported at module level, so ``--help`` and
``--version`` answer without loading torch, albumentations or numpy.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shlex
import signal
import sys
from collections.abc import Callable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from typer.core import TyperGroup

from augmentor import __version__
from augmentor.core import jsonio

# CLI-local state set by the root callback (the library itself takes everything as arguments).
_state: dict[str, Any] = {"debug": False, "threads": None}
_Command = TypeVar("_Command", bound=Callable[..., Any])
_T = TypeVar("_T")
# Click's UsageError reached through a public name: typer vendors click since 0.16 and used plain click before.
_UsageError: type[Exception] = typer.BadParameter.__mro__[1]


def reports_errors(command: _Command) -> _Command:
    """Turn library errors into the project's exit codes: 2 for bad input, 1 for anything else."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from augmentor.core.threads import in_charge

        try:
            # The command's torch threads: its share of the cores, set at its first torch work (core.threads)
            with in_charge(_state["threads"]):
                return command(*args, **kwargs)
        except Exception as exc:
            from augmentor.core.errors import UserError

            if _state["debug"] or type(exc).__module__.split(".")[0] in ("typer", "click"):
                raise
            from augmentor.core.console import rank_error, silenced
            from augmentor.distributed.context import launched, said_by_rank_zero, tell_error

            line = f"error: {exc.message}" if isinstance(exc, UserError) else f"error: {type(exc).__name__}: {exc}"
            if silenced():  # torchrun, rank > 0: rank 0 prints an error every rank shares
                if not getattr(exc, "every_rank", False) and not said_by_rank_zero(line):
                    rank_error(line)
                raise typer.Exit(2 if isinstance(exc, UserError) else 1) from None
            # Under torchrun (its variables: importing torch here could fail, e.g. under a memory cap), a bad
            # input every rank found need not be printed by the others too.
            if launched():
                tell_error(line)
            if isinstance(exc, UserError):
                typer.echo(f"error: {exc.message}", err=True)
                for line in exc.details:
                    typer.echo(f"  {line}", err=True)
                raise typer.Exit(2) from None
            typer.echo(f"error: {type(exc).__name__}: {exc} (rerun with --debug for a traceback)", err=True)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


@contextlib.contextmanager
def _one_line_usage_errors() -> Iterator[None]:
    """Print a usage error as one ``error:`` line naming the command's --help, and exit 2."""
    try:
        yield
    except _UsageError as error:
        if type(error).__name__ == "NoArgsIsHelpError":  # a bare group (`augmentor data`) shows its help
            raise
        context = getattr(error, "ctx", None)
        hint = f" (see {context.command_path} --help)" if context is not None else ""
        message = " ".join(error.format_message().split())  # type: ignore[attr-defined]
        typer.echo(f"error: {message}{hint}", err=True)
        raise typer.Exit(2) from None


class _RootGroup(TyperGroup):
    """The root command: usage errors are one line like every other error, not a usage block."""

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        """Parse the root options (a bad one is a one-line error); ``--debug``, ``--quiet``,
        ``--follow-symlinks`` and ``--threads N`` may come anywhere before a ``--``, as users type them after
        the subcommand."""
        args = list(args)
        end = args.index("--") if "--" in args else len(args)
        for flag in ("--debug", "--quiet", "--follow-symlinks"):  # root flags, also after the subcommand
            if flag in args[:end]:
                args = [flag, *(a for a in args[:end] if a != flag), *args[end:]]
                end = args.index("--") if "--" in args else len(args)
        i, moved = 0, []  # --threads N or --threads=N (the last one given) to the front too
        while i < end:
            width = min(2, end - i) if args[i] == "--threads" else int(args[i].startswith("--threads="))
            if width:
                moved, args, end = args[i : i + width], [*args[:i], *args[i + width :]], end - width
            else:
                i += 1
        args = [*moved, *args]
        with _one_line_usage_errors():
            return super().make_context(info_name, args, parent=parent, **extra)

    def invoke(self, ctx: Any) -> Any:
        """Run the subcommand (its parse errors are one-line errors too)."""
        with _one_line_usage_errors():
            return super().invoke(ctx)


# Plain Click help, not rich panels: rich splits flags, negative flags, types and help into columns it
# sizes on its own, and at 80 columns cuts names like --no-include-originals; Click gives a long name
# its own line instead.
app = typer.Typer(
    cls=_RootGroup,
    help="Generative and classic data augmentation for image-classification datasets.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
data_app = typer.Typer(help="Inspect, export and subset datasets.", no_args_is_help=True)
pipeline_app = typer.Typer(help="Show and check classic augmentation pipelines.", no_args_is_help=True)
classify_app = typer.Typer(help="Train, evaluate and list CNN classifiers.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(pipeline_app, name="pipeline")
inspect_app = typer.Typer(help="Look inside a classifier: filters and activations.", no_args_is_help=True)
app.add_typer(classify_app, name="classify")
app.add_typer(inspect_app, name="inspect")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"augmentor {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks instead of one-line errors.")] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", help="No progress bars or lines (warnings and errors stay).")
    ] = False,
    follow_symlinks: Annotated[
        bool,
        typer.Option("--follow-symlinks", help="Read class folders and images that link outside the dataset."),
    ] = False,
    threads: Annotated[
        int | None,
        typer.Option(
            "--threads",
            min=1,
            metavar="N",
            help="CPU threads for torch, fixed (also AUGMENTOR_THREADS). Default: this process's share of the "
            "cores, less those other processes keep busy, followed during training.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Generative and classic data augmentation for image-classification datasets."""
    from augmentor.core.console import set_quiet

    _state["debug"] = debug
    _state["threads"] = threads
    set_quiet(quiet)
    from augmentor.core.env import FOLLOW_SYMLINKS_VARIABLE, env_flag
    from augmentor.core.errors import UserError
    from augmentor.core.threads import pinned

    if follow_symlinks:  # an environment variable, so torchrun ranks and worker processes inherit it
        os.environ[FOLLOW_SYMLINKS_VARIABLE] = "1"
    try:
        env_flag(FOLLOW_SYMLINKS_VARIABLE)  # a misspelt switch is refused before any work, not when a link is met
        pinned(threads)  # a bad AUGMENTOR_THREADS too
    except UserError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


# Option bundles shared by every command that reads a dataset or writes a folder.
Src = Annotated[
    str,
    typer.Argument(
        help="Dataset: an ImageFolder, IDX files, a .npz, a built-in name (fashion-mnist), or - for "
        "image paths on stdin (the parent folder is the class).",
        show_default=False,
        metavar="SRC",
    ),
]
DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Folder holding a built-in dataset's files (default: $AUGMENTOR_DATA, then /usr/share/datasets).",
    ),
]
# Renamed flags keep their old spelling for one release as a hidden option (see _renamed).
OldData = Annotated[Path | None, typer.Option("--data", hidden=True, help="Old spelling of --data-dir.")]
ImageSize = Annotated[
    str | None,
    typer.Option("--image-size", help="Resize every image explicitly: N or HEIGHTxWIDTH."),
]
Channels = Annotated[
    int | None,
    typer.Option("--channels", help="Convert every image explicitly to 1 (grey) or 3 (colour) channels."),
]
SkipCorrupt = Annotated[
    bool, typer.Option("--skip-corrupt", help="Go on past unreadable files and report them (default: stop).")
]
Out = Annotated[Path, typer.Option("--out", "-o", help="Output folder (refused if it exists and is not empty).")]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace a non-empty --out.")]
Workers = Annotated[int, typer.Option("--workers", min=0, help="Worker processes (0: one per core, up to 8).")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout instead of tables.")]
# Every training command's --resume: the same flag, the same rule (augmentor.training.resume).
Resume = Annotated[
    bool,
    typer.Option(
        "--resume",
        help="Continue the interrupted run in --out where it stopped, with its own settings (only --steps, "
        "--epochs and --device may change); bit-identical to an uninterrupted run on the CPU.",
    ),
]


def _renamed(value: _T, old_value: _T | None, old: str, new: str, default: _T | None = None) -> _T:
    """A renamed flag's value: the old spelling still works for one release, with a note on stderr."""
    if old_value is None:
        return value
    if value != default:
        from augmentor.core.errors import UserError

        raise UserError(f"{old} is the old spelling of {new}; give {new} only")
    typer.echo(f"note: {old} is now {new}; the old spelling goes in the next release", err=True)
    return old_value


def _read_options(
    data_dir: Path | None,
    image_size: str | None,
    channels: int | None,
    skip_corrupt: bool,
    old_data: Path | None = None,
):
    from augmentor.data.options import ReadOptions, parse_image_size

    return ReadOptions(
        data_dir=_renamed(data_dir, old_data, "--data", "--data-dir"),
        image_size=parse_image_size(image_size),
        channels=channels,
        skip_corrupt=skip_corrupt,
    )


def _command_line() -> str:
    return shlex.join(["augmentor", *sys.argv[1:]])


def _given_flags(context: typer.Context) -> list[str]:
    """The parameters of the running command the user set (on the command line or through an environment
    variable), not left at their defaults: what ``--resume`` checks against the run's own settings."""
    given = ("COMMANDLINE", "ENVIRONMENT", "PROMPT")
    sources = {name: context.get_parameter_source(name) for name in context.params}
    return [name for name, source in sources.items() if source is not None and source.name in given]


def _print_json(document: Any) -> None:
    typer.echo(jsonio.dumps(document, indent=2, ensure_ascii=False))


def _show(document: Any, view: Callable[[Any], list], as_json: bool) -> None:
    """Print ``document`` as JSON, or the view drawn from it: tables through rich, plain lines as they are."""
    if as_json:
        _print_json(document)
        return
    from rich.console import Console

    # A pipe or a log gets the table's own width (rich would cut it to 80 columns: "classi…" for two arms).
    console = Console(width=None if sys.stdout.isatty() else 240)
    for item in view(document):
        if isinstance(item, str):
            typer.echo(item)
        else:
            console.print(item)


@data_app.command("info")
@reports_errors
def data_info(
    src: Src,
    data_dir: DataDir = None,
    old_data: OldData = None,
    image_size: ImageSize = None,
    channels: Channels = None,
    skip_corrupt: SkipCorrupt = False,
    as_json: JsonFlag = False,
) -> None:
    """Classes, counts per class and split, image size, channels and exact duplicates."""
    from augmentor.data.jobs import info

    document = info(src, _read_options(data_dir, image_size, channels, skip_corrupt, old_data))
    from augmentor.report.summaries import info_view

    _show(document, info_view, as_json)


@data_app.command("export")
@reports_errors
def data_export(
    src: Src,
    out: Out,
    overwrite: Overwrite = False,
    workers: Workers = 0,
    data_dir: DataDir = None,
    old_data: OldData = None,
    image_size: ImageSize = None,
    channels: Channels = None,
    skip_corrupt: SkipCorrupt = False,
    as_json: JsonFlag = False,
) -> None:
    """Write a dataset as an ImageFolder of PNGs with manifest.jsonl and dataset.json."""
    from augmentor.data.jobs import export

    options = _read_options(data_dir, image_size, channels, skip_corrupt, old_data)
    result = export(src, out, options, overwrite=overwrite, workers=workers, command=_command_line())
    from augmentor.report.summaries import written_document, written_view

    _show(written_document(result), written_view, as_json)


@data_app.command("subset")
@reports_errors
def data_subset(
    src: Src,
    per_class: Annotated[int, typer.Option("--per-class", min=1, help="Images per class drawn from train.")],
    out: Out,
    seed: Annotated[int, typer.Option("--seed", min=0, max=2**32 - 1, help="Seed of the draw.")] = 0,
    overwrite: Overwrite = False,
    workers: Workers = 0,
    data_dir: DataDir = None,
    old_data: OldData = None,
    image_size: ImageSize = None,
    channels: Channels = None,
    skip_corrupt: SkipCorrupt = False,
    as_json: JsonFlag = False,
) -> None:
    """Draw a stratified low-data subset of the train split; the test split is written untouched."""
    from augmentor.data.jobs import subset

    options = _read_options(data_dir, image_size, channels, skip_corrupt, old_data)
    result = subset(src, per_class, seed, out, options, overwrite=overwrite, workers=workers, command=_command_line())
    from augmentor.report.summaries import written_document, written_view

    _show(written_document(result), written_view, as_json)


@app.command("classic")
@reports_errors
def classic(
    src: Src,
    out: Out,
    pipeline: Annotated[
        str,
        typer.Option(
            "--pipeline", "-p", help="Preset (light, medium, heavy, randaugment) or an A.save YAML/JSON file."
        ),
    ] = "medium",
    per_image: Annotated[
        int | None, typer.Option("--per-image", min=1, help="K augmented copies of each image.")
    ] = None,
    per_class: Annotated[
        int | None, typer.Option("--per-class", min=1, help="Bring every class up to N images.")
    ] = None,
    include_originals: Annotated[
        bool,
        typer.Option("--include-originals/--no-include-originals", help="Keep the real images in the output."),
    ] = True,
    no_flip_classes: Annotated[
        str, typer.Option("--no-flip-classes", help="Comma-separated classes that must never be mirrored.")
    ] = "",
    no_flip: Annotated[
        bool, typer.Option("--no-flip", help="Drop the pipeline's flips for every class (digits, text).")
    ] = False,
    seed: Annotated[
        int, typer.Option("--seed", min=0, max=2**32 - 1, help="Same seed, same bytes, whatever --workers is.")
    ] = 0,
    workers: Workers = 0,
    overwrite: Overwrite = False,
    data_dir: DataDir = None,
    old_data: OldData = None,
    image_size: ImageSize = None,
    channels: Channels = None,
    skip_corrupt: SkipCorrupt = False,
    as_json: JsonFlag = False,
) -> None:
    """Expand a dataset with an albumentations pipeline (--per-image K or --per-class N)."""
    from augmentor.classic.expand import ClassicConfig, run_classic

    config = ClassicConfig(
        pipeline=pipeline,
        per_image=per_image,
        per_class=per_class,
        include_originals=include_originals,
        no_flip_classes=tuple(c.strip() for c in no_flip_classes.split(",") if c.strip()),
        no_flip=no_flip,
        workers=workers,
        seed=seed,
    )
    options = _read_options(data_dir, image_size, channels, skip_corrupt, old_data)
    result = run_classic(src, config, options, out, overwrite=overwrite, command=_command_line())
    from augmentor.report.summaries import classic_document, written_view

    _show(classic_document(result), written_view, as_json)


class PipelineFormat(StrEnum):
    yaml = "yaml"
    json = "json"


@pipeline_app.command("show")
@reports_errors
def pipeline_show(
    preset: Annotated[str, typer.Argument(help="Preset name (light, medium, heavy, randaugment) or a pipeline file.")],
    fmt: Annotated[PipelineFormat, typer.Option("--format", "-f", help="Output format.")] = PipelineFormat.yaml,
) -> None:
    """Print a pipeline in albumentations' A.save format, ready to edit and pass to --pipeline."""
    from augmentor.classic.pipelines import load_pipeline

    typer.echo(load_pipeline(preset, probe=False).dump(fmt.value), nl=False)  # shown, not run


@pipeline_app.command("check")
@reports_errors
def pipeline_check(
    file: Annotated[str, typer.Argument(help="Pipeline file (or preset name) to validate.")],
    preview: Annotated[
        Path | None, typer.Option("--preview", help="Write a PNG grid: originals beside augmented copies.")
    ] = None,
    data: Annotated[
        str | None,
        typer.Option("--data", help="Dataset to draw the preview from (any SRC, e.g. fashion-mnist)."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", min=0, max=2**32 - 1)] = 0,
    overwrite: Overwrite = False,
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Validate a pipeline file, list what it does, and optionally preview it on real images."""
    from augmentor.classic.check import check_pipeline

    options = _read_options(data_dir, None, None, False)
    report = check_pipeline(file, preview=preview, data=data, read_options=options, seed=seed, overwrite=overwrite)
    from augmentor.report.summaries import pipeline_check_document, pipeline_check_view

    _show(pipeline_check_document(report), pipeline_check_view, as_json)


Device = Annotated[str, typer.Option("--device", help="auto (CUDA when present), cpu or cuda.")]


@classify_app.command("archs")
@reports_errors
def classify_archs(
    image_size: Annotated[int, typer.Option("--image-size", min=8, max=1024, help="Input size for the counts.")] = 28,
    channels: Annotated[int, typer.Option("--channels", help="Input channels: 1 (grey) or 3 (colour).")] = 1,
    num_classes: Annotated[int, typer.Option("--num-classes", min=2)] = 10,
    as_json: JsonFlag = False,
) -> None:
    """List the architectures with parameter counts and FLOPs per image at a given input size."""
    from augmentor.classifiers.registry import describe_archs

    rows = describe_archs(channels, image_size, num_classes)
    from augmentor.report.summaries import archs_view

    _show(rows, archs_view, as_json)


@classify_app.command("train")
@reports_errors
def classify_train(
    context: typer.Context,
    src: Src,
    out: Out,
    test: Annotated[
        str | None, typer.Option("--test", help="Test data (default: SRC's test split, if it has one).")
    ] = None,
    arch: Annotated[str, typer.Option("--arch", help="Architecture (see `augmentor classify archs`).")] = "fast",
    steps: Annotated[int | None, typer.Option("--steps", min=1, help="Budget in optimiser steps.")] = None,
    epochs: Annotated[
        float | None, typer.Option("--epochs", min=0.01, help="Budget in epochs (default 10, at least 300 steps).")
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 128,
    lr: Annotated[float, typer.Option("--lr", min=0.0, help="Peak learning rate (AdamW).")] = 3e-3,
    weight_decay: Annotated[float, typer.Option("--weight-decay", min=0.0)] = 5e-4,
    label_smoothing: Annotated[float, typer.Option("--label-smoothing", min=0.0, max=0.9)] = 0.1,
    schedule: Annotated[str, typer.Option("--schedule", help="onecycle or cosine.")] = "onecycle",
    flip: Annotated[bool, typer.Option("--flip/--no-flip", help="Random left-right flips while training.")] = True,
    crop_padding: Annotated[int, typer.Option("--crop-padding", min=0, help="Random-crop shift in pixels.")] = 2,
    init: Annotated[
        str | None,
        typer.Option("--init", help="Start from a classifier RUN, or torchvision:resnet18=FILE.pth (local file)."),
    ] = None,
    freeze_backbone: Annotated[bool, typer.Option("--freeze-backbone", help="Train only the new head.")] = False,
    synthetic: Annotated[
        str | None,
        typer.Option(
            "--synthetic",
            help="Synthetic images (e.g. an expand output) mixed into every batch; the budget "
            "stays counted on the real images.",
        ),
    ] = None,
    synthetic_share: Annotated[
        float, typer.Option("--synthetic-share", help="Share of each batch taken from --synthetic.")
    ] = 0.5,
    synthetic_weight: Annotated[
        float, typer.Option("--synthetic-weight", min=0.0, help="Weight of a synthetic image's loss.")
    ] = 1.0,
    teacher: Annotated[
        str | None,
        typer.Option(
            "--teacher",
            help="Label the --synthetic images with this classifier RUN's probabilities (soft labels, as a study's "
            "@soft recipe was trained: a run trained on the real images alone).",
        ),
    ] = None,
    temperature: Annotated[
        float, typer.Option("--temperature", min=0.01, help="The --teacher's softmax temperature.")
    ] = 2.0,
    teacher_share: Annotated[
        float,
        typer.Option("--teacher-share", min=0.0, max=1.0, help="The --teacher's weight in a label (rest: the class)."),
    ] = 0.5,
    val_fraction: Annotated[
        float,
        typer.Option(
            "--val-fraction",
            min=0.0,
            max=0.9,
            help="Hold out this share of every class as validation data, scored at each evaluation; "
            "the best point's weights are kept (see --keep).",
        ),
    ] = 0.0,
    keep: Annotated[
        str, typer.Option("--keep", help="With --val-fraction: the weights kept, best (on validation) or last.")
    ] = "best",
    ema: Annotated[
        float,
        typer.Option(
            "--ema", min=0.0, max=0.99999, help="Average the weights (model EMA) with this decay, e.g. 0.999 (0: off)."
        ),
    ] = 0.0,
    mixup: Annotated[
        float, typer.Option("--mixup", min=0.0, help="Mixup with Beta(α, α) blend shares, e.g. 0.2 (0: off).")
    ] = 0.0,
    cutmix: Annotated[
        float,
        typer.Option(
            "--cutmix", min=0.0, help="CutMix with Beta(α, α) shares, e.g. 1.0 (0: off; with --mixup: either)."
        ),
    ] = 0.0,
    randaugment: Annotated[
        str | None,
        typer.Option(
            "--randaugment",
            help="RandAugment on every training image, in timm's spelling: rand-m9-n2 (magnitude M of 0-10, "
            "N ops per image); torchvision's ops, seeded by --seed. Off by default.",
        ),
    ] = None,
    tta: Annotated[
        bool,
        typer.Option(
            "--tta",
            help="Score every image with its mirror too (the mean of both class probabilities), in training's "
            "evaluations and in eval/predict later. Off by default; for classes that flips do not change.",
        ),
    ] = False,
    seed: Annotated[int, typer.Option("--seed", min=0, max=2**32 - 1)] = 0,
    compile_mode: Annotated[
        str | None,
        typer.Option(
            "--compile",
            help="torch.compile the training step: default, reduce-overhead (CUDA graphs: for small models on "
            "a GPU), max-autotune, max-autotune-no-cudagraphs. Off by default; it does not pay on the CPU.",
        ),
    ] = None,
    device: Device = "auto",
    resume: Resume = False,
    overwrite: Overwrite = False,
    data_dir: DataDir = None,
    old_data: OldData = None,
    image_size: ImageSize = None,
    channels: Channels = None,
    skip_corrupt: SkipCorrupt = False,
    as_json: JsonFlag = False,
) -> None:
    """Train a classifier into a run folder (weights, config, metrics, curves, confusion matrix); it keeps a
    checkpoint while training, and SIGTERM or Ctrl-C stop it resumably (--resume)."""
    from augmentor.classifiers.classifier import train_run
    from augmentor.classifiers.train import TrainConfig
    from augmentor.training.loop import TrainingInterrupted

    config = TrainConfig(
        arch=arch,
        steps=steps,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        weight_decay=weight_decay,
        label_smoothing=label_smoothing,
        schedule=schedule,
        flip=flip,
        crop_padding=crop_padding,
        seed=seed,
        device=device,
        freeze_backbone=freeze_backbone,
        compile_mode=compile_mode,
        keep=keep,
        ema=ema,
        mixup=mixup,
        cutmix=cutmix,
        randaugment=randaugment,
        tta=tta,
    )
    from augmentor.training.resume import flags_given

    options = _read_options(data_dir, image_size, channels, skip_corrupt, old_data)
    try:
        with flags_given(_given_flags(context)):
            result = train_run(
                src,
                config,
                out,
                test_src=test,
                init=init,
                read_options=options,
                overwrite=overwrite,
                synthetic_src=synthetic,
                synthetic_share=synthetic_share,
                synthetic_weight=synthetic_weight,
                teacher=teacher,
                temperature=temperature,
                teacher_share=teacher_share,
                val_fraction=val_fraction,
                resume=resume,
            )
    except TrainingInterrupted as stopped:
        # The resume command in full: the same data read the same way (the fingerprint check refuses others);
        # every other setting comes from the run itself.
        again = shlex.join(["augmentor", "classify", "train", src, *options.flags(), "--out", str(out), "--resume"])
        typer.echo(f"{stopped}; continue with: {again}", err=True)
        raise typer.Exit(130) from None
    from augmentor.report.summaries import classifier_train_document, classifier_train_view

    _show(classifier_train_document(result.config, result.final, out), classifier_train_view, as_json)


@classify_app.command("eval")
@reports_errors
def classify_eval(
    run: Annotated[Path, typer.Argument(help="A classifier run folder.")],
    test: Annotated[str, typer.Argument(help="Test data (its test split when it has one).")],
    data_dir: DataDir = None,
    old_data: OldData = None,
    image_size: ImageSize = None,
    channels: Channels = None,
    as_json: JsonFlag = False,
) -> None:
    """Accuracy, per-class accuracy and the confusion matrix of a run on test data."""
    from augmentor.classifiers.classifier import eval_run

    scores = eval_run(run, test, _read_options(data_dir, image_size, channels, False, old_data))
    from augmentor.report.summaries import eval_view

    _show(scores, eval_view, as_json)


@classify_app.command("predict")
@reports_errors
def classify_predict(
    run: Annotated[Path, typer.Argument(help="A classifier run folder.")],
    images: Annotated[
        list[str], typer.Argument(help="Image files, folders of them (searched recursively), or - for paths on stdin.")
    ],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Also write every prediction to FILE.csv or FILE.json.")
    ] = None,
    top: Annotated[int, typer.Option("--top", min=1, help="Most probable classes listed per image.")] = 3,
    device: Device = "auto",
    image_size: ImageSize = None,
    channels: Channels = None,
    skip_corrupt: SkipCorrupt = False,
    overwrite: Overwrite = False,
    as_json: JsonFlag = False,
) -> None:
    """Label images with a trained classifier: the predicted class, its probability and the top classes."""
    from augmentor.classifiers.predict import predict_files
    from augmentor.core.errors import UserError
    from augmentor.core.outdir import check_output_file, write_file_atomic

    if out is not None:
        if out.suffix.lower() not in (".csv", ".json"):
            raise UserError(f"{out}: give a .csv or .json file name for --out")
        check_output_file(out, overwrite, reads=[run, *images])
    options = _read_options(None, image_size, channels, skip_corrupt)
    predictions = predict_files(run, images, options, device, top)
    document = predictions.document()
    if out is not None:
        text = (
            predictions.csv_text()
            if out.suffix.lower() == ".csv"
            else jsonio.dumps(document, indent=2, ensure_ascii=False) + "\n"
        )
        write_file_atomic(out, text.encode())
    from augmentor.report.summaries import predictions_view

    # --json prints the document --out FILE.json holds, plus where it went when it was written
    _show({**document, **({"out": str(out)} if out else {})}, predictions_view, as_json)


PngOut = Annotated[Path, typer.Option("--out", "-o", help="PNG file to write.")]


@inspect_app.command("filters")
@reports_errors
def inspect_filters(
    run: Annotated[Path, typer.Argument(help="A classifier run folder.")],
    out: PngOut,
    overwrite: Overwrite = False,
) -> None:
    """Draw the first convolution's kernels (mid-grey is zero)."""
    from augmentor.classifiers.inspect import write_filters

    typer.echo(str(write_filters(run, out, overwrite)))


@inspect_app.command("activations")
@reports_errors
def inspect_activations(
    run: Annotated[Path, typer.Argument(help="A classifier run folder.")],
    image: Annotated[Path, typer.Argument(help="One image file of the model's size and channels.")],
    out: PngOut,
    max_channels: Annotated[int, typer.Option("--max-channels", min=1, help="Feature maps per stage.")] = 16,
    overwrite: Overwrite = False,
) -> None:
    """Draw each stage's feature maps for one image, with the predicted class."""
    from augmentor.classifiers.inspect import write_activations

    typer.echo(str(write_activations(run, image, out, max_channels, overwrite)))


GenInit = Annotated[
    str | None,
    typer.Option(
        "--gen-init",
        help="Every generator starts from this run (its width; e.g. weights/fashion-mnist/vae for grey 28×28 "
        "data), never one trained on this dataset's own splits.",
    ),
]
GenAdaTarget = Annotated[
    float | None,
    typer.Option(
        "--gen-ada-target",
        min=0.0,
        max=1.0,
        help="Adaptive DiffAugment for the DCGANs (train dcgan's --ada-target, e.g. 0.6) instead of always on.",
    ),
]
GenAugmentAll = Annotated[
    str | None,
    typer.Option(
        "--gen-augment",
        help="Every generator trains on its real images and 9 classic-augmented copies of each (train's "
        "--augment; a preset, e.g. light).",
    ),
]
GenBeta = Annotated[
    float,
    typer.Option("--gen-beta", min=0.0, help="KL weight of every VAE (train vae's --beta; 1 is the plain VAE)."),
]
GenBudgets = Annotated[
    str | None,
    typer.Option(
        "--gen-budgets",
        help="Candidate step budgets of each generator, e.g. 300,600,1200: it trains to the largest and keeps "
        "the one whose samples' CAS on the validation split is best (instead of --gen-steps).",
        show_default=False,
    ),
]
QualitySteps = Annotated[
    int | None,
    typer.Option(
        "--quality-steps",
        min=0,
        help="Steps of each generator's CAS classifier (trained on its samples, scored on validation) and of "
        "its real twin, for the report [default: the real-only arm's budget]; 0 leaves them out.",
        show_default=False,
    ),
]


@app.command("gain")
@reports_errors
def gain(
    context: typer.Context,
    src: Src,
    out: Out,
    per_class: Annotated[
        str,
        typer.Option(
            "--per-class",
            help="Real images per class, e.g. 10,100 [default: 10,100, those the data holds beside a validation "
            "split].",
            show_default=False,
        ),
    ] = "",
    arms: Annotated[
        str,
        typer.Option(
            "--arms",
            help="Comma-separated arms: real, real-long (real-only for the augmented arms' step count), "
            "classic[:PIPELINE], dcgan, vae, dcgan-gated, vae-gated, vae-jitter[:SIGMA], vae-extrapolate[:STRENGTH] "
            "(generators are trained on each draw's real subset; dcgan:RUN uses a run trained on exactly that "
            "subset); combine sources with +, e.g. classic+vae; @soft / @hard sets one arm's labels "
            "[default: real,real-long,classic and the --recipe's arm].",
        ),
    ] = "",
    recipe: Annotated[
        str,
        typer.Option(
            "--recipe",
            help="A built-in recipe (best) or a recipe file (augmentor study writes DIR/recipe.json): the arm, "
            "share and generator settings used where --arms, --synthetic-share, --gen-steps/--gen-width are not "
            "given.",
        ),
    ] = "best",
    draws: Annotated[
        int,
        typer.Option("--draws", min=1, help="Paired draws (draw d: one real subset and seed d for every arm)."),
    ] = 10,
    old_seeds: Annotated[
        int | None, typer.Option("--seeds", min=1, hidden=True, help="Old spelling of --draws.")
    ] = None,
    arch: Annotated[str, typer.Option("--arch", help="Classifier, the same in every arm.")] = "fast",
    real_epochs: Annotated[
        str | None,
        typer.Option(
            "--real-epochs",
            help="Budget: passes over the real subset, equal in every arm; one value or one per N, e.g. 300,30 "
            "[default: 3000/N within 30..300, the real-only plateau the study measured].",
        ),
    ] = None,
    budget: Annotated[
        int | None,
        typer.Option("--budget", min=1, help="Budget in steps of the real-only arm (instead of --real-epochs)."),
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 128,
    lr: Annotated[float, typer.Option("--lr", min=0.0)] = 3e-3,
    synthetic_share: Annotated[
        str,
        typer.Option(
            "--synthetic-share",
            help="Share of each batch that is synthetic; several give a curve [default: the --recipe's].",
        ),
    ] = "",
    old_ratio: Annotated[
        str | None, typer.Option("--synthetic-ratio", hidden=True, help="Replaced by --synthetic-share.")
    ] = None,
    synthetic_weight: Annotated[
        float, typer.Option("--synthetic-weight", min=0.0, help="Weight of a synthetic image's loss vs a real one's.")
    ] = 1.0,
    labels: Annotated[
        str, typer.Option("--labels", help="Synthetic images' labels: hard (intended class) or soft (teacher).")
    ] = "hard",
    temperature: Annotated[float, typer.Option("--temperature", help="The teacher's softmax temperature.")] = 2.0,
    teacher_share: Annotated[
        float, typer.Option("--teacher-share", help="Teacher's weight in a soft label (rest: intended class).")
    ] = 0.5,
    finetune_real: Annotated[
        float, typer.Option("--finetune-real", help="Last fraction of the real presentations in real-only batches.")
    ] = 0.0,
    no_flip: Annotated[bool, typer.Option("--no-flip", help="No horizontal flips in any arm (digits, text).")] = False,
    gen_steps: Annotated[
        int, typer.Option("--gen-steps", min=1, help="Training steps of each generator (generative arms).")
    ] = 600,
    gen_width: Annotated[int, typer.Option("--gen-width", min=4, help="Width of each generator.")] = 32,
    gen_init: GenInit = None,
    gen_ada_target: GenAdaTarget = None,
    gen_augment: GenAugmentAll = None,
    gen_beta: GenBeta = 0.1,
    gen_budgets: GenBudgets = None,
    quality_steps: QualitySteps = None,
    min_confidence: Annotated[
        float, typer.Option("--min-confidence", min=0.0, max=1.0, help="Threshold of the -gated arms.")
    ] = 0.5,
    validation_per_class: Annotated[
        int | None,
        typer.Option(
            "--validation-per-class",
            min=1,
            help="Validation split carved from train, per class [default: half of what the largest N leaves in the "
            "smallest class, 5 to 200].",
            show_default=False,
        ),
    ] = None,
    budget_curve: Annotated[
        bool, typer.Option("--budget-curve/--no-budget-curve", help="Real-only accuracy at 0.25×…4× the budget.")
    ] = True,
    curve_draws: Annotated[int, typer.Option("--curve-draws", min=1, help="Draws the budget curve uses.")] = 3,
    development: Annotated[
        bool,
        typer.Option("--development", help="Development draws scored on the validation split; test is not read."),
    ] = False,
    first_seed: Annotated[
        int,
        typer.Option(
            "--first-seed",
            min=0,
            help="Seed of the first reported draw (draw d: FIRST + d; with --development 1000 + FIRST + d); a second "
            "look at test takes new seeds.",
        ),
    ] = 0,
    grouped: Annotated[
        bool | None,
        typer.Option(
            "--grouped/--no-grouped",
            help="Train each share's augmented arms together as one grouped network (fast arch; each model as "
            "alone, up to float rounding) [default: on CUDA, where it is faster].",
            show_default=False,
        ),
    ] = None,
    device: Device = "auto",
    workers: Workers = 0,
    overwrite: Overwrite = False,
    data_dir: DataDir = None,
    old_data: OldData = None,
    image_size: ImageSize = None,
    channels: Channels = None,
    as_json: JsonFlag = False,
) -> None:
    """Does augmentation help? Train the same classifier on every arm and compare on the test split."""
    from augmentor.experiments.gain import RECIPE_GENERATOR_FIELDS, GainConfig, parse_numbers, run_gain

    if old_ratio is not None:
        from augmentor.core.errors import UserError

        raise UserError(
            "--synthetic-ratio was replaced by --synthetic-share: synthetic images are now a share of each batch "
            "(every arm sees each real image equally often), e.g. --synthetic-share 0.5"
        )
    config = GainConfig(
        per_class=parse_numbers(per_class, "--per-class", int) if per_class else None,
        recipe=recipe,
        arms=arms,
        draws=_renamed(draws, old_seeds, "--seeds", "--draws", 10),
        arch=arch,
        real_epochs=None if real_epochs is None else parse_numbers(real_epochs, "--real-epochs", float),
        budget=budget,
        batch_size=batch_size,
        lr=lr,
        synthetic_share=parse_numbers(synthetic_share, "--synthetic-share", float),
        synthetic_weight=synthetic_weight,
        labels=labels,
        temperature=temperature,
        teacher_share=teacher_share,
        finetune_real=finetune_real,
        flip=not no_flip,
        device=device,
        workers=workers,
        gen_steps=gen_steps,
        gen_width=gen_width,
        gen_init=gen_init,
        gen_ada_target=gen_ada_target,
        gen_augment=gen_augment,
        gen_beta=gen_beta,
        gen_budgets=() if gen_budgets is None else parse_numbers(gen_budgets, "--gen-budgets", int),
        quality_steps=quality_steps,
        min_confidence=min_confidence,
        validation_per_class=validation_per_class,
        budget_curve=budget_curve,
        curve_draws=curve_draws,
        development=development,
        first_seed=first_seed,
        grouped=grouped,
        given=frozenset(_given_flags(context)) & set(RECIPE_GENERATOR_FIELDS),
    )
    options = _read_options(data_dir, image_size, channels, False, old_data)
    result = run_gain(src, config, out, read_options=options, overwrite=overwrite, command=_command_line())
    from augmentor.report.summaries import gain_document, gain_view

    _show(gain_document(result, out), lambda document: gain_view(result, document["report"]), as_json)


@app.command("study")
@reports_errors
def study(
    src: Src,
    out: Out,
    per_class: Annotated[
        str, typer.Option("--per-class", help="Real images per class [default: gain's, those the data holds].")
    ] = "",
    dev_draws: Annotated[int, typer.Option("--dev-draws", min=2, help="Development draws (validation only).")] = 4,
    draws: Annotated[int, typer.Option("--draws", min=2, help="Confirmation draws, read once on test.")] = 10,
    shares: Annotated[str, typer.Option("--shares", help="Synthetic shares both sides try.")] = "0.25,0.5",
    classic: Annotated[
        str,
        typer.Option(
            "--classic",
            help="The classic side's candidates, as many as --generative [default: classic:light, classic:heavy, "
            "classic:randaugment].",
            show_default=False,
        ),
    ] = "",
    generative: Annotated[
        str,
        typer.Option(
            "--generative",
            help="The generative side's candidates, gain arms [default: vae, vae@soft, vae-jitter@soft].",
            show_default=False,
        ),
    ] = "",
    real_epochs: Annotated[
        str | None, typer.Option("--real-epochs", help="Passes over the real subset [default: 3000/N in 30..300].")
    ] = None,
    budget: Annotated[int | None, typer.Option("--budget", min=1, help="Or optimiser steps of the real arm.")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 128,
    gen_steps: Annotated[int, typer.Option("--gen-steps", min=1, help="Training steps of each generator.")] = 600,
    gen_width: Annotated[int, typer.Option("--gen-width", min=4, help="Width of each generator.")] = 32,
    gen_init: GenInit = None,
    gen_ada_target: GenAdaTarget = None,
    gen_augment: GenAugmentAll = None,
    gen_beta: GenBeta = 0.1,
    quality_steps: QualitySteps = None,
    validation_per_class: Annotated[
        int | None,
        typer.Option("--validation-per-class", min=1, help="Validation split per class [default: adapted]."),
    ] = None,
    first_seed: Annotated[
        int, typer.Option("--first-seed", min=0, help="Seed of the first confirmation draw (new seeds: a new look).")
    ] = 2000,
    no_flip: Annotated[bool, typer.Option("--no-flip", help="No horizontal flips in any arm (digits, text).")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Go on after the last finished stage (same plan).")] = False,
    device: Device = "auto",
    workers: Workers = 0,
    overwrite: Overwrite = False,
    data_dir: DataDir = None,
    image_size: ImageSize = None,
    channels: Channels = None,
    as_json: JsonFlag = False,
) -> None:
    """The gain protocol on your data: a plan first, both sides tuned alike on validation, one read of test."""
    from augmentor.experiments.gain import parse_numbers
    from augmentor.experiments.study import StudyConfig, run_study

    defaults = StudyConfig()
    config = StudyConfig(
        per_class=parse_numbers(per_class, "--per-class", int) if per_class else None,
        dev_draws=dev_draws,
        draws=draws,
        shares=parse_numbers(shares, "--shares", float),
        classic=tuple(c.strip() for c in classic.split(",") if c.strip()) or defaults.classic,
        generative=tuple(c.strip() for c in generative.split(",") if c.strip()) or defaults.generative,
        real_epochs=None if real_epochs is None else parse_numbers(real_epochs, "--real-epochs", float),
        budget=budget,
        batch_size=batch_size,
        gen_steps=gen_steps,
        gen_width=gen_width,
        gen_init=gen_init,
        gen_ada_target=gen_ada_target,
        gen_augment=gen_augment,
        gen_beta=gen_beta,
        quality_steps=quality_steps,
        validation_per_class=validation_per_class,
        first_seed=first_seed,
        flip=not no_flip,
        device=device,
        workers=workers,
    )
    options = _read_options(data_dir, image_size, channels, False, None)
    result = run_study(src, config, out, read_options=options, resume=resume, overwrite=overwrite)
    from augmentor.report.summaries import study_document, study_view

    _show(study_document(result), study_view, as_json)


train_app = typer.Typer(help="Train DCGAN and VAE models on a dataset.", no_args_is_help=True)
app.add_typer(train_app, name="train")


def _train_generative(
    context: typer.Context,
    kind: str,
    src: str,
    out: Path,
    resume: bool,
    overwrite: bool,
    options,
    as_json: bool,
    **flags: Any,
) -> None:
    from augmentor.generative.train import GenerativeConfig, train_run
    from augmentor.training.loop import TrainingInterrupted
    from augmentor.training.resume import flags_given

    config = GenerativeConfig(kind=kind, **flags)
    try:
        with flags_given(_given_flags(context)):
            result = train_run(
                src, config, out, resume=resume, read_options=options, overwrite=overwrite, command=_command_line()
            )
    except TrainingInterrupted as stopped:
        # The resume command in full: the same data read the same way (the fingerprint check refuses others);
        # every other setting comes from the run itself.
        again = shlex.join(["augmentor", "train", kind, src, *options.flags(), "--out", str(out), "--resume"])
        typer.echo(f"{stopped}; continue with: {again}", err=True)
        raise typer.Exit(130) from None
    from augmentor.report.summaries import generative_train_document, generative_train_view

    document = generative_train_document(result.out, kind, result.step, result.steps, result.metrics, result.warnings)
    _show(document, generative_train_view, as_json)


Conditional = Annotated[
    bool | None,
    typer.Option(
        "--conditional/--unconditional",
        help="Condition on the class (default: when there are labels).",
        show_default=False,
    ),
]
LatentDim = Annotated[int | None, typer.Option("--latent-dim", min=1, help="Latent size (DCGAN 64, VAE 32).")]
Width = Annotated[int, typer.Option("--width", min=4, help="Channels of the widest-but-one layer scale from this.")]
GenSteps = Annotated[int | None, typer.Option("--steps", min=1, help="Budget in optimiser steps.")]
GenEpochs = Annotated[
    float | None, typer.Option("--epochs", min=0.01, help="Budget in epochs (default 20, at least 600 steps).")
]
GenBatch = Annotated[int, typer.Option("--batch-size", min=2)]
Ema = Annotated[
    float | None,
    typer.Option(
        "--ema",
        min=0.0,
        max=0.99999,
        help="EMA decay of the sampling weights (0 turns it off; DCGAN default 0.999, VAE 0).",
    ),
]
DiffAugmentFlag = Annotated[
    bool, typer.Option("--diffaugment", help="DiffAugment (colour, shift, cutout) for small data.")
]
InitRun = Annotated[
    str | None,
    typer.Option(
        "--init",
        help="Start from this run of the same kind (its width and latent size; the shipped "
        "weights/fashion-mnist/vae for grey 28×28 data): transfer learning for a few images per class.",
    ),
]
GenAugment = Annotated[
    str | None,
    typer.Option(
        "--augment",
        help="Train on the images and classic-augmented copies of them (a preset: light, medium, heavy, "
        "randaugment, or a pipeline file): more to learn a density from when a class has a few images.",
    ),
]
GenAugmentCopies = Annotated[
    int, typer.Option("--augment-copies", min=1, help="With --augment: copies of every image (made once, seeded).")
]
GenNoFlip = Annotated[
    bool, typer.Option("--no-flip", help="With --augment: no mirrored copies (digits, text); alone it changes nothing.")
]
SampleEvery = Annotated[int, typer.Option("--sample-every", min=1, help="Sample grid and checkpoint every K steps.")]
MaxNonfinite = Annotated[
    int, typer.Option("--max-nonfinite", min=0, help="Rollbacks after a non-finite loss before stopping.")
]
GenOut = Annotated[
    Path, typer.Option("--out", "-o", help="Run folder (refused if not empty, unless --overwrite or --resume).")
]


@train_app.command("dcgan")
@reports_errors
def train_dcgan(
    context: typer.Context,
    src: Src,
    out: GenOut,
    conditional: Conditional = None,
    latent_dim: LatentDim = None,
    width: Width = 64,
    steps: GenSteps = None,
    epochs: GenEpochs = None,
    batch_size: GenBatch = 64,
    lr: Annotated[
        float | None, typer.Option("--lr", min=0.0, help="Generator learning rate (Adam, β1 0.5; default 2e-4).")
    ] = None,
    lr_d: Annotated[float, typer.Option("--lr-d", min=0.0, help="Discriminator learning rate.")] = 2e-4,
    gan_loss: Annotated[
        str,
        typer.Option(
            "--gan-loss", help="The adversarial loss: non-saturating (Goodfellow et al.) or hinge (Miyato & Koyama)."
        ),
    ] = "non-saturating",
    ema: Ema = None,
    diffaugment: DiffAugmentFlag = False,
    ada_target: Annotated[
        float | None,
        typer.Option(
            "--ada-target",
            min=0.0,
            max=1.0,
            help="Adaptive DiffAugment: the probability of each augmentation starts at 0 and moves so that the "
            "discriminator's mean sign on real images stays near this (StyleGAN2-ADA: 0.6).",
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", min=0, max=2**32 - 1)] = 0,
    device: Device = "auto",
    sample_every: SampleEvery = 500,
    max_nonfinite: MaxNonfinite = 3,
    init: InitRun = None,
    augment: GenAugment = None,
    augment_copies: GenAugmentCopies = 9,
    no_flip: GenNoFlip = False,
    resume: Resume = False,
    overwrite: Overwrite = False,
    data_dir: DataDir = None,
    old_data: OldData = None,
    image_size: ImageSize = None,
    channels: Channels = None,
    skip_corrupt: SkipCorrupt = False,
    as_json: JsonFlag = False,
) -> None:
    """Train a DCGAN (class-conditional by default) into a run folder; --resume continues one exactly."""
    _train_generative(
        context,
        "dcgan",
        src,
        out,
        resume,
        overwrite,
        _read_options(data_dir, image_size, channels, skip_corrupt, old_data),
        as_json,
        conditional=conditional,
        latent_dim=latent_dim,
        width=width,
        steps=steps,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        lr_d=lr_d,
        gan_loss=gan_loss,
        ema=ema,
        diffaugment=diffaugment,
        ada_target=ada_target,
        seed=seed,
        device=device,
        sample_every=sample_every,
        max_nonfinite=max_nonfinite,
        init=init,
        augment=augment,
        augment_copies=augment_copies,
        flip=not no_flip,
    )


@train_app.command("vae")
@reports_errors
def train_vae(
    context: typer.Context,
    src: Src,
    out: GenOut,
    conditional: Conditional = None,
    latent_dim: LatentDim = None,
    width: Width = 64,
    steps: GenSteps = None,
    epochs: GenEpochs = None,
    batch_size: GenBatch = 64,
    lr: Annotated[float | None, typer.Option("--lr", min=0.0, help="Learning rate (Adam; default 1e-3).")] = None,
    beta: Annotated[
        float, typer.Option("--beta", min=0.0, help="Weight of the KL term (β-VAE; 1 is the plain VAE).")
    ] = 0.1,
    ema: Ema = None,
    seed: Annotated[int, typer.Option("--seed", min=0, max=2**32 - 1)] = 0,
    device: Device = "auto",
    sample_every: SampleEvery = 500,
    max_nonfinite: MaxNonfinite = 3,
    init: InitRun = None,
    augment: GenAugment = None,
    augment_copies: GenAugmentCopies = 9,
    no_flip: GenNoFlip = False,
    resume: Resume = False,
    overwrite: Overwrite = False,
    data_dir: DataDir = None,
    old_data: OldData = None,
    image_size: ImageSize = None,
    channels: Channels = None,
    skip_corrupt: SkipCorrupt = False,
    as_json: JsonFlag = False,
) -> None:
    """Train a convolutional VAE (class-conditional by default) into a run folder."""
    _train_generative(
        context,
        "vae",
        src,
        out,
        resume,
        overwrite,
        _read_options(data_dir, image_size, channels, skip_corrupt, old_data),
        as_json,
        conditional=conditional,
        latent_dim=latent_dim,
        width=width,
        steps=steps,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        beta=beta,
        ema=ema,
        seed=seed,
        device=device,
        sample_every=sample_every,
        max_nonfinite=max_nonfinite,
        init=init,
        augment=augment,
        augment_copies=augment_copies,
        flip=not no_flip,
    )


@app.command("sample")
@reports_errors
def sample(
    run: Annotated[Path, typer.Argument(help="A DCGAN or VAE run folder (e.g. weights/fashion-mnist/dcgan).")],
    out: Out,
    n: Annotated[int | None, typer.Option("--n", "--count", min=1, help="How many images (classes balanced).")] = None,
    class_name: Annotated[str | None, typer.Option("--class", help="Only this class (name or number).")] = None,
    per_class: Annotated[int | None, typer.Option("--per-class", min=1, help="This many of every class.")] = None,
    truncation: Annotated[
        float | None,
        typer.Option(
            "--truncation", min=0.01, max=100.0, help="Resample latent values beyond ±t (fidelity over variety)."
        ),
    ] = None,
    psi: Annotated[
        float | None,
        typer.Option("--psi", help="Pull every code toward the prior's mean, z ← ψ·z (StyleGAN's ψ, e.g. 0.7)."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", min=0, max=2**32 - 1)] = 0,
    seeds: Annotated[
        str | None,
        typer.Option("--seeds", help="One image per seed, e.g. 0-35 or 1,5,9 (StyleGAN's habit; with --class)."),
    ] = None,
    grid: Annotated[Path | None, typer.Option("--grid", help="Also write a grid PNG for a quick look.")] = None,
    device: Device = "auto",
    workers: Workers = 0,
    overwrite: Overwrite = False,
    as_json: JsonFlag = False,
) -> None:
    """Generate images from a DCGAN or VAE run into an ImageFolder with a manifest."""
    from augmentor.generative.generator import parse_seeds
    from augmentor.generative.sample import SampleConfig, sample_run

    config = SampleConfig(
        n=n,
        class_name=class_name,
        per_class=per_class,
        truncation=truncation,
        seed=seed,
        device=device,
        workers=workers,
        seeds=tuple(parse_seeds(seeds)) if seeds is not None else None,
        psi=psi,
    )
    result = sample_run(run, config, out, grid=grid, overwrite=overwrite, command=_command_line())
    from augmentor.report.summaries import written_document, written_view

    _show(written_document(result, **({"grid": str(grid)} if grid else {})), written_view, as_json)


@app.command("score")
@reports_errors
def score(
    real: Annotated[
        str,
        typer.Option(
            "--real",
            "--input2",
            help="Real data (any SRC): its train split is the reference (torch-fidelity's input2).",
        ),
    ],
    target: Annotated[
        str | None,
        typer.Argument(help="A DCGAN/VAE run folder, or images to score (any SRC).", metavar="RUN|DIR"),
    ] = None,
    input1: Annotated[
        str | None, typer.Option("--input1", help="The images to score, as torch-fidelity names them (or RUN|DIR).")
    ] = None,
    features: Annotated[
        Path | None,
        typer.Option(
            "--features",
            help="Classifier RUN whose features FID/KID use (default: the shipped one where it fits the real "
            "images' shape and classes, else one trained on them, cached under $XDG_CACHE_HOME/augmentor/features "
            "and reused).",
        ),
    ] = None,
    inception: Annotated[
        Path | None,
        typer.Option(
            "--inception",
            metavar="FILE",
            help="FID/KID in Inception-v3 pool3 features, as pytorch-fid computes them, for numbers that compare "
            "with papers: a local .safetensors of pytorch-fid's pt_inception-2015-12-05 weights (or torchvision's "
            "inception_v3); nothing is downloaded.",
        ),
    ] = None,
    baseline: Annotated[
        str | None, typer.Option("--baseline", help="Score a reference instead of RUN|DIR: noise.")
    ] = None,
    n: Annotated[
        int, typer.Option("--n", "--count", min=2, help="Images on each side (scored, real train, real test).")
    ] = 2000,
    seed: Annotated[int, typer.Option("--seed", min=0, max=2**32 - 1)] = 0,
    cas: Annotated[bool, typer.Option("--cas/--no-cas", help="Train classifiers for the CAS (the slow part).")] = True,
    cas_steps: Annotated[int, typer.Option("--cas-steps", min=1, help="Step budget of each CAS classifier.")] = 300,
    cas_seeds: Annotated[
        int,
        typer.Option(
            "--cas-seeds",
            min=1,
            max=20,
            help="Pairs of CAS classifiers (seeds SEED, SEED+1, …): CAS and real accuracy are their means, and "
            "the table gives the gap's spread (one seed moves a CAS by about a point).",
        ),
    ] = 1,
    copy_distance: Annotated[
        float, typer.Option("--copy-distance", min=0.0, help="Nearer a train image than this is a copy (RMS, 0..1).")
    ] = 0.04,
    device: Device = "auto",
    data_dir: DataDir = None,
    old_data: OldData = None,
    image_size: ImageSize = None,
    channels: Channels = None,
    source: Annotated[
        str,
        typer.Option(
            "--source",
            help="Which images of a folder to score, by its manifest: synthetic (what expand/classic added), real, "
            "all, or one source (vae, classic, …); auto: synthetic where the manifest records any, else all.",
        ),
    ] = "auto",
    latent: Annotated[
        str,
        typer.Option(
            "--latent",
            help="Where a run's codes come from: prior (its N(0, I)), or density[:T] for a conditional VAE: a "
            "Gaussian fitted to the encoded --real train images of each class, spread scaled by T (default 1).",
        ),
    ] = "prior",
    as_json: JsonFlag = False,
) -> None:
    """FID/KID (with the real floor F0), diversity, memorisation and CAS of generated images."""
    from augmentor.core.errors import UserError
    from augmentor.metrics.score import score as score_target

    if input1 is not None and target is not None:
        raise UserError(f"give the images to score once: {target} or --input1 {input1}")
    result = score_target(
        target if input1 is None else input1,
        real,
        features_run=features,
        inception=inception,
        n=n,
        seed=seed,
        device=device,
        cas=cas,
        cas_steps=cas_steps,
        cas_seeds=cas_seeds,
        baseline=baseline,
        memorisation_threshold=copy_distance,
        read_options=_read_options(data_dir, image_size, channels, False, old_data),
        source=source,
        latent=latent,
    )
    from augmentor.report.summaries import score_view

    _show(result, score_view, as_json)


@app.command("expand")
@reports_errors
def expand(
    src: Src,
    out: Out,
    with_: Annotated[
        list[str] | None,
        typer.Option(
            "--with",
            help="Source, repeatable: classic[:PIPELINE], dcgan:RUN, vae:RUN, vae-jitter:RUN[:SIGMA] (SIGMA in "
            "the encoder's posterior σ, default 1), vae-extrapolate:RUN[:STRENGTH] (away from a same-class "
            "neighbour, default 0.5), vae-density:RUN[:T] (codes from a Gaussian fitted to each class's encoded "
            "images, spread × T, default 1) or edit:RUN:DIR:NAME:S1,S2,… (samples moved along a direction from "
            "`augmentor directions`).",
        ),
    ] = None,
    recipe: Annotated[
        str | None,
        typer.Option(
            "--recipe",
            help="NAME:RUN or FILE.json:RUN: the sources of a built-in recipe (`best`: what the gain study chose) or "
            "of a recipe file (augmentor study's DIR/recipe.json), with your run.",
        ),
    ] = None,
    per_class: Annotated[
        int | None, typer.Option("--per-class", help="Bring every class to N images (real + synthetic).")
    ] = None,
    ratio: Annotated[
        str | None, typer.Option("--ratio", help="REAL:SYNTH synthetic images per real one, per class (e.g. 1:4).")
    ] = None,
    min_confidence: Annotated[
        float | None,
        typer.Option("--min-confidence", help="Keep a synthetic image if a real-only classifier gives its label ≥ p."),
    ] = None,
    dedupe: Annotated[
        float | None,
        typer.Option("--dedupe", help="Drop synthetic images nearer than d (RMS pixel difference 0..1) to a real one."),
    ] = None,
    confidence_steps: Annotated[
        int, typer.Option("--confidence-steps", help="Training steps of the --min-confidence classifier.")
    ] = 400,
    no_flip: Annotated[
        bool, typer.Option("--no-flip", help="Classic sources never mirror an image (digits, text).")
    ] = False,
    seed: Annotated[int, typer.Option("--seed", min=0, max=2**32 - 1, help="Same seed, same images.")] = 0,
    truncation: Annotated[
        float | None,
        typer.Option("--truncation", min=0.01, max=100.0, help="Resample latent values beyond ±t (DCGAN/VAE sources)."),
    ] = None,
    workers: Workers = 0,
    device: Device = "auto",
    overwrite: Overwrite = False,
    data_dir: DataDir = None,
    old_data: OldData = None,
    image_size: ImageSize = None,
    channels: Channels = None,
    skip_corrupt: SkipCorrupt = False,
    as_json: JsonFlag = False,
) -> None:
    """Assemble an enlarged dataset: the real train images plus gated synthetic ones from each --with source."""
    from augmentor.synthetic.expand import ExpandConfig, run_expand
    from augmentor.synthetic.recipes import load_recipe, recipe_sources, split_recipe_run

    config = ExpandConfig(
        with_=tuple(with_ or ()) + tuple(recipe_sources(recipe) if recipe else ()),
        per_class=per_class,
        ratio=ratio,
        min_confidence=min_confidence,
        dedupe=dedupe,
        seed=seed,
        truncation=truncation,
        workers=workers,
        device=device,
        confidence_steps=confidence_steps,
        flip=not no_flip,
    )
    options = _read_options(data_dir, image_size, channels, skip_corrupt, old_data)
    result = run_expand(src, config, out, options, overwrite=overwrite, command=_command_line())
    if recipe:
        chosen = load_recipe(split_recipe_run(recipe)[0])
        typer.echo(
            f"note: recipe {chosen.name} ({chosen.arm}) was measured with its images as {chosen.share:g} of each "
            f"batch: augmentor classify train SRC --synthetic {out} --synthetic-share {chosen.share:g}",
            err=True,
        )
    from augmentor.report.summaries import expand_document, expand_view

    _show(expand_document(result), expand_view, as_json)


@app.command("interpolate")
@reports_errors
def interpolate(
    run: Annotated[Path, typer.Argument(help="A DCGAN or VAE run folder.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="A .png grid (one row per pair) or an animated .gif.")],
    start: Annotated[
        list[str], typer.Option("--from", help="Seed, class name or image file (VAE); repeat for more rows.")
    ],
    end: Annotated[list[str], typer.Option("--to", help="The other end of each --from.")],
    frames: Annotated[int, typer.Option("--frames", min=2, max=1000, help="Images per row, ends included.")] = 8,
    old_steps: Annotated[
        int | None, typer.Option("--steps", min=2, hidden=True, help="Old spelling of --frames.")
    ] = None,
    method: Annotated[str, typer.Option("--method", help="slerp (default) or lerp.")] = "slerp",
    seed: Annotated[
        int, typer.Option("--seed", min=0, max=2**32 - 1, help="The latent code kept while a class moves.")
    ] = 0,
    class_name: Annotated[
        str | None, typer.Option("--class", help="Class of seed and image endpoints (conditional models).")
    ] = None,
    overwrite: Overwrite = False,
) -> None:
    """Walk the latent space between two seeds, two classes or two images (slerp or lerp)."""
    from augmentor.latent.interpolate import interpolate_run

    written = interpolate_run(
        run,
        list(start),
        list(end),
        out,
        frames=_renamed(frames, old_steps, "--steps", "--frames", 8),
        method=method,
        seed=seed,
        class_name=class_name,
        overwrite=overwrite,
    )
    typer.echo(str(written))


@app.command("project")
@reports_errors
def project_images(
    run: Annotated[Path, typer.Argument(help="A DCGAN or VAE run folder.")],
    images: Annotated[list[Path], typer.Argument(help="Image files of the model's size and channels.")],
    out: Out,
    class_name: Annotated[
        str | None, typer.Option("--class", help="Class of all the images (needed by conditional models).")
    ] = None,
    inversion_steps: Annotated[
        int, typer.Option("--inversion-steps", min=0, help="Optimisation steps per code (DCGAN).")
    ] = 300,
    old_steps: Annotated[
        int | None, typer.Option("--steps", min=0, hidden=True, help="Old spelling of --inversion-steps.")
    ] = None,
    restarts: Annotated[
        int, typer.Option("--restarts", min=1, help="Random starting codes per image; the best is kept (DCGAN).")
    ] = 4,
    feature_weight: Annotated[
        float, typer.Option("--feature-weight", min=0.0, help="Weight of the classifier-feature MSE (0: pixels only).")
    ] = 0.1,
    features: Annotated[
        Path | None,
        typer.Option("--features", help="Classifier run for the feature loss (default: the shipped one if it fits)."),
    ] = None,
    refine_steps: Annotated[
        int, typer.Option("--refine-steps", min=0, help="VAE: optimisation steps after the encoder mean.")
    ] = 0,
    seed: Annotated[
        int, typer.Option("--seed", min=0, max=2**32 - 1, help="Seed of the starting and baseline random codes.")
    ] = 0,
    device: Device = "auto",
    overwrite: Overwrite = False,
    as_json: JsonFlag = False,
) -> None:
    """Project images into a generator's latent space: codes, reconstructions and their errors."""
    from augmentor.latent.inversion import project_run

    result = project_run(
        run,
        list(images),
        out,
        class_name=class_name,
        inversion_steps=_renamed(inversion_steps, old_steps, "--steps", "--inversion-steps", 300),
        restarts=restarts,
        feature_weight=feature_weight,
        features_run=features,
        refine_steps=refine_steps,
        seed=seed,
        device=device,
        overwrite=overwrite,
    )
    from augmentor.report.summaries import projection_document, projection_view

    document = projection_document(result, out)
    _show(document, projection_view, as_json)
    if document["note"]:
        typer.echo(f"note: {document['note']}", err=True)


@app.command("directions")
@reports_errors
def directions(
    run: Annotated[Path, typer.Argument(help="A DCGAN or VAE run folder.")],
    out: Out,
    data: Annotated[
        str | None, typer.Option("--data", help="Images to encode (any SRC; needed for a VAE, unused by a DCGAN).")
    ] = None,
    by: Annotated[str, typer.Option("--by", help="class (one per class, vs the rest) or attribute:NAME.")] = "class",
    method: Annotated[str, typer.Option("--method", help="mean-diff, linear (logistic normal) or pca.")] = "mean-diff",
    n: Annotated[
        int | None,
        typer.Option(
            "--n", "--count", min=1, help="Codes to use (VAE: a random subset; DCGAN: samples, default 2000)."
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", min=0, max=2**32 - 1)] = 0,
    device: Device = "auto",
    overwrite: Overwrite = False,
    as_json: JsonFlag = False,
) -> None:
    """Find latent directions of classes or image attributes, scored on a held-out 20%."""
    from augmentor.latent.directions import directions_run

    result = directions_run(
        run,
        data,
        out,
        by=by,
        method=method,
        n=n,
        seed=seed,
        device=device,
        overwrite=overwrite,
        command=_command_line(),
    )
    from augmentor.report.summaries import directions_document, directions_view

    _show(directions_document(result, out), directions_view, as_json)


@app.command("edit")
@reports_errors
def edit(
    run: Annotated[Path, typer.Argument(help="A DCGAN or VAE run folder.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="A .png grid, or a folder (ImageFolder + manifest).")],
    direction: Annotated[str, typer.Option("--direction", help="DIR:NAME, a direction from augmentor directions.")],
    strengths: Annotated[
        str, typer.Option("--strengths", help="START:STOP:COUNT (e.g. -3:3:7) or a comma list.")
    ] = "-3:3:7",
    condition_on: Annotated[
        str | None, typer.Option("--condition-on", help="DIR:OTHER, a direction to project out first.")
    ] = None,
    seeds: Annotated[
        str | None, typer.Option("--seeds", help="Seeds of the rows, e.g. 1,2,3 (default 0,1,2,3).")
    ] = None,
    images: Annotated[
        list[Path] | None, typer.Option("--images", help="Image files to edit (a VAE encodes them); repeatable.")
    ] = None,
    class_name: Annotated[
        str | None, typer.Option("--class", help="Class of the samples (conditional models).")
    ] = None,
    overwrite: Overwrite = False,
) -> None:
    """Move samples along a latent direction: rows = samples, columns = strengths."""
    from augmentor.latent.edit import edit_run, parse_seeds, parse_strengths

    edit_run(
        run,
        direction,
        parse_strengths(strengths),
        out,
        condition_on=condition_on,
        seeds=parse_seeds(seeds) if seeds is not None else None,
        images=list(images) if images else None,
        class_name=class_name,
        overwrite=overwrite,
        command=_command_line(),
    )
    typer.echo(str(out))


def _terminate(signum: int, frame: object) -> None:
    # SIGTERM unwinds like Ctrl-C, so staging folders are cleaned up and no partial output remains.
    raise KeyboardInterrupt


def main() -> None:
    """Console-script entry point (under torchrun: one rank of a process group, rank 0 alone prints)."""
    from augmentor.core.errors import UserError
    from augmentor.distributed.context import launched

    signal.signal(signal.SIGTERM, _terminate)
    try:
        if launched():
            from augmentor.core.console import silence
            from augmentor.distributed.context import setup, teardown

            try:
                context = setup()
            except UserError as error:
                sys.stderr.write(f"error: {error.message}\n")
                sys.exit(2)
            if not context.is_main:
                silence()
            try:
                app(prog_name="augmentor")
            finally:
                teardown()
        else:
            app(prog_name="augmentor")
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)


if __name__ == "__main__":
    main()
