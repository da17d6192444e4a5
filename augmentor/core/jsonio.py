"""Strict JSON out: every document the tool prints (``--json``) or writes (configs, metrics, results,
manifests) is valid JSON for any reader. Python's ``json`` writes NaN and Infinity as bare words, which
JavaScript, jq and most parsers refuse; here a non-finite number becomes ``null``."""

from __future__ import annotations

import json
import math
from typing import Any


def finite(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, ±inf) replaced by None, containers walked."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite(item) for item in value]
    return value


def dumps(document: Any, **kwargs: Any) -> str:
    """``json.dumps`` of ``document`` as strict JSON (non-finite numbers as null; never a bare NaN)."""
    return json.dumps(finite(document), allow_nan=False, **kwargs)
