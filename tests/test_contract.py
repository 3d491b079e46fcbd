"""What every registered recipe owes the trainer, checked once per recipe rather than copied per
family: two finite steps, the same steps on one or eight devices. The exact resume of every
task's state is in test_contract_resume.py, what trained models owe the commands in
test_contract_use.py."""

import jax
import numpy as np
import pytest

from cnngen_jax import data, parallel
from cnngen_jax.tasks import create_task
from tests.conftest import (
    FAMILIES,
    init_state,
    run_steps,
    tiny_config,
    traced_step,
)


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
    step = traced_step(task, state, batches[0])  # one program, jitted for each device count
    state_1, metrics_1 = run_steps(task, state, batches, jax.devices()[:1], step=step)
    state_8, metrics_8 = run_steps(task, state, batches, jax.devices(), step=step)
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
