"""Hugging Face ``imagefolder`` metadata: every output carries ``metadata.jsonl`` that datasets can load.

``datasets`` is not a dependency, so ``hf_rows`` re-implements the rule its ImageFolder builder follows when a
metadata file is present: a split's files are those under its ``<split>/`` folder (the whole root when there
is no split folder), each metadata row is one example, and ``file_name`` is joined to the metadata file's folder.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from augmentor.data.imageset import PROVENANCE_KEYS
from tests.conftest import files_under, make_shapes_folder, run_cli

HF_SPLIT_FOLDERS = ("train", "test")  # the split names augmentor writes; both are Hugging Face split keywords


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def metadata_files(root: Path) -> dict[str, Path]:
    """Each split's metadata files as Hugging Face finds them (one per split is what augmentor writes)."""
    split_roots = {name: root / name for name in HF_SPLIT_FOLDERS if (root / name).is_dir()} or {"train": root}
    found = {}
    for split, folder in split_roots.items():
        files = sorted(folder.rglob("metadata.jsonl"))
        assert len(files) == 1, f"{split}: {files}"
        found[split] = files[0]
    return found


def hf_rows(root: Path) -> dict[str, list[dict]]:
    """The examples ``load_dataset("imagefolder", data_dir=root)`` yields per split, ``path`` relative to root."""
    rows: dict[str, list[dict]] = {}
    for split, metadata in metadata_files(root).items():
        for row in read_jsonl(metadata):
            image = (metadata.parent / row["file_name"]).relative_to(root).as_posix()
            rows.setdefault(split, []).append({**row, "image": image})
    return rows


def check_imagefolder_metadata(root: Path) -> dict[str, list[dict]]:
    """The checks every output passes; returns the rows by split."""
    manifest = read_jsonl(root / "manifest.jsonl")
    rows = hf_rows(root)
    every = [row for split_rows in rows.values() for row in split_rows]
    # Every image of a class folder has exactly one line; a root PNG (classic's preview) is no dataset image.
    pngs = {p for p in files_under(root) if p.endswith(".png") and "/" in p}
    assert Counter(row["image"] for row in every) == Counter(pngs)
    assert {p for p in files_under(root) if p.endswith(".png") and "/" not in p} <= {"preview.png"}
    for split, split_rows in rows.items():
        for row in split_rows:
            assert (root / row["image"]).is_file()
            assert row["label"] == Path(row["image"]).parent.name  # labels are the class folder names
            assert row["split"] == split
    # What datasets would load equals the manifest: (path, split, class) and every provenance field.
    assert sorted((r["image"], r["split"], r["label"]) for r in every) == sorted(
        (r["path"], r["split"], r["class"]) for r in manifest
    )
    by_path = {r["path"]: r for r in manifest}
    for row in every:
        record = by_path[row["image"]]
        assert row["sha256"] == record["sha256"]
        for key in PROVENANCE_KEYS:
            value = record[key]
            assert row[key] == ("" if value is None else value if isinstance(value, str) else json.dumps(value))
    # One schema in every file and line: datasets refuses metadata files whose inferred features differ.
    assert len({tuple((k, type(v).__name__) for k, v in row.items() if k != "image") for row in every}) == 1
    return rows


def test_export_of_a_split_dataset_has_one_metadata_file_per_split(shapes_splits, tmp_path):
    out = tmp_path / "out"
    assert run_cli("data", "export", shapes_splits, "--out", out).exit_code == 0
    rows = check_imagefolder_metadata(out)
    assert sorted(rows) == ["test", "train"] and not (out / "metadata.jsonl").exists()  # a root file is ignored
    assert {len(r) for r in rows.values()} == {15}
    first = rows["train"][0]
    assert first["file_name"].count("/") == 1 and not first["file_name"].startswith("train/")
    assert all(row["source"] == "real" and row["seed"] == "" for split in rows.values() for row in split)
    summary = json.loads((out / "dataset.json").read_text())
    assert summary["hf_metadata"] == ["train/metadata.jsonl", "test/metadata.jsonl"]


def test_classic_flat_output_carries_provenance(shapes_folder, tmp_path):
    out = tmp_path / "out"
    result = run_cli("classic", shapes_folder, "--per-image", "1", "--out", out)
    assert result.exit_code == 0, result.stderr
    rows = check_imagefolder_metadata(out)
    assert list(rows) == ["train"] and (out / "metadata.jsonl").is_file()
    assert (out / "preview.png").is_file()  # at the root, beside the metadata: not one of its images
    augmented = [row for row in rows["train"] if row["source"] == "classic"]
    assert len(augmented) == 18
    manifest = {r["path"]: r for r in read_jsonl(out / "manifest.jsonl")}
    for row in augmented:
        record = manifest[row["file_name"]]
        assert row["pipeline"] == record["pipeline"] and row["seed"] == str(record["seed"]) != ""
        assert row["parent"] == record["parent"] != ""
    assert json.loads((out / "dataset.json").read_text())["hf_metadata"] == ["metadata.jsonl"]


def test_classic_split_output_keeps_one_schema_across_splits(tmp_path):
    """Augmented train beside an untouched test split: test's seed is empty text, not a column of nulls."""
    data = make_shapes_folder(tmp_path / "data", per_class=3, size=16, splits=True)
    out = tmp_path / "out"
    assert run_cli("classic", data, "--per-image", "1", "--out", out).exit_code == 0
    rows = check_imagefolder_metadata(out)
    assert {row["source"] for row in rows["test"]} == {"real"} and {row["seed"] for row in rows["test"]} == {""}
    assert all(row["seed"].isdigit() for row in rows["train"] if row["source"] == "classic")
    assert list(rows["train"][0]) == list(rows["test"][0])  # same columns, same order
