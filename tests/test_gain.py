"""The gain experiment on small real data: structure, equal exposure, honesty, statistics, the report, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from augmentor.classifiers.mixing import step_plan
from augmentor.core.errors import UserError
from augmentor.data.imageset import ImageSet, fingerprint
from augmentor.data.readers import open_dataset
from augmentor.data.subset import stratified_indices
from augmentor.experiments.gain import (
    CURVE_MULTIPLIERS,
    DEVELOPMENT_SEEDS,
    GainConfig,
    GainResult,
    parse_numbers,
    run_experiment,
    run_gain,
    split_data,
)
from augmentor.experiments.stats import mean_ci, verdict
from augmentor.experiments.tuning import select_recipe
from tests.conftest import CliResult, make_shapes_folder, run_cli

NS = (3, 6)
SHARES = (0.25, 0.5)
BUDGET = 3
VALIDATION = 4
ARMS = "real,real-long,classic:light,classic:light@soft,vae-jitter@soft"
AUGMENTED = ("classic:light", "classic:light@soft", "vae-jitter@soft")
TINY = ["--gen-steps", "4", "--gen-width", "8", "--batch-size", "16", "--device", "cpu", "--workers", "1"]


@pytest.fixture(scope="module")
def gain_run(tmp_path_factory) -> tuple[Path, Path, dict, dict]:
    """(data, out, the --json document, results.json) of one small run with every kind of arm and the curve."""
    data = make_shapes_folder(tmp_path_factory.mktemp("g") / "data", per_class=12, splits=True, seed=2)
    out = tmp_path_factory.mktemp("g") / "report"
    result = run_cli(
        "gain",
        data,
        "--per-class",
        ",".join(map(str, NS)),
        "--arms",
        ARMS,
        "--draws",
        "2",
        "--budget",
        str(BUDGET),
        "--synthetic-share",
        ",".join(map(str, SHARES)),
        "--validation-per-class",
        str(VALIDATION),
        "--curve-draws",
        "1",
        *TINY,
        "--out",
        out,
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    return data, out, json.loads(result.stdout), json.loads((out / "results.json").read_text())


def group(runs: list[dict], n: int, seed: int) -> dict[tuple[str, float], dict]:
    return {(r["arm"], r["synthetic_share"]): r for r in runs if r["per_class"] == n and r["seed"] == seed}


# --- the run's files and records -----------------------------------------------------------------------------


def test_report_files_and_summary(gain_run):
    _, out, document, results = gain_run
    names = {"report.md", "results.json", "accuracy.png", "difference.png", "gain_vs_n.png", "budget.png", "share.png"}
    samples = {f"samples-vae-{3 * n}.png" for n in NS}  # the vae behind vae-jitter, at each subset size
    assert {p.name for p in out.iterdir()} == names | samples
    for name in (names | samples) - {"report.md", "results.json"}:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (out / "report.md").read_text()
    assert "## The generators' samples" in report and all(f"![{name}]({name})" in report for name in samples)
    assert all("samples_png" not in entry for entry in results["generators"])  # pictures stay out of the JSON
    assert "the classic arm (classic:light) is one pipeline, not tuned on this data" in report
    # Each generator's quality on the validation split, for the reader: CAS beside its real twin, diversity
    measured = [entry for entry in results["generators"] if entry["kind"] == "vae"]
    assert measured and all(0 <= entry["cas_validation"] <= 1 for entry in measured)
    assert all(0 <= entry["samples_diversity_ssim"] <= 1 for entry in measured)
    assert "| generator | real images | draws | CAS on validation % |" in report and "| vae | 9 | 2 |" in report
    # Scored on test, the same classifiers are read there too (the report's columns; nothing is chosen on them).
    assert all(0 <= entry["cas_test"] <= 1 and 0 <= entry["real_accuracy_test"] <= 1 for entry in measured)
    assert "| CAS on test % | real subset on test % |" in report
    assert document["report"] == str(out / "report.md")
    assert document["summary"] == results["summary"]
    assert set(results) == {"config", "summary", "curve", "runs", "curve_runs", "generators", "jobs"}
    keys = {(row["per_class"], row["arm"], row["synthetic_share"]) for row in results["summary"]}
    expected = {(n, arm, 0.0) for n in NS for arm in ("real", "real-long")}
    expected |= {(n, arm, share) for n in NS for arm in AUGMENTED for share in SHARES}
    assert keys == expected and len(results["summary"]) == len(expected)
    for row in results["summary"]:
        assert 0 <= row["accuracy"]["mean"] <= 1 and row["accuracy"]["n"] == 2
    config = results["config"]
    assert config["budget"] == BUDGET and config["synthetic_share"] == list(SHARES)
    assert config["scored_on"] == "test" and config["seed_first"] == 0 and not config["development"]
    assert config["scored_images"] == 36 and config["validation_images"] == 3 * VALIDATION


def test_every_arm_of_a_draw_has_the_same_real_subset_and_exposure(gain_run):
    _, _, _, results = gain_run
    runs = results["runs"]
    assert len(runs) == len(NS) * 2 * (2 + len(AUGMENTED) * len(SHARES))
    assert {r["seed"] for r in runs} == {0, 1}
    for n in NS:
        batch = min(16, 3 * n)
        for seed in (0, 1):
            arms = group(runs, n, seed)
            assert len(arms) == 2 + len(AUGMENTED) * len(SHARES)
            assert len({r["real_fingerprint"] for r in arms.values()}) == 1  # one real subset per draw
            assert {r["real_presentations"] for r in arms.values()} == {BUDGET * batch}  # equal real exposure
            real_steps = arms[("real", 0.0)]["steps"]
            assert real_steps == BUDGET
            augmented = [r for (arm, _), r in arms.items() if arm in AUGMENTED]
            for r in augmented:
                plan_real, plan_synthetic = step_plan(BUDGET * batch, batch, r["synthetic_share"])
                assert r["steps"] == len(plan_real) > real_steps  # synthetic images only add steps
                assert r["pool_images"] >= int(plan_synthetic.sum())  # every drawn image a fresh one
                assert r["labels"] == ("soft" if r["arm"].endswith("@soft") else "hard")
            assert arms[("real-long", 0.0)]["steps"] == max(r["steps"] for r in augmented)
            assert arms[("real", 0.0)]["labels"] is None and arms[("real-long", 0.0)]["labels"] is None
    assert group(runs, 3, 0)[("real", 0.0)]["real_fingerprint"] != group(runs, 3, 1)[("real", 0.0)]["real_fingerprint"]


def test_summary_pairs_every_arm_with_real_and_classic(gain_run):
    _, _, _, results = gain_run
    config, runs = results["config"], results["runs"]
    assert config["classic_baseline"] == "classic:light" and config["primary_arm"] == "vae-jitter@soft"
    for row in results["summary"]:
        n, arm, share = row["per_class"], row["arm"], row["synthetic_share"]
        mine = {seed: group(runs, n, seed)[(arm, share)] for seed in (0, 1)}
        assert row["accuracy"]["mean"] == pytest.approx(np.mean([r["accuracy"] for r in mine.values()]))
        baselines = {"real": ("real", 0.0), "classic": ("classic:light", share if arm in AUGMENTED else SHARES[0])}
        for label, key in baselines.items():
            if (arm, share) == key or (label == "classic" and arm == "classic:light"):
                assert f"vs_{label}" not in row
                continue
            comparison = row[f"vs_{label}"]
            assert comparison["baseline"] == key[0]
            differences = [mine[s]["accuracy"] - group(runs, n, s)[key]["accuracy"] for s in (0, 1)]
            assert comparison["mean"] == pytest.approx(np.mean(differences))
            assert comparison["n"] == 2
            assert comparison["p_holm"] is not None and comparison["p"] <= comparison["p_holm"] <= 1
            assert comparison["verdict"] == verdict(comparison) in ("gain", "loss", "none")
    non_real = [row for row in results["summary"] if row["arm"] != "real"]
    assert all("vs_real" in row for row in non_real)
    assert sum("vs_classic" in row for row in results["summary"]) == len(NS) * (2 + 2 * len(SHARES))


def test_budget_curve_brackets_the_real_arm(gain_run):
    _, _, _, results = gain_run
    runs = results["runs"]
    for n in NS:
        rows = [row for row in results["curve"] if row["per_class"] == n]
        assert [row["multiplier"] for row in rows] == list(CURVE_MULTIPLIERS)
        steps = [row["steps"] for row in rows]
        assert steps == sorted(steps) and steps[0] < steps[-1]
        one = rows[CURVE_MULTIPLIERS.index(1.0)]
        assert one["steps"] == group(runs, n, 0)[("real", 0.0)]["steps"]
        assert all(row["accuracy"]["n"] == 1 and 0 <= row["accuracy"]["mean"] <= 1 for row in rows)
    assert {p["seed"] for p in results["curve_runs"]} == {0}  # --curve-draws 1
    assert len(results["curve_runs"]) == len(NS) * len(CURVE_MULTIPLIERS)


def test_report_sections(gain_run):
    _, out, _, _ = gain_run
    report = (out / "report.md").read_text()
    claims = report.split("## Claims\n\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert [line.split(":")[0] for line in claims] == [f"- N = {n}" for n in NS]
    assert all("`vae-jitter@soft`" in line and "classic:light" in line and "Holm" in line for line in claims)
    assert "## Budget curve" in report and "## Per-class Δ vs classic" in report and "Per-class accuracy" in report
    assert "| 6 | vae-jitter@soft | 0.5 | 6 |" in report  # N, arm, share, steps
    assert "Development run" not in report


# --- honesty: what each source and each choice may see -------------------------------------------------------


def test_a_source_never_sees_a_test_or_validation_image(gain_run):
    data, _, _, results = gain_run
    runs = results["runs"]
    # one VAE per (N, draw), trained on that draw's real subset
    generators = results["generators"]
    assert sorted((g["kind"], g["images"], g["seed"]) for g in generators) == sorted(
        ("vae", 3 * n, seed) for n in NS for seed in (0, 1)
    )
    for g in generators:
        assert g["fingerprint"] == group(runs, g["images"] // 3, g["seed"])[("real", 0.0)]["real_fingerprint"]
    # the subsets, recomputed: drawn from the train split less validation, never from test
    dataset = open_dataset(str(data))
    splits = split_data(dataset.train, dataset.test, GainConfig(per_class=NS, validation_per_class=VALIDATION), "x")
    held_out = {row.tobytes() for row in np.concatenate([splits.validation.images, dataset.test.images])}
    assert len(splits.validation) == results["config"]["validation_images"]
    for n in NS:
        for seed in (0, 1):
            real = splits.pool.take(stratified_indices(splits.pool, n, seed))
            assert fingerprint(real) == group(runs, n, seed)[("real", 0.0)]["real_fingerprint"]
            assert not held_out & {row.tobytes() for row in real.images}


def development_config(**overrides) -> GainConfig:
    base = {
        "per_class": (3,),
        "arms": "real,classic:light,vae-jitter@soft,classic:light+vae",
        "draws": 2,
        "budget": BUDGET,
        "batch_size": 16,
        "synthetic_share": (0.5,),
        "gen_steps": 4,
        "gen_width": 8,
        "validation_per_class": VALIDATION,
        "budget_curve": False,
        "development": True,
        "device": "cpu",
        "workers": 1,
    }
    return GainConfig(**{**base, **overrides})


def without_timings(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in records]


def test_hyperparameter_selection_reads_no_test_score(gain_run):
    data, _, _, _ = gain_run
    dataset = open_dataset(str(data))
    config = development_config()
    clean = run_experiment(split_data(dataset.train, dataset.test, config, "x"), config)
    test = dataset.test
    poisoned = ImageSet(test.images[::-1].copy(), (test.labels + 1) % 3, list(test.class_names))  # every label wrong
    assert fingerprint(poisoned) != fingerprint(test)
    scored = GainConfig(per_class=(3,), validation_per_class=VALIDATION)  # where the poison would show
    assert fingerprint(split_data(dataset.train, poisoned, scored, "x").scored) != fingerprint(test)
    dirty = run_experiment(split_data(dataset.train, poisoned, config, "x"), config)

    assert clean.config["scored_on"] == "validation" and clean.config["seed_first"] == DEVELOPMENT_SEEDS
    assert clean.config["scored_images"] == clean.config["validation_images"] == 3 * VALIDATION
    assert {r["seed"] for r in clean.runs} == {DEVELOPMENT_SEEDS, DEVELOPMENT_SEEDS + 1}
    assert len(clean.runs) == 2 * 4
    assert without_timings(dirty.runs) == without_timings(clean.runs)  # identical scores, bit for bit
    assert dirty.summary == clean.summary
    # one VAE per draw, shared by vae-jitter@soft and classic:light+vae, trained on the draw's subset
    assert sorted(g["seed"] for g in clean.generators) == [DEVELOPMENT_SEEDS, DEVELOPMENT_SEEDS + 1]
    prints = {r["seed"]: r["real_fingerprint"] for r in clean.runs}
    assert all(g["fingerprint"] == prints[g["seed"]] for g in clean.generators)

    recipe = select_recipe(clean)
    assert recipe == select_recipe(dirty)
    assert recipe["candidates"] == 2 and recipe["baseline"] == "classic"
    gains = {
        r["arm"]: r["vs_classic"]["mean"] for r in clean.summary if r["arm"] in ("vae-jitter@soft", "classic:light+vae")
    }
    assert recipe["arm"] in gains and recipe["synthetic_share"] == 0.5
    assert recipe["mean_gain"] == pytest.approx(max(gains.values()))


def test_a_recipe_is_never_chosen_on_a_test_scored_run(gain_run):
    _, _, _, results = gain_run
    result = GainResult(config=results["config"], summary=results["summary"])
    with pytest.raises(UserError, match="development run"):
        select_recipe(result)


def test_development_runs_need_no_test_split(tmp_path):
    flat = make_shapes_folder(tmp_path / "flat", per_class=6, seed=3)
    args = ["--per-class", "2", "--arms", "real", "--budget", "2", "--validation-per-class", "3", *TINY]
    refused = run_cli("gain", flat, *args, "--draws", "1", "--out", tmp_path / "normal")
    assert refused.exit_code == 2 and "test split" in refused.stderr
    assert not (tmp_path / "normal").exists()
    out = tmp_path / "dev"
    result = run_cli("gain", flat, *args, "--seeds", "2", "--development", "--no-budget-curve", "--out", out)
    assert result.exit_code == 0, result.stderr
    assert "--seeds is now --draws" in result.stderr
    # The results table is the result: stdout, with the report's path; stderr has progress and warnings.
    assert "real" in result.stdout and result.stdout.rstrip().endswith(f"report: {out / 'report.md'}")
    assert "report:" not in result.stderr and "accuracy" not in result.stderr.lower()
    assert {p.name for p in out.iterdir()} == {
        "report.md",
        "results.json",
        "accuracy.png",
        "difference.png",
        "gain_vs_n.png",
    }
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["scored_on"] == "validation" and results["config"]["draws"] == 2
    assert sorted(r["seed"] for r in results["runs"]) == [DEVELOPMENT_SEEDS, DEVELOPMENT_SEEDS + 1]
    assert results["curve"] == [] and results["curve_runs"] == []
    report = (out / "report.md").read_text()
    assert "Development run" in report and "seeds 1000…1001" in report


# --- statistics and numbers ----------------------------------------------------------------------------------


def test_statistics():
    stats = mean_ci([0.80, 0.82, 0.84])
    assert stats["mean"] == pytest.approx(0.82) and stats["ci"] == pytest.approx(4.303 * 0.02 / 3**0.5, rel=1e-3)
    assert verdict(mean_ci([0.02, 0.025, 0.03])) == "gain"
    assert verdict(mean_ci([0.01, 0.02, 0.03])) == "none"  # t(2) is wide: the interval reaches below zero
    assert verdict(mean_ci([-0.01, 0.02, 0.03])) == "none"
    assert verdict(mean_ci([-0.03, -0.02, -0.025])) == "loss"
    assert verdict(mean_ci([0.05])) == "unknown (one seed)"
    assert verdict({**mean_ci([0.02, 0.025, 0.03]), "p_holm": 0.2}) == "none"  # the adjusted p decides
    assert verdict({**mean_ci([-0.01, 0.02, 0.03]), "p_holm": 0.01}) == "gain"


def test_parse_numbers():
    assert parse_numbers("10, 100", "--per-class") == (10, 100)
    assert parse_numbers("0.25,0.5", "--synthetic-share", float) == (0.25, 0.5)
    with pytest.raises(UserError, match="--per-class '2,x'"):
        parse_numbers("2,x", "--per-class")


def test_presentations_and_seeds():
    assert GainConfig(budget=5, batch_size=16).presentations(10, 30) == 80
    assert GainConfig(budget=5, batch_size=16).presentations(3, 9) == 45  # the batch is capped at the subset
    assert GainConfig(real_epochs=(2.5,)).presentations(10, 30) == 75
    # By default 3000 / N passes within 30..300: 300 at 10 per class, 100 at 30, 30 at 100 and above.
    assert [GainConfig().presentations(n, 3 * n) for n in (5, 10, 30, 100, 300)] == [4500, 9000, 9000, 9000, 27000]
    per_n = GainConfig(per_class=(10, 100), real_epochs=(100.0, 30.0))  # one budget per N
    assert (per_n.presentations(10, 100), per_n.presentations(100, 1000)) == (10_000, 30_000)
    assert [GainConfig().seed(d) for d in (0, 1)] == [0, 1]
    assert [GainConfig(development=True).seed(d) for d in (0, 1)] == [1000, 1001]


# --- bad input: refused before any work, nothing written -----------------------------------------------------


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (GainConfig(per_class=(0, 10)), "--per-class '0,10': give positive numbers"),
        (GainConfig(per_class=()), "--per-class '': give positive numbers"),
        (GainConfig(synthetic_share=(-1.0,)), "--synthetic-share '-1': give shares between 0 and 1"),
        (GainConfig(synthetic_share=(0.5, 1.0)), "--synthetic-share '0.5,1': give shares between 0 and 1"),
        (GainConfig(draws=0), "--draws 0: give at least 1"),
        (GainConfig(budget=0), "--budget 0: give at least 1"),
        (GainConfig(budget=5, real_epochs=(3.0,)), "--budget and --real-epochs both set the budget"),
        (GainConfig(real_epochs=(0.0,)), "--real-epochs '0': give positive numbers"),
        (GainConfig(per_class=(10, 100), real_epochs=(1.0, 2.0, 3.0)), "one per --per-class value (2)"),
        (GainConfig(gen_steps=0), "--gen-steps 0: give at least 1"),
        (GainConfig(labels="fuzzy"), "--labels 'fuzzy': use hard or soft"),
        (GainConfig(teacher_share=1.5), "--teacher-share 1.5"),
        (GainConfig(temperature=0.0), "--temperature 0"),
        (GainConfig(synthetic_weight=-1.0), "--synthetic-weight -1"),
        (GainConfig(finetune_real=1.0), "--finetune-real 1"),
        (GainConfig(validation_per_class=0), "--validation-per-class 0: give at least 1"),
        (GainConfig(curve_draws=0), "--curve-draws 0: give at least 1"),
        (GainConfig(arms="real,vae-extrapolate:-1"), "vae-extrapolate:-1: strength must be a number > 0"),
    ],
)
def test_run_gain_validates_its_config_before_reading_data(tmp_path, config, message):
    with pytest.raises(UserError) as refused:
        run_gain(str(tmp_path / "no-data"), config, tmp_path / "x")  # the data is never read
    assert message in refused.value.message
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--synthetic-ratio", "4"], "--synthetic-share"),
        (["--budget", "5", "--real-epochs", "3"], "--budget and --real-epochs"),
        (["--synthetic-share", "1"], "--synthetic-share '1': give shares between 0 and 1"),
        (["--synthetic-share", "0"], "--synthetic-share '0': give shares between 0 and 1"),
        (["--labels", "fuzzy"], "--labels 'fuzzy'"),
        (["--arms", "real,vae-extrapolate:-1"], "vae-extrapolate:-1"),
        (["--arms", "real,gan"], "'gan'"),
        (["--per-class", "2,x"], "--per-class '2,x'"),
        (["--per-class", "0,10"], "--per-class '0,10': give positive numbers"),
        (["--seeds", "2", "--draws", "3"], "--seeds is the old spelling of --draws"),
    ],
)
def test_bad_flags_exit_2_before_reading_data(tmp_path, args, message):
    result = run_cli("gain", tmp_path / "no-data", *args, "--out", tmp_path / "x")
    assert result.exit_code == 2 and message in result.stderr, result.stderr
    assert "no such file" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_data_too_small_for_the_subsets_is_refused(tmp_path):
    splits = make_shapes_folder(tmp_path / "splits", per_class=5, splits=True)
    result = run_cli("gain", splits, "--per-class", "2", "--validation-per-class", "4", "--out", tmp_path / "x")
    assert result.exit_code == 2
    assert "has 5 training images" in result.stderr and "--validation-per-class 4" in result.stderr
    result = run_cli("gain", splits, "--per-class", "6", "--validation-per-class", "1", "--out", tmp_path / "x")
    assert result.exit_code == 2 and "--per-class 6" in result.stderr
    assert not (tmp_path / "x").exists()


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
        "--validation-per-class",
        "2",
        "--no-budget-curve",
        *TINY,
        "--out",
        tmp_path / "report",
    )
    assert result.exit_code == 2
    assert "trained on other images" in result.stderr
    assert not (tmp_path / "report").exists()


def test_a_draw_gives_the_same_numbers_whatever_the_number_of_draws(gain_run):
    """Draws are seeded alone: the demo's 3 draws are the study's first 3 (the README relies on it)."""
    data, _, _, results = gain_run
    dataset = open_dataset(str(data))
    config = GainConfig(
        per_class=(NS[0],),
        arms=ARMS,
        draws=1,
        budget=BUDGET,
        batch_size=16,
        synthetic_share=SHARES,
        validation_per_class=VALIDATION,
        budget_curve=False,
        gen_steps=4,
        gen_width=8,
        device="cpu",
        workers=1,
    )
    alone = run_experiment(split_data(dataset.train, dataset.test, config, "x"), config)
    first = [r for r in results["runs"] if r["per_class"] == NS[0] and r["seed"] == 0]
    assert without_timings(alone.runs) == without_timings(first)


@pytest.mark.parametrize(
    ("arm", "size", "message"),
    [
        ("classic:nonexist.yaml", 28, "nonexist.yaml: not a preset"),
        ("vae", 12, "image size 12 is outside the 16..256 px the generative models take"),
        ("classic+dcgan", 12, "--arms classic+dcgan: image size 12"),
        ("vae-jitter:missing-run:0.1", 28, "missing-run: not a run folder"),
    ],
)
def test_a_bad_arm_is_refused_before_the_first_training(tmp_path, monkeypatch, arm, size, message):
    """Issue 12: the arms' files and sizes are checked with the data, not minutes in at the draw that builds them."""
    import augmentor.classifiers.train as training

    def no_training(*args, **kwargs):
        raise AssertionError("a classifier was trained before the bad arm was refused")

    monkeypatch.setattr(training, "train_classifier", no_training)
    data = make_shapes_folder(tmp_path / "data", per_class=6, size=size, splits=True, seed=2)
    result = run_cli(
        "gain", data, "--arms", f"real,{arm}", "--per-class", "2", "--validation-per-class", "2",
        "--out", tmp_path / "report",
    )  # fmt: skip
    assert result.exit_code == 2, result.stderr
    assert message in result.stderr and f"--arms {arm}" in result.stderr
    assert not (tmp_path / "report").exists()


