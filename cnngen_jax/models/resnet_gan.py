"""The ResNet generator and discriminator of SNGAN (Miyato et al. 2018), laid out as Mimicry's
`SNGANGenerator32/64` and `SNGANDiscriminator32/64` (`torch_mimicry/nets/sngan/`, blocks in
`torch_mimicry/modules/resblocks.py`); Mimicry's WGAN-GP uses the same networks without spectral
normalisation.

Generator: linear to 4x4, upsampling residual blocks (BN, ReLU, bilinear x2, 3x3 conv, BN, ReLU,
3x3 conv; bilinear x2 and a 1x1 conv on the shortcut), BN, ReLU, 3x3 conv, tanh. Discriminator:
an "optimised" first block (conv, ReLU, conv, 2x2 average pool; pool then 1x1 conv on the
shortcut), residual blocks (ReLU, conv, ReLU, conv[, pool]; a 1x1 conv[, pool] on the shortcut
where the shape changes), ReLU, global sum pooling, linear. Kernels are Xavier-uniform with gain
sqrt(2) inside residual branches and 1 elsewhere, as Mimicry initialises them; biases start at 0.
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from cnngen_jax.models import GANModels, ModelSpec, register_model, require_image_size
from cnngen_jax.models.conditioning import discriminator_head, generator_norm
from cnngen_jax.models.layers import Conv, Dense


def xavier_uniform(gain: float) -> nn.initializers.Initializer:
    return nn.initializers.variance_scaling(gain**2, "fan_avg", "uniform")


RESIDUAL_INIT = xavier_uniform(math.sqrt(2.0))
OUTER_INIT = xavier_uniform(1.0)


def upsample_bilinear_2x(x: jax.Array) -> jax.Array:
    """x2 bilinear upsampling of NHWC `x`. When upsampling, `jax.image.resize` equals PyTorch's
    `interpolate(..., align_corners=False)`, edges included (tests compare with PyTorch)."""
    n, h, w, c = x.shape
    return jax.image.resize(x, (n, 2 * h, 2 * w, c), "bilinear")


def average_pool_2x(x: jax.Array) -> jax.Array:
    return nn.avg_pool(x, (2, 2), strides=(2, 2))


class GeneratorBlock(nn.Module):
    features: int
    dtype: jnp.dtype = jnp.float32
    num_classes: int = 0  # > 0: conditional BatchNorm (Mimicry's cGAN-PD blocks)

    @nn.compact
    def __call__(self, x, labels, train: bool, statistics_mask) -> jax.Array:
        norm = generator_norm(
            labels, statistics_mask, num_classes=self.num_classes, train=train, dtype=self.dtype
        )
        h = nn.relu(norm(x, "BN_0"))
        h = upsample_bilinear_2x(h)
        h = Conv(self.features, 3, 1, 1, kernel_init=RESIDUAL_INIT, dtype=self.dtype)(h)
        h = nn.relu(norm(h, "BN_1"))
        h = Conv(self.features, 3, 1, 1, kernel_init=RESIDUAL_INIT, dtype=self.dtype)(h)
        shortcut = Conv(self.features, 1, kernel_init=OUTER_INIT, dtype=self.dtype, name="Shortcut")
        return h + shortcut(upsample_bilinear_2x(x))


class DiscriminatorBlock(nn.Module):
    features: int
    downsample: bool
    first: bool = False  # Mimicry's DBlockOptimized: no ReLU before the first conv
    spectral_norm: bool = True
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        def conv(features, kernel_size, init, name=None):
            padding = kernel_size // 2
            return Conv(
                features,
                kernel_size,
                1,
                padding,
                kernel_init=init,
                spectral_norm=self.spectral_norm,
                dtype=self.dtype,
                name=name,
            )

        in_features = x.shape[-1]
        hidden = self.features if self.first else in_features
        if not self.first:
            # Mimicry's residual branch starts with an in-place ReLU, which its shortcut then
            # sees too; kept, so that its published numbers are those of this network.
            x = nn.relu(x)
        h = conv(hidden, 3, RESIDUAL_INIT)(x)
        h = conv(self.features, 3, RESIDUAL_INIT)(nn.relu(h))
        if self.downsample:
            h = average_pool_2x(h)
        shortcut = x
        if self.first:
            shortcut = conv(self.features, 1, OUTER_INIT, "Shortcut")(average_pool_2x(x))
        elif self.downsample or in_features != self.features:
            shortcut = conv(self.features, 1, OUTER_INIT, "Shortcut")(x)
            shortcut = average_pool_2x(shortcut) if self.downsample else shortcut
        return h + shortcut


class ResNetGenerator(nn.Module):
    """z (B, latent_dim) -> images (B, S, S, channels) in [-1, 1]; `widths` per upsampling block.
    With `num_classes`, labels (B,) condition the blocks' BatchNorm; the last BatchNorm stays
    unconditional, as in Mimicry's cGAN-PD."""

    widths: tuple[int, ...]
    channels: int = 3
    dtype: jnp.dtype = jnp.float32
    num_classes: int = 0

    @nn.compact
    def __call__(
        self,
        z: jax.Array,
        labels: jax.Array | None = None,
        train: bool = True,
        statistics_mask: jax.Array | None = None,
    ) -> jax.Array:
        base = self.widths[0]
        x = Dense(4 * 4 * base, kernel_init=OUTER_INIT)(z).reshape(-1, 4, 4, base)
        for features in self.widths[1:]:
            block = GeneratorBlock(features, self.dtype, self.num_classes)
            x = block(x.astype(self.dtype), labels, train, statistics_mask)
        norm = generator_norm(None, statistics_mask, num_classes=0, train=train, dtype=self.dtype)
        x = nn.relu(norm(x, "BN_out"))
        x = Conv(self.channels, 3, 1, 1, kernel_init=OUTER_INIT, dtype=self.dtype)(x)
        return jnp.tanh(x)


