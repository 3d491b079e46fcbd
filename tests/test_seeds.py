"""Several seeds in one compiled step (`config.num_seeds`): each replica is the run of its own
seed on the same batches, and a run of replicas logs, draws, checkpoints and resumes as one."""

import functools

import jax
import numpy as np
import pytest

from cnngen_jax import data, inference, replicas, train, transfer
from cnngen_jax.tasks import create_task
from tests.conftest import init_state, run_steps, tiny_config
from tests.test_contract import read_metrics, training_batches

SEED, NUM_SEEDS = 5, 2


# The GAN with every kind of per-replica state (BatchNorm in G, spectral-norm vectors in D, an
# EMA generator) and the VAE.
@pytest.mark.parametrize(
    "family, overrides",
    [("sndcgan", {"ema_decay": 0.9}), ("vae", {})],
)
def test_each_replica_equals_a_separate_run_of_its_seed(family, overrides, data_dir):
    config = tiny_config(data_dir, family=family, seed=SEED, num_seeds=NUM_SEEDS, **overrides)
    task = create_task(config, data.dataset_info("digits"))
    batches = training_batches(config, data_dir, task, 2)
    device = jax.devices()[:1]
    stacked = jax.jit(functools.partial(train.fresh_state, task, config))()
    stacked, stacked_metrics = run_steps(task, stacked, batches, device, SEED, NUM_SEEDS)
    # The second replica (each separate run compiles a step of its own, so one is checked).
    seed = replicas.seeds(SEED, NUM_SEEDS)[1]
    alone, metrics = run_steps(task, init_state(task, seed), batches, device, seed)
    for step_metrics, step_stacked in zip(metrics, stacked_metrics, strict=True):
        for key, value in step_metrics.items():
            np.testing.assert_allclose(step_stacked[key][1], value, rtol=1e-4, atol=1e-6)
    mine = replicas.replica(stacked, 1)
    for a, b in zip(jax.tree.leaves(mine), jax.tree.leaves(alone), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-3)  # Adam: see test_contract
    # The replicas are different models, not copies of one.
    first, second = (jax.tree.leaves(replicas.replica(stacked, i))[-2] for i in (0, 1))
    assert not np.allclose(first, second)


def test_a_run_of_seeds_logs_draws_and_resumes_per_replica(data_dir, cache_dir, tmp_path):
    config = tiny_config(data_dir, cache_dir, num_seeds=2, seed=3, num_train_steps=4)
    config.checkpoint_every_steps = config.sample_every_steps = 2
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
    train.train_and_evaluate(config, str(tmp_path))
    assert read_metrics(tmp_path) == uninterrupted

    # Each replica loads as a run of its own, by seed.
    loaded = [inference.load_run(str(tmp_path), seed=seed) for seed in (3, 4)]
    assert all(run.step == 4 for run in loaded)
    kernels = [jax.tree.leaves(run.task.networks(run.state))[0] for run in loaded]
    assert kernels[0].shape == kernels[1].shape and not np.allclose(*kernels)
    with pytest.raises(train.UserError, match="seed 5 is not one of the run's seeds"):
        inference.load_run(str(tmp_path), seed=5)


def test_init_from_a_one_seed_run_starts_every_replica_from_it(data_dir, cache_dir, tiny_runs):
    source = tiny_runs["dcgan"]
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
