"""Settings every experiment shares, declared once: each config file starts from `base()` (the
trainer's settings) or `gan()` (those plus the GAN task's), overrides what differs, and is then
locked by the command line, so a misspelt override is an error."""

import ml_collections


def base(task: str) -> ml_collections.ConfigDict:
    """The trainer's settings, with the embedded digits at 32x32."""
    config = ml_collections.ConfigDict()
    config.task = task
    config.seed = 0

    # Data: a name from cnngen_jax.data.DATASETS; '' data_dir means TFDS's default directory.
    config.dataset = "digits"
    config.data_dir = ""
    config.image_size = 32
    config.input_threads = 2
    config.input_prefetch = 4
    # Where the training split lives (cnngen_jax.data.feed): 'device' holds it, decoded once at
    # image_size (cached next to the data), in every accelerator's memory and gathers each batch
    # inside the compiled step; 'host' feeds batches from the input pipeline; 'auto' is 'device'
    # when the split fits a quarter of a device's memory. The batches are the same either way.
    config.data_placement = "auto"
    # Train steps per call of the compiled program (one lax.scan): more keeps a small model from
    # waiting on Python; the logging, sampling, checkpoint and evaluation periods and
    # num_train_steps must be multiples of it.
    config.steps_per_dispatch = 1

    config.batch_size = 64  # global, over all devices and processes
    # Seeds seed .. seed + num_seeds - 1 trained side by side in one compiled step (jax.vmap),
    # on the same batches: metrics per seed and as mean/std, grids and checkpoints per seed.
    config.num_seeds = 1
    config.num_train_steps = 1000

    config.log_every_steps = 50
    config.sample_every_steps = 100
    config.num_sample_images = 64
    config.checkpoint_every_steps = 200
    config.max_checkpoints_to_keep = 3

    # Start a new run from another run's weights: a workdir (its latest checkpoint) or one step
    # of it (WORKDIR/checkpoints/STEP). Arrays whose name and shape match are restored, the
    # rest initialised fresh; optimizer states too with init_from_optimizer. The step starts
    # at 0, and once this run has checkpoints of its own, it resumes from those.
    config.init_from = ""
    config.init_from_optimizer = False

    # Held-out evaluation (cnngen_jax.evaluators), by name: each entry's `type` is a registered
    # evaluator, run by the trainer every `every_steps` (0: only by `python -m
    # cnngen_jax.commands.evaluate`, which runs every entry), its other keys are its settings.
    config.evals = ml_collections.ConfigDict()

    # 'bfloat16' computes convolutions in bf16 (GPU/TPU); parameters, optimizer states,
    # BatchNorm statistics and losses stay float32.
    config.compute_dtype = "float32"
    # PRNG for parameter initialisation only: 'rbg' compiles ~3x faster than 'threefry2x32'.
    config.init_prng_impl = "rbg"
    # Persistent XLA compilation cache, so a second start does not recompile ('' disables).
    config.compilation_cache_dir = "~/.cache/cnngen_jax/xla"
    return config


# The settings of each evaluator type, in the functions below: a config adds the ones its model
# supports under names of its own (`config.evals.NAME = common.sample_quality(...)`).


def sample_quality(every_steps: int = 0, num_samples: int = 2000) -> ml_collections.ConfigDict:
    """FID/KID/precision-recall of `num_samples` generated images against the held-out split,
    and the conditional metrics of class-conditional models. 'domain' features come from a small
    classifier the project trains on the dataset's labels (offline; not comparable with
    Inception FID); 'inception' needs converted weights (python -m
    cnngen_jax.commands.convert_inception) at inception_weights. batch_size 0: the run's."""
    return ml_collections.ConfigDict(
        {
            "type": "sample_quality",
            "every_steps": every_steps,
            "feature_net": "domain",
            "num_samples": num_samples,
            "inception_weights": "",
            "batch_size": 0,
            "labels": (),  # conditional models: the classes evaluated (empty: all)
            "cache_dir": "~/.cache/cnngen_jax/eval",  # domain classifier, reference statistics
        }
    )