def test_arms_that_differ_only_in_labels_share_one_pool_per_draw(tmp_path, monkeypatch):
    """`classic` and `classic@soft` draw the same images from the same seed: they are made once per draw and
    shared, and every number is the one of pools made separately."""
    from augmentor.experiments import arms as arms_module
    from augmentor.experiments import gain as gain_module

    data = make_shapes_folder(tmp_path / "data", per_class=8, splits=True, seed=4)
    args = ["--per-class", "3", "--draws", "2", "--budget", "3", "--validation-per-class", "2", "--no-budget-curve"]
    args += ["--arms", "real,classic:light,classic:light@soft", *TINY]
    made = []
    pool = arms_module.Arm.pool

    def counted(self, real, size, seed, models, workers=1, **options):
        made.append((self.name, seed))
        return pool(self, real, size, seed, models, workers, **options)

    monkeypatch.setattr(arms_module.Arm, "pool", counted)
    assert run_cli("gain", data, *args, "--out", tmp_path / "shared").exit_code == 0
    assert len(made) == 2 and len({seed for _, seed in made}) == 2  # one pool per draw, for both arms

    synthetic_pool = gain_module.DrawRunner.synthetic_pool

    def uncached(self, *a, **k):
        self.pool_images.clear()  # every arm makes its own pool, as before the sharing
        return synthetic_pool(self, *a, **k)

    monkeypatch.setattr(gain_module.DrawRunner, "synthetic_pool", uncached)
    assert run_cli("gain", data, *args, "--out", tmp_path / "separate").exit_code == 0
    assert len(made) == 2 + 4  # two arms × two draws

    def scores(out: Path) -> list[tuple]:
        runs = json.loads((out / "results.json").read_text())["runs"]
        return [
            (r["arm"], r["seed"], r["per_class"], r["accuracy"], r["pool_images"]) for r in runs if r["arm"] != "real"
        ]

    assert scores(tmp_path / "shared") == scores(tmp_path / "separate")


