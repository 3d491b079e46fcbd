"""DCGAN (Radford et al. 2016) on the embedded handwritten digits, 32x32.

    python -m cnngen_jax.main --config=configs/dcgan.py --workdir=runs/dcgan
    python -m cnngen_jax.main --config=configs/dcgan.py --workdir=runs/celeba \
        --config.dataset=celeb_a --config.image_size=64 --config.num_train_steps=20000

The other objectives run on the same networks by override, e.g. `--config.loss=ls` (LSGAN) or
`--config.loss=minimax` (the original saturating generator loss).
"""

import ml_collections

from cnngen_jax.configs import common


def digits() -> ml_collections.ConfigDict:
    config = common.gan()  # the paper's: ns loss, Adam(2e-4, 0.5, 0.999), one D step per G step
    config.model.name = "dcgan"
    config.model.latent_dim = 100
    config.model.g_width = 64  # ngf of the reference
    config.model.d_width = 64  # ndf of the reference
    config.batch_size = 128
    config.num_train_steps = 600  # 2-3.5 minutes on 2 CPU cores; digits recognisable from ~300
    return config


PRESETS = {"digits": digits}


def get_config(preset: str | None = None) -> ml_collections.ConfigDict:
    return common.preset(preset, PRESETS)
