"""``augmentor expand``: the real train images plus synthetic ones from the ``--with`` sources.

Every class gets a synthetic quota (``--per-class N`` fills it up to N images in all, ``--ratio R:S`` adds
S/R synthetic images per real one), split evenly over the sources (``synthetic.sources``), each filled
through the quality gates by ``synthetic.quota``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from augmentor.core.console import warn
from augmentor.core.errors import UserError
from augmentor.core.limits import IMAGES_OUT, check_count
from augmentor.core.outdir import check_output
from augmentor.core.parallel import default_workers
from augmentor.data.imageset import Dataset, ImageSet
from augmentor.data.options import ReadOptions
from augmentor.data.readers import open_dataset
from augmentor.data.writers import WriteResult, write_imagefolder
from augmentor.distributed.output import on_every_rank, spread
from augmentor.synthetic.quota import GATE_ORDER, ROUND_LIMIT, Gates, concat_all, fill_quota
from augmentor.synthetic.sources import (
    ClassicSource,
    GeneratorResolver,
    Source,
    SourceContext,
    SourceSpec,
    build_source,
    parse_source,
    stream_seed,
)

if TYPE_CHECKING:
    from augmentor.generative.generator import Generator


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
    flip: bool = True  # False: classic sources lose their mirroring transforms (digits, text)


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
            for gate in GATE_ORDER
            if self.gates[gate] is not None
        }

    def report(self) -> dict[str, Any]:
        """Extra fields for the command's summary: what each gate dropped, any quota shortfall, the warnings."""
        shortfall = {s["name"]: s["shortfall"] for s in self.sources if s["shortfall"]}
        return {"dropped": self.dropped(), "shortfall": shortfall, "warnings": self.warnings}


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
    check_count("--per-class", config.per_class, IMAGES_OUT)
    if config.ratio is not None:
        parse_ratio(config.ratio)
    if not config.with_:
        raise UserError("give at least one source: --with classic[:PIPELINE], --with dcgan:RUN or --with vae:RUN")
    specs = [parse_source(t) for t in config.with_]  # classic[:PIPELINE] or KIND:RUN…, checked before any work
    seen = [s.text for s in specs]
    twice = sorted({t for t in seen if seen.count(t) > 1})
    if twice:
        raise UserError(f"--with {twice[0]} is given twice; give each source once")
    if config.min_confidence is not None and not 0 < config.min_confidence <= 1:
        raise UserError(f"--min-confidence {config.min_confidence}: give a probability p with 0 < p ≤ 1, e.g. 0.9")
    if config.dedupe is not None and not (math.isfinite(config.dedupe) and config.dedupe >= 0):
        raise UserError(f"--dedupe {config.dedupe}: give a distance d ≥ 0 (RMS pixel difference on 0..1, e.g. 0.04)")
    if config.truncation is not None and not config.truncation > 0:  # NaN too
        raise UserError(f"--truncation must be above 0, got {config.truncation}")
    if config.confidence_steps < 1:
        raise UserError(f"--confidence-steps must be at least 1, got {config.confidence_steps}")
    return specs


def synthetic_quotas(real_counts: np.ndarray, config: ExpandConfig) -> np.ndarray:
    """Synthetic images per class, over all sources together."""
    if config.per_class is not None:
        return np.maximum(config.per_class - real_counts, 0).astype(np.int64)
    real, synth = parse_ratio(config.ratio or "")
    total = float(real_counts.sum()) * synth / real  # --ratio 1:1e9 would ask for billions
    check_count(f"--ratio {config.ratio} (synthetic images)", int(min(total, 2**62)), IMAGES_OUT)
    return np.round(real_counts * synth / real).astype(np.int64)


def split_quota(total: np.ndarray, sources: int) -> np.ndarray:
    """``total`` per class split evenly over ``sources`` (sources × classes); earlier sources get the rest."""
    base = total // sources
    extra = total % sources
    return np.stack([base + (k < extra) for k in range(sources)]).astype(np.int64)


def _load_run(spec: SourceSpec, train: ImageSet) -> GeneratorResolver:
    """How ``spec``'s source gets its generator here: the named run, checked against SRC."""

    def load(kind: str | None, run: str | None) -> Generator:
        from augmentor.generative.generator import Generator

        try:
            generator = Generator.from_run(Path(run or ""))
        except UserError as exc:
            raise UserError(f"{spec.label}: {exc.message}") from None
        if kind is not None and generator.kind != kind:
            raise UserError(f"{spec.label}: {run} is a {generator.kind} run; write --with {generator.kind}:{run}")
        check_compatible(spec.text, generator, train)
        return generator

    return load


def check_compatible(where: str, generator: Generator, train: ImageSet) -> None:
    """Same class names and image shape as SRC; an unconditional model only for a one-class SRC."""
    ours, theirs = train.class_names, generator.class_names
    if set(ours) != set(theirs) or len(ours) != len(theirs):
        only_src = sorted(set(ours) - set(theirs))
        only_model = sorted(set(theirs) - set(ours))
        raise UserError(
            f"--with {where}: the model's classes differ from SRC's (only in SRC: {only_src or 'none'}; "
            f"only in the model: {only_model or 'none'}); train the model on data with SRC's classes"
        )
    shape = tuple(generator.image_shape)
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