def test_gain_no_flip_keeps_flips_out_of_the_classic_pools(tmp_path):
    """`gain --no-flip` used to stop flips in classifier training only: the classic arm's pool still
    mirrored (a weak classic baseline on digits). Its pipeline now loses its flips too."""
    from augmentor.classic.albu import A
    from augmentor.data.imageset import ImageSet
    from augmentor.experiments.arms import GeneratorOptions, SubsetModels, parse_arm

    image = np.zeros((4, 1, 28, 28), np.uint8)
    image[:, :, :, :5] = 255
    real = ImageSet(image, np.array([0, 0, 1, 1]), ["a", "b"])
    pipe = tmp_path / "flip.yaml"
    A.save(A.Compose([A.HorizontalFlip(p=1.0)]), str(pipe), data_format="yaml")
    arm = parse_arm(f"classic:{pipe}")
    models = SubsetModels(GeneratorOptions(device="cpu"))
    kept = arm.pool(real, 8, seed=1, models=models, flip=False)
    mirrored = arm.pool(real, 8, seed=1, models=models, flip=True)
    assert (kept.images == image[0]).all()
    assert (mirrored.images == image[0, :, :, ::-1]).all()


# --- grouped training: each share's augmented arms as one grouped network (issue 10) --------------------------


def grouped_config(**overrides) -> GainConfig:
    base = {
        "per_class": (3,),
        "arms": ARMS,
        "draws": 2,
        "budget": BUDGET,
        "batch_size": 16,
        "synthetic_share": SHARES,
        "gen_steps": 4,
        "gen_width": 8,
        "validation_per_class": 2,
        "curve_draws": 1,
        "device": "cpu",
        "workers": 1,
    }
    return GainConfig(**{**base, **overrides})


