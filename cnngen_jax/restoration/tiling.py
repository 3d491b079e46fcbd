"""Super-resolution of images larger than memory allows, tile by tile.

Each `tile` x `tile` piece of the input is restored inside a window of `overlap` extra pixels of
context on every side, shifted inward at the image's borders so that every window lies inside
the image; only the piece is kept. A network whose receptive field reaches at most `overlap`
pixels therefore gives its whole-image result (its padding meets the image's true borders, as on
the whole image), and a larger one a result without visible seams. All windows have one shape,
so the network compiles once.
"""

from collections.abc import Callable

import jax
import numpy as np


def _windows(size: int, tile: int, overlap: int) -> tuple[int, list[tuple[int, int]]]:
    """The window length along an axis of `size`, and (window start, piece start) per piece."""
    window = min(size, tile + 2 * overlap)
    starts = range(0, size, tile)
    return window, [(min(max(s - overlap, 0), size - window), s) for s in starts]


def tiled(
    restore: Callable[[jax.Array], jax.Array],
    images: jax.Array,
    tile: int,
    scale: int,
    overlap: int = 16,
) -> np.ndarray:
    """`restore` (N, h, w, C) -> (N, h*scale, w*scale, C) applied piece by piece."""
    num, height, width, channels = images.shape
    window_h, rows = _windows(height, tile, overlap)
    window_w, columns = _windows(width, tile, overlap)
    out = np.zeros((num, height * scale, width * scale, channels), np.float32)
    for top, row in rows:
        for left, column in columns:
            window = images[:, top : top + window_h, left : left + window_w]
            restored = np.asarray(restore(window))
            piece_h, piece_w = min(tile, height - row), min(tile, width - column)
            y, x = (row - top) * scale, (column - left) * scale
            out[:, row * scale :, column * scale :][:, : piece_h * scale, : piece_w * scale] = (
                restored[:, y : y + piece_h * scale, x : x + piece_w * scale]
            )
    return out
