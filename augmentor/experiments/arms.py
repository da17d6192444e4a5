"""Arms of the gain experiment: the real subset plus synthetic images from zero or more sources.

An arm is written ``real``, ``classic``, ``classic:heavy``, ``vae``, ``dcgan-gated`` or ``classic+dcgan``.
Sources are pluggable: ``SOURCES`` maps a name to a factory, and every source makes images from the arm's
real subset only (the honesty rule). Generators are trained inside the experiment on that subset, once per
(kind, subset) and shared by the arms that use them; a given ``dcgan:RUN`` is used only when its recorded
dataset fingerprint is the subset's. The ``-gated`` variants keep a sample only when a classifier trained
on the same real subset gives its label at least ``min_confidence``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from augmentor.core.errors import UserError
from augmentor.data.imageset import ImageSet, fingerprint


def stream_seed(seed: int, k: int) -> int:
    """The seed of source ``k`` of an arm in experiment seed ``seed``."""
    return seed * 1000 + k


def experiment_seed(stream: int) -> int:
    """The experiment seed a source's stream seed came from (generators are trained once per seed)."""
    return stream // 1000


class Source(Protocol):
    """Makes ``per_class`` synthetic images of every class from ``real`` (and nothing else)."""

    name: str

    def synthesize(self, real: ImageSet, per_class: int, seed: int, workers: int) -> ImageSet: ...


@dataclass(frozen=True)
class ClassicSource:
    """Albumentations copies of the real images, parents drawn evenly."""

    pipeline: str = "medium"

    @property
    def name(self) -> str:
        return "classic" if self.pipeline == "medium" else f"classic:{self.pipeline}"

    def synthesize(self, real: ImageSet, per_class: int, seed: int, workers: int) -> ImageSet:
        from augmentor.classic.expand import ClassicConfig, expand

        config = ClassicConfig(
            pipeline=self.pipeline, per_class=per_class, include_originals=False, seed=seed, workers=workers
        )
        return expand(real, config).augmented


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
    cache: dict = field(default_factory=dict, compare=False, hash=False, repr=False)
    log: list = field(default_factory=list, compare=False, hash=False, repr=False)


@dataclass(frozen=True)
class GenerativeSource:
    """Samples of a DCGAN or VAE trained on the arm's real subset only (or a given run, checked to be so)."""

    kind: str
    options: GeneratorOptions
    run: str | None = None
    gated: bool = False
    jitter: float | None = None  # sigma: jittered encodings of the real subset instead of fresh samples

    @property
    def name(self) -> str:
        base = self.kind + ("-gated" if self.gated else "") + ("-jitter" if self.jitter is not None else "")
        return f"{base}:{self.run}" if self.run else base

    def synthesize(self, real: ImageSet, per_class: int, seed: int, workers: int) -> ImageSet:
        from augmentor.generative.generator import balanced_labels

        generator = self._generator(real, seed)
        if self.jitter is not None:
            from augmentor.latent.jitter import jitter

            return jitter(generator, real, per_class, sigma=self.jitter, seed=seed, device=self.options.device)
        labels = balanced_labels(len(real.class_names), per_class)
        if not self.gated:
            return generator.generate(labels, seed, device=self.options.device)
        from augmentor.synthetic.gates import confidence_mask, train_judge

        judge_key = ("judge", fingerprint(real))
        if judge_key not in self.options.cache:  # a classifier of the arm's real subset only, as the rule wants
            self.options.cache[judge_key] = train_judge(
                real, steps=self.options.judge_steps, seed=experiment_seed(seed), device=self.options.device
            )
        judge = self.options.cache[judge_key]
        kept: list[ImageSet] = []
        need = np.full(len(real.class_names), per_class)
        first = 0
        for _ in range(8):  # over-generate in rounds; a class the gate rejects throughout stays short
            labels = np.repeat(np.arange(len(need)), need)
            if not len(labels):
                break
            batch = generator.generate(labels, seed, device=self.options.device, first_index=first)
            first += len(labels)
            batch = batch.take(np.nonzero(confidence_mask(judge, batch, self.options.min_confidence))[0])
            kept.append(batch)
            need = np.maximum(0, need - np.bincount(batch.labels, minlength=len(need)))
        result = kept[0]
        for more in kept[1:]:
            result = result.concat(more)
        return result

    def _generator(self, real: ImageSet, seed: int):
        from augmentor.generative.generator import load_generator

        real_print = fingerprint(real)
        if self.run is not None:
            generator = load_generator(Path(self.run))
            if generator.config["dataset"]["fingerprint"] != real_print:
                raise UserError(
                    f"{self.run}: this generator was trained on other images than the arm's real subset; the gain "
                    f"experiment only uses generators trained on that subset (drop the run to train one in place)"
                )
            return generator
        # One generator per (kind, subset): `vae`, `classic+vae` and `vae-gated` share it, trained with the
        # experiment's seed whichever stream asked first.
        key = (self.kind, real_print)
        if key not in self.options.cache:
            self.options.cache[key] = self._train(real, experiment_seed(seed))
        return self.options.cache[key]

    def _train(self, real: ImageSet, seed: int):
        import tempfile

        from augmentor.generative.generator import load_generator
        from augmentor.generative.train import GenerativeConfig, train_generative

        o = self.options
        config = GenerativeConfig(
            kind=self.kind,
            steps=o.steps,
            width=o.width,
            batch_size=min(o.batch_size, len(real)),
            diffaugment=o.diffaugment and self.kind == "dcgan",
            seed=seed,
            device=o.device,
            sample_every=o.steps,
            log_every=o.steps,
        )
        with tempfile.TemporaryDirectory(prefix="augmentor-gain-") as folder:
            result = train_generative(real, config, Path(folder) / "run")
            generator = load_generator(Path(folder) / "run")
        if generator.config["dataset"]["fingerprint"] != fingerprint(real):  # the honesty rule, checked
            raise UserError(f"internal: the {self.kind} was not trained on the arm's subset")
        o.log.append({"kind": self.kind, "seed": seed, "images": len(real), **result.metrics[-1]})
        return generator