def without_grouping(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in ("seconds", "grouped")} for r in records]


def test_grouped_arms_score_as_trained_one_at_a_time(tmp_path, float64, monkeypatch):
    import torch

    from augmentor.experiments import gain as gain_module
    from augmentor.experiments.arms import Arm

    pool = Arm.pool

    def float32_pool(*args, **kwargs):  # the generators take float32 only; the classifiers are what is compared
        torch.set_default_dtype(torch.float32)
        try:
            return pool(*args, **kwargs)
        finally:
            torch.set_default_dtype(torch.float64)

    monkeypatch.setattr(Arm, "pool", float32_pool)
    scores = gain_module._scores

    def with_proba(classifier, scored):  # each model's probabilities too: closer than accuracies can show
        return {**scores(classifier, scored), "proba": classifier.proba(scored).numpy()}

    monkeypatch.setattr(gain_module, "_scores", with_proba)
    data = make_shapes_folder(tmp_path / "data", per_class=8, splits=True, seed=4)
    dataset = open_dataset(str(data))
    results = {}
    for grouped in (False, True):
        config = grouped_config(grouped=grouped)
        results[grouped] = run_experiment(split_data(dataset.train, dataset.test, config, "x"), config)
    alone, together = results[False], results[True]
    for a, t in zip(alone.runs, together.runs, strict=True):
        np.testing.assert_allclose(t.pop("proba"), a.pop("proba"), rtol=0, atol=1e-6)  # float64 up to rounding
    assert without_grouping(together.runs) == without_grouping(alone.runs)  # the same accuracies and steps
    assert together.curve_runs == alone.curve_runs and together.summary == alone.summary
    assert [r.get("grouped", False) for r in together.runs] == [r["arm"] in AUGMENTED for r in alone.runs]
    assert not any("grouped" in r for r in alone.runs)
    assert (alone.config["grouped"], alone.config["grouped_runs"]) == (False, 0)
    assert (together.config["grouped"], together.config["grouped_runs"]) == (True, 2 * len(AUGMENTED) * len(SHARES))


