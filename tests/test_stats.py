"""Paired tests, Holm adjustment and the verdict rule of the gain experiment's statistics."""

from __future__ import annotations

import json
import math
import warnings

import pytest
from scipy import stats as scipy_stats

from augmentor.experiments.stats import holm, mean_ci, paired_comparison, verdict


def test_holm_hand_example() -> None:
    # m = 3: sorted 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 → raised to 0.06 to stay monotone.
    adjusted = holm([0.01, 0.04, 0.03, None])
    assert adjusted[3] is None
    assert adjusted[:3] == pytest.approx([0.03, 0.06, 0.06])


def test_holm_monotone_capped_and_empty() -> None:
    pvalues = [0.2, 0.001, 0.04, 0.5, 0.011, 0.9]
    adjusted = holm(pvalues)
    ordered = [adjusted[i] for i in sorted(range(len(pvalues)), key=pvalues.__getitem__)]
    assert ordered == sorted(ordered)
    assert all(a >= p for a, p in zip(adjusted, pvalues, strict=True))
    assert max(adjusted) <= 1.0
    assert holm([0.6, 0.7]) == [1.0, 1.0]
    assert holm([]) == []
    assert holm([None, None]) == [None, None]


def test_paired_comparison_matches_scipy() -> None:
    differences = [0.012, 0.03, -0.004, 0.021, 0.0, 0.017]
    result = paired_comparison(differences)
    reference = mean_ci(differences)
    for key, value in reference.items():
        assert result[key] == pytest.approx(value)
    assert result["p"] == pytest.approx(float(scipy_stats.ttest_1samp(differences, 0.0).pvalue))
    expected_w = scipy_stats.wilcoxon(differences, zero_method="zsplit").pvalue
    assert result["p_wilcoxon"] == pytest.approx(float(expected_w))
    assert result["p_improve"] == pytest.approx((4 + 0.5) / 6)  # four gains, one tie, one loss
    assert result["p_holm"] is None
    json.dumps(result)  # plain floats only
    assert all(type(v) in (float, int) or v is None for v in result.values())


def test_paired_comparison_hand_values() -> None:
    result = paired_comparison([0.01, 0.03])  # mean 0.02, sd √2·0.01, t = 2 with one degree of freedom
    assert result["mean"] == pytest.approx(0.02)
    assert result["p"] == pytest.approx(1 - 2 * math.atan(2) / math.pi)
    assert result["p_improve"] == 1.0
    assert paired_comparison([-0.01, 0.0, 0.0, 0.02])["p_improve"] == pytest.approx(0.5)


def test_paired_comparison_all_zero_is_no_evidence() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = paired_comparison([0.0, 0.0, 0.0, 0.0])
    assert result["p"] == 1.0
    assert result["p_wilcoxon"] == 1.0
    assert result["p_improve"] == 0.5
    assert not any(isinstance(v, float) and math.isnan(v) for v in result.values())


def test_paired_comparison_constant_nonzero() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = paired_comparison([0.01, 0.01, 0.01])
    assert result["p"] == 0.0
    assert 0.0 < result["p_wilcoxon"] <= 1.0


def test_paired_comparison_one_draw() -> None:
    result = paired_comparison([0.02])
    assert result["p"] is None and result["p_wilcoxon"] is None and result["ci"] is None
    assert result["p_improve"] == 1.0
    assert verdict(result) == "unknown (one seed)"


def test_verdict_prefers_holm() -> None:
    interval = {"mean": 0.02, "low": 0.01, "high": 0.03}
    assert verdict(interval) == "gain"
    assert verdict({**interval, "p_holm": None}) == "gain"
    assert verdict({**interval, "p_holm": 0.2}) == "none"
    assert verdict({**interval, "p_holm": 0.01}) == "gain"
    assert verdict({"mean": -0.02, "low": -0.03, "high": -0.01, "p_holm": 0.01}) == "loss"
    assert verdict({"mean": -0.02, "low": -0.03, "high": -0.01}) == "loss"
    assert verdict({"mean": 0.01, "low": None, "high": None, "p_holm": 0.01}) == "gain"
    assert verdict({"mean": 0.0, "low": -0.01, "high": 0.01}) == "none"
