"""A trained image-to-image model (any `capabilities.ImageToImage`: super-resolution,
inpainting, style transfer) applied to one's own image: what `python -m
cnngen_jax.commands.restore` and `python -m cnngen_jax.commands.stylize` do, and the function
for notebooks.

    run = inference.load_run("runs/srresnet")
    bigger = transform_image(run, image_array(read_image("photo.png", "photo"), run.task.channels))

The image may have any size of at least the model's `minimum_input_side`. A super-resolution
model makes it `scale` times larger, in N x N tiles with `tile=N` (overlapping, so their seams
are not seen) where a whole image would not fit in memory; tiles are refused for a model that is
not `tileable` (inpainting and style transfer see whole images). An inpainting model
(`needs_mask`) takes a mask of the same size, true (white, in a file:
`images.read_mask`) where pixels are missing.
Only the workdir is read (config.json and a checkpoint), never the training data; a file is
written last, only on success, so a failure leaves an existing one as it was.
"""

import jax
import jax.numpy as jnp
import numpy as np

from cnngen_jax import inference
from cnngen_jax.capabilities import ImageToImage, require
from cnngen_jax.errors import UserError
from cnngen_jax.images import image_array, output_format, read_image, read_mask, save_image
from cnngen_jax.pixels import to_8bit, to_float
from cnngen_jax.restoration.tiling import tiled

RESTORE = "`python -m cnngen_jax.commands.restore`"  # named in the messages of a wrong run
STYLIZE = "`python -m cnngen_jax.commands.stylize`"


def _holes(task: ImageToImage, image: np.ndarray, mask: np.ndarray | None) -> jax.Array | None:
    """The mask as the model takes it, (1, H, W, 1) float, 1 = missing; None for a model that
    takes none. A UserError for a missing, misshapen or unwanted mask."""
    if not task.needs_mask:
        if mask is not None:
            raise UserError(f"--mask is for inpainting models; this run is {task.description}")
        return None
    if mask is None:
        raise UserError("an inpainting model needs --mask (white = missing pixels)")
    if mask.shape[:2] != image.shape[:2]:
        raise UserError(
            f"--mask is {mask.shape[0]}x{mask.shape[1]} pixels and --input "
            f"{image.shape[0]}x{image.shape[1]}; they must be the same size"
        )
    return jnp.asarray(mask, jnp.float32).reshape(1, *mask.shape[:2], 1)


def transform_image(
    run: inference.LoadedRun,
    image: np.ndarray,
    mask: np.ndarray | None = None,
    tile: int = 0,
    user: str = "`transforming.transform_image`",
) -> np.ndarray:
    """`image` (H, W, C) uint8 transformed by the run's model, as uint8: `scale` times larger
    (in tiles of `tile` input pixels, if given), in the learnt style, or with the pixels where
    `mask` (H, W) is true filled in. A UserError naming `user` unless the run is an
    `ImageToImage` model."""
    task = require(run.task, ImageToImage, user)
    if image.ndim != 3 or image.shape[-1] != task.channels:
        raise UserError(
            f"the model takes (height, width, {task.channels}) images, the input has shape "
            f"{image.shape}"
        )
    if image.dtype != np.uint8:
        raise UserError(f"the input must be uint8 pixels (0..255), got {image.dtype}")
    smallest = task.minimum_input_side
    if min(image.shape[:2]) < smallest:
        raise UserError(
            f"the input is {image.shape[0]}x{image.shape[1]} pixels; this model needs at least "
            f"{smallest}x{smallest}"
        )
    holes = _holes(task, image, mask)
    if tile < 0:
        raise UserError(f"--tile={tile} must be 0 (whole image) or a tile side in pixels")
    if tile and not task.tileable:
        raise UserError(f"--tile is for super-resolution; {task.description} sees whole images")
    inputs = jnp.asarray(to_float(image[None]))
    transform = inference.compiled(task.transform)
    if holes is not None:
        result = transform(run.state, inputs, holes)
    elif tile:
        result = tiled(lambda x: transform(run.state, x), inputs, tile, task.scale)
    else:
        result = transform(run.state, inputs)
    return np.asarray(to_8bit(result)[0], np.uint8)


def transform_file(
    workdir: str,
    input_path: str,
    output_path: str,
    mask_path: str | None = None,
    step: int | None = None,
    scale: int | None = None,
    tile: int = 0,
    user: str = RESTORE,
) -> tuple[int, int]:
    """Transforms `input_path` by `workdir`'s model into `output_path` (written last, only on
    success), checking the model's `scale` against `scale` if given; returns the output's
    (height, width). Every mistake is a UserError, naming `user` for a run of another kind."""
    if tile < 0:
        raise UserError(f"--tile={tile} must be 0 (whole image) or a tile side in pixels")
    image_format = output_format(output_path)
    image = read_image(input_path, "--input")  # unreadable files fail before the model loads
    mask = None if mask_path is None else read_mask(mask_path)
    run = inference.load_run(workdir, step)
    task = require(run.task, ImageToImage, user)
    if scale is not None and scale != task.scale:
        raise UserError(
            f"--scale={scale}, but the model in {workdir} was trained to upscale x{task.scale}"
        )
    pixels = image_array(image, task.channels, f"--input={input_path}")
    result = transform_image(run, pixels, mask, tile, user)
    save_image(result, output_path, image_format)
    return result.shape[0], result.shape[1]
