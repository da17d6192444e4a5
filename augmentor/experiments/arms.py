"""Arms of the gain experiment: the real subset plus synthetic images from zero or more sources.

An arm is written ``real``, ``classic``, ``classic:heavy``, ``vae``, ``dcgan-gated`` or ``classic+dcgan``:
``+`` joins sources of ``synthetic.sources`` (the ones ``expand --with`` takes), built per real subset, so
every source makes images from the arm's real subset only (the honesty rule). Generators are trained
inside the experiment on that subset, once per (kind, subset), kept in memory and shared by the arms that
use them; a given ``dcgan:RUN`` is used only when its recorded dataset fingerprint is the subset's. The
``-gated`` variants keep a sample only when a classifier trained on the same real subset gives its label
at least ``min_confidence`` (``synthetic.quota``'s gates and over-generation, as in ``expand``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from augmentor.core.errors import UserError
from augmentor.data.imageset import ImageSet, fingerprint
from augmentor.synthetic.quota import Gates, concat_all, fill_quota
from augmentor.synthetic.sources import SourceContext, SourceSpec, build_source, parse_source, stream_seed

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


class SubsetModels:
    """The generators and judges of each real subset, trained on it alone, once, and kept in memory."""

    def __init__(self, options: GeneratorOptions) -> None:
        self.options = options
        self.cache: dict[tuple[str, str], Generator | Classifier | None] = {}
        self.log: list[dict] = []  # each generator trained, with its last losses

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

    def judge(self, real: ImageSet, seed: int) -> Classifier | None:
        """The gated arms' classifier of ``real`` alone (None for one class), at the experiment's budget."""
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
            steps=o.steps,
            width=o.width,
            batch_size=min(o.batch_size, len(real)),
            diffaugment=o.diffaugment and get_kind(kind).adversarial,  # it augments what a discriminator sees
            seed=seed,
            device=o.device,
            sample_every=o.steps,
            log_every=o.steps,
        )
        result = train_generative(real, config)  # kept in memory: no run folder is written
        if result.generator.fingerprint != fingerprint(real):  # the honesty rule, checked
            raise UserError(f"internal: the {kind} was not trained on the arm's subset")
        self.log.append({"kind": kind, "seed": seed, "images": len(real), **result.metrics[-1]})
        return result.generator


@dataclass(frozen=True)
class Arm:
    """One arm: its name as written and its synthetic sources (none for ``real``)."""

    name: str
    sources: tuple[SourceSpec, ...]

    def training_set(self, real: ImageSet, ratio: float, seed: int, models: SubsetModels, workers: int = 1) -> ImageSet:
        """The real subset plus ``ratio`` synthetic images per real one, split evenly over the sources."""
        if not self.sources:
            return real
        per_class_real = int(np.bincount(real.labels).max())
        per_source = max(1, round(per_class_real * ratio / len(self.sources)))
        quota = np.full(len(real.class_names), per_source, np.int64)
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
            )
            gates = (
                Gates(real, options.min_confidence, judge=models.judge(real, seed), device=options.device)
                if spec.gated
                else Gates(real, device=options.device)
            )
            images, _ = fill_quota(build_source(spec, context), quota, gates)
            synthetic.append(images)
        return concat_all(real, synthetic)


def parse_arm(text: str) -> Arm:
    """``real`` | ``SOURCE[:ARG]`` | ``SOURCE[:ARG]+SOURCE[:ARG]…`` (sources as ``expand --with`` takes them)."""
    text = text.strip()
    if text == "real":
        return Arm("real", ())
    specs = [parse_source(part, where="--arms", allow_gated=True, need_run=False) for part in text.split("+")]
    return Arm(text, tuple(specs))


def parse_arms(text: str) -> list[Arm]:
    """A comma-separated list of arms; ``real`` is always included (every difference is paired to it)."""
    arms = [parse_arm(t) for t in text.split(",") if t.strip()]
    names = [a.name for a in arms]
    if len(set(names)) != len(names):
        raise UserError(f"--arms {text!r} names an arm twice")
    if "real" not in names:
        arms.insert(0, Arm("real", ()))
    return arms
