"""Pixel conversions, in one place: the project's images are x = p / 127.5 - 1 in [-1, 1] for
8-bit pixels p in 0..255, on the host (NumPy, `to_float` / `to_uint8`) and inside jitted code
(`to_8bit`, `quantize`)."""

import jax
import jax.numpy as jnp
import numpy as np

PIXEL_SCALE = 127.5  # x = p / PIXEL_SCALE - 1


def to_float(images: np.ndarray) -> np.ndarray:
    """uint8 pixels to float32 in [-1, 1]."""
    floats = images.astype(np.float32)
    floats /= PIXEL_SCALE  # in place: a batch's fresh temporaries cost 10x the arithmetic
    floats -= 1.0
    return floats


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Images in [-1, 1] to uint8 [0, 255] (rounded, clipped), on the host."""
    pixels = np.round((np.asarray(images, np.float32) + 1.0) * PIXEL_SCALE)
    return np.clip(pixels, 0, 255).astype(np.uint8)


def to_8bit(images: jax.Array) -> jax.Array:
    """[-1, 1] images as the float values 0..255 of the 8-bit file they would be saved as."""
    return jnp.round((jnp.clip(images, -1.0, 1.0) + 1.0) * PIXEL_SCALE)


def quantize(images: jax.Array) -> jax.Array:
    """Images in [-1, 1] rounded to the 256 levels of an 8-bit file."""
    return to_8bit(images) / PIXEL_SCALE - 1.0
