"""What each command prints: one JSON-ready document per result, and the human view drawn from it.

``--json`` prints the document; without it the CLI prints the view, built from the same document so
the two never disagree. A view is a list of rich tables and plain lines (plain lines go through
unwrapped, so scripts can grep ``manifest:`` whatever the terminal width).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.table import Table

from augmentor.report.gain_report import budget_line, gain_table
from augmentor.report.tables import confusion_table, counts_table, info_table, pipeline_table, score_table

if TYPE_CHECKING:
    from augmentor.classic.check import PipelineReport
    from augmentor.classic.expand import ClassicResult
    from augmentor.data.writers import WriteResult
    from augmentor.experiments.gain import GainResult
    from augmentor.experiments.study import StudyResult
    from augmentor.latent.directions import DirectionsResult
    from augmentor.latent.inversion import ProjectionResult
    from augmentor.synthetic.expand import ExpandResult

View = list[Table | str]


def _lines(pairs: dict[str, Any], width: int) -> list[str]:
    """``key:`` padded to ``width``, then the value: the plain-text summary lines."""
    return [f"{key + ':':<{width}} {value}" for key, value in pairs.items()]


# --- data info -----------------------------------------------------------------------------------


def info_view(document: dict[str, Any]) -> View:
    """``augmentor data info``: counts per class and split, with duplicates in the caption; then the
    flip-safety hint when some classes are not left-right symmetric."""
    hint = document.get("mirror", {}).get("hint")
    return [info_table(document), *([f"hint: {hint}"] if hint else [])]


# --- commands that write an ImageFolder (data export/subset, classic, sample, expand) ---------------


def written_document(result: WriteResult, **extra: Any) -> dict[str, Any]:
    """Where a dataset went and its counts per split, class and source, plus ``extra`` fields."""
    return {
        "out": str(result.out),
        "manifest": str(result.manifest),
        "dataset_json": str(result.dataset_json),
        "counts": {name: split["per_class"] for name, split in result.summary["splits"].items()},
        **extra,
    }


def written_view(document: dict[str, Any]) -> View:
    """The counts table, then where the images and manifest went, then any extra string fields."""
    extra = {k: v for k, v in document.items() if k not in ("out", "manifest", "dataset_json", "counts")}
    return [
        counts_table(f"written to {document['out']}", document["counts"]),
        f"images:   {document['out']}",
        f"manifest: {document['manifest']}",
        *_lines({k: v for k, v in extra.items() if isinstance(v, str)}, 9),
    ]


def classic_document(result: ClassicResult) -> dict[str, Any]:
    """``augmentor classic``: the written dataset and its preview grid (when any image was augmented)."""
    return written_document(result.written, **({"preview": str(result.preview)} if result.preview else {}))


def expand_document(result: ExpandResult) -> dict[str, Any]:
    """``augmentor expand``: the written dataset, what each gate dropped and any quota shortfall."""
    return written_document(result.written, **result.report())


def expand_view(document: dict[str, Any]) -> View:
    """The written dataset, one line per enabled gate and one per source short of its quota."""
    gate_lines = {}
    for gate, per_source in document["dropped"].items():
        detail = ", ".join(f"{name} {n}" for name, n in per_source.items())
        gate_lines[f"dropped by --{gate.replace('_', '-')}"] = f"{sum(per_source.values())} ({detail})"
    for name, missing in document["shortfall"].items():
        gate_lines[f"short of quota ({name})"] = ", ".join(f"{c} {n}" for c, n in missing.items())
    # Warnings were printed on stderr while the command ran; the view repeats only the outcome.
    written = {k: v for k, v in document.items() if k not in ("dropped", "shortfall", "warnings")}
    return [*written_view(written), *_lines(gate_lines, 9)]


# --- pipeline check -----------------------------------------------------------------------------


def pipeline_check_document(report: PipelineReport) -> dict[str, Any]:
    """``augmentor pipeline check``: the transforms, what the pipeline ran on, and the preview grid."""
    return {
        "pipeline": report.name,
        "valid": True,  # an invalid pipeline is refused with exit code 2 before any document exists
        "transforms": report.transforms,
        "tested_on": report.tested_on,
        "preview": str(report.preview) if report.preview else None,
    }


def pipeline_check_view(document: dict[str, Any]) -> View:
    """The transforms (nested ones indented), then where it ran and the preview path."""
    lines = [f"ran cleanly on {document['tested_on']}"]
    if document["preview"]:
        lines.append(f"preview: {document['preview']}")
    return [pipeline_table(document["transforms"], f"{document['pipeline']}: valid"), *lines]


# --- classifiers --------------------------------------------------------------------------------


def archs_view(rows: list[dict[str, Any]]) -> View:
    """``augmentor classify archs``: parameters and MFLOPs per image of every architecture."""
    first = rows[0]  # every row was counted at the same input shape
    size = first["image_size"]
    table = Table(title=f"classifiers at {first['in_channels']}×{size}×{size}, {first['num_classes']} classes")
    for column in ("arch", "params", "MFLOPs / image", "summary"):
        table.add_column(column, justify="right" if column in ("params", "MFLOPs / image") else "left")
    for row in rows:
        table.add_row(row["arch"], f"{row['params']:,}", f"{row['flops'] / 1e6:,.1f}", row["summary"])
    return [table]


def classifier_train_document(config: dict[str, Any], final: dict[str, Any] | None, out: Path) -> dict[str, Any]:
    """``augmentor classify train``: the run folder, its budget, time, device and test accuracy."""
    return {
        "run": str(out),
        "arch": config["arch"],
        "steps": config["training"]["steps"],
        "seconds": config["training"]["seconds"],
        "device": config["device"],
        "test_accuracy": final["accuracy"] if final else None,
        **(
            {"validation": f"best {v['best_accuracy']:.4f} at step {v['best_step']}; kept step {v['kept_step']}"}
            if (v := config.get("validation"))
            else {}
        ),
    }


def classifier_train_view(document: dict[str, Any]) -> View:
    """One ``key: value`` line per field, the accuracy to four places."""
    shown = dict(document)
    if isinstance(shown["test_accuracy"], float):
        shown["test_accuracy"] = f"{shown['test_accuracy']:.4f}"
    return _lines(shown, 15)


PREDICTIONS_SHOWN = 50  # rows of the table; --out or --json carry all of them


def predictions_view(document: dict[str, Any]) -> View:
    """``augmentor classify predict``: one row per image (the first PREDICTIONS_SHOWN), then where all went."""
    table = Table(title=f"predictions of {document['run']}")
    for column in ("file", "label", "probability", "top classes"):  # a file name wraps: its end tells files apart
        table.add_column(column, justify="right" if column == "probability" else "left", overflow="fold")
    rows = document["predictions"]
    for row in rows[:PREDICTIONS_SHOWN]:
        top = ", ".join(f"{name} {p:.2f}" for name, p in row["top"])
        table.add_row(row["file"], row["label"], f"{row['probability']:.3f}", top)
    lines: View = [table]
    if len(rows) > PREDICTIONS_SHOWN:
        more = f"… {len(rows) - PREDICTIONS_SHOWN} more"
        lines.append(
            f"{more} in {document['out']}" if document.get("out") else f"{more}: pass --out FILE.csv or --json"
        )
    elif document.get("out"):
        lines.append(f"written to {document['out']}")
    return lines


def eval_view(scores: dict[str, Any]) -> View:
    """``augmentor classify eval``: the accuracy line, then per-class accuracy and the confusion matrix."""
    return [f"accuracy: {scores['accuracy']:.4f} on {scores['images']:,} images", confusion_table(scores)]


# --- generators and their latent spaces ---------------------------------------------------------


def generative_train_document(
    out: Path, kind: str, step: int, steps: int, metrics: list[dict], warnings: list[str]
) -> dict[str, Any]:
    """``augmentor train dcgan|vae``: the run folder, how far it got and its last logged losses."""
    return {
        "run": str(out),
        "kind": kind,
        "step": step,
        "steps": steps,
        "last": metrics[-1] if metrics else None,
        "warnings": warnings,
    }


def generative_train_view(document: dict[str, Any]) -> View:
    """Run folder, steps done, last losses and where the sample grids are."""
    lines = {"run": document["run"], "steps": f"{document['step']} of {document['steps']}"}
    if document["last"]:
        lines["losses"] = ", ".join(f"{k} {v}" for k, v in document["last"].items() if k != "step")
    lines["samples"] = str(Path(document["run"]) / "samples")
    return _lines(lines, 9)


def projection_document(result: ProjectionResult, out: Path) -> dict[str, Any]:
    """``augmentor project``: the output folder and ``projection.json``'s content."""
    return {"out": str(out), **result.summary()}


