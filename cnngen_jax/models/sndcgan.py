"""The "standard CNN" of Miyato et al. 2018 (SNGAN paper, Table 3, CIFAR-10 at 32x32), which
the paper trains with spectral normalisation in D (SN-DCGAN).

G: z -> dense to 4x4 x (8 g_width), three 4x4 stride-2 transposed convolutions halving the width
(BN, ReLU after each), 3x3 conv to the image channels, tanh. D: 3x3 stride-1 and 4x4 stride-2
convolutions alternating, widths d_width, d_width, 2 d_width, 2 d_width, 4 d_width, 4 d_width,
8 d_width, each followed by LeakyReLU(0.1), then dense over the flattened 4x4 features to one
logit; spectral norm on all eight layers, no BatchNorm. With g_width = d_width = 64 these are
the paper's 512/256/128/64 and 64...512 widths. Every layer has a bias; the paper states no
initialisation, so kernels are N(0, 0.02) (as DCGAN and the authors' chainer-gan-lib).

As in Table 3 and StudioGAN's `deep_conv`, nothing follows G's dense layer before the first
transposed convolution; chainer-gan-lib's `DCGANGenerator` puts BatchNorm and ReLU there (16,384
more parameters with its 1-D BatchNorm), which is the one layout difference between the two.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from cnngen_jax.models import GANModels, ModelSpec, register_model, require_image_size
from cnngen_jax.models.conditioning import discriminator_head, generator_norm
from cnngen_jax.models.layers import Conv, ConvTranspose, Dense

normal_init = nn.initializers.normal(stddev=0.02)


class StandardGenerator(nn.Module):
    width: int = 64
    channels: int = 3
    dtype: jnp.dtype = jnp.float32
    num_classes: int = 0  # > 0: conditional BatchNorm

    @nn.compact
    def __call__(
        self,
        z: jax.Array,
        labels: jax.Array | None = None,
        train: bool = True,
        statistics_mask: jax.Array | None = None,
    ) -> jax.Array:
        norm = generator_norm(
            labels, statistics_mask, num_classes=self.num_classes, train=train, dtype=self.dtype
        )
        features = 8 * self.width
        x = Dense(4 * 4 * features, kernel_init=normal_init)(z).reshape(-1, 4, 4, features)
        x = x.astype(self.dtype)
        for i in range(3):
            features //= 2
            x = ConvTranspose(
                features, 4, 2, 1, kernel_init=normal_init, use_bias=True, name=f"ConvT_{i}"
            )(x)
            x = nn.relu(norm(x, f"BN_{i}"))
        x = Conv(self.channels, 3, 1, 1, kernel_init=normal_init, dtype=self.dtype)(x)
        return jnp.tanh(x)


class StandardDiscriminator(nn.Module):
    width: int = 64
    spectral_norm: bool = True
    dtype: jnp.dtype = jnp.float32
    num_classes: int = 0
    conditioning: str = "none"  # the heads see the flattened 4x4 features

    @nn.compact
    def __call__(
        self, x: jax.Array, labels: jax.Array | None = None, train: bool = True
    ) -> tuple[jax.Array, jax.Array | None]:
        x = x.astype(self.dtype)
        layers = [(1, 3, 1, 1), (1, 4, 2, 1), (2, 3, 1, 1), (2, 4, 2, 1)]
        layers += [(4, 3, 1, 1), (4, 4, 2, 1), (8, 3, 1, 1)]
        for multiple, kernel_size, stride, padding in layers:
            conv = Conv(
                multiple * self.width,
                kernel_size,
                stride,
                padding,
                kernel_init=normal_init,
                spectral_norm=self.spectral_norm,
                dtype=self.dtype,
            )
            x = nn.leaky_relu(conv(x), 0.1)
        x = x.reshape(x.shape[0], -1).astype(jnp.float32)
        return discriminator_head(
            x,
            labels,
            conditioning=self.conditioning,
            num_classes=self.num_classes,
            spectral_norm=self.spectral_norm,
            kernel_init=normal_init,
        )


@register_model("sndcgan", family="gan")
def build_sndcgan(settings, spec: ModelSpec) -> GANModels:
    """The standard CNN pair at 32x32; spectral norm in D as `settings.spectral_norm` says."""
    require_image_size("sndcgan", spec.image_size, 32)
    return GANModels(
        generator=StandardGenerator(settings.g_width, spec.channels, spec.dtype, spec.num_classes),
        discriminator=StandardDiscriminator(
            settings.d_width,
            settings.spectral_norm,
            spec.dtype,
            spec.num_classes,
            settings.conditioning,
        ),
        latent_dim=settings.latent_dim,
        discriminator_blocks=tuple((f"Conv_{i}",) for i in range(7)),
    )
