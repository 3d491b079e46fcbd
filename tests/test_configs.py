"""Every config file and preset in configs/ runs two training steps, so none can rot."""

import contextlib
import importlib
import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

from cnngen_jax import parallel, train
from tests.conftest import ROOT

CONFIGS = sorted(
    name[:-3]
    for name in os.listdir(os.path.join(ROOT, "configs"))
    if name.endswith(".py") and name not in ("common.py", "__init__.py")
)


def cases() -> list[tuple[str, str | None]]:
    found = []
    for name in CONFIGS:
        module = importlib.import_module(f"configs.{name}")
        found += [(name, preset) for preset in getattr(module, "PRESETS", [None])]
    return found


@pytest.mark.parametrize("name,preset", cases())
def test_config_trains_two_steps(name, preset, data_dir, cache_dir, tmp_path):
    module = importlib.import_module(f"configs.{name}")
    config = module.get_config(preset) if preset else module.get_config()  # as FILE:PRESET
    config.batch_size = 8  # one example per fake device; the networks keep their widths
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
            local = next(iterator)
            batch = parallel.global_batch(local, run.mesh, 8, run.task.batches_per_step)
            state, metrics = step(state, batch)
    assert int(parallel.to_host(state.step)) == 2
    assert all(np.isfinite(v) for v in parallel.to_host(metrics).values())


def test_an_unknown_preset_names_the_choices():
    sngan = importlib.import_module("configs.sngan")
    with pytest.raises(ValueError, match="unknown preset 'imagenet'.*digits, cifar10"):
        sngan.get_config("imagenet")
