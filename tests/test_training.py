"""Classifier training, run folders, evaluation, transfer learning, and their bad input."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from augmentor.classifiers import Classifier
from augmentor.data.imageset import ImageSet
from tests.conftest import REPO, SHAPE_CLASSES, make_shapes_folder, run_cli

STEPS = "40"


@pytest.fixture(scope="module")
def shapes_data(tmp_path_factory) -> Path:
    """Grey 28×28 disks / squares / triangles, 24 per class in train and in test."""
    return make_shapes_folder(tmp_path_factory.mktemp("shapes") / "data", per_class=24, splits=True, seed=1)


@pytest.fixture(scope="module")
def trained(shapes_data, tmp_path_factory) -> Classifier:
    """What ``classify train`` returns as a library call: the classifier, its run folder written."""
    from augmentor.classifiers.classifier import train_run
    from augmentor.classifiers.train import TrainConfig

    config = TrainConfig(steps=int(STEPS), batch_size=32, seed=3)
    return train_run(str(shapes_data), config, tmp_path_factory.mktemp("runs") / "run")


@pytest.fixture(scope="module")
def trained_run(trained) -> Path:
    return trained.run


@pytest.fixture(scope="module")
def shapes_test(shapes_data):
    from augmentor.data.readers import open_dataset

    return open_dataset(str(shapes_data)).test


def test_run_folder_and_accuracy_above_chance(trained_run):
    names = {p.name for p in trained_run.iterdir()}
    assert {"config.json", "model.safetensors", "metrics.jsonl", "curves.png", "confusion.png"} <= names
    config = json.loads((trained_run / "config.json").read_text())
    assert config["kind"] == "classifier" and config["arch"] == "fast"
    assert config["class_names"] == ["disk", "square", "triangle"]
    assert config["training"]["steps"] == int(STEPS) and len(config["dataset"]["fingerprint"]) == 64
    assert config["test"]["accuracy"] > 0.6  # chance is 1/3
    metrics = [json.loads(line) for line in (trained_run / "metrics.jsonl").read_text().splitlines()]
    assert metrics[-1]["step"] == int(STEPS) and all(np.isfinite(m["train_loss"]) for m in metrics)


def test_eval_matches_training_score(trained_run, shapes_data):
    result = run_cli("classify", "eval", trained_run, shapes_data, "--json")
    assert result.exit_code == 0, result.stderr
    scores = json.loads(result.stdout)
    config = json.loads((trained_run / "config.json").read_text())
    assert scores["accuracy"] == pytest.approx(config["test"]["accuracy"])
    assert set(scores["per_class"]) == {"disk", "square", "triangle"}
    assert np.asarray(scores["confusion"]).sum() == scores["images"] == 72
    table = run_cli("classify", "eval", trained_run, shapes_data)
    assert "confusion matrix" in table.stdout and "accuracy:" in table.stdout


def test_cpu_runs_with_the_same_seed_are_bit_identical(trained, trained_run, shapes_data, tmp_path):
    again = tmp_path / "again"
    args = ["classify", "train", shapes_data, "--out", again, "--steps", STEPS, "--batch-size", "32", "--seed", "3"]
    result = run_cli(*args, "--json")  # the command, where the fixture made its run with the library call
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["test_accuracy"] == trained.final["accuracy"]
    digest = [hashlib.sha256((r / "model.safetensors").read_bytes()).hexdigest() for r in (trained_run, again)]
    assert digest[0] == digest[1]
    other = tmp_path / "other"
    assert run_cli(*args[:-1], "4", "--out", other).exit_code == 0
    assert (other / "model.safetensors").read_bytes() != (again / "model.safetensors").read_bytes()


def test_loaded_classifier_predicts_as_the_trained_one(trained, trained_run, shapes_test):
    loaded = Classifier.from_run(trained_run)
    assert loaded.class_names == trained.class_names == ["disk", "square", "triangle"]
    assert loaded.image_shape == trained.image_shape == (1, 28, 28)
    assert torch.equal(loaded.mean, trained.mean) and torch.equal(loaded.std, trained.std)
    predicted = trained.predict(shapes_test)
    assert predicted.dtype == torch.int64 and torch.equal(loaded.predict(shapes_test.images), predicted)
    proba = loaded.proba(shapes_test)
    assert proba.shape == (72, 3) and torch.allclose(proba.sum(1), torch.ones(72))
    # The trained network holds channels_last weights, the loaded one contiguous ones: equal up to rounding.
    assert torch.allclose(proba, trained.proba(shapes_test), atol=1e-5)
    assert torch.equal(proba.argmax(1), predicted)
    features = loaded.features(shapes_test)
    assert features.shape == (72, loaded.num_features) and features.dtype == torch.float64
    assert torch.allclose(features, trained.features(shapes_test), atol=1e-4)
    # Better than chance (1/3), and the scores are the predictions counted.
    scores = loaded.evaluate(shapes_test)
    assert scores["accuracy"] > 0.6 and scores["accuracy"] == trained.final["accuracy"]
    right = predicted == torch.from_numpy(shapes_test.labels)
    assert scores["accuracy"] == pytest.approx(float(right.float().mean()))
    assert scores["per_class"] == trained.final["per_class"] and scores["confusion"] == trained.final["confusion"]


def test_evaluate_matches_classify_eval_and_matches_classes_by_name(trained_run, shapes_data, shapes_test):
    result = run_cli("classify", "eval", trained_run, shapes_data, "--json")
    assert result.exit_code == 0, result.stderr
    command = json.loads(result.stdout)
    scores = Classifier.from_run(trained_run).evaluate(shapes_test)
    assert {k: command[k] for k in scores} == scores
    # The same test images with their classes listed in another order score the same.
    order = [2, 0, 1]
    shuffled = ImageSet(
        shapes_test.images,
        np.array([order.index(label) for label in shapes_test.labels]),
        [shapes_test.class_names[k] for k in order],
    )
    assert Classifier.from_run(trained_run).evaluate(shuffled) == scores


def test_classifier_refuses_images_of_another_shape(trained):
    from augmentor.core.errors import UserError

    with pytest.raises(UserError, match=r"images are 3×28×28, the classifier .* takes 1×28×28; convert them with"):
        trained.predict(np.zeros((2, 3, 28, 28), np.uint8))
    with pytest.raises(TypeError, match="uint8"):
        trained.proba(np.zeros((2, 1, 28, 28), np.float32))
    assert trained.predict(np.zeros((0, 1, 28, 28), np.uint8)).shape == (0,)


def test_loading_a_classifier_imports_no_training_module():
    import subprocess
    import sys

    probe = (
        "import sys\nfrom augmentor.classifiers import Classifier\n"
        "Classifier.from_run(sys.argv[1]).predict(__import__('numpy').zeros((1, 1, 28, 28), 'uint8'))\n"
        "print(sorted(m for m in sys.modules if m.startswith('augmentor.') and 'train' in m))"
    )
    shipped = REPO / "weights" / "fashion-mnist" / "classifier"
    result = subprocess.run([sys.executable, "-c", probe, str(shipped)], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_init_from_run_with_new_classes_and_frozen_backbone(trained_run, tmp_path):
    from safetensors.torch import load_file

    two = make_shapes_folder(tmp_path / "two", per_class=8, splits=True, seed=5)
    import shutil

    shutil.rmtree(two / "train" / "triangle")
    shutil.rmtree(two / "test" / "triangle")
    out = tmp_path / "transfer"
    result = run_cli(
        "classify",
        "train",
        two,
        "--out",
        out,
        "--init",
        trained_run,
        "--freeze-backbone",
        "--steps",
        "5",
        "--batch-size",
        "8",
    )
    assert result.exit_code == 0, result.stderr
    before, after = load_file(trained_run / "model.safetensors"), load_file(out / "model.safetensors")
    assert after["head.weight"].shape[0] == 2 and before["head.weight"].shape[0] == 3
    frozen = [k for k in after if not k.startswith("head.") and "running" not in k and "num_batches" not in k]
    assert frozen and all(np.array_equal(before[k], after[k]) for k in frozen)


def test_init_from_local_torchvision_weights(tmp_path, shapes_data):
    import torch
    import torchvision
    from safetensors.torch import load_file

    weights = tmp_path / "r18.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), weights)
    out = tmp_path / "tv"
    result = run_cli(
        "classify",
        "train",
        shapes_data,
        "--out",
        out,
        "--init",
        f"torchvision:resnet18={weights}",
        "--steps",
        "1",
        "--batch-size",
        "4",
        "--lr",
        "0",
    )
    assert result.exit_code == 0, result.stderr
    state = torch.load(weights, weights_only=True)
    ours = load_file(out / "model.safetensors")
    key = next(k for k in ours if k.endswith("layer1.0.conv1.weight"))
    assert torch.equal(ours[key], state["layer1.0.conv1.weight"])
    assert json.loads((out / "config.json").read_text())["arch"] == "resnet18"


def test_test_classes_must_match(shapes_data, tmp_path):
    odd = make_shapes_folder(tmp_path / "odd", per_class=3)
    (odd / "square").rename(odd / "hexagon")
    result = run_cli("classify", "train", shapes_data, "--test", odd, "--out", tmp_path / "x", "--steps", "1")
    assert result.exit_code == 2 and "hexagon" in result.stderr and "square" in result.stderr
    assert not (tmp_path / "x").exists()


def test_class_with_a_single_image_is_refused(tmp_path):
    data = make_shapes_folder(tmp_path / "d", per_class=4)
    for extra in sorted((data / "disk").iterdir())[1:]:
        extra.unlink()
    result = run_cli("classify", "train", data, "--out", tmp_path / "x", "--steps", "1")
    assert result.exit_code == 2 and "'disk' has 1 image" in result.stderr


def test_unknown_architecture_lists_known_ones(shapes_data, tmp_path):
    result = run_cli("classify", "train", shapes_data, "--arch", "resnet19", "--out", tmp_path / "x")
    assert result.exit_code == 2 and "resnet19" in result.stderr and "resnet18" in result.stderr


def test_incompatible_init_names_the_tensors(trained_run, shapes_data, tmp_path):
    import shutil

    from safetensors.torch import load_file, save_file

    broken = tmp_path / "broken"
    shutil.copytree(trained_run, broken)
    state = load_file(broken / "model.safetensors")
    key = next(k for k in state if k.endswith("weight") and state[k].ndim == 4)
    state[key] = state[key][:, :, :1].contiguous()
    save_file(state, broken / "model.safetensors")
    result = run_cli("classify", "train", shapes_data, "--init", broken, "--out", tmp_path / "x", "--steps", "1")
    assert result.exit_code == 2 and key in result.stderr and "shape mismatch" in result.stderr


def test_non_finite_loss_stops_and_keeps_last_good_weights(shapes_data, tmp_path):
    from safetensors.torch import load_file

    out = tmp_path / "diverged"
    result = run_cli(
        "classify", "train", shapes_data, "--out", out, "--steps", "30", "--lr", "1e30", "--batch-size", "16"
    )
    assert result.exit_code == 2 and "non-finite" in result.stderr and "step" in result.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["status"].startswith("diverged at step")
    assert all(np.isfinite(t.numpy()).all() for t in load_file(out / "model.safetensors").values())
    result = run_cli("classify", "eval", out, shapes_data)
    assert result.exit_code == 2 and "diverged at step" in result.stderr


def test_pickled_checkpoints_are_refused(shapes_data, tmp_path):
    import pickle

    marker = tmp_path / "created-by-pickle"
    payload = tmp_path / "evil.pt"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    payload.write_bytes(pickle.dumps(Evil()))
    result = run_cli("classify", "eval", payload, shapes_data)
    assert result.exit_code == 2 and "pickled" in result.stderr and not marker.exists()
    result = run_cli("classify", "train", shapes_data, "--init", payload, "--out", tmp_path / "x", "--steps", "1")
    assert result.exit_code == 2 and not marker.exists()


def test_non_empty_out_is_refused(trained_run, shapes_data):
    result = run_cli("classify", "train", shapes_data, "--out", trained_run, "--steps", "1")
    assert result.exit_code == 2 and "--overwrite" in result.stderr


def test_inspect_refuses_a_taken_png_before_loading_the_run(tmp_path):
    from augmentor.classifiers.inspect import write_activations, write_filters
    from augmentor.core.errors import UserError

    missing, image = tmp_path / "no-run", tmp_path / "no.png"  # never read: each refusal comes first
    taken = tmp_path / "taken.png"
    taken.write_bytes(b"x")
    with pytest.raises(UserError, match="exists; pass --overwrite"):
        write_filters(missing, taken)
    with pytest.raises(UserError, match="exists; pass --overwrite"):
        write_activations(missing, image, taken)
    with pytest.raises(UserError, match="--max-channels 0"):
        write_activations(missing, image, tmp_path / "a.png", max_channels=0)
    assert taken.read_bytes() == b"x" and [p.name for p in tmp_path.iterdir()] == ["taken.png"]


def test_inspect_filters_and_activations(trained_run, shapes_data, tmp_path):
    from PIL import Image

    filters = tmp_path / "filters.png"
    result = run_cli("inspect", "filters", trained_run, "--out", filters)
    assert result.exit_code == 0, result.stderr
    with Image.open(filters) as im:
        width, height = im.size
    conv_out = json.loads((trained_run / "config.json").read_text())  # fast: 16 stem kernels → 2 rows of 8
    assert conv_out["arch"] == "fast" and width > height > 0
    image = sorted((shapes_data / "test" / "disk").iterdir())[0]
    activations = tmp_path / "act.png"
    result = run_cli("inspect", "activations", trained_run, image, "--out", activations, "--max-channels", "8")
    assert result.exit_code == 0, result.stderr
    assert activations.stat().st_size > 5000
    again = run_cli("inspect", "activations", trained_run, image, "--out", activations)
    assert again.exit_code == 2 and "--overwrite" in again.stderr
    big = tmp_path / "big.png"
    Image.new("L", (40, 40)).save(big)
    result = run_cli("inspect", "activations", trained_run, big, "--out", tmp_path / "b.png")
    assert result.exit_code == 2 and "28×28" in result.stderr


def test_classify_train_mixes_an_expand_output_at_equal_real_exposure(tmp_path):
    """--synthetic takes an expand output's synthetic images only, and keeps the real budget."""
    data = make_shapes_folder(tmp_path / "data", per_class=8, splits=True, seed=3)
    expanded = tmp_path / "expanded"
    result = run_cli("expand", data, "--with", "classic:light", "--per-class", "20", "--out", expanded)
    assert result.exit_code == 0, result.stderr
    common = ["--steps", "6", "--batch-size", "8", "--device", "cpu", "--json"]
    plain = run_cli("classify", "train", data, "--out", tmp_path / "plain", *common)
    mixed = run_cli("classify", "train", data, "--synthetic", expanded, "--out", tmp_path / "mixed", *common)
    assert plain.exit_code == 0 and mixed.exit_code == 0, mixed.stderr
    config = json.loads((tmp_path / "mixed" / "config.json").read_text())
    # 6 real-only steps of 8 = 48 real presentations; at share 0.5 they take 12 steps of 4 real + 4 synthetic.
    assert config["training"]["steps"] == 12
    assert config["synthetic"] == {"pool_images": 3 * 12, "drawn": 48, "share": 0.5, "weight": 1.0}
    assert config["source"]["synthetic"] == str(expanded)
    other = make_shapes_folder(tmp_path / "other", per_class=4, size=32)
    refused = run_cli("classify", "train", data, "--synthetic", other, "--out", tmp_path / "x", *common)
    assert refused.exit_code == 2 and "synthetic images are 1×32×32" in refused.stderr
    assert not (tmp_path / "x").exists()


