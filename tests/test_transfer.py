"""Starting a run from another run's weights (`config.init_from`) and FreezeD
(`config.freeze_d_blocks`): what is restored by name and shape, what starts fresh, and the
mistakes a user can make."""

import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds

from cnngen_jax import checkpoint, parallel, train, transfer
from cnngen_jax.data import DatasetInfo
from cnngen_jax.errors import UserError
from cnngen_jax.tasks import create_task
from tests.conftest import init_state, one_device, tiny_config

DIGITS = DatasetInfo("digits", 1, 10)


def saved_run(directory, family: str = "dcgan", seed: int = 0) -> dict:
    """A workdir holding one checkpoint (step 3) of a freshly initialised tiny `family`; returns
    that state as {name: array}."""
    config = tiny_config(family=family)
    state = parallel.to_host(init_state(create_task(config, DIGITS), seed))
    writer = checkpoint.CheckpointWriter(str(directory / "checkpoints"), 1)
    writer.save(3, state, {}, config)
    writer.close()
    return checkpoint.read_state(str(directory))[1]


def test_an_unconditional_run_seeds_a_conditional_one(tmp_path):
    source = saved_run(tmp_path)
    target = init_state(create_task(tiny_config(family="cdcgan"), DIGITS), seed=1)
    moved, report = transfer.transplant(target, str(tmp_path), with_optimizer=False)
    flat = {name: np.asarray(v) for name, v in _flat(moved).items()}
    for name in ("generator/params/ConvT_1/kernel", "discriminator/params/Conv_1/kernel"):
        np.testing.assert_array_equal(flat[name], source[name])
        assert name in report.restored
    # New in the conditional model: per-class BatchNorm tables and the class embedding.
    assert "generator/params/BN_0/embedding" in report.fresh
    assert "discriminator/params/ClassEmbed/embedding" in report.fresh
    assert not any("opt_state" in name for name in report.restored) and int(moved.step) == 0
    assert "ClassEmbed" in report.report() and "step 3" in report.source


def test_other_image_channels_keep_the_layers_that_fit_and_optimizer_states_on_request(tmp_path):
    source = saved_run(tmp_path)
    rgb = create_task(tiny_config(dataset="cifar10"), DatasetInfo("cifar10", 3, 10))
    moved, report = transfer.transplant(init_state(rgb, seed=1), str(tmp_path), True)
    assert "discriminator/params/Conv_0/kernel" in report.fresh  # reads 3 channels now
    last = max(n for n in source if n.startswith("generator/params/ConvT_"))
    assert last in report.fresh and "generator/params/ConvT_0/kernel" in report.restored
    assert any("opt_state" in name for name in report.restored)


def test_init_from_mistakes_name_the_setting(data_dir, cache_dir, tmp_path):
    with pytest.raises(UserError, match="init_from=.* does not exist"):
        transfer.transplant(None, str(tmp_path / "nowhere"), False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no complete checkpoint"):
        transfer.transplant(None, str(tmp_path / "empty"), False)
    saved_run(tmp_path / "vae", family="vae")
    gan = init_state(create_task(tiny_config(), DIGITS))
    with pytest.raises(UserError, match="no parameter .* fits this model"):
        transfer.transplant(gan, str(tmp_path / "vae"), False)
    fresh = tmp_path / "new_run"  # through the trainer: stopped before anything is written
    config = tiny_config(data_dir, cache_dir, init_from=str(tmp_path / "nowhere"))
    with pytest.raises(UserError, match="init_from"):
        train.train_and_evaluate(config, str(fresh))
    assert not fresh.exists()
    with pytest.raises(UserError, match="freeze_d_blocks=3 .* between 0 and the 2"):
        create_task(tiny_config(freeze_d_blocks=3), DIGITS)  # 16 px: two stride-2 blocks


def test_fine_tuning_on_other_data_with_frozen_discriminator_blocks(data_dir, cache_dir, tmp_path):
    source_dir, tuned_dir = tmp_path / "digits", tmp_path / "fashion"
    config = tiny_config(data_dir, cache_dir, num_train_steps=2, checkpoint_every_steps=2)
    with one_device():
        train.train_and_evaluate(config, str(source_dir))
    tuned = tiny_config(
        str(tmp_path / "tfds"),
        cache_dir,
        dataset="fashion_mnist",
        num_train_steps=2,
        checkpoint_every_steps=2,
        init_from=str(source_dir),
        freeze_d_blocks=2,
    )
    mock_data = tfds.testing.mock_data(num_examples=40, policy=tfds.testing.MockPolicy.USE_CODE)
    with mock_data, one_device():
        train.train_and_evaluate(tuned, str(tuned_dir))
    before = checkpoint.read_state(str(source_dir))[1]
    after = checkpoint.read_state(str(tuned_dir))[1]
    for frozen in ("Conv_0/kernel", "Conv_1/kernel", "BN_1/scale"):
        name = f"discriminator/params/{frozen}"
        np.testing.assert_array_equal(after[name], before[name])
    for trained in ("discriminator/params/Conv_2/kernel", "generator/params/ConvT_0/kernel"):
        assert not np.array_equal(after[trained], before[trained])
    assert int(after["step"]) == 2  # the new run counts its own steps


def _flat(tree) -> dict:
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {checkpoint.path_name(path): leaf for path, leaf in leaves}