def projection_view(document: dict[str, Any]) -> View:
    """One row per image (reconstruction MSE and SSIM beside a random code's MSE), then the mean."""
    table = Table(title=f"{document['run_id']}: projection into {document['out']}")
    for column in ("image", "MSE", "SSIM", "random-code MSE"):
        table.add_column(column, justify="left" if column == "image" else "right", overflow="fold")
    for row in [*document["images"], {"path": "mean", **document["mean"]}]:
        table.add_row(row["path"], f"{row['mse']:.4f}", f"{row['ssim']:.3f}", f"{row['random_code_mse']:.4f}")
    return [table]


def directions_document(result: DirectionsResult, out: Path) -> dict[str, Any]:
    """``augmentor directions``: ``directions.json``'s content and the output folder."""
    return {**result.info, "out": str(out)}


def directions_view(document: dict[str, Any]) -> View:
    """Held-out AUC first (0.5 is chance whatever the group sizes), then the accuracy beside what answering
    the larger group alone scores: one class against the rest reads 0.9 with no direction at all."""
    table = Table(title=f"{document['method']} directions by {document['by']} ({document['out']})")
    for column in ("direction", "AUC (0.5 = chance)", "accuracy", "larger group alone"):
        table.add_column(column, justify="left" if column == "direction" else "right")
    for record in document["directions"]:
        majority = record.get("majority_accuracy")
        table.add_row(
            record["name"],
            f"{record['auc']:.3f}",
            f"{record['accuracy']:.3f}",
            f"{majority:.3f}" if majority is not None else "",
        )
    return [table]


