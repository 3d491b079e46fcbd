"""The VAE objective against independent references, its bounds, shapes, and whole runs."""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special, stats

from cnngen_jax import train
from cnngen_jax.data import DatasetInfo
from cnngen_jax.errors import UserError
from cnngen_jax.tasks import create_task
from cnngen_jax.tasks.vae import (
    bernoulli_log_prob,
    diagonal_gaussian_log_prob,
    elbo_terms,
    gaussian_kl,
    gaussian_log_prob,
    importance_weighted_nll,
    log_likelihood,
)
from tests.conftest import (
    KEY,
    evaluator_of,
    init_state,
    one_device,
    read_metrics,
    run_main,
    tiny_config,
    tiny_flags,
)

DIGITS = DatasetInfo("digits", 1, 10)


def vae_tiny_config(data_dir: str = "", cache_dir: str = "", **overrides):
    return tiny_config(data_dir, cache_dir, family="vae", **overrides)


def vae_flags(data_dir: str, cache_dir: str, **overrides) -> list[str]:
    return tiny_flags(data_dir, cache_dir, family="vae", **overrides)


def normal(seed: int, *shape: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape, np.float32)


def random_images(seed: int, n: int, size: int = 16) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (n, size, size, 1)).astype(np.float32)


# --- closed forms against independent references ---------------------------------------------


@pytest.mark.parametrize("shift", [0.0, 1.5])
def test_analytic_kl_matches_monte_carlo(shift):
    rng = np.random.default_rng(0)
    mean = rng.normal(size=6) + shift
    log_var = rng.normal(size=6)
    std = np.exp(0.5 * log_var)
    z = mean + std * rng.normal(size=(200_000, 6))
    log_ratio = np.sum(stats.norm.logpdf(z, mean, std) - stats.norm.logpdf(z), axis=1)
    estimate, standard_error = log_ratio.mean(), log_ratio.std() / math.sqrt(len(log_ratio))
    kl = float(gaussian_kl(jnp.asarray(mean, jnp.float32), jnp.asarray(log_var, jnp.float32)))
    assert abs(kl - estimate) < 4 * standard_error + 1e-5 * abs(estimate), (kl, estimate)