def test_classify_train_labels_synthetic_images_by_a_teacher_as_a_soft_recipe_was_trained(tmp_path):
    """--teacher RUN: the --synthetic images train on share × the teacher's probabilities (at --temperature) +
    the rest on their class, as gain's @soft arms; the same seed gives the same weights, hard labels others."""
    from safetensors.numpy import load_file

    data = make_shapes_folder(tmp_path / "data", per_class=8, splits=True, seed=3)
    expanded = tmp_path / "expanded"
    assert run_cli("expand", data, "--with", "classic:light", "--per-class", "20", "--out", expanded).exit_code == 0
    common = ["--steps", "6", "--batch-size", "8", "--device", "cpu", "--seed", "1"]
    assert run_cli("classify", "train", data, "--out", tmp_path / "teacher", *common).exit_code == 0
    mix = [data, "--synthetic", expanded, *common]
    for name in ("soft", "again"):
        result = run_cli("classify", "train", *mix, "--teacher", tmp_path / "teacher", "--out", tmp_path / name)
        assert result.exit_code == 0, result.stderr
    assert run_cli("classify", "train", *mix, "--out", tmp_path / "hard").exit_code == 0
    weights = {name: load_file(tmp_path / name / "model.safetensors") for name in ("soft", "again", "hard")}
    assert all((weights["soft"][k] == weights["again"][k]).all() for k in weights["soft"])
    assert any((weights["soft"][k] != weights["hard"][k]).any() for k in weights["soft"])
    source = json.loads((tmp_path / "soft" / "config.json").read_text())["source"]
    assert source["teacher"] == str(tmp_path / "teacher") and source["teacher_share"] == 0.5
    alone = run_cli("classify", "train", data, "--teacher", tmp_path / "teacher", "--out", tmp_path / "x", *common)
    assert alone.exit_code == 2 and "give --synthetic DIR too" in alone.stderr and not (tmp_path / "x").exists()
    other = make_shapes_folder(tmp_path / "other", per_class=6, seed=4)
    (other / SHAPE_CLASSES[0]).rename(other / "ring")  # a teacher of other classes
    assert run_cli("classify", "train", other, "--out", tmp_path / "two", *common).exit_code == 0
    wrong = run_cli("classify", "train", *mix, "--teacher", tmp_path / "two", "--out", tmp_path / "y")
    assert wrong.exit_code == 2 and "--teacher" in wrong.stderr and "trained without classes" in wrong.stderr
    generator = tmp_path / "generator"  # a run, but not a classifier's
    assert run_cli("train", "vae", other, "--steps", "1", "--width", "8", "--out", generator).exit_code == 0
    for not_one, says in ((tmp_path / "nowhere", "not a run folder"), (generator, "'vae' run")):
        refused = run_cli("classify", "train", *mix, "--teacher", not_one, "--out", tmp_path / "z")
        assert refused.exit_code == 2 and refused.stderr.startswith(f"error: --teacher {not_one}"), refused.stderr
        assert says in refused.stderr and not (tmp_path / "z").exists()


