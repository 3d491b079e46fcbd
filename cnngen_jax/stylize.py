"""Apply a trained style-transfer model to one's own image.

    python -m cnngen_jax.stylize --workdir=runs/style --input=photo.jpg --output=styled.png

The image may have any size: the network is fully convolutional, and sides that are not a
multiple of 4 are padded by reflection and cropped back, so the output has the input's size.
It is converted to the model's channels (greyscale or colour). The whole image is stylised at
once (tiles would each get their own instance-norm statistics and show seams). Only the workdir
is read (config.json and a checkpoint), never the training data, the VGG weights or the style
image; the output is written last, only on success, so a failure leaves an existing file as it
was. From a notebook:

    run = inference.load_run("runs/style")
    styled = stylize_image(run, pixels(Image.open("photo.jpg"), run.task.channels))
"""

import types

import jax.numpy as jnp
import numpy as np
from absl import app, flags

from cnngen_jax import cli, inference
from cnngen_jax.data.pipeline import to_float
from cnngen_jax.errors import UserError
from cnngen_jax.images import output_format, pixels, read_image, save_image
from cnngen_jax.restoration.degradations import to_8bit
from cnngen_jax.tasks.style import StyleTransferTask


def _flags() -> types.SimpleNamespace:
    """The command's flags, defined only when it runs as a program: the module is also a
    library, imported beside other commands that define --workdir too."""
    holders = types.SimpleNamespace(
        workdir=flags.DEFINE_string("workdir", None, "The training run (holds config.json)."),
        input=flags.DEFINE_string("input", None, "The image to stylise (PNG, JPEG, ...)."),
        output=flags.DEFINE_string("output", None, "Where to write the result (PNG recommended)."),
        step=flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest)."),
    )
    for name in ("workdir", "input", "output"):
        flags.mark_flag_as_required(name)
    return holders


def stylist(run: inference.LoadedRun) -> StyleTransferTask:
    """The run's task, or a UserError if it does not transfer a style."""
    if not isinstance(run.task, StyleTransferTask):
        raise UserError(f"the run's task is {run.config.task!r}, not a style-transfer model")
    return run.task


def stylize_image(run: inference.LoadedRun, image: np.ndarray) -> np.ndarray:
    """`image` (H, W, C) uint8 in the run's style, as uint8 of the same shape."""
    task = stylist(run)
    if image.ndim != 3 or image.shape[-1] != task.channels:
        raise UserError(
            f"the model takes (height, width, {task.channels}) images, the input has shape "
            f"{image.shape}"
        )
    if image.dtype != np.uint8:
        raise UserError(f"the input must be uint8 pixels (0..255), got {image.dtype}")
    styled = inference.compiled(task.stylize)(run.state, jnp.asarray(to_float(image[None])))
    return np.asarray(to_8bit(styled)[0], np.uint8)


def stylize_file(
    workdir: str, input_path: str, output_path: str, step: int | None = None
) -> tuple[int, int]:
    """Stylises `input_path` into `output_path` (written last, only on success); returns the
    output's (height, width)."""
    image_format = output_format(output_path)
    image = read_image(input_path, "--input")  # unreadable files fail before the model loads
    run = inference.load_run(workdir, step)
    styled = stylize_image(run, pixels(image, stylist(run).channels))
    save_image(styled, output_path, image_format)
    return styled.shape[0], styled.shape[1]


def main(argv: list[str], holders: types.SimpleNamespace) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    with cli.reported_errors():
        height, width = stylize_file(
            holders.workdir.value, holders.input.value, holders.output.value, holders.step.value
        )
    print(f"wrote {holders.output.value} ({width}x{height})", flush=True)


if __name__ == "__main__":
    command_flags = _flags()
    app.run(lambda argv: main(argv, command_flags), flags_parser=cli.parse_flags)
