"""Arms of the gain experiment: the real subset, plus a pool of synthetic images from zero or more sources.

An arm is written ``real``, ``real-long``, ``classic``, ``classic:heavy``, ``vae``, ``dcgan-gated``,
``classic+dcgan`` or ``vae-jitter@soft`` (``@soft``/``@hard``: how its synthetic images are labelled).
Synthetic images are mixed into each batch at a fixed share (``classifiers.mixing``), never appended.
``+`` joins sources of ``synthetic.sources`` (the ones ``expand --with`` takes), built per real subset,
so every source makes images from the arm's real subset only (the honesty rule). Generators are trained
inside the experiment on that subset, once per (kind, subset), kept in memory and shared by the arms that
use them; a given ``dcgan:RUN`` is used only when its recorded dataset fingerprint is the subset's. The
``-gated`` variants keep a sample only when the ``real`` arm's classifier (trained on the same subset)
gives its label at least ``min_confidence`` (``synthetic.quota``'s gates and over-generation).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from augmentor.core.console import warn
from augmentor.core.errors import UserError
from augmentor.data.imageset import ImageSet, fingerprint
from augmentor.synthetic.quota import Gates, concat_all, fill_quota
from augmentor.synthetic.sources import SOURCES, SourceContext, SourceSpec, build_source, parse_source, stream_seed

if TYPE_CHECKING:
    from augmentor.classifiers.classifier import Classifier
    from augmentor.generative.generator import Generator


@dataclass(frozen=True)
class GeneratorOptions:
    """How the experiment trains a generator on each arm's real subset (the same for every arm)."""

    steps: int = 600
    width: int = 32
    batch_size: int = 64
    diffaugment: bool = True  # the subsets are small by design: DiffAugment keeps D from memorising them
    device: str = "auto"
    min_confidence: float = 0.5  # the gated arms' threshold
    judge_steps: int = 300  # the gated arms' classifier: the experiment's own step budget
    init: str | None = None  # a run the generators of its kind start from (``generative.transfer``), None: scratch
    init_kind: str | None = None  # that run's kind (read once): the other kind trains from scratch
    ada_target: float | None = None  # adaptive DiffAugment for the DCGANs (its target), None: fixed DiffAugment
    augment: str | None = None  # every generator trains on classic-augmented copies too (a preset), None: not
    flip: bool = True  # False: those copies are never mirrored
    beta: float = 0.1  # the VAEs' KL weight (``GenerativeConfig.beta``)
    # Steps of each generator's CAS classifier (and its real twin), scored on the validation split: None the
    # real-only arm's budget at that N (``SubsetModels.real_steps``), 0 off.
    quality_steps: int | None = None
    quality_per_class: int = 50  # samples per class the CAS classifier trains on
    # Also judge a VAE's samples from codes fitted to the subset's encodings (an arm uses ``vae-density``): its
    # prior samples say little of what those arms mixed in.
    density_quality: bool = False
    # Candidate generator budgets (steps): each generator trains to the largest and keeps the one whose samples'
    # CAS on the validation split is best (``SubsetModels``); (): ``steps``, fixed.
    budgets: tuple[int, ...] = ()

    @property
    def train_steps(self) -> int:
        """How long each generator trains: the largest candidate budget, else ``steps``."""
        return max(self.budgets) if self.budgets else self.steps


