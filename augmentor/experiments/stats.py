"""Means with 95% t-intervals over seeds, and paired differences between arms."""

from __future__ import annotations

import math
from typing import Any


def t_critical(n: int, confidence: float = 0.95) -> float:
    """Two-sided Student-t critical value for ``n`` samples."""
    from scipy.stats import t

    return float(t.ppf(0.5 + confidence / 2, n - 1))


def mean_ci(values: list[float], confidence: float = 0.95) -> dict[str, Any]:
    """Mean, standard deviation and the half-width of its interval (None with fewer than two values)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return {"mean": mean, "sd": None, "ci": None, "low": None, "high": None, "n": n}
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_critical(n, confidence) * sd / math.sqrt(n)
    return {"mean": mean, "sd": sd, "ci": half, "low": mean - half, "high": mean + half, "n": n}


def verdict(difference: dict[str, Any]) -> str:
    """``gain`` / ``loss`` only when the whole interval is on one side of zero; otherwise ``none``."""
    if difference["low"] is None:
        return "unknown (one seed)"
    if difference["low"] > 0:
        return "gain"
    if difference["high"] < 0:
        return "loss"
    return "none"
