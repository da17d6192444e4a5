"""Reports that say what they know (issue 26 item 6): the terminal shows report.md's warnings, one verdict
convention, intervals and p labelled, small test splits flagged, data objects printed on one line."""

from __future__ import annotations

import io
from types import SimpleNamespace

import numpy as np
from rich.console import Console

from augmentor.data.imageset import Dataset, ImageSet
from augmentor.experiments.stats import mean_ci
from augmentor.report.gain_report import gain_table, report_warnings


def comparison(values: list[float], p_holm: float | None) -> dict:
    stats = {**mean_ci(values), "p_holm": p_holm}
    stats["verdict"] = "gain" if p_holm is not None and p_holm < 0.05 and stats["mean"] > 0 else "none"
    return stats


def test_the_table_gives_the_verdict_against_classic_and_says_what_its_numbers_are():
    row = {
        "per_class": 10,
        "arm": "vae",
        "synthetic_share": 0.5,
        "steps": 600,
        "accuracy": mean_ci([0.74, 0.75, 0.76]),
        "vs_real": comparison([0.04, 0.05, 0.045], 0.001),  # a gain over real …
        "vs_classic": comparison([0.01, -0.01, 0.005], 0.6),  # … but none over classic: the verdict says none
    }
    console = Console(file=io.StringIO(), width=200)
    console.print(gain_table([row], "fast", "300 passes"))
    text = console.file.getvalue()
    row_line = next(line for line in text.splitlines() if "│ vae" in line)
    assert "vs classic" in text and row_line.rstrip(" │").endswith("none")
    assert "unadjusted 95% t-interval" in text and "Holm-adjusted" in text


def test_a_budget_short_of_the_plateau_and_a_small_test_split_are_warned_of():
    curve = [
        {"per_class": 10, "multiplier": 1.0, "accuracy": {"mean": 0.70}},
        {"per_class": 10, "multiplier": 4.0, "accuracy": {"mean": 0.73}},
    ]
    result = SimpleNamespace(curve=curve, config={"per_class": [10], "scored_images": 150, "scored_on": "test"})
    warnings = report_warnings(result)
    assert any("NOT at the plateau" in w and "+3.00" in w for w in warnings)
    assert any("150 images: one image is 0.67 points" in w for w in warnings)
    fine = SimpleNamespace(curve=curve[:1], config={"per_class": [10], "scored_images": 10_000, "scored_on": "test"})
    assert report_warnings(fine) == []


def test_data_objects_print_as_one_line():
    images = np.zeros((30_000, 1, 28, 28), np.uint8)
    image_set = ImageSet(images, np.arange(30_000) % 3, ["a", "b", "c"])
    text = repr(image_set)
    assert "\n" not in text and len(text) < 200 and "30,000 images, 1×28×28, 3 classes" in text
    dataset = Dataset("shapes", {"train": image_set, "test": image_set.take([0, 1])}, "npz")
    assert "\n" not in repr(dataset) and "train 30,000, test 2" in repr(dataset)