def elbo(every_steps: int, iw_samples: int = 32) -> ml_collections.ConfigDict:
    """The held-out negative ELBO and importance-weighted bound (k = iw_samples; 1 gives the
    ELBO), in nats per image and bits per dimension."""
    return ml_collections.ConfigDict(
        {"type": "elbo", "every_steps": every_steps, "iw_samples": iw_samples}
    )


def restoration_quality(every_steps: int, num_images: int = 100) -> ml_collections.ConfigDict:
    """Whole held-out photographs (the first num_images; 0: the whole split) restored and
    scored by the published protocols beside the classical baseline."""
    return ml_collections.ConfigDict(
        {"type": "restoration", "every_steps": every_steps, "num_images": num_images}
    )


def style_losses(every_steps: int, num_images: int = 100) -> ml_collections.ConfigDict:
    """Held-out content and style losses on image_size centre crops of the first num_images
    held-out images (0: all): comparable to the training losses."""
    return ml_collections.ConfigDict(
        {"type": "style_losses", "every_steps": every_steps, "num_images": num_images}
    )


def gan() -> ml_collections.ConfigDict:
    """The trainer's settings and the GAN task's, with the DCGAN paper's choices as defaults."""
    config = base("gan")

    # Objective (cnngen_jax.losses): 'ns' (non-saturating), 'minimax', 'hinge', 'wasserstein',
    # 'ls'; penalties by weight (0: off): the WGAN-GP gradient penalty and R1 on real data
    # (the term is r1_weight / 2 * E|grad D(x)|^2, as Mescheder et al.'s gamma).
    config.loss = "ns"
    config.gp_weight = 0.0
    config.r1_weight = 0.0
    config.n_critic = 1  # discriminator updates per generator update
    # FreezeD (Mo et al. 2020), for fine-tuning with init_from: D's first N feature blocks keep
    # their weights (0: none frozen).
    config.freeze_d_blocks = 0
    # ACGAN's auxiliary classification losses (real images in D's loss, fakes in G's) are
    # weighted by class_loss_weight; used with model.conditioning 'acgan' only.
    config.class_loss_weight = 1.0

    config.model = ml_collections.ConfigDict()
    config.model.name = "dcgan"
    config.model.latent_dim = 100
    config.model.g_width = 64
    config.model.d_width = 64
    config.model.spectral_norm = False  # in D, for the models that have it
    # Class conditioning on the dataset's labels: 'none'; 'projection' (Miyato & Koyama 2018)
    # or 'acgan' (an auxiliary classifier in D); either also conditions G's BatchNorm.
    config.model.conditioning = "none"

    config.optimizer = ml_collections.ConfigDict()
    config.optimizer.g_learning_rate = 2e-4
    config.optimizer.d_learning_rate = 2e-4
    config.optimizer.b1 = 0.5
    config.optimizer.b2 = 0.999
    config.optimizer.schedule = "constant"  # or 'linear': decay to 0 at num_train_steps

    # Exponential moving average of the generator's weights, used for samples and evaluation
    # (0: none, the paper's DCGAN; 0.999 is common for its descendants).
    config.ema_decay = 0.0
    config.evals.sample_quality = sample_quality()

    return config


