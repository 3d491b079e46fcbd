"""Adversarial training of a generator against a discriminator: DCGAN and its descendants, one
task parametrised by config.

- the objective (`config.loss`: ns, minimax, hinge, wasserstein, ls) and the regularisers
  (`gp_weight`: the WGAN-GP penalty, `r1_weight`: R1) come from `cnngen_jax.losses`;
- `n_critic` discriminator updates per generator update, each on its own real batch and its own
  fakes, run under `lax.scan` over a (n_critic, B, ...) batch, then one generator update on
  fresh latents. With n_critic = 1 the generator's forward pass is shared by both updates (as
  the DCGAN reference's `fake.detach()` does): G runs forward once and backward once;
- spectral normalisation lives in the discriminator's layers; its power iteration runs once per
  discriminator update (in the pass on real data), never in the generator's update;
- the generator's moving average (`ema_decay`) draws samples and evaluation images;
- class conditioning (`model.conditioning`: "projection" or "acgan"; `cnngen_jax.models.
  conditioning`): real images come with their labels, fakes with labels drawn uniformly; ACGAN
  adds `class_loss_weight` times a cross-entropy on real images to D's loss and on fakes to G's.
"""

import functools
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import optax

from cnngen_jax import losses, optim
from cnngen_jax.data import DatasetInfo
from cnngen_jax.errors import UserError
from cnngen_jax.models import ModelSpec, get_model
from cnngen_jax.models.conditioning import GAN_CONDITIONINGS
from cnngen_jax.models.spectral_norm import COLLECTION as SPECTRAL
from cnngen_jax.random_streams import STATISTICS_STREAM, seed_key
from cnngen_jax.tasks import (
    Batch,
    Metrics,
    NetState,
    apply_network,
    balanced_labels,
    check_labels,
    class_grid,
    conditional_classes,
    init_network,
    register_task,
)

Labels = jax.Array | None  # (B,) class labels; None for unconditional models


@flax.struct.dataclass
class GANState:
    step: jax.Array
    generator: NetState
    discriminator: NetState
    g_ema_params: Any  # exponential moving average of the generator's parameters


def _validate(config: ml_collections.ConfigDict) -> None:
    """The GAN settings `losses.get_objective` (config.loss) and the optimizers do not check."""
    if config.n_critic < 1:
        raise UserError(
            f"n_critic={config.n_critic} must be >= 1 (discriminator updates per generator "
            "update); set --config.n_critic, e.g. 5 for WGAN-GP and SNGAN"
        )
    for key in ("gp_weight", "r1_weight", "class_loss_weight"):
        if config[key] < 0:
            raise UserError(f"{key}={config[key]} must be >= 0 (0 disables it); set --config.{key}")
    if not 0.0 <= config.ema_decay < 1.0:
        raise UserError(
            f"ema_decay={config.ema_decay} must be in [0, 1) (0: no moving average); "
            "set --config.ema_decay, e.g. 0.999"
        )


def _cross_entropy(class_logits: jax.Array, labels: jax.Array) -> jax.Array:
    return optax.softmax_cross_entropy_with_integer_labels(class_logits, labels).mean()


