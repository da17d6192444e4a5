"""Writing ImageSets as a torchvision-readable ImageFolder of PNGs with a provenance manifest."""

from __future__ import annotations

import hashlib
import io
import itertools
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from augmentor import __version__
from augmentor.core import jsonio
from augmentor.core.console import progress, warn
from augmentor.core.outdir import check_output, write_lines_atomic
from augmentor.core.parallel import parallel_map
from augmentor.data.imageset import PROVENANCE_KEYS, ImageSet
from augmentor.data.manifest import (
    DATASET_JSON_NAME,
    FORMAT_VERSION,
    MANIFEST_NAME,
    manifest_record,
    write_dataset_json,
    write_manifest,
)
from augmentor.distributed.output import is_main, run_shares, shared_staging

_CHUNK = 256  # images per worker task: large enough to amortise IPC, small enough for a smooth bar
_RENDERED_BYTES = 32 << 20  # pixels rendered, then written, at a time (at least one batch of ``Rendering``)
# Hugging Face's ``imagefolder`` builder reads this name; its ``file_name`` is relative to the file's folder.
HF_METADATA_NAME = "metadata.jsonl"


@dataclass
class WriteResult:
    """Where things went and how many of each."""

    out: Path
    manifest: Path
    dataset_json: Path
    summary: dict


@dataclass(frozen=True)
class Rendering:
    """Pixels made while they are written, for a split given as ``unrendered`` (labels and provenance only).

    ``batches`` tile the split in order; ``render(start, stop)`` returns images ``start:stop`` of the split
    and is called for runs of whole batches of about ``_RENDERED_BYTES`` (so a renderer whose bytes depend
    on its batches, a generator's decoder, keeps them): the split is never held whole, and under torchrun
    each rank renders only its share of the batches.
    """

    batches: list[tuple[int, int]]
    render: Callable[[int, int], np.ndarray]


def unrendered(
    labels: np.ndarray, class_names: list[str], provenance: list[dict], shape: tuple[int, int, int]
) -> ImageSet:
    """An ImageSet of C×H×W images not made yet, for ``write_imagefolder(..., rendering=...)``: its pixels are
    a read-only zero-stride view of the right shape, which takes no memory and is never written."""
    blank = np.zeros((1, *shape), dtype=np.uint8)
    return ImageSet(np.broadcast_to(blank, (len(labels), *shape)), labels, class_names, provenance)


def encode_png(image_chw: np.ndarray) -> bytes:
    """PNG bytes of one C×H×W uint8 image (deterministic: same pixels, same bytes)."""
    from PIL import Image

    array = image_chw[0] if image_chw.shape[0] == 1 else image_chw.transpose(1, 2, 0)
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def _write_chunk(shared: tuple[Path, list[tuple[np.ndarray, list[str]]]], task: tuple[int, int, int]) -> list[str]:
    """Encode and write images ``start:stop`` of one split; returns their sha256 digests."""
    root, splits = shared
    split_index, start, stop = task
    images, relpaths = splits[split_index]
    digests = []
    for i in range(start, stop):
        data = encode_png(images[i])
        (root / relpaths[i]).write_bytes(data)
        digests.append(hashlib.sha256(data).hexdigest())
    return digests


def _relative_paths(split: str | None, image_set: ImageSet) -> list[str]:
    """``[split/]class/source-000123.png``, numbered per class and source."""
    counters: Counter[tuple[int, str]] = Counter()
    paths = []
    for label, prov in zip(image_set.labels.tolist(), image_set.provenance, strict=True):
        source = prov["source"]
        index = counters[(label, source)]
        counters[(label, source)] += 1
        name = f"{image_set.class_names[label]}/{source}-{index:06d}.png"
        paths.append(f"{split}/{name}" if split else name)
    return paths


