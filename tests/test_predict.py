"""``augmentor classify predict``: labels and probabilities of a trained classifier for image files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import make_shapes_folder, run_cli, write_png


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    """(a classifier run on drawn shapes, the shapes' test folder)."""
    from augmentor.classifiers.classifier import train_run
    from augmentor.classifiers.train import TrainConfig

    root = tmp_path_factory.mktemp("predict")
    data = make_shapes_folder(root / "data", per_class=24, splits=True, seed=1)
    train_run(str(data), TrainConfig(steps=150, batch_size=32, seed=3), root / "run")
    return root / "run", data / "test"


def test_a_folder_is_labelled_above_chance_with_probabilities_that_sum_to_one(trained, tmp_path):
    run, test = trained
    result = run_cli("classify", "predict", run, test, "--json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    rows = document["predictions"]
    files = sorted(str(p) for p in test.rglob("*.png"))
    assert [r["file"] for r in rows] == files  # every image, in sorted order
    correct = [Path(r["file"]).parent.name == r["label"] for r in rows]
    assert np.mean(correct) > 0.6  # chance is 1/3
    for row in rows:
        assert len(row["top"]) == 3 and row["top"][0] == [row["label"], row["probability"]]
        assert abs(sum(p for _, p in row["top"]) - 1) < 1e-5  # three classes: the top 3 are all of them
    again = run_cli("classify", "predict", run, test, "--json")
    assert json.loads(again.stdout) == document  # the same inputs, the same numbers


def test_out_csv_has_one_row_per_image_and_is_not_clobbered(trained, tmp_path):
    run, test = trained
    out = tmp_path / "p.csv"
    files = [test / "disk" / "disk000.png", test / "square"]  # a file and a folder
    result = run_cli("classify", "predict", run, *files, "--out", out, "--top", "1")
    assert result.exit_code == 0, result.stderr
    assert "predictions of" in result.stdout and f"written to {out}" in result.stdout
    with out.open() as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["file", "label", "probability", "disk", "square", "triangle"]
    assert len(rows) == 1 + 1 + 24
    for row in rows[1:]:
        assert abs(sum(float(v) for v in row[3:]) - 1) < 1e-4 and row[1] in ("disk", "square", "triangle")
    again = run_cli("classify", "predict", run, *files, "--out", out)
    assert again.exit_code == 2 and "--overwrite" in again.stderr
    assert run_cli("classify", "predict", run, *files, "--out", out, "--overwrite").exit_code == 0
    json_out = tmp_path / "p.json"
    assert run_cli("classify", "predict", run, files[0], "--out", json_out).exit_code == 0
    assert json.loads(json_out.read_text())["predictions"][0]["file"] == str(files[0])


def test_bad_images_and_outputs_are_one_error_line(trained, tmp_path):
    run, test = trained
    big = tmp_path / "big.png"
    write_png(big, np.zeros((32, 32, 1), np.uint8))
    result = run_cli("classify", "predict", run, test / "disk" / "disk000.png", big)
    assert result.exit_code == 2 and str(big) in result.stderr and "--image-size" in result.stderr
    assert run_cli("classify", "predict", run, big, "--image-size", "28").exit_code == 0  # converted: fine
    missing = run_cli("classify", "predict", run, tmp_path / "nothing.png")
    assert missing.exit_code == 2 and "no such file or folder" in missing.stderr
    (tmp_path / "empty").mkdir()
    empty = run_cli("classify", "predict", run, tmp_path / "empty")
    assert empty.exit_code == 2 and "no image files in this folder" in empty.stderr
    wrong = run_cli("classify", "predict", run, big, "--out", tmp_path / "p.txt")
    assert wrong.exit_code == 2 and ".csv or .json" in wrong.stderr
    colour = tmp_path / "colour.png"
    write_png(colour, np.zeros((28, 28, 3), np.uint8))
    result = run_cli("classify", "predict", run, colour)
    assert result.exit_code == 2 and str(colour) in result.stderr and "--channels 1" in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_an_unreadable_file_stops_unless_skip_corrupt(trained, tmp_path):
    run, test = trained
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png at all")
    good = test / "disk" / "disk001.png"
    result = run_cli("classify", "predict", run, good, broken)
    assert result.exit_code == 2 and str(broken) in result.stderr and "--skip-corrupt" in result.stderr
    assert len(result.stderr.splitlines()) == 1 and result.stdout == ""
    skipped = run_cli("classify", "predict", run, good, broken, "--skip-corrupt", "--json")
    assert skipped.exit_code == 0, skipped.stderr
    document = json.loads(skipped.stdout)
    assert [r["file"] for r in document["predictions"]] == [str(good)]
    assert [s["file"] for s in document["skipped"]] == [str(broken)] and str(broken) in skipped.stderr


def test_library_rows_sum_to_one_and_chunks_do_not_change_the_numbers(trained, monkeypatch):
    import augmentor.classifiers.predict as predict

    run, test = trained
    whole = predict.predict_files(run, [str(test)], device="cpu", top=2)
    assert whole.proba.shape == (72, 3) and np.allclose(whole.proba.sum(axis=1), 1, atol=1e-5)
    assert all(len(row["top"]) == 2 for row in whole.document()["predictions"])
    monkeypatch.setattr(predict, "CHUNK", 7)  # scored 7 at a time: the same numbers, the same order
    chunked = predict.predict_files(run, [str(test)], device="cpu", top=2)
    assert chunked.files == whole.files and np.allclose(chunked.proba, whole.proba, atol=1e-6)


def test_paths_on_stdin(trained):
    run, test = trained
    listed = sorted(str(p) for p in (test / "triangle").glob("*.png"))[:5]
    result = run_cli("classify", "predict", run, "-", "--json", input="\n".join(listed) + "\n")
    assert result.exit_code == 0, result.stderr
    assert [r["file"] for r in json.loads(result.stdout)["predictions"]] == listed
