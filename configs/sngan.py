"""SNGAN (Miyato et al. 2018): the ResNet networks with spectral normalisation in D, hinge loss,
five discriminator updates per generator update, Adam(2e-4, 0.0, 0.9) with linear decay.

    python -m cnngen_jax.main --config=configs/sngan.py --workdir=runs/sngan
    python -m cnngen_jax.main --config=configs/sngan.py:cifar10 --workdir=runs/sngan_cifar10

Presets (`--config=configs/sngan.py:NAME`):

- `digits` (default): the embedded digits in minutes on 2 CPU cores: networks narrowed to
  g_width = d_width = 32, one discriminator update per generator update over 1500 steps, and an
  EMA generator (decay 0.99).
- `cifar10`: the published recipe as Mimicry trains it (`torch_mimicry/nets/sngan/sngan_32.py`;
  batch 64, 100k generator steps, ngf 256, ndf 128, z 128). One ordering differs: Mimicry's
  iteration updates G before its n_critic D updates, ours after them (the same alternation,
  shifted by half an iteration). Mimicry's README reports FID
  16.77 +- 0.04 and IS 7.97 +- 0.06 (over 3 seeds; 50k generated images against 50k images of
  the *train* split, TF Inception `pool_3`, samples from G in eval mode); the paper reports FID
  21.7 +- 0.21 (10k real / 5k generated). Those protocols differ from this project's default
  evaluation (the test split, torch-fidelity's Inception): compare like with like.
"""

import ml_collections

from cnngen_jax.configs import common


def cifar10() -> ml_collections.ConfigDict:
    config = common.gan()
    config.model.name = "sngan32"
    config.model.latent_dim = 128
    config.model.g_width = 256
    config.model.d_width = 128
    config.model.spectral_norm = True
    config.loss = "hinge"
    config.n_critic = 5
    config.optimizer.g_learning_rate = 2e-4
    config.optimizer.d_learning_rate = 2e-4
    config.optimizer.b1 = 0.0
    config.optimizer.b2 = 0.9
    config.optimizer.schedule = "linear"
    return common.published_cifar10_run(config)


def digits() -> ml_collections.ConfigDict:
    # Measured on the digits (README): one critic update and an EMA generator over more steps
    # beat n_critic 2 over fewer in the same minutes (domain FID 39.0 against 63.6).
    config = common.digits_run(cifar10(), width=32, n_critic=1, num_train_steps=1500)
    config.ema_decay = 0.99
    return config


PRESETS = {"digits": digits, "cifar10": cifar10}


def get_config(preset: str | None = None) -> ml_collections.ConfigDict:
    return common.preset(preset, PRESETS)
