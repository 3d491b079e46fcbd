"""WGAN-GP (Gulrajani et al. 2017): the Wasserstein objective with a gradient penalty of weight
10 on interpolates, five critic updates per generator update, the ResNet networks without
spectral normalisation (global mean pooling in D), Adam(2e-4, 0.0, 0.9) with linear decay.

    python -m cnngen_jax.main --config=configs/wgan_gp.py --workdir=runs/wgan_gp
    python -m cnngen_jax.main --config=configs/wgan_gp.py:cifar10 --workdir=runs/wgan_gp_cifar10

Presets (`--config=configs/wgan_gp.py:NAME`):

- `digits` (default): the embedded digits, networks narrowed to g_width = d_width = 32 and
  2 critic updates per generator update, so that it trains in minutes on 2 CPU cores.
- `cifar10`: the recipe as Mimicry trains it (`torch_mimicry/nets/wgan_gp/`; batch 64, 100k
  generator steps, ngf 256, ndf 128, z 128). Mimicry's README reports FID 22.29 +- 0.06 and IS
  7.33 +- 0.02 (3 seeds; 50k generated against 50k train-split images, TF Inception); the paper
  reports IS 7.86 +- 0.07 for its unconditional ResNet. Other protocols than this project's
  default evaluation (test split, torch-fidelity's Inception): compare like with like.
"""

import ml_collections

from cnngen_jax.configs import common, sngan


def cifar10() -> ml_collections.ConfigDict:
    config = sngan.cifar10()  # the same networks, optimizer, schedule and run as Mimicry's SNGAN
    config.model.name = "wgan_gp32"
    config.model.spectral_norm = False
    config.loss = "wasserstein"
    config.gp_weight = 10.0
    return config


def digits() -> ml_collections.ConfigDict:
    return common.digits_run(cifar10(), width=32, n_critic=2)


PRESETS = {"digits": digits, "cifar10": cifar10}


def get_config(preset: str | None = None) -> ml_collections.ConfigDict:
    return common.preset(preset, PRESETS)
