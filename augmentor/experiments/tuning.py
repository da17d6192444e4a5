"""Choosing the recipe on development draws: the validation split decides, the test split is never read.

A development run (``GainConfig.development``) trains every candidate arm at every share on its own draws
(seeds 1000 + d) and scores them on the validation split carved from the train split. The recipe is the
generative (arm, share) with the highest mean paired gain over the ``classic`` baseline, averaged over N;
it is then frozen and run once on fresh draws, scored on test.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from augmentor.core.errors import UserError

if TYPE_CHECKING:
    from augmentor.experiments.gain import GainResult


def select_recipe(result: GainResult) -> dict[str, Any]:
    """The best generative (arm, share) of a development run, with its mean Δ vs classic per N."""
    from augmentor.experiments.arms import parse_arm

    if result.config["scored_on"] != "validation":
        raise UserError("a recipe is chosen on a development run (--development): this run was scored on test")
    baseline = "classic" if result.config["classic_baseline"] else "real"
    scores: dict[tuple[str, float], dict[int, float]] = {}
    for row in result.summary:
        arm = parse_arm(row["arm"])
        if not arm.sources or arm.classic_only or f"vs_{baseline}" not in row:
            continue
        scores.setdefault((row["arm"], row["synthetic_share"]), {})[row["per_class"]] = row[f"vs_{baseline}"]["mean"]
    if not scores:
        raise UserError("the development run has no generative arm to choose from: add one to --arms")
    # The mean over N of the paired gain; the first-listed candidate wins a tie (a stable, stated rule).
    (arm, share), per_n = max(scores.items(), key=lambda item: sum(item[1].values()) / len(item[1]))
    return {
        "arm": arm,
        "synthetic_share": share,
        "baseline": baseline,
        "mean_gain": sum(per_n.values()) / len(per_n),
        "gain_per_n": {str(n): v for n, v in sorted(per_n.items())},
        "candidates": len(scores),
    }
