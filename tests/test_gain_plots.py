"""The gain experiment's plots render to PNG for small hand-made summaries (two N, one N, two shares, budget)."""

from __future__ import annotations

import io
from typing import Any

import pytest

from augmentor.report.gain_plots import (
    _series,
    accuracy_png,
    budget_png,
    difference_png,
    gain_vs_n_png,
    share_png,
)


def _stats(mean: float, ci: float | None) -> dict[str, Any]:
    if ci is None:
        return {"mean": mean, "ci": None, "low": None, "high": None}
    return {"mean": mean, "ci": ci, "low": mean - ci, "high": mean + ci}


def _row(n: int, arm: str, share: float, acc: float, ci: float | None, **differences: Any) -> dict[str, Any]:
    return {"per_class": n, "arm": arm, "synthetic_share": share, "accuracy": _stats(acc, ci), **differences}


def _summary(ns: tuple[int, ...], shares: tuple[float, ...] = (0.8,)) -> list[dict[str, Any]]:
    rows = []
    for n in ns:
        rows.append(_row(n, "real", 0.0, 0.97, 0.05))  # the interval runs past 100 %: the bar must be clipped
        rows.append(_row(n, "classic", 0.0, 0.7, 0.02, vs_real=_stats(0.01, 0.01)))
        rows.append(_row(n, "real-long", 0.0, 0.03, 0.05))  # and this one past 0 %: clipped below
        for share in shares:
            rows.append(  # a single-draw row: no interval anywhere
                _row(n, "vae", share, 0.72, None, vs_real=_stats(0.02, None), vs_classic=_stats(0.01 * share, None))
            )
            rows.append(
                _row(
                    n,
                    "vae-jitter@soft",
                    share,
                    0.74,
                    0.01,
                    vs_real=_stats(0.03, 0.01),
                    vs_classic=_stats(0.02, 0.015),
                )
            )
    return rows


def _curve(ns: tuple[int, ...], multipliers: tuple[float, ...]) -> list[dict[str, Any]]:
    return [
        {
            "per_class": n,
            "multiplier": m,
            "real_epochs": 30.0 * m,
            "steps": int(1000 * m),
            "accuracy": _stats(min(0.99, 0.6 + 0.05 * m), 0.03 if n > 10 else None),
        }
        for n in ns
        for m in multipliers
    ]


def _check_png(data: bytes) -> None:
    assert data.startswith(b"\x89PNG")
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        width, height = image.size
    assert 300 < width < 2000 and 200 < height < 1500


@pytest.mark.parametrize("ns", [(10, 100), (25,)])
def test_summary_plots_render(ns: tuple[int, ...]) -> None:
    summary = _summary(ns)
    for make in (accuracy_png, difference_png, share_png, gain_vs_n_png):
        _check_png(make(summary))
    _check_png(gain_vs_n_png(summary, baseline="real"))


def test_share_png_with_two_shares() -> None:
    _check_png(share_png(_summary((10, 100), shares=(0.5, 0.8))))
    _check_png(gain_vs_n_png(_summary((10, 100), shares=(0.5, 0.8))))


@pytest.mark.parametrize(("ns", "multipliers"), [((10, 100), (0.25, 0.5, 1.0, 2.0, 4.0)), ((10,), (1.0,))])
def test_budget_png_renders(ns: tuple[int, ...], multipliers: tuple[float, ...]) -> None:
    _check_png(budget_png(_curve(ns, multipliers)))


def test_series_names_share_only_when_it_varies() -> None:
    assert set(_series(_summary((10,)), "accuracy")) == {"real", "classic", "real-long", "vae", "vae-jitter@soft"}
    labels = set(_series(_summary((10,), shares=(0.5, 0.8)), "vs_classic"))
    assert labels == {"vae share 0.5", "vae share 0.8", "vae-jitter@soft share 0.5", "vae-jitter@soft share 0.8"}
    assert "real" not in _series(_summary((10,)), "vs_real")  # the baseline has no difference to itself


def test_log_axis_has_plain_labels_and_accuracy_bars_stay_in_0_to_100(monkeypatch: pytest.MonkeyPatch) -> None:
    from augmentor.report import gain_plots

    figures: list[Any] = []
    real_png = gain_plots._png
    monkeypatch.setattr(gain_plots, "_png", lambda figure: figures.append(figure) or real_png(figure))
    gain_plots.accuracy_png(_summary((10, 100)))
    axis = figures[0].axes[0]
    assert [t.get_text() for t in axis.get_xticklabels()] == ["10", "100"]
    assert all(t.get_text() == "" for t in axis.get_xticklabels(minor=True))
    assert axis.get_ylim()[1] <= 100.5
    for collection in axis.collections:  # the error-bar segments
        for segment in collection.get_segments():
            assert segment[:, 1].max() <= 100 + 1e-9 and segment[:, 1].min() >= -1e-9
