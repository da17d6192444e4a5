"""`augmentor study`: the plan comes first and is kept, both sides are tuned alike, the answer comes first."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from augmentor.core.errors import UserError
from tests.conftest import REPO, make_shapes_folder, run_cli

TINY = [
    "--per-class", "3", "--dev-draws", "2", "--draws", "2", "--shares", "0.5",
    "--classic", "classic:light", "--generative", "vae", "--budget", "4", "--batch-size", "8",
    "--gen-steps", "3", "--gen-width", "8", "--validation-per-class", "3", "--device", "cpu", "--workers", "1",
]  # fmt: skip


STAGES = ("development", "confirmation")


@pytest.fixture(scope="module")
def study_run(tmp_path_factory) -> tuple[Path, Path, dict]:
    root = tmp_path_factory.mktemp("study")
    data = make_shapes_folder(root / "data", per_class=10, splits=True, seed=4)
    result = run_cli("study", data, *TINY, "--out", root / "out", "--json")
    assert result.exit_code == 0, result.stderr
    assert "this study will take up to about" in result.stderr  # said before its first training
    return data, root / "out", json.loads(result.stdout)


def test_the_study_writes_its_plan_its_runs_and_the_answer_first(study_run):
    _, out, document = study_run
    plan_text = (out / "plan.json").read_text()
    digest = hashlib.sha256(plan_text.encode()).hexdigest()
    assert (out / "plan.sha256").read_text().split()[0] == digest == document["plan_sha256"]
    plan = json.loads(plan_text)
    assert plan["candidates"] == {"classic": ["classic:light"], "generative": ["vae"]}
    assert plan["development"]["seeds"] == [1000, 1001] and plan["confirmation"]["seeds"] == [2000, 2001]
    report = (out / "report.md").read_text().splitlines()
    assert report[0] == f"**Answer: {document['answer']}.**"
    if "no augmentation" not in document["answer"]:  # the recommended arm as a recipe file gain and expand take
        from augmentor.synthetic.recipes import load_recipe

        recipe = load_recipe(str(out / "recipe.json"))
        assert recipe.arm in document["answer"] and f"--recipe {out / 'recipe.json'}" in document["command"]
    assert document["answer"].startswith(("use ", "nothing beats"))
    rows = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    development = [r for r in rows if r["stage"] == "development"]
    confirmation = [r for r in rows if r["stage"] == "confirmation"]
    assert sorted({r["arm"] for r in development}) == ["classic:light", "real", "vae"]
    assert {r["seed"] for r in development} == {1000, 1001}  # scored on validation: test never read there
    assert json.loads((out / "development" / "results.json").read_text())["config"]["scored_on"] == "validation"
    assert sorted({r["arm"] for r in confirmation}) == ["classic:light", "real", "real-long", "vae"]
    assert {r["seed"] for r in confirmation} == {2000, 2001}
    # The generators' CAS is read on test in the confirmation only (reported there, chosen on nothing).
    generators = {stage: json.loads((out / stage / "results.json").read_text())["generators"] for stage in STAGES}
    assert generators["development"] and all("cas_test" not in g for g in generators["development"])
    assert generators["confirmation"] and all(0 <= g["cas_test"] <= 1 for g in generators["confirmation"])
    (quality,) = json.loads((out / "study.json").read_text())["generator_quality"]  # one vae, one subset size
    cas = [g["cas_test"] for g in generators["confirmation"]]
    assert quality["kind"] == "vae" and quality["draws"] == len(cas) == 2
    assert quality["cas_test"] == round(sum(cas) / 2, 4) and 0 <= quality["real_accuracy_test"] <= 1
    assert f"| vae | {quality['images']} | 2 | {100 * quality['cas_test']:.2f} |" in "\n".join(report)
    names = [c["comparison"] for c in document["comparisons"]]
    assert names == ["recipe vs tuned classic", "tuned classic vs real", "recipe vs real"]
    assert document["comparisons"][0]["draws"] == 2


def test_a_changed_plan_is_refused_and_the_same_one_resumes_without_training_again(study_run):
    data, out, document = study_run
    changed = run_cli("study", data, *TINY, "--draws", "3", "--out", out, "--resume")
    assert changed.exit_code == 2 and "the study's plan changed (confirmation, trainings differ" in changed.stderr
    results = out / "confirmation" / "results.json"
    before = results.stat().st_mtime_ns
    again = run_cli("study", data, *TINY, "--out", out, "--resume", "--json")
    assert again.exit_code == 0, again.stderr
    assert results.stat().st_mtime_ns == before  # read back, not trained (nor scored on test) again
    assert json.loads(again.stdout)["answer"] == document["answer"]


def test_a_study_beside_one_that_read_the_same_draws_on_test_is_refused(study_run):
    data, out, _ = study_run
    again = out.parent / "again"
    repeat = run_cli("study", data, *TINY, "--out", again)
    assert repeat.exit_code == 2 and not again.exists()
    assert f"{out}: that study already read confirmation seeds 2000…2001" in repeat.stderr
    assert "--first-seed 2002" in repeat.stderr
    fresh = run_cli("study", data, *TINY, "--first-seed", "2002", "--out", again, "--json")
    assert fresh.exit_code == 0, fresh.stderr
    assert json.loads((again / "plan.json").read_text())["confirmation"]["seeds"] == [2002, 2003]


def test_a_committed_study_counts_as_read_on_test():
    """docs/study keeps plan.json and runs.jsonl, not the stage folders: its draws still count as read."""
    from augmentor.core.errors import UserError
    from augmentor.experiments.study import check_fresh_seeds

    plan = json.loads((REPO / "docs" / "study" / "grey-crops-10" / "plan.json").read_text())
    with pytest.raises(UserError, match="grey-crops-10: that study already read confirmation seeds 2000…2009"):
        check_fresh_seeds(REPO / "docs" / "study" / "another", plan)
    moved = {**plan, "confirmation": {**plan["confirmation"], "seeds": [3000, 3001]}}
    check_fresh_seeds(REPO / "docs" / "study" / "another", moved)  # fresh seeds: no refusal


def test_a_small_folder_is_cross_validated_in_development(tmp_path):
    """10 training images per class (under 40): the two development draws validate on two disjoint folds."""
    data = make_shapes_folder(tmp_path / "data", per_class=10, splits=True, seed=5)
    flag = TINY.index("--validation-per-class")
    without_split = TINY[:flag] + TINY[flag + 2 :]
    result = run_cli("study", data, *without_split, "--out", tmp_path / "out", "--json")
    assert result.exit_code == 0, result.stderr
    out = tmp_path / "out"
    plan = json.loads((out / "plan.json").read_text())
    assert plan["validation"]["development_folds"] == 2 and plan["validation"]["rule"].startswith("cross-validated")
    for fold in (0, 1):
        stage = json.loads((out / "development" / f"fold-{fold}" / "results.json").read_text())
        assert stage["config"]["validation_fold"] == [fold, 2] and stage["config"]["scored_on"] == "validation"
        assert {r["seed"] for r in stage["runs"]} == {1000 + fold}
    rows = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    assert {r["seed"] for r in rows if r["stage"] == "development"} == {1000, 1001}
    assert "cross-validated" in (out / "report.md").read_text()


def test_folds_cover_every_image_once_per_class():
    from augmentor.data.imageset import ImageSet
    from augmentor.data.subset import fold_indices

    labels = np.repeat(np.arange(3), [9, 10, 11])
    images = ImageSet(np.zeros((30, 1, 4, 4), np.uint8), labels, ["a", "b", "c"])
    folds = [fold_indices(images, 4, k, seed=3) for k in range(4)]
    joined = np.concatenate(folds)
    assert sorted(joined.tolist()) == list(range(30))  # disjoint, and every image once
    for fold in folds:
        per_class = np.bincount(labels[fold], minlength=3)
        assert per_class.min() >= 2 and per_class.max() <= 3  # stratified: a quarter of every class
    assert np.array_equal(fold_indices(images, 4, 1, seed=3), folds[1])


def test_the_plan_is_on_disk_before_the_first_training(tmp_path, monkeypatch):
    import augmentor.experiments.study as study

    data = make_shapes_folder(tmp_path / "data", per_class=10, splits=True, seed=4)
    seen = []

    def refuse_to_train(splits, config, **kwargs):
        seen.append((tmp_path / "out" / "plan.json").is_file())
        raise RuntimeError("stop here")

    monkeypatch.setattr(study, "run_experiment", refuse_to_train)
    config = study.StudyConfig(per_class=(3,), dev_draws=2, draws=2, classic=("classic:light",), generative=("vae",))
    with pytest.raises(RuntimeError, match="stop here"):
        study.run_study(str(data), config, tmp_path / "out")
    assert seen == [True]


def test_both_sides_get_as_many_candidates(tmp_path):
    data = make_shapes_folder(tmp_path / "data", per_class=10, splits=True)
    result = run_cli(
        "study", data, "--classic", "classic:light,classic:heavy", "--generative", "vae", "--out", tmp_path / "o"
    )
    assert result.exit_code == 2 and "the same number" in result.stderr and not (tmp_path / "o").exists()


def test_the_committed_numbers_recompute_the_study(study_run):
    from augmentor.experiments.study import recompute

    _, out, document = study_run
    again = recompute(out)  # from plan.json and runs.jsonl alone
    assert again["choice"] == document["choice"] and again["answer"] == document["answer"]
    assert again["comparisons"] == document["comparisons"]


def test_the_readme_study_table_is_what_the_committed_draws_recompute():
    import subprocess
    import sys

    from tests.conftest import REPO

    table = subprocess.run(
        [sys.executable, "scripts/study_table.py", "docs/study"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()
    readme = (REPO / "README.md").read_text()
    committed = readme.split("<!-- study-table -->\n", 1)[1].split("<!-- /study-table -->", 1)[0].strip()
    assert table == committed and table.count("\n") >= 2  # a header, its rule and at least one study


@pytest.mark.parametrize(("study", "same_share"), [("grey-crops-25px-30pc", False), ("fashion-mnist-10", True)])
def test_the_estimate_counts_the_steps_the_plan_trains(study: str, same_share: bool) -> None:
    """The committed studies' plans against the steps their runs trained (runs.jsonl): exactly, where the tuned
    classic and the recipe chose different shares (the confirmation trains both at both); an upper bound
    where they chose the same one. 100 real images are one batch of 100, not 128."""
    from augmentor.experiments.estimate import planned_steps

    folder = REPO / "docs" / "study" / study
    plan = json.loads((folder / "plan.json").read_text())
    trained = sum(json.loads(line)["steps"] for line in (folder / "runs.jsonl").read_text().splitlines())
    classifier, generators, _ = planned_steps(plan, classes=10, batch_size=128)
    assert generators == 14 * 600
    if same_share:
        assert trained < classifier <= 1.25 * trained
    else:
        assert classifier == trained


def test_the_estimate_counts_the_generators_cas_classifiers_too():
    """Each draw trains a CAS classifier for the real subset and one for every generator's samples, a second for
    its density codes where a candidate uses vae-density, each for the real arm's steps: the density study on
    Fashion-MNIST (said 37 minutes without them, took 46) had 14 draws × 3 of 300 steps."""
    from augmentor.experiments.estimate import planned_steps

    folder = REPO / "docs" / "study" / "fashion-mnist-10-density"
    plan = json.loads((folder / "plan.json").read_text())
    rows = [json.loads(line) for line in (folder / "runs.jsonl").read_text().splitlines()]
    (real_steps,) = {row["steps"] for row in rows if row["arm"] == "real"}
    confirmed = json.loads((folder / "confirmation" / "results.json").read_text())["generators"]
    judged = [key for key in ("cas_validation", "cas_validation_density") if all(key in g for g in confirmed)]
    assert len(judged) == 2 and all("real_accuracy_validation" in g for g in confirmed)  # 3 per draw
    draws = plan["development"]["draws"] + plan["confirmation"]["draws"]
    assert planned_steps(plan, classes=10, batch_size=128)[2] == draws * 3 * real_steps == 14 * 3 * 300
    assert planned_steps(plan, classes=10, batch_size=128, quality_steps=0)[2] == 0
    plain = json.loads((REPO / "docs" / "study" / "fashion-mnist-10" / "plan.json").read_text())
    assert planned_steps(plain, classes=10, batch_size=128, quality_steps=50)[2] == 14 * 2 * 50  # no density arm


@pytest.mark.parametrize(("images", "share", "ratio"), [(300, 0.25, 43), (300, 0.5, 128), (60000, 0.5, 11)])
def test_the_answer_expands_as_many_images_as_the_classifier_draws(images: int, share: float, ratio: int) -> None:
    """The study's arms drew a fresh synthetic image at every presentation; the apply command's expand makes as
    many as `classify train --synthetic-share` draws at its default budget (300 images: the 300-step floor at
    batch 128, 32 or 64 of each batch synthetic; 60,000: 10 passes), not a fixed 1:4 seen over and over."""
    from augmentor.experiments.study import apply_command
    from augmentor.synthetic.recipes import Recipe

    recipe = Recipe(name="r", arm="vae@soft", share=share)
    command = apply_command("data", recipe, Path("study/recipe.json"), images)
    assert f"--ratio 1:{ratio} " in command and f"--synthetic-share {share:g}" in command
    # @soft: a classifier of the real images alone labels the synthetic ones, as it did in the study
    assert "augmentor classify train data --out teacher && " in command and "--teacher teacher" in command
    hard = apply_command("data", Recipe(name="r", arm="vae", share=share), Path("study/recipe.json"), images)
    assert "teacher" not in hard


def test_on_a_gpu_the_study_says_it_gives_no_estimate_before_it_starts(tmp_path, monkeypatch, capsys):
    """The probe times CPU steps, so on CUDA there is no figure to give; the user is told, not left silent."""
    import augmentor.experiments.study as study

    data = make_shapes_folder(tmp_path / "data", per_class=10, splits=True, seed=5)
    monkeypatch.setattr(study, "_cuda", lambda: True)
    monkeypatch.setattr(study, "run_experiment", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("stop here")))
    config = study.StudyConfig(per_class=(3,), dev_draws=2, draws=2, classic=("classic:light",), generative=("vae",))
    with pytest.raises(RuntimeError, match="stop here"):
        study.run_study(str(data), config, tmp_path / "out")
    said = capsys.readouterr().err
    assert "no time estimate" in said and "will take up to" not in said


def test_a_recipe_keeps_its_vaes_beta_and_an_older_file_without_one_means_the_plain_vae(tmp_path):
    from augmentor.core.errors import UserError
    from augmentor.experiments.gain import GainConfig, with_recipe
    from augmentor.experiments.study import apply_command
    from augmentor.synthetic.recipes import Recipe, load_recipe, write_recipe

    path = tmp_path / "recipe.json"
    write_recipe(path, Recipe(name="r", arm="vae", share=0.5))
    assert json.loads(path.read_text())["generator"]["beta"] == 0.1
    assert "augmentor train vae data --steps 600 --width 32 --out vae-run" in apply_command(
        "data", load_recipe(str(path)), path, 300
    )
    # Written before recipes recorded β: its VAEs were the plain VAE's (β 1), and that is what it reproduces.
    path.write_text(json.dumps({"format": 1, "name": "old", "arm": "vae", "share": 0.5, "generator": {"steps": 600}}))
    old = load_recipe(str(path))
    assert old.gen_beta == 1.0 and load_recipe("best").gen_beta == 0.1  # best: measured again at 0.1
    assert "augmentor train vae data --steps 600 --width 32 --beta 1 --out vae-run" in apply_command(
        "data", old, path, 300
    )
    assert with_recipe(GainConfig(recipe=str(path))).gen_beta == 1.0
    assert with_recipe(GainConfig(recipe=str(path), gen_beta=0.3)).gen_beta == 0.3  # a given flag wins
    # ... even at its default value (the command line tells given flags from defaults: `given`)
    assert with_recipe(GainConfig(recipe=str(path), given=frozenset({"gen_beta"}))).gen_beta == 0.1
    path.write_text(json.dumps({"format": 1, "arm": "vae", "share": 0.5, "generator": {"beta": "high"}}))
    with pytest.raises(UserError, match=r"its generator\.beta is not usable"):
        load_recipe(str(path))


def test_a_recipe_with_augmented_generators_keeps_it_and_its_commands_train_them_so(tmp_path):
    from augmentor.experiments.study import apply_command
    from augmentor.synthetic.recipes import Recipe, load_recipe, write_recipe

    recipe = Recipe(name="r", arm="vae-jitter@soft", share=0.25, gen_augment="light")
    write_recipe(tmp_path / "recipe.json", recipe)
    assert json.loads((tmp_path / "recipe.json").read_text())["generator"]["augment"] == "light"
    assert load_recipe(str(tmp_path / "recipe.json")) == recipe
    command = apply_command("data", recipe, tmp_path / "recipe.json", 300)
    assert "augmentor train vae data --steps 600 --width 32 --augment light --out vae-run" in command
    digits = apply_command("data", recipe, tmp_path / "recipe.json", 300, flip=False)  # a study run with --no-flip
    # train, expand, the @soft recipe's teacher and the classifier: each without flips
    assert digits.count("--no-flip") == 4 and "--augment light --no-flip" in digits
    assert apply_command("data", None, tmp_path / "recipe.json", 300, flip=False).endswith("--no-flip --out classifier")


def test_the_answers_generators_train_as_the_studys_arms_trained_them(tmp_path):
    """The apply command's `train` gets the recipe's step budget and width (or its init run, which brings its
    own width), and DiffAugment for a DCGAN: not train's defaults (20 epochs at width 64)."""
    from augmentor.experiments.study import apply_command
    from augmentor.synthetic.recipes import Recipe, load_recipe, write_recipe

    path = tmp_path / "recipe.json"
    recipe = Recipe(name="r", arm="classic:light+dcgan@soft", share=0.5, gen_steps=900, gen_width=24)
    command = apply_command("data", recipe, path, 300)
    assert "augmentor train dcgan data --steps 900 --width 24 --diffaugment --out dcgan-run" in command
    assert "train classic" not in command  # classic sources need no run
    init = Recipe(name="r", arm="vae-density@soft", share=0.5, gen_init="weights/fashion-mnist/vae")
    command = apply_command("data", init, path, 300)
    assert "augmentor train vae data --steps 600 --init weights/fashion-mnist/vae --out vae-run" in command
    assert "--width" not in command
    # A study run with --gen-ada-target keeps it in its recipe, and the DCGAN is trained with it again.
    adaptive = Recipe(name="r", arm="dcgan@soft", share=0.25, gen_ada_target=0.6)
    write_recipe(path, adaptive)
    assert load_recipe(str(path)) == adaptive
    command = apply_command("data", load_recipe(str(path)), path, 300)
    assert "--ada-target 0.6 --out dcgan-run" in command and "--diffaugment" not in command
    path.write_text(json.dumps({"format": 1, "arm": "dcgan", "share": 0.5, "generator": {"ada_target": 2}}))
    with pytest.raises(UserError, match=r"its generator\.ada_target is not usable"):
        load_recipe(str(path))


def test_gain_keeps_a_generator_flag_typed_at_its_default_over_the_recipes(tmp_path, monkeypatch):
    """`gain --recipe old.json --gen-beta 0.1`: the typed 0.1 wins over the file's β 1 (it used to be read as
    "not given" because it equals the default); an untyped flag still takes the file's."""
    import augmentor.experiments.gain as gain
    from augmentor.synthetic.recipes import Recipe, write_recipe

    path = tmp_path / "recipe.json"
    write_recipe(path, Recipe(name="r", arm="vae", share=0.5, gen_steps=900, gen_beta=1.0))
    seen = []

    def stop(src, config, out, **kwargs):
        seen.append(gain.with_recipe(config))
        raise UserError("stopped before any work")

    monkeypatch.setattr(gain, "run_gain", stop)
    result = run_cli("gain", "data", "--recipe", path, "--gen-beta", "0.1", "--out", tmp_path / "out")
    assert result.exit_code == 2 and "stopped before any work" in result.stderr
    assert (seen[0].gen_beta, seen[0].gen_steps) == (0.1, 900)
