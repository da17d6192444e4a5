"""JSON out is strict JSON (issue 25 item 5): no bare NaN or Infinity for a reader to choke on."""

from __future__ import annotations

import json
import math

import pytest

from augmentor.core import jsonio


def refuse_constant(name: str) -> float:
    raise ValueError(f"bare {name} in JSON")


def test_non_finite_numbers_become_null_and_the_rest_is_kept():
    document = {"loss": math.nan, "best": -math.inf, "runs": [1.5, math.inf, {"p": math.nan}], "ok": (1, 2)}
    text = jsonio.dumps(document, indent=2)
    assert json.loads(text, parse_constant=refuse_constant) == {
        "loss": None,
        "best": None,
        "runs": [1.5, None, {"p": None}],
        "ok": [1, 2],
    }
    with pytest.raises(ValueError):
        json.loads(json.dumps({"loss": math.nan}), parse_constant=refuse_constant)  # what it replaced
