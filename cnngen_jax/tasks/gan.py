"""Adversarial training of a generator against a discriminator (DCGAN and descendants).

The iteration is the reference one: a discriminator step on a real batch and a batch of fakes,
then a generator step against the updated discriminator, with the non-saturating objective
computed on logits. The generator's forward pass is shared by both steps (as the reference's
`fake.detach()` does), so each iteration runs G forward once and its backward once.
"""

from collections.abc import Callable, Iterator
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from cnngen_jax import evaluation
from cnngen_jax.data import DatasetInfo
from cnngen_jax.errors import UserError
from cnngen_jax.models import get_model
from cnngen_jax.tasks import (
    INIT_STREAM,
    SAMPLE_STREAM,
    TRAIN_STREAM,
    Batch,
    Metrics,
    register_task,
    seed_key,
)


@flax.struct.dataclass
class GANState:
    step: jax.Array
    g_params: Any
    g_ema_params: Any  # exponential moving average of g_params (config.ema_decay)
    g_batch_stats: Any
    g_opt_state: Any
    d_params: Any
    d_batch_stats: Any
    d_opt_state: Any


def discriminator_loss(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
    """BCE(D(x), 1) + BCE(D(G(z)), 0), each a batch mean, from logits."""
    return jnp.mean(jax.nn.softplus(-real_logits)) + jnp.mean(jax.nn.softplus(fake_logits))


def generator_loss(fake_logits: jax.Array) -> jax.Array:
    """Non-saturating generator loss BCE(D(G(z)), 1) from logits."""
    return jnp.mean(jax.nn.softplus(-fake_logits))


def adam(
    learning_rate: float, opt_config: ml_collections.ConfigDict
) -> optax.GradientTransformation:
    return optax.adam(learning_rate, b1=opt_config.b1, b2=opt_config.b2)


@register_task("gan")
class GANTask:
    """Unconditional GAN on images in [-1, 1]."""

    def __init__(self, config: ml_collections.ConfigDict, data_info: DatasetInfo):
        self.seed = config.seed
        self.init_prng_impl = config.init_prng_impl
        self.ema_decay = config.ema_decay
        if not 0.0 <= self.ema_decay < 1.0:
            raise UserError(
                f"ema_decay={self.ema_decay} must be in [0, 1) (0: no moving average); "
                "set --config.ema_decay, e.g. 0.999"
            )
        self.batch_size = config.batch_size
        self.num_sample_images = config.num_sample_images
        self.models = get_model(config.model.name)(
            config.model, config.image_size, data_info.channels, jnp.dtype(config.compute_dtype)
        )
        self.g_optimizer = adam(config.optimizer.g_learning_rate, config.optimizer)
        self.d_optimizer = adam(config.optimizer.d_learning_rate, config.optimizer)
        self.image_shape = (config.image_size, config.image_size, data_info.channels)
        # Built only when the trainer evaluates, so its checks cannot stop a run that does not.
        self.evaluator = (
            evaluation.Evaluator.from_config(config) if config.eval_every_steps else None
        )

    def init_state(self) -> GANState:
        g_key, d_key = jax.random.split(seed_key(self.seed, INIT_STREAM, self.init_prng_impl))
        z = jnp.zeros((1, self.models.latent_dim))
        g_vars = self.models.generator.init(g_key, z, train=False)
        d_vars = self.models.discriminator.init(
            d_key, jnp.zeros((1, *self.image_shape)), train=False
        )
        return GANState(
            step=jnp.zeros((), jnp.int32),
            g_params=g_vars["params"],
            g_ema_params=g_vars["params"],
            g_batch_stats=g_vars["batch_stats"],
            g_opt_state=self.g_optimizer.init(g_vars["params"]),
            d_params=d_vars["params"],
            d_batch_stats=d_vars["batch_stats"],
            d_opt_state=self.d_optimizer.init(d_vars["params"]),
        )

    def _discriminate(self, params, batch_stats, images):
        logits, updates = self.models.discriminator.apply(
            {"params": params, "batch_stats": batch_stats},
            images,
            train=True,
            mutable=["batch_stats"],
        )
        return logits, updates["batch_stats"]

    def train_step(self, state: GANState, batch: Batch) -> tuple[GANState, Metrics]:
        rng = jax.random.fold_in(seed_key(self.seed, TRAIN_STREAM), state.step)
        z = jax.random.normal(rng, (self.batch_size, self.models.latent_dim))

        def generate(g_params):
            fake, updates = self.models.generator.apply(
                {"params": g_params, "batch_stats": state.g_batch_stats},
                z,
                train=True,
                mutable=["batch_stats"],
            )
            return fake, updates["batch_stats"]

        fake, generator_vjp, g_batch_stats = jax.vjp(generate, state.g_params, has_aux=True)

        def d_objective(d_params):
            real_logits, stats = self._discriminate(d_params, state.d_batch_stats, batch["image"])
            fake_logits, stats = self._discriminate(d_params, stats, jax.lax.stop_gradient(fake))
            return discriminator_loss(real_logits, fake_logits), (stats, real_logits, fake_logits)

        (d_loss, (d_batch_stats, real_logits, fake_logits)), d_grads = jax.value_and_grad(
            d_objective, has_aux=True
        )(state.d_params)
        d_updates, d_opt_state = self.d_optimizer.update(d_grads, state.d_opt_state, state.d_params)
        d_params = optax.apply_updates(state.d_params, d_updates)

        def g_objective(images):
            logits, stats = self._discriminate(d_params, d_batch_stats, images)
            return generator_loss(logits), (stats, logits)

        (g_loss, (d_batch_stats, g_logits)), fake_grads = jax.value_and_grad(
            g_objective, has_aux=True
        )(fake)
        (g_grads,) = generator_vjp(fake_grads)
        g_updates, g_opt_state = self.g_optimizer.update(g_grads, state.g_opt_state, state.g_params)
        g_params = optax.apply_updates(state.g_params, g_updates)
        g_ema_params = optax.incremental_update(g_params, state.g_ema_params, 1.0 - self.ema_decay)

        new_state = GANState(
            step=state.step + 1,
            g_params=g_params,
            g_ema_params=g_ema_params,
            g_batch_stats=g_batch_stats,
            g_opt_state=g_opt_state,
            d_params=d_params,
            d_batch_stats=d_batch_stats,
            d_opt_state=d_opt_state,
        )
        metrics = {
            "d_loss": d_loss,
            "g_loss": g_loss,
            "d_x": jnp.mean(nn.sigmoid(real_logits)),
            "d_g_z": jnp.mean(nn.sigmoid(fake_logits)),
            "d_g_z_after": jnp.mean(nn.sigmoid(g_logits)),
        }
        return new_state, metrics

    def networks(self, state: GANState) -> dict[str, Any]:
        return {"generator": state.g_params, "discriminator": state.d_params}

    def images(self, state: GANState, examples: Batch) -> dict[str, jax.Array]:
        key = seed_key(self.seed, SAMPLE_STREAM)  # the same latents at every sample step
        return {"samples": self.generate(state, key, self.num_sample_images)}

    def generate(self, state: GANState, key: jax.Array, num_images: int) -> jax.Array:
        """`num_images` samples in [-1, 1] from latents drawn with `key`, by the moving-average
        generator weights (`config.ema_decay`; with 0 they are the current weights).

        BatchNorm uses the statistics of this generated batch (train mode, statistics not
        kept), as the reference's sample grids do: running averages lag badly early in GAN
        training. Samples therefore depend on `num_images`.
        """
        latents = jax.random.normal(key, (num_images, self.models.latent_dim))
        samples, _ = self.models.generator.apply(
            {"params": state.g_ema_params, "batch_stats": state.g_batch_stats},
            latents,
            train=True,
            mutable=["batch_stats"],
        )
        return samples.astype(jnp.float32)

    def evaluate(self, state: GANState, batches: Callable[[], Iterator[Batch]]) -> dict[str, float]:
        """FID, KID and precision/recall of `config.eval.num_samples` generated images against
        the held-out split, on `config.eval.feature_net` features (`cnngen_jax.evaluation`);
        {} when `config.eval_every_steps` is 0. The real statistics are computed once."""
        if self.evaluator is None:
            return {}
        reference = self.evaluator.held_out_reference(batches)
        return self.evaluator.score(reference, self.evaluator.generated(self.generate, state))
