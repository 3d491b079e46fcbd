"""Inputs that used to escape the one-line-error promise, or were silently misread: each gets one
clear message naming the setting (and nothing written), or now just works."""

import json
import shutil

import numpy as np
import pytest
from absl import flags
from ml_collections import config_flags

from cnngen_jax import cli, inference, sampling, train
from cnngen_jax.errors import UserError
from tests.conftest import tiny_config


def test_keeping_no_checkpoint_is_refused_before_the_workdir_is_written(data_dir, tmp_path):
    config = tiny_config(data_dir, max_checkpoints_to_keep=0)
    with pytest.raises(UserError, match="max_checkpoints_to_keep=0 must be at least 1"):
        train.train_and_evaluate(config, str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()


def test_a_preset_of_a_config_without_presets_names_the_fix():
    values = flags.FlagValues()
    config_flags.DEFINE_config_file("config", None, flag_values=values, lock_config=True)
    argv = ["prog", "--config=configs/style_transfer.py:big"]
    with pytest.raises(Exception) as raised:  # what absl raises for a config file that fails
        values(argv)
    message = cli._explain_flag_error(raised.value, argv[1:])
    assert message == (
        "configs/style_transfer.py has no presets; pass --config=configs/style_transfer.py "
        "without ':PRESET'"
    )


def test_an_empty_number_list_is_refused_not_read_as_nothing():
    with pytest.raises(UserError, match="--labels= is empty"):
        cli.class_numbers([])  # absl's DEFINE_list gives [] for `--labels=`
    assert cli.class_numbers(["3", "5"]) == [3, 5] and cli.class_numbers(None) is None


def test_negative_interpolation_steps_are_refused(tiny_runs):
    run = inference.load_run(tiny_runs["dcgan"])
    with pytest.raises(UserError, match="--interpolation_steps=-1 must be 0"):
        sampling.draw(run, 4, seed=0, interpolation_steps=-1)


def test_a_run_is_evaluated_on_a_machine_with_another_device_count(tiny_runs, tmp_path):
    """Eight devices here; a run whose batch of 12 they do not divide is evaluated on six."""
    workdir = tmp_path / "run"
    shutil.copytree(tiny_runs["vae"], workdir)
    config = json.loads((workdir / "config.json").read_text())
    config["batch_size"] = 12
    (workdir / "config.json").write_text(json.dumps(config))
    result = inference.evaluate_run(str(workdir), evals=["elbo"])
    assert np.isfinite(result["test_nelbo"])
