"""Layers shared by the model families.

`ConvTranspose` follows PyTorch's `ConvTranspose2d` (output size `(in - 1) * stride - 2 * padding +
kernel`) and stores its kernel as the HWIO kernel of the strided convolution it is the adjoint of,
so a PyTorch weight of shape `(in, out, kh, kw)` maps to ours by a plain transpose `(2, 3, 1, 0)`.

Its gradient is written by hand: XLA:CPU lowers the kernel gradient that autodiff derives from
`lax.conv_transpose` to a slow generic convolution, whereas the adjoint formulation below (input
gradient = the strided convolution; kernel gradient = that convolution's weight gradient) hits
the fast convolution kernels. The result is the same linear map, checked in tests against
autodiff of the stock formulation.
"""

from collections.abc import Callable
from functools import partial

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

_DIMENSIONS = ("NHWC", "HWIO", "NHWC")


def _strided_conv(y: jax.Array, kernel: jax.Array, stride: int, padding: int) -> jax.Array:
    return lax.conv_general_dilated(
        y,
        kernel,
        window_strides=(stride, stride),
        padding=((padding, padding), (padding, padding)),
        dimension_numbers=_DIMENSIONS,
    )


def transposed_output_shape(
    x_shape: tuple[int, ...], kernel_shape: tuple[int, ...], stride: int, padding: int
) -> tuple[int, int, int, int]:
    """Shape of `conv_transpose(x, kernel)` with PyTorch's size rule."""
    n, h, w, _ = x_shape
    kh, kw, out_features, _ = kernel_shape
    return (
        n,
        (h - 1) * stride - 2 * padding + kh,
        (w - 1) * stride - 2 * padding + kw,
        out_features,
    )


def _adjoint(x: jax.Array, kernel: jax.Array, stride: int, padding: int) -> jax.Array:
    out_shape = transposed_output_shape(x.shape, kernel.shape, stride, padding)
    template = jax.ShapeDtypeStruct(out_shape, x.dtype)
    (y,) = jax.linear_transpose(lambda y: _strided_conv(y, kernel, stride, padding), template)(x)
    return y


@partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def conv_transpose(x: jax.Array, kernel: jax.Array, stride: int, padding: int) -> jax.Array:
    """Transposed convolution: the adjoint of `_strided_conv(., kernel, stride, padding)`."""
    return _adjoint(x, kernel, stride, padding)


def _conv_transpose_fwd(x, kernel, stride, padding):
    return _adjoint(x, kernel, stride, padding), (x, kernel)


def _conv_transpose_bwd(stride, padding, residuals, grad):
    x, kernel = residuals
    grad_x = _strided_conv(grad, kernel, stride, padding)
    (grad_kernel,) = jax.linear_transpose(
        lambda k: _strided_conv(grad, k, stride, padding), kernel
    )(x)
    return grad_x, grad_kernel


conv_transpose.defvjp(_conv_transpose_fwd, _conv_transpose_bwd)


class ConvTranspose(nn.Module):
    """Transposed 2-D convolution with PyTorch `ConvTranspose2d` semantics, no bias."""

    features: int
    kernel_size: int
    stride: int = 1
    padding: int = 0
    kernel_init: Callable = nn.initializers.lecun_normal()

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        shape = (self.kernel_size, self.kernel_size, self.features, x.shape[-1])
        kernel = self.param("kernel", self.kernel_init, shape, jnp.float32)
        return conv_transpose(x, kernel.astype(x.dtype), self.stride, self.padding)
