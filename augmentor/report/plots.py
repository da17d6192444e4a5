"""Figures as PNG bytes, drawn headless with matplotlib (imported only when a figure is made)."""

from __future__ import annotations

import io
from typing import Any


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(figure)
    return buffer.getvalue()


def training_curves_png(metrics: list[dict[str, Any]]) -> bytes:
    """Training loss (left axis) and the test and validation accuracies (right axis) against the step; with a
    validation split, its best step (the one `--keep best`, the default, keeps) is marked."""
    plt = _pyplot()
    figure, loss_axis = plt.subplots(figsize=(6, 3.5))
    steps = [m["step"] for m in metrics]
    lines = loss_axis.plot(
        steps, [m["train_loss"] for m in metrics], color="tab:blue", marker="o", ms=3, label="training loss"
    )
    loss_axis.set_xlabel("step")
    loss_axis.set_ylabel("training loss", color="tab:blue")
    curves = [(key, label, colour) for key, label, colour in _ACCURACIES if any(key in m for m in metrics)]
    if curves:
        acc_axis = loss_axis.twinx()
        for key, label, colour in curves:
            points = [(m["step"], m[key]) for m in metrics if key in m]
            lines += acc_axis.plot(*zip(*points, strict=True), color=colour, marker="o", ms=3, label=label)
        if len(curves) > 1:
            acc_axis.set_ylabel("accuracy")
        else:
            acc_axis.set_ylabel(curves[0][1], color=curves[0][2])
        validated = [m for m in metrics if "val_accuracy" in m]
        if validated:  # the first best, as training picks it
            best = max(validated, key=lambda m: m["val_accuracy"])
            lines.append(acc_axis.axvline(best["step"], color="grey", ls=":", lw=1, label="best validation step"))
    if len(lines) > 1:
        loss_axis.legend(handles=lines, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=len(lines))
    figure.tight_layout()
    return _png(figure)


_ACCURACIES = (("test_accuracy", "test accuracy", "tab:orange"), ("val_accuracy", "validation accuracy", "tab:green"))


def losses_png(metrics: list[dict[str, Any]], keys: tuple[str, ...]) -> bytes:
    """The named losses against the step (a generative run's ``losses.png``)."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6, 3.5))
    steps = [m["step"] for m in metrics]
    for key in keys:
        axis.plot(steps, [m.get(key, float("nan")) for m in metrics], label=key)
    axis.set_xlabel("step")
    axis.set_ylabel("loss")
    axis.legend()
    figure.tight_layout()
    return _png(figure)


def confusion_png(confusion: list[list[int]], class_names: list[str]) -> bytes:
    """The confusion matrix, rows normalised (true class), counts written in the cells."""
    import numpy as np

    plt = _pyplot()
    matrix = np.asarray(confusion, dtype=float)
    rates = matrix / np.maximum(matrix.sum(1, keepdims=True), 1)
    size = max(4.0, 0.45 * len(class_names) + 2)
    figure, axis = plt.subplots(figsize=(size, size))
    axis.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ticks = range(len(class_names))
    axis.set_xticks(ticks, class_names, rotation=60, ha="right", fontsize=8)
    axis.set_yticks(ticks, class_names, fontsize=8)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    if len(class_names) <= 20:
        for i in ticks:
            for j in ticks:
                colour = "white" if rates[i, j] > 0.5 else "black"
                axis.text(j, i, f"{int(matrix[i, j])}", ha="center", va="center", fontsize=7, color=colour)
    figure.tight_layout()
    return _png(figure)
