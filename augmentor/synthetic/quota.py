"""Filling a per-class quota from a source, through the quality gates, with one over-generation policy.

Without gates a source is asked once for its quota. With gates it is asked in rounds (fresh parents or
latent indices each round) until every class has its quota or the source has made ``ROUND_LIMIT`` times
the quota; what is still missing is reported, never looped on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from augmentor.data.imageset import ImageSet
from augmentor.synthetic.sources import Source

ROUND_LIMIT = 8  # a gated source makes at most this many times its quota per class
_MAX_ROUNDS = 64  # belt and braces: the budget above already ends the loop
GATE_ORDER = ("min_confidence", "dedupe")  # applied in this order; dedupe only sees what confidence kept


@dataclass
class Gates:
    """The enabled gates: a judge's confidence in each image's label, and distance to the nearest real image."""

    real: ImageSet
    min_confidence: float | None = None
    dedupe: float | None = None
    judge: Any = None  # a classifier of ``real`` alone; needed when min_confidence is set
    device: str = "auto"

    @property
    def active(self) -> bool:
        return self.min_confidence is not None or self.dedupe is not None

    def keep(self, batch: ImageSet, dropped: dict[str, int]) -> np.ndarray:
        """A keep-mask for ``batch``; counts what each gate dropped into ``dropped``."""
        from augmentor.synthetic.gates import confidence_mask, dedupe_mask

        keep = np.ones(len(batch), dtype=bool)
        if self.min_confidence is not None and len(batch):
            keep &= confidence_mask(self.judge, batch, self.min_confidence)
            dropped["min_confidence"] += int((~keep).sum())
        if self.dedupe is not None and keep.any():
            survivors = np.flatnonzero(keep)
            close = ~dedupe_mask(batch.take(survivors), self.real, self.dedupe, self.device)
            keep[survivors[close]] = False
            dropped["dedupe"] += int(close.sum())
        return keep


def fill_quota(source: Source, quota: np.ndarray, gates: Gates) -> tuple[ImageSet, dict[str, Any]]:
    """Make images until every class has ``quota`` that pass the gates, or the round budget is spent."""
    classes = len(quota)
    kept: list[list[ImageSet]] = [[] for _ in range(classes)]
    have = np.zeros(classes, np.int64)
    made = np.zeros(classes, np.int64)  # asked for: the budget (a classic class without images makes none)
    produced = np.zeros(classes, np.int64)
    limit = quota * (ROUND_LIMIT if gates.active else 1)
    dropped = dict.fromkeys(GATE_ORDER, 0)
    surplus = 0
    rounds = 0
    for round_no in range(_MAX_ROUNDS):
        deficit = quota - have
        # Ask for more than the deficit once a class's acceptance rate is known (at least 1/ROUND_LIMIT).
        rate = np.where(made > 0, have / np.maximum(made, 1), 1.0)
        ask = np.ceil(deficit / np.maximum(rate, 1 / ROUND_LIMIT)).astype(np.int64)
        ask = np.where(deficit > 0, np.minimum(ask, limit - made), 0)
        if ask.sum() <= 0:
            break
        batch = source.make(ask, round_no)
        made += ask
        produced += np.bincount(batch.labels, minlength=classes)
        rounds += 1
        accepted = batch.take(np.flatnonzero(gates.keep(batch, dropped)))
        for label in range(classes):
            members = np.flatnonzero(accepted.labels == label)
            take = members[: deficit[label]]
            surplus += len(members) - len(take)
            if len(take):
                kept[label].append(accepted.take(take))
                have[label] += len(take)
    stats = {"generated": produced, "kept": have, "dropped": dropped, "surplus": surplus, "rounds": rounds}
    empty = gates.real.take(np.zeros(0, np.int64))  # the classes, shape and dtype of an empty result
    return concat_all(empty, [part for per_class in kept for part in per_class]), stats


def concat_all(first: ImageSet, others: list[ImageSet]) -> ImageSet:
    """``first`` followed by every set of ``others``, copied once (not pair by pair)."""
    parts = [first, *others]
    return ImageSet(
        np.concatenate([p.images for p in parts]),
        np.concatenate([p.labels for p in parts]),
        list(first.class_names),
        [prov for p in parts for prov in p.provenance],
    )