def test_log_likelihoods_match_scipy_in_float64():
    rng = np.random.default_rng(1)
    shape = (2, 4, 4, 3)
    logits = rng.uniform(-8, 8, shape)
    u = rng.uniform(0, 1, shape)
    u.flat[:4] = [0.0, 1.0, 0.0, 1.0]  # binary pixels: the ordinary Bernoulli pmf
    mean = rng.uniform(-0.2, 1.2, shape)
    log_scale = rng.uniform(-3, 1, 3)
    z, z_mean, z_log_var = rng.normal(size=(3, 5, 7))

    p = special.expit(logits)
    want_bernoulli = u * np.log(p) + (1 - u) * np.log1p(-p)
    binary = np.isin(u, (0.0, 1.0))
    np.testing.assert_allclose(
        want_bernoulli[binary], stats.bernoulli.logpmf(u[binary], p[binary]), rtol=1e-12
    )
    want_gaussian = stats.norm.logpdf(u, mean, np.exp(log_scale))
    want_posterior = np.sum(stats.norm.logpdf(z, z_mean, np.exp(0.5 * z_log_var)), axis=-1)

    with jax.enable_x64(True):
        got_bernoulli = bernoulli_log_prob(jnp.asarray(logits), jnp.asarray(u))
        got_gaussian = gaussian_log_prob(jnp.asarray(mean), jnp.asarray(log_scale), jnp.asarray(u))
        per_image = log_likelihood({"logits": jnp.asarray(logits)}, jnp.asarray(u))
        got_posterior = diagonal_gaussian_log_prob(*map(jnp.asarray, (z, z_mean, z_log_var)))
        assert got_bernoulli.dtype == jnp.float64
    np.testing.assert_allclose(got_bernoulli, want_bernoulli, rtol=1e-12)
    np.testing.assert_allclose(got_gaussian, want_gaussian, rtol=1e-12)
    np.testing.assert_allclose(per_image, want_bernoulli.sum(axis=(1, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(got_posterior, want_posterior, rtol=1e-12)
    # Logits far in the tails stay finite (no sigmoid-then-log).
    far = bernoulli_log_prob(jnp.array([300.0, -300.0]), jnp.array([0.0, 1.0]))
    np.testing.assert_allclose(far, [-300.0, -300.0], rtol=1e-6)


# --- the importance-weighted bound on a model whose likelihood is known exactly --------------


class LinearGaussian(nn.Module):
    """u = W z + b + noise with orthogonal columns in W: the exact posterior is diagonal.

    `posterior_error` scales the encoder's mean and variance away from the exact posterior.
    Unconditional: the labels every VAE's encode and decode take are None.
    """

    w: np.ndarray
    b: np.ndarray
    noise_std: float
    posterior_error: float

    def encode(self, x, labels=None):
        u = (x.reshape(x.shape[0], -1) + 1) / 2
        precision = 1 + np.sum(self.w**2, axis=0) / self.noise_std**2
        mean = (u - self.b) @ self.w / self.noise_std**2 / precision
        log_var = -jnp.log(precision) * jnp.ones_like(mean)
        return mean * (1 + self.posterior_error), log_var + 2 * self.posterior_error

    def decode(self, z, labels=None):
        mean = (z @ self.w.T + self.b).reshape(z.shape[0], 4, 4, 1)
        return {"mean": mean, "log_scale": jnp.full((1,), math.log(self.noise_std))}


def linear_gaussian(posterior_error: float):
    rng = np.random.default_rng(2)
    w = np.linalg.qr(rng.normal(size=(16, 2)))[0] * np.array([0.4, 0.2])
    b = rng.uniform(0.2, 0.8, 16)
    model = LinearGaussian(w.astype(np.float32), b.astype(np.float32), 0.1, posterior_error)
    u = b + rng.normal(size=(32, 2)) @ w.T + 0.1 * rng.normal(size=(32, 16))
    cov = w @ w.T + 0.01 * np.eye(16)
    exact_nll = -stats.multivariate_normal.logpdf(u, b, cov).mean()
    return model, jnp.asarray((2 * u - 1).reshape(32, 4, 4, 1), jnp.float32), exact_nll


def mean_iw_nll(model, images, k: int, seeds: int) -> float:
    eps = normal(3, seeds, k, len(images), 2)
    bound = jax.vmap(lambda e: importance_weighted_nll(model, {}, images, e))
    return float(jnp.mean(jax.jit(bound)(eps)))


def test_importance_weighted_bound_is_exact_with_the_exact_posterior():
    model, images, exact_nll = linear_gaussian(posterior_error=0.0)
    for k in (1, 8):
        assert mean_iw_nll(model, images, k, seeds=2) == pytest.approx(exact_nll, abs=2e-3)


def test_importance_weighted_bound_tightens_towards_the_exact_nll():
    model, images, exact_nll = linear_gaussian(posterior_error=0.5)
    bounds = [mean_iw_nll(model, images, k, seeds=8) for k in (1, 16, 256)]
    assert bounds[0] > bounds[1] > bounds[2] > exact_nll - 1e-2, (bounds, exact_nll)
    assert bounds[0] - exact_nll > 1.0  # the wrong posterior does cost something at k=1
    assert bounds[2] - exact_nll < 0.2 * (bounds[0] - exact_nll)


# --- the conv VAE -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def task():
    return create_task(vae_tiny_config(), DIGITS)


@pytest.fixture(scope="module")
def state(task):
    return init_state(task)


def test_k1_bound_is_the_one_sample_elbo_and_more_samples_never_loosen_it(task, state):
    params = state.params
    images = random_images(4, 16)
    bound = jax.jit(lambda eps: importance_weighted_nll(task.model, params, images, eps))

    # k=1 is the one-sample ELBO at the same z (equal up to float32 rounding: the bound's decoder
    # runs inside a loop, which XLA may fuse differently).
    eps = normal(5, 1, 16, task.latent_dim)
    nll, sampled_kl = jax.jit(
        lambda e: elbo_terms(task.model, params, images, e, analytic_kl=False)
    )(eps[0])
    np.testing.assert_allclose(bound(eps), nll + sampled_kl, rtol=1e-6)
    # More samples never loosen the bound in expectation (here: 6 draws of 16 images).
    eps = normal(7, 16, 6 * 16, task.latent_dim)
    images = jnp.tile(images, (6, 1, 1, 1))
    bound = jax.jit(lambda eps: importance_weighted_nll(task.model, params, images, eps))
    iw_16, iw_1 = float(jnp.mean(bound(eps))), float(jnp.mean(bound(eps[:1])))
    assert iw_16 <= iw_1 + 1e-3, (iw_16, iw_1)


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", [16, 32, 64])
def test_shapes(size, channels, likelihood):
    config = vae_tiny_config(image_size=size, **{"model.likelihood": likelihood})
    task = create_task(config, DatasetInfo("x", channels, None))
    state = jax.eval_shape(task.init_state, KEY)
    examples = {"image": jax.ShapeDtypeStruct((16, size, size, channels), jnp.float32)}
    pictures = jax.eval_shape(task.images, state, examples, KEY)
    assert {k: v.shape for k, v in pictures.items()} == {
        "samples": (16, size, size, channels),
        "reconstructions": (16, size, size, channels),  # 8 pairs in a 4-column grid
        "interpolations": (16, size, size, channels),  # 4 rows of 4 steps
    }
    _, metrics = jax.eval_shape(task.train_step, state, examples, KEY)
    assert all(m.shape == () for m in metrics.values())
    assert ("log_scale" in state.params) == (likelihood == "gaussian")


def test_bfloat16_compute_keeps_parameters_and_losses_float32():
    task = create_task(vae_tiny_config(compute_dtype="bfloat16"), DIGITS)
    state = jax.eval_shape(task.init_state, KEY)
    examples = {"image": jax.ShapeDtypeStruct((16, 16, 16, 1), jnp.float32)}
    new_state, metrics = jax.eval_shape(task.train_step, state, examples, KEY)
    leaves = jax.tree.leaves(new_state.params) + list(metrics.values())
    assert {leaf.dtype for leaf in leaves} == {jnp.dtype(jnp.float32)}
    pictures = jax.eval_shape(task.images, state, examples, KEY)
    assert {p.dtype for p in pictures.values()} == {jnp.dtype(jnp.float32)}


def test_pictures_pair_inputs_with_reconstructions_in_range(task, state):
    images = random_images(8, 16)
    examples = {"image": images}
    pictures = jax.jit(task.images)(state, examples, KEY)
    np.testing.assert_array_equal(pictures["reconstructions"][0::2], examples["image"][:8])
    for batch in pictures.values():
        assert float(jnp.min(batch)) >= -1 and float(jnp.max(batch)) <= 1


def test_evaluation_counts_real_examples_only_and_is_deterministic(task, state):
    images = random_images(9, 32).reshape(2, 16, 16, 16, 1)
    mask = np.ones((2, 16), np.float32)
    mask[1, 10:] = 0
    batches = [{"image": images[i], "mask": mask[i]} for i in range(2)]
    evaluate = evaluator_of(vae_tiny_config(), task, "elbo")
    result = evaluate(state, lambda: iter(batches), KEY)
    padding = images[1].copy()
    padding[10:] = images[0, 10:]
    batches[1] = {"image": padding, "mask": mask[1]}
    assert evaluate(state, lambda: iter(batches), KEY) == result
    # Undoing the masked mean by hand: 26 real images, one eps per (batch, row).
    sums = [evaluate._sums(state, b, jax.random.fold_in(KEY, i)) for i, b in enumerate(batches)]
    np.testing.assert_allclose(
        result["test_nelbo"], sum(float(s["nelbo"]) for s in sums) / 26, rtol=1e-6
    )
    assert sum(float(s["count"]) for s in sums) == 26
    assert result["test_nll_iw"] < result["test_nelbo"] + 1.0


def test_user_errors_name_the_setting():
    with pytest.raises(UserError, match="image_size"):
        create_task(vae_tiny_config(image_size=24), DIGITS)
    with pytest.raises(UserError, match="model.likelihood"):
        create_task(vae_tiny_config(**{"model.likelihood": "poisson"}), DIGITS)


def test_training_improves_the_test_elbo(tmp_path, data_dir, cache_dir):
    config = vae_tiny_config(
        data_dir,
        cache_dir,
        num_train_steps=40,
        **{"evals.elbo.every_steps": 10},
        sample_every_steps=40,
        checkpoint_every_steps=40,
        log_every_steps=10,
    )
    with one_device():
        scalars = train.train_and_evaluate(config, str(tmp_path))
    assert scalars["loss"] == pytest.approx(scalars["nelbo"])  # beta = 1 without warm-up
    evals = [m for m in read_metrics(tmp_path) if "test_nelbo" in m]
    assert [m["step"] for m in evals] == [0, 10, 20, 30, 40]  # 0: before training
    first, last = evals[0], evals[-1]
    assert last["test_nelbo"] < first["test_nelbo"] - 10, (first, last)
    for m in evals:
        assert m["test_nll_iw"] <= m["test_nelbo"] + 0.5
        assert m["test_bpd"] == pytest.approx(m["test_nelbo"] / (16 * 16 * math.log(2)))


@pytest.mark.e2e
def test_config_runs_end_to_end_through_main(tmp_path, data_dir, cache_dir):
    flags = vae_flags(data_dir, cache_dir, num_train_steps=3, kl_warmup_steps=2)
    result = run_main(["--config=configs/vae.py", f"--workdir={tmp_path}", *flags])
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = read_metrics(tmp_path)
    assert [m["beta"] for m in metrics if "beta" in m] == [0.0, 0.5, 1.0]  # the KL warm-up
    evals = [m for m in metrics if "test_nelbo" in m]
    assert [m["step"] for m in evals] == [0, 2, 3]
    assert all(np.isfinite(m["test_nelbo"]) and np.isfinite(m["test_nll_iw"]) for m in evals)
    for kind in ("samples", "reconstructions", "interpolations"):
        assert (tmp_path / "samples" / f"{kind}_0000003.png").exists(), kind
