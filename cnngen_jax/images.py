"""Images in and out: grids for sample pictures (as torchvision's `make_grid`: 2-pixel padding,
row-major), PNG files, and one's own images read for the commands that take them."""

import math
import os

import numpy as np
from PIL import Image, UnidentifiedImageError

from cnngen_jax import files
from cnngen_jax.errors import UserError
from cnngen_jax.pixels import to_uint8


def make_grid(images: np.ndarray, columns: int | None = None, padding: int = 2) -> np.ndarray:
    """(N, H, W, C) images in [-1, 1] -> one (rows*H', cols*W', 3) uint8 grid, row-major in
    a square layout; (R, K, H, W, C) images keep their layout: R rows of K columns."""
    if images.ndim == 5:
        columns = images.shape[1]
        images = images.reshape(-1, *images.shape[2:])
    images = to_uint8(images)
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    n, h, w, c = images.shape
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    grid = np.zeros(
        (rows * (h + padding) + padding, columns * (w + padding) + padding, c), np.uint8
    )
    for i, image in enumerate(images):
        top = (i // columns) * (h + padding) + padding
        left = (i % columns) * (w + padding) + padding
        grid[top : top + h, left : left + w] = image
    return grid


def save_png(grid: np.ndarray, path: files.PathLike) -> None:
    files.write_image(path, grid)


def read_image(path: str, setting: str) -> Image.Image:
    """The image at `path`, decoded, or a UserError naming `setting`."""
    try:
        with files.path(path, setting).open("rb") as f, Image.open(f) as image:
            image.load()
            return image
    except FileNotFoundError:
        raise UserError(f"{setting}={path} does not exist") from None
    except (UnidentifiedImageError, OSError) as error:
        raise UserError(f"{setting}={path} is not a readable image ({error})") from None


def image_array(image: Image.Image, channels: int) -> np.ndarray:
    """uint8 (H, W, channels): greyscale for 1 channel, RGB for 3."""
    converted = image.convert("L" if channels == 1 else "RGB")
    return np.asarray(converted).reshape(image.height, image.width, channels)


def image_files(values: list[str], setting: str) -> list[str]:
    """The files of a flag given as a comma list of images or as one directory of them (its
    files with an image extension, in name order)."""
    if len(values) == 1 and os.path.isdir(values[0]):
        known = Image.registered_extensions()
        names = sorted(os.listdir(values[0]))
        files = [
            os.path.join(values[0], n) for n in names if os.path.splitext(n)[1].lower() in known
        ]
        if not files:
            raise UserError(f"{setting}={values[0]} holds no image files")
        return files
    return values


def _channels(image: Image.Image) -> int:
    mode = image.palette.mode if image.mode == "P" else image.mode
    return Image.getmodebands(mode)


def _is_grey(image: Image.Image) -> bool:
    """Whether an RGB image's three channels are equal everywhere."""
    rgb = np.asarray(image.convert("RGB"))
    return bool(np.all(rgb == rgb[..., :1]))


def model_pixels(
    image: Image.Image, path: str, shape: tuple[int, int, int], setting: str
) -> np.ndarray:
    """`image` (read from `path`, given by `setting`) as uint8 (H, W, C), or a UserError unless
    it has the model's `shape`: its size and channel count, where an RGB image whose channels
    are all equal is grey. Nothing is resized."""
    size, channels = shape[0], shape[2]
    found = _channels(image)
    if found != channels and not (channels == 1 and found == 3 and _is_grey(image)):
        kinds = {1: "greyscale", 2: "greyscale with alpha", 3: "RGB", 4: "RGB with alpha"}
        raise UserError(
            f"{setting}={path} has {found} channels ({kinds.get(found, image.mode)}); the model "
            f"takes {channels}-channel ({kinds[channels]}) images"
        )
    if image.size != (size, size):
        raise UserError(
            f"{setting}={path} is {image.width}x{image.height} pixels; the model takes "
            f"{size}x{size} images (nothing is resized: resize or crop it first)"
        )
    return image_array(image, channels)


def output_format(output_path: str) -> str:
    """The PIL format `output_path`'s extension names, or a UserError naming --output: checked
    before a command does its work."""
    target = files.path(output_path, "--output")
    if not target.parent.is_dir():
        raise UserError(f"--output={output_path}: its directory does not exist")
    extension = target.suffix.lower()
    image_format = Image.registered_extensions().get(extension)
    if image_format not in Image.SAVE:
        raise UserError(f"--output={output_path}: PIL cannot write {extension!r} files; use .png")
    return image_format


def save_image(image: np.ndarray, output_path: str, image_format: str) -> None:
    """Writes `image` to a temporary file beside `output_path`, then renames it: an existing
    output is replaced whole or not at all."""
    try:
        files.write_image(
            output_path, image[..., 0] if image.shape[-1] == 1 else image, image_format
        )
    except (OSError, ValueError, KeyError) as error:
        raise UserError(f"cannot write --output={output_path} ({error})") from None
