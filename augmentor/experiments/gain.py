"""The gain experiment: train the same classifier on real-only and augmented data, compare paired draws.

Honesty rules (DESIGN):
- a validation split is carved from the train split first; every real subset is drawn from the rest;
- every arm sees each real image equally often: synthetic images are a fixed share of each batch
  (``classifiers.mixing``) and the budget is counted in real-image presentations; ``real-long`` trains
  real-only for the augmented arms' step count, so no gain can come from extra steps;
- synthetic images are made from the arm's own real subset, and soft labels come from the ``real`` arm's
  classifier of that subset;
- the test split is touched once per trained model, for its final score. ``development`` runs (the draws
  hyperparameters are chosen on) use other seeds and score on the validation split: they never read test.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from augmentor.core import jsonio
from augmentor.core.console import progress, warn
from augmentor.core.errors import UserError
from augmentor.core.limits import DRAWS, MODEL_WIDTH, check_count
from augmentor.core.outdir import check_output, staged_output
from augmentor.core.parallel import default_workers
from augmentor.data.imageset import ImageSet, fingerprint
from augmentor.data.options import ReadOptions
from augmentor.data.readers import open_dataset
from augmentor.data.subset import fold_indices, stratified_indices
from augmentor.distributed.context import current
from augmentor.experiments.arms import (
    LABEL_MODES,
    SAMPLES_KEY,
    Arm,
    GeneratorOptions,
    SubsetModels,
    check_arms,
    parse_arms,
)
from augmentor.experiments.stats import holm, mean_ci, paired_comparison, verdict
from augmentor.synthetic.recipes import load_recipe

if TYPE_CHECKING:
    from augmentor.classifiers.classifier import Classifier
    from augmentor.classifiers.mixing import SyntheticPool
    from augmentor.classifiers.train import TrainConfig

# The default budget in passes over the real subset: 3000 / N within [30, 300]. The study's budget curves put
# the real-only plateau at 300 passes for 10 per class and near 30–60 at 100 per class (README, "The gain study").
DEFAULT_PASSES_TIMES_N = 3000.0
DEFAULT_REAL_EPOCHS_RANGE = (30.0, 300.0)


def default_real_epochs(per_class: int) -> float:
    """Passes over the real subset when none are given: fewer as the subset grows."""
    low, high = DEFAULT_REAL_EPOCHS_RANGE
    return min(high, max(low, DEFAULT_PASSES_TIMES_N / per_class))


CURVE_MULTIPLIERS = (0.25, 0.5, 1.0, 2.0, 4.0)  # the budget diagnostic, × the chosen budget
DEVELOPMENT_SEEDS = 1000  # development draw d uses seed 1000 + d: never a reported draw's subset
VALIDATION_SEED = 987_654  # one validation split per dataset, whatever the run
# The default study sizes, and the adaptive validation split: half of what the largest N leaves in the smallest
# class, within VALIDATION_FLOOR..VALIDATION_CAP per class (200 on Fashion-MNIST, as before; 10 on a folder of 30
# per class at N = 10). An N fits the data when it leaves at least VALIDATION_FLOOR images of every class.
DEFAULT_PER_CLASS = (10, 100)
VALIDATION_SHARE = 0.5
VALIDATION_FLOOR = 5
VALIDATION_CAP = 200


@dataclass(frozen=True)
class GainConfig:
    """``augmentor gain`` options (field names = flag names)."""

    # Real images per class in a draw; None: those of DEFAULT_PER_CLASS the data holds (``fit_to_data``).
    per_class: tuple[int, ...] | None = None
    recipe: str = "best"  # a built-in recipe or a recipe file: the arm, share and generators used where not given
    arms: str = ""  # "": real, real-long, classic and the recipe's arm
    draws: int = 10  # paired draws: draw d fixes the real subset, every generator and every classifier seed
    arch: str = "fast"
    # The budget in passes over the real subset: one value, or one per N (default: default_real_epochs).
    real_epochs: tuple[float, ...] | None = None
    budget: int | None = None  # or in optimiser steps of the real-only arm
    batch_size: int = 128
    lr: float = 3e-3
    synthetic_share: tuple[float, ...] = ()  # (): the recipe's
    synthetic_weight: float = 1.0
    labels: str = "hard"  # how synthetic images are labelled unless an arm says @soft / @hard
    temperature: float = 2.0  # the teacher's softmax temperature for soft labels
    teacher_share: float = 0.5  # weight of the teacher's probabilities in a soft label (the rest: intended class)
    finetune_real: float = 0.0  # the last fraction of real presentations in real-only batches
    flip: bool = True
    device: str = "auto"
    workers: int = 0
    gen_steps: int = 600  # each generator's training steps on its arm's real subset
    gen_width: int = 32
    gen_init: str | None = None  # a run every generator starts from (transfer; its width then), None: scratch
    gen_ada_target: float | None = None  # adaptive DiffAugment for the DCGANs, None: DiffAugment always on
    gen_augment: str | None = None  # generators train on classic-augmented copies too (a preset), None: not
    gen_beta: float = 0.1  # every VAE's KL weight
    # Candidate generator budgets, each chosen on the validation split by its samples' CAS; (): gen_steps, fixed.
    gen_budgets: tuple[int, ...] = ()
    # Each generator's CAS classifier on the validation split (the report's why): None the real arm's budget, 0 off.
    quality_steps: int | None = None
    min_confidence: float = 0.5  # the gated arms' threshold
    validation_per_class: int | None = None  # None: adapted to what the data holds (``fit_to_data``)
    budget_curve: bool = True
    curve_draws: int = 3  # draws the budget curve is measured on (it costs 7.75 real-only trainings per draw)
    development: bool = False
    # Reported draw d's seed is first_seed + d: new seeds are a new look at test (in a development run, an
    # offset from the development seeds: a study's cross-validated fold k is draw k's own one-draw run).
    first_seed: int = 0
    # (k, K): validate on fold k of K disjoint stratified folds of the train split, not the fixed held-out split
    # (``augmentor study`` on a small folder; ``cross_validation_folds``).
    validation_fold: tuple[int, int] | None = None
    # Train the augmented arms of one share as one grouped network (``classifiers.grouped``); None: on CUDA only.
    grouped: bool | None = None
    # The generator settings the user gave (field names): kept over a recipe's even at their default values.
    given: frozenset[str] = frozenset()

    def validate(self) -> None:
        """Refuse bad counts, sizes, shares and modes, naming the flag (before any work)."""
        if self.draws < 1:
            raise UserError(f"--draws {self.draws}: give at least 1 paired draw")
        check_count("--draws", self.draws, DRAWS)
        if self.budget is not None and self.real_epochs is not None:
            raise UserError("--budget and --real-epochs both set the budget: give one of them")
        if self.budget is not None and self.budget < 1:
            raise UserError(f"--budget {self.budget}: give at least 1 optimiser step")
        if self.real_epochs is not None:
            shown = ",".join(f"{v:g}" for v in self.real_epochs)
            if not self.real_epochs or not all(v > 0 for v in self.real_epochs):
                raise UserError(f"--real-epochs {shown!r}: give positive numbers of passes, e.g. 100 or 100,30")
            if len(self.real_epochs) not in (1, len(self.per_class or DEFAULT_PER_CLASS)):
                raise UserError(
                    f"--real-epochs {shown!r}: give one number of passes, or one per --per-class value "
                    f"({len(self.per_class or DEFAULT_PER_CLASS)})"
                )
        check_count("--gen-width", self.gen_width, MODEL_WIDTH)
        if self.gen_init is not None:  # a run that is not one is refused before any data is read
            from augmentor.generative.transfer import check_generator_run

            check_generator_run(self.gen_init)
        if self.gen_augment is not None:  # a bad pipeline is refused now, not at the first generator
            from augmentor.classic.pipelines import load_pipeline

            load_pipeline(self.gen_augment, probe=False)
        if not (math.isfinite(self.gen_beta) and self.gen_beta >= 0):
            raise UserError(f"--gen-beta {self.gen_beta}: give a KL weight ≥ 0, e.g. 0.1")
        if self.gen_steps < 1:  # else the generator's own check would name train's --steps
            raise UserError(f"--gen-steps {self.gen_steps}: give at least 1 training step")
        if self.gen_budgets:
            shown = ",".join(str(v) for v in self.gen_budgets)
            if not all(isinstance(v, int) and v >= 1 for v in self.gen_budgets):
                raise UserError(f"--gen-budgets {shown!r}: give whole numbers of steps, e.g. 300,600,1200")
            if self.gen_steps != GainConfig.gen_steps:
                raise UserError("--gen-budgets and --gen-steps both set the generators' budget: give one of them")
            if self.quality_steps == 0:
                raise UserError("--gen-budgets chooses by the samples' CAS: drop --quality-steps 0")
        if self.per_class is not None and (not self.per_class or min(self.per_class) <= 0):
            shown = ",".join(f"{v:g}" for v in self.per_class)
            raise UserError(f"--per-class {shown!r}: give positive numbers separated by commas, e.g. 10,100")
        if not self.synthetic_share or not all(0 < s < 1 for s in self.synthetic_share):
            shown = ",".join(f"{v:g}" for v in self.synthetic_share)
            raise UserError(f"--synthetic-share {shown!r}: give shares between 0 and 1 (exclusive), e.g. 0.5")
        if self.labels not in LABEL_MODES:
            raise UserError(f"--labels {self.labels!r}: use hard or soft")
        if not 0 <= self.teacher_share <= 1:
            raise UserError(f"--teacher-share {self.teacher_share:g}: give a number between 0 and 1")
        if not self.temperature > 0:
            raise UserError(f"--temperature {self.temperature:g}: give a number above 0, e.g. 2")
        if not self.synthetic_weight >= 0:
            raise UserError(f"--synthetic-weight {self.synthetic_weight:g}: give a number ≥ 0, e.g. 1")
        if not 0 <= self.finetune_real < 1:
            raise UserError(f"--finetune-real {self.finetune_real:g}: give a fraction in [0, 1), e.g. 0.2")
        if self.validation_per_class is not None and self.validation_per_class < 1:
            raise UserError(f"--validation-per-class {self.validation_per_class}: give at least 1")
        if self.first_seed < DEVELOPMENT_SEEDS + 1000 and self.first_seed + self.draws > DEVELOPMENT_SEEDS:
            raise UserError(
                f"--first-seed {self.first_seed}: draws {self.first_seed}…{self.first_seed + self.draws - 1} would "
                f"reuse development seeds ({DEVELOPMENT_SEEDS}…{DEVELOPMENT_SEEDS + 999}); start below "
                f"{DEVELOPMENT_SEEDS - self.draws + 1} or at {DEVELOPMENT_SEEDS + 1000} or above"
            )
        if self.curve_draws < 1:
            raise UserError(f"--curve-draws {self.curve_draws}: give at least 1")

    def epochs_at(self, per_class: int) -> float | None:
        """Passes over the real subset at ``per_class`` (None when the budget is given in steps)."""
        if self.budget is not None:
            return None
        if self.real_epochs is None:
            return default_real_epochs(per_class)
        if len(self.real_epochs) == 1:
            return self.real_epochs[0]
        return self.real_epochs[self.per_class.index(per_class)]

    def presentations(self, per_class: int, real_images: int) -> int:
        """The real-image presentations of every arm at ``per_class``, on a subset of ``real_images`` images."""
        epochs = self.epochs_at(per_class)
        if epochs is None:
            return self.budget * min(self.batch_size, real_images)
        return max(1, round(epochs * real_images))

    def seed(self, draw: int) -> int:
        """Draw ``draw``'s seed: first_seed + d for reported draws (0, 1, … by default); 1000 + first_seed + d for
        development."""
        return draw + self.first_seed + (DEVELOPMENT_SEEDS if self.development else 0)

    def grouping(self) -> bool:
        """Whether runs with one step plan train together: as asked, else only on CUDA, where a `fast` step is
        bound by kernel launches (K models cost about one); on a CPU it measured no gain (README, "Scaling out")."""
        if self.grouped is not None:
            return self.grouped
        from augmentor.core.device import resolve_device

        return resolve_device(self.device).type == "cuda"


def parse_numbers(text: str, flag: str, kind: type = int) -> tuple:
    """``10,100`` → (10, 100) for a comma-separated flag (``kind`` int or float); what ``validate`` checks."""
    try:
        return tuple(kind(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise UserError(f"{flag} {text!r}: give positive numbers separated by commas, e.g. 10,100") from None


@dataclass
class Splits:
    """Where subsets come from (the train split less validation), the validation split, and what is scored."""

    pool: ImageSet
    validation: ImageSet
    scored: ImageSet  # the test split, or the validation split in a development run
    scored_on: str  # "test" | "validation"
    class_names: list[str]
    validation_rule: str = "given"  # how the validation split's size was chosen (``fit_to_data``)


@dataclass
class GainResult:
    """Every trained model's score, the statistics, the budget curve and the generators trained on the way."""

    config: dict[str, Any]
    runs: list[dict[str, Any]] = field(default_factory=list)
    summary: list[dict[str, Any]] = field(default_factory=list)
    curve: list[dict[str, Any]] = field(default_factory=list)
    curve_runs: list[dict[str, Any]] = field(default_factory=list)
    generators: list[dict[str, Any]] = field(default_factory=list)  # each generator trained, with its last losses
    # Each (N, draw) job: the rank it ran on, its planned cost and its wall seconds (how even the split was).
    jobs: list[dict[str, Any]] = field(default_factory=list)
    # A picture of each generator kind's samples at each subset size (its first draw), by file name.
    samples: dict[str, bytes] = field(default_factory=dict)