def restoration(degradation: str) -> ml_collections.ConfigDict:
    """The trainer's settings and the restoration task's: random crops of the embedded
    photographs, an L1 pixel loss, Adam(2e-4, 0.9, 0.99) as BasicSR trains its restorers."""
    config = base("restoration")
    config.dataset = "photos"
    config.image_size = 96  # the side of the clean (HR) crops trained on
    config.batch_size = 16
    config.num_sample_images = 4  # unused: pictures show held-out images
    config.evals.restoration = restoration_quality(every_steps=250, num_images=100)

    # The degradation applied to clean crops in every step (cnngen_jax.restoration.degradations):
    # 'bicubic' (super-resolution by `scale`: 2, 3 or 4) or 'inpainting' (holes of `masks` kind:
    # 'box', 'brush' (DeepFill v2's free-form strokes) or 'mixed').
    config.degradation = degradation
    config.scale = 4
    config.masks = "mixed"

    # Loss: pixel_weight * mean pixel_loss ('l1' or 'l2') over the image, plus (inpainting)
    # hole_weight * its mean over the holes, plus perceptual_weight * the distance of VGG features
    # (perceptual_layers: layer -> weight, with perceptual_criterion 'l1' or 'l2'; the converted
    # weights of vgg at vgg_weights, '' for ~/.cache/cnngen_jax/{vgg}.npz), plus
    # adversarial_weight * a GAN generator loss (gan_loss, one of cnngen_jax.losses) against the
    # discriminator.
    config.pixel_loss = "l1"
    config.pixel_weight = 1.0
    config.hole_weight = 0.0
    config.perceptual_weight = 0.0
    config.perceptual_layers = ml_collections.ConfigDict({"conv5_4": 1.0})
    config.perceptual_criterion = "l1"
    config.vgg = "vgg19"
    config.vgg_weights = ""
    config.adversarial_weight = 0.0
    config.gan_loss = "ns"
    config.discriminator = ml_collections.ConfigDict()
    config.discriminator.name = "vgg_style"
    config.discriminator.width = 64
    config.discriminator.spectral_norm = False

    config.model = ml_collections.ConfigDict()
    config.optimizer = ml_collections.ConfigDict()
    config.optimizer.learning_rate = 2e-4
    config.optimizer.d_learning_rate = 2e-4
    config.optimizer.b1 = 0.9
    config.optimizer.b2 = 0.99
    config.optimizer.schedule = "constant"  # or 'linear', 'cosine': decay to 0 at the end
    return config


def catalog_restoration_run(
    config: ml_collections.ConfigDict,
    dataset: str,
    image_size: int,
    batch_size: int,
    num_train_steps: int,
    eval_every_steps: int,
) -> ml_collections.ConfigDict:
    """A restoration recipe on a catalog dataset: its crop size, batch and length, a cosine
    decay of the learning rate, pictures and checkpoints every 5000 steps."""
    config.dataset = dataset
    config.image_size = image_size
    config.batch_size = batch_size
    config.optimizer.schedule = "cosine"
    config.num_train_steps = num_train_steps
    config.sample_every_steps = config.checkpoint_every_steps = 5000
    config.evals.restoration.every_steps = eval_every_steps
    return config


def published_cifar10_run(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The run length of the published CIFAR-10 recipes: batch 64, 100k generator updates."""
    config.dataset = "cifar10"
    config.batch_size = 64
    config.num_train_steps = 100_000
    config.sample_every_steps = 1000
    config.checkpoint_every_steps = 5000
    config.evals.sample_quality.num_samples = 10_000
    return config


def digits_run(
    config: ml_collections.ConfigDict, width: int, n_critic: int, num_train_steps: int = 1000
) -> ml_collections.ConfigDict:
    """A recipe shrunk to train on the embedded digits in minutes on 2 CPU cores: networks of
    `width`, `n_critic` critic updates, `num_train_steps` generator updates."""
    config.dataset = "digits"
    config.model.g_width = config.model.d_width = width
    config.n_critic = n_critic
    config.num_train_steps = num_train_steps
    config.sample_every_steps = 100
    config.checkpoint_every_steps = 200
    config.evals.sample_quality.num_samples = 2000
    return config


def preset(name: str | None, presets: dict) -> ml_collections.ConfigDict:
    """The config built by `presets[name]` (`--config=FILE:NAME`; no name: the first one)."""
    if not name:
        name = next(iter(presets))
    if name not in presets:
        raise ValueError(
            f"unknown preset {name!r} in --config=FILE:PRESET; choose one of: {', '.join(presets)}"
        )
    return presets[name]()
