"""Class conditioning shared by the architectures: labels enter a generator through conditional
BatchNorm and a discriminator through its output head (Miyato & Koyama 2018's projection, or
ACGAN's auxiliary classifier, Odena et al. 2017). With `num_classes` 0 every helper here is the
unconditional layer it replaces, with the same parameter names, so unconditional checkpoints
are unchanged.
"""

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from cnngen_jax.models.layers import Dense, Embed, batch_norm

# Discriminator conditioning (`config.model.conditioning` of the GAN task); any of them but
# "none" also conditions the generator's BatchNorm.
GAN_CONDITIONINGS = ("none", "projection", "acgan")


def _gain_and_bias_init(key: jax.Array, shape: tuple[int, int], dtype=jnp.float32) -> jax.Array:
    """Per-class gains from N(1, 0.02) in the first half of each row, biases 0 in the second
    (Mimicry's `ConditionalBatchNorm2d`)."""
    classes, twice = shape
    gain = 1.0 + 0.02 * jax.random.normal(key, (classes, twice // 2), dtype)
    return jnp.concatenate([gain, jnp.zeros((classes, twice // 2), dtype)], axis=1)


class ConditionalBatchNorm(nn.Module):
    """BatchNorm without its own scale and bias, then a gain and a bias per class, looked up
    from one embedding row of 2C entries (de Vries et al. 2017; laid out as Mimicry's)."""

    num_classes: int
    train: bool
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, labels: jax.Array, mask: jax.Array | None) -> jax.Array:
        x = nn.BatchNorm(
            use_running_average=not self.train,
            momentum=0.9,
            epsilon=1e-5,
            use_scale=False,
            use_bias=False,
            dtype=self.dtype,
        )(x, mask=mask)
        shape = (self.num_classes, 2 * x.shape[-1])
        table = self.param("embedding", _gain_and_bias_init, shape, jnp.float32)
        gain, bias = jnp.split(table[labels].astype(x.dtype), 2, axis=-1)
        return x * gain[:, None, None, :] + bias[:, None, None, :]


def generator_norm(
    labels: jax.Array | None,
    statistics_mask: jax.Array | None,
    *,
    num_classes: int,
    train: bool,
    dtype: jnp.dtype,
    scale_init: Callable = nn.initializers.ones,
) -> Callable[[jax.Array, str], jax.Array]:
    """A generator's BatchNorm as `norm(x, name)`, called inside a compact method: conditional
    on `labels` when `num_classes` > 0. `statistics_mask` (B,) picks the rows whose batch
    statistics normalise every row (None: all rows)."""
    mask = None if statistics_mask is None else statistics_mask[:, None, None, None] > 0

    def norm(x: jax.Array, name: str) -> jax.Array:
        if num_classes:
            return ConditionalBatchNorm(num_classes, train, dtype, name=name)(x, labels, mask)
        return batch_norm(train, dtype, name, scale_init)(x, mask=mask)

    return norm


def discriminator_head(
    features: jax.Array,
    labels: jax.Array | None,
    logits: jax.Array | None = None,
    *,
    conditioning: str,
    num_classes: int,
    spectral_norm: bool,
    kernel_init: Callable,
) -> tuple[jax.Array, jax.Array | None]:
    """(logits, class logits or None) of a discriminator from its final features (B, F); called
    inside a compact method. Its unconditional `logits` (B,) are a linear map of the features,
    made here unless the discriminator computed them itself (the DCGAN's last convolution).

    - "projection": logits + <embed(y), features>, the embedding spectrally normalised where the
      discriminator is (Mimicry's `SNEmbedding`) and initialised as D's kernels (`kernel_init`);
    - "acgan": a linear classifier over the same features gives the class logits.
    """
    if logits is None:
        logits = Dense(1, kernel_init=kernel_init, spectral_norm=spectral_norm)(features)
        logits = logits.reshape(features.shape[0])
    if conditioning == "projection":
        width = features.shape[-1]
        embed = Embed(num_classes, width, kernel_init, spectral_norm, name="ClassEmbed")
        return logits + jnp.sum(embed(labels) * features, axis=-1), None
    if conditioning == "acgan":
        head = Dense(num_classes, kernel_init, spectral_norm, name="ClassHead")
        return logits, head(features)
    return logits, None
