"""Convolutional VAE on the embedded handwritten digits, 32x32, Bernoulli likelihood.

    python -m cnngen_jax.main --config=configs/vae.py --workdir=runs/vae
    python -m cnngen_jax.main --config=configs/vae.py --workdir=runs/vae_celeba \
        --config.dataset=celeb_a --config.image_size=64 --config.model.likelihood=gaussian \
        --config.model.latent_dim=128 --config.num_train_steps=20000
"""

import ml_collections

from cnngen_jax.configs import common


def digits() -> ml_collections.ConfigDict:
    config = common.base("vae")

    config.model = ml_collections.ConfigDict()
    config.model.name = "conv_vae"
    config.model.latent_dim = 16
    config.model.width = 32  # channels of the first encoder block, doubled per block
    config.model.likelihood = "bernoulli"  # or 'gaussian' (learned per-channel scale)
    config.model.gaussian_init_std = 0.1  # initial scale of the Gaussian, on [0, 1] intensities
    config.model.conditioning = "none"  # or 'concat': a conditional VAE (configs/cvae.py)

    config.optimizer = ml_collections.ConfigDict()
    config.optimizer.learning_rate = 1e-3
    config.optimizer.b1 = 0.9
    config.optimizer.b2 = 0.999

    # Objective: NLL + beta * KL; beta ramps linearly from 0 over kl_warmup_steps (0: no ramp).
    config.beta = 1.0
    config.kl_warmup_steps = 0

    config.batch_size = 64
    config.num_train_steps = 1500
    config.sample_every_steps = 250
    config.checkpoint_every_steps = 500
    config.evals.elbo = common.elbo(every_steps=500, iw_samples=32)
    # FID and friends: by the evaluate command only (every_steps 0), or also during training.
    config.evals.sample_quality = common.sample_quality(every_steps=0)
    return config


PRESETS = {"digits": digits}


def get_config(preset: str | None = None) -> ml_collections.ConfigDict:
    return common.preset(preset, PRESETS)
