"""Every config file and preset in configs/ trains, so none can rot: each file's default (its
`get_config()`) is a family of the contract tests (tests/test_contract.py, shrunk), and every
other preset trains two steps here with all its settings but the networks' widths (narrowed to
8; the published widths are built, and their parameters counted, in test_gan_models.py)."""

import contextlib
import importlib
import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

from cnngen_jax import parallel, train
from tests.conftest import FAMILIES, ROOT

CONFIGS = sorted(
    name[:-3]
    for name in os.listdir(os.path.join(ROOT, "configs"))
    if name.endswith(".py") and name not in ("common.py", "__init__.py")
)


# cgan_pd's presets are sngan's with class labels added, so training them covers sngan's.
SUBSUMED = {"sngan": "cgan_pd"}


def other_presets() -> list[tuple[str, str]]:
    """(config, preset) for every preset but the file's default (the first)."""
    found = []
    for name in CONFIGS:
        presets = list(getattr(importlib.import_module(f"configs.{name}"), "PRESETS", []))
        found += [(name, preset) for preset in presets[1:] if name not in SUBSUMED]
    return found


def test_subsumed_presets_are_their_substitutes_without_labels():
    for name, substitute in SUBSUMED.items():
        for preset in importlib.import_module(f"configs.{name}").PRESETS:
            config = importlib.import_module(f"configs.{name}").get_config(preset)
            other = importlib.import_module(f"configs.{substitute}").get_config(preset)
            other.model.conditioning = config.model.conditioning
            other.optimizer.g_learning_rate = config.optimizer.g_learning_rate
            other.eval_every_steps = config.eval_every_steps
            assert other.to_dict() == config.to_dict(), (name, preset)


def test_every_config_default_runs_in_the_contract_tests():
    assert set(CONFIGS) == set(FAMILIES)
    for name in CONFIGS:
        assert FAMILIES[name][0] is importlib.import_module(f"configs.{name}")


@pytest.mark.parametrize("name,preset", other_presets())
def test_preset_trains_two_steps(name, preset, data_dir, cache_dir, tmp_path):
    config = importlib.import_module(f"configs.{name}").get_config(preset)  # as FILE:PRESET
    config.batch_size = 8  # one example per fake device
    for key in config.model:
        if key.endswith("width"):
            config.model[key] = 8
    config.input_threads = 1
    config.compilation_cache_dir = cache_dir
    catalog = config.dataset != "digits"
    config.data_dir = str(tmp_path / "tfds") if catalog else data_dir
    mock = tfds.testing.mock_data(num_examples=40, policy=tfds.testing.MockPolicy.USE_CODE)
    with mock if catalog else contextlib.nullcontext():
        run = train.build_run(config)  # the trainer's own pieces, without writing a workdir
        state = train.initial_state(run)
        step = train.jit_train_step(run)
        iterator = train.train_iterator(run)
        for _ in range(2):
            state, metrics = step(state, run.train_batch(next(iterator)))
    assert int(parallel.to_host(state.step)) == 2
    assert all(np.isfinite(v) for v in parallel.to_host(metrics).values())


def test_an_unknown_preset_names_the_choices():
    sngan = importlib.import_module("configs.sngan")
    with pytest.raises(ValueError, match="unknown preset 'imagenet'.*digits, cifar10"):
        sngan.get_config("imagenet")