def test_an_epoch_budget_of_few_steps_warns_and_an_explicit_step_budget_does_not(shapes_data, tmp_path):
    few = run_cli("classify", "train", shapes_data, "--out", tmp_path / "a", "--epochs", "2", "--batch-size", "16")
    assert few.exit_code == 0, few.stderr
    assert "is only 9 optimiser steps" in few.stderr and "--steps 300" in few.stderr  # 2 × 72 images / 16
    chosen = run_cli("classify", "train", shapes_data, "--out", tmp_path / "b", "--steps", "2", "--batch-size", "16")
    assert chosen.exit_code == 0 and "optimiser steps" not in chosen.stderr


def test_an_unknown_compile_mode_is_refused_before_any_work(shapes_data, tmp_path):
    result = run_cli("classify", "train", shapes_data, "--out", tmp_path / "x", "--compile", "fastest")
    assert result.exit_code == 2 and "'fastest'" in result.stderr and "reduce-overhead" in result.stderr
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("cc") is None, reason="torch.compile's CPU backend needs a C compiler")
def test_a_compiled_training_step_learns_like_the_eager_one(shapes_data, tmp_path):
    """--compile default on the CPU: it warns that it does not pay there, and the compiled run still learns."""
    args = ("classify", "train", shapes_data, "--steps", "60", "--batch-size", "32", "--seed", "3", "--json")
    compiled = run_cli(*args, "--out", tmp_path / "compiled", "--compile", "default")
    assert compiled.exit_code == 0, compiled.stderr
    assert "--compile default on the CPU" in compiled.stderr
    config = json.loads((tmp_path / "compiled" / "config.json").read_text())
    assert config["training"]["compile_mode"] == "default"
    assert config["test"]["accuracy"] > 0.6  # chance is 1/3


