"""SRGAN-style adversarial fine-tuning of MSRResNet x4 (Ledig et al. 2017, as BasicSR's
`train_MSRGAN_x4.yml` trains it): L1 pixel loss x 1e-2, a perceptual loss on VGG19's conv5_4
features (before the ReLU; L1) x 1, and a vanilla GAN loss x 5e-3 against the VGG-style
discriminator, Adam(1e-4, 0.9, 0.99) for both networks.

The perceptual loss needs VGG19's weights, converted once from torchvision's file (nothing is
downloaded): `python -m cnngen_jax.commands.convert_vgg --arch=vgg19
--torch_weights=vgg19-dcbb9e9d.pth --out=~/.cache/cnngen_jax/vgg19.npz`. Fine-tune from a trained
MSRResNet, as BasicSR does:

    python -m cnngen_jax.main --config=configs/srresnet.py --workdir=runs/srresnet
    python -m cnngen_jax.main --config=configs/srgan.py --workdir=runs/srgan \
        --config.init_from=runs/srresnet

Presets (`--config=configs/srgan.py:NAME`):

- `photos` (default): 64x64 HR crops of the embedded photographs, batch 8, 300 steps.
- `div2k`: BasicSR's recipe: HR crops of 128 (the discriminator's input size), batch 16,
  400k iterations, learning rates halved at 50k, 100k, 200k and 300k (here: a cosine decay).
"""

import ml_collections

from cnngen_jax.configs import common, srresnet


def adversarial(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """An MSRResNet recipe turned into BasicSR's MSRGAN fine-tuning."""
    config.pixel_weight = 1e-2
    config.perceptual_weight = 1.0
    config.perceptual_layers = ml_collections.ConfigDict({"conv5_4": 1.0})
    config.perceptual_criterion = "l1"
    config.vgg = "vgg19"
    config.adversarial_weight = 5e-3
    config.gan_loss = "ns"  # BasicSR's 'vanilla' GAN loss
    config.discriminator.name = "vgg_style"
    config.discriminator.width = 64
    config.optimizer.learning_rate = 1e-4
    config.optimizer.d_learning_rate = 1e-4
    return config


def photos() -> ml_collections.ConfigDict:
    config = adversarial(srresnet.photos())
    config.num_train_steps = 300
    config.evals.restoration.every_steps = 150
    return config


def div2k() -> ml_collections.ConfigDict:
    config = adversarial(srresnet.div2k())
    config.num_train_steps = 400_000
    return config


PRESETS = {"photos": photos, "div2k": div2k}


def get_config(preset: str | None = None) -> ml_collections.ConfigDict:
    return common.preset(preset, PRESETS)
