"""MSRResNet x4 (BasicSR's modified SRResNet of Ledig et al. 2017: 16 residual blocks of 64
channels without BatchNorm, two pixel-shuffle x2 stages, a bilinear skip from the input),
trained on an L1 loss.

    python -m cnngen_jax.main --config=configs/srresnet.py --workdir=runs/srresnet
    python -m cnngen_jax.commands.restore --workdir=runs/srresnet \\
        --input=photo.png --output=photo_x4.png

Presets (`--config=configs/srresnet.py:NAME`):

- `photos` (default): MSRResNet at its reference width and depth (1,517,571 parameters, as
  BasicSR's module counts them; checked in tests/test_restoration_models.py), random 64x64 HR
  crops of the embedded photographs, x4, batch 8, in minutes on 2 CPU cores; evaluated on the
  two held-out photographs beside bicubic upsampling.
- `div2k`: BasicSR's `train_MSRResNet_x4.yml`: DIV2K HR crops of 128, batch 16, Adam(2e-4,
  0.9, 0.99), L1, cosine decay over 1,000,000 iterations (BasicSR restarts the cosine every
  250k; here one period).
"""

import ml_collections

from cnngen_jax.configs import common


def photos() -> ml_collections.ConfigDict:
    config = common.restoration("bicubic")
    config.scale = 4
    config.model.name = "msrresnet"
    config.model.width = 64
    config.model.num_blocks = 16
    config.image_size = 64
    config.batch_size = 8
    config.num_train_steps = 600
    config.log_every_steps = 50
    config.sample_every_steps = 200
    config.checkpoint_every_steps = 200
    config.evals.restoration.every_steps = 300
    return config


def div2k() -> ml_collections.ConfigDict:
    return common.catalog_restoration_run(photos(), "div2k", 128, 16, 1_000_000, 5000)


PRESETS = {"photos": photos, "div2k": div2k}


def get_config(preset: str | None = None) -> ml_collections.ConfigDict:
    return common.preset(preset, PRESETS)
