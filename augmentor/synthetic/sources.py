"""Synthetic-image sources: one protocol behind ``expand --with`` and ``gain --arms``.

A source is built for one real set and one seed stream, and ``make(counts, round_no)`` returns
``counts[c]`` new images of every class ``c`` (labels in the real set's class order). Each round gives
fresh images: classic and jitter sources draw parents in shuffled passes carried across rounds (no image
twice before every image once), generator sources continue their latent indices. Gating and quotas are
``synthetic.quota``'s job, so every source gets the same over-generation policy.

Seed scheme (one for every command): source ``k`` of an expansion or an arm with seed ``S`` draws from
stream ``S * 1000 + k``; within it, parents come from ``SeedSequence([stream, P])`` and round ``r``'s
image seeds from ``[stream, P + 1, r]``, with purpose ``P`` 0 for classic, 2 for jitter and 4 for
extrapolation; generator latents come from the stream itself. The manifest records each image's seed
(and latent index).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

from augmentor.core.errors import UserError
from augmentor.data.imageset import ImageSet, fingerprint
from augmentor.synthetic.mixing_sources import MIX_KINDS, MixSource

if TYPE_CHECKING:
    from augmentor.generative.generator import Generator

DEFAULT_TEMPERATURE = 1.0  # vae-density's spread: 1 draws from the fitted class Gaussian as it is
DEFAULT_SIGMA = 1.0  # vae-jitter's spread, in units of the encoder's posterior standard deviation per dimension
DEFAULT_STRENGTH = 0.5  # vae-extrapolate's step away from the neighbour, in units of the distance to it


def stream_seed(seed: int, k: int) -> int:
    """The seed stream of source ``k`` of an expansion or arm with seed ``seed``."""
    return seed * 1000 + k


class Source(Protocol):
    """Makes ``counts[c]`` images of every class ``c`` of its real set; a new round gives new images."""

    name: str
    record: dict[str, Any]

    def make(self, counts: np.ndarray, round_no: int) -> ImageSet: ...


@dataclass(frozen=True)
class SourceSpec:
    """A source as written: ``kind[:arg]`` (``gated`` for the gain experiment's ``-gated`` arms)."""

    kind: str
    arg: str | None
    text: str
    gated: bool = False
    where: str = "--with"  # the flag it came from, for messages

    @property
    def label(self) -> str:
        """How messages name it: ``--with classic:heavy``."""
        return f"{self.where} {self.text}"


# Resolves (model kind or None for either, run folder or None to train one) into a generator for the real
# set of the source being built: ``expand`` loads the run, the gain experiment trains on the arm's subset.
GeneratorResolver = Callable[["str | None", "str | None"], "Generator"]


@dataclass
class SourceContext:
    """What every source is built from: the real images, its seed stream and the run options."""

    real: ImageSet
    seed: int
    resolve_generator: GeneratorResolver
    workers: int = 1
    device: str = "auto"
    truncation: float | None = None
    flip: bool = True  # False: classic pipelines lose their mirroring transforms (digits, text)


class EvenParents:
    """Parents per class in shuffled passes, carried across rounds: no image twice before all once."""

    def __init__(self, real: ImageSet, rng: np.random.Generator) -> None:
        self.real, self.rng = real, rng
        self.pending: dict[int, list[int]] = {}

    def _take(self, label: int, n: int) -> list[int]:
        members = np.flatnonzero(self.real.labels == label)
        if len(members) == 0:
            return []
        queue = self.pending.setdefault(label, [])
        while len(queue) < n:
            queue += self.rng.permutation(members).tolist()
        taken, self.pending[label] = queue[:n], queue[n:]
        return taken

    def draw(self, counts: np.ndarray) -> np.ndarray:
        """``counts[c]`` parents of every class ``c``."""
        return np.array([p for label, n in enumerate(counts.tolist()) for p in self._take(label, n)], np.int64)


def _round_seed(stream: int, purpose: int, round_no: int) -> int:
    return int(np.random.SeedSequence([stream, purpose, round_no]).generate_state(1)[0])


class ClassicSource:
    """Albumentations copies of the real images (``classic[:PIPELINE]``, a preset or an A.save file)."""

    kind: ClassVar[str] = "classic"
    uses_model: ClassVar[bool] = False

    @staticmethod
    def run_in(spec: SourceSpec) -> str | None:
        """No run folder: a classic source needs no model."""
        return None

    def __init__(self, spec: SourceSpec, context: SourceContext) -> None:
        from augmentor.classic.pipelines import load_pipeline

        self.name = spec.text
        try:
            self.pipeline = load_pipeline(spec.arg or "medium", image_shape=(*context.real.size, context.real.channels))
        except UserError as exc:
            raise UserError(f"{spec.label}: {exc.message}") from None
        if not context.flip:
            self.pipeline = self.pipeline.without_flips()
        self.real, self.seed, self.workers = context.real, context.seed, context.workers
        self.parents = EvenParents(context.real, np.random.default_rng(np.random.SeedSequence([context.seed, 0])))
        self.record: dict[str, Any] = {"pipeline": self.pipeline.name}

    def make(self, counts: np.ndarray, round_no: int) -> ImageSet:
        from augmentor.classic.expand import augment

        parents = self.parents.draw(counts)
        return augment(self.real, self.pipeline, parents, _round_seed(self.seed, 1, round_no), workers=self.workers)


class GeneratorSource:
    """Fresh samples of a DCGAN or VAE (``dcgan[:RUN]``, ``vae[:RUN]``); rounds continue the latent indices."""

    kind: ClassVar[str] = "generator"
    uses_model: ClassVar[bool] = True

    def __init__(self, spec: SourceSpec, context: SourceContext) -> None:
        self.name = spec.text
        self.generator = context.resolve_generator(self.model_kind(spec), self.run_in(spec))
        self.real, self.seed = context.real, context.seed
        self.device, self.truncation = context.device, context.truncation
        self.next_index = 0
        # Real label → the model's label, matched by class name.
        self.to_model = np.array([self.generator.class_index(n) for n in context.real.class_names], np.int64)
        self.record: dict[str, Any] = {
            "run": str(self.generator.run) if self.generator.run is not None else None,
            "run_id": self.generator.run_id,
            "conditional": self.generator.conditional,
            "trained_on_fingerprint": self.generator.fingerprint,
            "trained_on_src": self.generator.fingerprint == fingerprint(context.real),
            **self.generator.size_record,
        }

    @staticmethod
    def run_in(spec: SourceSpec) -> str | None:
        """The run folder ``spec`` names (None: the gain experiment trains one on the subset)."""
        return spec.arg

    @staticmethod
    def model_kind(spec: SourceSpec) -> str | None:
        """The generative kind the source needs loaded or trained (None: either)."""
        return spec.kind

    def _claim(self, n: int) -> int:
        """The first of the next ``n`` latent indices, which this round takes (rounds never reuse one)."""
        first = self.next_index
        self.next_index += n
        return first

    def make(self, counts: np.ndarray, round_no: int) -> ImageSet:
        labels = np.repeat(np.arange(len(counts)), counts)
        images = self.generator.generate(
            self.to_model[labels],
            self.seed,
            truncation=self.truncation,
            device=self.device,
            first_index=self._claim(len(labels)),
        )
        return ImageSet(images.images, labels, list(self.real.class_names), images.provenance)


class EditSource(GeneratorSource):
    """The model's own samples moved along a latent direction (``edit:RUN:DIR:NAME:S1,S2,…``).

    Strengths are a comma list here (``-3:3:7`` would be ambiguous among the colons); image ``i`` takes
    strength ``i mod len(strengths)``, so every strength is used equally often.
    """

    kind: ClassVar[str] = "edit"

    def __init__(self, spec: SourceSpec, context: SourceContext) -> None:
        from augmentor.latent.edit import edit_direction, parse_strengths

        _, folder, name, strengths = self._parts(spec)
        super().__init__(spec, context)
        try:
            self.strengths = parse_strengths(strengths)
            self.direction_name, self.direction = edit_direction(self.generator, f"{folder}:{name}")
        except UserError as exc:
            raise UserError(f"{spec.label}: {exc.message}") from None
        self.record.update(direction=f"{folder}:{name}", strengths=self.strengths)

    @staticmethod
    def _parts(spec: SourceSpec) -> list[str]:
        """RUN, DIR, NAME and STRENGTHS of ``edit:RUN:DIR:NAME:STRENGTHS``."""
        parts = (spec.arg or "").rsplit(":", 3)
        if len(parts) != 4 or not all(parts) or ":" in parts[3]:
            raise UserError(
                f"{spec.label}: give edit:RUN:DIR:NAME:STRENGTHS with strengths as a comma list, "
                "e.g. edit:runs/vae:dirs:ink_area:-2,-1,1,2"
            )
        return parts

    @staticmethod
    def run_in(spec: SourceSpec) -> str | None:
        return EditSource._parts(spec)[0]

    @staticmethod
    def model_kind(spec: SourceSpec) -> str | None:
        return None  # a direction of either kind

    def make(self, counts: np.ndarray, round_no: int) -> ImageSet:
        import torch

        labels = np.repeat(np.arange(len(counts)), counts)
        first = self._claim(len(labels))
        indices = np.arange(first, first + len(labels))
        strength = np.resize(np.array(self.strengths, np.float32), len(labels))  # cycles through the list
        codes = self.generator.latents(indices, self.seed, self.truncation)
        moved = codes + torch.from_numpy(strength)[:, None] * self.direction[None, :]
        images = self.generator.decode(moved, self.to_model[labels], device=self.device)
        provenance = [
            {
                "source": "edit",
                "run_id": self.generator.run_id,
                "seed": self.seed,
                "latent_index": int(i),
                "direction": self.direction_name,
                "strength": float(s),
            }
            for i, s in zip(indices.tolist(), strength.tolist(), strict=True)
        ]
        return ImageSet(images, labels, list(self.real.class_names), provenance)


class EncodedParentSource(GeneratorSource):
    """Real parents, drawn evenly, moved in a VAE's latent space (``KIND[:RUN][:NUMBER]``).

    A subclass names its number (``number_name``, its default and whether 0 is allowed), its seed purpose
    (parents from ``[stream, purpose]``, round seeds from ``[stream, purpose + 1, r]``) and ``make``.
    """

    number_name: ClassVar[str]
    number_default: ClassVar[float]
    zero_allowed: ClassVar[bool]
    purpose: ClassVar[int]

    def __init__(self, spec: SourceSpec, context: SourceContext) -> None:
        super().__init__(spec, context)
        if not self.generator.can_encode:
            raise UserError(f"{spec.label}: {self.kind} needs a model with an encoder (a VAE)")
        self.number = self._split(spec)[1]
        self.parents = EvenParents(
            context.real, np.random.default_rng(np.random.SeedSequence([context.seed, self.purpose]))
        )
        self.record[self.number_name] = self.number

    @classmethod
    def _split(cls, spec: SourceSpec) -> tuple[str | None, float]:
        return _split_number(spec, cls.number_default, cls.number_name, zero_allowed=cls.zero_allowed)

    @classmethod
    def run_in(cls, spec: SourceSpec) -> str | None:
        return cls._split(spec)[0]

    @staticmethod
    def model_kind(spec: SourceSpec) -> str | None:
        return "vae"  # the kind with an encoder, which the gain experiment trains for it

    def _round_seed(self, round_no: int) -> int:
        return _round_seed(self.seed, self.purpose + 1, round_no)


class JitterSource(EncodedParentSource):
    """Jittered VAE encodings of the real images (``vae-jitter[:RUN][:SIGMA]``, sigma in posterior σ)."""

    kind: ClassVar[str] = "vae-jitter"
    number_name: ClassVar[str] = "sigma"
    number_default: ClassVar[float] = DEFAULT_SIGMA
    zero_allowed: ClassVar[bool] = True  # sigma 0: reconstructions
    purpose: ClassVar[int] = 2

    def make(self, counts: np.ndarray, round_no: int) -> ImageSet:
        from augmentor.latent.jitter import jitter_parents

        return jitter_parents(
            self.generator,
            self.real,
            self.parents.draw(counts),
            sigma=self.number,
            seed=self._round_seed(round_no),
            device=self.device,
        )


class ExtrapolateSource(EncodedParentSource):
    """Real codes moved away from a near same-class code (``vae-extrapolate[:RUN][:STRENGTH]``)."""

    kind: ClassVar[str] = "vae-extrapolate"
    number_name: ClassVar[str] = "strength"
    number_default: ClassVar[float] = DEFAULT_STRENGTH
    zero_allowed: ClassVar[bool] = False  # strength 0 would only reconstruct the parents
    purpose: ClassVar[int] = 4

    def make(self, counts: np.ndarray, round_no: int) -> ImageSet:
        from augmentor.latent.jitter import extrapolate_parents

        return extrapolate_parents(
            self.generator,
            self.real,
            self.parents.draw(counts),
            strength=self.number,
            seed=self._round_seed(round_no),
            device=self.device,
        )


class DensitySource(GeneratorSource):
    """Codes drawn from a Gaussian fitted to each class's encoded real images, decoded
    (``vae-density[:RUN][:TEMPERATURE]``: ex-post density estimation, ``latent.density``)."""

    kind: ClassVar[str] = "vae-density"
    purpose: ClassVar[int] = 6

    def __init__(self, spec: SourceSpec, context: SourceContext) -> None:
        from augmentor.latent.density import fit_class_densities

        super().__init__(spec, context)
        if not self.generator.can_encode:
            raise UserError(f"{spec.label}: vae-density needs a model with an encoder (a VAE)")
        self.temperature = self._split(spec)[1]
        self.densities = fit_class_densities(self.generator, context.real, self.to_model, self.device)
        self.record["temperature"] = self.temperature

    @staticmethod
    def _split(spec: SourceSpec) -> tuple[str | None, float]:
        return _split_number(spec, DEFAULT_TEMPERATURE, "temperature", zero_allowed=False)

    @classmethod
    def run_in(cls, spec: SourceSpec) -> str | None:
        return cls._split(spec)[0]

    @staticmethod
    def model_kind(spec: SourceSpec) -> str | None:
        return "vae"

    def make(self, counts: np.ndarray, round_no: int) -> ImageSet:
        from augmentor.latent.density import density_samples

        labels = np.repeat(np.arange(len(counts)), counts)
        seed = _round_seed(self.seed, self.purpose + 1, round_no)
        return density_samples(
            self.generator,
            self.densities,
            labels,
            self.to_model,
            self.real.class_names,
            self.temperature,
            seed,
            self.device,
        )


def _split_number(spec: SourceSpec, default: float, name: str, *, zero_allowed: bool) -> tuple[str | None, float]:
    """``RUN``, ``RUN:NUMBER``, ``NUMBER`` or nothing → (run or None, the number, checked)."""
    arg = spec.arg or ""
    head, _, tail = arg.rpartition(":")
    for run, text in ((None, arg), (head or None, tail)):
        try:
            number = float(text)
        except ValueError:
            continue
        if not (np.isfinite(number) and (number >= 0 if zero_allowed else number > 0)):
            bound = "≥ 0" if zero_allowed else "> 0"
            raise UserError(f"{spec.label}: {name} must be a number {bound}, e.g. {spec.kind}:{default}")
        return run, number
    return arg or None, default


# kind → how to build it; a new source is one class and one line here.
SOURCES: dict[str, type[ClassicSource] | type[GeneratorSource] | type[MixSource]] = {
    "classic": ClassicSource,
    "mixup": MixSource,
    "cutmix": MixSource,
    "dcgan": GeneratorSource,
    "vae": GeneratorSource,
    "vae-jitter": JitterSource,
    "vae-extrapolate": ExtrapolateSource,
    "vae-density": DensitySource,
    "edit": EditSource,
}
# The sources a classic baseline is made of: albumentations pipelines and mixes of real images, no model.
CLASSIC_KINDS = ("classic", *MIX_KINDS)
GATED_SUFFIX = "-gated"
SOURCE_SYNTAX = (
    "classic[:PIPELINE], mixup[:ALPHA], cutmix[:ALPHA], dcgan[:RUN], vae[:RUN], vae-jitter[:RUN][:SIGMA], "
    "vae-extrapolate[:RUN][:STRENGTH], "
    "vae-density[:RUN][:TEMPERATURE], edit:RUN:DIR:NAME:STRENGTHS"
)


def parse_source(text: str, *, where: str = "--with", allow_gated: bool = False, need_run: bool = True) -> SourceSpec:
    """A source as written, checked before any work; ``need_run`` when no model can be trained in place."""
    kind, _, arg = text.strip().partition(":")
    gated = allow_gated and kind.endswith(GATED_SUFFIX) and kind.removesuffix(GATED_SUFFIX) in ("dcgan", "vae")
    base = kind.removesuffix(GATED_SUFFIX) if gated else kind
    if base not in SOURCES:
        gated_note = " (dcgan-gated, vae-gated: confidence-gated samples)" if allow_gated else ""
        raise UserError(f"{where} {text!r}: unknown source kind {kind!r}; known: {SOURCE_SYNTAX}{gated_note}")
    if base == "classic":
        arg = arg or "medium"
    spec = SourceSpec(base, arg or None, text.strip(), gated, where)
    # run_in also checks a source's number (a jitter's sigma…), so a bad one is refused here even in gain arms.
    run = SOURCES[base].run_in(spec)
    if need_run and SOURCES[base].uses_model and run is None:
        raise UserError(f"{where} {text!r}: name the run folder, e.g. {where} {base}:runs/{base}")
    return spec


def build_source(spec: SourceSpec, context: SourceContext) -> Source:
    """The source ``spec`` names, built for ``context.real`` and its seed stream."""
    return SOURCES[spec.kind](spec, context)
