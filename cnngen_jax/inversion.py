"""GAN inversion: the latents whose generated images best match given images, found by gradient
descent (Adam) on the latents, the generator fixed.

The loss of a latent z for a target x is the mean squared pixel error between G(z) and x, plus
optionally `feature_weight` times a perceptual term: the mean squared distance of VGG19 relu2_2
features (`cnngen_jax.perceptual.content_loss`, Johnson et al. 2016), which favours matching
edges and textures over the pixel average. A GAN's loss surface is not convex: every image is
inverted from `restarts` random starting latents at once, all restarts x images in one batch
and one compiled `lax.scan` over the steps, and the restart with the lowest final pixel error is
kept. `decode` must make each image from its own latent alone (as a `capabilities.Sampler`'s
`decode` does), so the rows optimised together do not interact.

    projection = invert(task.decode, state, images, labels, task.latent_dim, key)
"""

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from cnngen_jax import inference, perceptual
from cnngen_jax.errors import UserError
from cnngen_jax.models import vgg

# decode(state, latents (B, D), labels (B,) or None) -> images (B, H, W, C) in [-1, 1]
Decode = Callable[[Any, jax.Array, jax.Array | None], jax.Array]
FEATURE_NET = vgg.VGG("vgg19")
FEATURE_LAYER = perceptual.JOHNSON_CONTENT_LAYER


@dataclasses.dataclass(frozen=True)
class Settings:
    """How latents are searched: Adam's steps and learning rate, random starts per image, and
    the weight of the VGG feature term (0: pixels only)."""

    steps: int = 300
    restarts: int = 4
    learning_rate: float = 0.05
    feature_weight: float = 0.0

    def __post_init__(self):
        for name in ("steps", "restarts"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name}={getattr(self, name)} must be at least 1")
        if not self.learning_rate > 0:
            raise UserError(f"--learning_rate={self.learning_rate} must be positive")
        if self.feature_weight < 0:
            raise UserError(f"--feature_weight={self.feature_weight} must be >= 0 (0: pixels only)")


DEFAULTS = Settings()


@dataclasses.dataclass
class Projection:
    """The latents found for N images, their reconstructions and the pixel errors, as arrays on
    the host. Errors are mean squared differences of intensities in [0, 1]."""

    latents: np.ndarray  # (N, D)
    reconstructions: np.ndarray  # (N, H, W, C) in [-1, 1]
    mse: np.ndarray  # (N,) of the reconstructions
    start_mse: np.ndarray | None = None  # (N,) of the best random start (inversion only)

    def rows(self, start: int, stop: int | None = None) -> "Projection":
        """The projection of images start..stop-1 only."""
        fields = (getattr(self, field.name) for field in dataclasses.fields(self))
        return Projection(*(None if value is None else value[start:stop] for value in fields))

    @property
    def psnr(self) -> np.ndarray:
        """Peak signal-to-noise ratio of each reconstruction in dB (peak 1)."""
        return -10.0 * np.log10(np.maximum(self.mse, 1e-12))


def pixel_mse(images: jax.Array, targets: jax.Array) -> jax.Array:
    """Mean squared difference per image of intensities in [0, 1], for images in [-1, 1]."""
    return jnp.mean(jnp.square((images - targets) / 2), axis=(1, 2, 3))


@functools.partial(jax.jit, static_argnames=("decode", "steps"))
def _descend(
    decode: Decode,
    state: Any,
    targets: jax.Array,
    labels: jax.Array | None,
    start: jax.Array,
    learning_rate: float,
    feature_weight: float,
    vgg_params: Any,
    steps: int,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Adam from `start` (R, N, D) towards `targets` (N, H, W, C): the final latents, and the
    pixel errors (R, N) of the starting and of the final latents."""
    restarts, count, latent_dim = start.shape
    targets = jnp.tile(targets, (restarts, 1, 1, 1))  # row r * N + i: restart r of image i
    labels = None if labels is None else jnp.tile(labels, restarts)

    def features(images):
        return FEATURE_NET.apply({"params": vgg_params}, images, (FEATURE_LAYER,))

    target_features = None if vgg_params is None else features(targets)

    def loss(latents):
        images = decode(state, latents.reshape(-1, latent_dim), labels)
        errors = pixel_mse(images, targets)
        # Sums over rows: each latent's gradient is that of its own loss, and Adam (elementwise)
        # moves it as if it were optimised alone.
        total = jnp.sum(errors)
        if vgg_params is not None:
            distance = perceptual.content_loss(features(images), target_features)  # row mean
            total += feature_weight * len(targets) * distance
        return total, errors.reshape(restarts, count)

    optimizer = optax.adam(learning_rate)

    def step(carry, _):
        latents, opt_state = carry
        grads, _ = jax.grad(loss, has_aux=True)(latents)
        updates, opt_state = optimizer.update(grads, opt_state)
        return (optax.apply_updates(latents, updates), opt_state), None

    (latents, _), _ = jax.lax.scan(step, (start, optimizer.init(start)), length=steps)
    return latents, loss(start)[1], loss(latents)[1]


def invert(
    decode: Decode,
    state: Any,
    images: jax.Array,
    labels: jax.Array | None,
    latent_dim: int,
    key: jax.Array,
    settings: Settings = DEFAULTS,
    vgg_params: Any = None,
) -> Projection:
    """The latents (of size `latent_dim`) of `decode`'s generator that best reproduce `images`
    (N, H, W, C) in [-1, 1] (of `labels`, for a conditional model); the same `key`, the same
    result. `vgg_params` (`vgg.load_vgg`) are needed when `settings.feature_weight` > 0."""
    if settings.feature_weight and vgg_params is None:
        raise ValueError("a feature_weight needs vgg_params (vgg.load_vgg)")
    images = jnp.asarray(images, jnp.float32)

    def starts(i):  # image i's depend on `key` and i only: appending images changes none
        return jax.random.normal(jax.random.fold_in(key, i), (settings.restarts, latent_dim))

    start = jnp.swapaxes(jax.vmap(starts)(jnp.arange(len(images))), 0, 1)
    latents, initial, final = _descend(
        decode,
        state,
        images,
        labels,
        start,
        settings.learning_rate,
        settings.feature_weight,
        vgg_params if settings.feature_weight else None,
        settings.steps,
    )
    best = np.argmin(np.asarray(final), axis=0)
    chosen = np.asarray(latents)[best, np.arange(len(images))]
    projection = reconstruct(decode, state, images, labels, chosen)
    return dataclasses.replace(projection, start_mse=np.min(np.asarray(initial), axis=0))


def reconstruct(
    decode: Decode, state: Any, images: jax.Array, labels: jax.Array | None, latents: np.ndarray
) -> Projection:
    """The projection of `images` onto given `latents` (from inversion or an encoder): their
    decoded images and pixel errors."""
    reconstructions = inference.compiled(decode)(state, jnp.asarray(latents), labels)
    mse = pixel_mse(reconstructions, jnp.asarray(images, jnp.float32))
    return Projection(np.asarray(latents), np.asarray(reconstructions), np.asarray(mse))
