"""The GAN task: its two step paths, n_critic, spectral-norm state, schedules, EMA, dtypes,
and the clear errors of its settings. (Shared behaviour of every family is in test_contract.)"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cnngen_jax import data, optim, parallel, train
from cnngen_jax.data import DatasetInfo
from cnngen_jax.errors import UserError
from cnngen_jax.models.spectral_norm import COLLECTION as SPECTRAL
from cnngen_jax.tasks import create_task
from tests.conftest import KEY, init_state, tiny_config

DIGITS = DatasetInfo("digits", 1, 10)


def images(seed: int, *shape: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (*shape, 16, 16, 1)).astype(np.float32)


def assert_trees_close(a, b, rtol=1e-5, atol=1e-6):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(x, y, rtol=rtol, atol=atol)


@pytest.mark.parametrize("loss", ["ns", "minimax", "hinge", "wasserstein", "ls"])
def test_discriminator_update_lowers_its_objective_on_fixed_batches(loss):
    task = create_task(tiny_config(loss=loss), DIGITS)
    state = init_state(task)
    real = jnp.asarray(images(0, 16))
    fake = task.generate(state, KEY, 16)

    def objective(d):
        (real_logits, _), collections = task._discriminate(d, real, None)
        (fake_logits, _), _ = task._discriminate(d.replace(collections=collections), fake, None)
        return float(task.objective.discriminator(real_logits, fake_logits))

    update = jax.jit(task._discriminator_update)
    updated, _ = update(state.discriminator, real, None, fake, None, KEY)
    assert objective(updated) < objective(state.discriminator) - 1e-4


# The unconditional path with each penalty, and the conditional one with ACGAN's class losses.
SETTINGS = [{"model.conditioning": "acgan"}, {"gp_weight": 10.0}, {"r1_weight": 1.0}]


@pytest.mark.parametrize("settings", SETTINGS)
def test_fused_path_equals_the_critic_scan_with_one_update(settings):
    task = create_task(tiny_config(**settings), DIGITS)
    state = init_state(task)
    real = jnp.asarray(images(1, 16))
    z = jax.random.normal(jax.random.key(2), (16, task.models.latent_dim))
    labels = jnp.arange(16) % 10 if task.num_classes else None
    fake_labels = None if labels is None else labels[::-1]
    fused, fused_metrics = jax.jit(task.fused_step)(state, real, labels, z, fake_labels, KEY)
    scanned, scan_metrics = jax.jit(task.critic_steps)(
        state,
        real[None],
        None if labels is None else labels[None],
        z[None],
        None if labels is None else fake_labels[None],
        z,
        fake_labels,
        KEY[None],
    )
    assert_trees_close(fused, scanned)
    assert fused_metrics.keys() == scan_metrics.keys()
    for name in fused_metrics:
        np.testing.assert_allclose(fused_metrics[name], scan_metrics[name], rtol=1e-5, err_msg=name)


def test_critic_scan_is_the_updates_one_after_another():
    task = create_task(tiny_config(n_critic=3, loss="wasserstein", gp_weight=10.0), DIGITS)
    state = init_state(task)
    reals = jnp.asarray(images(3, 3, 16))
    latents = jax.random.normal(jax.random.key(4), (3, 16, task.models.latent_dim))
    keys = jax.random.split(jax.random.key(5), 3)
    z = latents[0] + 1.0
    scanned, _ = jax.jit(task.critic_steps)(state, reals, None, latents, None, z, None, keys)

    @jax.jit  # one program for the three updates, each called on its own inputs
    def discriminator_update(d, g, real, latents, key):
        fake, _ = task._generate(g, latents, None, keep_statistics=False)
        return task._discriminator_update(d, real, None, fake, None, key)[0]

    @jax.jit
    def generator_update(state, d, z):
        fake, generator_vjp, g_collections = task._generator_forward(state, z, None)
        return task._generator_update(state, d, fake, None, generator_vjp, g_collections)[0]

    d = state.discriminator
    for i in range(3):  # each update on its own real batch and its own fakes
        d = discriminator_update(d, state.generator, reals[i], latents[i], keys[i])
    by_hand = generator_update(state, d, z)
    assert_trees_close(scanned, by_hand, rtol=1e-4, atol=1e-5)


def test_spectral_vectors_change_in_training_only(data_dir):
    task = create_task(tiny_config(data_dir, family="sngan", n_critic=2), DIGITS)
    state = init_state(task)
    u_before = state.discriminator.collections[SPECTRAL]
    batch = {"image": np.stack([images(6, 16).repeat(2, 1).repeat(2, 2)] * task.n_critic)}
    step = jax.jit(train.keyed_train_step(task, 0))
    new_state, _ = step(state, batch)
    assert not np.allclose(
        jax.tree.leaves(new_state.discriminator.collections[SPECTRAL])[0],
        jax.tree.leaves(u_before)[0],
    )
    _, collections = task._discriminate(new_state.discriminator, batch["image"][0], None)
    assert_trees_close(collections[SPECTRAL], new_state.discriminator.collections[SPECTRAL], 0, 0)


def test_linear_schedule_decays_to_zero_once_per_train_step():
    rate = optim.learning_rate(2e-4, "linear", num_train_steps=100, updates_per_step=5)
    np.testing.assert_allclose(
        [rate(0), rate(4), rate(5 * 50), rate(5 * 100)], [2e-4, 2e-4, 1e-4, 0]
    )
    assert float(optim.learning_rate(1e-3, "constant", 100)(10**6)) == pytest.approx(1e-3)


def test_moving_average_generator_follows_its_recursion():
    decay = 0.5
    task = create_task(tiny_config(ema_decay=decay), DIGITS)
    state = init_state(task)
    expected = state.generator.params
    step = jax.jit(train.keyed_train_step(task, 0))
    for seed in range(3):
        state, _ = step(state, {"image": images(seed, 16)})
        expected = jax.tree.map(
            lambda e, p: decay * e + (1 - decay) * p, expected, state.generator.params
        )
    assert_trees_close(state.g_ema_params, expected, rtol=1e-6, atol=1e-7)
    without = create_task(tiny_config(), DIGITS)  # ema_decay 0: the current weights
    plain, _ = jax.jit(train.keyed_train_step(without, 0))(
        init_state(without), {"image": images(0, 16)}
    )
    assert_trees_close(plain.g_ema_params, plain.generator.params, 0, 0)


def test_bfloat16_compute_keeps_float32_state_and_stays_finite():
    config = tiny_config(compute_dtype="bfloat16")
    task = create_task(config, DIGITS)
    size = config.image_size
    state = init_state(task)
    real = np.stack([images(7, 16).repeat(size // 16, 1).repeat(size // 16, 2)] * task.n_critic)
    batch = {"image": real if task.n_critic > 1 else real[0]}
    step = jax.jit(train.keyed_train_step(task, 0))
    for _ in range(2):
        state, metrics = step(state, batch)
        assert all(np.isfinite(float(v)) for v in metrics.values())
    for leaf in jax.tree.leaves(state):
        assert leaf.dtype in (jnp.float32, jnp.int32), leaf.dtype
    assert task.generate(state, KEY, 4).dtype == jnp.float32


BAD_SETTINGS = {
    "unknown loss": ({"loss": "wgan"}, r"config\.loss.*hinge"),
    "no critic update": ({"n_critic": 0}, "n_critic=0 must be >= 1"),
    "negative penalty": ({"gp_weight": -1.0}, "gp_weight=-1.0 must be >= 0"),
    "model of another family": ({"model.name": "conv_vae"}, "'conv_vae'.*vae model.*dcgan"),
    "spectral norm unsupported": ({"model.spectral_norm": True}, "model.name=sndcgan"),
    "unknown schedule": ({"optimizer.schedule": "step"}, "optimizer.schedule.*linear, cosine"),
    "wrong size for the model": ({"model.name": "sngan32"}, "image_size=32"),
}


@pytest.mark.parametrize("case", list(BAD_SETTINGS))
def test_bad_settings_are_user_errors_naming_the_setting(case):
    overrides, message = BAD_SETTINGS[case]
    with pytest.raises(UserError, match=message):
        create_task(tiny_config(**overrides), DIGITS)


def test_stacked_batches_reach_the_critic_updates_and_the_step_is_pure(data_dir):
    task = create_task(tiny_config(n_critic=2, r1_weight=1.0), DIGITS)
    source = data.open_source("digits", "train", data_dir)
    iterator = data.pipeline.train_iterator(
        source, data.get_spec("digits"), image_size=16, global_batch_size=16, rows=slice(0, 16),
        seed=0, num_threads=1, prefetch=1, batches_per_step=2,
    )  # fmt: skip
    batches = [next(iterator) for _ in range(2)]
    assert batches[0]["image"].shape == (2, 16, 16, 16, 1)
    assert not np.array_equal(batches[0]["image"][0], batches[0]["image"][1])
    state = init_state(task)
    step = jax.jit(train.keyed_train_step(task, 0))
    once = parallel.to_host(step(state, batches[0])[1])
    assert parallel.to_host(step(state, batches[0])[1]) == once  # pure in state, batch and key
