"""Draw images from a trained generative model (GAN or VAE), from its workdir alone.

    python -m cnngen_jax.commands.sample --workdir=runs/dcgan --out=samples/dcgan
        [--num_images=64] [--seed=0] [--labels=3,5] [--step=N] [--interpolation_steps=8]
        [--export]

Writes into `--out` (created; it must not hold files already) a grid of samples (`samples.png`,
`samples.npy`), linear and spherical interpolations, a class grid for a conditional model and
`metadata.json`; with `--export`, a synthetic data set of `--num_images` images instead, as an
image folder and a TFDS dataset. What each file holds: `cnngen_jax.sampling`. A fixed `--seed`
gives the same images every time.
"""

from absl import app, flags

from cnngen_jax import cli, sampling

_WORKDIR = flags.DEFINE_string("workdir", None, "The training run (holds config.json).")
_OUT = flags.DEFINE_string("out", None, "A new (or empty) directory for the images.")
_NUM_IMAGES = flags.DEFINE_integer(
    "num_images", 64, "Samples in the grid, or images in the --export data set."
)
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the latents: the same seed, the same images.")
_LABELS = flags.DEFINE_list("labels", None, "Conditional models: classes to draw, e.g. 3,5.")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest).")
_INTERPOLATION_STEPS = flags.DEFINE_integer(
    "interpolation_steps", 8, "Images per interpolation row (0: no interpolations)."
)
_EXPORT = flags.DEFINE_boolean(
    "export", False, "Write a data set of --num_images images instead of the pictures."
)
flags.mark_flags_as_required(["workdir", "out"])


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    with cli.reported_errors():
        written = sampling.sample(
            _WORKDIR.value,
            _OUT.value,
            _NUM_IMAGES.value,
            _SEED.value,
            cli.class_numbers(_LABELS.value),
            _STEP.value,
            _INTERPOLATION_STEPS.value,
            _EXPORT.value,
        )
    print("\n".join(f"wrote {path}" for path in written), flush=True)


if __name__ == "__main__":
    app.run(main, flags_parser=cli.parse_flags)
