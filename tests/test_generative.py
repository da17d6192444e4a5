"""DCGAN and VAE: modules, the Generator training returns and loads, training faults, sampling, bad input."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch

from augmentor.core.errors import UserError
from augmentor.data.imageset import ImageSet
from augmentor.generative.dcgan import DCGANDiscriminator, DCGANGenerator
from augmentor.generative.generator import Generator
from augmentor.generative.kinds import KINDS
from augmentor.generative.train import GenerativeConfig, train_generative
from augmentor.generative.vae import ConvVAE
from augmentor.training.loop import TrainingDiverged
from tests.conftest import REPO, draw_shape, make_shapes_folder, run_cli


def shapes_set(per_class: int = 16, size: int = 28, channels: int = 1, seed: int = 0) -> ImageSet:
    """Drawn disks, squares and triangles as an in-memory ImageSet."""
    rng = np.random.default_rng(seed)
    kinds = ("disk", "square", "triangle")
    images = [draw_shape(k, size, rng, channels).transpose(2, 0, 1) for k in kinds for _ in range(per_class)]
    labels = np.repeat(np.arange(3), per_class)
    return ImageSet(np.stack(images), labels, list(kinds))


def tiny(kind: str, **overrides) -> GenerativeConfig:
    base = {"kind": kind, "steps": 12, "width": 8, "batch_size": 16, "sample_every": 6, "log_every": 3}
    return GenerativeConfig(**{**base, **overrides})


@pytest.mark.parametrize("size", [28, 32, 64, 128, 16, 25, 40, 96, 250])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("num_classes", [0, 4])
def test_modules_produce_images_of_the_requested_shape(size, channels, num_classes):
    labels = torch.tensor([0, 1, 2]) if num_classes else None
    generator = DCGANGenerator(16, num_classes, channels, size, 8)
    images = generator(torch.randn(3, 16), labels)
    assert images.shape == (3, channels, size, size)
    assert float(images.detach().min()) >= -1 and float(images.detach().max()) <= 1
    scores = DCGANDiscriminator(num_classes, channels, size, 8)(images, labels)
    assert scores.shape == (3,) and torch.isfinite(scores).all()
    vae = ConvVAE(8, num_classes, channels, size, 8)
    loss, _reconstruction, kl = vae.loss(generator.to_unit(images).detach(), labels, 1.0, torch.randn(3, 8))
    loss.backward()
    assert torch.isfinite(loss) and float(kl.detach()) >= 0
    assert vae(torch.randn(3, 8), labels).shape == (3, channels, size, size)


def test_sizes_outside_16_to_256_are_refused():
    for size in (15, 257):
        with pytest.raises(UserError, match=rf"image size {size} is outside the 16\.\.256 px"):
            DCGANGenerator(16, 0, 1, size, 8)


def test_internal_sizes():
    """The shipped sizes are built as they were (no resize); a side between the stems' is made just above it."""
    from augmentor.generative.layers import internal_size, ladder

    assert [internal_size(s) for s in (28, 32, 64, 128)] == [28, 32, 64, 128]
    assert [ladder(s, 64) for s in (28, 32)] == [(7, [128, 64]), (4, [256, 128, 64])]
    assert {s: internal_size(s) for s in (16, 17, 25, 33, 40, 96, 100, 255, 256)} == {
        16: 16, 17: 20, 25: 28, 33: 40, 40: 40, 96: 96, 100: 112, 255: 256, 256: 256,
    }  # fmt: skip
    assert all(s <= internal_size(s) <= s * 1.25 for s in range(16, 257))