def test_runs_that_cannot_be_grouped_train_one_at_a_time_after_one_warning(tmp_path):
    data = make_shapes_folder(tmp_path / "data", per_class=8, splits=True, seed=4)
    args = ["--per-class", "3", "--draws", "2", "--budget", "2", "--validation-per-class", "2", "--no-budget-curve"]
    args += ["--arms", "real,classic:light,classic:light@soft", "--arch", "lenet5", *TINY]
    results = {}
    for flag in ("--grouped", "--no-grouped"):
        result = run_cli("gain", data, *args, flag, "--out", tmp_path / flag)
        assert result.exit_code == 0, result.stderr
        results[flag] = json.loads((tmp_path / flag / "results.json").read_text())
        warned = result.stderr.count("only the fast architecture trains grouped")
        assert warned == (1 if flag == "--grouped" else 0), result.stderr  # once, not once per draw
    assert (results["--grouped"]["config"]["grouped"], results["--grouped"]["config"]["grouped_runs"]) == (True, 0)
    assert without_timings(results["--grouped"]["runs"]) == without_timings(results["--no-grouped"]["runs"])


def test_grouping_is_on_by_default_on_cuda_only(monkeypatch):
    import torch

    assert not GainConfig(device="cpu").grouping()
    assert GainConfig(device="cpu", grouped=True).grouping()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert GainConfig().grouping() and not GainConfig(grouped=False).grouping()


