"""The gain experiment: train the same classifier on real-only and augmented sets, compare on test.

Honesty rules (DESIGN): subsets come from the train split only, with the seed; every arm gets the
same architecture, step budget and seeds; synthetic images are made from the arm's own real subset;
the test split is touched once per trained model, for its final score, and for nothing else.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from augmentor.core.console import progress
from augmentor.core.errors import UserError
from augmentor.core.outdir import check_output, staged_output
from augmentor.core.parallel import default_workers
from augmentor.data.imageset import ImageSet, fingerprint
from augmentor.data.options import ReadOptions
from augmentor.data.readers import open_dataset
from augmentor.data.subset import stratified_indices
from augmentor.experiments.arms import Arm, GeneratorOptions, SubsetModels, parse_arms
from augmentor.experiments.stats import mean_ci, verdict


@dataclass(frozen=True)
class GainConfig:
    """``augmentor gain`` options (field names = flag names)."""

    per_class: tuple[int, ...] = (10, 100)
    arms: str = "real,classic"
    draws: int = 3  # paired draws: draw d uses seed d for its real subset and every training
    arch: str = "fast"
    budget: int = 300  # optimiser steps, the same in every arm
    batch_size: int = 128
    lr: float = 3e-3
    synthetic_ratio: tuple[float, ...] = (4.0,)
    device: str = "auto"
    workers: int = 0
    gen_steps: int = 600  # each generator's training steps on its arm's real subset
    gen_width: int = 32
    min_confidence: float = 0.5  # the gated arms' threshold

    def validate(self) -> None:
        """Refuse counts below 1 and non-positive sizes or ratios, naming the flag (before any work)."""
        if self.draws < 1:
            raise UserError(f"--draws {self.draws}: give at least 1 paired draw")
        if self.budget < 1:
            raise UserError(f"--budget {self.budget}: give at least 1 optimiser step")
        if self.gen_steps < 1:  # else the generator's own check would name train's --steps
            raise UserError(f"--gen-steps {self.gen_steps}: give at least 1 training step")
        for flag, values in (("--per-class", self.per_class), ("--synthetic-ratio", self.synthetic_ratio)):
            if not values or min(values) <= 0:
                shown = ",".join(f"{v:g}" for v in values)
                raise UserError(f"{flag} {shown!r}: give positive numbers separated by commas, e.g. 10,100")


def parse_numbers(text: str, flag: str, kind: type = int) -> tuple:
    """``10,100`` → (10, 100) for a comma-separated flag (``kind`` int or float); what ``validate`` checks."""
    try:
        return tuple(kind(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise UserError(f"{flag} {text!r}: give positive numbers separated by commas, e.g. 10,100") from None


@dataclass
class GainResult:
    """Every trained model's score, the statistics, and the generators trained on the way."""

    config: dict[str, Any]
    runs: list[dict[str, Any]] = field(default_factory=list)
    summary: list[dict[str, Any]] = field(default_factory=list)
    generators: list[dict[str, Any]] = field(default_factory=list)  # each generator trained, with its last losses


def _train_and_score(train_set: ImageSet, test: ImageSet, config: GainConfig, seed: int) -> dict[str, Any]:
    """Train the arm's classifier on ``train_set`` and score it once on ``test``."""
    from augmentor.classifiers.train import TrainConfig, train_classifier

    train_config = TrainConfig(
        arch=config.arch,
        steps=config.budget,
        batch_size=config.batch_size,
        lr=config.lr,
        seed=seed,
        device=config.device,
        evals=1,
    )
    started = time.perf_counter()
    classifier = train_classifier(train_set, train_config)  # the test split plays no part in training
    scores = classifier.evaluate(test)
    return {
        "accuracy": scores["accuracy"],
        "per_class_accuracy": list(scores["per_class"].values()),  # in class order, as summarise reads them
        "train_images": len(train_set),
        "seconds": round(time.perf_counter() - started, 2),
    }


def generator_options(config: GainConfig) -> GeneratorOptions:
    """How generators are trained inside the experiment (shared by every arm, with one cache)."""
    return GeneratorOptions(
        steps=config.gen_steps,
        width=config.gen_width,
        device=config.device,
        min_confidence=config.min_confidence,
        judge_steps=config.budget,
    )


def plan(config: GainConfig) -> list[tuple[int, int, Arm, float]]:
    """Every (per_class, seed, arm, ratio) to train, the real arm once per (N, draw); draw d uses seed d."""
    arms = parse_arms(config.arms)
    jobs = []
    for n in config.per_class:
        for seed in range(config.draws):
            for arm in arms:
                for ratio in config.synthetic_ratio if arm.sources else (0.0,):
                    jobs.append((n, seed, arm, ratio))
    return jobs


def run_gain(
    src: str,
    config: GainConfig,
    out: Path,
    *,
    read_options: ReadOptions | None = None,
    overwrite: bool = False,
    command: str = "",
) -> GainResult:
    """Run every arm at every N and seed; write ``report.md``, ``results.json`` and plots to ``out``."""
    config.validate()
    models = SubsetModels(generator_options(config))
    jobs = plan(config)
    check_output(out, overwrite)
    dataset = open_dataset(src, read_options or ReadOptions())
    if dataset.test is None:
        raise UserError(f"{src}: the gain experiment needs a test split (train/ and test/ folders, or t10k files)")
    train, test = dataset.train, dataset.test
    from augmentor.classifiers.evaluate import align_classes

    test = align_classes(train.class_names, test)
    for n in config.per_class:
        stratified_indices(train, n, 0)  # a class smaller than N is an error before any training
    workers = config.workers or default_workers()
    runs: list[dict[str, Any]] = []
    subsets: dict[tuple[int, int], ImageSet] = {}
    with progress("gain experiment", len(jobs)) as advance:
        for n, seed, arm, ratio in jobs:
            if (n, seed) not in subsets:
                subsets[(n, seed)] = train.take(stratified_indices(train, n, seed))
            real = subsets[(n, seed)]
            train_set = arm.training_set(real, ratio, seed, models, workers)
            scores = _train_and_score(train_set, test, config, seed)
            runs.append(
                {
                    "per_class": n,
                    "seed": seed,
                    "arm": arm.name,
                    "synthetic_ratio": ratio,
                    "real_fingerprint": fingerprint(real),
                    **scores,
                }
            )
            advance(1)
    result = GainResult(
        config={**asdict(config), "source": src, "test_images": len(test), "command": command},
        runs=runs,
        generators=models.log,
        summary=summarise(runs, train.class_names),
    )
    write_report(out, result, train.class_names, overwrite)
    return result


