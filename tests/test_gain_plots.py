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


def _drawn(monkeypatch: pytest.MonkeyPatch, module: Any, make: Any, *args: Any) -> Any:
    """The matplotlib figure ``make(*args)`` draws, caught before it is encoded."""
    figures: list[Any] = []
    real_png = module._png
    monkeypatch.setattr(module, "_png", lambda figure: figures.append(figure) or real_png(figure))
    make(*args)
    (figure,) = figures
    return figure


def test_accuracy_and_difference_plots_have_titles_naming_what_is_plotted(monkeypatch: pytest.MonkeyPatch) -> None:
    from augmentor.report import gain_plots

    summary = _summary((10, 100))
    for row in summary:  # as mean_ci writes them: the number of draws
        for key in ("accuracy", "vs_real"):
            if key in row:
                row[key]["n"] = 1 if row["arm"] == "vae" else 10
    accuracy = _drawn(monkeypatch, gain_plots, accuracy_png, summary).axes[0].get_title()
    difference = _drawn(monkeypatch, gain_plots, difference_png, summary).axes[0].get_title()
    assert accuracy == "Test accuracy per arm at N real images per class\n(mean ± 95% t-interval over 1-10 draws)"
    assert difference.startswith("Paired Δ test accuracy vs real-only at N real images per class\n(mean ± 95%")
    for row in summary:
        row["accuracy"]["n"] = 1
    single = _drawn(monkeypatch, gain_plots, accuracy_png, summary).axes[0].get_title()
    assert single.endswith("(one draw: no interval)")


def test_training_curves_show_validation_accuracy_when_there_is_a_split(monkeypatch: pytest.MonkeyPatch) -> None:
    """curves.png: test and validation accuracy, legend-labelled, and the best validation step marked."""
    from augmentor.report import plots

    metrics = [
        {"step": 1, "train_loss": 1.0, "val_accuracy": 0.5, "test_accuracy": 0.4},
        {"step": 2, "train_loss": 0.8, "val_accuracy": 0.7, "test_accuracy": 0.6},
        {"step": 3, "train_loss": 0.7, "val_accuracy": 0.6, "test_accuracy": 0.65},
    ]
    figure = _drawn(monkeypatch, plots, plots.training_curves_png, metrics)
    legend = [t.get_text() for axis in figure.axes if axis.get_legend() for t in axis.get_legend().get_texts()]
    assert legend == ["training loss", "test accuracy", "validation accuracy", "best validation step"]
    accuracy_axis = figure.axes[1]
    validation = next(line for line in accuracy_axis.get_lines() if line.get_label() == "validation accuracy")
    assert list(validation.get_ydata()) == [0.5, 0.7, 0.6]
    marker = next(line for line in accuracy_axis.get_lines() if line.get_label() == "best validation step")
    assert list(marker.get_xdata()) == [2, 2]
    test_only = [{k: v for k, v in m.items() if k != "val_accuracy"} for m in metrics]
    figure = _drawn(monkeypatch, plots, plots.training_curves_png, test_only)
    assert [line.get_label() for line in figure.axes[1].get_lines()] == ["test accuracy"]


def _colour_by_label(figure: Any) -> dict[str, tuple]:
    from matplotlib.colors import to_rgba

    axis = figure.axes[0]
    handles, labels = axis.get_legend_handles_labels()
    found = {}
    for handle, label in zip(handles, labels, strict=True):
        line = handle[0] if isinstance(handle, tuple) else getattr(handle, "lines", [handle])[0]
        found[label] = to_rgba(line.get_color())
    return found


@pytest.mark.parametrize("ns", [(10, 100), (25,)])
def test_an_arm_keeps_its_colour_from_plot_to_plot(monkeypatch: pytest.MonkeyPatch, ns: tuple[int, ...]) -> None:
    """difference.png has no ``real`` and gain_vs_n.png no baseline: with the default colour cycle every arm
    after them changed colour between plots."""
    from augmentor.report import gain_plots

    summary = _summary(ns)
    accuracy = _colour_by_label(_drawn(monkeypatch, gain_plots, accuracy_png, summary))
    difference = _colour_by_label(_drawn(monkeypatch, gain_plots, difference_png, summary))
    gains = _colour_by_label(_drawn(monkeypatch, gain_plots, gain_vs_n_png, summary))
    assert set(difference) == {"classic", "vae", "vae-jitter@soft"} and set(gains) == {"vae", "vae-jitter@soft"}
    for other in (difference, gains):
        assert all(other[label] == accuracy[label] for label in other)
    assert len(set(accuracy.values())) == len(accuracy)  # and arms differ from each other


def test_the_budget_plot_claims_an_interval_only_when_it_draws_one(monkeypatch: pytest.MonkeyPatch) -> None:
    from augmentor.report import gain_plots

    one_draw = _drawn(monkeypatch, gain_plots, budget_png, _curve((10,), (0.5, 1.0, 2.0))).axes[0]
    assert "CI" not in one_draw.get_ylabel() and one_draw.get_title().endswith("(one draw: no interval)")
    several = _drawn(monkeypatch, gain_plots, budget_png, _curve((100,), (0.5, 1.0, 2.0))).axes[0]
    assert several.get_ylabel().endswith("(95% CI)") and "no interval" not in several.get_title()
