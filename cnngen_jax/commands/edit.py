"""Edit real images through a trained GAN or VAE: project them into its latent space, then walk
between them and add attribute directions there.

    python -m cnngen_jax.commands.edit --workdir=runs/dcgan --input=a.png,b.png --out=edits/ab
        [--labels=3,5] [--steps=300] [--restarts=4] [--learning_rate=0.05] [--seed=0]
        [--feature_weight=0 --vgg_weights=vgg19.npz] [--interpolation_steps=8]
        [--attribute_a=DIR_OR_LIST --attribute_b=DIR_OR_LIST [--attribute_labels=A,B]]
        [--strengths=0,0.5,1,1.5,2] [--step=N]

A GAN's latents are found by inversion (the --steps, --restarts, --learning_rate and
--feature_weight settings); a VAE's are its encoder's posterior means. Writes into `--out`
(created; it must not hold files already), only once everything has succeeded:
`projection.png`, `latents.npy`, `interpolation.png`, with `--attribute_a` and `--attribute_b`
(two groups of images, each a directory or a comma list) `arithmetic.png` and `direction.npy`,
and `report.json`. What each holds: `cnngen_jax.editing`. Inputs must already have the model's
size and channel count; a conditional model needs the class of every input (`--labels`) and of
both groups (`--attribute_labels`).
"""

from absl import app, flags

from cnngen_jax import cli, editing, inversion

_DEFAULTS = inversion.DEFAULTS
_WORKDIR = flags.DEFINE_string("workdir", None, "The training run (holds config.json).")
_INPUT = flags.DEFINE_list("input", None, "The images to edit, e.g. a.png,b.png.")
_OUT = flags.DEFINE_string("out", None, "A new (or empty) directory for the results.")
_LABELS = flags.DEFINE_list("labels", None, "Conditional models: each input's class.")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest).")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the inversion's random starts.")
_STEPS = flags.DEFINE_integer("steps", _DEFAULTS.steps, "GANs: Adam steps of inversion.")
_RESTARTS = flags.DEFINE_integer(
    "restarts", _DEFAULTS.restarts, "GANs: random starts per image (the best is kept)."
)
_LEARNING_RATE = flags.DEFINE_float(
    "learning_rate", _DEFAULTS.learning_rate, "GANs: Adam's learning rate on the latents."
)
_FEATURE_WEIGHT = flags.DEFINE_float(
    "feature_weight", 0.0, "GANs: weight of a VGG19 relu2_2 feature loss, e.g. 0.01 (0: off)."
)
_VGG_WEIGHTS = flags.DEFINE_string(
    "vgg_weights",
    editing.DEFAULT_VGG_WEIGHTS,
    "Converted VGG19 weights (`python -m cnngen_jax.commands.convert_vgg`), for --feature_weight.",
)
_INTERPOLATION_STEPS = flags.DEFINE_integer(
    "interpolation_steps", 8, "Images per interpolation row (0: none)."
)
_ATTRIBUTE_A = flags.DEFINE_list(
    "attribute_a", None, "Images without the attribute: a directory or a comma list."
)
_ATTRIBUTE_B = flags.DEFINE_list(
    "attribute_b", None, "Images with the attribute: a directory or a comma list."
)
_ATTRIBUTE_LABELS = flags.DEFINE_list(
    "attribute_labels", None, "Conditional models: the classes of groups a and b."
)
_STRENGTHS = flags.DEFINE_list(
    "strengths", [str(s) for s in editing.STRENGTHS], "Multiples of the direction to add."
)
flags.mark_flags_as_required(["workdir", "input", "out"])


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    with cli.reported_errors():
        settings = inversion.Settings(
            steps=_STEPS.value,
            restarts=_RESTARTS.value,
            learning_rate=_LEARNING_RATE.value,
            feature_weight=_FEATURE_WEIGHT.value,
        )
        written, report = editing.edit(
            _WORKDIR.value,
            _INPUT.value,
            _OUT.value,
            labels=cli.class_numbers(_LABELS.value),
            step=_STEP.value,
            seed=_SEED.value,
            settings=settings,
            attribute_a=_ATTRIBUTE_A.value,
            attribute_b=_ATTRIBUTE_B.value,
            attribute_labels=cli.class_numbers(_ATTRIBUTE_LABELS.value, "--attribute_labels"),
            strengths=tuple(cli.numbers(_STRENGTHS.value, "--strengths")),
            interpolation_steps=_INTERPOLATION_STEPS.value,
            vgg_weights=_VGG_WEIGHTS.value,
        )
    for entry in report["inputs"]:
        print(f"{entry['path']}: MSE {entry['mse']:.5f}, PSNR {entry['psnr']:.2f} dB")
    print("\n".join(f"wrote {path}" for path in written), flush=True)


if __name__ == "__main__":
    app.run(main, flags_parser=cli.parse_flags)
