"""SN-DCGAN: the "standard CNN" of Miyato et al. 2018 (Table 3) with spectral normalisation in
D, trained with the hinge loss and one discriminator update per generator update.

    python -m cnngen_jax.main --config=configs/sndcgan.py --workdir=runs/sndcgan
    python -m cnngen_jax.main --config=configs/sndcgan.py:cifar10 --workdir=runs/sndcgan_cifar10

Presets (`--config=configs/sndcgan.py:NAME`):

- `digits` (default): the embedded digits, networks at half the paper's widths, so that it
  trains in minutes on 2 CPU cores.
- `cifar10`: the paper's CIFAR-10 network (z 128, widths 512...64 in G and 64...512 in D) with
  Adam setting B of its Table 1 (lr 1e-4, betas 0.5, 0.999, one D update per G update), batch
  64, 100k generator updates. The paper's Table 2 reports, for SN-GAN with this network and the
  hinge loss, IS 7.58 +- 0.12 and FID 25.5 (IS over 5k samples x 10; FID 10k real / 5k
  generated; TF Inception). Other protocols than this project's default evaluation: compare
  like with like.
"""

import ml_collections

from cnngen_jax.configs import common


def cifar10() -> ml_collections.ConfigDict:
    config = common.gan()
    config.model.name = "sndcgan"
    config.model.latent_dim = 128
    config.model.g_width = 64  # 8x this at 4x4, halved per layer: 512, 256, 128, 64
    config.model.d_width = 64  # 64, 64, 128, 128, 256, 256, 512
    config.model.spectral_norm = True
    config.loss = "hinge"
    config.optimizer.g_learning_rate = 1e-4
    config.optimizer.d_learning_rate = 1e-4
    config.optimizer.b1 = 0.5
    config.optimizer.b2 = 0.999
    return common.published_cifar10_run(config)


def digits() -> ml_collections.ConfigDict:
    config = common.digits_run(cifar10(), width=32, n_critic=1)
    config.optimizer.g_learning_rate = config.optimizer.d_learning_rate = 2e-4
    return config


PRESETS = {"digits": digits, "cifar10": cifar10}


def get_config(preset: str | None = None) -> ml_collections.ConfigDict:
    return common.preset(preset, PRESETS)
