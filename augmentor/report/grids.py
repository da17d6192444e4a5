"""Image grids as PNG bytes (PIL only: quick looks must not pay for matplotlib)."""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from PIL import Image, ImageDraw, ImageFont

_GAP = 2
_MIN_CELL = 64  # small images are upscaled (nearest) to at least this many pixels
_PAD = 4  # white space around label text
_MAX_ROW_LABEL = 48  # characters: "T-shirt_top -> Ankle_boot" whole, a long file name not pushing the images away
_MAX_TITLE = 80
_INK = (0, 0, 0)


@dataclass(frozen=True)
class _Layout:
    """Where the cells lie on the unlabelled canvas."""

    scale: int
    cell_h: int
    cell_w: int
    row_y: list[int]
    column_x: list[int]
    height: int
    width: int


def grid_png(
    rows: list[list[np.ndarray]],
    gap_after_first: bool = True,
    *,
    row_labels: list[str] | None = None,
    column_labels: list[str] | None = None,
    title: str | None = None,
    cell_labels: list[list[str]] | None = None,
) -> bytes:
    """Draw rows of C×H×W uint8 images; a wider gap after each row's first image (the original).

    ``row_labels`` go in a left margin, ``column_labels`` above the columns, ``title`` on top and
    ``cell_labels`` (one per image, rows as ``rows``) in a line under each image. Without any of them the
    PNG is the bare grid, byte for byte as before labels existed.
    """
    picture = grid_picture(
        rows, gap_after_first, row_labels=row_labels, column_labels=column_labels, title=title, cell_labels=cell_labels
    )
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def grid_picture(
    rows: list[list[np.ndarray]],
    gap_after_first: bool = True,
    *,
    row_labels: list[str] | None = None,
    column_labels: list[str] | None = None,
    title: str | None = None,
    cell_labels: list[list[str]] | None = None,
) -> Image.Image:
    """``grid_png``'s picture before encoding (a GIF's frames are labelled grids too)."""
    from PIL import Image

    if row_labels is not None and len(row_labels) != len(rows):
        raise ValueError(f"{len(row_labels)} row labels for {len(rows)} rows")
    if cell_labels is not None and [len(r) for r in cell_labels] != [len(r) for r in rows]:
        raise ValueError("cell labels must match the rows of images one for one")
    caption_h = _line_box()[1] - _line_box()[0] + _PAD if cell_labels is not None else 0
    layout = _layout(rows, gap_after_first, caption_h)
    if column_labels is not None and len(column_labels) != len(layout.column_x):
        raise ValueError(f"{len(column_labels)} column labels for {len(layout.column_x)} columns")
    picture = Image.fromarray(_draw_cells(rows, layout))
    if row_labels is not None or column_labels is not None or title is not None or cell_labels is not None:
        picture = _labelled(picture, layout, row_labels, column_labels, title, cell_labels)
    return picture