@register_task("gan")
class GANTask:
    """A GAN on images in [-1, 1], unconditional or class-conditional."""

    def __init__(self, config: ml_collections.ConfigDict, data_info: DatasetInfo):
        _validate(config)
        self.num_classes = conditional_classes(
            config.model.conditioning, GAN_CONDITIONINGS, data_info
        )
        self.description = "a class-conditional GAN" if self.num_classes else "a GAN"
        self.class_loss_weight = config.class_loss_weight
        self.objective = losses.get_objective(config.loss)
        self.n_critic = config.n_critic
        self.gp_weight = config.gp_weight
        self.r1_weight = config.r1_weight
        self.ema_decay = config.ema_decay
        self.batch_size = config.batch_size
        self.num_sample_images = config.num_sample_images
        spec = ModelSpec.of_run(config, data_info.channels, num_classes=self.num_classes)
        self.models = get_model(config.model.name, "gan")(config.model, spec)
        self.latent_dim = self.models.latent_dim
        opt, steps = config.optimizer, config.num_train_steps
        self.g_optimizer = optim.adam(opt.g_learning_rate, opt, steps)
        self.d_optimizer = optim.adam(opt.d_learning_rate, opt, steps, config.n_critic)
        blocks = self.models.discriminator_blocks
        if not 0 <= config.freeze_d_blocks <= len(blocks):
            raise UserError(
                f"freeze_d_blocks={config.freeze_d_blocks} (FreezeD) must be between 0 and the "
                f"{len(blocks)} feature blocks of {config.model.name!r}'s discriminator; set "
                "--config.freeze_d_blocks"
            )
        if config.freeze_d_blocks:
            frozen = {name for block in blocks[: config.freeze_d_blocks] for name in block}
            self.d_optimizer = optim.freeze(self.d_optimizer, frozen)
        self.image_shape = (config.image_size, config.image_size, data_info.channels)

    @property
    def batches_per_step(self) -> int:
        """One real batch per discriminator update."""
        return self.n_critic

    def init_state(self, key: jax.Array) -> GANState:
        g_key, d_key = jax.random.split(key)
        z = jnp.zeros((1, self.models.latent_dim))
        labels = jnp.zeros((1,), jnp.int32) if self.num_classes else None
        generator = init_network(
            self.models.generator, g_key, self.g_optimizer, z, labels, train=False
        )
        images = jnp.zeros((1, *self.image_shape))
        discriminator = init_network(
            self.models.discriminator, d_key, self.d_optimizer, images, labels, train=False
        )
        return GANState(jnp.zeros((), jnp.int32), generator, discriminator, generator.params)

    # Forward passes. Training-mode BatchNorm uses batch statistics (of the rows in
    # `statistics_mask`, or all); `keep_statistics` says whether the running averages are
    # updated, `power_iteration` whether spectral norm's are.

    def _generate(
        self,
        g: NetState,
        z: jax.Array,
        labels: Labels,
        params=None,
        keep_statistics=True,
        statistics_mask=None,
    ):
        variables = g.variables(params)
        images, collections = apply_network(
            self.models.generator,
            variables,
            z,
            labels,
            train=True,
            statistics_mask=statistics_mask,
            mutable=list(g.collections),
        )
        return images, collections if keep_statistics else g.collections

    def _discriminate(
        self, d: NetState, images: jax.Array, labels: Labels, params=None, power_iteration=False
    ):
        """((logits, class logits or None), D's collections after the pass)."""
        mutable = [c for c in d.collections if c != SPECTRAL or power_iteration]
        variables = d.variables(params)
        return apply_network(
            self.models.discriminator, variables, images, labels, train=True, mutable=mutable
        )

    def _discriminator_update(
        self,
        d: NetState,
        real: jax.Array,
        real_labels: Labels,
        fake: jax.Array,
        fake_labels: Labels,
        key: jax.Array,
    ) -> tuple[NetState, Metrics]:
        """One discriminator update on a real and a fake batch (the fakes are constants)."""
        fake = jax.lax.stop_gradient(fake)

        def objective(params):
            (real_logits, real_classes), collections = self._discriminate(
                d, real, real_labels, params, power_iteration=True
            )
            after_real = d.replace(collections=collections)
            (fake_logits, _), collections = self._discriminate(
                after_real, fake, fake_labels, params
            )
            loss = self.objective.discriminator(real_logits, fake_logits)
            terms = {}
            # The penalties see the same layer state and keep none of it; interpolates between
            # real and fake images are judged with the real labels.
            critic = lambda x: self._discriminate(after_real, x, real_labels, params)[0][0]  # noqa: E731
            if self.gp_weight:
                terms["gradient_penalty"] = losses.gradient_penalty(critic, real, fake, key)
                loss += self.gp_weight * terms["gradient_penalty"]
            if self.r1_weight:
                terms["r1_penalty"] = losses.r1_penalty(critic, real)
                loss += 0.5 * self.r1_weight * terms["r1_penalty"]
            if real_classes is not None:  # ACGAN: classify the real images
                terms["d_class_loss"] = _cross_entropy(real_classes, real_labels)
                terms["d_class_accuracy"] = jnp.mean(jnp.argmax(real_classes, -1) == real_labels)
                loss += self.class_loss_weight * terms["d_class_loss"]
            return loss, (collections, real_logits, fake_logits, terms)

        (loss, (collections, real_logits, fake_logits, terms)), grads = jax.value_and_grad(
            objective, has_aux=True
        )(d.params)
        metrics = {"d_loss": loss, **terms}
        metrics.update(self._scores("d_real", real_logits), **self._scores("d_fake", fake_logits))
        return d.updated(self.d_optimizer, grads, collections), metrics

    def _scores(self, name: str, logits: jax.Array) -> Metrics:
        """Mean raw discriminator output, and its probability for sigmoid objectives."""
        scores = {name: jnp.mean(logits)}
        if self.objective.sigmoid_outputs:
            probability = {"d_real": "d_x", "d_fake": "d_g_z", "d_fake_after": "d_g_z_after"}
            scores[probability[name]] = jnp.mean(jax.nn.sigmoid(logits))
        return scores

    def _generator_update(
        self,
        state: GANState,
        d: NetState,
        fake: jax.Array,
        fake_labels: Labels,
        generator_vjp,
        g_collections,
    ) -> tuple[GANState, Metrics]:
        """The generator's update through `fake = G(z, fake_labels)` (its VJP) against
        discriminator `d`."""

        def objective(images):
            (logits, classes), collections = self._discriminate(d, images, fake_labels)
            loss, terms = self.objective.generator(logits), {}
            if classes is not None:  # ACGAN: fakes should be classified as their labels
                terms["g_class_loss"] = _cross_entropy(classes, fake_labels)
                loss += self.class_loss_weight * terms["g_class_loss"]
            return loss, (collections, logits, terms)

        (g_loss, (d_collections, logits, terms)), fake_grads = jax.value_and_grad(
            objective, has_aux=True
        )(fake)
        (g_grads,) = generator_vjp(fake_grads)
        generator = state.generator.updated(self.g_optimizer, g_grads, g_collections)
        ema = optax.incremental_update(generator.params, state.g_ema_params, 1.0 - self.ema_decay)
        new_state = GANState(
            step=state.step + 1,
            generator=generator,
            discriminator=d.replace(collections=d_collections),
            g_ema_params=ema,
        )
        scores = self._scores("d_fake_after", logits)
        return new_state, {"g_loss": g_loss, **terms, **scores}

    def _generator_forward(self, state: GANState, z: jax.Array, labels: Labels):
        """G(z, labels), its VJP in the parameters, and G's collections after the pass."""
        return jax.vjp(
            lambda params: self._generate(state.generator, z, labels, params),
            state.generator.params,
            has_aux=True,
        )

    def fused_step(
        self,
        state: GANState,
        real: jax.Array,
        real_labels: Labels,
        z: jax.Array,
        fake_labels: Labels,
        key: jax.Array,
    ):
        """n_critic = 1: one discriminator update and one generator update on the same fakes."""
        fake, generator_vjp, g_collections = self._generator_forward(state, z, fake_labels)
        d, d_metrics = self._discriminator_update(
            state.discriminator, real, real_labels, fake, fake_labels, key
        )
        new_state, g_metrics = self._generator_update(
            state, d, fake, fake_labels, generator_vjp, g_collections
        )
        return new_state, {**d_metrics, **g_metrics}

    def critic_steps(
        self,
        state: GANState,
        reals: jax.Array,
        real_labels: Labels,
        d_latents: jax.Array,
        d_fake_labels: Labels,
        z: jax.Array,
        fake_labels: Labels,
        keys,
    ) -> tuple[GANState, Metrics]:
        """len(reals) discriminator updates, each on its own real batch and fakes from its own
        latents (G's statistics not kept), then one generator update on latents `z`. Metrics
        of the discriminator updates are averaged."""

        def update(d, inputs):
            real, labels, latents, latent_labels, key = inputs
            fake, _ = self._generate(state.generator, latents, latent_labels, keep_statistics=False)
            return self._discriminator_update(d, real, labels, fake, latent_labels, key)

        inputs = (reals, real_labels, d_latents, d_fake_labels, keys)
        d, d_metrics = jax.lax.scan(update, state.discriminator, inputs)
        fake, generator_vjp, g_collections = self._generator_forward(state, z, fake_labels)
        new_state, g_metrics = self._generator_update(
            state, d, fake, fake_labels, generator_vjp, g_collections
        )
        return new_state, {**jax.tree.map(jnp.mean, d_metrics), **g_metrics}

    def _fake_labels(self, key: jax.Array, count: int) -> Labels:
        """Labels of `count` fakes, uniform over the classes (None when unconditional)."""
        if not self.num_classes:
            return None
        return jax.random.randint(key, (count,), 0, self.num_classes)

    def train_step(self, state: GANState, batch: Batch, key: jax.Array) -> tuple[GANState, Metrics]:
        d_key, penalty_key, g_key = jax.random.split(key, 3)
        # Outside the split, so unconditional runs draw the numbers they always drew: index 3,
        # as split(key, n)[i] is fold_in(key, i) with the partitionable threefry.
        d_label_key, g_label_key = jax.random.split(jax.random.fold_in(key, 3))
        real_labels = batch["label"] if self.num_classes else None
        shape = (self.batch_size, self.models.latent_dim)
        if self.n_critic == 1:
            fake_labels = self._fake_labels(d_label_key, shape[0])
            z = jax.random.normal(d_key, shape)
            return self.fused_step(state, batch["image"], real_labels, z, fake_labels, penalty_key)
        # Drawn in 2-D: XLA:CPU compiles 3-D random draws several times slower.
        d_latents = jax.random.normal(d_key, (self.n_critic * shape[0], shape[1]))
        d_fake_labels = self._fake_labels(d_label_key, self.n_critic * shape[0])
        return self.critic_steps(
            state,
            batch["image"],
            real_labels,
            d_latents.reshape(self.n_critic, *shape),
            None if d_fake_labels is None else d_fake_labels.reshape(self.n_critic, shape[0]),
            jax.random.normal(g_key, shape),
            self._fake_labels(g_label_key, shape[0]),
            jax.random.split(penalty_key, self.n_critic),
        )

    def networks(self, state: GANState) -> dict[str, Any]:
        return {"generator": state.generator.params, "discriminator": state.discriminator.params}

    def images(self, state: GANState, examples: Batch, key: jax.Array) -> dict[str, jax.Array]:
        pictures = {"samples": self.generate(state, key, self.num_sample_images)}
        if self.num_classes:
            pictures["class_grid"] = class_grid(
                functools.partial(self.decode, state),
                jax.random.fold_in(key, 1),
                self.num_classes,
                self.num_sample_images,
                self.models.latent_dim,
            )
        return pictures

    def generate(
        self, state: GANState, key: jax.Array, num_images: int, labels: Labels = None
    ) -> jax.Array:
        """`num_images` samples in [-1, 1]: `decode` of latents drawn with `key`."""
        latents = jax.random.normal(key, (num_images, self.models.latent_dim))
        return self.decode(state, latents, labels)

    def decode(self, state: GANState, latents: jax.Array, labels: Labels = None) -> jax.Array:
        """Images in [-1, 1] of `latents` (and `labels`; a conditional model's default is every
        class in turn) by the moving-average generator weights (`config.ema_decay`; with 0
        they are the current weights).

        Each image is a function of its own latent (and label) only: BatchNorm normalises
        every row by the statistics of a fixed batch of `batch_size` latents (class-balanced
        when conditional, as mixed as the training batches), never by the other rows' (train
        mode, statistics not kept: running averages lag badly early in GAN training). So an
        export's image i, an inversion's restarts and a one-class grid do not depend on what
        else is in the batch.
        """
        if labels is None and self.num_classes:
            labels = balanced_labels(len(latents), self.num_classes)
        if self.num_classes or labels is not None:
            check_labels(labels, self.num_classes, len(latents))
        statistics_key = seed_key(0, STATISTICS_STREAM)
        reference = jax.random.normal(statistics_key, (self.batch_size, latents.shape[1]))
        z = jnp.concatenate([latents, reference])
        all_labels = None
        if self.num_classes:
            reference_labels = balanced_labels(self.batch_size, self.num_classes)
            all_labels = jnp.concatenate([jnp.asarray(labels, jnp.int32), reference_labels])
        mask = jnp.arange(len(z)) >= len(latents)
        samples, _ = self._generate(
            state.generator,
            z,
            all_labels,
            state.g_ema_params,
            keep_statistics=False,
            statistics_mask=mask,
        )
        return samples[: len(latents)].astype(jnp.float32)
