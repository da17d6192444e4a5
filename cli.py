"""The ``augmentor`` command line: parse flags, build a config, call one library function, print.

Only typer and the standard library are imported at module level, so ``--help`` and
``--version`` answer without loading torch, albumentations or numpy.
"""

from __future__ import annotations

import functools
import json
import shlex
import signal
import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from augmentor import __version__

# CLI-local state set by the root callback (the library itself takes everything as arguments).
_state = {"debug": False}
_Command = TypeVar("_Command", bound=Callable[..., Any])


def reports_errors(command: _Command) -> _Command:
    """Turn library errors into the project's exit codes: 2 for bad input, 1 for anything else."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except Exception as exc:
            from augmentor.errors import UserError

            if _state["debug"] or type(exc).__module__.split(".")[0] in ("typer", "click"):
                raise
            if isinstance(exc, UserError):
                typer.echo(f"error: {exc.message}", err=True)
                for line in exc.details:
                    typer.echo(f"  {line}", err=True)
                raise typer.Exit(2) from None
            typer.echo(f"error: {type(exc).__name__}: {exc} (rerun with --debug for a traceback)", err=True)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


app = typer.Typer(
    help="Generative and classic data augmentation for image-classification datasets.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)
data_app = typer.Typer(help="Inspect, export and subset datasets.", no_args_is_help=True)
pipeline_app = typer.Typer(help="Show and check classic augmentation pipelines.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(pipeline_app, name="pipeline")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"augmentor {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks instead of one-line errors.")
    ] = False,
) -> None:
    """Generative and classic data augmentation for image-classification datasets."""
    _state["debug"] = debug


# Option bundles shared by every command that reads a dataset or writes a folder.
Src = Annotated[
    str,
    typer.Argument(
        help="Dataset: an ImageFolder, IDX files, a .npz, a built-in name (fashion-mnist), or - for "
        "image paths on stdin (the parent folder is the class).",
        show_default=False,
    ),
]
DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data",
        help="Folder holding a built-in dataset's files (default: $AUGMENTOR_DATA, then "
        "/usr/share/datasets).",
    ),
]
ImageSize = Annotated[
    str | None,
    typer.Option("--image-size", help="Resize every image explicitly: N or HEIGHTxWIDTH."),
]
Channels = Annotated[
    int | None,
    typer.Option("--channels", min=1, max=3, help="Convert every image explicitly to 1 or 3 channels."),
]
SkipCorrupt = Annotated[
    bool, typer.Option("--skip-corrupt", help="Go on past unreadable files and report them (default: stop).")
]
Out = Annotated[
    Path, typer.Option("--out", "-o", help="Output folder (refused if it exists and is not empty).")
]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace a non-empty --out.")]
Workers = Annotated[
    int, typer.Option("--workers", min=0, help="Worker processes (0: one per core, up to 8).")
]
JsonFlag = Annotated[
    bool, typer.Option("--json", help="Print one JSON document on stdout instead of tables.")
]


def _read_options(data: Path | None, image_size: str | None, channels: int | None, skip_corrupt: bool):
    from augmentor.data.options import ReadOptions, parse_image_size
    from augmentor.errors import UserError

    if channels not in (None, 1, 3):
        raise UserError(f"--channels {channels} is not supported; use 1 (grey) or 3 (colour)")
    return ReadOptions(
        data=data, image_size=parse_image_size(image_size), channels=channels, skip_corrupt=skip_corrupt
    )


def _command_line() -> str:
    return shlex.join(["augmentor", *sys.argv[1:]])


def _print_json(document: Any) -> None:
    typer.echo(json.dumps(document, indent=2, ensure_ascii=False))


def _stdout_console():
    from rich.console import Console

    return Console()


@data_app.command("info")
@reports_errors
def data_info(
    src: Src,
    data: DataDir = None,
    image_size: ImageSize = None,
    channels: Channels = None,
    skip_corrupt: SkipCorrupt = False,
    as_json: JsonFlag = False,
) -> None:
    """Classes, counts per class and split, image size, channels and exact duplicates."""
    from augmentor.data.jobs import info

    result = info(src, _read_options(data, image_size, channels, skip_corrupt))
    if as_json:
        _print_json(result)
        return
    from augmentor.render import info_table

    _stdout_console().print(info_table(result))


def _print_written(result, as_json: bool, extra: dict | None = None) -> None:
    document = {
        "out": str(result.out),
        "manifest": str(result.manifest),
        "dataset_json": str(result.dataset_json),
        "counts": {name: split["per_class"] for name, split in result.summary["splits"].items()},
        **(extra or {}),
    }
    if as_json:
        _print_json(document)
        return
    from augmentor.render import counts_table

    _stdout_console().print(counts_table(f"written to {result.out}", document["counts"]))
    typer.echo(f"images:   {result.out}")
    typer.echo(f"manifest: {result.manifest}")
    for key, value in (extra or {}).items():
        typer.echo(f"{key + ':':<9} {value}")


@data_app.command("export")
@reports_errors
def data_export(
    src: Src,
    out: Out,
    overwrite: Overwrite = False,
    workers: Workers = 0,
    data: DataDir = None,
    image_size: ImageSize = None,
    channels: Channels = None,
    skip_corrupt: SkipCorrupt = False,
    as_json: JsonFlag = False,
) -> None:
    """Write a dataset as an ImageFolder of PNGs with manifest.jsonl and dataset.json."""
    from augmentor.data.jobs import export

    options = _read_options(data, image_size, channels, skip_corrupt)
    result = export(src, out, options, overwrite=overwrite, workers=workers, command=_command_line())
    _print_written(result, as_json)


@data_app.command("subset")
@reports_errors
def data_subset(
    src: Src,
    per_class: Annotated[int, typer.Option("--per-class", min=1, help="Images per class drawn from train.")],
    out: Out,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the draw.")] = 0,
    overwrite: Overwrite = False,
    workers: Workers = 0,
    data: DataDir = None,
    image_size: ImageSize = None,
    channels: Channels = None,
    skip_corrupt: SkipCorrupt = False,
    as_json: JsonFlag = False,
) -> None:
    """Draw a stratified low-data subset of the train split; the test split is written untouched."""
    from augmentor.data.jobs import subset

    options = _read_options(data, image_size, channels, skip_corrupt)
    result = subset(
        src, per_class, seed, out, options, overwrite=overwrite, workers=workers, command=_command_line()
    )
    _print_written(result, as_json)


@app.command("classic")
@reports_errors
def classic(
    src: Src,
    out: Out,
    pipeline: Annotated[
        str,
        typer.Option("--pipeline", "-p", help="Preset (light, medium, heavy) or an A.save YAML/JSON file."),
    ] = "medium",
    per_image: Annotated[
        int | None, typer.Option("--per-image", min=1, help="K augmented copies of each image.")
    ] = None,
    per_class: Annotated[
        int | None, typer.Option("--per-class", min=1, help="Bring every class up to N images.")
    ] = None,
    include_originals: Annotated[
        bool,
        typer.Option(
            "--include-originals/--no-include-originals", help="Keep the real images in the output."
        ),
    ] = True,
    no_flip_classes: Annotated[
        str, typer.Option("--no-flip-classes", help="Comma-separated classes that must never be mirrored.")
    ] = "",
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same bytes, whatever --workers is.")] = 0,
    workers: Workers = 0,
    overwrite: Overwrite = False,
    data: DataDir = None,
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
        workers=workers,
        seed=seed,
    )
    options = _read_options(data, image_size, channels, skip_corrupt)
    result = run_classic(src, config, options, out, overwrite=overwrite, command=_command_line())
    extra = {"preview": str(result.preview)} if result.preview.exists() else {}
    _print_written(result.written, as_json, extra)


class PipelineFormat(StrEnum):
    yaml = "yaml"
    json = "json"


@pipeline_app.command("show")
@reports_errors
def pipeline_show(
    preset: Annotated[str, typer.Argument(help="Preset name (light, medium, heavy) or a pipeline file.")],
    fmt: Annotated[
        PipelineFormat, typer.Option("--format", "-f", help="Output format.")
    ] = PipelineFormat.yaml,
) -> None:
    """Print a pipeline in albumentations' A.save format, ready to edit and pass to --pipeline."""
    from augmentor.classic.pipelines import load_pipeline

    typer.echo(load_pipeline(preset).dump(fmt.value), nl=False)


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
    seed: Annotated[int, typer.Option("--seed")] = 0,
    overwrite: Overwrite = False,
    as_json: JsonFlag = False,
) -> None:
    """Validate a pipeline file, list what it does, and optionally preview it on real images."""
    from augmentor.classic.check import check_pipeline
    from augmentor.data.options import ReadOptions

    report = check_pipeline(
        file, preview=preview, data=data, read_options=ReadOptions(), seed=seed, overwrite=overwrite
    )
    if as_json:
        _print_json(
            {
                "pipeline": report.name,
                "valid": True,
                "transforms": report.transforms,
                "tested_on": report.tested_on,
                "preview": str(report.preview) if report.preview else None,
            }
        )
        return
    from augmentor.render import pipeline_table

    _stdout_console().print(pipeline_table(report.transforms, f"{report.name}: valid"))
    typer.echo(f"ran cleanly on {report.tested_on}")
    if report.preview:
        typer.echo(f"preview: {report.preview}")


def _terminate(signum: int, frame: object) -> None:
    # SIGTERM unwinds like Ctrl-C, so staging folders are cleaned up and no partial output remains.
    raise KeyboardInterrupt


def main() -> None:
    """Console-script entry point."""
    signal.signal(signal.SIGTERM, _terminate)
    try:
        app(prog_name="augmentor")
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)


if __name__ == "__main__":
    main()