def fit_to_data(config: GainConfig, train: ImageSet, where: str) -> tuple[GainConfig, str]:
    """``config`` with ``per_class`` and ``validation_per_class`` made concrete for ``train`` (given values are
    kept, and checked to fit): the default sizes the data holds, and a validation split adapted to what is left;
    and how the validation size was chosen, for the report."""
    counts = train.class_counts()
    smallest_name, smallest = min(counts.items(), key=lambda item: item[1])
    per_class = config.per_class
    if per_class is None:
        given = config.validation_per_class or VALIDATION_FLOOR
        per_class = tuple(n for n in DEFAULT_PER_CLASS if smallest - n >= given)
        if not per_class:
            raise UserError(
                f"{where}: class {smallest_name!r} has {smallest} training images, too few for the smallest "
                f"default draw ({DEFAULT_PER_CLASS[0]} per class) and a validation split of {given}; give "
                "--per-class N with fewer images, or add images"
            )
        if len(per_class) < len(DEFAULT_PER_CLASS):
            skipped = ",".join(str(n) for n in DEFAULT_PER_CLASS if n not in per_class)
            warn(f"{where}: class {smallest_name!r} has {smallest} training images: --per-class {skipped} is left out")
    validation, rule = config.validation_per_class, "given (--validation-per-class)"
    if validation is None:
        left = smallest - max(per_class)
        validation = min(VALIDATION_CAP, max(VALIDATION_FLOOR, int(left * VALIDATION_SHARE)))
        rule = (
            f"adapted: {VALIDATION_SHARE:g} of the {left} images per class that N = {max(per_class)} leaves in the "
            f"smallest class, within {VALIDATION_FLOOR}..{VALIDATION_CAP}"
        )
    if smallest < max(per_class) + validation:
        raise UserError(
            f"{where}: class {smallest_name!r} has {smallest} training images, fewer than --per-class "
            f"{max(per_class)} plus "
            + (
                f"--validation-per-class {validation}; lower one of them"
                if config.validation_per_class
                else f"a validation split of {validation} (at least {VALIDATION_FLOOR}); lower --per-class"
            )
        )
    return replace(config, per_class=per_class, validation_per_class=validation), rule