def _key(run: dict[str, Any]) -> tuple[str, float]:
    return run["arm"], run["synthetic_ratio"]


def summarise(runs: list[dict[str, Any]], class_names: list[str]) -> list[dict[str, Any]]:
    """Per (N, arm, ratio): mean ± CI, paired differences to ``real`` and to ``classic``, per-class means."""
    rows = []
    for n in sorted({r["per_class"] for r in runs}):
        at_n = [r for r in runs if r["per_class"] == n]
        by_seed = {(r["seed"], *_key(r)): r["accuracy"] for r in at_n}
        for arm, ratio in dict.fromkeys(_key(r) for r in at_n):
            mine = sorted((r for r in at_n if _key(r) == (arm, ratio)), key=lambda r: r["seed"])
            row: dict[str, Any] = {
                "per_class": n,
                "arm": arm,
                "synthetic_ratio": ratio,
                "accuracy": mean_ci([r["accuracy"] for r in mine]),
                "per_class_accuracy": {
                    name: sum(r["per_class_accuracy"][k] for r in mine) / len(mine)
                    for k, name in enumerate(class_names)
                },
            }
            for baseline in ("real", "classic"):
                base_ratio = 0.0 if baseline == "real" else ratio
                pairs = [
                    by_seed[(r["seed"], arm, ratio)] - by_seed[(r["seed"], baseline, base_ratio)]
                    for r in mine
                    if (r["seed"], baseline, base_ratio) in by_seed
                ]
                if pairs and arm != baseline:
                    difference = mean_ci(pairs)
                    row[f"vs_{baseline}"] = {**difference, "verdict": verdict(difference)}
            rows.append(row)
    return rows


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f}"


def report_markdown(result: GainResult, class_names: list[str]) -> str:
    """The human report: what was run, the table per N, per-class accuracy, how to read it."""
    from augmentor.report.tables import percent_interval as _interval

    c = result.config
    lines = [
        "# Gain experiment",
        "",
        f"Data `{c['source']}`; classifier `{c['arch']}`, {c['budget']} steps of batch {c['batch_size']} in every arm; "
        f"seeds 0…{c['draws'] - 1}; {c['test_images']:,} test images, used only for the final scores.",
        f"Synthetic images per real image: {', '.join(f'{r:g}' for r in c['synthetic_ratio'])}.",
        "",
        "Accuracy in % (mean ± 95% t-interval over seeds). Differences are paired by seed; a gain whose "
        "interval crosses zero is reported as none.",
        "",
        "| per class | arm | ratio | accuracy | Δ vs real | verdict | Δ vs classic | verdict |",
        "|---:|---|---:|---:|---:|---|---:|---|",
    ]
    for row in result.summary:
        real = row.get("vs_real")
        classic = row.get("vs_classic")
        lines.append(
            f"| {row['per_class']} | {row['arm']} | {row['synthetic_ratio']:g} | {_interval(row['accuracy'])} | "
            f"{_interval(real, True) if real else '–'} | {real['verdict'] if real else '–'} | "
            f"{_interval(classic, True) if classic else '–'} | {classic['verdict'] if classic else '–'} |"
        )
    lines += ["", "## Per-class accuracy (mean over seeds, %)", ""]
    header = "| per class | arm | ratio | " + " | ".join(class_names) + " |"
    lines += [header, "|" + "---:|" * (3 + len(class_names))]
    for row in result.summary:
        cells = " | ".join(_pct(row["per_class_accuracy"][n]) for n in class_names)
        lines.append(f"| {row['per_class']} | {row['arm']} | {row['synthetic_ratio']:g} | {cells} |")
    lines += ["", "Plots: `accuracy.png` (accuracy per arm and N), `difference.png` (paired Δ vs real)."]
    if len(c["synthetic_ratio"]) > 1:
        lines.append("`ratio.png`: accuracy against the number of synthetic images per real one.")
    lines += ["", f"Command: `{c['command']}`", ""]
    return "\n".join(lines)


def write_report(out: Path, result: GainResult, class_names: list[str], overwrite: bool) -> Path:
    """``report.md``, ``results.json`` and the plots, atomically."""
    import json

    from augmentor.report.gain_plots import accuracy_png, difference_png, ratio_png

    files = {
        "report.md": report_markdown(result, class_names).encode(),
        "results.json": (
            json.dumps(
                {
                    "config": result.config,
                    "summary": result.summary,
                    "runs": result.runs,
                    "generators": result.generators,
                },
                indent=2,
            )
            + "\n"
        ).encode(),
        "accuracy.png": accuracy_png(result.summary),
        "difference.png": difference_png(result.summary),
    }
    if len(result.config["synthetic_ratio"]) > 1:
        files["ratio.png"] = ratio_png(result.summary)
    with staged_output(out, overwrite) as staging:
        for name, data in files.items():
            (staging / name).write_bytes(data)
    return out