def test_a_model_that_learnt_nothing_and_a_flat_channel_are_said(shapes_data, tmp_path):
    """Issue 11: --lr 1000 used to end 'fine' at chance; flat images trained in silence."""
    wild = run_cli("classify", "train", shapes_data, "--lr", "1000", "--steps", "120", "--batch-size", "32",
                   "--out", tmp_path / "wild")  # fmt: skip
    assert wild.exit_code == 0, wild.stderr
    assert "no better than guessing among 3 classes" in wild.stderr and "lower --lr (now 1000)" in wild.stderr
    fine = run_cli("classify", "train", shapes_data, "--steps", "120", "--batch-size", "32", "--out", tmp_path / "ok")
    assert fine.exit_code == 0 and "guessing" not in fine.stderr and "flat value" not in fine.stderr
    np.savez(tmp_path / "flat.npz", images=np.zeros((40, 28, 28), np.uint8), labels=np.arange(40) % 2,
             class_names=np.array(["a", "b"]))  # fmt: skip
    flat = run_cli("classify", "train", tmp_path / "flat.npz", "--steps", "120", "--batch-size", "16",
                   "--out", tmp_path / "flat")  # fmt: skip
    assert "channel 0 of the training images is one flat value everywhere" in flat.stderr


def test_a_validation_split_chooses_the_weights_and_test_never_does(shapes_data, tmp_path):
    """--val-fraction holds out a stratified share of train, scores it at every evaluation, keeps the best
    point's weights (--keep best) and says which; --keep last keeps the final ones."""
    args = ("classify", "train", shapes_data, "--steps", "60", "--batch-size", "16", "--seed", "2", "--json")
    best = run_cli(*args, "--val-fraction", "0.25", "--out", tmp_path / "best")
    assert best.exit_code == 0, best.stderr
    config = json.loads((tmp_path / "best" / "config.json").read_text())
    validation = config["validation"]
    assert validation["images"] == 18 and config["dataset"]["images"] == 72 - 18  # 6 of each class's 24
    metrics = [json.loads(line) for line in (tmp_path / "best" / "metrics.jsonl").read_text().splitlines()]
    scored = [m for m in metrics if "val_accuracy" in m]
    assert len(scored) == len(metrics) and validation["best_accuracy"] == max(m["val_accuracy"] for m in scored)
    first_best = next(m["step"] for m in scored if m["val_accuracy"] == validation["best_accuracy"])
    assert validation["best_step"] == validation["kept_step"] == first_best
    # The kept weights are the best point's: their test accuracy is that point's, not the last one's.
    assert config["test"]["accuracy"] == next(m["test_accuracy"] for m in scored if m["step"] == first_best)
    last = run_cli(*args, "--val-fraction", "0.25", "--keep", "last", "--out", tmp_path / "last")
    assert last.exit_code == 0, last.stderr
    kept = json.loads((tmp_path / "last" / "config.json").read_text())
    assert kept["validation"]["kept_step"] == 60 and kept["test"]["accuracy"] == scored[-1]["test_accuracy"]
    bad = run_cli(*args, "--val-fraction", "0.25", "--keep", "first", "--out", tmp_path / "bad")
    assert bad.exit_code == 2 and "--keep 'first'" in bad.stderr and not (tmp_path / "bad").exists()