def split_data(train: ImageSet, test: ImageSet | None, config: GainConfig, where: str, rule: str = "given") -> Splits:
    """Carve the validation split (``config`` made concrete by ``fit_to_data``, which says ``rule``) from ``train``."""
    from augmentor.classifiers.evaluate import align_classes

    if config.validation_fold is not None:
        held = fold_indices(train, config.validation_fold[1], config.validation_fold[0], VALIDATION_SEED)
    else:
        held = stratified_indices(train, config.validation_per_class, VALIDATION_SEED)
    validation = train.take(held)
    pool = train.take(np.setdiff1d(np.arange(len(train)), held))
    if config.development:
        return Splits(pool, validation, validation, "validation", list(train.class_names), rule)
    if test is None:
        raise UserError(f"{where}: the gain experiment needs a test split (train/ and test/ folders, or t10k files)")
    scored = align_classes(train.class_names, test)
    return Splits(pool, validation, scored, "test", list(train.class_names), rule)


def real_subsets(splits: Splits, config: GainConfig) -> list[ImageSet]:
    """Every (N, draw)'s real subset, in job order."""
    return [
        splits.pool.take(stratified_indices(splits.pool, n, config.seed(draw)))
        for n in config.per_class
        for draw in range(config.draws)
    ]


def check_plan(splits: Splits, config: GainConfig) -> None:
    """The whole plan against the data, before the first training: every arm's pipeline, sizes and runs."""
    check_arms(parse_arms(config.arms), real_subsets(splits, config), generator_options(config))


