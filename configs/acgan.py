"""ACGAN (Odena et al. 2017, "Conditional Image Synthesis with Auxiliary Classifier GANs") on the
embedded handwritten digits, 32x32: the DCGAN networks and non-saturating objective with
conditional BatchNorm in G and an auxiliary classifier head in D (a linear map of the flattened
4x4 features to class logits). D's loss adds `class_loss_weight` times the cross-entropy of the
real images' classes, G's the cross-entropy of its fakes' classes.

    python -m cnngen_jax.main --config=configs/acgan.py --workdir=runs/acgan

The paper's generator takes the class as a one-hot part of the latent and its CIFAR-10 networks
differ from these; no published number applies: compare it with `configs/cdcgan.py` (the same
networks with a projection head) on the same data and protocol (README).
"""

import ml_collections

from cnngen_jax.configs import cdcgan, common


def digits() -> ml_collections.ConfigDict:
    config = cdcgan.digits()
    config.model.conditioning = "acgan"
    config.class_loss_weight = 1.0
    return config


PRESETS = {"digits": digits}


def get_config(preset: str | None = None) -> ml_collections.ConfigDict:
    return common.preset(preset, PRESETS)
