"""Statistics of the gain experiment: means with t-intervals over paired draws, paired tests, Holm adjustment.

Each comparison between two arms is a list of paired differences (one per draw). ``paired_comparison`` gives its
mean and interval plus a t-test, a Wilcoxon signed-rank test and the probability of improvement; the caller
adjusts the t-test p-values of a family of comparisons with ``holm`` and ``verdict`` reads the adjusted value.
"""

from __future__ import annotations

import math
import warnings
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


def _t_test_p(values: list[float], mean: float, sd: float) -> float:
    """Two-sided one-sample t-test of mean 0; a constant sample is decided by its value instead of giving NaN."""
    from scipy.stats import t

    if max(values) == min(values):  # sd is 0 up to rounding: the t statistic is 0/0 or infinite
        return 1.0 if values[0] == 0 else 0.0
    statistic = mean / (sd / math.sqrt(len(values)))
    return float(min(1.0, 2 * t.sf(abs(statistic), len(values) - 1)))


def _wilcoxon_p(values: list[float]) -> float:
    """Two-sided signed-rank p; zero differences are split between the signs so all-zero input gives 1."""
    from scipy.stats import wilcoxon

    if all(v == 0 for v in values):
        return 1.0
    with warnings.catch_warnings():
        # Small samples with ties make scipy fall back to the normal approximation and say so; that is expected here.
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        p = float(wilcoxon(values, zero_method="zsplit").pvalue)
    return 1.0 if math.isnan(p) else min(1.0, p)


def paired_comparison(differences: list[float], confidence: float = 0.95) -> dict[str, Any]:
    """``mean_ci`` of the paired differences plus t-test ``p``, ``p_wilcoxon``, ``p_improve`` and ``p_holm``.

    ``p_improve`` is the share of draws that improved (ties count half); ``p_holm`` is left None for the caller,
    who knows the family of comparisons to adjust over. All values are plain floats (JSON-serialisable).
    """
    values = [float(d) for d in differences]
    result = mean_ci(values, confidence)
    n = len(values)
    result["p"] = None if n < 2 else _t_test_p(values, result["mean"], result["sd"])
    result["p_wilcoxon"] = None if n < 2 else _wilcoxon_p(values)
    result["p_improve"] = (sum(d > 0 for d in values) + 0.5 * sum(d == 0 for d in values)) / n
    result["p_holm"] = None
    return result


def holm(pvalues: list[float | None]) -> list[float | None]:
    """Holm–Bonferroni adjusted p-values in input order; None entries stay None and do not count in the family."""
    present = sorted((p, i) for i, p in enumerate(pvalues) if p is not None)
    m = len(present)
    adjusted: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, (p, i) in enumerate(present):
        running = max(running, min(1.0, (m - rank) * float(p)))  # the max keeps the adjusted values monotone
        adjusted[i] = running
    return adjusted


def verdict(difference: dict[str, Any]) -> str:
    """``gain`` / ``loss`` when the Holm-adjusted p is below 0.05 (if the caller set it), else by the interval.

    Without ``p_holm`` the whole interval must lie on one side of zero; otherwise the answer is ``none``.
    """
    p_holm = difference.get("p_holm")
    if p_holm is not None:
        if p_holm < 0.05 and difference["mean"] > 0:
            return "gain"
        if p_holm < 0.05 and difference["mean"] < 0:
            return "loss"
        return "none"
    if difference["low"] is None:
        return "unknown (one seed)"
    if difference["low"] > 0:
        return "gain"
    if difference["high"] < 0:
        return "loss"
    return "none"
