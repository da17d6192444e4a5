"""Plots of the gain experiment: accuracy and paired gains per arm against N, the share curve, the budget check.

Summary rows hold ``mean`` / ``ci`` / ``low`` / ``high`` as fractions; the plots show percentage points.
"""

from __future__ import annotations

import math
from typing import Any

from augmentor.report.plots import _png, _pyplot

# (x, mean, low, high), the last three as fractions; low/high are None without an interval (a single draw).
Point = tuple[float, float, float | None, float | None]


def _interval(stats: dict[str, Any]) -> tuple[float, float | None, float | None]:
    """mean, low, high of a mean_ci / comparison dict (low/high rebuilt from ci if absent)."""
    mean = stats["mean"]
    low, high, ci = stats.get("low"), stats.get("high"), stats.get("ci")
    if (low is None or high is None) and ci is not None:
        low, high = mean - ci, mean + ci
    return mean, low, high


def _share(row: dict[str, Any]) -> float:
    return float(row.get("synthetic_share") or 0.0)


def _series(summary: list[dict[str, Any]], value: str) -> dict[str, list[Point]]:
    """label → points for ``value`` = accuracy | vs_real | vs_classic; the share is named only when it varies."""
    series: dict[str, list[Point]] = {}
    shares = {_share(row) for row in summary if _share(row) > 0}
    for row in summary:
        stats = row.get(value)
        if not stats:
            continue
        share = _share(row)
        label = f"{row['arm']} share {share:g}" if len(shares) > 1 and share > 0 else row["arm"]
        series.setdefault(label, []).append((row["per_class"], *_interval(stats)))
    return series


def _palette(summary: list[dict[str, Any]]) -> dict[str, str]:
    """One colour per series label for every plot of a run: an arm keeps its colour from plot to plot, though
    some plots leave arms out (``real`` has no difference to itself)."""
    labels = list(_series(summary, "accuracy"))
    return {label: f"C{k % 10}" for k, label in enumerate(labels)}


def _errorbar(axis: Any, points: list[Point], label: str, top: float | None, colour: str | None = None) -> None:
    """(x, mean, low, high) as points with bars in percent; for accuracies (``top`` 1.0) the bars stay in
    [0, 100] %: a t-interval over few draws can run past either end, an accuracy cannot."""
    below, above = [], []
    for _, m, lo, hi in points:
        if hi is not None and top is not None:
            hi = min(hi, top)
        if lo is not None and top is not None:
            lo = max(lo, 0.0)
        below.append(0.0 if lo is None else max(0.0, 100 * (m - lo)))
        above.append(0.0 if hi is None else max(0.0, 100 * (hi - m)))
    xs, ys = [p[0] for p in points], [100 * p[1] for p in points]
    axis.errorbar(xs, ys, yerr=[below, above], marker="o", capsize=3, label=label, color=colour)


def _integer_log_ticks(axis: Any, ticks: list[float], labels: list[str], base: float = 10) -> None:
    """Log x axis labelled only at the given values: no ``9.4×10^0`` minor labels."""
    from matplotlib.ticker import NullFormatter, NullLocator

    axis.set_xscale("log", base=base)
    axis.set_xticks(ticks, labels)
    axis.xaxis.set_minor_locator(NullLocator())
    axis.xaxis.set_minor_formatter(NullFormatter())


def _cap_top(axis: Any, top: float | None) -> None:
    """Keep an accuracy axis from running past 100 % (a little margin so markers at 100 stay visible)."""
    if top is not None and axis.get_ylim()[1] > 100 * top:
        axis.set_ylim(top=100 * top + 0.5)


def _lines(
    series: dict[str, list[Point]],
    ylabel: str,
    zero_line: bool,
    top: float | None = None,
    title: str | None = None,
    colours: dict[str, str] | None = None,
) -> bytes:
    """Points with error bars against N (log axis); ``top`` clips the bars (1.0 for accuracies)."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6, 4))
    count = max(1, len(series))
    for k, (label, points) in enumerate(series.items()):
        dodge = 1 + 0.03 * (k - (count - 1) / 2)  # a small shift, centred on N, so the bars don't overlap
        shifted = [(n * dodge, *rest) for n, *rest in sorted(points, key=lambda p: p[0])]
        _errorbar(axis, shifted, label, top, (colours or {}).get(label))
    if zero_line:
        axis.axhline(0, color="grey", lw=1, ls="--")
    ns = sorted({p[0] for points in series.values() for p in points})
    _integer_log_ticks(axis, ns, [str(n) for n in ns])
    if ns:  # room for the dodge; with a single N autoscaling would zoom in on it
        axis.set_xlim(min(ns) / 1.3, max(ns) * 1.3)
    _cap_top(axis, top)
    axis.set_xlabel("real images per class")
    axis.set_ylabel(ylabel)
    if title:
        axis.set_title(title)
    if series:
        axis.legend(fontsize=8)
    axis.grid(alpha=0.3)
    figure.tight_layout()
    return _png(figure)


def _over_draws(summary: list[dict[str, Any]], value: str) -> str:
    """What the points and bars are: the mean and its 95% t-interval over the draws (their count from the rows)."""
    counts = sorted({row[value]["n"] for row in summary if row.get(value) and row[value].get("n") is not None})
    if counts == [1]:
        return "one draw: no interval"
    draws = "" if not counts else f"{counts[0]} " if len(counts) == 1 else f"{counts[0]}-{counts[-1]} "
    return f"mean ± 95% t-interval over {draws}draws"


def accuracy_png(summary: list[dict[str, Any]]) -> bytes:
    """Test accuracy (mean ± 95% CI) per arm against N."""
    title = f"Test accuracy per arm at N real images per class\n({_over_draws(summary, 'accuracy')})"
    series, colours = _series(summary, "accuracy"), _palette(summary)
    return _lines(series, "test accuracy % (95% CI)", zero_line=False, top=1.0, title=title, colours=colours)


def difference_png(summary: list[dict[str, Any]]) -> bytes:
    """Paired difference to the real-only arm (mean ± 95% CI) against N."""
    title = f"Paired Δ test accuracy vs real-only at N real images per class\n({_over_draws(summary, 'vs_real')})"
    series, ylabel = _series(summary, "vs_real"), "Δ accuracy vs real-only, points (95% CI)"
    return _lines(series, ylabel, zero_line=True, title=title, colours=_palette(summary))


def share_png(summary: list[dict[str, Any]]) -> bytes:
    """Accuracy against the synthetic share of the training set, one line per (arm, N); share 0 is ``real``."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6, 4))
    reals = {row["per_class"]: row["accuracy"] for row in summary if row["arm"] == "real"}
    keys = dict.fromkeys((row["arm"], row["per_class"]) for row in summary if _share(row) > 0)
    for arm, n in keys:
        rows = sorted((r for r in summary if (r["arm"], r["per_class"]) == (arm, n) and _share(r) > 0), key=_share)
        points = [(0.0, *_interval(reals[n]))] if n in reals else []
        points += [(_share(r), *_interval(r["accuracy"])) for r in rows]
        _errorbar(axis, points, f"{arm}, N={n}", top=1.0)
    _cap_top(axis, 1.0)
    axis.set_xlabel("synthetic share of the training set (0 = real only)")
    axis.set_ylabel("test accuracy % (95% CI)")
    if keys:
        axis.legend(fontsize=8)
    axis.grid(alpha=0.3)
    figure.tight_layout()
    return _png(figure)