def _counted_set(per_class: int, classes: int = 3) -> ImageSet:
    """``per_class`` blank 4×4 images of each class: enough to plan splits on."""
    labels = np.repeat(np.arange(classes), per_class)
    return ImageSet(np.zeros((len(labels), 1, 4, 4), np.uint8), labels, [f"c{k}" for k in range(classes)])


def test_the_default_sizes_and_validation_split_adapt_to_what_the_data_holds():
    from augmentor.core.errors import UserError
    from augmentor.experiments.gain import fit_to_data

    def planned(images: int, **given) -> tuple[tuple[int, ...], int, str]:
        config, rule = fit_to_data(GainConfig(**given), _counted_set(images), "data")
        return config.per_class, config.validation_per_class, rule

    assert planned(6000)[:2] == ((10, 100), 200)  # Fashion-MNIST: as before (its numbers unchanged)
    assert planned(150)[:2] == ((10, 100), 25)  # half of the 50 that N = 100 leaves
    sizes, validation, rule = planned(30)  # a small folder: N = 100 does not fit and is left out, with a warning
    assert (sizes, validation) == ((10,), 10) and "adapted" in rule and "20 images" in rule
    assert planned(16)[:2] == ((10,), 5)  # the floor
    assert planned(150, validation_per_class=40)[:2] == ((10, 100), 40)
    assert planned(150, validation_per_class=40)[2] == "given (--validation-per-class)"
    with pytest.raises(UserError, match=r"class 'c0' has 12 training images, too few for the smallest default"):
        planned(12)
    with pytest.raises(UserError, match=r"fewer than --per-class 100 plus a validation split of 5 \(at least 5\)"):
        planned(30, per_class=(100,))
    with pytest.raises(UserError, match=r"plus --validation-per-class 40; lower one of them"):
        planned(60, per_class=(30,), validation_per_class=40)


