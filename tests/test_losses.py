"""GAN objectives against float64 NumPy versions of their formulas; the penalties against their
analytic values and analytic parameter gradients (the double backward a penalty needs)."""

import zlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cnngen_jax import losses
from cnngen_jax.errors import UserError


def log_sigmoid(x):
    return -np.logaddexp(0.0, -x)


# Each formula as the papers write it, on float64 logits.
REFERENCE = {
    "ns": (
        lambda r, f: -np.mean(log_sigmoid(r)) - np.mean(log_sigmoid(-f)),
        lambda f: -np.mean(log_sigmoid(f)),
    ),
    "minimax": (
        lambda r, f: -np.mean(log_sigmoid(r)) - np.mean(log_sigmoid(-f)),
        lambda f: np.mean(np.log1p(-1 / (1 + np.exp(-f)))),
    ),
    "hinge": (
        lambda r, f: np.mean(np.maximum(0, 1 - r)) + np.mean(np.maximum(0, 1 + f)),
        lambda f: -np.mean(f),
    ),
    "wasserstein": (lambda r, f: np.mean(f) - np.mean(r), lambda f: -np.mean(f)),
    "ls": (
        lambda r, f: 0.5 * np.mean((r - 1) ** 2) + 0.5 * np.mean(f**2),
        lambda f: 0.5 * np.mean((f - 1) ** 2),
    ),
}


@pytest.mark.parametrize("name", list(losses.OBJECTIVES))
def test_objective_matches_its_formula_in_float64(name):
    assert set(REFERENCE) == set(losses.OBJECTIVES)
    # A seed per objective that is the same in every process (str hashes are salted per
    # process, which made the inputs, and a near-zero mean, differ from run to run).
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    real, fake = rng.normal(size=64) * 3, rng.normal(size=64) * 3
    objective, (d_want, g_want) = losses.get_objective(name), REFERENCE[name]
    got_d = objective.discriminator(jnp.asarray(real, jnp.float32), jnp.asarray(fake, jnp.float32))
    # atol: the float32 rounding of logits of size ~3, for means that land near 0.
    np.testing.assert_allclose(got_d, d_want(real, fake), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        objective.generator(jnp.asarray(fake, jnp.float32)), g_want(fake), rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("name", list(losses.OBJECTIVES))
def test_objective_and_its_gradients_stay_finite_at_extreme_logits(name):
    objective = losses.get_objective(name)
    extreme = jnp.array([-200.0, 200.0])
    d_grads = jax.grad(objective.discriminator, argnums=(0, 1))(extreme, extreme)
    g_grad = jax.grad(objective.generator)(extreme)
    for value in (*d_grads, g_grad, objective.discriminator(extreme, extreme)):
        assert np.all(np.isfinite(value))
    if name == "ns":  # -log sigmoid(-200) = 200, where a sigmoid-then-log gives inf
        np.testing.assert_allclose(objective.generator(jnp.array([-200.0])), 200.0, rtol=1e-6)


def test_unknown_objective_names_the_setting_and_the_choices():
    with pytest.raises(UserError, match=r"config\.loss.*ns, minimax, hinge, wasserstein, ls"):
        losses.get_objective("relativistic")


def quadratic_critic(w):
    """D_w(x) = sum(w * x^2): grad_x D = 2 w x, so both penalties have closed forms."""
    return lambda x: jnp.sum(w * jnp.square(x), axis=(1, 2, 3))


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    shape = (6, 4, 4, 2)
    real, fake = (rng.normal(size=shape).astype(np.float32) for _ in range(2))
    w = rng.uniform(0.2, 1.0, size=shape[1:]).astype(np.float32)
    return real, fake, w


def test_gradient_penalty_and_its_parameter_gradient_are_analytic(batch):
    real, fake, w = batch
    key = jax.random.key(3)
    # The interpolation weights the penalty draws, one per example.
    t = np.asarray(jax.random.uniform(key, (6, 1, 1, 1)), np.float64)
    x_hat = t * real + (1 - t) * fake
    norms = np.sqrt(np.sum((2 * w * x_hat) ** 2, axis=(1, 2, 3)))
    want = np.mean((norms - 1) ** 2)
    # d/dw mean((n_i - 1)^2) with n_i = |2 w x_i|: mean(2 (n_i - 1) * 4 w x_i^2 / n_i).
    want_grad = np.mean((2 * (norms - 1) / norms)[:, None, None, None] * 4 * w * x_hat**2, axis=0)

    def penalty(w):
        return losses.gradient_penalty(
            quadratic_critic(w), jnp.asarray(real), jnp.asarray(fake), key
        )

    value, grad = jax.value_and_grad(penalty)(jnp.asarray(w))
    np.testing.assert_allclose(value, want, rtol=1e-5)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-4, atol=1e-6)


def test_gradient_penalty_is_two_sided_and_zero_for_unit_gradients():
    real, fake = jnp.ones((3, 2, 2, 1)), jnp.zeros((3, 2, 2, 1))
    unit = lambda x: jnp.sum(x, axis=(1, 2, 3)) / 2.0  # noqa: E731  |grad| = sqrt(4) / 2 = 1
    assert float(losses.gradient_penalty(unit, real, fake, jax.random.key(0))) < 1e-10
    small = lambda x: jnp.sum(x, axis=(1, 2, 3)) / 4.0  # noqa: E731  |grad| = 1/2: penalised
    np.testing.assert_allclose(
        losses.gradient_penalty(small, real, fake, jax.random.key(0)), 0.25, rtol=1e-5
    )


def test_r1_penalty_and_its_parameter_gradient_are_analytic(batch):
    real, _, w = batch
    want = np.mean(np.sum((2 * w * real) ** 2, axis=(1, 2, 3)))
    want_grad = np.mean(8 * w * real**2, axis=0)
    value, grad = jax.value_and_grad(
        lambda w: losses.r1_penalty(quadratic_critic(w), jnp.asarray(real))
    )(jnp.asarray(w))
    np.testing.assert_allclose(value, want, rtol=1e-5)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-5)