# name → factory(argument after the colon or None, generator options).
SOURCES: dict[str, Callable[[str | None, GeneratorOptions], Source]] = {
    "classic": lambda arg, options: ClassicSource(arg or "medium"),
    "dcgan": lambda arg, options: GenerativeSource("dcgan", options, arg),
    "vae": lambda arg, options: GenerativeSource("vae", options, arg),
    "dcgan-gated": lambda arg, options: GenerativeSource("dcgan", options, arg, gated=True),
    "vae-gated": lambda arg, options: GenerativeSource("vae", options, arg, gated=True),
    # vae-jitter[:SIGMA]: encode the subset's own images, perturb the codes, decode (latent jitter).
    "vae-jitter": lambda arg, options: GenerativeSource("vae", options, jitter=_sigma(arg)),
}


def _sigma(text: str | None) -> float:
    try:
        return 0.5 if text is None else float(text)
    except ValueError:
        raise UserError(f"--arms vae-jitter:{text}: the argument is sigma, a number such as 0.5") from None


@dataclass(frozen=True)
class Arm:
    """One arm: its name as written and its synthetic sources (none for ``real``)."""

    name: str
    sources: tuple[Source, ...]

    def training_set(self, real: ImageSet, ratio: float, seed: int, workers: int = 1) -> ImageSet:
        """The real subset plus ``ratio`` synthetic images per real one, split evenly over the sources."""
        if not self.sources:
            return real
        per_class_real = int(np.bincount(real.labels).max())
        per_source = max(1, round(per_class_real * ratio / len(self.sources)))
        result = real
        for k, source in enumerate(self.sources):
            # Each source draws from its own seed stream, so adding a source leaves the others' images alone.
            synthetic = source.synthesize(real, per_source, stream_seed(seed, k), workers)
            result = result.concat(synthetic)
        return result


def parse_arm(text: str, options: GeneratorOptions | None = None) -> Arm:
    """``real`` | ``SOURCE[:ARG]`` | ``SOURCE[:ARG]+SOURCE[:ARG]…``."""
    text = text.strip()
    if text == "real":
        return Arm("real", ())
    sources = []
    for part in text.split("+"):
        name, _, arg = part.partition(":")
        if name not in SOURCES:
            known = ", ".join(["real", *SOURCES])
            raise UserError(f"--arms: unknown arm {part!r} in {text!r}; known: {known} (combine with +)")
        sources.append(SOURCES[name](arg or None, options or GeneratorOptions()))
    return Arm(text, tuple(sources))


def parse_arms(text: str, options: GeneratorOptions | None = None) -> list[Arm]:
    """A comma-separated list of arms; ``real`` is always included (every difference is paired to it)."""
    options = options or GeneratorOptions()  # one set of options (and one generator cache) for all arms
    arms = [parse_arm(t, options) for t in text.split(",") if t.strip()]
    names = [a.name for a in arms]
    if len(set(names)) != len(names):
        raise UserError(f"--arms {text!r} names an arm twice")
    if "real" not in names:
        arms.insert(0, Arm("real", ()))
    return arms
