"""The provenance manifest (``manifest.jsonl``) and dataset summary (``dataset.json``) of an output."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from augmentor.core import jsonio
from augmentor.core.bounded import InputTooLarge, read_jsonl
from augmentor.core.errors import UserError
from augmentor.core.outdir import write_file_atomic, write_lines_atomic
from augmentor.data.imageset import OPTIONAL_PROVENANCE_KEYS, PROVENANCE_KEYS

MANIFEST_NAME = "manifest.jsonl"
DATASET_JSON_NAME = "dataset.json"
_READ_KEYS = frozenset(PROVENANCE_KEYS + OPTIONAL_PROVENANCE_KEYS)
FORMAT_VERSION = 2  # 2: explicit direction, strength and sigma fields in the manifest


def manifest_record(path: str, split: str, class_name: str, provenance: dict[str, Any], sha256: str) -> dict:
    """One manifest line; every key present (null where it does not apply) so tools can rely on it."""
    record: dict[str, Any] = {"path": path, "split": split, "class": class_name}
    for key in PROVENANCE_KEYS:
        record[key] = provenance.get(key)
    record.update({key: provenance[key] for key in OPTIONAL_PROVENANCE_KEYS if provenance.get(key) is not None})
    record["sha256"] = sha256
    return record


def write_manifest(folder: Path, records: Iterable[dict]) -> Path:
    """Write ``manifest.jsonl`` atomically, line by line as ``records`` come; callers write it last."""
    path = folder / MANIFEST_NAME
    write_lines_atomic(path, (jsonio.dumps(r, ensure_ascii=False) + "\n" for r in records))
    return path


def write_dataset_json(folder: Path, summary: dict) -> Path:
    """Write ``dataset.json`` (classes, counts per split/class/source, command, version)."""
    path = folder / DATASET_JSON_NAME
    write_file_atomic(path, (jsonio.dumps(summary, indent=2, ensure_ascii=False) + "\n").encode())
    return path


def read_manifest(root: Path) -> list[dict]:
    """The manifest's records, or an empty list when ``root`` has none."""
    path = root / MANIFEST_NAME
    if not path.is_file():
        return []
    return read_jsonl(path, MANIFEST_NAME)


def read_manifest_provenance(root: Path) -> dict[str, dict[str, Any]]:
    """Map each manifest path to its provenance fields, so re-reading an output keeps its sources."""
    try:
        records = read_manifest(root)
    except InputTooLarge:
        raise
    except UserError:  # a manifest that does not parse: its images are read as real ones
        return {}
    found: dict[str, dict[str, Any]] = {}
    for line, record in enumerate(records, start=1):
        if not isinstance(record, dict) or "path" not in record:
            continue
        fields = {k: v for k, v in upgrade_record(record).items() if k in _READ_KEYS and v is not None}
        # Provenance is plain values (it is counted, compared and written again): a nested or odd value in
        # a manifest someone else wrote would surface later as a crash far from the file.
        odd = next((k for k, v in fields.items() if not isinstance(v, str | int | float | bool)), None)
        if odd is not None or not isinstance(record["path"], str):
            key, value = (odd, fields[odd]) if odd is not None else ("path", record["path"])
            raise UserError(
                f"{root / MANIFEST_NAME}: record {line}: {key!r} is a {type(value).__name__}, not a plain "
                "value; fix the line or delete the manifest (the images are then read as real ones)"
            )
        found[record["path"]] = fields
    return found


def upgrade_record(record: dict[str, Any]) -> dict[str, Any]:
    """An older manifest's ``pipeline`` of ``direction=D strength=S`` or ``sigma=S`` as explicit fields."""
    packed = record.get("pipeline")
    if not isinstance(packed, str) or not packed.startswith(("direction=", "sigma=")):
        return record
    fields: dict[str, Any] = {}
    for part in packed.split():
        key, _, value = part.partition("=")
        fields[key] = value
    # An edit conditioned on another direction said so after the strength; it stays in "pipeline".
    condition = fields.get("condition-on")
    upgraded = {**record, "pipeline": f"condition-on={condition}" if condition else None}
    if "direction" in fields:
        upgraded["direction"] = fields["direction"]
    for key in ("strength", "sigma"):
        if key in fields:
            try:
                upgraded[key] = float(fields[key])
            except ValueError:
                return record  # not what an older augmentor wrote: keep it as it is
    return upgraded