class SubsetModels:
    """The generators and judges of each real subset, trained on it alone, once, and kept in memory."""

    def __init__(
        self,
        options: GeneratorOptions,
        validation: ImageSet | None = None,
        real_steps: Callable[[ImageSet], int] | None = None,
        test: ImageSet | None = None,
    ) -> None:
        self.options = options
        self.validation = validation  # where each generator's samples are judged (never the test split)
        # Where the same CAS classifiers are also read, for the report only (nothing is chosen on it): the test
        # split of a run scored on test, else None.
        self.test = test
        self.real_steps = real_steps  # the real-only arm's step budget on a subset
        self.cache: dict[tuple[str, str], Generator | Classifier | None] = {}
        self.log: list[dict] = []  # each generator trained, with its last losses and quality
        # Per subset: the CAS recipe trained on the real images instead, read where the samples' CAS is.
        self.real_scores: dict[str, dict[str, float]] = {}
        self.pictured: set[tuple[str, int]] = set()  # (kind, subset size) whose samples picture is made

    def generator(self, kind: str | None, run: str | None, real: ImageSet, seed: int) -> Generator:
        """A ``kind`` model of ``real``: the given run (checked to be trained on ``real``) or one trained now."""
        from augmentor.generative.generator import Generator

        real_print = fingerprint(real)
        if run is not None:
            generator = Generator.from_run(Path(run))
            if generator.fingerprint != real_print:
                raise UserError(
                    f"{run}: this generator was trained on other images than the arm's real subset; the gain "
                    f"experiment only uses generators trained on that subset (drop the run to train one in place)"
                )
            return generator
        if kind is None:
            raise UserError("--arms: an edit source needs a run folder; the gain experiment does not train one")
        # One generator per (kind, subset): `vae`, `classic+vae` and `vae-gated` share it, trained with the
        # experiment's seed whichever arm asked first.
        key = (kind, real_print)
        if key not in self.cache:
            self.cache[key] = self._train(kind, real, seed)
        return self.cache[key]

    def remember_teacher(self, real: ImageSet, classifier: Classifier) -> None:
        """The ``real`` arm's classifier of ``real``: the soft labels' teacher and the gated arms' judge."""
        self.cache[("judge", fingerprint(real))] = classifier

    def release(self, real: ImageSet) -> None:
        """Forget the models of ``real`` once its draw is done (a study holds one draw's models at a time)."""
        real_print = fingerprint(real)
        self.cache = {key: model for key, model in self.cache.items() if key[1] != real_print}
        self.real_scores.pop(real_print, None)

    def judge(self, real: ImageSet, seed: int) -> Classifier | None:
        """The gated arms' classifier of ``real`` alone (None for one class): the teacher, else one trained now."""
        from augmentor.synthetic.gates import train_judge

        key = ("judge", fingerprint(real))
        if key not in self.cache:
            o = self.options
            self.cache[key] = train_judge(real, steps=o.judge_steps, seed=seed, device=o.device)
        return self.cache[key]

    def _train(self, kind: str, real: ImageSet, seed: int) -> Generator:
        from augmentor.generative.kinds import get_kind
        from augmentor.generative.train import GenerativeConfig, train_generative

        o = self.options
        config = GenerativeConfig(
            kind=kind,
            steps=o.train_steps,
            width=o.width,
            batch_size=min(o.batch_size, len(real)),
            diffaugment=o.diffaugment and get_kind(kind).adversarial,  # it augments what a discriminator sees
            ada_target=o.ada_target if get_kind(kind).adversarial else None,
            seed=seed,
            device=o.device,
            sample_every=o.train_steps,
            log_every=o.train_steps,
            init=o.init if get_kind(kind).name == o.init_kind else None,
            augment=o.augment,
            flip=o.flip,
            beta=o.beta,
        )
        scores: dict[str, float | None] = {}  # each budget's CAS on validation
        kept: list = []  # [step, generator, quality] of the best budget so far (one copy held, not one per budget)

        def judge_budget(step: int, generator: Generator) -> None:
            quality = self._quality(generator, real, seed)
            scores[str(step)] = budget_score(quality)
            # Budgets arrive in step order: a later one is kept only when strictly better (a tie keeps the shorter).
            if not kept or (scores[str(step)] or 0.0) > (budget_score(kept[2]) or 0.0):
                kept[:] = [step, generator, quality]

        # Kept in memory: no run folder is written.
        result = train_generative(real, config, in_gain=True, budget_points=o.budgets, on_budget_point=judge_budget)
        generator, quality, chosen = result.generator, None, {}
        if kept:
            step, generator, quality = kept
            judged_by = "density codes" if "cas_validation_density" in quality else "prior samples"
            chosen = {"budget_steps": step, "budget_cas_validation": scores, "budget_judged_by": judged_by}
            # The per-class collapse check of the budget kept (training judged each budget and warned of none).
            collapse = next((m.get("class_collapse") for m in result.metrics if m["step"] == step), None)
            if collapse:
                warn(f"{kind} kept at {step} steps: {collapse}")
        if generator.fingerprint != fingerprint(real):  # the honesty rule, checked
            raise UserError(f"internal: the {kind} was not trained on the arm's subset")
        self.log.append(
            {
                "kind": kind,
                "seed": seed,
                "images": len(real),
                "fingerprint": fingerprint(real),
                **generator.size_record,
                **result.metrics[-1],
                **(quality if quality is not None else self._quality(generator, real, seed)),
                **chosen,
                **self._picture(generator, real, seed, kind),
            }
        )
        return generator

    def _picture(self, generator: Generator, real: ImageSet, seed: int, kind: str) -> dict[str, bytes]:
        """The samples picture of the first generator of each kind and subset size (the report shows one)."""
        if (kind, len(real)) in self.pictured:
            return {}
        self.pictured.add((kind, len(real)))
        return {SAMPLES_KEY: samples_picture(generator, real, seed, kind)}

    def _quality(self, generator: Generator, real: ImageSet, seed: int) -> dict[str, float]:
        """Why an arm helps or not, on the validation split: the CAS (a classifier trained on the generator's
        samples alone) beside the same classifier trained on the real subset, and the samples' diversity beside
        the subset's (mean pairwise SSIM: higher is more alike). In a run scored on test the same classifiers
        are read on test too (``*_test``: reported, never chosen on). The global RNG is left as it was, so the
        arms train exactly as they would without these measures."""
        import torch

        from augmentor.data.measures import mean_pairwise_ssim
        from augmentor.generative.generator import balanced_labels
        from augmentor.latent.density import fitted_samples
        from augmentor.metrics.quality import classification_accuracy_scores

        o = self.options
        steps = o.quality_steps if o.quality_steps is not None else (self.real_steps(real) if self.real_steps else 0)
        if self.validation is None or steps <= 0 or not generator.conditional:
            return {}
        settings = {"steps": steps, "seed": seed, "device": o.device}
        labels = balanced_labels(len(real.class_names), o.quality_per_class)
        splits = {"validation": self.validation, **({"test": self.test} if self.test is not None else {})}

        def cas(images: ImageSet, name: str, suffix: str = "") -> dict[str, float]:
            scores = classification_accuracy_scores(images, list(splits.values()), **settings)
            return {f"{name}_{split}{suffix}": round(v, 4) for split, v in zip(splits, scores, strict=True)}

        density: dict[str, float] = {}
        with torch.random.fork_rng(devices=[]):
            samples = generator.generate(labels, seed + 1)
            prior = cas(samples, "cas")
            key = fingerprint(real)
            if key not in self.real_scores:
                self.real_scores[key] = cas(real, "real_accuracy")
            if o.density_quality and generator.can_encode:
                coded = fitted_samples(generator, real, labels, 1.0, seed + 1, o.device)  # vae-density at T 1
                density = {
                    **cas(coded, "cas", "_density"),
                    "samples_diversity_ssim_density": round(mean_pairwise_ssim(coded.images), 4),
                }
        return {
            **prior,
            **self.real_scores[key],
            "samples_diversity_ssim": round(mean_pairwise_ssim(samples.images), 4),
            "real_diversity_ssim": round(mean_pairwise_ssim(real.images), 4),
            **density,
        }


