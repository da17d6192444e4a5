"""``augmentor expand``: the real train images plus synthetic ones from classic, DCGAN and VAE sources.

Every class gets a synthetic quota (``--per-class N`` fills it up to N images in all, ``--ratio R:S`` adds
S/R synthetic images per real one), split evenly over the ``--with`` sources. With quality gates a source
is over-generated in rounds (fresh parents or latent indices each round) until every class has its quota
or the source has made ``ROUND_LIMIT`` times the quota; what is still missing is reported, never looped on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from augmentor.core.console import warn
from augmentor.core.errors import UserError
from augmentor.core.outdir import check_output
from augmentor.core.parallel import default_workers
from augmentor.data.imageset import ImageSet, fingerprint
from augmentor.data.options import ReadOptions
from augmentor.data.readers import open_dataset
from augmentor.data.writers import WriteResult, write_imagefolder

SOURCE_KINDS = ("classic", "dcgan", "vae", "vae-jitter", "edit")
ROUND_LIMIT = 8  # a gated source makes at most this many times its quota per class
_MAX_ROUNDS = 64  # belt and braces: the budget above already ends the loop
_GATES = ("min_confidence", "dedupe")  # applied in this order; dedupe only sees what confidence kept


@dataclass(frozen=True)
class ExpandConfig:
    """``augmentor expand`` options (field names = flag names; ``with_`` is ``--with``)."""

    with_: tuple[str, ...] = ()
    per_class: int | None = None
    ratio: str | None = None
    min_confidence: float | None = None
    dedupe: float | None = None
    seed: int = 0
    truncation: float | None = None
    workers: int = 0
    device: str = "auto"
    confidence_steps: int = 400  # optimiser steps of the --min-confidence classifier


@dataclass(frozen=True)
class SourceSpec:
    """One ``--with`` value: ``classic[:PIPELINE]``, ``dcgan:RUN`` or ``vae:RUN``."""

    kind: str
    arg: str
    text: str


@dataclass
class ExpandResult:
    """What ``run_expand`` wrote, and what each source and gate did (``sources`` as in dataset.json)."""

    written: WriteResult
    sources: list[dict[str, Any]]
    gates: dict[str, Any]
    warnings: list[str] = field(default_factory=list)

    def dropped(self) -> dict[str, dict[str, int]]:
        """Images each enabled gate dropped, per source: ``{gate: {source: n}}``."""
        return {
            gate: {s["name"]: s["dropped"][gate] for s in self.sources}
            for gate in _GATES
            if self.gates[gate] is not None
        }

    def report(self, for_json: bool) -> dict[str, Any]:
        """Extra fields for the command's summary: structured for ``--json``, one line per gate otherwise."""
        shortfall = {s["name"]: s["shortfall"] for s in self.sources if s["shortfall"]}
        if for_json:
            return {"dropped": self.dropped(), "shortfall": shortfall, "warnings": self.warnings}
        lines = {}
        for gate, per_source in self.dropped().items():
            flag = "--" + gate.replace("_", "-")
            detail = ", ".join(f"{name} {n}" for name, n in per_source.items())
            lines[f"dropped by {flag}"] = f"{sum(per_source.values())} ({detail})"
        for name, missing in shortfall.items():
            lines[f"short of quota ({name})"] = ", ".join(f"{c} {n}" for c, n in missing.items())
        return lines


def parse_source(text: str) -> SourceSpec:
    """``classic[:PIPELINE]`` (preset or A.save file; default medium), ``dcgan:RUN``, ``vae:RUN`` or
    ``vae-jitter:RUN[:SIGMA]``."""
    kind, _, arg = text.strip().partition(":")
    if kind not in SOURCE_KINDS:
        raise UserError(
            f"--with {text!r}: unknown source kind {kind!r}; known: classic[:PIPELINE], dcgan:RUN, vae:RUN, "
            "vae-jitter:RUN[:SIGMA], edit:RUN:DIR:NAME:STRENGTHS"
        )
    if kind == "classic":
        return SourceSpec(kind, arg or "medium", text)
    if not arg:
        raise UserError(f"--with {text!r}: name the run folder, e.g. --with {kind}:runs/{kind}")
    return SourceSpec(kind, arg, text)


