"""Several seeds in one compiled step (`config.num_seeds`): each replica is the run of its own
seed on the same batches, and a run of replicas logs, draws, checkpoints and resumes as one."""

import functools
import shutil

import jax
import numpy as np
import pytest

from cnngen_jax import data, inference, replicas, train, transfer
from cnngen_jax.errors import UserError
from cnngen_jax.models.layers import Conv
from cnngen_jax.models.spectral_norm import COLLECTION
from cnngen_jax.tasks import create_task
from tests.conftest import init_state, one_device, read_metrics, run_steps, tiny_config
from tests.test_contract import training_batches

SEED, NUM_SEEDS = 5, 2


# The GAN (BatchNorm statistics in G and D, an EMA generator) and the VAE. Spectral-norm
# vectors are one more variable collection, stepped the same way: checked on their own below.
@pytest.mark.parametrize("family, overrides", [("dcgan", {"ema_decay": 0.9}), ("vae", {})])
def test_each_replica_equals_a_separate_run_of_its_seed(family, overrides, data_dir):
    config = tiny_config(data_dir, family=family, seed=SEED, num_seeds=NUM_SEEDS, **overrides)
    task = create_task(config, data.dataset_info("digits"))
    batches = training_batches(config, data_dir, task, 2)
    stacked = jax.jit(functools.partial(train.fresh_state, task, config))()
    # The replicas on all eight devices (the batch sharded, as the trainer runs them), against
    # the second replica's seed run alone on one device (each separate run compiles a step of
    # its own, so one is checked).
    stacked, stacked_metrics = run_steps(task, stacked, batches, jax.devices(), SEED, NUM_SEEDS)
    seed = replicas.seeds(SEED, NUM_SEEDS)[1]
    alone, metrics = run_steps(task, init_state(task, seed), batches, jax.devices()[:1], seed)
    for step_metrics, step_stacked in zip(metrics, stacked_metrics, strict=True):
        for key, value in step_metrics.items():
            np.testing.assert_allclose(step_stacked[key][1], value, rtol=1e-4, atol=1e-6)
    mine = replicas.replica(stacked, 1)
    for a, b in zip(jax.tree.leaves(mine), jax.tree.leaves(alone), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-3)  # Adam: see test_contract
    # The replicas are different models, not copies of one.
    first, second = (jax.tree.leaves(replicas.replica(stacked, i))[-2] for i in (0, 1))
    assert not np.allclose(first, second)


def test_spectral_norm_vectors_step_per_replica_under_vmap():
    layer = Conv(4, 3, stride=1, padding=1, spectral_norm=True)
    x = jax.random.normal(jax.random.key(0), (2, 5, 5, 3))
    variables = jax.vmap(lambda key: layer.init(key, x))(jax.random.split(jax.random.key(1), 2))

    def power_step(variables):
        return layer.apply(variables, x, mutable=[COLLECTION])[1][COLLECTION]

    stepped = jax.vmap(power_step)(variables)
    for i in range(2):
        alone = power_step(replicas.replica(variables, i))
        for name in ("u", "v"):
            np.testing.assert_allclose(stepped[name][i], alone[name], rtol=1e-5, atol=1e-6)
    assert not np.allclose(stepped["u"][0], stepped["u"][1])


def test_a_run_of_seeds_logs_draws_and_resumes_per_replica(data_dir, cache_dir, tmp_path):
    config = tiny_config(data_dir, cache_dir, num_seeds=2, seed=3, num_train_steps=4)
    config.checkpoint_every_steps = config.sample_every_steps = 2
    with one_device():  # eight devices: above
        train.train_and_evaluate(config, str(tmp_path))
    uninterrupted = read_metrics(tmp_path)
    line = uninterrupted[-1]
    losses = [line["g_loss/seed_3"], line["g_loss/seed_4"]]
    assert line["g_loss"] == pytest.approx(np.mean(losses))
    assert line["g_loss/std"] == pytest.approx(np.std(losses))
    assert sorted(p.name for p in (tmp_path / "samples").glob("*_0000004.png")) == [
        "samples_seed3_0000004.png",
        "samples_seed4_0000004.png",
    ]

    (tmp_path / "checkpoints" / "4").rename(tmp_path / "step4")  # as if stopped after step 2
    with one_device():
        train.train_and_evaluate(config, str(tmp_path))
    assert read_metrics(tmp_path) == uninterrupted

    # Each replica loads as a run of its own, by seed.
    loaded = [inference.load_run(str(tmp_path), seed=seed) for seed in (3, 4)]
    assert all(run.step == 4 for run in loaded)
    kernels = [jax.tree.leaves(run.task.networks(run.state))[0] for run in loaded]
    assert kernels[0].shape == kernels[1].shape and not np.allclose(*kernels)
    with pytest.raises(UserError, match="seed 5 is not one of the run's seeds"):
        inference.load_run(str(tmp_path), seed=5)


def test_init_from_a_one_seed_run_starts_every_replica_from_it(data_dir, cache_dir, tiny_runs):
    source = tiny_runs["dcgan"]
    with one_device():
        run = train.build_run(tiny_config(data_dir, cache_dir, num_seeds=2))
        grown, moved = transfer.transplant(train.initial_state(run), source, False, 2)
    assert moved.restored and all("opt_state" in name for name in moved.fresh)
    trained = inference.load_run(source).state.generator.params
    for leaf, source_leaf in zip(
        jax.tree.leaves(grown.generator.params), jax.tree.leaves(trained), strict=True
    ):
        assert leaf.shape == (2, *source_leaf.shape)
        np.testing.assert_array_equal(leaf[0], source_leaf)
        np.testing.assert_array_equal(leaf[1], source_leaf)


def test_evaluation_results_of_replicas_summarize_as_mean_std_and_per_seed():
    results = [{"fid": 10.0, "per_class": [1.0, 2.0]}, {"fid": 14.0, "per_class": [3.0, 4.0]}]
    summary = replicas.summarize_results(results, [7, 8])
    assert summary == {
        "fid": 12.0,
        "fid/std": 2.0,
        "fid/seed_7": 10.0,
        "fid/seed_8": 14.0,
        "per_class/seed_7": [1.0, 2.0],
        "per_class/seed_8": [3.0, 4.0],
    }
    assert replicas.summarize_results(results[:1], [7]) == results[0]


def test_a_bad_seed_count_stops_before_anything_is_written(
    data_dir, cache_dir, tiny_runs, tmp_path
):
    workdir = tmp_path / "run"
    shutil.copytree(tiny_runs["dcgan"], workdir)
    before = {path: path.read_bytes() for path in workdir.rglob("*") if path.is_file()}
    for count, message in ((0, "num_seeds=0 must be at least 1"), (2, "num_seeds: 1 -> 2")):
        config = tiny_config(data_dir, cache_dir, num_seeds=count, num_train_steps=2)
        with one_device(), pytest.raises(UserError, match=message):
            train.train_and_evaluate(config, str(workdir))
    assert {path: path.read_bytes() for path in workdir.rglob("*") if path.is_file()} == before