def test_gain_runs_on_a_folder_of_30_images_per_class_with_its_default_sizes(tmp_path):
    data = make_shapes_folder(tmp_path / "data", per_class=30, splits=True, seed=3)
    args = ["gain", str(data), "--draws", "1", "--arms", "real,classic", "--budget", "4", "--batch-size", "8"]
    result = run_cli(*args, "--no-budget-curve", "--device", "cpu", "--out", str(tmp_path / "out"), "--json")
    assert result.exit_code == 0, result.stderr
    assert "--per-class 100 is left out" in result.stderr
    config = json.loads((tmp_path / "out" / "results.json").read_text())["config"]
    assert config["per_class"] == [10] and config["validation_per_class"] == 10
    assert config["validation_images"] == 30 and config["validation_rule"].startswith("adapted")
    assert "(adapted: 0.5 of the 20 images" in (tmp_path / "out" / "report.md").read_text()


def test_measuring_the_generators_quality_changes_no_arms_numbers(tmp_path):
    """The CAS classifiers train inside the draw, between arms: they must leave every arm's result as it was."""
    data = make_shapes_folder(tmp_path / "data", per_class=10, splits=True, seed=5)
    args = ["--per-class", "4", "--arms", "real,vae,vae-jitter@soft", "--draws", "1", "--budget", "3"]
    args += ["--validation-per-class", "3", "--no-budget-curve", *TINY]
    runs = {}
    for steps in ("0", "5"):
        result = run_cli("gain", data, *args, "--quality-steps", steps, "--out", tmp_path / steps)
        assert result.exit_code == 0, result.stderr
        document = json.loads((tmp_path / steps / "results.json").read_text())
        runs[steps] = [(r["arm"], r["accuracy"]) for r in document["runs"]]
        measured = [g for g in document["generators"] if "cas_validation" in g]
        assert len(measured) == (0 if steps == "0" else 1)  # one VAE serves both generative arms
    assert runs["0"] == runs["5"]


def test_gen_ada_target_makes_the_dcgans_adapt_their_diffaugment(tmp_path):
    data = make_shapes_folder(tmp_path / "data", per_class=10, splits=True, seed=6)
    args = ["--per-class", "4", "--arms", "real,dcgan", "--draws", "1", "--budget", "3", "--quality-steps", "0"]
    args += ["--validation-per-class", "3", "--no-budget-curve", *TINY, "--gen-ada-target", "0.1"]
    result = run_cli("gain", data, *args, "--out", tmp_path / "g")
    assert result.exit_code == 0, result.stderr
    results = json.loads((tmp_path / "g" / "results.json").read_text())
    assert results["config"]["gen_ada_target"] == 0.1
    assert [0 <= g["ada_p"] <= 1 for g in results["generators"]] == [True]


def test_gen_augment_trains_every_generator_on_classic_copies_too_and_says_so(tmp_path):
    data = make_shapes_folder(tmp_path / "data", per_class=10, splits=True, seed=7)
    args = ["--per-class", "4", "--arms", "real,vae", "--draws", "1", "--budget", "3", "--quality-steps", "0"]
    args += ["--validation-per-class", "3", "--no-budget-curve", *TINY]
    losses = {}
    for name, extra in (("plain", []), ("augmented", ["--gen-augment", "light"])):
        result = run_cli("gain", data, *args, *extra, "--out", tmp_path / name)
        assert result.exit_code == 0, result.stderr
        results = json.loads((tmp_path / name / "results.json").read_text())
        (generator,) = results["generators"]
        losses[name] = generator["loss"]
    assert results["config"]["gen_augment"] == "light" and losses["plain"] != losses["augmented"]
    assert "9 `light` copies of each" in (tmp_path / "augmented" / "report.md").read_text()
    bad = run_cli("gain", data, *args, "--gen-augment", "nonesuch", "--out", tmp_path / "bad")
    assert bad.exit_code == 2 and "nonesuch" in bad.stderr and not (tmp_path / "bad").exists()


def test_gen_beta_sets_every_vaes_kl_weight_and_the_report_says_it(tmp_path):
    """--gen-beta (default 0.1, issue 23): the KL weight the experiment's VAEs train with; another β trains
    another VAE (its KL term differs), and a bad one is refused before any work."""
    data = make_shapes_folder(tmp_path / "data", per_class=10, splits=True, seed=9)
    args = ["--per-class", "4", "--arms", "real,vae", "--synthetic-share", "0.5", "--draws", "1", "--budget", "3"]
    args += ["--quality-steps", "0", "--validation-per-class", "3", "--no-budget-curve", *TINY]
    kl = {}
    for beta in ("0.1", "1"):
        extra = [] if beta == "0.1" else ["--gen-beta", beta]  # the default is 0.1
        result = run_cli("gain", data, *args, *extra, "--out", tmp_path / beta)
        assert result.exit_code == 0, result.stderr
        results = json.loads((tmp_path / beta / "results.json").read_text())
        assert results["config"]["gen_beta"] == float(beta)
        (generator,) = results["generators"]
        kl[beta] = generator["kl"]
        assert f"KL weight β = {beta} (`--gen-beta`)" in (tmp_path / beta / "report.md").read_text()
    assert kl["0.1"] != kl["1"]
    bad = run_cli("gain", data, *args, "--gen-beta", "-1", "--out", tmp_path / "bad")
    assert bad.exit_code == 2 and "--gen-beta" in bad.stderr and not (tmp_path / "bad").exists()


def gain_with_budgets(tmp_path: Path) -> tuple[Path, CliResult, dict]:
    """A tiny gain run whose VAEs train to 6 steps and keep the better of budgets 2 and 6 on validation."""
    data = make_shapes_folder(tmp_path / "data", per_class=10, splits=True, seed=8)
    args = ["--per-class", "4", "--arms", "real,vae", "--draws", "2", "--budget", "3", "--quality-steps", "5"]
    args += ["--validation-per-class", "3", "--no-budget-curve", *TINY[2:], "--gen-budgets", "2,6"]
    result = run_cli("gain", data, *args, "--out", tmp_path / "g")
    assert result.exit_code == 0, result.stderr
    return data, result, json.loads((tmp_path / "g" / "results.json").read_text())


