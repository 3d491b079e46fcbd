"""Conditional VAE (Sohn et al. 2015, "Learning Structured Output Representation using Deep
Conditional Generative Models") on the embedded handwritten digits, 32x32: the conv VAE of
`configs/vae.py` with the one-hot label as extra encoder input channels, q(z|x, y), and
concatenated to z for the decoder, p(x|z, y). The test-split ELBO (in nats) is then a bound on
log p(x|y); every 500 steps the conditional sample metrics are computed too.

    python -m cnngen_jax.main --config=configs/cvae.py --workdir=runs/cvae
"""

import ml_collections

from cnngen_jax.configs import common, vae


def digits() -> ml_collections.ConfigDict:
    config = vae.digits()
    config.model.conditioning = "concat"
    config.evals.sample_quality.every_steps = 500
    return config


PRESETS = {"digits": digits}


def get_config(preset: str | None = None) -> ml_collections.ConfigDict:
    return common.preset(preset, PRESETS)
