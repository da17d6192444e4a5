"""Property tests: every preset keeps dtype, channels and size, and never mutates its input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from augmentor.classic.pipelines import load_pipeline
from augmentor.classic.presets import PRESET_NAMES

_BUILT = {name: load_pipeline(name).build() for name in PRESET_NAMES}


@pytest.mark.parametrize("preset", PRESET_NAMES)
@settings(max_examples=40, deadline=None)
@given(
    height=st.integers(7, 67),
    width=st.integers(7, 67),
    channels=st.sampled_from([1, 3]),
    seed=st.integers(0, 2**32 - 1),
)
def test_preset_keeps_shape_and_dtype(preset, height, width, channels, seed):
    image = np.random.default_rng(seed).integers(0, 256, (height, width, channels), dtype=np.uint8)
    before = image.copy()
    compose = _BUILT[preset]
    compose.set_random_seed(seed)
    out = compose(image=image)["image"]
    out = out[:, :, None] if out.ndim == 2 else out
    assert out.dtype == np.uint8
    assert out.shape == (height, width, channels)
    assert np.array_equal(image, before)
