"""Convolution layers shared by the model families, fast on CPU as well as on GPU/TPU.

Both layers are built from the three linear maps of one strided convolution, each with a
per-platform implementation: on CPU in float32, oneDNN's kernels (`cnngen_jax.kernels.onednn`,
the library PyTorch uses, 2-5x faster than XLA:CPU's on these layers); elsewhere, or without
the kernels, `lax.conv_general_dilated` and its transposes, exactly as autodiff would derive
them. The gradients are written by hand from the same three maps:

* `conv2d`: forward = the convolution; input gradient = its transpose (backward data); kernel
  gradient = backward weights.
* `conv_transpose` (PyTorch's `ConvTranspose2d`, output size `(in - 1) * stride - 2 * padding +
  kernel`): forward = backward data; input gradient = the convolution; kernel gradient =
  backward weights with the roles of input and output swapped. Its kernel is stored as the HWIO
  kernel of the strided convolution it is the adjoint of, so a PyTorch weight of shape
  `(in, out, kh, kw)` maps to ours by a plain transpose `(2, 3, 1, 0)`. (Autodiff of
  `lax.conv_transpose` would also give a kernel gradient that XLA:CPU runs 25-37x slower.)

Each map's VJP is built from the other two, so derivatives of every order use the same kernels.
Tests check all of it against autodiff of the stock `lax` formulations and against PyTorch.
"""

from collections.abc import Callable
from functools import partial

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from cnngen_jax.kernels import onednn
from cnngen_jax.models.spectral_norm import conv_matrix, spectral_normalize

_DIMENSIONS = ("NHWC", "HWIO", "NHWC")
Shape = tuple[int, ...]


def _xla_conv(x: jax.Array, kernel: jax.Array, stride: int, padding: int) -> jax.Array:
    return lax.conv_general_dilated(
        x,
        kernel,
        window_strides=(stride, stride),
        padding=((padding, padding), (padding, padding)),
        dimension_numbers=_DIMENSIONS,
    )


def conv_output_shape(x_shape: Shape, kernel_shape: Shape, stride: int, padding: int) -> Shape:
    """Shape of the strided convolution of `x` with an HWIO kernel (floor rule, as XLA)."""
    n, h, w, _ = x_shape
    kh, kw, _, out_features = kernel_shape
    return (
        n,
        (h + 2 * padding - kh) // stride + 1,
        (w + 2 * padding - kw) // stride + 1,
        out_features,
    )


def transposed_output_shape(
    x_shape: Shape, kernel_shape: Shape, stride: int, padding: int
) -> Shape:
    """Shape of `conv_transpose(x, kernel)` with PyTorch's size rule."""
    n, h, w, _ = x_shape
    kh, kw, out_features, _ = kernel_shape
    return (
        n,
        (h - 1) * stride - 2 * padding + kh,
        (w - 1) * stride - 2 * padding + kw,
        out_features,
    )


def _per_platform(cpu: Callable, xla: Callable, *operands: jax.Array) -> jax.Array:
    """`cpu(*operands)` when lowered for CPU and the oneDNN kernels apply, else `xla(...)`.

    Where the default backend is an accelerator, oneDNN is never built or loaded: it would only
    add start-up time (CPU computations there, rare, get XLA's convolutions).
    """
    if operands[0].dtype != jnp.float32 or jax.default_backend() != "cpu" or not onednn.available():
        return xla(*operands)
    return lax.platform_dependent(*operands, cpu=cpu, default=xla)


def _transpose(linear: Callable, in_shape: Shape, cotangent: jax.Array) -> jax.Array:
    """The transpose of the linear map `linear` (inputs of `in_shape`) applied to `cotangent`."""
    (result,) = jax.linear_transpose(linear, jax.ShapeDtypeStruct(in_shape, cotangent.dtype))(
        cotangent
    )
    return result


# The three maps are bilinear and each one's VJP is made of the other two, so every derivative
# of any order (the double backward of a gradient penalty included) runs on the same kernels:
#   <c, forward(x, k)>         = <backward_data(c, k), x>     = <backward_weights(x, c), k>
#   <c, backward_data(g, k)>   = <forward(c, k), g>           = <backward_weights(c, g), k>
#   <c, backward_weights(x, g)> = <forward(x, c), g>          = <backward_data(g, c), x>


def _save_operands(bilinear: Callable) -> Callable:
    """The forward rule of a bilinear map: its value, with both operands kept for the VJP."""
    return lambda a, b, *static: (bilinear(a, b, *static), (a, b))


@partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def conv2d(x: jax.Array, kernel: jax.Array, stride: int, padding: int) -> jax.Array:
    """NHWC `x` convolved with HWIO `kernel`, symmetric zero padding, no bias."""
    out_shape = conv_output_shape(x.shape, kernel.shape, stride, padding)
    return _per_platform(
        lambda x, k: onednn.conv_forward(x, k, out_shape, stride, padding),
        lambda x, k: _xla_conv(x, k, stride, padding),
        x,
        kernel,
    )


def _conv2d_bwd(stride, padding, residuals, grad):
    x, kernel = residuals
    return (
        _backward_data(grad, kernel, x.shape, stride, padding),
        _backward_weights(x, grad, kernel.shape, stride, padding),
    )


conv2d.defvjp(_save_operands(conv2d), _conv2d_bwd)


@partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _backward_data(grad, kernel, x_shape: Shape, stride: int, padding: int) -> jax.Array:
    def xla(grad, kernel):
        return _transpose(lambda x: _xla_conv(x, kernel, stride, padding), x_shape, grad)

    return _per_platform(
        lambda g, k: onednn.conv_backward_data(g, k, x_shape, stride, padding), xla, grad, kernel
    )


def _backward_data_bwd(x_shape, stride, padding, residuals, cotangent):
    grad, kernel = residuals
    return (
        conv2d(cotangent, kernel, stride, padding),
        _backward_weights(cotangent, grad, kernel.shape, stride, padding),
    )


_backward_data.defvjp(_save_operands(_backward_data), _backward_data_bwd)


@partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _backward_weights(x, grad, kernel_shape: Shape, stride: int, padding: int) -> jax.Array:
    def xla(x, grad):
        return _transpose(lambda k: _xla_conv(x, k, stride, padding), kernel_shape, grad)

    return _per_platform(
        lambda x, g: onednn.conv_backward_weights(x, g, kernel_shape, stride, padding), xla, x, grad
    )


def _backward_weights_bwd(kernel_shape, stride, padding, residuals, cotangent):
    x, grad = residuals
    return (
        _backward_data(grad, cotangent, x.shape, stride, padding),
        conv2d(x, cotangent, stride, padding),
    )


_backward_weights.defvjp(_save_operands(_backward_weights), _backward_weights_bwd)


def conv_transpose(x: jax.Array, kernel: jax.Array, stride: int, padding: int) -> jax.Array:
    """Transposed convolution: the adjoint of `conv2d(., kernel, stride, padding)`."""
    out_shape = transposed_output_shape(x.shape, kernel.shape, stride, padding)
    return _backward_data(x, kernel, out_shape, stride, padding)


def batch_norm(
    train: bool, dtype: jnp.dtype, name: str, scale_init: Callable = nn.initializers.ones
) -> nn.BatchNorm:
    """BatchNorm with PyTorch's defaults: momentum 0.1 (Flax keeps 1 - that), eps 1e-5.
    Statistics and parameters stay float32 whatever the compute dtype."""
    return nn.BatchNorm(
        use_running_average=not train,
        momentum=0.9,
        epsilon=1e-5,
        scale_init=scale_init,
        dtype=dtype,
        name=name,
    )


class Conv(nn.Module):
    """2-D convolution with PyTorch `Conv2d` semantics (square kernel, symmetric padding).

    Parameters are named and shaped as `flax.linen.Conv`'s (`kernel` HWIO, `bias`), and kept in
    float32 whatever the compute `dtype`.
    """

    features: int
    kernel_size: int
    stride: int = 1
    padding: int = 0
    use_bias: bool = True
    kernel_init: Callable = nn.initializers.lecun_normal()
    bias_init: Callable = nn.initializers.zeros_init()
    spectral_norm: bool = False  # `cnngen_jax.models.spectral_norm`
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        shape = (self.kernel_size, self.kernel_size, x.shape[-1], self.features)
        kernel = self.param("kernel", self.kernel_init, shape, jnp.float32)
        if self.spectral_norm:
            kernel = spectral_normalize(self, kernel, conv_matrix)
        y = conv2d(x.astype(self.dtype), kernel.astype(self.dtype), self.stride, self.padding)
        if self.use_bias:
            y = y + self.param("bias", self.bias_init, (self.features,), jnp.float32).astype(
                y.dtype
            )
        return y


class ConvTranspose(nn.Module):
    """Transposed 2-D convolution with PyTorch `ConvTranspose2d` semantics (no bias unless
    `use_bias`)."""

    features: int
    kernel_size: int
    stride: int = 1
    padding: int = 0
    kernel_init: Callable = nn.initializers.lecun_normal()
    use_bias: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        shape = (self.kernel_size, self.kernel_size, self.features, x.shape[-1])
        kernel = self.param("kernel", self.kernel_init, shape, jnp.float32)
        y = conv_transpose(x, kernel.astype(x.dtype), self.stride, self.padding)
        if self.use_bias:
            bias = self.param("bias", nn.initializers.zeros_init(), (self.features,), jnp.float32)
            y = y + bias.astype(y.dtype)
        return y


class Dense(nn.Module):
    """A linear layer with a bias, optionally spectrally normalised; parameters named as
    `flax.linen.Dense`'s (`kernel` is (in, out), PyTorch's weight transposed)."""

    features: int
    kernel_init: Callable = nn.initializers.lecun_normal()
    spectral_norm: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param("kernel", self.kernel_init, (x.shape[-1], self.features), jnp.float32)
        if self.spectral_norm:
            kernel = spectral_normalize(self, kernel, jnp.transpose)
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,), jnp.float32)
        return x.astype(jnp.float32) @ kernel + bias


class Embed(nn.Module):
    """An embedding table (num_embeddings, features), optionally spectrally normalised (the
    class embedding of a projection discriminator)."""

    num_embeddings: int
    features: int
    embedding_init: Callable = nn.initializers.xavier_uniform()
    spectral_norm: bool = False

    @nn.compact
    def __call__(self, labels: jax.Array) -> jax.Array:
        shape = (self.num_embeddings, self.features)
        table = self.param("embedding", self.embedding_init, shape, jnp.float32)
        if self.spectral_norm:
            table = spectral_normalize(self, table, lambda t: t)
        return table[labels]
