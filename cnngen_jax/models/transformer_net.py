"""Johnson et al.'s image transformation network ("Perceptual Losses for Real-Time Style Transfer
and Super-Resolution", 2016), in the layout of pytorch/examples' `fast_neural_style`
(`transformer_net.py`), whose module names the parameters keep (`conv1`, `in1`, `res3/conv2`,
`deconv1`, ...):

    conv1 9x9/1 (width) -> IN -> ReLU; conv2 3x3/2 (2 width) -> IN -> ReLU;
    conv3 3x3/2 (4 width) -> IN -> ReLU; res1..res5: x + IN(conv(ReLU(IN(conv(x)))));
    deconv1: nearest x2 upsampling, conv 3x3 (2 width) -> IN -> ReLU; deconv2 likewise (width);
    deconv3: conv 9x9/1 to the output channels, no normalisation, no activation.

Every convolution reflection-pads its input by kernel // 2 first (instance norm, affine, eps
1e-5 as `torch.nn.InstanceNorm2d`); fully convolutional, so it takes any size that is a multiple
of 4 and returns the same size. Width 32 and 5 blocks are the reference network: 1,679,235
parameters for RGB, as PyTorch counts the module (checked in tests/test_style.py).
Initialisation is PyTorch's default (U(+-1/sqrt(fan_in)) kernels and biases, unit IN scales).
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from cnngen_jax.models import ModelSpec, register_model
from cnngen_jax.models.layers import Conv

# PyTorch's default Conv2d kernel (kaiming_uniform_, a = sqrt(5)): U(+-1/sqrt(fan_in)).
_TORCH_KERNEL_INIT = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


def _torch_bias_init(fan_in: int) -> nn.initializers.Initializer:
    """PyTorch's default Conv2d bias: U(+-1/sqrt(fan_in))."""
    bound = 1.0 / math.sqrt(fan_in)
    return lambda key, shape, dtype=jnp.float32: jax.random.uniform(
        key, shape, dtype, -bound, bound
    )


class ConvLayer(nn.Module):
    """Reflection padding of kernel // 2, then a strided convolution (pytorch/examples'
    `ConvLayer`); with `upsample`, nearest-neighbour upsampling first (`UpsampleConvLayer`)."""

    features: int
    kernel_size: int
    stride: int = 1
    upsample: int = 1
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        if self.upsample > 1:
            x = jnp.repeat(jnp.repeat(x, self.upsample, axis=1), self.upsample, axis=2)
        pad = self.kernel_size // 2
        x = jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")
        fan_in = self.kernel_size**2 * x.shape[-1]
        return Conv(
            self.features,
            self.kernel_size,
            self.stride,
            kernel_init=_TORCH_KERNEL_INIT,
            bias_init=_torch_bias_init(fan_in),
            dtype=self.dtype,
            name="conv2d",
        )(x)


def _instance_norm(name: str) -> nn.InstanceNorm:
    """`torch.nn.InstanceNorm2d(affine=True)`: eps 1e-5, biased variance, float32 statistics."""
    return nn.InstanceNorm(epsilon=1e-5, use_fast_variance=False, name=name)


class ResidualBlock(nn.Module):
    """x + IN(conv(ReLU(IN(conv(x))))), both 3x3 (He et al.'s block as Gross & Wilber train
    it, pytorch/examples' `ResidualBlock`)."""

    features: int
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        y = ConvLayer(self.features, 3, dtype=self.dtype, name="conv1")(x)
        y = nn.relu(_instance_norm("in1")(y))
        y = ConvLayer(self.features, 3, dtype=self.dtype, name="conv2")(y)
        return x + _instance_norm("in2")(y).astype(x.dtype)


class TransformerNet(nn.Module):
    """Images (N, H, W, C), H and W multiples of 4, to images of `out_channels` and the same
    size, both as pixels in 0..255 like the reference's (the style task maps its [-1, 1]
    images). The output is not bounded: the losses see it as it is, pictures clip it."""

    out_channels: int = 3
    width: int = 32  # channels of the first layer (32 in the reference); then 2x, 4x
    num_blocks: int = 5
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = x.astype(self.dtype)
        for i, (mult, kernel, stride) in enumerate(((1, 9, 1), (2, 3, 2), (4, 3, 2)), 1):
            x = ConvLayer(self.width * mult, kernel, stride, dtype=self.dtype, name=f"conv{i}")(x)
            x = nn.relu(_instance_norm(f"in{i}")(x)).astype(self.dtype)
        for i in range(1, self.num_blocks + 1):
            x = ResidualBlock(self.width * 4, self.dtype, name=f"res{i}")(x)
        for i, mult in enumerate((2, 1), 1):
            x = ConvLayer(self.width * mult, 3, upsample=2, dtype=self.dtype, name=f"deconv{i}")(x)
            x = nn.relu(_instance_norm(f"in{i + 3}")(x)).astype(self.dtype)
        x = ConvLayer(self.out_channels, 9, dtype=self.dtype, name="deconv3")(x)
        return x.astype(jnp.float32)


@register_model("transformer_net", family="style_transfer")
def build_transformer_net(settings, spec: ModelSpec) -> TransformerNet:
    """The network for `spec.channels` channels in and out. Reads `width` (32 in the reference)
    and `num_blocks` (5) from `settings`."""
    return TransformerNet(spec.channels, settings.width, settings.num_blocks, spec.dtype)
