"""Super-resolution of images larger than memory allows, tile by tile.

Every tile is restored with `overlap` extra input pixels of context on each side (reflected at
the image's borders), and only its centre is kept, so a network whose receptive field is within
the overlap gives exactly its whole-image result, and a larger one a result without visible
seams. All tiles have one shape, so the network compiles once.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np


def tiled(
    restore: Callable[[jax.Array], jax.Array],
    images: jax.Array,
    tile: int,
    scale: int,
    overlap: int = 16,
) -> np.ndarray:
    """`restore` (N, h, w, C) -> (N, h*scale, w*scale, C) applied in `tile` x `tile` tiles."""
    num, height, width, channels = images.shape
    rows, columns = -(-height // tile), -(-width // tile)
    pad = (
        (0, 0),
        (overlap, rows * tile - height + overlap),
        (overlap, columns * tile - width + overlap),
        (0, 0),
    )
    padded = jnp.pad(images, pad, mode="symmetric")
    out = np.zeros((num, rows * tile * scale, columns * tile * scale, channels), np.float32)
    keep = slice(overlap * scale, (overlap + tile) * scale)
    for top in range(0, rows * tile, tile):
        for left in range(0, columns * tile, tile):
            window = padded[:, top : top + tile + 2 * overlap, left : left + tile + 2 * overlap]
            restored = np.asarray(restore(window))[:, keep, keep]
            out[:, top * scale : (top + tile) * scale, left * scale : (left + tile) * scale] = (
                restored
            )
    return out[:, : height * scale, : width * scale]
