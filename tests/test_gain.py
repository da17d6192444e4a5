"""The gain experiment on small real data: structure, honesty, statistics, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from augmentor.experiments.stats import mean_ci, verdict
from tests.conftest import make_shapes_folder, run_cli


@pytest.fixture(scope="module")
def gain_report(tmp_path_factory) -> tuple[Path, dict]:
    data = make_shapes_folder(tmp_path_factory.mktemp("g") / "data", per_class=20, splits=True, seed=2)
    out = tmp_path_factory.mktemp("g") / "report"
    result = run_cli(
        "gain",
        data,
        "--per-class",
        "4,8",
        "--arms",
        "real,classic:light",
        "--seeds",
        "2",
        "--budget",
        "15",
        "--batch-size",
        "16",
        "--synthetic-ratio",
        "1,2",
        "--out",
        out,
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    return out, json.loads(result.stdout)


def test_report_files_and_summary(gain_report):
    out, document = gain_report
    assert {p.name for p in out.iterdir()} == {
        "report.md",
        "results.json",
        "accuracy.png",
        "difference.png",
        "ratio.png",
    }
    assert document["report"] == str(out / "report.md")
    arms = {(row["per_class"], row["arm"], row["synthetic_ratio"]) for row in document["summary"]}
    assert arms == {(n, "real", 0.0) for n in (4, 8)} | {(n, "classic:light", r) for n in (4, 8) for r in (1, 2)}
    for row in document["summary"]:
        assert 0 <= row["accuracy"]["mean"] <= 1 and row["accuracy"]["n"] == 2
        if row["arm"] != "real":
            assert row["vs_real"]["verdict"] in ("gain", "loss", "none")
    report = (out / "report.md").read_text()
    assert "| 8 | classic:light | 2 |" in report and "Per-class accuracy" in report


def test_every_arm_has_the_same_budget_seeds_and_real_subset(gain_report):
    out, _ = gain_report
    results = json.loads((out / "results.json").read_text())
    runs = results["runs"]
    assert len(runs) == 2 * 2 * (1 + 2)  # N × seeds × (real + classic at two ratios)
    assert results["config"]["budget"] == 15
    for n in (4, 8):
        for seed in (0, 1):
            group = [r for r in runs if r["per_class"] == n and r["seed"] == seed]
            assert len({r["real_fingerprint"] for r in group}) == 1  # every arm starts from the same real subset
            sizes = {r["synthetic_ratio"]: r["train_images"] for r in group}
            assert sizes == {0.0: 3 * n, 1.0: 3 * n * 2, 2.0: 3 * n * 3}
    fingerprints = {(r["per_class"], r["seed"]): r["real_fingerprint"] for r in runs}
    assert fingerprints[(4, 0)] != fingerprints[(4, 1)]  # seeds draw different subsets


def test_statistics():
    stats = mean_ci([0.80, 0.82, 0.84])
    assert stats["mean"] == pytest.approx(0.82) and stats["ci"] == pytest.approx(4.303 * 0.02 / 3**0.5, rel=1e-3)
    assert verdict(mean_ci([0.02, 0.025, 0.03])) == "gain"
    assert verdict(mean_ci([0.01, 0.02, 0.03])) == "none"  # t(2) is wide: the interval reaches below zero
    assert verdict(mean_ci([-0.01, 0.02, 0.03])) == "none"
    assert verdict(mean_ci([-0.03, -0.02, -0.025])) == "loss"
    assert verdict(mean_ci([0.05])) == "unknown (one seed)"


def test_bad_input(tmp_path):
    flat = make_shapes_folder(tmp_path / "flat", per_class=5)
    result = run_cli("gain", flat, "--per-class", "2", "--out", tmp_path / "x")
    assert result.exit_code == 2 and "test split" in result.stderr
    splits = make_shapes_folder(tmp_path / "splits", per_class=5, splits=True)
    result = run_cli("gain", splits, "--per-class", "6", "--out", tmp_path / "x")
    assert result.exit_code == 2 and "has 5" in result.stderr
    result = run_cli("gain", splits, "--per-class", "2", "--arms", "real,gan", "--out", tmp_path / "x")
    assert result.exit_code == 2 and "'gan'" in result.stderr
    result = run_cli("gain", splits, "--per-class", "2,x", "--out", tmp_path / "x")
    assert result.exit_code == 2 and not (tmp_path / "x").exists()
