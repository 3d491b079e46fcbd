"""Improved precision and recall (Kynkäänniemi et al. 2019) with k-nearest-neighbour balls."""

import functools

import jax
import jax.numpy as jnp
import numpy as np


@jax.jit
def _squared_distances(a: jax.Array, b: jax.Array) -> jax.Array:
    """Pairwise squared Euclidean distances, clipped at 0 against rounding."""
    cross = jnp.matmul(a, b.T, precision=jax.lax.Precision.HIGHEST)
    squared = jnp.sum(a * a, axis=1)[:, None] + jnp.sum(b * b, axis=1)[None, :] - 2 * cross
    return jnp.maximum(squared, 0.0)


@functools.partial(jax.jit, static_argnames="k")
def _kth_neighbour(rows: jax.Array, points: jax.Array, k: int) -> jax.Array:
    """Squared distance from each row to its k-th nearest point, counting the row itself."""
    return -jax.lax.top_k(-_squared_distances(rows, points), k + 1)[0][:, k]


@jax.jit
def _inside_any_ball(rows: jax.Array, centres: jax.Array, radii: jax.Array) -> jax.Array:
    return jnp.any(_squared_distances(rows, centres) <= radii[None, :], axis=1)


def _row_batches(points: np.ndarray, batch_size: int):
    """Fixed-size row batches (the last one padded by repetition) so each shape compiles once."""
    for start in range(0, len(points), batch_size):
        rows = points[start : start + batch_size]
        count = len(rows)
        yield np.resize(rows, (batch_size, points.shape[1])) if count < batch_size else rows, count


def _radii(points: jax.Array, k: int, batch_size: int) -> jax.Array:
    host = np.asarray(points)
    parts = [_kth_neighbour(rows, points, k)[:n] for rows, n in _row_batches(host, batch_size)]
    return jnp.concatenate(parts)


def _coverage(queries: jax.Array, centres: jax.Array, radii: jax.Array, batch_size: int) -> float:
    """Fraction of queries inside at least one centre's k-NN ball."""
    host = np.asarray(queries)
    inside = [
        np.asarray(_inside_any_ball(rows, centres, radii))[:n]
        for rows, n in _row_batches(host, batch_size)
    ]
    return float(np.mean(np.concatenate(inside)))


def precision_recall(
    real: np.ndarray, generated: np.ndarray, *, k: int = 3, batch_size: int = 1024
) -> tuple[float, float]:
    """Precision: share of generated samples inside some real sample's k-NN ball; recall: the
    share of real samples inside some generated sample's ball.

    A ball's radius is the distance to the k-th nearest other sample of the same set (the
    (k+1)-th smallest distance including itself), a point on the boundary counts as inside, as
    in torch-fidelity. Distances are computed on the accelerator in `batch_size` row blocks, so
    memory stays O(batch_size * n).
    """
    real, generated = jnp.asarray(real), jnp.asarray(generated)
    if real.ndim != 2 or generated.ndim != 2 or real.shape[1] != generated.shape[1]:
        raise ValueError(f"expected (n, d) features of equal d: {real.shape}, {generated.shape}")
    if min(len(real), len(generated)) <= k:
        raise ValueError(f"precision/recall with k={k} needs more than {k} samples per set")
    precision = _coverage(generated, real, _radii(real, k, batch_size), batch_size)
    recall = _coverage(real, generated, _radii(generated, k, batch_size), batch_size)
    return precision, recall
