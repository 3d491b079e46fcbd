"""ESPCN (Shi et al. 2016, "Real-Time Single Image and Video Super-Resolution Using an Efficient
Sub-Pixel Convolutional Neural Network"): three convolutions (5x5 64, 3x3 32, 3x3 to C*r^2) with
tanh, and a pixel shuffle; here on RGB, x3 as the paper's main results.

    python -m cnngen_jax.main --config=configs/espcn.py --workdir=runs/espcn
    python -m cnngen_jax.commands.restore --workdir=runs/espcn \\
        --input=photo.png --output=photo_x3.png

Presets (`--config=configs/espcn.py:NAME`):

- `photos` (default): random 96x96 crops of the embedded photographs, x3, in minutes on 2 CPU
  cores; evaluated on the two held-out photographs beside bicubic upsampling.
- `div2k`: DIV2K's 800 training images (prepare them first, see README), x3, the paper's 17r
  (51 px) HR sub-images and its learning rate 1e-2 decayed to 1e-4 in the paper; here a cosine
  decay from 1e-3 under Adam.
"""

import ml_collections

from cnngen_jax.configs import common


def photos() -> ml_collections.ConfigDict:
    config = common.restoration("bicubic")
    config.scale = 3
    config.model.name = "espcn"
    config.model.width = 64  # n1 of the paper (n2 = width / 2)
    config.optimizer.learning_rate = 1e-3
    config.num_train_steps = 2000
    config.log_every_steps = 100
    config.sample_every_steps = 500
    config.checkpoint_every_steps = 500
    config.evals.restoration.every_steps = 500
    return config


def div2k() -> ml_collections.ConfigDict:
    return common.catalog_restoration_run(photos(), "div2k", 51, 64, 100_000, 10_000)


PRESETS = {"photos": photos, "div2k": div2k}


def get_config(preset: str | None = None) -> ml_collections.ConfigDict:
    return common.preset(preset, PRESETS)
