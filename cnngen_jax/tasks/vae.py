"""Variational autoencoder: the negative ELBO objective, its train step, the importance-weighted
bound on held-out data, and sample / reconstruction / interpolation pictures.

A conditional VAE (`model.conditioning` "concat") conditions every term on the image's label:
log p(x|y) >= E_q(z|x,y)[log p(x|z,y)] - KL(q(z|x,y) || p(z)).

Every quantity is per image in nats: log-likelihoods are summed over all H*W*C dimensions and KLs
over the latent dimensions, then averaged over images. Bits per dimension divide by H*W*C*ln 2.
Data x in [-1, 1] is modelled as u = (x + 1) / 2 in [0, 1] (see `cnngen_jax.models.vae`).
"""

import functools
import math
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from cnngen_jax.data import DatasetInfo
from cnngen_jax.errors import UserError
from cnngen_jax.models import ModelSpec, get_model
from cnngen_jax.models.vae import VAE_CONDITIONINGS
from cnngen_jax.tasks import (
    Batch,
    Metrics,
    balanced_labels,
    check_labels,
    class_grid,
    conditional_classes,
    register_task,
)

_LOG_2PI = math.log(2 * math.pi)


@flax.struct.dataclass
class VAEState:
    step: jax.Array
    params: Any
    opt_state: Any


def bernoulli_log_prob(logits: jax.Array, u: jax.Array) -> jax.Array:
    """Elementwise u log p + (1 - u) log(1 - p) with p = sigmoid(logits), for grey u in [0, 1]."""
    return u * jax.nn.log_sigmoid(logits) + (1 - u) * jax.nn.log_sigmoid(-logits)


def gaussian_log_prob(mean: jax.Array, log_scale: jax.Array, u: jax.Array) -> jax.Array:
    """Elementwise log N(u; mean, exp(log_scale)^2)."""
    return -0.5 * jnp.square((u - mean) * jnp.exp(-log_scale)) - log_scale - 0.5 * _LOG_2PI


def log_likelihood(dist: dict[str, jax.Array], u: jax.Array) -> jax.Array:
    """log p(u|z) summed over H, W, C: one value per image."""
    if "logits" in dist:
        elementwise = bernoulli_log_prob(dist["logits"], u)
    else:
        elementwise = gaussian_log_prob(dist["mean"], dist["log_scale"], u)
    return jnp.sum(elementwise, axis=(1, 2, 3))


def likelihood_mean(dist: dict[str, jax.Array]) -> jax.Array:
    """E[u|z] in [0, 1] (the Gaussian mean is clipped for display)."""
    if "logits" in dist:
        return jax.nn.sigmoid(dist["logits"])
    return jnp.clip(dist["mean"], 0.0, 1.0)


def gaussian_kl(mean: jax.Array, log_var: jax.Array) -> jax.Array:
    """KL(N(mean, exp(log_var)) || N(0, I)) summed over the last axis, in closed form."""
    return 0.5 * jnp.sum(jnp.square(mean) + jnp.exp(log_var) - 1.0 - log_var, axis=-1)


def diagonal_gaussian_log_prob(z: jax.Array, mean: jax.Array, log_var: jax.Array) -> jax.Array:
    """log N(z; mean, diag(exp(log_var))) summed over the last axis."""
    return -0.5 * jnp.sum(jnp.square(z - mean) * jnp.exp(-log_var) + log_var + _LOG_2PI, axis=-1)


