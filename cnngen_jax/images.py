"""Images in and out: grids for sample pictures (as torchvision's `make_grid`: 2-pixel padding,
row-major), PNG files, and one's own images read for the commands that take them."""

import math
import os

import numpy as np
from PIL import Image, UnidentifiedImageError

from cnngen_jax.errors import UserError


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Images in [-1, 1] to uint8 [0, 255]."""
    return np.clip(np.round((np.asarray(images, np.float32) + 1.0) * 127.5), 0, 255).astype(
        np.uint8
    )


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


def save_png(grid: np.ndarray, path: str) -> None:
    Image.fromarray(grid).save(path)


def read_image(path: str, setting: str) -> Image.Image:
    """The image at `path`, decoded, or a UserError naming `setting`."""
    try:
        with Image.open(path) as image:
            image.load()
            return image
    except FileNotFoundError:
        raise UserError(f"{setting}={path} does not exist") from None
    except (UnidentifiedImageError, OSError) as error:
        raise UserError(f"{setting}={path} is not a readable image ({error})") from None


def pixels(image: Image.Image, channels: int) -> np.ndarray:
    """uint8 (H, W, channels): greyscale for 1 channel, RGB for 3."""
    converted = image.convert("L" if channels == 1 else "RGB")
    return np.asarray(converted).reshape(image.height, image.width, channels)


def output_format(output_path: str) -> str:
    """The PIL format `output_path`'s extension names, or a UserError naming --output: checked
    before a command does its work."""
    if not os.path.isdir(os.path.dirname(os.path.abspath(output_path))):
        raise UserError(f"--output={output_path}: its directory does not exist")
    extension = os.path.splitext(output_path)[1].lower()
    image_format = Image.registered_extensions().get(extension)
    if image_format not in Image.SAVE:
        raise UserError(f"--output={output_path}: PIL cannot write {extension!r} files; use .png")
    return image_format


def save_image(image: np.ndarray, output_path: str, image_format: str) -> None:
    """Writes `image` to a temporary file beside `output_path`, then renames it: an existing
    output is replaced whole or not at all."""
    folder, name = os.path.split(os.path.abspath(output_path))
    temporary = os.path.join(folder, f".{name}.{os.getpid()}.tmp")
    try:
        Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(
            temporary, format=image_format
        )
        os.replace(temporary, output_path)
    except (OSError, ValueError, KeyError) as error:
        raise UserError(f"cannot write --output={output_path} ({error})") from None
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
