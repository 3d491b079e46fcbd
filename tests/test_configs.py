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

from cnngen_jax import checkpoint, data, parallel, train
from tests.conftest import FAMILIES, ROOT, one_device

CONFIGS = sorted(
    name[:-3]
    for name in os.listdir(os.path.join(ROOT, "configs"))
    if name.endswith(".py") and name not in ("common.py", "__init__.py")
)


def config_file(name: str):
    """configs/NAME.py, as the package `cnngen_jax.configs` imports it."""
    return importlib.import_module(f"cnngen_jax.configs.{name}")


# Files whose every preset is another file's preset changed in exactly the settings in which
# their defaults differ, so training the other's covers them: cgan_pd's presets are sngan's with
# class labels; srgan's are srresnet's with the perceptual and adversarial terms. (Run lengths
# may differ: they choose no code path.)
SUBSUMED = {"sngan": "cgan_pd", "srgan": "srresnet"}


def other_presets() -> list[tuple[str, str]]:
    """(config, preset) for every preset but the file's default (the first)."""
    found = []
    for name in CONFIGS:
        presets = list(getattr(config_file(name), "PRESETS", []))
        found += [(name, preset) for preset in presets[1:] if name not in SUBSUMED]
    return found


RUN = {"num_train_steps", "sample_every_steps", "checkpoint_every_steps"}


def run_length(key: str) -> bool:
    """Settings of how long a run is and how often it evaluates, which presets may change."""
    return key in RUN or key.endswith(".every_steps")


def flat(config) -> dict:
    return checkpoint.flat_settings(config.to_dict())


def test_subsumed_presets_differ_from_their_substitutes_as_the_defaults_do():
    for name, substitute in SUBSUMED.items():
        module, other = (config_file(n) for n in (name, substitute))
        ours, theirs = flat(module.get_config()), flat(other.get_config())
        delta = {
            k: v for k, v in ours.items() if theirs.get(k, object()) != v and not run_length(k)
        }
        assert delta, name
        for preset in module.PRESETS:
            expected = {**flat(other.get_config(preset)), **delta}
            got = flat(module.get_config(preset))
            assert {k: v for k, v in got.items() if not run_length(k)} == {
                k: v for k, v in expected.items() if not run_length(k)
            }, (name, preset)


def test_every_config_default_runs_in_the_contract_tests():
    assert set(CONFIGS) == set(FAMILIES)
    for name in CONFIGS:
        assert FAMILIES[name][0] is config_file(name)


def photographs(builder, split: str, **kwargs) -> list[dict]:
    """A mock DIV2K split: its real image features, of sizes at least the crops asked."""
    assert builder.name == "div2k" and split in ("train", "validation"), (builder.name, split)
    rng = np.random.default_rng(0)
    sizes = rng.integers(64, 97, (8, 2))
    return [{"hr": rng.integers(0, 256, (*size, 3), dtype=np.uint8)} for size in sizes]


@pytest.mark.e2e
@pytest.mark.parametrize("name,preset", other_presets())
def test_preset_trains_two_steps(name, preset, data_dir, cache_dir, tmp_path):
    # On one device: the contract tests check the devices, this test the settings.
    config = config_file(name).get_config(preset)  # as FILE:PRESET
    config.batch_size = 8
    for networks in (config.model, config.get("discriminator", {})):
        for key in networks:
            if key.endswith("width"):
                networks[key] = 8
    config.input_threads = 1
    config.compilation_cache_dir = cache_dir
    config.image_size = min(config.image_size, 64)  # the presets' 128-256 px cost only time
    catalog = config.dataset != "digits"
    config.data_dir = str(tmp_path / "tfds") if catalog else data_dir
    mock = tfds.testing.mock_data(
        num_examples=40,
        policy=tfds.testing.MockPolicy.USE_CODE,
        as_data_source_fn=photographs if data.get_spec(config.dataset).variable_size else None,
    )
    with mock if catalog else contextlib.nullcontext(), one_device():
        run = train.build_run(config)  # the trainer's own pieces, without writing a workdir
        state = train.initial_state(run)
        step = train.jit_train_step(run)
        iterator = train.train_iterator(run)
        for _ in range(2):
            state, metrics = step(state, run.train_batch(next(iterator)))
    assert int(parallel.to_host(state.step)) == 2
    assert all(np.isfinite(v) for v in parallel.to_host(metrics).values())


def test_an_unknown_preset_names_the_choices():
    sngan = config_file("sngan")
    with pytest.raises(ValueError, match="unknown preset 'imagenet'.*digits, cifar10"):
        sngan.get_config("imagenet")