def parse_ratio(text: str) -> tuple[float, float]:
    """``REAL:SYNTH`` (e.g. ``1:4``, four synthetic images per real one) as two positive numbers."""
    parts = text.split(":")
    try:
        real, synth = (float(p) for p in parts) if len(parts) == 2 else (math.nan, math.nan)
    except ValueError:
        real = synth = math.nan
    if not (math.isfinite(real) and math.isfinite(synth) and real > 0 and synth > 0):
        raise UserError(f"--ratio {text!r}: give REAL:SYNTH as two positive numbers, e.g. 1:4 (4 synthetic per real)")
    return real, synth


def validate(config: ExpandConfig) -> list[SourceSpec]:
    """Check the flags before any data is read; returns the parsed sources."""
    if (config.per_class is None) == (config.ratio is None):
        raise UserError("give exactly one of --per-class N (images per class in all) or --ratio REAL:SYNTH (e.g. 1:4)")
    if config.per_class is not None and config.per_class < 1:
        raise UserError(f"--per-class must be at least 1, got {config.per_class}")
    if config.ratio is not None:
        parse_ratio(config.ratio)
    if not config.with_:
        raise UserError("give at least one source: --with classic[:PIPELINE], --with dcgan:RUN or --with vae:RUN")
    specs = [parse_source(t) for t in config.with_]
    seen = [s.text for s in specs]
    twice = sorted({t for t in seen if seen.count(t) > 1})
    if twice:
        raise UserError(f"--with {twice[0]} is given twice; give each source once")
    if config.min_confidence is not None and not 0 < config.min_confidence <= 1:
        raise UserError(f"--min-confidence {config.min_confidence}: give a probability p with 0 < p ≤ 1, e.g. 0.9")
    if config.dedupe is not None and not (math.isfinite(config.dedupe) and config.dedupe >= 0):
        raise UserError(f"--dedupe {config.dedupe}: give a distance d ≥ 0 (RMS pixel difference on 0..1, e.g. 0.04)")
    if config.truncation is not None and config.truncation <= 0:
        raise UserError(f"--truncation must be above 0, got {config.truncation}")
    if config.confidence_steps < 1:
        raise UserError(f"--confidence-steps must be at least 1, got {config.confidence_steps}")
    return specs


def synthetic_quotas(real_counts: np.ndarray, config: ExpandConfig) -> np.ndarray:
    """Synthetic images per class, over all sources together."""
    if config.per_class is not None:
        return np.maximum(config.per_class - real_counts, 0).astype(np.int64)
    real, synth = parse_ratio(config.ratio or "")
    return np.round(real_counts * synth / real).astype(np.int64)


def split_quota(total: np.ndarray, sources: int) -> np.ndarray:
    """``total`` per class split evenly over ``sources`` (sources × classes); earlier sources get the rest."""
    base = total // sources
    extra = total % sources
    return np.stack([base + (k < extra) for k in range(sources)]).astype(np.int64)


class _EvenParents:
    """Parents per class in shuffled passes, carried across rounds: no image twice before all once."""

    def __init__(self, train: ImageSet, rng: np.random.Generator) -> None:
        self.train, self.rng = train, rng
        self.pending: dict[int, list[int]] = {}

    def _take(self, label: int, n: int) -> list[int]:
        members = np.flatnonzero(self.train.labels == label)
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


class _ClassicMaker:
    """Classic copies of the real images; parents drawn in shuffled passes per class, across rounds."""

    def __init__(self, spec: SourceSpec, train: ImageSet, seed: int, workers: int) -> None:
        from augmentor.classic.pipelines import load_pipeline

        try:
            self.pipeline = load_pipeline(spec.arg)
        except UserError as exc:
            raise UserError(f"--with {spec.text}: {exc.message}") from None
        self.train = train
        self.seed = seed
        self.workers = workers
        self.parents = _EvenParents(train, np.random.default_rng(np.random.SeedSequence([seed, 0])))
        self.record = {"pipeline": self.pipeline.name}

    def make(self, counts: np.ndarray, round_no: int) -> ImageSet:
        from augmentor.classic.expand import augment

        parents = self.parents.draw(counts)
        round_seed = int(np.random.SeedSequence([self.seed, 1, round_no]).generate_state(1)[0])
        return augment(self.train, self.pipeline, parents, round_seed, workers=self.workers)