def test_mixup_and_cutmix_mix_images_targets_and_weights_by_one_share():
    from augmentor.classifiers.augment import mix_batch, soft_targets

    generator = torch.Generator().manual_seed(0)
    inputs = torch.arange(4, dtype=torch.float32)[:, None, None, None].expand(4, 1, 8, 8).clone()
    rows, weights = soft_targets(torch.tensor([0, 1]), torch.tensor([[0.5, 0.5, 0.0]] * 2), 3, 0.5, 0.1)
    assert torch.allclose(rows.sum(1), torch.ones(4)) and weights.tolist() == [1, 1, 0.5, 0.5]
    mixed, mixed_rows, mixed_weights = mix_batch(inputs, rows, weights, 0.4, 0.0, np.random.default_rng(1), generator)
    assert torch.allclose(mixed_rows.sum(1), torch.ones(4)) and ((mixed_weights >= 0.5) & (mixed_weights <= 1)).all()
    assert len(torch.unique(mixed[0])) == 1  # mixup blends whole images
    cut, cut_rows, _ = mix_batch(inputs, rows, weights, 0.0, 1.0, np.random.default_rng(2), generator)
    own = (cut == inputs).float().mean(dim=(1, 2, 3))  # the share of each image still its own pixels
    changed = own < 1
    assert changed.any()
    expected = own[changed][0]  # the box is the same for the whole batch
    assert torch.allclose(own[changed], expected)
    # the targets follow the pixels: each row is (kept area) × its own targets + the rest × its partner's
    for i in range(4):
        share = float(own[i]) if changed[i] else 1.0
        assert any(torch.allclose(cut_rows[i], share * rows[i] + (1 - share) * rows[j]) for j in range(4))
    again = mix_batch(inputs, rows, weights, 0.0, 1.0, np.random.default_rng(2), torch.Generator().manual_seed(0))
    first = mix_batch(inputs, rows, weights, 0.0, 1.0, np.random.default_rng(2), torch.Generator().manual_seed(0))
    assert torch.equal(again[0], first[0]) and torch.equal(again[1], first[1])  # seeded: the same mix