def budget_score(quality: dict[str, float]) -> float | None:
    """What a candidate budget is judged by: the CAS of the samples the arms mix in. A VAE that a vae-density
    arm uses is judged on its density codes (after a warm start its prior samples can be noise while its
    density codes are good); every other generator on its prior samples."""
    return quality.get("cas_validation_density", quality.get("cas_validation"))


SAMPLES_KEY = "samples_png"  # a log entry's picture of its generator's samples (taken out before JSON)
SAMPLE_COLUMNS = 8


def samples_picture(generator: Generator, real: ImageSet, seed: int, kind: str) -> bytes:
    """One row per class (at most 10): a real image of the subset first, then the generator's samples, so a
    reader of the report sees what each generator arm mixed in (and a collapsed class at a glance)."""
    from augmentor.generative.generator import balanced_labels
    from augmentor.report.grids import grid_png

    classes = min(len(real.class_names), 10)
    per_class = SAMPLE_COLUMNS - 1
    labels = balanced_labels(len(real.class_names), per_class)
    if not generator.conditional:
        labels = np.zeros_like(labels)
    made = generator.generate(labels, seed, device="cpu")
    rows, names = [], []
    for label in range(classes):
        own = np.flatnonzero(real.labels == label)
        samples = made.images[made.labels == label][:per_class] if generator.conditional else made.images[:per_class]
        if len(own) == 0 or len(samples) == 0:
            continue
        rows.append([real.images[own[0]], *samples])
        names.append(real.class_names[label])
    per = len(real) // max(1, len(real.class_names))
    title = f"{kind} trained on {len(real):,} real images (~{per}/class), seed {seed}: a real image, then samples"
    return grid_png(rows, gap_after_first=True, row_labels=names, title=title)


LABEL_MODES = ("hard", "soft")
REAL_LONG = "real-long"  # the control: real images only, for as many steps as the augmented arms take