def _bands(axis: Any, points: list[Point], label: str, colour: str | None = None) -> None:
    """A line through (x, mean, low, high) with a shaded interval; points without one leave a gap in the band only."""
    xs = [p[0] for p in points]
    line = axis.plot(xs, [100 * p[1] for p in points], marker="o", ms=4, label=label, color=colour)[0]
    if any(p[2] is not None for p in points):
        nan = math.nan
        axis.fill_between(
            xs,
            [nan if p[2] is None else 100 * p[2] for p in points],
            [nan if p[3] is None else 100 * p[3] for p in points],
            color=line.get_color(),
            alpha=0.2,
            lw=0,
        )


def gain_vs_n_png(summary: list[dict[str, Any]], baseline: str = "classic") -> bytes:
    """Paired Δ accuracy vs ``baseline`` (points, 95% band) against N, one line per arm."""
    series = _series(summary, f"vs_{baseline}")
    ylabel = f"Δ accuracy vs {baseline}, points (95% CI)"
    title = f"Paired gain over {baseline}"
    colours = _palette(summary)
    ns = sorted({p[0] for points in series.values() for p in points})
    if len(ns) <= 1:  # a band needs two N; points with bars read better
        return _lines(series, ylabel, zero_line=True, title=title, colours=colours)
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6, 4))
    for label, points in series.items():
        _bands(axis, sorted(points, key=lambda p: p[0]), label, colours.get(label))
    axis.axhline(0, color="grey", lw=1, ls="--")
    _integer_log_ticks(axis, ns, [str(n) for n in ns])
    axis.set_xlabel("real images per class")
    axis.set_ylabel(ylabel)
    axis.set_title(title)
    axis.legend(fontsize=8)
    axis.grid(alpha=0.3)
    figure.tight_layout()
    return _png(figure)


def budget_png(curve: list[dict[str, Any]]) -> bytes:
    """Validation accuracy of the real-only classifier at multiples of the chosen step budget, one line per N.

    A curve still rising at 2–4× says the budget is too short for the real arm; flat or falling says it is enough.
    """
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6, 4))
    multipliers = sorted({float(c["multiplier"]) for c in curve})
    intervals = any(_interval(c["accuracy"])[1] is not None for c in curve)
    for n in sorted({c["per_class"] for c in curve}):
        points = sorted((c for c in curve if c["per_class"] == n), key=lambda c: c["multiplier"])
        chosen = next((c for c in points if c["multiplier"] == 1), None)
        label = f"N={n}" if chosen is None else f"N={n} (1× = {chosen['steps']} steps, {chosen['real_epochs']:.3g} ep)"
        clipped: list[Point] = []
        for c in points:  # an interval past 100 % is an artefact of the t-approximation near the ceiling
            mean, low, high = _interval(c["accuracy"])
            clipped.append((float(c["multiplier"]), min(mean, 1.0), low, None if high is None else min(high, 1.0)))
        if len(multipliers) > 1:
            _bands(axis, clipped, label)
        else:
            _errorbar(axis, clipped, label, top=1.0)
    axis.axvline(1.0, color="grey", lw=1, ls=":", label="chosen budget")
    _integer_log_ticks(axis, multipliers, [f"{m:g}×" for m in multipliers], base=2)
    _cap_top(axis, 1.0)
    axis.set_xlabel("training steps, multiple of the chosen budget")
    axis.set_ylabel("validation accuracy %" + (" (95% CI)" if intervals else ""))
    axis.set_title("Budget check: real-only classifier" + ("" if intervals else "\n(one draw: no interval)"))
    axis.legend(fontsize=8)
    axis.grid(alpha=0.3)
    figure.tight_layout()
    return _png(figure)
