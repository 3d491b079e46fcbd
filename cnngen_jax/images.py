"""Images in and out: grids for sample pictures (as torchvision's `make_grid`: 2-pixel padding,
row-major), PNG files, and one's own images read for the commands that take them."""

import math
import os
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

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
    """The image at `path`, decoded and turned upright by its EXIF orientation (as viewers show
    a photo), or a UserError naming `setting`: also for an image of more pixels than PIL's
    `Image.MAX_IMAGE_PIXELS`, refused from its header before anything is allocated."""
    try:
        with warnings.catch_warnings():
            # PIL only warns between the limit and twice it: refused as well, one rule.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with files.path(path, setting).open("rb") as f, Image.open(f) as image:
                image.load()
                return ImageOps.exif_transpose(image)
    except FileNotFoundError:
        raise UserError(f"{setting}={path} does not exist") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UserError(
            f"{setting}={path} claims more than {Image.MAX_IMAGE_PIXELS} pixels (PIL's "
            "Image.MAX_IMAGE_PIXELS, its guard against decompression bombs)"
        ) from None
    except (UnidentifiedImageError, OSError) as error:
        raise UserError(f"{setting}={path} is not a readable image ({error})") from None


_WIDE_GREY = ("I", "I;16", "I;16B", "I;16L", "I;16N")  # 16-bit PNGs open as one of these


def _alpha(image: Image.Image) -> np.ndarray | None:
    """The image's alpha channel as uint8 (H, W), or None for an image without one (a palette
    image's transparent colour counts as one)."""
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if "A" not in image.getbands():
        return None
    return np.asarray(image.getchannel("A"))


def _eight_bit(image: Image.Image) -> Image.Image:
    """`image` with 8-bit channels: a 16-bit greyscale image is scaled (p >> 8), where PIL's
    `convert("L")` would clip every value above 255 to white."""
    if image.mode not in _WIDE_GREY:
        return image
    wide = np.clip(np.asarray(image, np.int64), 0, 65535)
    return Image.fromarray((wide >> 8).astype(np.uint8), "L")


def image_array(image: Image.Image, channels: int, source: str = "the image") -> np.ndarray:
    """uint8 (H, W, channels): greyscale for 1 channel, RGB for 3; 16-bit greyscale scaled to 8
    bits. An alpha channel that is opaque everywhere is dropped; one with any transparent pixel
    is a UserError naming `source`, since no background is right for every picture."""
    alpha = _alpha(image)
    if alpha is not None and alpha.min() < 255:
        raise UserError(
            f"{source} has transparent pixels; the model takes opaque images: flatten it onto "
            "a background first"
        )
    converted = _eight_bit(image).convert("L" if channels == 1 else "RGB")
    return np.asarray(converted).reshape(image.height, image.width, channels)


def read_mask(path: str, setting: str = "--mask") -> np.ndarray:
    """The inpainting mask at `path` as bool (H, W), true where pixels are missing: transparent
    pixels (alpha < 128) in an image with transparency; else white ones (grey > 127), or the 1s
    of a mask of 0s and 1s (as arrays are often saved). A UserError naming `setting`."""
    image = read_image(path, setting)
    alpha = _alpha(image)
    if alpha is not None and alpha.min() < 255:
        return alpha < 128
    wide = image.mode in _WIDE_GREY  # a 16-bit mask: 0/1 or 0/65535
    values = np.asarray(image if wide else image.convert("L"))
    if values.max() == 1:
        return values == 1
    return values > (32767 if wide else 127)


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
    return image_array(image, channels, f"{setting}={path}")


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
