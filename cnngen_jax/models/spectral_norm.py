"""Spectral normalisation (Miyato et al. 2018), exactly as PyTorch's
`torch.nn.utils.spectral_norm`, for convolutions, linear layers and embeddings.

The weight is viewed as a matrix with the output dimension first (PyTorch's `dim=0` layout:
`(out, in * kh * kw)` for a convolution, `(out, in)` for a linear layer, `(classes, features)`
for an embedding). Its vectors u and v live in the `spectral` variable collection, drawn N(0, 1)
and normalised at initialisation. A power iteration (v = W^T u / |.|, u = W v / |.|) runs when
that collection is mutable, which the training step allows once per discriminator update, and
never in evaluation. The weight used is W / sigma with sigma = u^T W v: u and v are constants,
so gradients flow through the weight only.
"""

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

COLLECTION = "spectral"
_EPS = 1e-12  # as torch.nn.functional.normalize


def _normalize(x: jax.Array) -> jax.Array:
    return x / jnp.maximum(jnp.linalg.norm(x), _EPS)


def spectral_normalize(module: nn.Module, weight: jax.Array, as_matrix: Callable) -> jax.Array:
    """`weight / sigma(as_matrix(weight))`, keeping u and v in `module`'s `spectral` collection.

    Call inside a compact module; `as_matrix` maps the stored weight to PyTorch's matrix view.
    """
    matrix = as_matrix(weight)
    rows, cols = matrix.shape

    def draw(size: int) -> jax.Array:
        return _normalize(jax.random.normal(module.make_rng("params"), (size,), jnp.float32))

    u = module.variable(COLLECTION, "u", draw, rows)
    v = module.variable(COLLECTION, "v", draw, cols)
    if module.is_mutable_collection(COLLECTION) and not module.is_initializing():
        fixed = jax.lax.stop_gradient(matrix)
        v.value = _normalize(fixed.T @ u.value)
        u.value = _normalize(fixed @ v.value)
    sigma = u.value @ (matrix @ v.value)
    return weight / sigma


def conv_matrix(kernel: jax.Array) -> jax.Array:
    """HWIO -> (O, I * H * W), the row layout of PyTorch's (O, I, H, W) weight."""
    return jnp.transpose(kernel, (3, 2, 0, 1)).reshape(kernel.shape[-1], -1)
