"""Real and synthetic images in every batch at a fixed share, with the real images' exposure fixed.

Synthetic images enter classifier training through this sampler, not by appending them to the real set:
appending under a fixed step budget shows each real image less often the more synthetic images there are
(with 4 per real image, five times less), which made even classic augmentation "lose". Here the budget
is counted in real-image presentations: every run with the same ``presentations`` draws the same real
index stream (its own seeded generator, shared by every arm: common random numbers), so each real image
is seen exactly as often in every arm, and the synthetic share only adds steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from augmentor.core.errors import UserError

REAL_ORDER_STREAM = 7_919  # offsets the real-order generator from the augmentation one (same seed)
SYNTHETIC_ORDER_STREAM = 104_729


@dataclass
class SyntheticPool:
    """Synthetic images for one training run and their targets (N×K class probabilities, rows sum to 1)."""

    images: np.ndarray  # uint8 N×C×H×W, the real set's shape
    targets: np.ndarray  # float32 N×K: one-hot for hard labels, a teacher's mixture for soft ones
    share: float  # fraction of every mixed batch that is synthetic, in (0, 1)
    weight: float = 1.0  # weight of each synthetic image's loss relative to a real one's

    def __post_init__(self) -> None:
        if not 0.0 < self.share < 1.0:
            raise UserError(f"--synthetic-share {self.share:g}: give a share between 0 and 1 (exclusive), e.g. 0.5")
        if self.weight < 0 or not math.isfinite(self.weight):
            raise UserError(f"--synthetic-weight {self.weight:g}: give a number ≥ 0, e.g. 1")
        if len(self.images) == 0:
            raise UserError("the synthetic pool is empty: every source's images were rejected; relax the gates")
        if len(self.images) != len(self.targets):
            raise UserError(f"internal: {len(self.images)} synthetic images but {len(self.targets)} targets")


def hard_targets(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """One-hot rows for ``labels``."""
    targets = np.zeros((len(labels), num_classes), np.float32)
    targets[np.arange(len(labels)), labels] = 1.0
    return targets


def soft_targets(teacher_proba: np.ndarray, intended: np.ndarray, teacher_share: float) -> np.ndarray:
    """``teacher_share`` × the teacher's probabilities + the rest on the intended target (class labels, or rows
    such as a mixup image's mixed target); rows sum to 1."""
    if not 0.0 <= teacher_share <= 1.0:
        raise UserError(f"--teacher-share {teacher_share:g}: give a number between 0 and 1, e.g. 0.5")
    if intended.ndim == 1:
        intended = hard_targets(intended, teacher_proba.shape[1])
    mixed = teacher_share * teacher_proba.astype(np.float32) + (1.0 - teacher_share) * intended
    return mixed / mixed.sum(axis=1, keepdims=True)  # exact sums despite float rounding


def batch_split(batch_size: int, share: float) -> tuple[int, int]:
    """(real, synthetic) images in a mixed batch: at least one of each."""
    synthetic = min(batch_size - 1, max(1, round(batch_size * share)))
    return batch_size - synthetic, synthetic


def step_plan(
    presentations: int, batch_size: int, share: float = 0.0, finetune_real: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Real and synthetic images per optimiser step for ``presentations`` real-image presentations.

    Mixed steps come first; with ``finetune_real`` the last fraction of the real presentations is
    spent in real-only batches (a domain-gap remedy). Without synthetic images every step is real-only.
    """
    if presentations < 1:
        raise UserError(f"the real-image budget must be at least 1 presentation, got {presentations}")
    if not 0.0 <= finetune_real < 1.0:
        raise UserError(f"--finetune-real {finetune_real:g}: give a fraction in [0, 1), e.g. 0.2")
    real_counts: list[int] = []
    synthetic_counts: list[int] = []
    mixed = round(presentations * (1.0 - finetune_real)) if share > 0 else 0
    if mixed:
        real_part, synthetic_part = batch_split(batch_size, share)
        full, rest = divmod(mixed, real_part)
        real_counts += [real_part] * full + ([rest] if rest else [])
        synthetic_counts += [synthetic_part] * (full + (1 if rest else 0))
    full, rest = divmod(presentations - mixed, batch_size)
    real_counts += [batch_size] * full + ([rest] if rest else [])
    synthetic_counts += [0] * (full + (1 if rest else 0))
    return np.array(real_counts, np.int64), np.array(synthetic_counts, np.int64)


def index_stream(n: int, total: int, generator: torch.Generator) -> torch.Tensor:
    """The first ``total`` indices of back-to-back permutations of ``range(n)``: each index equally often."""
    permutations = math.ceil(total / n)
    return torch.cat([torch.randperm(n, generator=generator) for _ in range(permutations)])[:total]


def real_order(n: int, presentations: int, seed: int) -> torch.Tensor:
    """The real index stream of a run: a function of (n, presentations, seed) alone, so identical in every arm."""
    return index_stream(n, presentations, torch.Generator().manual_seed(seed * REAL_ORDER_STREAM + 1))


def synthetic_order(n: int, total: int, seed: int) -> torch.Tensor:
    """The synthetic pool's index stream: every image once before any twice."""
    return index_stream(n, total, torch.Generator().manual_seed(seed * SYNTHETIC_ORDER_STREAM + 2))
