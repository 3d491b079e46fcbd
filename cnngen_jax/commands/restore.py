"""Apply a trained restoration model to one's own image: super-resolve it, or fill its holes.

    python -m cnngen_jax.commands.restore --workdir=runs/srresnet --input=photo.png \\
        --output=photo_x4.png [--scale=4] [--tile=N] [--step=N]
    python -m cnngen_jax.commands.restore --workdir=runs/inpainting --input=photo.png \\
        --mask=holes.png --output=filled.png

The image may have any size; it is converted to the model's channels (greyscale or colour) and,
with `--tile=N`, super-resolved in N x N tiles (overlapping, so their seams are not seen) where
a whole image would not fit in memory. The mask is an image of the same size, white where
pixels are missing (or transparent, in a mask with transparency; or 1, in a mask of 0s and
1s). An image is turned upright by its EXIF orientation; one with transparent pixels is
refused. Only the workdir is read, never the training data; nothing is written unless the
restoration succeeds. The library behind it: `cnngen_jax.transforming`.
"""

from absl import app, flags

from cnngen_jax import cli, transforming

_WORKDIR = flags.DEFINE_string("workdir", None, "The training run (holds config.json).")
_INPUT = flags.DEFINE_string("input", None, "The image to restore (PNG, JPEG, ...).")
_OUTPUT = flags.DEFINE_string("output", None, "Where to write the result (PNG recommended).")
_MASK = flags.DEFINE_string(
    "mask",
    None,
    "Inpainting: an image of the same size, white = missing; in a mask with transparency, "
    "transparent = missing; in a mask of 0s and 1s, 1 = missing.",
)
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest).")
_SCALE = flags.DEFINE_integer("scale", None, "Super-resolution: the factor expected (checked).")
_TILE = flags.DEFINE_integer(
    "tile", 0, "Super-resolve in tiles of this many input pixels (0: whole)."
)
flags.mark_flags_as_required(["workdir", "input", "output"])


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    with cli.reported_errors():
        height, width = transforming.transform_file(
            _WORKDIR.value,
            _INPUT.value,
            _OUTPUT.value,
            _MASK.value,
            _STEP.value,
            _SCALE.value,
            _TILE.value,
            user=transforming.RESTORE,
        )
    print(f"wrote {_OUTPUT.value} ({width}x{height})", flush=True)


if __name__ == "__main__":
    app.run(main, flags_parser=cli.parse_flags)