def elbo_terms(
    model,
    params: Any,
    images: jax.Array,
    eps: jax.Array,
    analytic_kl: bool = True,
    labels: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Per-image reconstruction NLL -log p(x|z[, y]) and KL term, z = mean + std * eps.

    With `analytic_kl` the KL is exact; otherwise it is the one-sample estimate
    log q(z|x) - log p(z) at the same z, which makes -(NLL + KL) the k=1 importance weight.
    """
    variables = {"params": params}
    mean, log_var = model.apply(variables, images, labels, method="encode")
    z = mean + jnp.exp(0.5 * log_var) * eps
    nll = -log_likelihood(model.apply(variables, z, labels, method="decode"), (images + 1) / 2)
    if analytic_kl:
        return nll, gaussian_kl(mean, log_var)
    zeros = jnp.zeros_like(z)
    return nll, diagonal_gaussian_log_prob(z, mean, log_var) - diagonal_gaussian_log_prob(
        z, zeros, zeros
    )


def importance_weighted_nll(
    model, params: Any, images: jax.Array, eps: jax.Array, labels: jax.Array | None = None
) -> jax.Array:
    """-log (1/k) sum_k p(x, z_k) / q(z_k|x) per image (Burda et al. 2016), eps of shape (k, B, D).

    An upper bound on -log p(x) that tightens with k; k=1 is the one-sample negative ELBO. The k
    decoder passes run one after another, so memory does not grow with k.
    """

    def log_weight(eps_k):
        nll, kl = elbo_terms(model, params, images, eps_k, analytic_kl=False, labels=labels)
        return -(nll + kl)

    log_weights = jax.lax.map(log_weight, eps)
    return -(jax.nn.logsumexp(log_weights, axis=0) - math.log(eps.shape[0]))


def kl_weight(step: jax.Array, beta: float, warmup_steps: int) -> jax.Array:
    """beta * min(1, step / warmup_steps), or beta without warm-up."""
    if warmup_steps == 0:
        return jnp.asarray(beta, jnp.float32)
    return beta * jnp.minimum(1.0, step.astype(jnp.float32) / warmup_steps)


def _validate(config: ml_collections.ConfigDict) -> None:
    if config.beta < 0:
        raise UserError(f"beta={config.beta} must be >= 0; set --config.beta")
    if config.kl_warmup_steps < 0:
        raise UserError("kl_warmup_steps must be >= 0 (0 disables the warm-up)")


@register_task("vae")
class VAETask:
    """Convolutional VAE trained on the negative ELBO (optionally beta-weighted and warmed up)."""

    def __init__(self, config: ml_collections.ConfigDict, data_info: DatasetInfo):
        _validate(config)
        self.num_classes = conditional_classes(
            config.model.conditioning, VAE_CONDITIONINGS, data_info
        )
        self.description = "a class-conditional VAE" if self.num_classes else "a VAE"
        self.batches_per_step = 1
        self.num_sample_images = config.num_sample_images
        self.batch_size = config.batch_size
        self.beta = config.beta
        self.kl_warmup_steps = config.kl_warmup_steps
        spec = ModelSpec.of_run(config, data_info.channels, num_classes=self.num_classes)
        self.model = get_model(config.model.name, "vae")(config.model, spec)
        self.latent_dim = config.model.latent_dim
        self.image_shape = (config.image_size, config.image_size, data_info.channels)
        self.num_dims = math.prod(self.image_shape)
        self.optimizer = optax.adam(
            config.optimizer.learning_rate, b1=config.optimizer.b1, b2=config.optimizer.b2
        )
        # Grids are square (`cnngen_jax.images.make_grid`): side x side interpolation steps, and
        # an even number of columns for reconstructions so each input sits beside its output.
        self.side = max(2, math.isqrt(config.num_sample_images))
        half_side = max(1, math.isqrt(min(config.num_sample_images // 4, self.batch_size // 2)))
        self.num_pairs = 2 * half_side**2

    def _labels(self, batch: Batch) -> jax.Array | None:
        return batch["label"] if self.num_classes else None

    def init_state(self, key: jax.Array) -> VAEState:
        images = jnp.zeros((1, *self.image_shape))
        labels = jnp.zeros((1,), jnp.int32) if self.num_classes else None
        params = self.model.init(key, images, jnp.zeros((1, self.latent_dim)), labels)["params"]
        return VAEState(
            step=jnp.zeros((), jnp.int32), params=params, opt_state=self.optimizer.init(params)
        )

    def train_step(self, state: VAEState, batch: Batch, key: jax.Array) -> tuple[VAEState, Metrics]:
        images = batch["image"]
        eps = jax.random.normal(key, (images.shape[0], self.latent_dim))
        beta = kl_weight(state.step, self.beta, self.kl_warmup_steps)

        def loss_fn(params):
            nll, kl = elbo_terms(self.model, params, images, eps, labels=self._labels(batch))
            return jnp.mean(nll + beta * kl), (jnp.mean(nll), jnp.mean(kl))

        (loss, (nll, kl)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        updates, opt_state = self.optimizer.update(grads, state.opt_state, state.params)
        new_state = VAEState(
            step=state.step + 1,
            params=optax.apply_updates(state.params, updates),
            opt_state=opt_state,
        )
        nelbo = nll + kl
        metrics = {
            "loss": loss,
            "nelbo": nelbo,
            "bpd": nelbo / (self.num_dims * math.log(2)),
            "reconstruction_nll": nll,
            "kl": kl,
            "beta": beta,
        }
        return new_state, metrics

    def networks(self, state: VAEState) -> dict[str, Any]:
        return {"vae": state.params}

    def _decode_mean(self, params: Any, z: jax.Array, labels: jax.Array | None) -> jax.Array:
        dist = self.model.apply({"params": params}, z, labels, method="decode")
        return likelihood_mean(dist) * 2 - 1

    def images(self, state: VAEState, examples: Batch, key: jax.Array) -> dict[str, jax.Array]:
        params = state.params
        x, labels = examples["image"], self._labels(examples)
        posterior_mean, _ = self.model.apply({"params": params}, x, labels, method="encode")

        def labels_of(rows):
            return None if labels is None else labels[rows]

        pairs = np.arange(self.num_pairs)
        recon = self._decode_mean(params, posterior_mean[pairs], labels_of(pairs))
        reconstructions = jnp.stack([x[pairs], recon], axis=1).reshape(-1, *self.image_shape)

        # Row i interpolates linearly between the posterior means of examples 2i and 2i + 1
        # (a conditional VAE decodes the whole row with the label of example 2i).
        rows = np.arange(2 * self.side) % x.shape[0]
        start, end = posterior_mean[rows[0::2]], posterior_mean[rows[1::2]]
        t = jnp.linspace(0.0, 1.0, self.side)[None, :, None]
        z = (1 - t) * start[:, None] + t * end[:, None]
        row_labels = labels_of(np.repeat(rows[0::2], self.side))
        interpolations = self._decode_mean(params, z.reshape(-1, self.latent_dim), row_labels)
        pictures = {
            "samples": self.generate(state, key, self.num_sample_images),
            "reconstructions": reconstructions,
            "interpolations": interpolations,
        }
        if self.num_classes:
            pictures["class_grid"] = class_grid(
                functools.partial(self._decode_mean, params),
                jax.random.fold_in(key, 1),
                self.num_classes,
                self.num_sample_images,
                self.latent_dim,
            )
        return pictures

    def decode(
        self, state: VAEState, latents: jax.Array, labels: jax.Array | None = None
    ) -> jax.Array:
        """Decoder means of given `latents` in [-1, 1]; a conditional VAE decodes them with
        `labels` (default: every class in turn)."""
        if labels is not None:
            check_labels(labels, self.num_classes, len(latents))
        elif self.num_classes:
            labels = balanced_labels(len(latents), self.num_classes)
        return self._decode_mean(state.params, latents, labels)

    def encode(
        self, state: VAEState, images: jax.Array, labels: jax.Array | None = None
    ) -> jax.Array:
        """Posterior means of `images` in [-1, 1] (and their `labels`, which a conditional VAE
        needs): the latents `decode` maps back to the images, for editing real images."""
        if self.num_classes or labels is not None:
            check_labels(labels, self.num_classes, len(images))
        mean, _ = self.model.apply({"params": state.params}, images, labels, method="encode")
        return mean

    def generate(
        self, state: VAEState, key: jax.Array, num_images: int, labels: jax.Array | None = None
    ) -> jax.Array:
        """Decoder means of latents drawn from the prior with `key`, in [-1, 1]; a conditional
        VAE decodes them with `labels` (default: every class in turn)."""
        latents = jax.random.normal(key, (num_images, self.latent_dim))
        return self.decode(state, latents, labels)

    def likelihood_bounds(
        self, state: VAEState, batch: Batch, key: jax.Array, iw_samples: int
    ) -> dict[str, jax.Array]:
        """Per image, in nats: the negative ELBO (`nelbo`) and the importance-weighted bound of
        `iw_samples` samples (`nll_iw`), with the noise drawn from `key`."""
        images = batch["image"]
        elbo_key, iw_key = jax.random.split(key)
        eps = jax.random.normal(elbo_key, (images.shape[0], self.latent_dim))
        labels = self._labels(batch)
        nll, kl = elbo_terms(self.model, state.params, images, eps, labels=labels)
        # Drawn in 2-D: XLA:CPU compiles 3-D random draws several times slower.
        iw_eps = jax.random.normal(iw_key, (iw_samples * images.shape[0], self.latent_dim)).reshape(
            iw_samples, images.shape[0], self.latent_dim
        )
        nll_iw = importance_weighted_nll(self.model, state.params, images, iw_eps, labels)
        return {"nelbo": nll + kl, "nll_iw": nll_iw}
