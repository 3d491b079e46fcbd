"""Convolutional VAE (Kingma & Welling 2014): a strided-convolution encoder to a diagonal Gaussian
posterior q(z|x), and a transposed-convolution decoder to the parameters of p(x|z).

Both likelihoods model the intensities u = (x + 1) / 2 in [0, 1], so their numbers are comparable:

- 'bernoulli': the decoder gives logits and log p(u|z) = sum u log p + (1 - u) log(1 - p), the
  usual binarisation-free treatment of grey values. It is the Bernoulli log-likelihood of
  fractional targets, not a normalised density on [0, 1] (the continuous Bernoulli would add its
  normaliser); it is exact for binary images.
- 'gaussian': the decoder gives the mean and one learned log-scale per channel (a parameter, not a
  function of z), log p(u|z) = sum log N(u; mean, exp(log_scale)^2). A density on [0, 1]-scaled
  continuous values, so its log can exceed 0; it is not a discrete 8-bit likelihood. The scale
  starts at `model.gaussian_init_std`: Adam moves a log-scale by about one learning rate per step,
  so a start far from the data's noise level would take thousands of steps to correct.

Resolutions are powers of two from 16 to 128: the encoder halves down to 4x4, doubling the width
per block, and the decoder mirrors it.

Conditional (`model.conditioning` "concat", the CVAE of Sohn et al. 2015): the one-hot label
enters the encoder as extra constant input channels, q(z|x, y), and is concatenated to z for the
decoder, p(x|z, y); the prior stays N(0, I).
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from cnngen_jax.errors import UserError
from cnngen_jax.models import ModelSpec, register_model
from cnngen_jax.models.layers import Conv, ConvTranspose

VALID_IMAGE_SIZES = (16, 32, 64, 128)
LIKELIHOODS = ("bernoulli", "gaussian")
VAE_CONDITIONINGS = ("none", "concat")


def _with_one_hot(x: jax.Array, labels: jax.Array | None, num_classes: int) -> jax.Array:
    """`x` (B, ..., F) with the one-hot labels appended to its last axis, broadcast over the
    axes between; `x` itself when unconditional."""
    if not num_classes:
        return x
    one_hot = jax.nn.one_hot(labels, num_classes, dtype=x.dtype)
    one_hot = one_hot.reshape(one_hot.shape[0], *([1] * (x.ndim - 2)), num_classes)
    return jnp.concatenate([x, jnp.broadcast_to(one_hot, (*x.shape[:-1], num_classes))], -1)


def num_stride2_blocks(image_size: int) -> int:
    """Stride-2 layers between `image_size` and the 4x4 bottleneck."""
    if image_size not in VALID_IMAGE_SIZES:
        raise UserError(
            f"image_size={image_size} cannot be produced by the conv VAE; "
            f"set --config.image_size to a power of two in {list(VALID_IMAGE_SIZES)}"
        )
    return int(math.log2(image_size)) - 2


class Encoder(nn.Module):
    """Images (B, S, S, C) in [-1, 1] -> posterior mean and log-variance, each (B, latent_dim)."""

    image_size: int
    latent_dim: int
    width: int
    dtype: jnp.dtype = jnp.float32
    num_classes: int = 0

    @nn.compact
    def __call__(self, x: jax.Array, labels: jax.Array | None) -> tuple[jax.Array, jax.Array]:
        x = _with_one_hot(x.astype(self.dtype), labels, self.num_classes)
        for i in range(num_stride2_blocks(self.image_size)):
            conv = Conv(self.width * 2**i, 4, 2, 1, dtype=self.dtype)
            x = nn.silu(conv(x))
        x = nn.Dense(2 * self.latent_dim, dtype=self.dtype)(x.reshape(x.shape[0], -1))
        mean, log_var = jnp.split(x.astype(jnp.float32), 2, axis=-1)
        return mean, log_var


class Decoder(nn.Module):
    """Latents (B, latent_dim) -> per-pixel likelihood parameters (B, S, S, channels)."""

    image_size: int
    channels: int
    width: int
    dtype: jnp.dtype = jnp.float32
    num_classes: int = 0

    @nn.compact
    def __call__(self, z: jax.Array, labels: jax.Array | None) -> jax.Array:
        blocks = num_stride2_blocks(self.image_size)
        features = self.width * 2 ** (blocks - 1)
        z = _with_one_hot(z.astype(self.dtype), labels, self.num_classes)
        x = nn.Dense(4 * 4 * features, dtype=self.dtype)(z)
        x = x.reshape(z.shape[0], 4, 4, features)
        for i in range(blocks):
            last = i == blocks - 1
            features = self.channels if last else features // 2
            x = ConvTranspose(features, 4, 2, 1, name=f"ConvT_{i}")(nn.silu(x))
            x = x + self.param(f"bias_{i}", nn.initializers.zeros, (features,)).astype(self.dtype)
        return x.astype(jnp.float32)


class ConvVAE(nn.Module):
    """Encoder, decoder and, for the Gaussian likelihood, the learned per-channel log-scale."""

    image_size: int
    channels: int
    latent_dim: int
    width: int
    likelihood: str
    init_log_scale: float = 0.0
    dtype: jnp.dtype = jnp.float32
    num_classes: int = 0  # > 0: a conditional VAE

    def setup(self):
        self.encoder = Encoder(
            self.image_size, self.latent_dim, self.width, self.dtype, self.num_classes
        )
        self.decoder = Decoder(
            self.image_size, self.channels, self.width, self.dtype, self.num_classes
        )
        if self.likelihood == "gaussian":
            self.log_scale = self.param(
                "log_scale", nn.initializers.constant(self.init_log_scale), (self.channels,)
            )

    def encode(self, x: jax.Array, labels: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
        return self.encoder(x, labels)

    def decode(self, z: jax.Array, labels: jax.Array | None = None) -> dict[str, jax.Array]:
        """Likelihood parameters: {'logits'} (Bernoulli) or {'mean', 'log_scale'} (Gaussian)."""
        out = self.decoder(z, labels)
        if self.likelihood == "gaussian":
            return {"mean": out, "log_scale": self.log_scale}
        return {"logits": out}

    def __call__(
        self, x: jax.Array, eps: jax.Array, labels: jax.Array | None = None
    ) -> dict[str, jax.Array]:
        """Reconstruction parameters for x through z = mean + std * eps (used for `init`)."""
        mean, log_var = self.encode(x, labels)
        return self.decode(mean + jnp.exp(0.5 * log_var) * eps, labels)


@register_model("conv_vae", family="vae")
def build_conv_vae(settings, spec: ModelSpec) -> ConvVAE:
    """The conv VAE for `spec.image_size` x `spec.image_size` images with `spec.channels`
    channels.

    `spec.dtype` is the compute dtype of the convolutions; parameters, the posterior's parameters
    and the likelihood's parameters are float32.
    """
    num_stride2_blocks(spec.image_size)  # validates before any tracing
    if settings.likelihood not in LIKELIHOODS:
        raise UserError(
            f"unknown likelihood {settings.likelihood!r} (config.model.likelihood); "
            f"choose one of: {', '.join(LIKELIHOODS)}"
        )
    if settings.gaussian_init_std <= 0:
        raise UserError("config.model.gaussian_init_std must be positive")
    return ConvVAE(
        image_size=spec.image_size,
        channels=spec.channels,
        latent_dim=settings.latent_dim,
        width=settings.width,
        likelihood=settings.likelihood,
        init_log_scale=math.log(settings.gaussian_init_std),
        dtype=spec.dtype,
        num_classes=spec.num_classes,
    )