@pytest.mark.parametrize("kind", list(KINDS))
def test_training_returns_the_generator_its_run_folder_loads(tmp_path, kind, monkeypatch):
    run = tmp_path / "run"
    result = train_generative(shapes_set(), tiny(kind), run)
    for name in ("config.json", "model.safetensors", "state.json", "state-0000012.safetensors", "metrics.jsonl"):
        assert (run / name).is_file(), name
    assert (run / "losses.png").is_file() and not list(run.glob("state-00000[0-9][0-9].safetensors"))[1:]
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step-000006.png", "step-000012.png"]
    assert result.step == 12 and [m["step"] for m in result.metrics] == [3, 6, 9, 12]
    loaded = Generator.from_run(run)
    assert result.generator.run_id == loaded.run_id and loaded.kind == kind
    assert loaded.image_shape == (1, 28, 28) and loaded.can_encode == KINDS[kind].can_encode
    labels = np.array([0, 1, 2, 2])
    made = loaded.generate(labels, seed=5)
    assert made.images.shape == (4, 1, 28, 28) and made.images.dtype == np.uint8
    assert np.array_equal(result.generator.generate(labels, seed=5).images, made.images)
    assert [p["latent_index"] for p in made.provenance] == [0, 1, 2, 3]
    assert made.provenance[0]["source"] == kind
    # Image i of a seed does not depend on how many are drawn with it.
    again = loaded.generate(np.array([2]), seed=5, first_index=3)
    assert np.array_equal(again.images[0], made.images[3])
    # Without a folder nothing is written, and the same training gives the same generator and losses.
    empty = tmp_path / "cwd"
    empty.mkdir()
    monkeypatch.chdir(empty)
    in_memory = train_generative(shapes_set(), tiny(kind))
    assert in_memory.out is None and in_memory.generator.run is None
    assert not list(empty.iterdir()) and sorted(p.name for p in tmp_path.iterdir()) == ["cwd", "run"]
    assert np.array_equal(in_memory.generator.generate(labels, seed=5).images, made.images)
    for logged in (result.metrics, in_memory.metrics):
        for entry in logged:
            entry.pop("seconds"), entry.pop("train_seconds")
    assert in_memory.metrics == result.metrics


def test_vae_encodes_to_codes_that_decode_to_images_and_a_dcgan_refuses(tmp_path):
    data = shapes_set(per_class=4)
    vae = train_generative(data, tiny("vae", steps=2, sample_every=2)).generator
    codes = vae.encode(data.images, data.labels, device="cpu")
    assert codes.shape == (12, vae.latent_dim) and codes.dtype == torch.float32
    # Other batch sizes take other CPU kernels: the same numbers up to rounding.
    means, log_variances = vae.posterior(data.images, data.labels, device="cpu", batch_size=5)
    assert torch.allclose(means, codes, atol=1e-5) and log_variances.shape == codes.shape
    decoded = vae.decode(codes, data.labels, device="cpu", batch_size=5)
    assert decoded.shape == data.images.shape and decoded.dtype == np.uint8
    whole = vae.decode(codes, data.labels, device="cpu").astype(int)
    assert np.abs(decoded.astype(int) - whole).max() <= 1
    dcgan = train_generative(data, tiny("dcgan", steps=2, sample_every=2)).generator
    assert not dcgan.can_encode
    with pytest.raises(UserError, match=r"no encoder; its images go through inversion \(augmentor project\)"):
        dcgan.encode(data.images, data.labels)


def test_loading_a_generator_imports_no_training_module():
    code = "import json, sys, augmentor.generative.generator; print(json.dumps(sorted(sys.modules)))"
    loaded = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    modules = json.loads(loaded.stdout)
    assert "augmentor.generative.generator" in modules
    for training in ("augmentor.generative.train", "augmentor.generative.diffaugment", "augmentor.training.loop"):
        assert training not in modules, modules


