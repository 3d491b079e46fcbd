"""PSNR and SSIM for super-resolution / inpainting, matching scikit-image, batched and jit-able.

Images are NHWC floats in [0, data_range]; one score per image comes back. Two protocol options
of the SR literature: `channel='y'` scores the luma of ITU-R BT.601 as MATLAB's `rgb2ycbcr`
computes it (Y = 16 + 65.481 R + 128.553 G + 24.966 B for RGB in [0, 1], on the 0-255 scale),
and `crop` drops that many pixels at every border first (usually the scale factor).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

_LUMA = np.array([65.481, 128.553, 24.966]) / 255.0
_LUMA_OFFSET = 16.0 / 255.0
# structural_similarity(gaussian_weights=True, sigma=1.5): an 11-tap Gaussian truncated at 3.5
# sigma, normalised like scipy.ndimage.gaussian_filter; K1, K2 of Wang et al. (2004).
_SIGMA = 1.5
_RADIUS = int(3.5 * _SIGMA + 0.5)
_K1, _K2 = 0.01, 0.03


def _gaussian_taps() -> np.ndarray:
    x = np.arange(-_RADIUS, _RADIUS + 1, dtype=np.float64)
    taps = np.exp(-0.5 * (x / _SIGMA) ** 2)
    return taps / taps.sum()


def _prepare(images: jax.Array, data_range: float, channel: str, crop: int) -> jax.Array:
    """Float NHWC, optionally reduced to BT.601 luma (same units as the input) and cropped."""
    if images.ndim != 4:
        raise ValueError(f"expected NHWC images, got shape {images.shape}")
    images = images.astype(jnp.promote_types(images.dtype, jnp.float32))
    if channel == "y":
        if images.shape[-1] != 3:
            raise ValueError(f"channel='y' needs RGB images, got {images.shape[-1]} channels")
        luma = jnp.asarray(_LUMA, images.dtype)
        images = (images @ luma + _LUMA_OFFSET * data_range)[..., None]
    elif channel != "rgb":
        raise ValueError(f"channel must be 'rgb' or 'y', got {channel!r}")
    if crop < 0 or 2 * crop >= min(images.shape[1:3]):
        raise ValueError(
            f"crop={crop} leaves nothing of {images.shape[1]}x{images.shape[2]} images"
        )
    return images[:, crop : images.shape[1] - crop, crop : images.shape[2] - crop]


@functools.partial(jax.jit, static_argnames=("channel", "crop"))
def psnr(
    images: jax.Array, references: jax.Array, data_range: float, channel: str = "rgb", crop: int = 0
) -> jax.Array:
    """Per-image peak signal-to-noise ratio in dB, as skimage's `peak_signal_noise_ratio`."""
    x = _prepare(images, data_range, channel, crop)
    y = _prepare(references, data_range, channel, crop)
    mse = jnp.mean((x - y) ** 2, axis=(1, 2, 3))
    return 10.0 * jnp.log10(data_range**2 / mse)


def _gaussian_filter_valid(maps: jax.Array) -> jax.Array:
    """Separable Gaussian filter of every channel, keeping only windows fully inside the image.

    skimage filters with reflected borders and then discards a border of `_RADIUS` pixels, whose
    windows are exactly the ones that touched the reflection; so a 'VALID' filter is the same.
    """
    taps = jnp.asarray(_gaussian_taps(), maps.dtype)
    channels = maps.shape[-1]
    for kernel_shape in ((taps.size, 1), (1, taps.size)):
        kernel = jnp.broadcast_to(taps.reshape(*kernel_shape, 1, 1), (*kernel_shape, 1, channels))
        maps = jax.lax.conv_general_dilated(
            maps,
            kernel,
            window_strides=(1, 1),
            padding="VALID",
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
            feature_group_count=channels,
            precision=jax.lax.Precision.HIGHEST,
        )
    return maps


@functools.partial(jax.jit, static_argnames=("channel", "crop"))
def ssim(
    images: jax.Array, references: jax.Array, data_range: float, channel: str = "rgb", crop: int = 0
) -> jax.Array:
    """Per-image SSIM as skimage's `structural_similarity(gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=data_range)`, averaged over channels.

    Images must be at least 11x11 after cropping, as in skimage.
    """
    x = _prepare(images, data_range, channel, crop)
    y = _prepare(references, data_range, channel, crop)
    if min(x.shape[1:3]) < 2 * _RADIUS + 1:
        raise ValueError(f"SSIM needs images of at least 11x11 pixels, got {x.shape[1:3]}")
    moments = _gaussian_filter_valid(jnp.concatenate([x, y, x * x, y * y, x * y], axis=-1))
    mu_x, mu_y, mu_xx, mu_yy, mu_xy = jnp.split(moments, 5, axis=-1)
    var_x, var_y = mu_xx - mu_x * mu_x, mu_yy - mu_y * mu_y
    cov_xy = mu_xy - mu_x * mu_y
    c1, c2 = (_K1 * data_range) ** 2, (_K2 * data_range) ** 2
    numerator = (2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)
    denominator = (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    return jnp.mean(numerator / denominator, axis=(1, 2, 3))


# Every PSNR's cap, in dB: above any finite PSNR of 8-bit images of fewer than 153,788 values
# (10 log10(255^2 N): 89 dB for a 64x64 RGB tile), so in practice it caps only exact copies.
MAX_PSNR = 100.0


def capped_psnr(
    images: jax.Array, references: jax.Array, data_range: float, channel: str = "rgb", crop: int = 0
) -> jax.Array:
    """`psnr` of each image, capped at `MAX_PSNR`: a crop of a uniform region (the retina's
    black surround) can be restored exactly, and its infinite PSNR would make every mean
    infinite."""
    return jnp.minimum(psnr(images, references, data_range, channel, crop), MAX_PSNR)