def generator_options(config: GainConfig) -> GeneratorOptions:
    """How generators are trained inside the experiment (shared by every arm, with one cache). With an init
    run, every generator has that run's width."""
    width, init_kind = config.gen_width, None
    if config.gen_init is not None:  # the init run's config, read once for every generator
        from augmentor.generative.transfer import init_config_any

        init = init_config_any(config.gen_init)
        width, init_kind = int(init["model_args"]["width"]), init.get("kind")
    return GeneratorOptions(
        steps=config.gen_steps,
        width=width,
        device=config.device,
        min_confidence=config.min_confidence,
        init=config.gen_init,
        init_kind=init_kind,
        ada_target=config.gen_ada_target,
        augment=config.gen_augment,
        beta=config.gen_beta,
        flip=config.flip,
        quality_steps=config.quality_steps,
        budgets=tuple(sorted(set(config.gen_budgets))),
        density_quality=any(spec.kind == "vae-density" for arm in parse_arms(config.arms) for spec in arm.sources),
    )


def check_init_unseen(config: GainConfig, train: ImageSet, test: ImageSet | None, src: str) -> None:
    """The leakage rule for ``--gen-init``: its run must not have been trained on this dataset's train split
    (which holds the validation images) or its test split; say where the generators start from."""
    if config.gen_init is None:
        return
    from augmentor.generative.transfer import check_unseen, init_config_any

    splits = {"train": fingerprint(train), **({"test": fingerprint(test)} if test is not None else {})}
    check_unseen(config.gen_init, splits)
    init = init_config_any(config.gen_init)
    seen = (init.get("dataset") or {}).get("images", "?")
    warn(
        f"every generator starts from {config.gen_init} (trained on {seen} images, none of them {src}'s train or "
        "test split by fingerprint); it must never have seen this dataset's validation or test images"
    )
    warn_prior_after_low_beta(config, init)


PRIOR_SAMPLING = ("vae", "vae-gated")  # sources that decode codes drawn from the VAE's N(0, I) prior


def warn_prior_after_low_beta(config: GainConfig, init: dict) -> None:
    """A VAE fine-tuned briefly from a run of KL weight β < 1 decodes its prior codes poorly (its codes sit far
    from N(0, I)): on grey crops from the β 0.1 Fashion-MNIST VAE, prior samples scored CAS 43.6 % on validation
    against 94.3 % for the real images. Say so when an arm samples the prior; vae-density samples where the codes
    are."""
    from augmentor.generative.kinds import KINDS

    kind = KINDS.get(init.get("kind"))
    beta = (init.get("training") or {}).get("beta", 1.0)  # a KL weight only where the kind encodes (a VAE)
    prior_arms = [arm.name for arm in parse_arms(config.arms) if any(s.kind in PRIOR_SAMPLING for s in arm.sources)]
    if kind is not None and kind.can_encode and beta < 1 and prior_arms:
        warn(
            f"{config.gen_init} was trained with KL weight β {beta:g}: VAEs fine-tuned from it often decode prior "
            f"codes to noise, and {', '.join(prior_arms)} sample the prior; prefer vae-density (codes fitted to "
            "the encoded images), or watch the report's CAS on validation"
        )