@dataclass(frozen=True)
class Arm:
    """One arm: its name as written, its synthetic sources (none for ``real`` and ``real-long``) and how
    their images are labelled (``None``: the experiment's ``--labels``; ``@soft``/``@hard`` override it)."""

    name: str
    sources: tuple[SourceSpec, ...]
    labels: str | None = None

    @property
    def long(self) -> bool:
        """The ``real-long`` control: real images only, at the augmented arms' step count."""
        return self.name == REAL_LONG

    @property
    def classic_only(self) -> bool:
        """Every source is classic albumentations or a mix of real images (a candidate ``classic`` baseline)."""
        from augmentor.synthetic.sources import CLASSIC_KINDS

        return bool(self.sources) and all(spec.kind in CLASSIC_KINDS for spec in self.sources)

    def pool(
        self, real: ImageSet, size: int, seed: int, models: SubsetModels, workers: int = 1, flip: bool = True
    ) -> ImageSet:
        """At least ``size`` synthetic images of ``real``'s classes, evenly over the classes and sources
        (``flip=False``: classic pipelines without their mirroring transforms, as ``gain --no-flip`` asks).

        The pool is made once per (arm, draw): every image the classifier draws is then a fresh one.
        """
        classes = len(real.class_names)
        per_class = max(1, -(-size // (classes * len(self.sources))))  # ceil: the pool is never short
        quota = np.full(classes, per_class, np.int64)
        options = models.options
        synthetic = []
        for k, spec in enumerate(self.sources):
            # Each source draws from its own seed stream, so adding a source leaves the others' images alone.
            context = SourceContext(
                real,
                stream_seed(seed, k),
                lambda kind, run: models.generator(kind, run, real, seed),
                workers=workers,
                device=options.device,
                flip=flip,
            )
            gates = (
                Gates(real, options.min_confidence, judge=models.judge(real, seed), device=options.device)
                if spec.gated
                else Gates(real, device=options.device)
            )
            images, _ = fill_quota(build_source(spec, context), quota, gates)
            synthetic.append(images)
        return concat_all(synthetic[0], synthetic[1:])


def parse_arm(text: str) -> Arm:
    """``real`` | ``real-long`` | ``SOURCE[:ARG][+SOURCE[:ARG]…][@soft|@hard]`` (sources as ``expand --with``)."""
    text = text.strip()
    if text in ("real", REAL_LONG):
        return Arm(text, ())
    body, at, mode = text.rpartition("@")
    labels = None
    if at and mode in LABEL_MODES:
        text_sources, labels = body, mode
    else:
        text_sources = text
    specs = [parse_source(part, where="--arms", allow_gated=True, need_run=False) for part in text_sources.split("+")]
    return Arm(text, tuple(specs), labels)


def parse_arms(text: str) -> list[Arm]:
    """A comma-separated list of arms; ``real`` is always there and first (every difference is paired to
    it, and its classifier is the soft labels' teacher and the gated arms' judge)."""
    arms = [parse_arm(t) for t in text.split(",") if t.strip()]
    names = [a.name for a in arms]
    if len(set(names)) != len(names):
        raise UserError(f"--arms {text!r} names an arm twice")
    return [Arm("real", ()), *(a for a in arms if a.name != "real")]


def check_arms(arms: list[Arm], subsets: list[ImageSet], options: GeneratorOptions) -> None:
    """Everything an arm will need, checked before the first training (a bad arm used to surface minutes in,
    at the first draw that built it): each classic pipeline loaded and run on two of the images, each
    generator kind's image size, each named run loaded and matched against every draw's real subset."""
    from augmentor.classic.expand import augment
    from augmentor.classic.pipelines import load_pipeline
    from augmentor.generative.generator import Generator
    from augmentor.generative.layers import ladder

    first = subsets[0]
    probe = first.take(np.arange(min(len(first), 2)))
    height, width = first.size
    for arm in arms:
        for spec in arm.sources:
            try:
                if spec.kind == "classic":
                    pipeline = load_pipeline(spec.arg or "medium", image_shape=(height, width, first.channels))
                    augment(probe, pipeline, np.arange(len(probe)), 0)
                    continue
                source = SOURCES[spec.kind]
                if not source.uses_model:  # a mix of real images: its ALPHA was checked when parsed
                    continue
                run, kind = source.run_in(spec), source.model_kind(spec)
                if run is None and kind is None:
                    raise UserError("an edit source needs a run folder; the gain experiment does not train one")
                if run is None:  # trained in place: the generative models' sizes
                    if height != width:
                        raise UserError(f"generative models take square images, got {height}×{width}")
                    ladder(height, options.width)
                    continue
                trained_on = Generator.from_run(Path(run)).fingerprint
                if any(fingerprint(subset) != trained_on for subset in subsets):
                    raise UserError(
                        f"{run} was trained on other images than the draws' real subsets; the gain experiment "
                        "only uses generators trained on the arm's subset (drop the run to train one in place)"
                    )
            except UserError as exc:
                raise UserError(f"--arms {arm.name}: {exc.message}") from None
