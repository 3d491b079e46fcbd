"""Apply a trained style-transfer model to one's own image.

    python -m cnngen_jax.commands.stylize --workdir=runs/style --input=photo.jpg \\
        --output=styled.png [--step=N]

The image may have any size: the network is fully convolutional, and sides that are not a
multiple of 4 are padded by reflection and cropped back, so the output has the input's size.
It is converted to the model's channels (greyscale or colour). The whole image is stylised at
once (tiles would each get their own instance-norm statistics and show seams). Only the workdir
is read, never the training data, the VGG weights or the style image; the output is written
last, only on success, so a failure leaves an existing file as it was. The library behind it,
shared with `restore`: `cnngen_jax.transforming`.
"""

from absl import app, flags

from cnngen_jax import cli, transforming

_WORKDIR = flags.DEFINE_string("workdir", None, "The training run (holds config.json).")
_INPUT = flags.DEFINE_string("input", None, "The image to stylise (PNG, JPEG, ...).")
_OUTPUT = flags.DEFINE_string("output", None, "Where to write the result (PNG recommended).")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest).")
flags.mark_flags_as_required(["workdir", "input", "output"])


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    with cli.reported_errors():
        height, width = transforming.transform_file(
            _WORKDIR.value,
            _INPUT.value,
            _OUTPUT.value,
            step=_STEP.value,
            user=transforming.STYLIZE,
        )
    print(f"wrote {_OUTPUT.value} ({width}x{height})", flush=True)


if __name__ == "__main__":
    app.run(main, flags_parser=cli.parse_flags)