class _GeneratorMaker:
    """Images from a DCGAN / VAE run; each round continues the latent indices where the last stopped."""

    def __init__(self, spec: SourceSpec, train: ImageSet, config: ExpandConfig, seed: int) -> None:
        from augmentor.generative.generator import load_generator

        run = Path(spec.arg)
        model_kind = "vae" if spec.kind == "vae-jitter" else spec.kind
        try:
            generator = load_generator(run)
        except UserError as exc:
            raise UserError(f"--with {spec.text}: {exc.message}") from None
        if generator.kind != model_kind and spec.kind != "edit":  # edits work on either kind
            raise UserError(f"--with {spec.text}: {run} is a {generator.kind} run; write --with {generator.kind}:{run}")
        check_compatible(spec.text, generator, train)
        self.generator = generator
        self.seed = seed
        self.config = config
        self.train = train
        self.next_index = 0
        # SRC label → the model's label, matched by class name.
        self.to_model = np.array([generator.class_names.index(n) for n in train.class_names], np.int64)
        trained_on = generator.config.get("dataset", {}).get("fingerprint")
        self.record = {
            "run": str(run),
            "run_id": generator.run_id,
            "conditional": generator.conditional,
            "trained_on_fingerprint": trained_on,
            "trained_on_src": trained_on == fingerprint(train),
        }

    def make(self, counts: np.ndarray, round_no: int) -> ImageSet:
        labels = np.repeat(np.arange(len(counts)), counts)
        images = self.generator.generate(
            self.to_model[labels],
            self.seed,
            truncation=self.config.truncation,
            device=self.config.device,
            first_index=self.next_index,
        )
        self.next_index += len(labels)
        return ImageSet(images.images, labels, list(self.train.class_names), images.provenance)


class _EditMaker(_GeneratorMaker):
    """The model's own samples moved along a latent direction (``edit:RUN:DIR:NAME:S1,S2,…``).

    Strengths are a comma list here (``-3:3:7`` would be ambiguous among the colons); image ``i`` of a class
    takes strength ``i mod len(strengths)``, so every strength is used equally often.
    """

    def __init__(self, spec: SourceSpec, train: ImageSet, config: ExpandConfig, seed: int) -> None:
        from augmentor.latent.edit import edit_direction, parse_strengths

        parts = spec.arg.rsplit(":", 3)
        if len(parts) != 4 or not all(parts) or ":" in parts[3]:
            raise UserError(
                f"--with {spec.text}: give edit:RUN:DIR:NAME:STRENGTHS with strengths as a comma list, "
                "e.g. edit:runs/vae:dirs:ink_area:-2,-1,1,2"
            )
        run, folder, name, strengths = parts
        super().__init__(SourceSpec("edit", run, spec.text), train, config, seed)
        try:
            self.strengths = parse_strengths(strengths)
            self.direction_name, self.direction = edit_direction(self.generator, f"{folder}:{name}")
        except UserError as exc:
            raise UserError(f"--with {spec.text}: {exc.message}") from None
        self.record.update(direction=f"{folder}:{name}", strengths=self.strengths)

    def make(self, counts: np.ndarray, round_no: int) -> ImageSet:
        import torch

        labels = np.repeat(np.arange(len(counts)), counts)
        indices = np.arange(self.next_index, self.next_index + len(labels))
        self.next_index += len(labels)
        strength = np.resize(np.array(self.strengths, np.float32), len(labels))  # cycles through the list
        codes = self.generator.latents(indices, self.seed, self.config.truncation)
        moved = codes + torch.from_numpy(strength)[:, None] * self.direction[None, :]
        images = self.generator.render(moved, self.to_model[labels], _device(self.config.device))
        provenance = [
            {
                "source": "edit",
                "run_id": self.generator.run_id,
                "seed": self.seed,
                "latent_index": int(i),
                "pipeline": f"direction={self.direction_name} strength={s:g}",
            }
            for i, s in zip(indices.tolist(), strength.tolist(), strict=True)
        ]
        return ImageSet(images, labels, list(self.train.class_names), provenance)


def _device(name: str) -> Any:
    from augmentor.core.device import resolve_device

    return resolve_device(name)


