"""DCGAN generator and discriminator (Radford et al. 2016), laid out as the standard PyTorch
reference implementation (pytorch/examples `dcgan`): no convolution biases, weights from
N(0, 0.02), BatchNorm scales from N(1, 0.02), no BatchNorm after the discriminator's first layer.

The reference is written for 64x64; other powers of two add or drop one stride-2 block, doubling
the width per block, so 32x32 has one block fewer and 128x128 one more. The discriminator returns
logits (the reference's final sigmoid is folded into the loss for numerical stability).
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from cnngen_jax.errors import UserError
from cnngen_jax.models import GANModels, ModelSpec, register_model
from cnngen_jax.models.conditioning import discriminator_head, generator_norm
from cnngen_jax.models.layers import Conv, ConvTranspose, batch_norm

MIN_IMAGE_SIZE = 16
MAX_IMAGE_SIZE = 128

conv_init = nn.initializers.normal(stddev=0.02)


def bn_scale_init(key: jax.Array, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
    """N(1, 0.02), as the reference's `weights_init`."""
    return 1.0 + 0.02 * jax.random.normal(key, shape, dtype)


def num_stride2_blocks(image_size: int) -> int:
    """Stride-2 layers between the 4x4 base and `image_size` (4 at 64x64, as in the paper)."""
    valid = [2**k for k in range(4, int(math.log2(MAX_IMAGE_SIZE)) + 1)]
    if image_size not in valid:
        raise UserError(
            f"image_size={image_size} cannot be produced by the DCGAN architecture; "
            f"set --config.image_size to a power of two in {valid}"
        )
    return int(math.log2(image_size)) - 2


class Generator(nn.Module):
    """z of shape (B, latent_dim) -> images (B, S, S, channels) in [-1, 1]; with `num_classes`,
    labels (B,) condition every BatchNorm (`cnngen_jax.models.conditioning`)."""

    image_size: int = 64
    channels: int = 3
    width: int = 64
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
        norm = generator_norm(
            labels,
            statistics_mask,
            num_classes=self.num_classes,
            train=train,
            dtype=self.dtype,
            scale_init=bn_scale_init,
        )
        blocks = num_stride2_blocks(self.image_size)
        x = z.astype(self.dtype)[:, None, None, :]
        features = self.width * 2 ** (blocks - 1)
        x = ConvTranspose(features, 4, 1, 0, kernel_init=conv_init, name="ConvT_0")(x)
        x = nn.relu(norm(x, "BN_0"))
        for i in range(1, blocks):
            features //= 2
            x = ConvTranspose(features, 4, 2, 1, kernel_init=conv_init, name=f"ConvT_{i}")(x)
            x = nn.relu(norm(x, f"BN_{i}"))
        x = ConvTranspose(self.channels, 4, 2, 1, kernel_init=conv_init, name=f"ConvT_{blocks}")(x)
        return jnp.tanh(x)  # in the compute dtype; the loss casts logits to float32


class Discriminator(nn.Module):
    """Images (B, S, S, C) -> (real/fake logits (B,), class logits or None). The last layer, a
    4x4 convolution over the 4x4 features, is a linear map of them, which the conditional
    heads (`conditioning`) see flattened."""

    image_size: int = 64
    width: int = 64
    dtype: jnp.dtype = jnp.float32
    num_classes: int = 0
    conditioning: str = "none"

    @nn.compact
    def __call__(
        self, x: jax.Array, labels: jax.Array | None = None, train: bool = True
    ) -> tuple[jax.Array, jax.Array | None]:
        blocks = num_stride2_blocks(self.image_size)
        x = x.astype(self.dtype)
        for i in range(blocks):
            conv = Conv(
                self.width * 2**i,
                4,
                stride=2,
                padding=1,
                use_bias=False,
                kernel_init=conv_init,
                dtype=self.dtype,
                name=f"Conv_{i}",
            )
            x = conv(x)
            if i > 0:
                x = batch_norm(train, self.dtype, f"BN_{i}", bn_scale_init)(x)
            x = nn.leaky_relu(x, 0.2)
        logits = Conv(
            1,
            4,
            use_bias=False,
            kernel_init=conv_init,
            dtype=self.dtype,
            name=f"Conv_{blocks}",
        )(x)
        return discriminator_head(
            x.reshape(x.shape[0], -1).astype(jnp.float32),
            labels,
            logits.reshape(x.shape[0]).astype(jnp.float32),
            conditioning=self.conditioning,
            num_classes=self.num_classes,
            spectral_norm=False,
            kernel_init=conv_init,
        )


@register_model("dcgan", family="gan")
def build_dcgan(settings, spec: ModelSpec) -> GANModels:
    """The DCGAN pair for `spec.image_size` x `spec.image_size` images with `spec.channels`
    channels, conditioned on `spec.num_classes` classes as `settings.conditioning` says (0:
    none)."""
    image_size, dtype, num_classes = spec.image_size, spec.dtype, spec.num_classes
    num_stride2_blocks(image_size)  # validates before any tracing
    if settings.spectral_norm:
        raise UserError(
            "model 'dcgan' has no spectral normalisation (config.model.spectral_norm=True); "
            "use --config.model.name=sndcgan (the SN-DCGAN of Miyato et al.) or set it to False"
        )
    return GANModels(
        generator=Generator(image_size, spec.channels, settings.g_width, dtype, num_classes),
        discriminator=Discriminator(
            image_size, settings.d_width, dtype, num_classes, settings.conditioning
        ),
        latent_dim=settings.latent_dim,
        discriminator_blocks=tuple(
            (f"Conv_{i}",) if i == 0 else (f"Conv_{i}", f"BN_{i}")
            for i in range(num_stride2_blocks(image_size))
        ),
    )