def test_mixup_and_cutmix_training_learns_and_reruns_bit_identically(shapes_data, tmp_path):
    args = ("classify", "train", shapes_data, "--steps", "120", "--batch-size", "32", "--seed", "4")
    args += ("--mixup", "0.2", "--cutmix", "1.0")
    first = run_cli(*args, "--out", tmp_path / "a")
    second = run_cli(*args, "--out", tmp_path / "b")
    assert first.exit_code == 0 and second.exit_code == 0, first.stderr
    config = json.loads((tmp_path / "a" / "config.json").read_text())
    assert config["training"]["mixup"] == 0.2 and config["test"]["accuracy"] > 0.6  # chance is 1/3
    assert (tmp_path / "a" / "model.safetensors").read_bytes() == (tmp_path / "b" / "model.safetensors").read_bytes()
    plain = run_cli("classify", "train", shapes_data, "--steps", "120", "--batch-size", "32", "--seed", "4",
                    "--out", tmp_path / "plain")  # fmt: skip
    assert plain.exit_code == 0
    assert (tmp_path / "a" / "model.safetensors").read_bytes() != (
        tmp_path / "plain" / "model.safetensors"
    ).read_bytes()


def test_model_ema_is_what_is_evaluated_and_kept(shapes_data, tmp_path):
    """--ema 0.99: the averaged weights are scored and saved; they differ from the last step's weights."""
    from augmentor.classifiers.train import TrainConfig, train_classifier
    from augmentor.data.readers import open_dataset
    from augmentor.training.ema import WeightAverage

    data = open_dataset(str(shapes_data))
    plain = train_classifier(data.train, TrainConfig(steps=120, batch_size=32, seed=5), test=data.test)
    averaged = train_classifier(data.train, TrainConfig(steps=120, batch_size=32, seed=5, ema=0.99), test=data.test)
    assert averaged.final["accuracy"] > 0.6  # chance is 1/3
    kept = averaged.model.state_dict()
    last = plain.model.state_dict()  # the same run without averaging: its last weights
    assert any(not torch.equal(kept[k], last[k]) for k in kept if kept[k].is_floating_point())
    assert averaged.config["training"]["ema"] == 0.99
    # The average itself: a ramped decay, lerped towards the live weights, counters copied.
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    average = WeightAverage(model, 0.9)
    with torch.no_grad():
        model[0].weight.add_(1.0)
    before = average.model[0].weight.clone()
    average.update(model)
    decay = min(0.9, 2 / 11)
    assert torch.allclose(average.model[0].weight, decay * before + (1 - decay) * model[0].weight)
    bad = run_cli("classify", "train", shapes_data, "--ema", "1.5", "--out", tmp_path / "x")
    assert bad.exit_code == 2 and not (tmp_path / "x").exists()


def _stop_at(step: int):
    """A ``should_stop`` that stops the run after ``step``, as SIGTERM would."""
    return lambda done: done == step


def _without_seconds(run: Path) -> tuple[list[dict], dict]:
    """metrics.jsonl and config.json of a run, wall-clock times left out."""
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    config = json.loads((run / "config.json").read_text())
    config["training"].pop("seconds")
    return [{k: v for k, v in m.items() if "seconds" not in k} for m in metrics], config


@pytest.mark.parametrize(
    ("settings", "val_fraction", "stop"),
    [
        ({}, 0.0, 20),  # the `trained` fixture's run, stopped at an evaluation point
        # Everything with a state of its own, stopped between evaluation points (a half-summed loss):
        # EMA, best-so-far validation weights, mixup/CutMix's numpy stream, RandAugment's generator, cosine.
        (
            {"ema": 0.9, "mixup": 0.2, "cutmix": 1.0, "randaugment": "rand-m9-n2", "schedule": "cosine"},
            0.25,
            13,
        ),
    ],
    ids=["plain", "ema-val-mix-randaugment"],
)
def test_an_interrupted_run_resumed_ends_bit_identical_to_an_uninterrupted_one(
    trained_run, shapes_data, tmp_path, settings, val_fraction, stop
):
    from augmentor.classifiers.classifier import train_run
    from augmentor.classifiers.train import TrainConfig
    from augmentor.training.loop import TrainingInterrupted

    config = TrainConfig(steps=int(STEPS), batch_size=32, seed=3, **settings)
    straight = trained_run
    if settings:
        straight = train_run(str(shapes_data), config, tmp_path / "straight", val_fraction=val_fraction).run
    run = tmp_path / "run"
    with pytest.raises(TrainingInterrupted, match=f"interrupted at step {stop} of {STEPS}"):
        train_run(str(shapes_data), config, run, val_fraction=val_fraction, should_stop=_stop_at(stop))
    state = json.loads((run / "state.json").read_text())
    assert state["step"] == stop and state["tensors"] == f"state-{stop:07d}.safetensors"
    assert sorted(p.name for p in run.iterdir()) == [state["tensors"], "state.json"]  # results come at the end
    # Resumed with no settings at all: the run's own are used (val_fraction included).
    resumed = train_run(str(shapes_data), TrainConfig(), run, resume=True)
    assert resumed.config["training"]["steps"] == int(STEPS)
    assert (run / "model.safetensors").read_bytes() == (straight / "model.safetensors").read_bytes()
    assert _without_seconds(run) == _without_seconds(straight)
    assert [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()][-1] == int(STEPS)


