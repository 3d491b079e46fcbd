"""What every task's trained model owes the commands, checked over the registry: its evaluators
run on a checkpoint as the evaluate command runs them, and a generative model's images depend
on their own latents only (what exports and edits rely on)."""

import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cnngen_jax import capabilities, data, inference
from cnngen_jax.tasks import create_task
from tests.conftest import FAMILIES, init_state, one_device, tiny_config

# One recipe per task (the first of FAMILIES), and inpainting, the restoration evaluator's other
# protocol: each of its evaluators (config.evals) runs on a trained checkpoint, as `python -m
# cnngen_jax.commands.evaluate` runs them, with its protocol stamped, with the fewest samples and
# images each evaluator takes (the biharmonic baseline takes seconds per photograph's tiles).
FEWEST = {"num_samples": 20, "num_images": 1}
OTHER_PROTOCOLS = ["inpainting"]


def evaluated_recipes() -> list[str]:
    tasks = {}
    for family, (module, _) in FAMILIES.items():
        tasks.setdefault(module.get_config().task, family)
    return [*tasks.values(), *OTHER_PROTOCOLS]


@pytest.mark.parametrize("family", evaluated_recipes())
def test_every_task_is_evaluated_by_its_configs_evaluators(family, tiny_runs, tmp_path):
    workdir = tmp_path / "run"
    shutil.copytree(tiny_runs[family], workdir)
    config = inference.load_run_config(str(workdir))
    for settings in config.evals.values():
        if "cache_dir" in settings:
            settings.cache_dir = str(tmp_path / "cache")
    (workdir / "config.json").write_text(config.to_json())
    with one_device():
        settings = {k for evaluator in config.evals.values() for k in evaluator}
        fewest = {k: v for k, v in FEWEST.items() if k in settings}
        result = inference.evaluate_run(str(workdir), **fewest)
    assert result["step"] == 2 and set(result["protocol"]) == set(config.evals)
    scores = {k: v for k, v in result.items() if k not in ("step", "protocol")}
    assert scores and all(np.isfinite(v) for v in scores.values()), scores


def generative_recipes() -> list[str]:
    """One recipe per generative model (a `Sampler`) and conditioning (the others share their
    decode)."""
    seen, recipes = set(), []
    for family, (module, _) in FAMILIES.items():
        config = module.get_config()
        task = create_task(config, data.dataset_info(config.dataset))
        if not isinstance(task, capabilities.Sampler):
            continue
        kind = (config.task, config.model.name, config.model.get("conditioning", "none"))
        if kind not in seen:
            seen.add(kind)
            recipes.append(family)
    return recipes


@pytest.mark.parametrize("family", generative_recipes())
def test_a_decoded_image_depends_on_its_own_latent_only(family, data_dir):
    """What exports and edits rely on: image i is the same in a batch of 3 as in a batch of 8
    (a GAN's BatchNorm normalises by a fixed reference batch, never by the other rows)."""
    config = tiny_config(data_dir, family=family)
    task = capabilities.require(
        create_task(config, data.dataset_info("digits")), capabilities.Sampler, "this test"
    )
    state = init_state(task)
    latents = jax.random.normal(jax.random.key(1), (8, task.latent_dim))
    labels = (jnp.arange(8) * 3) % task.num_classes if task.num_classes else None
    decode = jax.jit(task.decode)
    many = np.asarray(decode(state, latents, labels))
    few = np.asarray(decode(state, latents[:3], None if labels is None else labels[:3]))
    np.testing.assert_allclose(few, many[:3], atol=1e-5)
    assert not np.allclose(many[0], many[1])  # the rows do differ