class _JitterMaker(_GeneratorMaker):
    """Jittered VAE encodings of the real images (``vae-jitter:RUN[:SIGMA]``), parents drawn evenly."""

    def __init__(self, spec: SourceSpec, train: ImageSet, config: ExpandConfig, seed: int) -> None:
        run, _, sigma = spec.arg.rpartition(":") if _has_sigma(spec.arg) else (spec.arg, "", "")
        super().__init__(SourceSpec(spec.kind, run, spec.text), train, config, seed)
        self.sigma = float(sigma) if sigma else 0.5
        self.parents = _EvenParents(train, np.random.default_rng(np.random.SeedSequence([seed, 2])))
        self.record["sigma"] = self.sigma

    def make(self, counts: np.ndarray, round_no: int) -> ImageSet:
        from augmentor.latent.jitter import jitter_parents

        round_seed = int(np.random.SeedSequence([self.seed, 3, round_no]).generate_state(1)[0])
        return jitter_parents(
            self.generator,
            self.train,
            self.parents.draw(counts),
            sigma=self.sigma,
            seed=round_seed,
            device=self.config.device,
        )


def _has_sigma(arg: str) -> bool:
    """``RUN:0.5`` ends in a number after its last colon; a bare run path does not."""
    head, _, tail = arg.rpartition(":")
    try:
        float(tail)
    except ValueError:
        return False
    return bool(head)


def check_compatible(where: str, generator: Any, train: ImageSet) -> None:
    """Same class names and image shape as SRC; an unconditional model only for a one-class SRC."""
    ours, theirs = train.class_names, generator.class_names
    if set(ours) != set(theirs) or len(ours) != len(theirs):
        only_src = sorted(set(ours) - set(theirs))
        only_model = sorted(set(theirs) - set(ours))
        raise UserError(
            f"--with {where}: the model's classes differ from SRC's (only in SRC: {only_src or 'none'}; "
            f"only in the model: {only_model or 'none'}); train the model on data with SRC's classes"
        )
    shape = tuple(int(v) for v in generator.config["image_shape"])
    if shape != train.images.shape[1:]:
        raise UserError(
            f"--with {where}: the model makes {'×'.join(map(str, shape))} images (C×H×W) but SRC's are "
            f"{'×'.join(map(str, train.images.shape[1:]))}; convert SRC with --channels / --image-size"
        )
    if not generator.conditional and len(ours) > 1:
        raise UserError(
            f"--with {where}: the model is unconditional and cannot make images of a chosen class, and SRC has "
            f"{len(ours)} classes; train it with --conditional (or expand a one-class dataset)"
        )


@dataclass
class _Gates:
    """The enabled gates, applied in order to each round of a source's images."""

    real: ImageSet
    config: ExpandConfig
    judge: Any = None

    @property
    def active(self) -> bool:
        return self.config.min_confidence is not None or self.config.dedupe is not None

    def keep(self, batch: ImageSet, dropped: dict[str, int]) -> np.ndarray:
        from augmentor.synthetic.gates import confidence_mask, dedupe_mask

        keep = np.ones(len(batch), dtype=bool)
        if self.config.min_confidence is not None and len(batch):
            keep &= confidence_mask(self.judge, batch, self.config.min_confidence)
            dropped["min_confidence"] += int((~keep).sum())
        if self.config.dedupe is not None and keep.any():
            survivors = np.flatnonzero(keep)
            close = ~dedupe_mask(batch.take(survivors), self.real, self.config.dedupe, self.config.device)
            keep[survivors[close]] = False
            dropped["dedupe"] += int(close.sum())
        return keep


def fill_quota(maker: Any, quota: np.ndarray, gates: _Gates, empty: ImageSet) -> tuple[ImageSet, dict[str, Any]]:
    """Make images until every class has ``quota`` that pass the gates, or the round budget is spent."""
    classes = len(quota)
    kept: list[list[ImageSet]] = [[] for _ in range(classes)]
    have = np.zeros(classes, np.int64)
    made = np.zeros(classes, np.int64)  # asked for: the budget (a classic class without images makes none)
    produced = np.zeros(classes, np.int64)
    limit = quota * (ROUND_LIMIT if gates.active else 1)
    dropped = dict.fromkeys(_GATES, 0)
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
        batch = maker.make(ask, round_no)
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


