"""Scoring: FID/KID in classifier features, memorisation, CAS, and the ``augmentor score`` command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from augmentor.data.imageset import ImageSet
from augmentor.data.measures import nearest_real_distances
from augmentor.data.options import ReadOptions
from augmentor.data.readers import open_dataset
from augmentor.generative.train import GenerativeConfig, train_generative
from augmentor.metrics.features import DEFAULT_FEATURES_RUN, load_features
from augmentor.metrics.fid import fid_metric, frechet_distance, kernel_distance, kid_metric
from augmentor.metrics.quality import classification_accuracy_score, memorisation_rate
from augmentor.metrics.score import score
from tests.conftest import REPO, run_cli


@pytest.fixture(scope="module")
def fashion(fashion_dir) -> tuple[ImageSet, ImageSet]:
    """Slices of real Fashion-MNIST: 600 train and 300 test images."""
    dataset = open_dataset("fashion-mnist", ReadOptions(data_dir=fashion_dir))
    return dataset.train.take(np.arange(600)), dataset.test.take(np.arange(300))


@pytest.fixture(scope="module")
def feature_classifier():
    return load_features()


@pytest.fixture(scope="module")
def fashion_npz(fashion, tmp_path_factory) -> Path:
    """The slices as one .npz with a test split (what ``--real`` reads)."""
    train, test = fashion
    path = tmp_path_factory.mktemp("real") / "fashion.npz"
    np.savez(
        path,
        images=train.images,
        labels=train.labels,
        test_images=test.images,
        test_labels=test.labels,
        class_names=np.array(train.class_names),
    )
    return path


@pytest.fixture(scope="module")
def vae_run(fashion, tmp_path_factory) -> Path:
    """A tiny conditional VAE trained briefly on the train slice."""
    out = tmp_path_factory.mktemp("vae") / "run"
    config = GenerativeConfig(kind="vae", steps=20, width=8, sample_every=20, device="cpu")
    train_generative(fashion[0].take(np.arange(300)), config, out)
    return out


def noise(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 1, 28, 28), dtype=np.uint8)


def degraded(images: np.ndarray, seed: int = 0) -> np.ndarray:
    """A 3×3 box blur plus Gaussian noise (σ = 40 grey levels)."""
    from scipy.ndimage import uniform_filter

    blurred = uniform_filter(images.astype(np.float32), size=(1, 1, 3, 3))
    noisy = blurred + np.random.default_rng(seed).normal(0, 40, images.shape)
    return noisy.clip(0, 255).round().astype(np.uint8)


def test_fid_of_a_set_with_itself_is_zero_and_noise_is_far(fashion, feature_classifier):
    test = feature_classifier.features(fashion[1].images)
    assert test.shape == (300, feature_classifier.num_features) and test.dtype == torch.float64
    assert frechet_distance(test, test) == pytest.approx(0.0, abs=1e-6)
    floor = frechet_distance(feature_classifier.features(fashion[0].images[:300]), test)
    far = frechet_distance(test, feature_classifier.features(noise(300)))
    assert far > 10 * floor and far > 1.0


def test_fid_and_kid_rank_real_then_degraded_then_noise(fashion, feature_classifier):
    train = feature_classifier.features(fashion[0].images[:300])
    candidates = [fashion[1].images, degraded(fashion[1].images), noise(300)]
    fids = [frechet_distance(train, feature_classifier.features(c)) for c in candidates]
    kids = [kernel_distance(train, feature_classifier.features(c), subsets=20) for c in candidates]
    assert fids[0] < fids[1] < fids[2], fids
    assert kids[0][0] < kids[1][0] < kids[2][0], kids
    assert all(std >= 0 for _, std in kids) and kids[2][0] > 0


def test_torchmetrics_module_path_agrees_with_precomputed_features(fashion, feature_classifier):
    train, test = fashion[0].images[:200], fashion[1].images[:200]
    fid = fid_metric(feature_classifier)
    kid = kid_metric(feature_classifier, subset_size=50, subsets=10)
    for metric in (fid, kid):
        metric.update(torch.from_numpy(train.copy()), real=True)
        metric.update(torch.from_numpy(test.copy()), real=False)
    f_train, f_test = feature_classifier.features(train), feature_classifier.features(test)
    assert float(fid.compute()) == pytest.approx(frechet_distance(f_train, f_test), rel=1e-6)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        kid_mean, _ = kid.compute()
    assert float(kid_mean) == pytest.approx(kernel_distance(f_train, f_test, subset_size=50, subsets=10, seed=3)[0])


def test_memorisation_copies_score_one_and_fresh_images_zero(fashion):
    train, test = fashion
    copies = train.images[100:140]
    rate, distances = memorisation_rate(copies, train.images, device="cpu")
    assert rate == 1.0 and distances.shape == (40,) and distances.max() < 1e-3
    fresh_rate, fresh = memorisation_rate(test.images[:100], train.images, device="cpu")
    assert fresh_rate <= 0.05 and np.median(fresh) > 0.05
    black, white = np.zeros((1, 1, 8, 8), np.uint8), np.full((3, 1, 8, 8), 255, np.uint8)
    assert nearest_real_distances(black, white, "cpu") == pytest.approx([1.0])  # RMS per pixel, 0..1


def test_cas_of_real_images_is_above_chance(fashion):
    train, test = fashion
    # LeNet-5 keeps this quick; `score` uses the `fast` net by default.
    accuracy = classification_accuracy_score(train, test, steps=20, arch="lenet5", device="cpu")
    assert accuracy > 0.3  # chance is 0.1


def test_score_of_a_run_and_of_the_noise_baseline(vae_run, fashion_npz):
    scores = score(vae_run, str(fashion_npz), n=200, cas_steps=10, cas_arch="lenet5", device="cpu")
    assert scores["kind"] == "vae" and scores["n"] == 200 and scores["features"].endswith("classifier")
    assert scores["fid"] > scores["f0"] > 0 and scores["fid_ratio"] > 1
    assert scores["kid_std"] >= 0 and -1 <= scores["diversity_ssim"] <= 1
    assert 0 <= scores["memorisation_rate"] <= 1 and 0 <= scores["cas"] <= 1 and 0 <= scores["real_accuracy"] <= 1
    result = run_cli("score", "--baseline", "noise", "--real", fashion_npz, "--n", "200", "--no-cas", "--json")
    assert result.exit_code == 0, result.stderr
    noise_scores = json.loads(result.stdout)
    assert noise_scores["kind"] == "noise" and noise_scores["cas"] is None
    # (A 20-step VAE may well score worse than noise: it is the scale that is checked here, not a ranking.)
    assert noise_scores["fid_ratio"] > 5 and noise_scores["memorisation_rate"] == 0
    table = run_cli("score", vae_run, "--real", fashion_npz, "--n", "100", "--no-cas")
    assert table.exit_code == 0, table.stderr
    assert "FID / F0" in table.stdout and "vae" in table.stdout
    assert "not --n" not in table.stderr


def test_cas_seeds_average_several_classifier_pairs_and_keep_each_pairs_gap(vae_run, fashion_npz):
    """``--cas-seeds K``: K pairs of CAS classifiers on seeds SEED…SEED+K-1; the first pair is the one-seed score's,
    the CAS and real accuracy are the pairs' means, and the table gives the gap's spread."""
    settings = {"n": 100, "cas_steps": 10, "cas_arch": "lenet5", "device": "cpu"}
    one = score(vae_run, str(fashion_npz), **settings)
    three = score(vae_run, str(fashion_npz), cas_seeds=3, **settings)
    assert one["cas_seeds"] == 1 and "cas_gaps" not in one
    assert three["cas_seeds"] == 3 and len(three["cas_gaps"]) == 3
    assert three["cas_gaps"][0] == pytest.approx(one["real_accuracy"] - one["cas"])
    assert three["real_accuracy"] - three["cas"] == pytest.approx(np.mean(three["cas_gaps"]))
    assert len(set(three["cas_gaps"])) > 1  # each pair trained on its own seed
    table = run_cli("score", vae_run, "--real", fashion_npz, "--n", "60", "--cas-steps", "5", "--cas-seeds", "2")
    assert table.exit_code == 0, table.stderr
    assert "mean of 2 seeds, gap" in table.stdout
    bad = run_cli("score", vae_run, "--real", fashion_npz, "--cas-seeds", "0")
    assert bad.exit_code == 2 and "--cas-seeds" in bad.stderr


def test_latent_density_scores_samples_from_each_class_density_and_bad_uses_are_refused(vae_run, fashion_npz):
    """``--latent density[:T]`` (issue 23 item 1): the VAE's codes drawn where the real images of each class encode;
    a seeded rerun gives the same figures, the temperature changes them, and what cannot use it is refused."""
    settings = {"n": 100, "cas": False, "device": "cpu"}
    prior = score(vae_run, str(fashion_npz), **settings)
    density = score(vae_run, str(fashion_npz), latent="density", **settings)
    assert density["latent"] == "density" and prior["latent"] == "prior"
    assert density["fid"] != prior["fid"] and density["n"] == 100
    assert score(vae_run, str(fashion_npz), latent="density", **settings)["fid"] == density["fid"]
    cool = score(vae_run, str(fashion_npz), latent="density:0.3", **settings)
    assert cool["fid"] != density["fid"]
    table = run_cli("score", vae_run, "--real", fashion_npz, "--n", "100", "--no-cas", "--latent", "density:0.5")
    assert table.exit_code == 0, table.stderr
    assert "codes from --latent density:0.5" in table.stdout
    for latent, message in (
        ("density:0", "--latent 'density:0': use prior, density or density:T with T > 0"),
        ("gmm", "--latent 'gmm': use prior"),
    ):
        bad = run_cli("score", vae_run, "--real", fashion_npz, "--no-cas", "--latent", latent)
        assert bad.exit_code == 2 and message in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    baseline = run_cli("score", "--baseline", "noise", "--real", fashion_npz, "--no-cas", "--latent", "density")
    assert baseline.exit_code == 2 and "a baseline has no codes to sample" in baseline.stderr
    folder = run_cli("score", fashion_npz, "--real", fashion_npz, "--no-cas", "--latent", "density")
    assert folder.exit_code == 2 and "only a VAE run folder has codes to sample" in folder.stderr


def test_an_n_larger_than_the_data_is_said_not_silently_lowered(fashion_npz):
    """The real reference holds 300 images: --n 400 scores 300, and says so (issue 12 item 10)."""
    result = run_cli("score", "--baseline", "noise", "--real", fashion_npz, "--n", "400", "--no-cas", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["n"] == 300
    assert "scoring 300 images, not --n 400: only 300 real reference" in result.stderr


def test_features_that_are_not_a_run_are_refused(fashion_npz, tmp_path):
    result = run_cli("score", "--baseline", "noise", "--real", fashion_npz, "--features", tmp_path, "--no-cas")
    assert result.exit_code == 2
    assert "not a run folder" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_run_of_another_image_size_than_the_shipped_features_is_scored_in_features_of_its_data(shapes_splits, tmp_path):
    """The shipped classifier takes grey 28×28: for colour 32×32 data one is trained on the real train split
    (issue 26 item 3; it used to be refused, naming --features)."""
    data = open_dataset(str(shapes_splits)).train
    config = GenerativeConfig(kind="vae", steps=2, width=8, sample_every=2, device="cpu")
    train_generative(data, config, tmp_path / "run32")
    result = run_cli("score", tmp_path / "run32", "--real", shapes_splits, "--no-cas", "--json")
    assert result.exit_code == 0, result.stderr
    assert "note: no feature classifier fits 32×32 colour images: trained one on" in result.stderr
    assert "--features" in result.stderr and json.loads(result.stdout)["fid"] > 0
    given = run_cli(
        "score", tmp_path / "run32", "--real", shapes_splits, "--no-cas", "--features", DEFAULT_FEATURES_RUN
    )
    assert given.exit_code == 2  # a classifier named with --features is used as it is, or refused
    assert "takes 1×28×28" in given.stderr and len(given.stderr.strip().splitlines()) == 1


def test_pickle_file_is_refused(fashion_npz, tmp_path):
    checkpoint = tmp_path / "generator.pt"
    checkpoint.write_bytes(b"\x80\x04not really a pickle")
    result = run_cli("score", checkpoint, "--real", fashion_npz)
    assert result.exit_code == 2
    assert "pickled" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_score_help_imports_nothing_heavy():
    probe = (
        "import sys\nsys.argv = ['augmentor', 'score', '--help']\nimport cli\n"
        "try:\n    cli.app(prog_name='augmentor')\nexcept SystemExit:\n    pass\n"
        "print('HEAVY:' + ','.join(m for m in ('torch', 'numpy', 'torchmetrics') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True)
    assert "--real" in result.stdout and result.stdout.strip().splitlines()[-1] == "HEAVY:"


def test_two_folders_score_with_torch_fidelitys_flag_names(fashion_npz, tmp_path):
    """`score --input1 A --input2 B` (torch-fidelity's habit) is `score A --real B`: the same numbers."""
    args = ["--n", "100", "--no-cas", "--json"]
    ours = run_cli("score", fashion_npz, "--real", fashion_npz, *args)
    theirs = run_cli("score", "--input1", fashion_npz, "--input2", fashion_npz, *args)
    assert ours.exit_code == 0 and theirs.exit_code == 0, theirs.stderr
    drop = {"seconds"}
    assert {k: v for k, v in json.loads(ours.stdout).items() if k not in drop} == {
        k: v for k, v in json.loads(theirs.stdout).items() if k not in drop
    }
    both = run_cli("score", fashion_npz, "--input1", fashion_npz, "--real", fashion_npz, *args)
    assert both.exit_code == 2 and "give the images to score once" in both.stderr


def test_an_expand_output_is_scored_on_its_synthetic_images_unless_asked(fashion_npz, tmp_path):
    """An expand output holds the real originals too: scored whole, they counted as samples (a FID under the
    real floor, copies "memorised"). By default its synthetic images alone are scored, and it says so."""
    out = tmp_path / "expanded"
    made = run_cli("expand", fashion_npz, "--with", "classic:light", "--ratio", "4:1", "--out", out, "--seed", "0")
    assert made.exit_code == 0, made.stderr
    real_count = len(open_dataset(str(fashion_npz)).train)
    synthetic_count = len(open_dataset(str(out)).train) - real_count
    assert 0 < synthetic_count < real_count

    def scored(*extra: str) -> tuple[dict, str]:
        result = run_cli("score", out, "--real", fashion_npz, "--n", "2000", "--no-cas", "--json", *extra)
        assert result.exit_code == 0, result.stderr
        return json.loads(result.stdout), result.stderr

    synthetic, said = scored()
    assert synthetic["n"] == synthetic_count and f"scoring its {synthetic_count:,} synthetic images" in said
    assert scored("--source", "classic")[0]["n"] == synthetic_count
    whole, _ = scored("--source", "all")
    real, _ = scored("--source", "real")
    assert whole["n"] > synthetic_count and real["memorisation_rate"] == 1.0  # the originals are the train split
    assert synthetic["memorisation_rate"] < real["memorisation_rate"]
    missing = run_cli("score", out, "--real", fashion_npz, "--source", "vae", "--no-cas")
    assert missing.exit_code == 2 and "no vae images to score (its images are: classic, real)" in missing.stderr