class ResNetDiscriminator(nn.Module):
    """Images (B, S, S, C) -> (logits (B,), class logits or None); `blocks` are (features,
    downsample) per block. Features are pooled by a global sum (SNGAN) or mean (Mimicry's
    WGAN-GP); the conditional heads see the pooled features (cGAN-PD's projection)."""

    blocks: tuple[tuple[int, bool], ...]
    spectral_norm: bool = True
    pooling: str = "sum"
    dtype: jnp.dtype = jnp.float32
    num_classes: int = 0
    conditioning: str = "none"

    @nn.compact
    def __call__(
        self, x: jax.Array, labels: jax.Array | None = None, train: bool = True
    ) -> tuple[jax.Array, jax.Array | None]:
        x = x.astype(self.dtype)
        for i, (features, downsample) in enumerate(self.blocks):
            block = DiscriminatorBlock(
                features, downsample, i == 0, self.spectral_norm, self.dtype, name=f"Block_{i}"
            )
            x = block(x)
        pool = jnp.sum if self.pooling == "sum" else jnp.mean
        x = pool(nn.relu(x).astype(jnp.float32), axis=(1, 2))
        return discriminator_head(
            x,
            labels,
            conditioning=self.conditioning,
            num_classes=self.num_classes,
            spectral_norm=self.spectral_norm,
            kernel_init=OUTER_INIT,
        )


def _resnet_pair(settings, spec: ModelSpec, g_widths, d_blocks, pooling: str) -> GANModels:
    return GANModels(
        generator=ResNetGenerator(g_widths, spec.channels, spec.dtype, spec.num_classes),
        discriminator=ResNetDiscriminator(
            d_blocks,
            settings.spectral_norm,
            pooling,
            spec.dtype,
            spec.num_classes,
            settings.conditioning,
        ),
        latent_dim=settings.latent_dim,
        discriminator_blocks=tuple((f"Block_{i}",) for i in range(len(d_blocks))),
    )


def _resnet32(settings, spec: ModelSpec, pooling: str) -> GANModels:
    require_image_size(settings.name, spec.image_size, 32)
    g, d = settings.g_width, settings.d_width
    d_blocks = ((d, True), (d, True), (d, False), (d, False))
    return _resnet_pair(settings, spec, (g,) * 4, d_blocks, pooling)


@register_model("sngan32", family="gan")
def build_sngan32(settings, spec: ModelSpec) -> GANModels:
    """Mimicry's SNGAN 32x32 pair: G of constant width g_width (ngf, 256 in the paper) over
    three upsampling blocks; D of width d_width (ndf, 128): optimised block, one downsampling
    and two plain blocks, global sum pooling. Conditioned (`settings.conditioning`
    "projection", with the hinge loss) it is Mimicry's cGAN-PD 32x32."""
    return _resnet32(settings, spec, "sum")


@register_model("wgan_gp32", family="gan")
def build_wgan_gp32(settings, spec: ModelSpec) -> GANModels:
    """Mimicry's WGAN-GP 32x32 pair: the SNGAN networks with global mean pooling in D (and,
    in its recipe, no spectral normalisation)."""
    return _resnet32(settings, spec, "mean")


@register_model("sngan64", family="gan")
def build_sngan64(settings, spec: ModelSpec) -> GANModels:
    """Mimicry's SNGAN 64x64 pair: G halves its width from g_width (ngf, 1024) over four
    upsampling blocks; D doubles from d_width / 16 to d_width (ndf, 1024) over five downsampling
    blocks."""
    require_image_size("sngan64", spec.image_size, 64)
    g, d = settings.g_width, settings.d_width
    g_widths = tuple(g >> i for i in range(5))
    d_blocks = tuple((d >> (4 - i), True) for i in range(5))
    return _resnet_pair(settings, spec, g_widths, d_blocks, "sum")
