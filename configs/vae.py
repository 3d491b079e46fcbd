"""Convolutional VAE on the embedded handwritten digits, 32x32, Bernoulli likelihood.

    python -m cnngen_jax.main --config=configs/vae.py --workdir=runs/vae
    python -m cnngen_jax.main --config=configs/vae.py --workdir=runs/vae_celeba \
        --config.dataset=celeb_a --config.image_size=64 --config.model.likelihood=gaussian \
        --config.model.latent_dim=128 --config.num_train_steps=20000
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.task = "vae"
    config.seed = 0

    # Data: a name from cnngen_jax.data.DATASETS; '' data_dir means TFDS's default directory.
    config.dataset = "digits"
    config.data_dir = ""
    config.image_size = 32
    config.input_threads = 2
    config.input_prefetch = 4

    config.model = ml_collections.ConfigDict()
    config.model.name = "conv_vae"
    config.model.latent_dim = 16
    config.model.width = 32  # channels of the first encoder block, doubled per block
    config.model.likelihood = "bernoulli"  # or 'gaussian' (learned per-channel scale)
    config.model.gaussian_init_std = 0.1  # initial scale of the Gaussian, on [0, 1] intensities

    config.optimizer = ml_collections.ConfigDict()
    config.optimizer.learning_rate = 1e-3
    config.optimizer.b1 = 0.9
    config.optimizer.b2 = 0.999

    # Objective: NLL + beta * KL; beta ramps linearly from 0 over kl_warmup_steps (0: no ramp).
    config.beta = 1.0
    config.kl_warmup_steps = 0

    config.batch_size = 64  # global, over all devices and processes
    config.num_train_steps = 1500

    config.log_every_steps = 50
    config.sample_every_steps = 250
    config.num_sample_images = 64
    config.checkpoint_every_steps = 500
    config.max_checkpoints_to_keep = 3
    config.eval_every_steps = 500  # test-split ELBO and importance-weighted bound
    config.eval_iw_samples = 32  # k of the importance-weighted bound (1 gives the ELBO)

    # 'bfloat16' computes convolutions in bf16 (GPU/TPU); parameters, optimizer states, the
    # posterior's and the likelihood's parameters and the losses stay float32.
    config.compute_dtype = "float32"
    # PRNG for parameter initialisation only: 'rbg' compiles ~3x faster than 'threefry2x32'.
    config.init_prng_impl = "rbg"

    # Persistent XLA compilation cache, so a second start does not recompile ('' disables).
    config.compilation_cache_dir = "~/.cache/cnngen_jax/xla"
    return config
