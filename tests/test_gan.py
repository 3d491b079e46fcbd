"""The GAN objective, its train step, and the step's independence from the device count."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow_datasets as tfds

from cnngen_jax import data, parallel, train
from cnngen_jax.tasks import create_task
from cnngen_jax.tasks.gan import discriminator_loss, generator_loss
from tests.conftest import tiny_config


def bce_reference(probabilities: np.ndarray, target: float) -> float:
    p = np.asarray(probabilities, np.float64)
    return float(np.mean(-(target * np.log(p) + (1 - target) * np.log1p(-p))))


def test_losses_equal_binary_cross_entropy_on_sigmoid():
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=64) * 3, rng.normal(size=64) * 3
    sigmoid = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    want_d = bce_reference(sigmoid(real), 1.0) + bce_reference(sigmoid(fake), 0.0)
    np.testing.assert_allclose(
        discriminator_loss(jnp.array(real), jnp.array(fake)), want_d, rtol=1e-6
    )
    np.testing.assert_allclose(
        generator_loss(jnp.array(fake)), bce_reference(sigmoid(fake), 1.0), rtol=1e-6
    )
    # Stable where a sigmoid-then-log would overflow.
    assert np.isfinite(discriminator_loss(jnp.array([200.0]), jnp.array([-200.0])))
    np.testing.assert_allclose(generator_loss(jnp.array([-200.0])), 200.0, rtol=1e-6)


@pytest.fixture(scope="module")
def task_and_batches(data_dir):
    config = tiny_config(data_dir)
    source = data.open_source("digits", "train", data_dir)
    task = create_task(config, data.dataset_info("digits", source))
    iterator = data.pipeline.train_iterator(
        source, data.get_spec("digits"), image_size=16, global_batch_size=16, rows=slice(0, 16),
        seed=0, num_threads=1, prefetch=1,
    )  # fmt: skip
    return task, [next(iterator) for _ in range(3)]


def test_discriminator_step_lowers_its_loss_on_a_fixed_batch(task_and_batches):
    task, batches = task_and_batches
    state = task.init_state()
    real = jnp.asarray(batches[0]["image"])
    fake = task.images(state, {})["samples"]  # fixed generator output, unchanged by the D step

    def d_loss(s):
        real_logits, stats = task._discriminate(s.d_params, s.d_batch_stats, real)
        fake_logits, _ = task._discriminate(s.d_params, stats, fake)
        return float(discriminator_loss(real_logits, fake_logits))

    before = d_loss(state)
    after = d_loss(jax.jit(task.train_step)(state, {"image": real})[0])
    assert after < before - 1e-3, (before, after)


def run_steps(task, batches, devices):
    mesh = parallel.make_mesh(devices)
    replicated = parallel.replicated(mesh)
    state = jax.jit(task.init_state, out_shardings=replicated)()
    step = jax.jit(
        task.train_step,
        in_shardings=(replicated, parallel.batch_sharded(mesh)),
        out_shardings=(replicated, replicated),
        donate_argnums=0,
    )
    history = []
    for batch in batches:
        state, metrics = step(state, parallel.global_batch(batch, mesh, 16))
        history.append(parallel.to_host(metrics))
    return parallel.to_host(state), history


def test_one_device_and_eight_devices_take_the_same_steps(task_and_batches):
    task, batches = task_and_batches
    assert len(jax.devices()) == 8
    state_1, metrics_1 = run_steps(task, batches, jax.devices()[:1])
    state_8, metrics_8 = run_steps(task, batches, jax.devices())
    for m1, m8 in zip(metrics_1, metrics_8, strict=True):
        for key in m1:
            np.testing.assert_allclose(m1[key], m8[key], rtol=1e-5, err_msg=key)
    for a, b in zip(jax.tree.leaves(state_1), jax.tree.leaves(state_8), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_train_step_is_a_pure_function_of_state_and_batch(task_and_batches):
    task, batches = task_and_batches
    state = task.init_state()
    step = jax.jit(task.train_step)
    first = parallel.to_host(step(state, batches[0])[1])
    again = parallel.to_host(step(state, batches[0])[1])
    assert first == again


def test_trainer_runs_on_a_mocked_catalog_dataset(tmp_path, cache_dir):
    config = tiny_config(str(tmp_path / "tfds"), cache_dir, dataset="cifar10", num_train_steps=2)
    with tfds.testing.mock_data(num_examples=40, policy=tfds.testing.MockPolicy.USE_CODE):
        scalars = train.train_and_evaluate(config, str(tmp_path / "run"))
    assert scalars and all(np.isfinite(v) for v in scalars.values())
    assert (tmp_path / "run" / "samples" / "samples_0000002.png").exists()


def test_bfloat16_compute_keeps_float32_state_and_stays_finite(data_dir, task_and_batches):
    _, batches = task_and_batches
    config = tiny_config(data_dir, compute_dtype="bfloat16")
    task = create_task(config, data.dataset_info("digits", batches))
    state = task.init_state()
    step = jax.jit(task.train_step)
    for batch in batches * 2:
        state, metrics = step(state, batch)
        assert all(np.isfinite(float(v)) for v in metrics.values())
    for leaf in jax.tree.leaves(state):
        assert leaf.dtype in (jnp.float32, jnp.int32), leaf.dtype
    assert task.images(state, {})["samples"].dtype == jnp.float32


def test_moving_average_generator_follows_its_recursion(data_dir, task_and_batches):
    _, batches = task_and_batches
    decay = 0.5
    task = create_task(tiny_config(data_dir, ema_decay=decay), data.dataset_info("digits", batches))
    state = task.init_state()
    expected = state.g_params
    step = jax.jit(task.train_step)
    for batch in batches:
        state, _ = step(state, batch)
        expected = jax.tree.map(lambda e, p: decay * e + (1 - decay) * p, expected, state.g_params)
    for want, got in zip(
        jax.tree.leaves(expected), jax.tree.leaves(state.g_ema_params), strict=True
    ):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    assert not np.allclose(
        jax.tree.leaves(state.g_ema_params)[0], jax.tree.leaves(state.g_params)[0]
    )


def test_without_moving_average_samples_come_from_the_current_weights(task_and_batches):
    task, batches = task_and_batches  # tiny config: ema_decay 0
    state, _ = jax.jit(task.train_step)(task.init_state(), batches[0])
    for a, b in zip(
        jax.tree.leaves(state.g_ema_params), jax.tree.leaves(state.g_params), strict=True
    ):
        np.testing.assert_array_equal(a, b)