def test_gen_budgets_keep_each_generators_best_budget_on_validation_and_say_which(tmp_path):
    data, _, results = gain_with_budgets(tmp_path)
    assert results["config"]["gen_budgets"] == [2, 6]
    for generator in results["generators"]:
        scores = generator["budget_cas_validation"]
        assert set(scores) == {"2", "6"} and generator["step"] == 6  # trained to the largest, once
        best = max(scores.values())
        assert generator["budget_steps"] == min(int(s) for s, v in scores.items() if v == best)
        assert generator["cas_validation"] == scores[str(generator["budget_steps"])]
    report = (tmp_path / "g" / "report.md").read_text()
    assert "steps kept (per draw)" in report and "trains for 2, 6 steps and keeps the budget" in report
    for bad, says in (
        (["--gen-budgets", "0,5"], "--gen-budgets"),
        (["--gen-budgets", "3,x"], "--gen-budgets"),
        (["--gen-budgets", "3", "--gen-steps", "5"], "give one of them"),
        (["--gen-budgets", "3", "--quality-steps", "0"], "--quality-steps 0"),
    ):
        refused = run_cli("gain", data, "--per-class", "4", "--arms", "real,vae", *bad, "--out", tmp_path / "bad")
        assert refused.exit_code == 2 and says in refused.stderr and not (tmp_path / "bad").exists(), refused.stderr


def test_with_gen_budgets_the_collapse_warning_is_about_the_budget_kept(tmp_path, monkeypatch):
    """Training judges per-class collapse at every candidate budget and warns of none itself; the warning names
    the budget the validation CAS kept (it used to be the longest one's, trained but not used)."""
    import augmentor.generative.train as generative_train

    monkeypatch.setattr(generative_train, "COLLAPSE_MIN_STEPS", 1)  # judge these tiny generators at all
    monkeypatch.setattr(generative_train, "COLLAPSE_SHARE", -10.0)  # and find every class collapsed
    _, result, results = gain_with_budgets(tmp_path)
    kept = [generator["budget_steps"] for generator in results["generators"]]
    said = [line for line in result.stderr.splitlines() if "per-class mode collapse" in line]
    assert len(said) == len(kept) == 2
    assert all(
        f"vae kept at {step} steps: per-class mode collapse" in line for line, step in zip(said, kept, strict=True)
    )


def test_a_vae_density_arm_gets_its_samples_judged_as_it_draws_them(tmp_path):
    """The report's generator table judges a VAE's density-code samples too when an arm mixes them in (its
    prior samples alone said little of a vae-density arm); with no such arm, one row as before."""
    data = make_shapes_folder(tmp_path / "data", per_class=10, splits=True, seed=8)
    args = ["--per-class", "4", "--draws", "2", "--budget", "3", "--quality-steps", "5"]
    args += ["--validation-per-class", "3", "--no-budget-curve", *TINY]
    result = run_cli("gain", data, *args, "--arms", "real,vae-density@soft", "--out", tmp_path / "d")
    assert result.exit_code == 0, result.stderr
    generators = json.loads((tmp_path / "d" / "results.json").read_text())["generators"]
    assert all(
        0 <= g["cas_validation_density"] <= 1 and -1 <= g["samples_diversity_ssim_density"] <= 1 for g in generators
    )
    report = (tmp_path / "d" / "report.md").read_text()
    assert "| vae (prior codes) | 12 | 2 |" in report and "| vae (density codes) | 12 | 2 |" in report
    plain = run_cli("gain", data, *args, "--arms", "real,vae", "--out", tmp_path / "p")
    assert plain.exit_code == 0, plain.stderr
    generators = json.loads((tmp_path / "p" / "results.json").read_text())["generators"]
    assert all("cas_validation_density" not in g for g in generators)
    assert "| vae | 12 | 2 |" in (tmp_path / "p" / "report.md").read_text()


def test_gen_budgets_judge_a_vae_density_arms_vae_on_its_density_codes(tmp_path):
    """With a vae-density arm, each VAE's budget is chosen by the CAS of its density-code samples (what the arm
    mixes in; a warm-started VAE's prior samples can be noise), and results.json says so; with plain `vae`
    arms the prior samples judge, as before."""
    data = make_shapes_folder(tmp_path / "data", per_class=10, splits=True, seed=8)
    args = ["--per-class", "4", "--draws", "2", "--budget", "3", "--quality-steps", "5", "--gen-budgets", "2,6"]
    args += ["--validation-per-class", "3", "--no-budget-curve", *TINY[2:]]  # TINY[:2] is --gen-steps
    result = run_cli("gain", data, *args, "--arms", "real,vae-density", "--out", tmp_path / "d")
    assert result.exit_code == 0, result.stderr
    for generator in json.loads((tmp_path / "d" / "results.json").read_text())["generators"]:
        scores = generator["budget_cas_validation"]
        assert generator["budget_judged_by"] == "density codes" and set(scores) == {"2", "6"}
        assert generator["cas_validation_density"] == scores[str(generator["budget_steps"])]
        best = max(scores.values())
        assert generator["budget_steps"] == min(int(s) for s, v in scores.items() if v == best)
    _, _, plain = gain_with_budgets(tmp_path / "plain")
    assert {g["budget_judged_by"] for g in plain["generators"]} == {"prior samples"}