def classic_baseline(arms: list[Arm], config: GainConfig) -> str | None:
    """The arm every other one is compared to as ``classic``: the first classic-only arm with hard labels."""
    for arm in arms:
        if arm.classic_only and (arm.labels or config.labels) == "hard":
            return arm.name
    return None


def primary_arm(arms: list[Arm]) -> str | None:
    """The arm the report's claim is about: the first one with a generative source."""
    for arm in arms:
        if arm.sources and not arm.classic_only:
            return arm.name
    return None


def _train_config(config: GainConfig, seed: int, presentations: int, finetune: bool) -> TrainConfig:
    from augmentor.classifiers.train import TrainConfig

    return TrainConfig(
        arch=config.arch,
        batch_size=config.batch_size,
        lr=config.lr,
        seed=seed,
        device=config.device,
        evals=1,
        flip=config.flip,
        real_presentations=presentations,
        finetune_real=config.finetune_real if finetune else 0.0,
    )


def _scores(classifier: Classifier, scored: ImageSet) -> dict[str, Any]:
    scores = classifier.evaluate(scored)
    return {
        "accuracy": scores["accuracy"],
        "per_class_accuracy": list(scores["per_class"].values()),  # in class order, as summarise reads them
    }


@dataclass
class Trained:
    """A classifier trained ahead of its record (in a group): what its run record needs besides its scores."""

    classifier: Classifier
    seconds: float  # its own pool's time plus its share of the group's training
    extra: dict[str, Any]