@pytest.mark.parametrize("kind", ["dcgan", "vae"])
def test_resumed_run_equals_an_uninterrupted_one(tmp_path, kind):
    data = shapes_set()
    train_generative(data, tiny(kind, steps=12, diffaugment=kind == "dcgan"), tmp_path / "whole")
    train_generative(data, tiny(kind, steps=6, diffaugment=kind == "dcgan"), tmp_path / "part")
    train_generative(data, tiny(kind, steps=12), tmp_path / "part", resume=True)
    whole = (tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()
    part = (tmp_path / "part" / "metrics.jsonl").read_text().splitlines()
    timing = ("seconds", "train_seconds")
    strip = [{k: v for k, v in json.loads(line).items() if k not in timing} for line in whole]
    assert strip == [{k: v for k, v in json.loads(line).items() if k not in timing} for line in part]
    seconds = [json.loads(line)["seconds"] for line in part]
    assert seconds == sorted(seconds) and seconds[0] > 0  # the clock goes on after the resume, not from 0
    whole_weights = (tmp_path / "whole" / "model.safetensors").read_bytes()
    assert whole_weights == (tmp_path / "part" / "model.safetensors").read_bytes()


@pytest.mark.parametrize("kind", ["dcgan", "vae"])
def test_a_generator_handed_over_at_a_budget_point_is_the_one_a_run_of_that_budget_ends_with(kind):
    """--gen-budgets picks a budget from one run: the copy at step 6 of 12 must be a 6-step run's generator, and
    handing it over (a callback that draws random numbers) must leave the rest of the run as it was."""
    data = shapes_set()
    config = tiny(kind, steps=12, diffaugment=kind == "dcgan")
    handed: dict[int, Generator] = {}

    def keep(step: int, generator: Generator) -> None:
        torch.rand(100)  # a judge that trains a classifier draws from the global RNG
        handed[step] = generator

    whole = train_generative(data, config, budget_points=(6, 12), on_budget_point=keep)
    short = train_generative(data, tiny(kind, steps=6, diffaugment=kind == "dcgan"))
    plain = train_generative(data, config)
    labels = np.array([0, 1, 2, 1])
    assert sorted(handed) == [6, 12] and handed[6].config["training"]["steps"] == 6
    assert np.array_equal(handed[6].generate(labels, 3).images, short.generator.generate(labels, 3).images)
    assert np.array_equal(handed[12].generate(labels, 3).images, plain.generator.generate(labels, 3).images)
    assert np.array_equal(whole.generator.generate(labels, 3).images, plain.generator.generate(labels, 3).images)
    assert not np.array_equal(handed[6].generate(labels, 3).images, handed[12].generate(labels, 3).images)


def test_resume_refuses_other_data(tmp_path):
    train_generative(shapes_set(), tiny("vae", steps=6), tmp_path / "run")
    with pytest.raises(UserError, match="other images"):
        train_generative(shapes_set(seed=1), tiny("vae", steps=12), tmp_path / "run", resume=True)


def test_non_finite_loss_rolls_back_then_stops_without_a_nan_checkpoint(tmp_path, monkeypatch):
    from augmentor.generative import train as generative

    original = generative._Trainer.step
    calls = {"n": 0}

    def poisoned(self, images, labels, generator):
        losses = original(self, images, labels, generator)
        calls["n"] += 1
        if calls["n"] > 7:  # from the 8th step on every loss is NaN
            losses["loss"] = losses["loss"] * float("nan")
        return losses

    monkeypatch.setattr(generative._Trainer, "step", poisoned)
    with pytest.raises(TrainingDiverged, match=r"non-finite 3 times.*last good checkpoint \(step 6\)"):
        train_generative(shapes_set(), tiny("vae", steps=12, max_nonfinite=2), tmp_path / "run")
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    assert state["step"] == 6
    from safetensors.torch import load_file

    for name, tensor in load_file(str(tmp_path / "run" / "model.safetensors")).items():
        assert torch.isfinite(tensor.float()).all(), name


def test_one_non_finite_step_is_rolled_back_and_training_goes_on(tmp_path, monkeypatch):
    from augmentor.generative import train as generative

    original = generative._Trainer.step
    calls = {"n": 0}

    def once(self, images, labels, generator):
        losses = original(self, images, labels, generator)
        calls["n"] += 1
        if calls["n"] == 8:
            losses["loss"] = losses["loss"] * float("inf")
        return losses

    monkeypatch.setattr(generative._Trainer, "step", once)
    result = train_generative(shapes_set(), tiny("vae", steps=12), tmp_path / "run")
    assert result.step == 12 and json.loads((tmp_path / "run" / "state.json").read_text())["rollbacks"] == 1


def test_sigint_saves_and_exits_resumable(tmp_path, shapes_folder):
    run = tmp_path / "run"
    command = [sys.executable, "-m", "augmentor", "train", "vae", str(shapes_folder), "--out", str(run)]
    command += ["--steps", "100000", "--width", "8", "--batch-size", "8", "--sample-every", "100000"]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = 60
        import time

        started = time.monotonic()
        while not (run / "config.json").exists() and time.monotonic() - started < deadline:
            time.sleep(0.1)
        time.sleep(1.0)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, err
    assert f"continue with: augmentor train vae {shapes_folder} --out {run} --resume" in err  # the real source
    step = json.loads((run / "state.json").read_text())["step"]
    assert 0 < step < 100000
    # No entry for the stop itself (a resumed run logs as an uninterrupted one); the sums since the last go on.
    # (Under heavy load the stop may come before the first log point: then there is no entry at all.)
    assert all(json.loads(line)["step"] <= step for line in (run / "metrics.jsonl").read_text().splitlines())
    again = run_cli("train", "vae", shapes_folder, "--out", run, "--steps", "5")  # a new run into it: say --resume
    assert (
        again.exit_code == 2 and f"holds an interrupted vae run (step {step} of 100000); pass --resume" in again.stderr
    )


def test_pickle_checkpoint_is_refused_and_its_payload_never_runs(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    checkpoint = tmp_path / "model.pt"
    checkpoint.write_bytes(pickle.dumps(Payload()))
    result = run_cli("sample", str(checkpoint), "--n", "2", "--out", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert "pickled checkpoints are refused" in result.stderr
    assert not marker.exists()


def test_sampling_bad_input(tmp_path, shapes_folder):
    train_generative(shapes_set(), tiny("dcgan", steps=3, sample_every=3), tmp_path / "run")
    unknown = run_cli("sample", str(tmp_path / "run"), "--class", "hexagon", "--n", "2", "--out", str(tmp_path / "a"))
    assert unknown.exit_code == 2 and "does not know class 'hexagon'" in unknown.stderr
    assert "disk" in unknown.stderr
    not_run = run_cli("sample", str(shapes_folder), "--n", "2", "--out", str(tmp_path / "b"))
    assert not_run.exit_code == 2 and "not a run folder" in not_run.stderr
    classifier = run_cli(
        "sample", str(REPO / "weights/fashion-mnist/classifier"), "--n", "2", "--out", str(tmp_path / "c")
    )
    assert classifier.exit_code == 2 and "dcgan or vae run is needed" in classifier.stderr


def test_weights_that_do_not_match_the_config_are_named(tmp_path):
    train_generative(shapes_set(), tiny("vae", steps=3, sample_every=3), tmp_path / "run")
    config_path = tmp_path / "run" / "config.json"
    config = json.loads(config_path.read_text())
    config["model_args"]["width"] = 16
    config_path.write_text(json.dumps(config))
    result = run_cli("sample", str(tmp_path / "run"), "--n", "2", "--out", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert "do not match" in result.stderr and "shape mismatch" in result.stderr


def test_unsupported_image_size_through_the_cli(tmp_path):
    from tests.conftest import make_shapes_folder

    folder = make_shapes_folder(tmp_path / "small", per_class=3, size=12)
    result = run_cli("train", "dcgan", str(folder), "--out", str(tmp_path / "run"), "--steps", "2")
    assert result.exit_code == 2
    assert "outside the 16..256 px" in result.stderr and "--image-size 16" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_train_run_checks_out_and_resume_before_reading_any_image(tmp_path):
    from augmentor.generative.train import train_run

    config = tiny("vae", steps=2)
    missing = str(tmp_path / "no-data")  # never read: each refusal comes first
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "x").write_text("x")
    cases = [
        ({"out": tmp_path / "a", "resume": True, "overwrite": True}, "give one of them"),
        ({"out": taken}, "pass --overwrite"),
        ({"out": tmp_path / "no-run", "resume": True}, "no such run folder to resume"),
        ({"out": taken, "resume": True}, "not a run folder"),
    ]
    for kwargs, message in cases:
        with pytest.raises(UserError, match=message):
            train_run(missing, config, **kwargs)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]
    result = run_cli("train", "vae", missing, "--out", str(tmp_path / "b"), "--resume")
    assert result.exit_code == 2 and "no such run folder to resume" in result.stderr
    missing_out = run_cli("train", "vae", missing)
    assert missing_out.exit_code == 2 and "--out" in missing_out.stderr


def test_sample_command_writes_a_readable_imagefolder(tmp_path):
    from torchvision.datasets import ImageFolder

    train_generative(shapes_set(), tiny("dcgan", steps=3, sample_every=3), tmp_path / "run")
    out = tmp_path / "samples"
    result = run_cli(
        "sample", str(tmp_path / "run"), "--per-class", "4", "--out", str(out), "--grid", str(tmp_path / "g.png")
    )
    assert result.exit_code == 0, result.stderr
    folder = ImageFolder(str(out))
    assert len(folder) == 12 and folder.classes == ["disk", "square", "triangle"]
    manifest = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert {m["source"] for m in manifest} == {"dcgan"} and sorted(m["latent_index"] for m in manifest) == list(
        range(12)
    )
    assert (tmp_path / "g.png").stat().st_size > 0
    rerun = run_cli("sample", str(tmp_path / "run"), "--per-class", "4", "--out", str(tmp_path / "again"))
    assert rerun.exit_code == 0
    again = [json.loads(line)["sha256"] for line in (tmp_path / "again" / "manifest.jsonl").read_text().splitlines()]
    assert again == [m["sha256"] for m in manifest]


def test_non_finite_from_the_first_step_says_no_checkpoint_exists_and_the_folder_can_be_reused(tmp_path, monkeypatch):
    from augmentor.core.runs import never_checkpointed
    from augmentor.generative import train as generative

    original = generative._Trainer.step

    def poisoned(self, images, labels, generator):
        losses = original(self, images, labels, generator)
        losses["loss"] = losses["loss"] * float("nan")
        return losses

    run = tmp_path / "run"
    monkeypatch.setattr(generative._Trainer, "step", poisoned)
    with pytest.raises(TrainingDiverged, match="no checkpoint was saved yet"):
        train_generative(shapes_set(), tiny("vae", max_nonfinite=0), run)
    assert never_checkpointed(run)  # config.json alone
    monkeypatch.undo()
    data = make_shapes_folder(tmp_path / "data", per_class=6)
    resumed = run_cli("train", "vae", data, "--out", run, "--resume")
    assert resumed.exit_code == 2 and "nothing to resume" in resumed.stderr and f"--out {run}" in resumed.stderr
    again = run_cli("train", "vae", data, "--out", run, "--steps", "3", "--width", "8", "--batch-size", "8")
    assert again.exit_code == 0, again.stderr  # reused without --overwrite
    assert json.loads((run / "state.json").read_text())["step"] == 3


def test_a_vae_whose_huge_beta_overflows_is_told_to_lower_beta_not_the_lr(tmp_path):
    """Issue 11 audit: --beta 1e308 overflows the loss at once, and the advice said 'lower --lr'."""
    with pytest.raises(TrainingDiverged, match=r"lower --beta \(now 1e\+308"):
        train_generative(shapes_set(), tiny("vae", beta=1e308, max_nonfinite=0), tmp_path / "run")


def test_a_run_folder_in_use_by_another_training_process_is_refused(tmp_path):
    from augmentor.core.runs import claim_run_folder

    data = make_shapes_folder(tmp_path / "data", per_class=6)
    run = tmp_path / "run"
    with claim_run_folder(run):  # as another `train` process would hold it
        busy = run_cli("train", "dcgan", data, "--out", run, "--steps", "2", "--width", "8", "--batch-size", "8")
    assert busy.exit_code == 2 and "another training process" in busy.stderr
    assert not (run / "config.json").exists()


def test_resume_refuses_a_flag_it_would_ignore_and_takes_a_new_device(tmp_path):
    data = make_shapes_folder(tmp_path / "data", per_class=6)
    run = tmp_path / "run"
    first = run_cli("train", "vae", data, "--out", run, "--steps", "3", "--width", "8", "--batch-size", "8")
    assert first.exit_code == 0, first.stderr
    refused = run_cli("train", "vae", data, "--out", run, "--resume", "--steps", "6", "--width", "16")
    assert refused.exit_code == 2 and "--width 16 differs from its 8" in refused.stderr
    resumed = run_cli("train", "vae", data, "--out", run, "--resume", "--steps", "6", "--device", "cpu")
    assert resumed.exit_code == 0, resumed.stderr
    assert json.loads((run / "state.json").read_text())["step"] == 6


def test_a_class_whose_samples_are_one_image_repeated_is_a_collapse_warning():
    """Issue 12 item 8: one colour blob per class, alike within the class, used to pass without a word."""
    from augmentor.generative.train import class_collapse_message, collapse_advice, within_class_ssim

    data = shapes_set(per_class=8)
    real = within_class_ssim(data, 3, 8, seed=0)
    assert all(r < 0.75 for r in real)
    varied = np.concatenate([data.images[data.labels == k][:8] for k in range(3)])
    advice = collapse_advice("vae", in_gain=False)
    assert class_collapse_message(varied, 8, real, data.class_names, advice) == ""
    one_each = varied.copy()
    one_each[8:16] = one_each[8]  # the second class: its first image eight times
    message = class_collapse_message(one_each, 8, real, data.class_names, advice)
    assert "the samples of 1 of 3 classes are nearly one image repeated" in message
    assert data.class_names[1] in message and data.class_names[0] not in message.split(":")[1]
    assert message.endswith(
        "try more --steps or a lower --beta (a strong KL term pulls every sample toward one mean image)"
    )
    # The advice names flags the command has: gain trains its generators itself (no --diffaugment there).
    assert "--gen-steps" in collapse_advice("dcgan", in_gain=True) and "--diffaugment" in collapse_advice(
        "dcgan", False
    )


def test_collapse_is_judged_against_the_real_images_own_diversity():
    """Issue 26: a fixed 0.75 SSIM threshold was Fashion-MNIST's: on colour photo crops (real SSIM about 0.1) one
    crop repeated with mild noise (SSIM about 0.7) went unflagged."""
    from augmentor.data.measures import mean_pairwise_ssim
    from augmentor.data.offline_sets import COLOUR_PHOTOS, photo_crops
    from augmentor.generative.train import class_collapse_message, collapsed_share

    arrays = photo_crops(COLOUR_PHOTOS[:3], channels=3, size=32, per_class=8)
    images, labels = arrays["images"], arrays["labels"]
    real = [mean_pairwise_ssim(images[labels == k], limit=8) for k in range(3)]
    assert all(r < 0.2 for r in real)
    rng = np.random.default_rng(0)
    base = images[labels == 1][0].astype(float)
    repeated = np.clip(base + rng.normal(0, 6, (8, *base.shape)), 0, 255).astype(np.uint8)
    assert 0.6 < mean_pairwise_ssim(repeated, limit=8) < 0.75  # under the old fixed threshold
    pictures = np.concatenate([images[labels == 0], repeated, images[labels == 2]])
    message = class_collapse_message(pictures, 8, real, list(arrays["class_names"]), "advice")
    assert "the samples of 1 of 3 classes" in message and "coffee" in message
    assert collapsed_share(0.52, 0.51) < 0.5 < collapsed_share(0.9, 0.51)  # Fashion-MNIST trousers: as before


def test_a_dcgan_trained_at_a_huge_lr_warns_of_collapse_and_a_smoke_run_does_not():
    """Issue 11/12 audit: --lr 1e6 gave identical samples without a word; a 12-step smoke run, whose
    untrained samples are alike without having collapsed, warned every time."""
    wrecked = train_generative(shapes_set(), tiny("dcgan", steps=100, lr=1e6, sample_every=50))
    (collapse,) = [w for w in wrecked.warnings if w.startswith("per-class mode collapse: the samples of 3 of 3")]
    # A library call with no run folder is no gain run: the advice names train's flags, not gain's.
    assert "--diffaugment" in collapse and "--gen-steps" not in collapse
    healthy = train_generative(shapes_set(), tiny("dcgan", steps=100, lr=2e-4, sample_every=50))
    assert not any("collapse" in w for w in healthy.warnings)
    smoke = train_generative(shapes_set(), tiny("dcgan", steps=12, lr=1e6))
    assert not any("per-class mode collapse" in w for w in smoke.warnings)


def test_sample_seeds_give_one_image_per_seed_whatever_else_is_asked_and_psi_pulls_to_the_mean(tmp_path):
    """StyleGAN's habits (issue 12): --seeds 0-3 --class C, one image per seed, the same image for a seed in
    any list; --psi scales the codes toward the prior's mean."""
    from augmentor.generative.generator import parse_seeds

    run = REPO / "weights" / "fashion-mnist" / "vae"
    assert parse_seeds("0-3,10") == [0, 1, 2, 3, 10]
    with pytest.raises(UserError, match="range of seeds"):
        parse_seeds("5-2")
    with pytest.raises(UserError, match="more than"):
        parse_seeds("0-200000")

    def images(*args: str, out) -> dict[int, str]:
        result = run_cli("sample", run, "--class", "Sneaker", *args, "--out", out)
        assert result.exit_code == 0, result.stderr
        # One class was asked for: the nine left without images are no news (dataset.json still names them).
        assert "have no images" not in result.stderr
        assert len(json.loads((out / "dataset.json").read_text())["classes_without_images"]) == 9
        records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
        assert {r["class"] for r in records} == {"Sneaker"} and {r["latent_index"] for r in records} == {0}
        return {r["seed"]: r["sha256"] for r in records}

    root = tmp_path
    four = images("--seeds", "0-3", out=root / "a")
    two = images("--seeds", "3,1", out=root / "b")
    assert sorted(four) == [0, 1, 2, 3] and two == {3: four[3], 1: four[1]}
    vae = Generator.from_run(run)
    label = np.array([vae.class_index("Sneaker")])
    plain = vae.generate(label, 7).images.astype(np.float64)
    mean = vae.generate(label, 7, psi=0.0).images.astype(np.float64)  # the code at the prior's mean
    half = vae.generate(label, 7, psi=0.5).images.astype(np.float64)
    assert np.abs(half - mean).mean() < np.abs(plain - mean).mean()
    refused = run_cli("sample", run, "--seeds", "0-3", "--out", root / "c")  # a conditional model: --class
    assert refused.exit_code == 2 and "needs --class with --seeds" in refused.stderr
    both = run_cli("sample", run, "--seeds", "0-3", "--n", "4", "--class", "0", "--out", root / "d")
    assert both.exit_code == 2 and "without --n" in both.stderr


def test_sample_renders_while_writing_in_bounded_groups_with_the_bytes_of_one_render(tmp_path, monkeypatch):
    from PIL import Image

    import augmentor.data.writers as writers
    from augmentor.generative.sample import SampleConfig, grid_of, grid_title, sample_labels, sample_run

    train_generative(shapes_set(), tiny("vae", steps=2, sample_every=2), tmp_path / "run")
    generator = Generator.from_run(tmp_path / "run")
    config = SampleConfig(per_class=200, seed=4, device="cpu", workers=1)  # 600 images, decode batches of 256
    labels = sample_labels(generator, config)
    held = generator.generate(labels, 4, device="cpu")  # one call, all in memory
    rendered: list[int | str] = []  # images per render call, "png" per chunk written
    generate, write_chunk = Generator.generate, writers._write_chunk
    monkeypatch.setattr(writers, "_write_chunk", lambda *a: rendered.append("png") or write_chunk(*a))
    monkeypatch.setattr(
        Generator, "generate", lambda self, lab, *a, **k: rendered.append(len(lab)) or generate(self, lab, *a, **k)
    )
    monkeypatch.setattr(writers, "_RENDERED_BYTES", 300 * 28 * 28)  # room for one batch at a time
    sample_run(tmp_path / "run", config, tmp_path / "out", grid=tmp_path / "grid.png")
    # Rendered one batch at a time, each written before the next is made (then the grid's batches again).
    assert rendered[:6] == [256, "png", 256, "png", 88, "png"]
    manifest = [json.loads(line) for line in (tmp_path / "out" / "manifest.jsonl").read_text().splitlines()]
    assert [record["latent_index"] for record in manifest] == list(range(600))
    for record in manifest[::37]:  # each written PNG is the one-call image
        written = np.asarray(Image.open(tmp_path / "out" / record["path"]))
        assert np.array_equal(written, held.images[record["latent_index"], 0])
    title = grid_title(tmp_path / "run", generator, labels)
    assert (tmp_path / "grid.png").read_bytes() == grid_of(held, title=title)


def test_adaptive_diffaugment_moves_its_probability_and_resumes_exactly(tmp_path):
    """--ada-target: the probability starts at 0 and rises while the discriminator is surer of the real images
    than the target; it is part of the checkpoint, so a resumed run equals an uninterrupted one."""
    data = shapes_set()
    whole = train_generative(data, tiny("dcgan", steps=24, ada_target=0.1), tmp_path / "whole")
    probabilities = [entry["ada_p"] for entry in whole.metrics]
    assert all(0.0 <= p <= 1.0 for p in probabilities) and max(probabilities) > 0
    train_generative(data, tiny("dcgan", steps=12, ada_target=0.1), tmp_path / "part")
    resumed = train_generative(data, tiny("dcgan", steps=24), tmp_path / "part", resume=True)
    assert [m["ada_p"] for m in resumed.metrics] == probabilities
    labels = np.arange(6) % 3
    assert np.array_equal(whole.generator.generate(labels, 0).images, resumed.generator.generate(labels, 0).images)
    plain = train_generative(data, tiny("dcgan", steps=3), None)
    assert "ada_p" not in plain.metrics[-1]  # off unless asked


def test_the_hinge_loss_trains_its_own_dcgan_reproducibly_and_a_bad_loss_is_refused(tmp_path):
    """--gan-loss hinge (the shipped DCGAN's): the hinge losses are logged (the discriminator's is 2 at a zero
    logit and stays finite), a seeded rerun is bit-identical and differs from the non-saturating loss's run;
    an unknown loss is one line, exit 2, nothing written."""
    data = shapes_set()
    hinge = train_generative(data, tiny("dcgan", steps=6, gan_loss="hinge"), tmp_path / "hinge")
    again = train_generative(data, tiny("dcgan", steps=6, gan_loss="hinge"), None)
    plain = train_generative(data, tiny("dcgan", steps=6), None)
    assert json.loads((tmp_path / "hinge" / "config.json").read_text())["training"]["gan_loss"] == "hinge"
    assert all(np.isfinite(m["d_loss"]) and m["d_loss"] >= 0 for m in hinge.metrics)
    labels = np.arange(6) % 3
    made = [run.generator.generate(labels, 0).images for run in (hinge, again, plain)]
    assert np.array_equal(made[0], made[1]) and not np.array_equal(made[0], made[2])
    folder = make_shapes_folder(tmp_path / "data", per_class=3)
    refused = run_cli("train", "dcgan", folder, "--gan-loss", "wasserstein", "--out", tmp_path / "bad")
    assert refused.exit_code == 2 and "--gan-loss wasserstein" in refused.stderr and "hinge" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and not (tmp_path / "bad").exists()


def test_diffaugment_at_probability_zero_leaves_images_and_at_one_changes_them():
    import torch

    from augmentor.generative.diffaugment import diff_augment

    images = torch.rand(8, 1, 16, 16) * 2 - 1
    generator = torch.Generator().manual_seed(0)
    assert torch.equal(diff_augment(images, generator, torch.tensor(0.0)), images)
    changed = diff_augment(images, generator, torch.tensor(1.0))
    assert changed.shape == images.shape and not torch.equal(changed, images)


def test_augmented_copies_join_the_training_data_seeded_and_labelled_as_their_parents(tmp_path):
    """--augment: the images and K classic copies of each (labels kept, originals first, the copies differ from
    them); the same seed makes the same copies and the same trained model; the run records what it trained on
    and the real images' fingerprint, and resumes exactly."""
    from augmentor.data.imageset import fingerprint
    from augmentor.generative.train import with_augmented_copies

    data = shapes_set(per_class=4)
    config = tiny("vae", augment="light", augment_copies=3)
    expanded = with_augmented_copies(data, config)
    assert len(expanded) == 4 * len(data) and np.array_equal(expanded.images[: len(data)], data.images)
    assert np.array_equal(expanded.labels, np.tile(data.labels, 4))
    copies = expanded.images[len(data) :].reshape(3, *data.images.shape)
    assert all(not np.array_equal(copy, data.images) for copy in copies)
    assert np.array_equal(with_augmented_copies(data, config).images, expanded.images)
    assert not np.array_equal(
        with_augmented_copies(data, tiny("vae", augment="light", seed=1)).images[12:24], copies[0]
    )

    run = train_generative(data, tiny("vae", steps=12, augment="light", augment_copies=3), tmp_path / "run")
    again = train_generative(data, tiny("vae", steps=12, augment="light", augment_copies=3), None)
    plain = train_generative(data, tiny("vae", steps=12), None)
    labels = np.arange(6) % 3
    made = run.generator.generate(labels, 0).images
    assert np.array_equal(made, again.generator.generate(labels, 0).images)
    assert not np.array_equal(made, plain.generator.generate(labels, 0).images)
    record = json.loads((tmp_path / "run" / "config.json").read_text())
    assert record["training"]["augment"] == "light" and record["training"]["augment_copies"] == 3
    assert record["dataset"]["fingerprint"] == fingerprint(data)  # the real images, not the copies
    train_generative(data, tiny("vae", steps=6, augment="light", augment_copies=3), tmp_path / "part")
    resumed = train_generative(data, tiny("vae", steps=12), tmp_path / "part", resume=True)
    assert np.array_equal(resumed.generator.generate(labels, 0).images, made)


def test_a_bad_augment_is_refused_before_a_run_folder_is_made(tmp_path):
    folder = make_shapes_folder(tmp_path / "data", per_class=6)
    bad = run_cli("train", "vae", str(folder), "--augment", "nonesuch", "--steps", "3", "--out", str(tmp_path / "r"))
    assert bad.exit_code == 2 and "nonesuch" in bad.stderr and not (tmp_path / "r").exists()
