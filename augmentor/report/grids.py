"""Image grids as PNG bytes (PIL only: quick looks must not pay for matplotlib)."""

from __future__ import annotations

import io

import numpy as np

_GAP = 2
_MIN_CELL = 64  # small images are upscaled (nearest) to at least this many pixels


def grid_png(rows: list[list[np.ndarray]], gap_after_first: bool = True) -> bytes:
    """Draw rows of C×H×W uint8 images; a wider gap after each row's first image (the original)."""
    from PIL import Image

    height, width = rows[0][0].shape[1:]
    scale = max(1, -(-_MIN_CELL // max(height, width)))
    cell_h, cell_w = height * scale, width * scale
    columns = max(len(r) for r in rows)
    extra = 3 * _GAP if gap_after_first else 0
    canvas = np.full((len(rows) * (cell_h + _GAP) + _GAP, columns * (cell_w + _GAP) + _GAP + extra, 3), 255, np.uint8)
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            hwc = image.transpose(1, 2, 0)
            if hwc.shape[2] == 1:
                hwc = np.repeat(hwc, 3, axis=2)
            big = hwc.repeat(scale, axis=0).repeat(scale, axis=1)
            y = _GAP + r * (cell_h + _GAP)
            x = _GAP + c * (cell_w + _GAP) + (extra if c > 0 else 0)
            canvas[y : y + cell_h, x : x + cell_w] = big
    buffer = io.BytesIO()
    Image.fromarray(canvas).save(buffer, format="PNG")
    return buffer.getvalue()
