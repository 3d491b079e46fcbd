"""Inpainting with a U-Net: the masked image and its mask in, the completed image out (known
pixels kept), trained with L1 over the image and over the holes, on new random masks every step
(boxes and DeepFill v2's free-form brush strokes); optionally adversarial against DeepFill v2's
SN-PatchGAN with the hinge loss (`--config.adversarial_weight=0.01`, as below in `celeb_a`).
The U-Net sees a biharmonic fill of the holes, solved in the graph as scikit-image's baseline
solves it (`cnngen_jax/restoration/fill.py`), and learns a correction to it from a zero start:
at step 0 the model is that fill.

    python -m cnngen_jax.main --config=configs/inpainting.py --workdir=runs/inpainting
    python -m cnngen_jax.commands.restore --workdir=runs/inpainting --input=photo.png \
        --mask=holes.png --output=filled.png

Presets (`--config=configs/inpainting.py:NAME`):

- `photos` (default): random 64x64 crops of the embedded photographs, in minutes on 2 CPU
  cores; evaluated on the held-out photographs with fixed masks beside scikit-image's
  biharmonic inpainting.
- `places365_small`, `celeb_a`: 256 x 256 scenes (Places365's small images) and 64 x 64
  CelebA faces (the DCGAN centre crop), with the SN-PatchGAN hinge term (DeepFill v2 weighs its
  GAN loss 1 against an L1 of weight 1; here 0.01 against L1, as a safer start).
"""

import ml_collections

from cnngen_jax.configs import common


def photos() -> ml_collections.ConfigDict:
    config = common.restoration("inpainting")
    config.masks = "mixed"
    config.model.name = "unet"
    config.model.width = 32
    config.model.depth = 4
    config.image_size = 64
    # Times the mean L1 over the hole pixels (Liu et al. 2018 weigh hole : valid pixels 6 : 1,
    # both normalised by the image size; normalised by the hole's, this weighs holes more).
    config.hole_weight = 6.0
    config.discriminator.name = "patch_gan"
    config.discriminator.spectral_norm = True
    config.gan_loss = "hinge"
    config.optimizer.learning_rate = 5e-4  # 1e-3 and 2e-3 diverged within 1000 steps
    # Decayed to 0: at a constant 5e-4 the correction stayed at the fill's hole L1 (0.0385 at
    # step 1000); decayed, it learns one (0.0376 against the biharmonic baseline's 0.0386).
    config.optimizer.schedule = "cosine"
    config.num_train_steps = 1000
    config.log_every_steps = 100
    config.sample_every_steps = 500
    config.checkpoint_every_steps = 500
    config.evals.restoration.every_steps = 500
    return config


def places365_small() -> ml_collections.ConfigDict:
    config = common.catalog_restoration_run(photos(), "places365_small", 256, 16, 200_000, 10_000)
    config.model.depth = 6
    config.adversarial_weight = 0.01
    config.optimizer.learning_rate = 1e-4
    config.optimizer.d_learning_rate = 4e-4
    return config


def celeb_a() -> ml_collections.ConfigDict:
    config = places365_small()
    config.dataset = "celeb_a"
    config.image_size = 64
    config.model.depth = 4
    return config


PRESETS = {"photos": photos, "places365_small": places365_small, "celeb_a": celeb_a}


def get_config(preset: str | None = None) -> ml_collections.ConfigDict:
    return common.preset(preset, PRESETS)
