"""What every registered recipe owes the trainer, checked once per recipe rather than copied per
family: two finite steps, the same steps on one or eight devices, and an exact resume."""

import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cnngen_jax import capabilities, data, inference, parallel, train
from cnngen_jax.tasks import create_task
from tests.conftest import (
    FAMILIES,
    init_state,
    one_device,
    run_steps,
    tiny_config,
    without_evaluation,
)

TIMING = {"steps_per_sec", "images_per_sec"}


def training_batches(config, data_dir: str, task, count: int) -> list[dict]:
    source = data.open_source("digits", "train", data_dir)
    iterator = data.pipeline.train_iterator(
        source, data.get_spec("digits"), image_size=config.image_size,
        global_batch_size=config.batch_size, rows=slice(0, config.batch_size), seed=0,
        num_threads=1, prefetch=1, batches_per_step=task.batches_per_step,
    )  # fmt: skip
    return [next(iterator) for _ in range(count)]


# A recipe whose default step is another's plus one feature adds no path of its own: SNGAN's is
# cGAN-PD's without the labels (WGAN-GP runs the same networks unconditionally); SRResNet's is
# SRGAN's without the perceptual and adversarial terms, ESPCN's the same with another network.
SUBSUMED = {"sngan": "cgan_pd", "srresnet": "srgan", "espcn": "srgan"}


@pytest.mark.parametrize("family", [f for f in FAMILIES if f not in SUBSUMED])
def test_one_device_and_eight_devices_take_the_same_steps(family, data_dir):
    config = tiny_config(data_dir, family=family)
    task = create_task(config, data.dataset_info("digits"))
    batches = training_batches(config, data_dir, task, 2)
    assert len(jax.devices()) == 8
    state = parallel.to_host(init_state(task))
    state_1, metrics_1 = run_steps(task, state, batches, jax.devices()[:1])
    state_8, metrics_8 = run_steps(task, state, batches, jax.devices())
    for m1, m8 in zip(metrics_1, metrics_8, strict=True):
        assert m1.keys() == m8.keys()
        for key in m1:
            assert np.isfinite(m1[key]), key
            np.testing.assert_allclose(m1[key], m8[key], rtol=1e-4, atol=1e-6, err_msg=key)
    # Adam divides by the gradient's scale, so a parameter whose gradient is rounding noise (a
    # bias that cancels between real and fake terms) moves by about +-lr on either side: the
    # states agree to a few learning rates, the metrics above to float tolerance.
    for a, b in zip(jax.tree.leaves(state_1), jax.tree.leaves(state_8), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-3)


def read_metrics(workdir) -> list[dict]:
    lines = (workdir / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING} for line in lines]


# One recipe per task and kind of train state, with the cheapest networks that hold it:
# conditional BatchNorm in G, spectral-norm vectors in D, labels in the batches, the fused step
# and an EMA generator (the standard CNN, made conditional); the VAE's single network; the
# inpainter's U-Net beside its spectral-norm discriminator, its random crops and masks; the
# style network beside its frozen VGG and Gram matrices. BatchNorm statistics in D resume end to
# end in test_main.py (the DCGAN), stacked batches and the critic scan in test_gan.py.
RESUME = {
    "sndcgan": {"model.conditioning": "projection", "ema_decay": 0.9},
    "vae": {},
    "inpainting": {},
    "style_transfer": {},
}


@pytest.mark.parametrize("family", list(RESUME))
def test_a_resumed_run_logs_what_an_uninterrupted_one_does(family, data_dir, cache_dir, tmp_path):
    # The same num_train_steps throughout: it sets the length of a decaying learning rate.
    settings = {**RESUME[family], "num_train_steps": 4}
    config = tiny_config(data_dir, cache_dir, family=family, **settings)
    config.checkpoint_every_steps = config.sample_every_steps = 2
    without_evaluation(config)
    with one_device():  # the devices are checked above; here the state and the data order
        train.train_and_evaluate(config, str(tmp_path))
        uninterrupted = read_metrics(tmp_path)
        shutil.rmtree(tmp_path / "checkpoints" / "4")  # as if stopped after the save at step 2
        train.train_and_evaluate(config, str(tmp_path))
    resumed = read_metrics(tmp_path)
    assert [m["step"] for m in resumed] == [1, 2, 3, 4]
    for a, b in zip(uninterrupted, resumed, strict=True):
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_allclose(a[key], b[key], rtol=1e-6, err_msg=f"{key} at {a['step']}")


# One recipe per task: each of its evaluators (config.evals) runs on a trained checkpoint, as
# `python -m cnngen_jax.commands.evaluate` runs them, with its protocol stamped.
EVALUATED = {"dcgan": {"num_samples": 20}, "vae": {"num_samples": 20}, "srresnet": {},
             "inpainting": {}, "style_transfer": {}}  # fmt: skip


@pytest.mark.parametrize("family", list(EVALUATED))
def test_every_task_is_evaluated_by_its_configs_evaluators(family, tiny_runs, tmp_path):
    workdir = tmp_path / "run"
    shutil.copytree(tiny_runs[family], workdir)
    config = inference.load_run_config(str(workdir))
    for settings in config.evals.values():
        if "cache_dir" in settings:
            settings.cache_dir = str(tmp_path / "cache")
    (workdir / "config.json").write_text(config.to_json())
    with one_device():
        result = inference.evaluate_run(str(workdir), **EVALUATED[family])
    assert result["step"] == 2 and set(result["protocol"]) == set(config.evals)
    scores = {k: v for k, v in result.items() if k not in ("step", "protocol")}
    assert scores and all(np.isfinite(v) for v in scores.values()), scores


def generative_recipes() -> list[str]:
    """One recipe per generative model and conditioning (the others share their decode)."""
    seen, recipes = set(), []
    for family, (module, _) in FAMILIES.items():
        config = module.get_config()
        if config.task not in ("gan", "vae"):
            continue
        kind = (config.task, config.model.name, config.model.conditioning)
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