def write_imagefolder(
    out: Path,
    splits: dict[str, ImageSet],
    *,
    overwrite: bool = False,
    workers: int = 1,
    command: str = "",
    extra_summary: dict | None = None,
    extra_files: dict[str, bytes] | None = None,
    rendering: dict[str, Rendering] | None = None,
    asked_classes: bool = False,
) -> WriteResult:
    """Write ``splits`` under ``out`` atomically.

    A single ``train`` split is written flat (``out/<class>/``); several splits go to
    ``out/<split>/<class>/``. Beside the images goes Hugging Face's ``metadata.jsonl`` (``out/`` when flat,
    else one per ``out/<split>/``); ``manifest.jsonl`` is written last.

    Under torchrun every rank calls this with the same ``splits`` (it is collective): each rank writes its
    share of the PNGs into one staging folder and rank 0 writes the rest (``distributed.output``).

    A split named in ``rendering`` is ``unrendered``: its pixels are made as they are written (``Rendering``).
    ``asked_classes``: the user chose which classes to make (``sample --class``), so the classes left without
    images are no surprise and get no warning (``dataset.json`` still lists them).
    """
    rendering = rendering or {}
    check_output(out, overwrite)
    flat = list(splits) == ["train"]
    relpaths = {name: _relative_paths(None if flat else name, s) for name, s in splits.items()}
    summary = dataset_summary(splits, command, extra_summary)
    if summary.get("classes_without_images") and is_main() and not asked_classes:
        empty = summary["classes_without_images"]
        warn(
            f"{len(empty)} class(es) have no images and get no folder ({', '.join(map(repr, empty[:5]))}): "
            "torchvision's ImageFolder numbers the classes without them; dataset.json lists them under "
            "classes_without_images"
        )
    with shared_staging(out, overwrite) as staging:
        for paths in relpaths.values():
            for folder in sorted({p.rsplit("/", 1)[0] for p in paths}):
                (staging / folder).mkdir(parents=True, exist_ok=True)  # every rank: exist_ok absorbs the race
        held = {name: s for name, s in splits.items() if name not in rendering}
        digests = _write_held(staging, held, relpaths, workers) if held else {}
        for name, plan in rendering.items():
            digests[name] = _write_rendered(staging, splits[name], relpaths[name], plan, workers)
        if is_main():
            for name, data in (extra_files or {}).items():
                (staging / name).write_bytes(data)
            write_dataset_json(staging, summary)

            def records() -> Iterator[dict]:  # made as they are written, twice, never held as a list
                for name, s in splits.items():
                    for path, label, prov, digest in zip(
                        relpaths[name], s.labels.tolist(), s.provenance, digests[name], strict=True
                    ):
                        yield manifest_record(path, name, s.class_names[label], prov, digest)

            write_hf_metadata(staging, records(), flat)
            write_manifest(staging, records())
    return WriteResult(out, out / MANIFEST_NAME, out / DATASET_JSON_NAME, summary)


def _write_held(
    staging: Path, splits: dict[str, ImageSet], relpaths: dict[str, list[str]], workers: int
) -> dict[str, list[str]]:
    """Write every split's PNGs from the pixels in memory, each rank its share; the digests by split."""
    split_names = list(splits)
    shared = (staging, [(splits[n].images, relpaths[n]) for n in split_names])
    tasks = [
        (k, start, min(start + _CHUNK, len(splits[name])))
        for k, name in enumerate(split_names)
        for start in range(0, len(splits[name]), _CHUNK)
    ]

    def write_share(share: list[tuple[int, int, int]]) -> list[list[str]]:
        with progress("writing PNGs", sum(stop - start for _, start, stop in share)) as advance:
            return parallel_map(_write_chunk, shared, share, workers, on_result=lambda t, _: advance(t[2] - t[1]))

    digests = [chunk for share in run_shares(tasks, write_share) for chunk in share]
    digest_by_split: dict[str, list[str]] = {name: [] for name in split_names}
    for (k, _, _), chunk in zip(tasks, digests, strict=True):
        digest_by_split[split_names[k]] += chunk
    return digest_by_split


def _groups(batches: list[tuple[int, int]], images: int) -> list[list[tuple[int, int]]]:
    """Consecutive ``batches`` gathered into groups spanning at most ``images`` (at least one batch each)."""
    groups: list[list[tuple[int, int]]] = []
    for batch in batches:
        if groups and batch[1] - groups[-1][0][0] <= images:
            groups[-1].append(batch)
        else:
            groups.append([batch])
    return groups