# --- metrics and the gain experiment ------------------------------------------------------------


def score_view(document: dict[str, Any]) -> View:
    """``augmentor score``: the scored images beside the real reference, one table."""
    return [score_table(document)]


def gain_document(result: GainResult, out: Path) -> dict[str, Any]:
    """``augmentor gain``: where the report went and the summary rows (mean ± CI, paired differences)."""
    return {"report": str(out / "report.md"), "summary": result.summary}


def gain_view(result: GainResult, report: Path) -> View:
    """The results table, then the report's path: both on stdout (the table is the result; progress and
    warnings are what goes to stderr)."""
    c = result.config
    return [gain_table(result.summary, c["arch"], budget_line(c)), f"report: {report}"]


# --- the study -------------------------------------------------------------------------------------------


def study_document(result: StudyResult) -> dict[str, Any]:
    """``augmentor study``: the answer first, the command that applies it, the choices and the comparisons."""
    return {
        "answer": result.answer,
        "command": result.command,
        "out": str(result.out),
        "plan_sha256": result.plan_sha256,
        "choice": result.choice,
        "comparisons": result.comparisons,
    }


def study_view(document: dict[str, Any]) -> View:
    """The answer, then the comparisons' table and where the report is."""
    table = Table(title="confirmation draws, scored once on test")
    for column in ("comparison", "draws", "mean (points)", "95% interval", "Wilcoxon p", "won"):
        table.add_column(column, justify="left" if column == "comparison" else "right")
    for c in document["comparisons"]:
        interval = "n/a" if c["low"] is None else f"{100 * c['low']:+.2f} … {100 * c['high']:+.2f}"
        wilcoxon = "n/a" if c["p_wilcoxon"] is None else f"{c['p_wilcoxon']:.3g}"
        table.add_row(
            c["comparison"], str(c["draws"]), f"{100 * c['mean']:+.2f}", interval, wilcoxon, f"{c['wins']}/{c['draws']}"
        )
    return [
        f"answer: {document['answer']}",
        table,
        f"apply: {document['command']}",
        f"report: {document['out']}/report.md",
    ]
