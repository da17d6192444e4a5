"""Plots of the gain experiment: accuracy per arm and N, paired differences, the ratio curve."""

from __future__ import annotations

from typing import Any

from augmentor.report.plots import _png, _pyplot


def _series(summary: list[dict[str, Any]], value: str) -> dict[str, list[tuple[int, float, float]]]:
    """arm (with ratio) → [(N, mean, ci)] for ``value`` = accuracy | vs_real."""
    series: dict[str, list[tuple[int, float, float]]] = {}
    ratios = {row["synthetic_ratio"] for row in summary if row["arm"] != "real"}
    for row in summary:
        stats = row.get(value)
        if not stats:
            continue
        label = row["arm"] if len(ratios) <= 1 or row["arm"] == "real" else f"{row['arm']} ×{row['synthetic_ratio']:g}"
        series.setdefault(label, []).append((row["per_class"], stats["mean"], stats["ci"] or 0.0))
    return series


def _lines(series: dict[str, list[tuple[int, float, float]]], ylabel: str, zero_line: bool) -> bytes:
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6, 4))
    count = max(1, len(series))
    for k, (label, points) in enumerate(series.items()):
        points.sort()
        xs = [n * (1 + 0.03 * (k - count / 2)) for n, _, _ in points]  # a small dodge so bars don't overlap
        axis.errorbar(
            xs,
            [100 * m for _, m, _ in points],
            yerr=[100 * c for _, _, c in points],
            marker="o",
            capsize=3,
            label=label,
        )
    if zero_line:
        axis.axhline(0, color="grey", lw=1, ls="--")
    axis.set_xscale("log")
    ns = sorted({n for points in series.values() for n, _, _ in points})
    axis.set_xticks(ns, [str(n) for n in ns])
    axis.set_xlabel("real images per class")
    axis.set_ylabel(ylabel)
    axis.legend(fontsize=8)
    axis.grid(alpha=0.3)
    figure.tight_layout()
    return _png(figure)


def accuracy_png(summary: list[dict[str, Any]]) -> bytes:
    """Test accuracy (mean ± 95% CI) per arm against N."""
    return _lines(_series(summary, "accuracy"), "test accuracy % (95% CI)", zero_line=False)


def difference_png(summary: list[dict[str, Any]]) -> bytes:
    """Paired difference to the real-only arm (mean ± 95% CI) against N."""
    return _lines(_series(summary, "vs_real"), "Δ accuracy vs real-only, points (95% CI)", zero_line=True)


def ratio_png(summary: list[dict[str, Any]]) -> bytes:
    """Accuracy against synthetic images per real image, one line per (arm, N)."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6, 4))
    reals = {row["per_class"]: row["accuracy"]["mean"] for row in summary if row["arm"] == "real"}
    keys = dict.fromkeys((row["arm"], row["per_class"]) for row in summary if row["arm"] != "real")
    for arm, n in keys:
        rows = sorted(
            (r for r in summary if (r["arm"], r["per_class"]) == (arm, n)), key=lambda r: r["synthetic_ratio"]
        )
        xs = [0.0] + [r["synthetic_ratio"] for r in rows]
        ys = [100 * reals.get(n, float("nan"))] + [100 * r["accuracy"]["mean"] for r in rows]
        errs = [0.0] + [100 * (r["accuracy"]["ci"] or 0.0) for r in rows]
        axis.errorbar(xs, ys, yerr=errs, marker="o", capsize=3, label=f"{arm}, N={n}")
    axis.set_xlabel("synthetic images per real image")
    axis.set_ylabel("test accuracy % (95% CI)")
    axis.legend(fontsize=8)
    axis.grid(alpha=0.3)
    figure.tight_layout()
    return _png(figure)