def test_resume_refusals_name_the_folder_and_the_fix(trained_run, shapes_data, tmp_path):
    """Each refusal is one line, exit 2, before any training: a folder that is no resumable classifier run,
    other data, a differing setting, --overwrite with it, a finished run."""
    from augmentor.classifiers.classifier import train_run
    from augmentor.classifiers.train import TrainConfig
    from augmentor.training.loop import TrainingInterrupted

    run = tmp_path / "run"
    with pytest.raises(TrainingInterrupted):
        train_run(str(shapes_data), TrainConfig(steps=40, batch_size=32), run, should_stop=_stop_at(4))
    before = {p.name: p.read_bytes() for p in run.iterdir()}

    def refused(*args: object) -> str:
        result = run_cli("classify", "train", *args)
        assert result.exit_code == 2, result.stderr
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
        return result.stderr

    assert "holds an interrupted classifier run (step 4 of 40); pass --resume" in refused(shapes_data, "--out", run)
    resume = ("--out", run, "--resume")
    message = refused(shapes_data, *resume, "--lr", "0.01")
    assert f"{run}: --resume goes on with the run's own settings, and --lr 0.01 differs from its 0.003" in message
    assert "drop --lr" in message
    assert "--no-flip differs from its --flip" in refused(shapes_data, *resume, "--no-flip")
    assert "--val-fraction 0.2 differs from its 0.0" in refused(shapes_data, *resume, "--val-fraction", "0.2")
    other = make_shapes_folder(tmp_path / "other", per_class=24, splits=True, seed=9)
    message = refused(other, *resume)
    assert f"{other}'s training images differ from the ones the run was trained with" in message
    assert "--resume continues the run in it, --overwrite replaces it" in refused(shapes_data, *resume, "--overwrite")
    assert "no such run folder to resume" in refused(shapes_data, "--out", tmp_path / "nothing", "--resume")
    assert not (tmp_path / "nothing").exists()
    (tmp_path / "empty").mkdir()
    assert "holds no classifier training state" in refused(shapes_data, "--out", tmp_path / "empty", "--resume")
    generative = tmp_path / "vae"
    generative.mkdir()
    (generative / "config.json").write_text('{"kind": "vae"}')
    assert "is a 'vae' run, not a classifier run" in refused(shapes_data, "--out", generative, "--resume")
    older = tmp_path / "older"  # a finished run from before checkpoints were kept
    shutil.copytree(trained_run, older, ignore=shutil.ignore_patterns("state*"))
    assert "finished before checkpoints were kept" in refused(shapes_data, "--out", older, "--resume")
    message = refused(shapes_data, "--out", trained_run, "--resume")
    assert f"{trained_run}: already finished at step 40; raise --steps" in message
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before  # no refusal touched the run


def test_a_finished_run_trains_on_with_a_larger_budget(shapes_data, tmp_path):
    run = tmp_path / "run"
    args = ("classify", "train", shapes_data, "--out", run, "--batch-size", "32", "--json")
    assert run_cli(*args, "--steps", "10").exit_code == 0
    longer = run_cli(*args, "--steps", "16", "--resume")
    assert longer.exit_code == 0, longer.stderr
    assert json.loads(longer.stdout)["steps"] == 16
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps[:10] == list(range(1, 11)) and steps[-1] == 16 and steps == sorted(set(steps))
    assert json.loads((run / "state.json").read_text())["step"] == 16