class DrawRunner:
    """Trains every arm of one (N, draw) on the same real subset, at the same real exposure."""

    def __init__(self, config: GainConfig, splits: Splits, models: SubsetModels, workers: int) -> None:
        self.config, self.splits, self.models, self.workers = config, splits, models, workers
        # A draw's pool images by (sources, size): arms that differ only in labelling (`classic` and
        # `classic@soft`) get the same images from the same seed, so they are made once per draw.
        self.pool_images: dict[tuple, ImageSet] = {}
        # Off for the rest of the study at the first CannotGroup: its causes (architecture, shapes) hold in
        # every draw, so one warning says it all.
        self.grouped = config.grouping()

    def run(self, n: int, seed: int, arms: list[Arm], advance) -> tuple[list[dict], list[dict]]:
        """Every arm's run record (and, when asked, this draw's budget-curve points)."""
        from augmentor.classifiers.mixing import step_plan
        from augmentor.classifiers.train import train_classifier

        config, splits = self.config, self.splits
        real = splits.pool.take(stratified_indices(splits.pool, n, seed))
        batch_size = min(config.batch_size, len(real))
        presentations = config.presentations(n, len(real))
        base = {"per_class": n, "seed": seed, "real_fingerprint": fingerprint(real)}
        base["real_presentations"] = presentations
        runs: list[dict[str, Any]] = []

        def record(arm: Arm, share: float, classifier: Classifier, seconds: float, **extra: Any) -> None:
            """``seconds``: the run's time before scoring; its scoring time is added."""
            scoring = time.perf_counter()
            scores = _scores(classifier, splits.scored)
            runs.append(
                {
                    **base,
                    "arm": arm.name,
                    "synthetic_share": share,
                    "steps": classifier.config["training"]["steps"],
                    **extra,
                    **scores,
                    "seconds": round(seconds + time.perf_counter() - scoring, 2),
                }
            )
            advance(1)

        started = time.perf_counter()
        teacher = train_classifier(real, _train_config(config, seed, presentations, finetune=False))
        self.models.remember_teacher(real, teacher)
        record(arms[0], 0.0, teacher, time.perf_counter() - started, labels=None)
        # Each share's (real, synthetic) images per step, planned once: the pool's size and real-long's steps.
        plans = {s: step_plan(presentations, batch_size, s, config.finetune_real) for s in config.synthetic_share}
        long_steps = max(len(real_counts) for real_counts, _ in plans.values())
        augmented = [arm for arm in arms[1:] if not arm.long]
        together = self.train_groups(real, teacher, augmented, plans, seed, presentations) if self.grouped else {}
        for arm in arms[1:]:
            if arm.long:
                started = time.perf_counter()
                classifier = train_classifier(real, _train_config(config, seed, long_steps * batch_size, False))
                record(arm, 0.0, classifier, time.perf_counter() - started, labels=None)
                continue
            for share in config.synthetic_share:
                if (arm.name, share) in together:
                    done = together[(arm.name, share)]
                    record(arm, share, done.classifier, done.seconds, **done.extra)
                    continue
                started = time.perf_counter()
                pool = self.synthetic_pool(arm, real, teacher, int(plans[share][1].sum()), share, seed)
                train_config = _train_config(config, seed, presentations, finetune=True)
                classifier = train_classifier(real, train_config, synthetic=pool)
                labels = arm.labels or config.labels
                record(
                    arm, share, classifier, time.perf_counter() - started, labels=labels, pool_images=len(pool.images)
                )
        curve = self.budget_curve(real, seed, presentations, teacher, advance) if self.curve_wanted(seed) else []
        self.models.release(real)
        self.pool_images.clear()
        return runs, curve

    def train_groups(
        self,
        real: ImageSet,
        teacher: Classifier,
        arms: list[Arm],
        plans: dict[float, tuple[np.ndarray, np.ndarray]],
        seed: int,
        presentations: int,
    ) -> dict[tuple[str, float], Trained]:
        """The augmented ``arms`` of each share trained together, by (arm, share): at one share they share the
        config and the step plan, so ``train_together`` trains each as ``train_classifier`` would. Empty (train
        one at a time) for fewer than two arms, or when the runs cannot be grouped (warned once, then off)."""
        from augmentor.classifiers.grouped import CannotGroup, train_together

        config, trained = self.config, {}
        if len(arms) < 2:  # a group of one launches what one run does: nothing to gain
            return trained
        train_config = _train_config(config, seed, presentations, finetune=True)
        for share, (_, synthetic_counts) in plans.items():
            pools, pool_seconds = [], []
            for arm in arms:
                started = time.perf_counter()
                pools.append(self.synthetic_pool(arm, real, teacher, int(synthetic_counts.sum()), share, seed))
                pool_seconds.append(time.perf_counter() - started)
            started = time.perf_counter()
            try:
                classifiers = train_together([real] * len(arms), [train_config] * len(arms), pools)
            except CannotGroup as error:
                warn(f"--grouped: {error.message}")
                self.grouped = False
                return trained
            # The group's training time split evenly: K runs of the same steps cost the group about alike.
            each = (time.perf_counter() - started) / len(arms)
            for arm, pool, classifier, seconds in zip(arms, pools, classifiers, pool_seconds, strict=True):
                extra = {"labels": arm.labels or config.labels, "pool_images": len(pool.images), "grouped": True}
                trained[(arm.name, share)] = Trained(classifier, seconds + each, extra)
        return trained

    def synthetic_pool(
        self, arm: Arm, real: ImageSet, teacher: Classifier, drawn: int, share: float, seed: int
    ) -> SyntheticPool:
        """The arm's pool for one run: as many images as the run draws, labelled hard or by the teacher."""
        from augmentor.classifiers.mixing import SyntheticPool, soft_targets
        from augmentor.synthetic.mixing_sources import mixed_targets

        config = self.config
        key = (tuple((spec.text, spec.gated) for spec in arm.sources), drawn, seed)
        if key not in self.pool_images:
            self.pool_images[key] = arm.pool(real, drawn, seed, self.models, self.workers, flip=config.flip)
        images = self.pool_images[key]
        intended = mixed_targets(images)  # one-hot, or a mixup/CutMix image's mixed target
        if (arm.labels or config.labels) == "soft":
            proba = teacher.proba(images, temperature=config.temperature).numpy()
            targets = soft_targets(proba, intended, config.teacher_share)
        else:
            targets = intended
        return SyntheticPool(images.images, targets, share, config.synthetic_weight)

    def curve_wanted(self, seed: int) -> bool:
        return self.config.budget_curve and seed - self.config.seed(0) < self.config.curve_draws

    def budget_curve(self, real: ImageSet, seed: int, presentations: int, teacher, advance) -> list[dict]:
        """The real-only classifier's validation accuracy at each multiple of the budget (1×: the real arm)."""
        from augmentor.classifiers.train import train_classifier

        points = []
        for multiplier in CURVE_MULTIPLIERS:
            amount = max(1, round(presentations * multiplier))
            if multiplier == 1.0:
                classifier = teacher
            else:
                classifier = train_classifier(real, _train_config(self.config, seed, amount, finetune=False))
                advance(1)
            points.append(
                {
                    "per_class": len(real) // len(real.class_names),
                    "seed": seed,
                    "multiplier": multiplier,
                    "real_epochs": round(amount / len(real), 3),
                    "steps": classifier.config["training"]["steps"],
                    "accuracy": classifier.evaluate(self.splits.validation)["accuracy"],
                }
            )
        return points


def _epochs_used(config: GainConfig) -> dict[int, float] | None:
    """Passes over the real subset per N (None: the budget was given in steps)."""
    return None if config.budget is not None else {n: config.epochs_at(n) for n in config.per_class}


def trainings(config: GainConfig, arms: list[Arm], draw: int) -> int:
    """Classifier trainings of one (N, draw): one per arm and share, and the budget curve's extra points."""
    count = sum(1 if not arm.sources else len(config.synthetic_share) for arm in arms)
    if config.budget_curve and draw < config.curve_draws:
        count += len(CURVE_MULTIPLIERS) - 1
    return count


def draw_cost(config: GainConfig, arms: list[Arm], n: int, draw: int, real_images: int) -> float:
    """A (N, draw) job's training work in real-image presentations, so torchrun ranks get equal shares."""
    shares = len(config.synthetic_share)
    runs = 1.0 + sum(2.0 * (1 if arm.long else shares) for arm in arms[1:])  # augmented arms: ~2× the steps
    if config.budget_curve and draw < config.curve_draws:
        runs += sum(CURVE_MULTIPLIERS) - 1.0
    return runs * config.presentations(n, real_images)


