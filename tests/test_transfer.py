"""Generators started from another run (``--init`` / ``--gen-init``, issue 23 item 3): what is taken, what is
refused, and the leakage rule of the gain experiment and the study."""

from __future__ import annotations

import json

import numpy as np
import torch

from augmentor.data.readers import open_dataset
from augmentor.generative.generator import Generator
from augmentor.generative.train import GenerativeConfig, train_generative
from tests.conftest import REPO, make_shapes_folder, run_cli

SHIPPED_VAE = REPO / "weights" / "fashion-mnist" / "vae"


def _shapes(tmp_path, **kwargs):
    return open_dataset(str(make_shapes_folder(tmp_path / "shapes", per_class=6, **kwargs))).train


def test_a_vae_started_from_the_shipped_one_takes_its_weights_but_not_other_classes_embeddings(tmp_path):
    train = _shapes(tmp_path)
    config = GenerativeConfig(kind="vae", steps=1, sample_every=1, device="cpu", init=str(SHIPPED_VAE))
    warm = train_generative(train, config, tmp_path / "warm")
    record = json.loads((tmp_path / "warm" / "config.json").read_text())
    assert record["model_args"]["width"] == 64 and record["model_args"]["latent_dim"] == 32  # the run's
    init = record["init"]
    assert init["tensors_taken"] == 22 and init["class_embeddings"] == "fresh (other classes)"
    assert init["tensors_fresh"] == ["decoder_embed.table.weight", "encoder_embed.table.weight"]
    assert init["dataset"]["images"] == 60000 and len(init["weights_sha256"]) == 64
    shipped = Generator.from_run(SHIPPED_VAE).module.state_dict()
    started = warm.generator.module.state_dict()
    moved = [name for name in shipped if "embed" not in name and not torch.equal(shipped[name], started[name])]
    assert moved and len(moved) < len(shipped)  # one step moved the weights, from the shipped ones
    # The warm start is a real head start: after one step its reconstructions are far better than from scratch.
    scratch = train_generative(train, GenerativeConfig(kind="vae", steps=1, width=64, device="cpu"), None)
    assert warm.metrics[-1]["reconstruction"] < 0.7 * scratch.metrics[-1]["reconstruction"]


def test_the_same_classes_keep_their_embeddings_and_a_rerun_is_bit_identical(tmp_path):
    train = _shapes(tmp_path)
    first = GenerativeConfig(kind="vae", steps=3, width=8, latent_dim=4, sample_every=3, device="cpu")
    train_generative(train, first, tmp_path / "a")
    again = GenerativeConfig(kind="vae", steps=3, sample_every=3, device="cpu", init=str(tmp_path / "a"))
    one = train_generative(train, again, tmp_path / "b")
    two = train_generative(train, again, tmp_path / "c")
    assert json.loads((tmp_path / "b" / "config.json").read_text())["init"]["class_embeddings"] == "taken"
    labels = np.arange(6) % 3
    assert np.array_equal(one.generator.generate(labels, 0).images, two.generator.generate(labels, 0).images)


def test_an_init_run_that_does_not_fit_is_one_line_naming_the_fix(tmp_path):
    grey = make_shapes_folder(tmp_path / "grey", per_class=3)
    colour = make_shapes_folder(tmp_path / "colour", per_class=3, size=32, channels=3)
    cases = [
        (("train", "vae", grey, "--init", SHIPPED_VAE, "--width", "32"), "--width 32: --init"),
        (("train", "vae", colour, "--init", SHIPPED_VAE), "convert the data with --image-size 28 --channels 1"),
        (("train", "dcgan", grey, "--init", SHIPPED_VAE), "start a dcgan from a dcgan run"),
        (("train", "vae", grey, "--init", tmp_path), "config.json"),
    ]
    for argv, message in cases:
        out = tmp_path / "out"
        result = run_cli(*argv, "--steps", "1", "--out", out)
        assert result.exit_code == 2 and message in result.stderr, (argv, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1 and not out.exists()


def test_gain_refuses_an_init_run_trained_on_the_datasets_own_split_and_names_the_one_it_uses(tmp_path):
    data = make_shapes_folder(tmp_path / "data", per_class=16, splits=True)
    run = tmp_path / "own"
    own = GenerativeConfig(kind="vae", steps=2, width=8, latent_dim=4, sample_every=2, device="cpu")
    train_generative(open_dataset(str(data)).train, own, run)
    tiny = ["--per-class", "3", "--draws", "2", "--budget", "2", "--gen-steps", "2", "--device", "cpu"]
    tiny += ["--workers", "1", "--no-budget-curve", "--validation-per-class", "4", "--arms", "real,vae"]
    refused = run_cli("gain", data, *tiny, "--gen-init", run, "--out", tmp_path / "g")
    assert refused.exit_code == 2 and "was trained on this dataset's train split" in refused.stderr
    assert not (tmp_path / "g").exists()
    other = tmp_path / "other"
    elsewhere = make_shapes_folder(tmp_path / "elsewhere", per_class=5, seed=9)
    train_generative(open_dataset(str(elsewhere)).train, own, other)
    result = run_cli("gain", data, *tiny, "--gen-init", other, "--out", tmp_path / "g", "--json")
    assert result.exit_code == 0, result.stderr
    assert f"every generator starts from {other}" in result.stderr
    results = json.loads((tmp_path / "g" / "results.json").read_text())
    assert results["config"]["gen_init"] == str(other) and results["generators"][0]["kind"] == "vae"
    assert f"Every generator starts from `{other}`" in (tmp_path / "g" / "report.md").read_text()
    # That run has the default KL weight β 0.1: the `vae` arm samples the prior of a VAE fine-tuned from it,
    # which is often noise; the warning says so and names vae-density. A vae-density arm gets no such warning.
    assert "trained with KL weight β 0.1" in result.stderr and "vae sample the prior" in result.stderr
    density = [*tiny[:-1], "real,vae-density"]
    quiet = run_cli("gain", data, *density, "--gen-init", other, "--out", tmp_path / "d")
    assert quiet.exit_code == 0, quiet.stderr
    assert "starts from" in quiet.stderr and "sample the prior" not in quiet.stderr