def run_expand(
    src: str,
    config: ExpandConfig,
    out: Path,
    read_options: ReadOptions | None = None,
    overwrite: bool = False,
    command: str = "",
) -> ExpandResult:
    """Read ``src``, add each source's share of gated synthetic images to its train split, write ``out``.

    Under torchrun each source fills its quota on one rank and each rank writes its share of the images
    (``distributed.output``).
    """
    workers = config.workers or default_workers()

    def prepare() -> tuple[list[SourceSpec], Dataset, list[Source]]:
        specs = validate(config)
        # A generator run or a pipeline file a source names is read too: --out must not replace it.
        reads = [part for spec in specs for part in (spec.arg or "").split(":") if part]
        check_output(out, overwrite, source=src, reads=reads)
        dataset = open_dataset(src, read_options or ReadOptions())
        sources = [
            # Each source draws from its own seed stream, so adding a source leaves the others' images alone.
            build_source(
                spec,
                SourceContext(
                    dataset.train,
                    stream_seed(config.seed, k),
                    _load_run(spec, dataset.train),
                    workers=workers,
                    device=config.device,
                    truncation=config.truncation,
                    flip=config.flip,
                ),
            )
            for k, spec in enumerate(specs)
        ]
        return specs, dataset, sources

    specs, dataset, sources = on_every_rank(prepare)  # a bad input is then reported once
    train = dataset.train
    names = train.class_names

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
    for spec, source in zip(specs, sources, strict=True):
        if source.record.get("trained_on_src") is False:
            warnings.append(
                f"leakage: --with {spec.text}: the model was trained on other images than SRC's train split "
                f"({len(train)} images); if SRC is a subset of that data, its synthetic images carry what the model "
                "learnt outside SRC (a low-data result built on them is not low-data): train the model on SRC itself"
            )

    gates = Gates(train, config.min_confidence, config.dedupe, device=config.device)
    judge = None
    if config.min_confidence is not None and total.sum() > 0:
        from augmentor.synthetic.gates import judge_record, train_judge

        # Every rank trains the judge alone, as one process would: the same weights, so the same choices.
        gates.judge = on_every_rank(
            lambda: train_judge(train, steps=config.confidence_steps, seed=config.seed, device=config.device)
        )
        judge = judge_record(train, config.confidence_steps, config.seed)

    # Sources are independent (own seed stream, gates that only read): under torchrun one rank fills each.
    filled = spread(
        list(range(len(sources))),
        lambda k: fill_quota(sources[k], quotas[k], gates),
        costs=[float(quota.sum()) for quota in quotas],
    )
    synthetic = [images for images, _ in filled]
    records = [
        _source_record(spec, source, quota, stats, names, stream_seed(config.seed, k), warnings)
        for k, (spec, source, quota, (_, stats)) in enumerate(zip(specs, sources, quotas, filled, strict=True))
    ]
    for message in warnings:
        warn(message)

    gate_record = _gate_record(config, judge)
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
            "warnings": dataset.warnings + warnings,  # the reader's (said when read), then expand's
        },
    }
    files = {
        f"pipeline-{k}.yaml": source.pipeline.dump("yaml").encode()
        for k, source in enumerate(sources)
        if isinstance(source, ClassicSource)
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


def _source_record(
    spec: SourceSpec,
    source: Source,
    quota: np.ndarray,
    stats: dict[str, Any],
    names: list[str],
    seed: int,
    warnings: list[str],
) -> dict[str, Any]:
    """One source's entry in dataset.json (quota, tries, kept, drops); a shortfall is added to ``warnings``."""
    shortfall = {names[c]: int(quota[c] - stats["kept"][c]) for c in range(len(names)) if stats["kept"][c] < quota[c]}
    if shortfall:
        missing = ", ".join(f"{c} {n}" for c, n in shortfall.items())
        warnings.append(
            f"--with {spec.text}: short of its quota after {int(stats['generated'].sum())} tries ({missing} "
            "missing); lower --min-confidence / --dedupe, or improve the source"
        )
    return {
        "name": spec.text,
        "kind": spec.kind,
        **source.record,
        "seed": seed,
        "quota": dict(zip(names, quota.tolist(), strict=True)),
        "generated": dict(zip(names, stats["generated"].tolist(), strict=True)),
        "kept": dict(zip(names, stats["kept"].tolist(), strict=True)),
        "dropped": stats["dropped"],
        "surplus": stats["surplus"],
        "rounds": stats["rounds"],
        "shortfall": shortfall,
    }


def _gate_record(config: ExpandConfig, judge: dict[str, Any] | None) -> dict[str, Any]:
    """The gates as dataset.json records them: their order, settings and round limit."""
    return {
        "order": list(GATE_ORDER),
        "min_confidence": None if config.min_confidence is None else {"p": config.min_confidence, "classifier": judge},
        "dedupe": None
        if config.dedupe is None
        else {"d": config.dedupe, "distance": "RMS pixel difference (0..1) to the nearest real train image"},
        "round_limit": ROUND_LIMIT,
    }
