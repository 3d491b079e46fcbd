"""Apply a trained restoration model to one's own image: super-resolve it, or fill its holes.

    python -m cnngen_jax.restore --workdir=runs/srresnet --input=photo.png --output=photo_x4.png
    python -m cnngen_jax.restore --workdir=runs/inpainting --input=photo.png \
        --mask=holes.png --output=filled.png

The image may have any size; it is converted to the model's channels (greyscale or colour) and,
with `--tile=N`, super-resolved in N x N tiles (overlapping, so their seams are not seen) where
a whole image would not fit in memory. The mask is an image of the same size, white where
pixels are missing. Only the workdir is read (config.json and a checkpoint), never the training
data; nothing is written unless the restoration succeeds. From a notebook:

    run = inference.load_run("runs/srresnet")
    bigger = restore_image(run, pixels(Image.open("photo.png"), run.task.channels))
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
from cnngen_jax.restoration.tiling import tiled
from cnngen_jax.tasks.restoration import RestorationTask


def _flags() -> types.SimpleNamespace:
    """The command's flags, defined only when it runs as a program: the module is also a
    library, imported beside other commands that define --workdir too."""
    holders = types.SimpleNamespace(
        workdir=flags.DEFINE_string("workdir", None, "The training run (holds config.json)."),
        input=flags.DEFINE_string("input", None, "The image to restore (PNG, JPEG, ...)."),
        output=flags.DEFINE_string("output", None, "Where to write the result (PNG recommended)."),
        mask=flags.DEFINE_string(
            "mask", None, "Inpainting: an image of the same size, white = missing."
        ),
        step=flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest)."),
        scale=flags.DEFINE_integer(
            "scale", None, "Super-resolution: the factor expected (checked)."
        ),
        tile=flags.DEFINE_integer(
            "tile", 0, "Super-resolve in tiles of this many input pixels (0: whole)."
        ),
    )
    for name in ("workdir", "input", "output"):
        flags.mark_flag_as_required(name)
    return holders


def restorer(run: inference.LoadedRun) -> RestorationTask:
    """The run's task, or a UserError if it does not restore images."""
    if not isinstance(run.task, RestorationTask):
        raise UserError(f"the run's task is {run.config.task!r}, not a restoration model")
    return run.task


def restore_image(
    run: inference.LoadedRun,
    image: np.ndarray,
    mask: np.ndarray | None = None,
    tile: int = 0,
) -> np.ndarray:
    """`image` (H, W, C) uint8 restored by the run's model, as uint8: `scale` times larger, or
    with the pixels where `mask` (H, W) is true filled in."""
    task = restorer(run)
    if image.shape[-1] != task.channels:
        raise UserError(
            f"the model takes {task.channels}-channel images, the input has {image.shape[-1]}"
        )
    smallest = task.minimum_input_side
    if min(image.shape[:2]) < smallest:
        raise UserError(
            f"the input is {image.shape[0]}x{image.shape[1]} pixels; this model needs at least "
            f"{smallest}x{smallest}"
        )
    inputs = jnp.asarray(to_float(image[None]))
    if task.inpainting:
        if mask is None:
            raise UserError("an inpainting model needs --mask (white = missing pixels)")
        if mask.shape[:2] != image.shape[:2]:
            raise UserError(
                f"--mask is {mask.shape[0]}x{mask.shape[1]} pixels and --input "
                f"{image.shape[0]}x{image.shape[1]}; they must be the same size"
            )
        if tile:
            raise UserError("--tile is for super-resolution; an inpainting model sees whole images")
        holes = jnp.asarray(mask, jnp.float32).reshape(1, *mask.shape[:2], 1)
        restored = inference.compiled(task.restore)(run.state, inputs, holes)
    elif mask is not None:
        raise UserError("--mask is for inpainting models; this one super-resolves")
    else:
        restore = inference.compiled(task.restore)
        if tile:
            restored = tiled(lambda x: restore(run.state, x), inputs, tile, task.scale)
        else:
            restored = restore(run.state, inputs)
    return np.asarray(to_8bit(restored)[0], np.uint8)


def restore_file(
    workdir: str,
    input_path: str,
    output_path: str,
    mask_path: str | None = None,
    step: int | None = None,
    scale: int | None = None,
    tile: int = 0,
) -> tuple[int, int]:
    """Restores `input_path` into `output_path` (written last, only on success); returns the
    output's (height, width)."""
    if tile < 0:
        raise UserError(f"--tile={tile} must be 0 (whole image) or a tile side in pixels")
    image_format = output_format(output_path)
    image = read_image(input_path, "--input")  # unreadable files fail before the model loads
    mask = None if mask_path is None else pixels(read_image(mask_path, "--mask"), 1)[..., 0] > 127
    run = inference.load_run(workdir, step)
    task = restorer(run)
    if scale is not None and scale != task.scale:
        raise UserError(
            f"--scale={scale}, but the model in {workdir} was trained to upscale x{task.scale}"
        )
    restored = restore_image(run, pixels(image, task.channels), mask, tile)
    save_image(restored, output_path, image_format)
    return restored.shape[0], restored.shape[1]


def main(argv: list[str], holders: types.SimpleNamespace) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    with cli.reported_errors():
        height, width = restore_file(
            holders.workdir.value,
            holders.input.value,
            holders.output.value,
            holders.mask.value,
            holders.step.value,
            holders.scale.value,
            holders.tile.value,
        )
    print(f"wrote {holders.output.value} ({width}x{height})", flush=True)


if __name__ == "__main__":
    command_flags = _flags()
    app.run(lambda argv: main(argv, command_flags), flags_parser=cli.parse_flags)
