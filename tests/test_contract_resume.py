"""What every task's train state owes the trainer, checked once per kind of state: a resumed run
logs exactly what an uninterrupted one does (state, data order and randomness restored)."""

import shutil

import numpy as np
import pytest

from cnngen_jax import train
from tests.conftest import FAMILIES, one_device, read_metrics, tiny_config, without_evaluation

# One recipe per task, the one whose train state holds the most kinds of state, with the
# cheapest networks that hold them: for GANs conditional BatchNorm in G, spectral-norm vectors in
# D, labels in the batches, the fused step and an EMA generator (the standard CNN, made
# conditional); for restoration the inpainter's U-Net beside its spectral-norm discriminator, its
# random crops and masks. A task not named here (the VAE, style transfer, a new family) resumes
# its first recipe in FAMILIES. BatchNorm statistics in D resume end to end in test_main.py (the
# DCGAN), stacked batches and the critic scan in test_gan.py.
RICHEST = {
    "gan": ("sndcgan", {"model.conditioning": "projection", "ema_decay": 0.9}),
    "restoration": ("inpainting", {}),
}


def resume_recipes() -> dict[str, dict]:
    recipes = {}
    for family, (module, _) in FAMILIES.items():
        task = module.get_config().task
        if task not in recipes:
            recipes[task] = RICHEST.get(task, (family, {}))
    return dict(recipes.values())


RESUME = resume_recipes()


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
