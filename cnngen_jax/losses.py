"""GAN objectives and regularisers, selected by `config.loss` and the penalty weights.

An objective is a pair of pure functions of the discriminator's raw outputs ("logits"): the
discriminator's loss of (real, fake) and the generator's loss of fake, each a batch mean. The
regularisers are functions of the discriminator as a function `critic(images) -> logits`, so
they combine with any objective and any architecture.
"""

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from cnngen_jax.errors import UserError

Critic = Callable[[jax.Array], jax.Array]


class Objective(NamedTuple):
    discriminator: Callable[[jax.Array, jax.Array], jax.Array]  # (real, fake) -> loss
    generator: Callable[[jax.Array], jax.Array]  # fake -> loss
    sigmoid_outputs: bool  # the logits are those of a probability D(x) = sigmoid(logit)


def _ns_discriminator(real: jax.Array, fake: jax.Array) -> jax.Array:
    """BCE(D(x), 1) + BCE(D(G(z)), 0) from logits: -log sigmoid(r) - log(1 - sigmoid(f))."""
    return jnp.mean(jax.nn.softplus(-real)) + jnp.mean(jax.nn.softplus(fake))


def _ns_generator(fake: jax.Array) -> jax.Array:
    """Non-saturating (Goodfellow et al. 2014, sec. 3): -log D(G(z))."""
    return jnp.mean(jax.nn.softplus(-fake))


def _minimax_generator(fake: jax.Array) -> jax.Array:
    """The original saturating objective: log(1 - D(G(z))) = -softplus(f), minimised."""
    return -jnp.mean(jax.nn.softplus(fake))


def _hinge_discriminator(real: jax.Array, fake: jax.Array) -> jax.Array:
    """Lim & Ye 2017 / Miyato et al. 2018: max(0, 1 - D(x)) + max(0, 1 + D(G(z)))."""
    return jnp.mean(jax.nn.relu(1.0 - real)) + jnp.mean(jax.nn.relu(1.0 + fake))


def _wasserstein_discriminator(real: jax.Array, fake: jax.Array) -> jax.Array:
    """Arjovsky et al. 2017: the critic maximises D(x) - D(G(z))."""
    return jnp.mean(fake) - jnp.mean(real)


def _negative_mean(fake: jax.Array) -> jax.Array:
    """-D(G(z)): the generator loss of both the hinge and the Wasserstein objectives."""
    return -jnp.mean(fake)


def _ls_discriminator(real: jax.Array, fake: jax.Array) -> jax.Array:
    """Least squares (Mao et al. 2017, a=0, b=c=1): 1/2 (D(x) - 1)^2 + 1/2 D(G(z))^2."""
    return 0.5 * jnp.mean(jnp.square(real - 1.0)) + 0.5 * jnp.mean(jnp.square(fake))


def _ls_generator(fake: jax.Array) -> jax.Array:
    return 0.5 * jnp.mean(jnp.square(fake - 1.0))


OBJECTIVES = {
    "ns": Objective(_ns_discriminator, _ns_generator, True),
    "minimax": Objective(_ns_discriminator, _minimax_generator, True),
    "hinge": Objective(_hinge_discriminator, _negative_mean, False),
    "wasserstein": Objective(_wasserstein_discriminator, _negative_mean, False),
    "ls": Objective(_ls_discriminator, _ls_generator, False),
}


def get_objective(name: str) -> Objective:
    if name not in OBJECTIVES:
        raise UserError(
            f"unknown loss {name!r} (config.loss); choose one of: {', '.join(OBJECTIVES)}"
        )
    return OBJECTIVES[name]


def _input_gradients(critic: Critic, images: jax.Array) -> jax.Array:
    """d critic(x_i) / d x_i for each example, flattened to (B, H*W*C)."""
    grads = jax.grad(lambda x: jnp.sum(critic(x)))(images)
    return grads.reshape(grads.shape[0], -1)


def gradient_penalty(critic: Critic, real: jax.Array, fake: jax.Array, key: jax.Array) -> jax.Array:
    """WGAN-GP (Gulrajani et al. 2017): E[(||grad D(x_hat)||_2 - 1)^2] at x_hat = t x + (1 - t)
    G(z), one t ~ U(0, 1) per example; two-sided. The caller multiplies by its weight (10)."""
    t = jax.random.uniform(key, (real.shape[0],) + (1,) * (real.ndim - 1), real.dtype)
    interpolates = t * real + (1.0 - t) * jax.lax.stop_gradient(fake)
    grads = _input_gradients(critic, interpolates)
    # The epsilon keeps the norm's gradient finite where a gradient vanishes exactly.
    norms = jnp.sqrt(jnp.sum(jnp.square(grads), axis=-1) + 1e-12)
    return jnp.mean(jnp.square(norms - 1.0))


def r1_penalty(critic: Critic, real: jax.Array) -> jax.Array:
    """R1 (Mescheder et al. 2018): E[||grad D(x)||^2] on real data. The paper's term is
    gamma / 2 times this; the caller applies that weight."""
    return jnp.mean(jnp.sum(jnp.square(_input_gradients(critic, real)), axis=-1))