def _write_rendered(
    staging: Path, image_set: ImageSet, relpaths: list[str], rendering: Rendering, workers: int
) -> list[str]:
    """Render and write one split in groups of whole batches holding about ``_RENDERED_BYTES`` of pixels, each
    rank its share of the batches; the digests in order (only they travel between ranks, never pixels)."""
    image_bytes = int(np.prod(image_set.images.shape[1:]))
    per_group = max(1, _RENDERED_BYTES // max(1, image_bytes))

    def write_share(share: list[tuple[int, int]]) -> list[str]:
        digests: list[str] = []
        with progress("rendering and writing PNGs", sum(stop - start for start, stop in share)) as advance:
            for group in _groups(share, per_group):
                first, last = group[0][0], group[-1][1]
                pixels = rendering.render(first, last)
                chunks = [(0, start, min(start + _CHUNK, last - first)) for start in range(0, last - first, _CHUNK)]
                shared = (staging, [(pixels, relpaths[first:last])])
                written = parallel_map(
                    _write_chunk, shared, chunks, workers, on_result=lambda t, _: advance(t[2] - t[1])
                )
                digests += [digest for chunk in written for digest in chunk]
        return digests

    return [digest for share in run_shares(rendering.batches, write_share) for digest in share]


def hf_metadata_path(split: str, flat: bool) -> str:
    """Where a split's ``metadata.jsonl`` goes, relative to the output folder.

    Hugging Face takes a split's files from its ``<split>/`` folder, so a root file would be ignored beside
    split folders; a flat output is one ``train`` split whose root file sits above the class folders.
    """
    return HF_METADATA_NAME if flat else f"{split}/{HF_METADATA_NAME}"


def _hf_value(value: Any) -> str:
    """A provenance value as text, ``""`` where it does not apply.

    Hugging Face infers a metadata column's type from its values and refuses splits whose types differ; a
    column that is null throughout (``seed`` of a test split of originals) would be typed ``null`` in one
    split and ``int64`` in the other. Text in every line keeps one schema; the manifest keeps the JSON types.
    """
    if value is None:
        return ""
    return value if isinstance(value, str) else jsonio.dumps(value, ensure_ascii=False)


def hf_metadata_record(record: dict, flat: bool) -> dict[str, str]:
    """A manifest record as a line of Hugging Face's ``metadata.jsonl``: ``file_name`` relative to the
    metadata file, ``label`` (the class name: with a metadata file present, folder names are not labels),
    ``split``, every provenance field flat, and ``sha256``."""
    folder = "" if flat else f"{record['split']}/"
    line = {"file_name": record["path"].removeprefix(folder), "label": record["class"], "split": record["split"]}
    line.update({key: _hf_value(record.get(key)) for key in PROVENANCE_KEYS})
    line["sha256"] = record["sha256"]
    return line


def write_hf_metadata(folder: Path, records: Iterable[dict], flat: bool) -> list[Path]:
    """Write one ``metadata.jsonl`` per split folder (one at the root when ``flat``) under ``folder``, line by
    line as ``records`` come (they come split by split, as ``write_imagefolder`` makes them)."""
    written: list[Path] = []
    for relpath, group in itertools.groupby(records, key=lambda record: hf_metadata_path(record["split"], flat)):
        if folder / relpath in written:
            raise ValueError(f"records of {relpath} are not together")
        lines = (jsonio.dumps(hf_metadata_record(record, flat), ensure_ascii=False) + "\n" for record in group)
        write_lines_atomic(folder / relpath, lines)
        written.append(folder / relpath)
    return written


def dataset_summary(splits: dict[str, ImageSet], command: str, extra: dict | None = None) -> dict:
    """The contents of ``dataset.json``."""
    first = next(iter(splits.values()))
    sources: Counter[str] = Counter()
    for image_set in splits.values():
        sources.update(p["source"] for p in image_set.provenance)
    summary = {
        "format_version": FORMAT_VERSION,
        "augmentor_version": __version__,
        # Sorted by name: the index torchvision's ImageFolder and Hugging Face give each class (the source's own
        # order, e.g. Fashion-MNIST's, would disagree with them by index).
        "classes": sorted(first.class_names),
        "class_index": "sorted by name, as torchvision's ImageFolder and Hugging Face number the classes",
        "image_size": list(first.size),
        "channels": first.channels,
        "layout": "flat" if list(splits) == ["train"] else "splits",
        # Hugging Face `load_dataset("imagefolder", data_dir=OUT)` reads labels and provenance from these
        "hf_metadata": [hf_metadata_path(name, list(splits) == ["train"]) for name, s in splits.items() if len(s)],
        "splits": {name: {"total": len(s), "per_class": s.source_counts()} for name, s in splits.items()},
        "sources": dict(sorted(sources.items())),
        "command": command,
    }
    empty = empty_classes(splits)
    if empty:  # listed, so a reader of "classes" knows which of them have no folder
        summary["classes_without_images"] = empty
    summary.update(extra or {})
    return summary


def empty_classes(splits: dict[str, ImageSet]) -> list[str]:
    """Classes with no image in any split: they get no folder, so an ImageFolder reader numbers the rest."""
    first = next(iter(splits.values()))
    held = {int(label) for image_set in splits.values() for label in np.unique(image_set.labels)}
    return sorted(name for k, name in enumerate(first.class_names) if k not in held)
