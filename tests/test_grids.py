"""Image grids: the bare grid's bytes unchanged, labels in margins that really hold ink, the classic preview."""

from __future__ import annotations

import io
import json
from collections import Counter

import numpy as np
import pytest
from PIL import Image, ImageFont

from augmentor.report.grids import grid_png
from tests.conftest import REPO, make_shapes_folder, run_cli


def _reference_grid_png(rows: list[list[np.ndarray]], gap_after_first: bool = True) -> bytes:
    """``grid_png`` as it was before labels existed, kept verbatim: the unlabelled grid must not change."""
    gap, min_cell = 2, 64
    height, width = rows[0][0].shape[1:]
    scale = max(1, -(-min_cell // max(height, width)))
    cell_h, cell_w = height * scale, width * scale
    columns = max(len(r) for r in rows)
    extra = 3 * gap if gap_after_first else 0
    canvas = np.full((len(rows) * (cell_h + gap) + gap, columns * (cell_w + gap) + gap + extra, 3), 255, np.uint8)
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            hwc = image.transpose(1, 2, 0)
            if hwc.shape[2] == 1:
                hwc = np.repeat(hwc, 3, axis=2)
            big = hwc.repeat(scale, axis=0).repeat(scale, axis=1)
            y = gap + r * (cell_h + gap)
            x = gap + c * (cell_w + gap) + (extra if c > 0 else 0)
            canvas[y : y + cell_h, x : x + cell_w] = big
    buffer = io.BytesIO()
    Image.fromarray(canvas).save(buffer, format="PNG")
    return buffer.getvalue()


def _pixels(png: bytes) -> np.ndarray:
    """H×W grey levels of a PNG."""
    return np.asarray(Image.open(io.BytesIO(png)).convert("L"))


def _rows(count: int = 2, columns: int = 3, value: int = 200, shape: tuple[int, ...] = (1, 16, 16)) -> list:
    """Light grey cells (nothing in them is dark, so dark pixels can only be text)."""
    return [[np.full(shape, value, np.uint8) for _ in range(columns)] for _ in range(count)]


@pytest.mark.parametrize("gap_after_first", [True, False])
@pytest.mark.parametrize(
    "shape", [(1, 10, 12), (3, 70, 70), (1, 28, 28)], ids=["small-upscaled", "large-rgb", "fashion-size"]
)
def test_unlabelled_grid_is_byte_identical_to_before(gap_after_first, shape):
    rng = np.random.default_rng(0)
    rows = [[rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(n)] for n in (4, 2, 3)]  # ragged rows too
    assert grid_png(rows, gap_after_first) == _reference_grid_png(rows, gap_after_first)
    assert grid_png(rows, gap_after_first=gap_after_first) == _reference_grid_png(rows, gap_after_first)


def test_each_label_kind_adds_its_margin():
    rows = _rows()
    bare = _pixels(grid_png(rows)).shape
    with_rows = _pixels(grid_png(rows, row_labels=["disk", "square"])).shape
    with_title = _pixels(grid_png(rows, title="medium")).shape
    with_columns = _pixels(grid_png(rows, column_labels=["original", "copy 1", "copy 2"])).shape
    both = _pixels(grid_png(rows, column_labels=["a", "b", "c"], title="t")).shape
    assert with_rows[1] > bare[1] and with_rows[0] == bare[0]
    assert with_title[0] > bare[0] and with_title[1] == bare[1]
    assert with_columns[0] > bare[0] and with_columns[1] == bare[1]
    assert both[0] > max(with_title[0], with_columns[0])  # the title and the column labels get a line each


def test_labels_are_drawn_in_their_margins():
    rows = _rows()
    bare_h, bare_w = _pixels(grid_png(rows)).shape
    picture = _pixels(grid_png(rows, row_labels=["disk", "square"]))
    margin = picture[:, : picture.shape[1] - bare_w]
    assert (margin < 128).any()
    # Each label sits beside its own row: dark pixels in the upper half's margin and in the lower half's.
    assert (margin[: bare_h // 2] < 128).any() and (margin[bare_h // 2 :] < 128).any()
    assert (picture[:, picture.shape[1] - bare_w :] >= 128).all()  # nothing dark drawn over the cells
    titled = _pixels(grid_png(rows, column_labels=["x", "y", "z"], title="medium"))
    assert (titled[: titled.shape[0] - bare_h] < 128).any()


def test_empty_labels_leave_the_margin_white():
    rows = _rows()
    bare_w = _pixels(grid_png(rows)).shape[1]
    picture = _pixels(grid_png(rows, row_labels=["", ""]))
    assert picture.shape[1] > bare_w  # the margin is there (padding) …
    assert (picture[:, : picture.shape[1] - bare_w] == 255).all()  # … but holds no ink


def test_long_labels_are_shortened():
    rows = _rows(columns=2)
    long_name = "a-very-long-file-name-that-goes-on-and-on-and-on-0001.png"
    truncated = _pixels(grid_png(rows, row_labels=[long_name, "x"])).shape[1]
    assert truncated == _pixels(grid_png(rows, row_labels=[long_name[:47] + "…", "x"])).shape[1]
    pair = "T-shirt_top -> Ankle_boot"  # an interpolation row's label is shown whole
    assert (
        _pixels(grid_png(rows, row_labels=[pair, "x"])).shape[1]
        > _pixels(grid_png(rows, row_labels=[pair[:-1], "x"])).shape[1]
    )
    bare_w = _pixels(grid_png(rows)).shape[1]
    assert truncated - bare_w < ImageFont.load_default().getlength(long_name)  # the whole name would not fit
    bare_h, bare_w = _pixels(grid_png(rows, gap_after_first=False)).shape  # now without the wider first gap
    # A column label wider than its cell is cut to the cell: the picture grows no wider, and no ink from
    # the first column's label reaches past the middle of the second cell.
    picture = _pixels(grid_png(rows, gap_after_first=False, column_labels=["reconstruction " * 5, ""]))
    assert picture.shape[1] == bare_w
    band = picture[: picture.shape[0] - bare_h]
    assert (band < 128).any() and not (band[:, bare_w // 2 + bare_w // 4 :] < 128).any()


def test_labels_outside_latin1_and_wrong_counts():
    rows = _rows(count=1, columns=2)
    assert _pixels(grid_png(rows, row_labels=["Ankle boot…中"], title="é")).size
    with pytest.raises(ValueError, match="row labels"):
        grid_png(rows, row_labels=["a", "b"])
    with pytest.raises(ValueError, match="column labels"):
        grid_png(rows, column_labels=["a"])


def _dark_bands(column_of_rows: np.ndarray, min_gap: int = 20) -> list[tuple[int, int]]:
    """Runs of image rows holding dark pixels, runs closer than ``min_gap`` merged: one per text line."""
    dark = np.flatnonzero(column_of_rows)
    bands: list[tuple[int, int]] = []
    for y in dark.tolist():
        if bands and y - bands[-1][1] < min_gap:
            bands[-1] = (bands[-1][0], y)
        else:
            bands.append((y, y))
    return bands


def test_classic_preview_names_every_class(tmp_path):
    shapes = make_shapes_folder(tmp_path / "shapes")  # 3 classes × 6 grey 28×28 images
    out = tmp_path / "out"
    result = run_cli("classic", shapes, "--per-class", "12", "--pipeline", "light", "--out", out)
    assert result.exit_code == 0, result.stderr
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    copies = max(Counter(r["parent"] for r in records if r["source"] == "classic").values())
    picture = np.asarray(Image.open(out / "preview.png").convert("L"))
    # The bare grid (28 px images upscaled ×3 into 84 px cells) lies in the bottom-right corner.
    cell, gap = 84, 2
    bare_h, bare_w = 3 * (cell + gap) + gap, (1 + copies) * (cell + gap) + gap + 3 * gap
    top, left = picture.shape[0] - bare_h, picture.shape[1] - bare_w
    assert 0 < top < 60 and left > 0
    margin = picture[top:, :left] < 128
    assert margin.any()  # the class names
    bands = _dark_bands(margin.any(axis=1))
    assert len(bands) == 3  # one label per class, so one row per class
    for row, (start, stop) in enumerate(bands):  # each name beside its own row of cells
        assert gap + row * (cell + gap) < (start + stop) / 2 < (row + 1) * (cell + gap)
    assert (picture[:top] < 128).any()  # the title and "original" / "copy 1" above the columns


def test_the_filter_picture_has_a_title_and_row_ranges(tmp_path):
    """Issue 12: `inspect filters` labels its grid (the run, the count and size of the kernels, the rows)."""
    from augmentor.classifiers.classifier import Classifier
    from augmentor.classifiers.inspect import filters_png

    run = REPO / "weights" / "fashion-mnist" / "classifier"
    labelled = np.asarray(Image.open(io.BytesIO(filters_png(run))).convert("L"))
    kernels = Classifier.from_run(run).model.first_conv().weight.shape[0]
    bare = grid_png([[np.zeros((1, 3, 3), np.uint8)] * 8] * (kernels // 8), gap_after_first=False)
    bare_h, bare_w = np.asarray(Image.open(io.BytesIO(bare))).shape[:2]
    assert labelled.shape[0] > bare_h and labelled.shape[1] > bare_w  # title above, row ranges left
    assert (labelled[: labelled.shape[0] - bare_h] < 128).any()  # the title is drawn


def test_cell_labels_are_drawn_under_each_image():
    rows = _rows(count=2, columns=3)
    bare_h, bare_w = _pixels(grid_png(rows, gap_after_first=False)).shape
    picture = _pixels(grid_png(rows, gap_after_first=False, cell_labels=[["a", "b", "c"], ["d", "e", "f"]]))
    assert picture.shape[1] == bare_w and picture.shape[0] > bare_h  # a line under each row, no wider
    assert (picture < 128).any()  # the labels hold ink; the cells themselves are light grey
    with pytest.raises(ValueError, match="cell labels"):
        grid_png(rows, cell_labels=[["a", "b", "c"], ["d"]])


def test_seed_grid_labels_each_image_with_its_seed_and_titles_psi(tmp_path, monkeypatch):
    """`sample --seeds --psi --truncation --grid`: each image says its seed, the title says ψ and the truncation."""
    import augmentor.report.grids as grids
    from augmentor.generative.sample import SampleConfig, sample_run

    calls: list[dict] = []
    real = grids.grid_png
    monkeypatch.setattr(grids, "grid_png", lambda *a, **k: calls.append(k) or real(*a, **k))
    config = SampleConfig(class_name="Dress", seeds=tuple(range(12)), psi=0.7, truncation=1.5, device="cpu")
    run = REPO / "weights" / "fashion-mnist" / "dcgan"
    sample_run(run, config, tmp_path / "s", grid=tmp_path / "s.png")
    (drawn,) = calls
    assert drawn["cell_labels"] == [[f"seed {s}" for s in range(10)], ["seed 10", "seed 11"]]
    assert drawn["title"] == "dcgan (dcgan), class Dress, psi=0.7, truncation 1.5"
    assert (tmp_path / "s.png").is_file()
