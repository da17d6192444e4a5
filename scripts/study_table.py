#!/usr/bin/env python3
"""The README's study table, recomputed from the committed per-draw results (docs/study/*/runs.jsonl + plan.json).

Run:  .venv/bin/python scripts/study_table.py [docs/study]   (prints one markdown row per study)
"""

from __future__ import annotations

import sys
from pathlib import Path

from augmentor.experiments.study import recompute


def points(comparison: dict) -> str:
    """Mean ± half-width in points, with the interval's verdict."""
    low, high = comparison["low"], comparison["high"]
    verdict = "gain" if low > 0 else "loss" if high < 0 else "none"
    return f"{100 * comparison['mean']:+.2f} ± {100 * comparison['ci']:.2f} ({verdict})"


def rows(root: Path) -> list[str]:
    """One table row per study folder under ``root``."""
    out = []
    for folder in sorted(p.parent for p in root.glob("*/plan.json")):
        study = recompute(folder)
        choice, (recipe_vs_classic, classic_vs_real, _) = study["choice"], study["comparisons"]
        n = ",".join(map(str, study["per_class"]))
        out.append(
            f"| {folder.name} | {n} | {choice['classic']['arm']}@{choice['classic']['share']:g} | "
            f"{points(classic_vs_real)} | {choice['generative']['arm']}@{choice['generative']['share']:g} | "
            f"{points(recipe_vs_classic)} | {recipe_vs_classic['wins']}/{recipe_vs_classic['draws']} | "
            f"{study['answer'].rsplit('use ', 1)[1]} |"
        )
    return out


HEADER = [
    "| study | N | tuned classic | classic vs real (points) | chosen recipe | recipe vs tuned classic | draws won "
    "| the answer: use |",
    "|---|---|---|---|---|---|---|---|",
]

if __name__ == "__main__":
    print("\n".join(HEADER + rows(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/study"))))
