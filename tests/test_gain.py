"""The gain experiment on small real data: structure, honesty, statistics, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from augmentor.core.errors import UserError
from augmentor.experiments.gain import GainConfig, parse_numbers, run_gain
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
        "--draws",
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
    for flag, value in (("--per-class", "0,10"), ("--synthetic-ratio", "0")):
        result = run_cli("gain", splits, flag, value, "--out", tmp_path / "x")
        assert result.exit_code == 2 and f"{flag} '{value}': give positive numbers" in result.stderr
        assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (GainConfig(per_class=(0, 10)), "--per-class '0,10': give positive numbers"),
        (GainConfig(per_class=()), "--per-class '': give positive numbers"),
        (GainConfig(synthetic_ratio=(-1.0,)), "--synthetic-ratio '-1': give positive numbers"),
        (GainConfig(draws=0), "--draws 0: give at least 1"),
        (GainConfig(budget=0), "--budget 0: give at least 1"),
        (GainConfig(gen_steps=0), "--gen-steps 0: give at least 1"),
    ],
)
def test_run_gain_validates_its_config_before_reading_data(tmp_path, config, message):
    with pytest.raises(UserError) as refused:
        run_gain(str(tmp_path / "no-data"), config, tmp_path / "x")  # the data is never read
    assert message in refused.value.message
    assert list(tmp_path.iterdir()) == []


def test_parse_numbers():
    assert parse_numbers("10, 100", "--per-class") == (10, 100)
    assert parse_numbers("0.5,2", "--synthetic-ratio", float) == (0.5, 2.0)
    with pytest.raises(UserError, match="--per-class '2,x'"):
        parse_numbers("2,x", "--per-class")


def test_generative_arms_train_one_generator_per_subset_on_that_subset_only(tmp_path):
    data = make_shapes_folder(tmp_path / "data", per_class=12, splits=True, seed=4)
    out = tmp_path / "report"
    arms = "real,vae,classic:light+vae,dcgan-gated,vae-jitter:0.3"
    common = ["--per-class", "6", "--draws", "2", "--budget", "6", "--batch-size", "16", "--synthetic-ratio", "1"]
    result = run_cli("gain", data, "--arms", arms, *common, "--gen-steps", "4", "--gen-width", "8", "--out", out)
    assert result.exit_code == 0, result.stderr
    document = json.loads((out / "results.json").read_text())
    generators = document["generators"]
    # One VAE and one DCGAN per (N, seed): `vae` and `classic:light+vae` share theirs.
    assert sorted((g["kind"], g["seed"]) for g in generators) == [("dcgan", 0), ("dcgan", 1), ("vae", 0), ("vae", 1)]
    assert all(g["images"] == 18 for g in generators)
    by_arm = {(r["arm"], r["seed"]): r for r in document["runs"]}
    assert by_arm[("vae", 0)]["train_images"] == 18 + 18
    assert by_arm[("classic:light+vae", 0)]["train_images"] == 18 + 9 + 9
    assert by_arm[("dcgan-gated", 1)]["train_images"] <= 18 + 18
    assert by_arm[("vae-jitter:0.3", 1)]["train_images"] == 18 + 18
    for seed in (0, 1):
        prints = {r["real_fingerprint"] for r in document["runs"] if r["seed"] == seed}
        assert len(prints) == 1


def test_a_generator_trained_on_other_images_is_refused(tmp_path):
    from augmentor.generative.train import GenerativeConfig, train_generative
    from tests.test_generative import shapes_set

    data = make_shapes_folder(tmp_path / "data", per_class=8, splits=True, seed=5)
    run = tmp_path / "vae-run"
    train_generative(shapes_set(per_class=4), GenerativeConfig(kind="vae", steps=2, width=8, sample_every=2), run)
    result = run_cli(
        "gain",
        data,
        "--arms",
        f"real,vae:{run}",
        "--per-class",
        "4",
        "--draws",
        "1",
        "--budget",
        "2",
        "--out",
        tmp_path / "report",
    )
    assert result.exit_code == 2
    assert "trained on other images" in result.stderr
    assert not (tmp_path / "report").exists()