def run_experiment(splits: Splits, config: GainConfig, *, command: str = "", source: str = "") -> GainResult:
    """Every arm at every N and draw, in memory: the runs, the summary and the budget curve.

    Under torchrun each (N, draw) is one job on one rank (``distributed.jobs``); a draw's numbers depend
    only on its seed, so the gathered result is the single-process result.
    """
    from augmentor.distributed.jobs import assign, run_jobs

    arms = parse_arms(config.arms)

    def real_steps(real: ImageSet) -> int:  # the real-only arm's optimiser steps on this subset
        per_class = len(real) // max(1, len(splits.class_names))
        return max(1, -(-config.presentations(per_class, len(real)) // min(config.batch_size, len(real))))

    test = splits.scored if splits.scored_on == "test" else None  # the generators' CAS is read there too
    models = SubsetModels(generator_options(config), validation=splits.validation, real_steps=real_steps, test=test)
    runner = DrawRunner(config, splits, models, config.workers or default_workers())
    jobs = [(n, draw) for n in config.per_class for draw in range(config.draws)]
    classes = len(splits.class_names)
    costs = [draw_cost(config, arms, n, draw, n * classes) for n, draw in jobs]
    context = current()
    owners = assign(costs, context.world_size)  # the bar counts this rank's trainings (rank 0 shows it)
    mine = sum(
        trainings(config, arms, draw) for (_, draw), rank in zip(jobs, owners, strict=True) if rank == context.rank
    )
    title = "gain experiment"
    if context.distributed:  # the bar counts rank 0's own trainings: say so, with the whole study's count
        total = sum(trainings(config, arms, draw) for _, draw in jobs)
        title += f" (rank {context.rank}'s share: {mine} of {total} trainings on {context.world_size} ranks)"
    with progress(title, mine) as advance:

        def run_draw(job: tuple[int, int]) -> tuple[list[dict], list[dict], list[dict], float]:
            logged, started = len(models.log), time.perf_counter()
            draw_runs, draw_curve = runner.run(job[0], config.seed(job[1]), arms, advance)
            return draw_runs, draw_curve, models.log[logged:], time.perf_counter() - started

        done = run_jobs(jobs, run_draw, costs=costs)
    runs = [run for draw_runs, _, _, _ in done for run in draw_runs]
    curve_runs = [point for _, draw_curve, _, _ in done for point in draw_curve]
    generator_log = [entry for _, _, entries, _ in done for entry in entries]
    samples = _first_samples(generator_log)
    total_cost = sum(costs)
    job_log = [
        {"per_class": n, "draw": draw, "rank": rank, "cost_share": round(cost / total_cost, 4), "seconds": round(t, 2)}
        for (n, draw), rank, cost, (_, _, _, t) in zip(jobs, owners, costs, done, strict=True)
    ]
    baseline = classic_baseline(arms, config)
    result = GainResult(
        config={
            **{k: v for k, v in asdict(config).items() if k != "given"},  # the values used are there
            "source": source,
            "scored_on": splits.scored_on,
            "scored_images": len(splits.scored),
            "validation_images": len(splits.validation),
            "validation_rule": splits.validation_rule,
            "seed_first": config.seed(0),
            "classic_baseline": baseline,
            "primary_arm": primary_arm(arms),
            "real_epochs_used": _epochs_used(config),
            "grouped": config.grouping(),  # the setting, auto resolved; each run says whether it trained grouped
            "grouped_runs": sum(bool(run.get("grouped")) for run in runs),
            "command": command,
        },
        runs=runs,
        curve_runs=curve_runs,
        curve=summarise_curve(curve_runs),
        generators=generator_log,
        summary=summarise(runs, splits.class_names, baseline),
        jobs=job_log,
        samples=samples,
    )
    return result


def _first_samples(generator_log: list[dict[str, Any]]) -> dict[str, bytes]:
    """Each generator kind's sample picture at each subset size, from its first draw (the log is in job order);
    the pictures are taken out of the log, which goes to JSON."""
    samples: dict[str, bytes] = {}
    for entry in generator_log:
        picture = entry.pop(SAMPLES_KEY, None)
        name = f"samples-{entry['kind']}-{entry['images']}.png"
        if picture is not None and name not in samples:
            samples[name] = picture
    return samples


# The classic control when --arms is not given: the preset `augmentor study` tuned best on validation draws on
# 5 of the 6 committed studies (docs/study), where the old default (`medium`) cost 2.8 to 5 points on small folders.
DEFAULT_CLASSIC = "classic:light"


def with_recipe(config: GainConfig) -> GainConfig:
    """``config`` with what it leaves open taken from its recipe: the arms (the controls and the recipe's arm),
    the share, and the generators' settings where they are at their defaults."""
    if config.arms and config.synthetic_share:
        return config
    recipe = load_recipe(config.recipe)
    controls = ["real", "real-long"] + ([] if recipe.classic_only else [DEFAULT_CLASSIC])
    defaults = GainConfig()

    def kept(name: str) -> bool:  # the user's value: given, or not the default
        return name in config.given or getattr(config, name) != getattr(defaults, name)

    return replace(
        config,
        arms=config.arms or ",".join([*controls, recipe.arm]),
        synthetic_share=config.synthetic_share or (recipe.share,),
        **{name: getattr(config if kept(name) else recipe, name) for name in RECIPE_GENERATOR_FIELDS},
    )


# The generator settings a recipe file records (``Recipe``'s fields of the same names).
RECIPE_GENERATOR_FIELDS = ("gen_steps", "gen_width", "gen_init", "gen_augment", "gen_ada_target", "gen_beta")


def run_gain(
    src: str,
    config: GainConfig,
    out: Path,
    *,
    read_options: ReadOptions | None = None,
    overwrite: bool = False,
    command: str = "",
) -> GainResult:
    """Run every arm at every N and draw; write ``report.md``, ``results.json`` and plots to ``out``."""
    config = with_recipe(config)
    config.validate()
    parse_arms(config.arms)  # a bad arm is an error before any data is read
    check_output(out, overwrite, source=src)
    dataset = open_dataset(src, read_options or ReadOptions())
    config, rule = fit_to_data(config, dataset.train, src)
    check_init_unseen(config, dataset.train, dataset.test, src)
    splits = split_data(dataset.train, dataset.test, config, src, rule)
    check_plan(splits, config)
    result = run_experiment(splits, config, command=command, source=src)
    if current().is_main:  # every rank holds the gathered result; one writes it
        write_report(out, result, splits.class_names, overwrite)
    return result


def _key(run: dict[str, Any]) -> tuple[str, float]:
    return run["arm"], run["synthetic_share"]


def summarise(runs: list[dict[str, Any]], class_names: list[str], classic: str | None = None) -> list[dict[str, Any]]:
    """Per (N, arm, share): mean ± CI, paired comparisons to ``real`` and to the ``classic`` baseline (t-interval,
    Wilcoxon, probability of improvement, Holm across the arms of each N), per-class accuracy and deltas."""
    rows = []
    for n in sorted({r["per_class"] for r in runs}):
        at_n = [r for r in runs if r["per_class"] == n]
        by_seed = {(r["seed"], *_key(r)): r for r in at_n}
        classic_shares = sorted({r["synthetic_share"] for r in at_n if r["arm"] == classic})
        n_rows = []
        for arm, share in dict.fromkeys(_key(r) for r in at_n):
            mine = sorted((r for r in at_n if _key(r) == (arm, share)), key=lambda r: r["seed"])
            row: dict[str, Any] = {
                "per_class": n,
                "arm": arm,
                "synthetic_share": share,
                "steps": mine[0]["steps"],
                "accuracy": mean_ci([r["accuracy"] for r in mine]),
                "per_class_accuracy": {
                    name: sum(r["per_class_accuracy"][k] for r in mine) / len(mine)
                    for k, name in enumerate(class_names)
                },
            }
            baselines = {"real": ("real", 0.0)}
            if classic is not None and classic_shares:
                baselines["classic"] = (classic, share if share in classic_shares else classic_shares[0])
            for label, key in baselines.items():
                pairs = [(r, by_seed.get((r["seed"], *key))) for r in mine]
                pairs = [(r, b) for r, b in pairs if b is not None]
                if not pairs or (arm, share) == key:
                    continue
                comparison = paired_comparison([r["accuracy"] - b["accuracy"] for r, b in pairs])
                comparison["baseline"] = key[0]
                comparison["per_class"] = {
                    name: sum(r["per_class_accuracy"][k] - b["per_class_accuracy"][k] for r, b in pairs) / len(pairs)
                    for k, name in enumerate(class_names)
                }
                row[f"vs_{label}"] = comparison
            n_rows.append(row)
        for label in ("real", "classic"):  # Holm across the arms compared to the same baseline at this N
            compared = [row[f"vs_{label}"] for row in n_rows if f"vs_{label}" in row]
            for comparison, adjusted in zip(compared, holm([c["p"] for c in compared]), strict=True):
                comparison["p_holm"] = adjusted
                comparison["verdict"] = verdict(comparison)
        rows += n_rows
    return rows


def summarise_curve(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (N, multiplier): validation accuracy mean ± CI over the curve's draws."""
    rows = []
    for n, multiplier in dict.fromkeys((p["per_class"], p["multiplier"]) for p in points):
        mine = [p for p in points if (p["per_class"], p["multiplier"]) == (n, multiplier)]
        rows.append(
            {
                "per_class": n,
                "multiplier": multiplier,
                "real_epochs": mine[0]["real_epochs"],
                "steps": mine[0]["steps"],
                "accuracy": mean_ci([p["accuracy"] for p in mine]),
            }
        )
    return rows


def write_report(out: Path, result: GainResult, class_names: list[str], overwrite: bool) -> Path:
    """``report.md``, ``results.json`` and the plots, atomically."""

    from augmentor.report.gain_report import report_files, report_warnings

    document = {
        "config": result.config,
        "summary": result.summary,
        "curve": result.curve,
        "runs": result.runs,
        "curve_runs": result.curve_runs,
        "generators": result.generators,
        "jobs": result.jobs,
    }
    files = {**report_files(result, class_names), "results.json": (jsonio.dumps(document, indent=2) + "\n").encode()}
    with staged_output(out, overwrite) as staging:
        for name, data in files.items():
            (staging / name).write_bytes(data)
    for note in report_warnings(result):  # the terminal says what report.md warns of
        warn(note)
    return out