def run_expand(
    src: str,
    config: ExpandConfig,
    out: Path,
    read_options: ReadOptions | None = None,
    overwrite: bool = False,
    command: str = "",
) -> ExpandResult:
    """Read ``src``, add each source's share of gated synthetic images to its train split, write ``out``."""
    specs = validate(config)
    check_output(out, overwrite)
    dataset = open_dataset(src, read_options or ReadOptions())
    train = dataset.train
    names = train.class_names
    workers = config.workers or default_workers()
    makers = []
    for k, spec in enumerate(specs):
        # Each source draws from its own seed stream, so adding a source leaves the others' images alone.
        seed = config.seed * 1000 + k
        if spec.kind == "classic":
            makers.append((seed, _ClassicMaker(spec, train, seed, workers)))
        else:
            maker_class = {"vae-jitter": _JitterMaker, "edit": _EditMaker}.get(spec.kind, _GeneratorMaker)
            makers.append((seed, maker_class(spec, train, config, seed)))

    warnings: list[str] = []
    real_counts = np.bincount(train.labels, minlength=len(names))
    total = synthetic_quotas(real_counts, config)
    full = [f"{names[c]} ({int(real_counts[c])})" for c in range(len(names)) if total[c] == 0]
    if full and config.per_class is not None:
        warnings.append(
            f"already at --per-class {config.per_class} with real images alone, no synthetic images added: "
            + ", ".join(full)
        )
    quotas = split_quota(total, len(specs))

    gates = _Gates(train, config)
    if config.min_confidence is not None and total.sum() > 0:
        from augmentor.synthetic.gates import train_judge

        gates.judge = train_judge(train, steps=config.confidence_steps, seed=config.seed, device=config.device)

    empty = train.take(np.zeros(0, np.int64))
    synthetic = []
    records = []
    for spec, (seed, maker), quota in zip(specs, makers, quotas, strict=True):
        images, stats = fill_quota(maker, quota, gates, empty)
        synthetic.append(images)
        shortfall = {
            names[c]: int(quota[c] - stats["kept"][c]) for c in range(len(names)) if stats["kept"][c] < quota[c]
        }
        if shortfall:
            missing = ", ".join(f"{c} {n}" for c, n in shortfall.items())
            warnings.append(
                f"--with {spec.text}: short of its quota after {int(stats['generated'].sum())} tries ({missing} "
                "missing); lower --min-confidence / --dedupe, or improve the source"
            )
        records.append(
            {
                "name": spec.text,
                "kind": spec.kind,
                **maker.record,
                "seed": seed,
                "quota": dict(zip(names, quota.tolist(), strict=True)),
                "generated": dict(zip(names, stats["generated"].tolist(), strict=True)),
                "kept": dict(zip(names, stats["kept"].tolist(), strict=True)),
                "dropped": stats["dropped"],
                "surplus": stats["surplus"],
                "rounds": stats["rounds"],
                "shortfall": shortfall,
            }
        )
    for message in warnings:
        warn(message)

    gate_record = {
        "order": list(_GATES),
        "min_confidence": None
        if config.min_confidence is None
        else {"p": config.min_confidence, "classifier": gates.judge.record if gates.judge else None},
        "dedupe": None
        if config.dedupe is None
        else {"d": config.dedupe, "distance": "RMS pixel difference (0..1) to the nearest real train image"},
        "round_limit": ROUND_LIMIT,
    }
    quota_record = {"per_class": config.per_class} if config.per_class is not None else {"ratio": config.ratio}
    extra = {
        "source": src,
        "expand": {
            "quota": quota_record,
            "synthetic_per_class": dict(zip(names, total.tolist(), strict=True)),
            "seed": config.seed,
            "truncation": config.truncation,
            "sources": records,
            "gates": gate_record,
            "warnings": warnings,
        },
    }
    files = {
        f"pipeline-{k}.yaml": maker.pipeline.dump("yaml").encode()
        for k, (_, maker) in enumerate(makers)
        if isinstance(maker, _ClassicMaker)
    }
    splits = {"train": concat_all(train, synthetic), **{k: v for k, v in dataset.splits.items() if k != "train"}}
    written = write_imagefolder(
        out,
        splits,
        overwrite=overwrite,
        workers=workers,
        command=command,
        extra_summary=extra,
        extra_files=files,
    )
    return ExpandResult(written, records, gate_record, warnings)
