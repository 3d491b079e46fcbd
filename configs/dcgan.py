"""DCGAN (Radford et al. 2016) on the embedded handwritten digits, 32x32.

    python -m cnngen_jax.main --config=configs/dcgan.py --workdir=runs/dcgan
    python -m cnngen_jax.main --config=configs/dcgan.py --workdir=runs/celeba \
        --config.dataset=celeb_a --config.image_size=64 --config.num_train_steps=20000
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.task = "gan"
    config.seed = 0

    # Data: a name from cnngen_jax.data.DATASETS; '' data_dir means TFDS's default directory.
    config.dataset = "digits"
    config.data_dir = ""
    config.image_size = 32
    config.input_threads = 2
    config.input_prefetch = 4

    config.model = ml_collections.ConfigDict()
    config.model.name = "dcgan"
    config.model.latent_dim = 100
    config.model.g_width = 64  # ngf of the reference
    config.model.d_width = 64  # ndf of the reference

    config.optimizer = ml_collections.ConfigDict()
    config.optimizer.g_learning_rate = 2e-4
    config.optimizer.d_learning_rate = 2e-4
    config.optimizer.b1 = 0.5
    config.optimizer.b2 = 0.999

    # Exponential moving average of the generator's weights, used for samples and evaluation
    # (0: none, the paper's DCGAN; 0.999 is common for its descendants).
    config.ema_decay = 0.0

    config.batch_size = 128  # global, over all devices and processes
    config.num_train_steps = 600  # ~3.5 minutes on 2 CPU cores; digits recognisable from ~300

    config.log_every_steps = 50
    config.sample_every_steps = 100
    config.num_sample_images = 64
    config.checkpoint_every_steps = 200
    config.max_checkpoints_to_keep = 3
    config.eval_every_steps = 0  # 0: no held-out evaluation during training

    # Evaluation (during training every eval_every_steps, and `python -m cnngen_jax.evaluate`):
    # FID/KID/precision-recall of num_samples generated images against the test split.
    # 'domain' features come from a small classifier the project trains on the dataset's labels
    # (offline; not comparable with Inception FID); 'inception' needs converted weights
    # (python -m cnngen_jax.metrics.convert_inception) at inception_weights.
    config.eval = ml_collections.ConfigDict()
    config.eval.feature_net = "domain"
    config.eval.num_samples = 2000
    config.eval.inception_weights = ""
    config.eval.cache_dir = "~/.cache/cnngen_jax/eval"  # domain classifier, reference statistics

    # 'bfloat16' computes convolutions in bf16 (GPU/TPU); parameters, optimizer states,
    # BatchNorm statistics and losses stay float32.
    config.compute_dtype = "float32"
    # PRNG for parameter initialisation only: 'rbg' compiles ~3x faster than 'threefry2x32'.
    config.init_prng_impl = "rbg"

    # Persistent XLA compilation cache, so a second start does not recompile ('' disables).
    config.compilation_cache_dir = "~/.cache/cnngen_jax/xla"
    return config