def _layout(rows: list[list[np.ndarray]], gap_after_first: bool, caption_h: int = 0) -> _Layout:
    """``caption_h`` pixels are left free under every row for its images' labels (none by default)."""
    height, width = rows[0][0].shape[1:]
    scale = max(1, -(-_MIN_CELL // max(height, width)))
    cell_h, cell_w = height * scale, width * scale
    columns = max(len(r) for r in rows)
    extra = 3 * _GAP if gap_after_first else 0
    row_y = [_GAP + r * (cell_h + caption_h + _GAP) for r in range(len(rows))]
    column_x = [_GAP + c * (cell_w + _GAP) + (extra if c > 0 else 0) for c in range(columns)]
    return _Layout(
        scale,
        cell_h,
        cell_w,
        row_y,
        column_x,
        len(rows) * (cell_h + caption_h + _GAP) + _GAP,
        columns * (cell_w + _GAP) + _GAP + extra,
    )


def _draw_cells(rows: list[list[np.ndarray]], layout: _Layout) -> np.ndarray:
    """The bare grid: white canvas, each image upscaled (nearest) into its cell, grey made RGB."""
    canvas = np.full((layout.height, layout.width, 3), 255, np.uint8)
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            hwc = image.transpose(1, 2, 0)
            if hwc.shape[2] == 1:
                hwc = np.repeat(hwc, 3, axis=2)
            big = hwc.repeat(layout.scale, axis=0).repeat(layout.scale, axis=1)
            y, x = layout.row_y[r], layout.column_x[c]
            canvas[y : y + layout.cell_h, x : x + layout.cell_w] = big
    return canvas


@functools.cache
def _font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    from PIL import ImageFont

    return ImageFont.load_default()


def _printable(text: str) -> str:
    """``text`` as the font can draw it: Pillow's old bitmap default font knows Latin-1 alone."""
    from PIL import ImageFont

    if isinstance(_font(), ImageFont.FreeTypeFont):
        return text
    return text.replace("…", "...").encode("latin-1", "replace").decode("latin-1")


def _text_width(text: str) -> int:
    if not text:
        return 0
    left, _, right, _ = _font().getbbox(text)
    return right - left


def _line_box() -> tuple[int, int]:
    """The top and bottom of a line's glyphs below the pen position, the same for every label."""
    _, top, _, bottom = _font().getbbox("Ag|")
    return top, bottom


def _truncated(text: str, characters: int) -> str:
    """At most ``characters`` characters, the cut marked with an ellipsis."""
    return text if len(text) <= characters else text[: characters - 1] + "…"


def _fitted(text: str, pixels: int) -> str:
    """``text`` cut (with an ellipsis) until it is at most ``pixels`` wide."""
    text = _printable(text)
    if _text_width(text) <= pixels:
        return text
    mark = _printable("…")
    while text and _text_width(text + mark) > pixels:
        text = text[:-1]
    return text + mark if text else ""


def _draw_text(draw: ImageDraw.ImageDraw, x: int, y: int, text: str) -> None:
    """``text`` starting at x, its line's glyph top at y (glyphs start below and right of the pen position)."""
    if text:
        left = _font().getbbox(text)[0]
        draw.text((x - left, y - _line_box()[0]), text, fill=_INK, font=_font())


def _labelled(
    picture: Image.Image,
    layout: _Layout,
    row_labels: list[str] | None,
    column_labels: list[str] | None,
    title: str | None,
    cell_labels: list[list[str]] | None = None,
) -> Image.Image:
    """``picture`` on a larger white canvas: row labels left, column labels above, the title on top, each
    cell label centred in the free line under its image."""
    from PIL import Image, ImageDraw

    glyph_top, glyph_bottom = _line_box()
    line = glyph_bottom - glyph_top
    rows = [_printable(_truncated(label, _MAX_ROW_LABEL)) for label in row_labels or [""] * len(layout.row_y)]
    left = max((_text_width(label) for label in rows), default=0) + 2 * _PAD if row_labels is not None else 0
    title_text = _printable(_truncated(title, _MAX_TITLE)) if title is not None else ""
    title_h = line + _PAD if title is not None else 0
    columns_h = line + _PAD if column_labels is not None else 0
    top = title_h + columns_h + (_PAD if title_h or columns_h else 0)
    width = max(left + layout.width, _text_width(title_text) + 2 * _PAD)
    canvas = Image.new("RGB", (width, top + layout.height), (255, 255, 255))
    canvas.paste(picture, (left, top))
    draw = ImageDraw.Draw(canvas)
    if title_text:
        # Centred over the images, kept inside the canvas when it is wider than they are.
        title_w = _text_width(title_text)
        _draw_text(draw, min(max(_PAD, left + (layout.width - title_w) // 2), width - _PAD - title_w), _PAD, title_text)
    for x, label in zip(layout.column_x, column_labels or [""] * len(layout.column_x), strict=True):
        text = _fitted(label, layout.cell_w + _GAP)
        _draw_text(draw, left + x + (layout.cell_w - _text_width(text)) // 2, _PAD + title_h, text)
    for y, label in zip(layout.row_y, rows, strict=True):
        _draw_text(draw, left - _PAD - _text_width(label), top + y + (layout.cell_h - line) // 2, label)
    for y, labels in zip(layout.row_y, cell_labels or [[]] * len(layout.row_y), strict=True):
        for x, label in zip(layout.column_x, labels, strict=False):  # a short row has fewer cells
            text = _fitted(label, layout.cell_w + _GAP)
            below = top + y + layout.cell_h + _PAD // 2
            _draw_text(draw, left + x + (layout.cell_w - _text_width(text)) // 2, below, text)
    return canvas


def labelled_gif_bytes(pictures: list[Image.Image], duration_ms: int = 80, bounce: bool = False) -> bytes:
    """An animated GIF of ready pictures (``grid_picture``'s labelled frames), looping; ``bounce`` plays it
    forward then back."""
    rest = pictures[1:] + (pictures[-2:0:-1] if bounce else [])
    buffer = io.BytesIO()
    pictures[0].save(buffer, format="GIF", save_all=True, append_images=rest, duration=duration_ms, loop=0)
    return buffer.getvalue()


def image_png(image: np.ndarray) -> bytes:
    """One C×H×W uint8 image as a PNG at its own size (grey for one channel)."""
    from PIL import Image

    hwc = image.transpose(1, 2, 0)
    buffer = io.BytesIO()
    Image.fromarray(hwc[:, :, 0] if hwc.shape[2] == 1 else hwc).save(buffer, format="PNG")
    return buffer.getvalue()