def test_sigterm_saves_a_checkpoint_and_the_printed_command_resumes(shapes_data, tmp_path):
    """The CLI on SIGTERM: checkpoint, exit 130, the resume command printed; that command goes on (here with a
    smaller budget, so it ends soon)."""
    import os
    import shlex
    import signal
    import subprocess
    import sys
    import time

    run = tmp_path / "run"
    command = [sys.executable, "-m", "augmentor", "classify", "train", str(shapes_data), "--out", str(run)]
    command += ["--steps", "20000", "--batch-size", "8", "--arch", "lenet5", "--device", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        # The first checkpoint (step 2000, the first evaluation point) says training is under way.
        while process.poll() is None and time.monotonic() < deadline and not (run / "state.json").exists():
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, err
    step = json.loads((run / "state.json").read_text())["step"]
    assert 2000 <= step < 20000 and not (run / "config.json").exists()
    assert f"interrupted at step {step} of 20000; continue with: augmentor classify train " in err
    again = shlex.split(err.strip().splitlines()[-1].split("continue with: ", 1)[1])
    assert again == ["augmentor", "classify", "train", str(shapes_data), "--out", str(run), "--resume"]
    resumed = run_cli(*again[1:], "--steps", str(step + 3), "--json")
    assert resumed.exit_code == 0, resumed.stderr
    assert json.loads(resumed.stdout)["steps"] == step + 3 and (run / "config.json").is_file()
    assert not list(run.glob(".*"))  # nothing half-written


def test_randaugment_takes_timms_spelling_and_refuses_the_rest(shapes_data, tmp_path):
    from augmentor.classifiers.augment import parse_randaugment
    from augmentor.classifiers.train import TrainConfig
    from augmentor.core.errors import UserError

    assert parse_randaugment("rand-m9-n2") == parse_randaugment("rand-n2-m9") == parse_randaugment("rand-m9") == (2, 9)
    assert TrainConfig(randaugment="RAND-n3-m0").randaugment == "rand-m0-n3"  # one spelling in the config
    for bad in ("rand", "m9-n2", "rand-n2", "rand-m9-n0", "rand-m11", "rand-m9-m9", "rand-m9-mstd0.5", "2,9"):
        with pytest.raises(UserError, match=r"give rand-mM-nN, e\.g\. rand-m9-n2"):
            parse_randaugment(bad)
    result = run_cli("classify", "train", shapes_data, "--randaugment", "rand-m9-inc1", "--out", tmp_path / "x")
    assert result.exit_code == 2 and "timm's mstd, inc, p and w keys are not supported" in result.stderr
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("channels", [1, 3])
def test_randaugment_draws_per_image_from_its_generator(channels):
    from augmentor.classifiers.augment import rand_augment

    rng = np.random.default_rng(0)
    images = torch.from_numpy(rng.integers(0, 256, (64, channels, 16, 16), dtype=np.uint8))
    kept = images.clone()
    first = rand_augment(images, 2, 9, torch.Generator().manual_seed(1))
    again = rand_augment(images, 2, 9, torch.Generator().manual_seed(1))
    other = rand_augment(images, 2, 9, torch.Generator().manual_seed(2))
    assert torch.equal(images, kept)  # the input is left alone
    assert first.dtype == torch.uint8 and first.shape == images.shape
    assert torch.equal(first, again) and not torch.equal(first, other)  # seeded: the same draws, or others
    changed = (first != images).flatten(1).any(1)
    assert changed.sum() > 48  # few images draw only ops that leave them as they were (Identity, ...)
    # Each image its own ops: many different changes, where v2.RandAugment given the batch applies one to all.
    shares = {round((first[i] != images[i]).float().mean().item(), 3) for i in range(64)}
    assert len(shares) > 10


def test_randaugment_training_learns_reruns_bit_identically_and_changes_the_weights(trained_run, shapes_data, tmp_path):
    from safetensors.torch import load_file

    from augmentor.classifiers.train import TrainConfig, train_classifier
    from augmentor.data.readers import open_dataset

    args = ("--steps", STEPS, "--batch-size", "32", "--seed", "3")  # the `trained` fixture's run, plus RandAugment
    result = run_cli("classify", "train", shapes_data, *args, "--randaugment", "rand-n2-m9", "--out", tmp_path / "a")
    assert result.exit_code == 0, result.stderr
    config = json.loads((tmp_path / "a" / "config.json").read_text())
    assert config["training"]["randaugment"] == "rand-m9-n2"  # recorded, in one spelling
    assert config["test"]["accuracy"] > 0.6  # grey images; chance is 1/3
    again = train_classifier(
        open_dataset(str(shapes_data)).train,
        TrainConfig(steps=int(STEPS), batch_size=32, seed=3, randaugment="rand-m9-n2"),
    )
    saved, plain = load_file(tmp_path / "a" / "model.safetensors"), load_file(trained_run / "model.safetensors")
    assert all(torch.equal(saved[k], v) for k, v in again.model.state_dict().items())  # the seed fixes the draws
    assert any(not torch.equal(saved[k], plain[k]) for k in saved)  # and they change the batches
    assert json.loads((trained_run / "config.json").read_text())["training"]["randaugment"] is None


def test_checkpoints_come_at_evaluation_points_and_every_checkpoint_seconds(shapes_data, tmp_path, monkeypatch):
    import augmentor.classifiers.train as training
    import augmentor.training.loop as loop
    from augmentor.data.readers import open_dataset

    saved: list[int] = []
    write = loop.write_checkpoint
    monkeypatch.setattr(loop, "write_checkpoint", lambda *a: (saved.append(a[2]["step"]), write(*a)))
    train = open_dataset(str(shapes_data)).train
    config = training.TrainConfig(steps=10, batch_size=16, evals=2)
    training.train_classifier(train, config, checkpoint_dir=tmp_path / "a")
    assert saved == [5, 10]  # the evaluation points, the last one included
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["state-0000010.safetensors", "state.json"]
    saved.clear()
    monkeypatch.setattr(loop, "CHECKPOINT_SECONDS", 0.0)  # due at every (finite-checked) step
    training.train_classifier(train, config, checkpoint_dir=tmp_path / "b")
    assert saved == list(range(1, 11))


def test_tta_scores_an_image_and_its_mirror_alike_and_is_kept_in_the_run(trained, shapes_data, shapes_test, tmp_path):
    """--tta: the mean of the image's and its mirror's probabilities, in training's evaluations and after loading."""
    images = torch.from_numpy(np.ascontiguousarray(shapes_test.images))
    mirrored = images.flip(-1)
    assert not torch.allclose(trained.proba(images), trained.proba(mirrored), atol=1e-4)  # plain: the mirror differs
    out = tmp_path / "tta"
    result = run_cli("classify", "train", shapes_data, "--steps", STEPS, "--batch-size", "32", "--seed", "3",
                     "--tta", "--out", out)  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert json.loads((out / "config.json").read_text())["training"]["tta"] is True
    loaded = Classifier.from_run(out)
    assert loaded.tta and torch.allclose(loaded.proba(images), loaded.proba(mirrored), atol=1e-5)
    # The same weights scored without the mirror give the plain probabilities, and with it their mean.
    loaded.tta = False
    plain, flipped = loaded.proba(images), loaded.proba(mirrored)
    loaded.tta = True
    assert torch.allclose(loaded.proba(images), (plain + flipped) / 2, atol=1e-5)
    scores = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert scores["test_accuracy"] == pytest.approx(loaded.evaluate(shapes_test)["accuracy"])
