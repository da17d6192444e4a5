"""Inception-v3 features from a local safetensors file (``score --inception``), with random weights made here.

The real pt_inception-2015-12-05 weights cannot be downloaded in tests; these check the loader, the
preprocessing, the refusals and the CLI path. Random default-initialised weights make pool3 features vanish
(~1e-8) through 90 layers, so the test network is He-initialised to keep them on a usable scale.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from augmentor.core.errors import UserError
from augmentor.metrics.fid import fid_metric, frechet_distance
from augmentor.metrics.inception import FID, TORCHVISION, build_inception, load_inception
from tests.conftest import make_shapes_folder, run_cli


def he_initialised(network: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    for module in network.modules():
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    return network


@pytest.fixture(scope="module")
def fid_weights(tmp_path_factory) -> Path:
    """A random FID-Inception state dict saved as a user's conversion would save it."""
    path = tmp_path_factory.mktemp("inception") / "inception-fid.safetensors"
    save_file(he_initialised(build_inception(FID)).state_dict(), str(path))
    return path


@pytest.fixture(scope="module")
def extractor(fid_weights):
    return load_inception(fid_weights)


def images(n: int, channels: int, size: int, seed: int = 0, high: int = 256) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, high, size=(n, channels, size, size), dtype=np.uint8)


def test_fid_weights_load_and_give_2048_features_for_grey_and_rgb(extractor, fid_weights):
    assert extractor.variant == FID and extractor.description == f"inception-fid ({fid_weights})"
    assert all(not t.is_meta for t in extractor.state_dict().values())
    grey, rgb = images(3, 1, 28), images(3, 3, 32)
    f_grey, f_rgb = extractor.features(grey), extractor.features(rgb)
    for features in (f_grey, f_rgb):
        assert features.shape == (3, 2048) and features.dtype == torch.float64 and features.isfinite().all()
        assert features.std(0).mean() > 1e-4  # the images differ, so must their features
    # Grey is the same image as RGB with three equal channels.
    torch.testing.assert_close(f_grey, extractor.features(np.repeat(grey, 3, axis=1)))
    with pytest.raises(UserError, match="2 channels"):
        extractor.check_images(images(1, 2, 8), "two-channel images")


def test_fid_of_identical_images_is_zero_and_of_a_shifted_set_is_not(extractor):
    real = images(6, 3, 32, high=200)  # ~0.5 s per image on one CPU thread: keep sets small
    f_real, f_shifted = extractor.features(real), extractor.features(real + 50)  # brighter copies
    assert frechet_distance(f_real, f_real) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance(f_real, f_shifted) > 0.1
    # As torchmetrics' ``feature`` module (``fid_metric(extractor)``): uint8 tensors in, the same features out.
    # (Not through a second FID: each 2048-d matrix square root costs seconds on one thread.)
    assert fid_metric(extractor).inception is extractor
    torch.testing.assert_close(extractor(torch.from_numpy(real[:2])), f_real[:2])


def test_torchvision_weights_are_recognised_by_their_keys(tmp_path):
    import torchvision

    # torchvision's ImageNet state dict has 1000 classes and the aux classifier (ignored), saved as fp16 here.
    network = he_initialised(torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False))
    path = tmp_path / "inception-torchvision.safetensors"
    save_file({k: v.half() for k, v in network.state_dict().items()}, str(path))
    loaded = load_inception(path)
    assert loaded.variant == TORCHVISION and loaded.description == f"inception-torchvision ({path})"
    assert loaded.features(images(2, 1, 28)).shape == (2, 2048)


def _refused(path: Path, match: str) -> None:
    with pytest.raises(UserError, match=match) as caught:
        load_inception(path)
    assert str(path) in caught.value.message and "\n" not in caught.value.message


def test_missing_and_non_safetensors_files_are_refused(tmp_path):
    _refused(tmp_path / "absent.safetensors", "no such Inception weights file")
    pickle = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, pickle)  # written here, never loaded
    _refused(pickle, "not a safetensors file.*safetensors.torch")
    text = tmp_path / "notes.safetensors"
    text.write_text("not weights")
    _refused(text, "not a safetensors file")


def test_weights_of_another_network_are_refused(tmp_path):
    other = tmp_path / "resnet.safetensors"
    save_file({"fc.weight": torch.zeros(10, 512), "conv1.weight": torch.zeros(64, 3, 7, 7)}, str(other))
    _refused(other, r"not Inception-v3 weights \(fc.weight is 10×512")
    headless = tmp_path / "headless.safetensors"
    save_file({"conv1.weight": torch.zeros(64, 3, 7, 7)}, str(headless))
    _refused(headless, "it has no fc.weight")
    partial = tmp_path / "partial.safetensors"
    save_file({"fc.weight": torch.zeros(1008, 2048, dtype=torch.int8)}, str(partial))
    _refused(partial, "does not match the inception-fid network .missing: .*not floating point: fc.weight")


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ("rename", r"missing: Mixed_7c.branch_pool.conv.weight; unexpected: Mixed_7c.branch_pool.conv.weights\)"),
        ("reshape", r"wrong shape: Conv2d_1a_3x3.conv.weight 32×3×5×5 \(expected 32×3×3×3\)"),
    ],
)
def test_a_wrong_key_or_shape_is_named(fid_weights, tmp_path, change, match):
    state = load_file(str(fid_weights))
    if change == "rename":
        state["Mixed_7c.branch_pool.conv.weights"] = state.pop("Mixed_7c.branch_pool.conv.weight")
    else:
        state["Conv2d_1a_3x3.conv.weight"] = torch.zeros(32, 3, 5, 5)
    path = tmp_path / f"{change}.safetensors"
    save_file(state, str(path))
    _refused(path, match)


def test_score_cli_with_inception_writes_the_features_used(fid_weights, tmp_path):
    real = make_shapes_folder(tmp_path / "real", per_class=3, splits=True)  # grey 28×28, 9 train + 9 test
    fake = make_shapes_folder(tmp_path / "fake", per_class=3, seed=1)
    result = run_cli("score", fake, "--input2", real, "--inception", fid_weights, "--no-cas", "--n", "4", "--json")
    assert result.exit_code == 0, result.stderr
    scores = json.loads(result.stdout)
    assert scores["features"] == f"inception-fid ({fid_weights})" and scores["n"] == 4
    assert scores["fid"] > 0 and scores["f0"] > 0 and scores["kid_std"] >= 0 and scores["cas"] is None
    assert "--features" not in result.stderr  # the domain classifier's class check does not apply
    both = run_cli("score", fake, "--real", real, "--inception", fid_weights, "--features", tmp_path, "--no-cas")
    assert both.exit_code == 2 and "not both" in both.stderr
    bad = tmp_path / "inception.pth"
    bad.write_bytes(b"\x80\x04not really a pickle")
    refused = run_cli("score", fake, "--real", real, "--inception", bad, "--no-cas")
    assert refused.exit_code == 2 and len(refused.stderr.strip().splitlines()) == 1
    assert str(bad) in refused.stderr and "not a safetensors file" in refused.stderr
