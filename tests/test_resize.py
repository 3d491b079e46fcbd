"""MATLAB-compatible bicubic `imresize` against an independent float64 port of MATLAB's
`imresize.m` (its `contributions` and per-dimension resize), written here in MATLAB's own
1-based structure and applied by gathers, plus fixed kernel values that pin the convention."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cnngen_jax.restoration.resize import imresize, resize_matrix

SCALES = (1 / 2, 1 / 3, 1 / 4, 2, 3, 4)
# Odd and even sizes; 3x5 at 1/4 reaches several mirror periods beyond the image.
SIZES = ((17, 23), (24, 24), (9, 12), (3, 5))


def keys_cubic(x: np.ndarray) -> np.ndarray:
    """MATLAB's `cubic`: Keys' kernel with a = -0.5."""
    ax = np.abs(x)
    return (1.5 * ax**3 - 2.5 * ax**2 + 1) * (ax <= 1) + (
        -0.5 * ax**3 + 2.5 * ax**2 - 4 * ax + 2
    ) * ((ax > 1) & (ax <= 2))


def contributions(in_length: int, out_length: int, scale: float):
    """MATLAB's `contributions`: per output pixel, 1-based input indices and their weights."""
    kernel_width = 4.0
    if scale < 1:

        def h(x):
            return scale * keys_cubic(scale * x)

        kernel_width /= scale
    else:
        h = keys_cubic
    x = np.arange(1, out_length + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - kernel_width / 2)
    p = math.ceil(kernel_width) + 2
    indices = left[:, None] + np.arange(p)[None, :]
    weights = h(u[:, None] - indices)
    weights = weights / weights.sum(axis=1, keepdims=True)
    aux = np.concatenate([np.arange(1, in_length + 1), np.arange(in_length, 0, -1)])
    indices = aux[np.mod(indices.astype(np.int64) - 1, aux.size)]
    kill = ~np.any(weights != 0, axis=0)
    return weights[:, ~kill], indices[:, ~kill]


def matlab_imresize(image: np.ndarray, scale: float) -> np.ndarray:
    """One HWC image resized along H, then W (MATLAB's order for equal scales), in float64."""
    for axis in (0, 1):
        in_length = image.shape[axis]
        weights, indices = contributions(in_length, math.ceil(in_length * scale), scale)
        taps = np.moveaxis(image, axis, 0)[indices - 1]  # (out, P, other axis, C)
        image = np.moveaxis(np.einsum("op,op...->o...", weights, taps), 0, axis)
    return image


@pytest.mark.parametrize("scale", SCALES)
def test_matches_matlab_port_everywhere(scale):
    rng = np.random.default_rng(0)
    for size in SIZES:
        images = rng.uniform(-1, 1, (2, *size, 3))
        expected = np.stack([matlab_imresize(image, scale) for image in images])
        got = imresize(jnp.asarray(images, jnp.float32), scale)
        assert got.shape == (2, math.ceil(size[0] * scale), math.ceil(size[1] * scale), 3)
        np.testing.assert_allclose(np.asarray(got), expected, rtol=0, atol=1e-5)


def test_constant_image_stays_constant():
    for scale in (1 / 3, 4):
        got = imresize(jnp.full((2, 17, 23, 3), 0.7, jnp.float32), scale)
        np.testing.assert_allclose(np.asarray(got), 0.7, rtol=0, atol=1e-6)


def test_resize_matrix_rows_sum_to_one():
    for in_size, scale in ((17, 1 / 3), (9, 1 / 4), (24, 1 / 2), (5, 3), (3, 1 / 4), (10, 0.7)):
        matrix = resize_matrix(in_size, math.ceil(in_size * scale), scale)
        np.testing.assert_allclose(matrix.sum(axis=1), 1.0, rtol=0, atol=1e-12)


def test_interior_weights_are_keys_kernel():
    """Worked by hand from the kernel: K(0.25) = 0.8671875, K(0.75) = 0.2265625,
    K(1.25) = -0.0703125, K(1.75) = -0.0234375 (each side sums to 1)."""
    # Downsampling by 2: output i (0-based) is centred at 2i + 0.5, between inputs 2i and 2i + 1;
    # its 8 taps 2i - 3 ... 2i + 4 lie at distances 3.5 ... -3.5, i.e. K at +-1.75 ... +-0.25
    # after stretching, times 1/2.
    down = resize_matrix(16, 8, 0.5)[3]
    taps = np.array([-0.0234375, -0.0703125, 0.2265625, 0.8671875])
    expected = np.zeros(16)
    expected[3:11] = 0.5 * np.concatenate([taps, taps[::-1]])
    np.testing.assert_allclose(down, expected, rtol=0, atol=1e-15)
    # Upsampling by 2: output 6 is centred at 2.75; inputs 1, 2, 3, 4 at 1.75, 0.75, 0.25, 1.25.
    up = resize_matrix(8, 16, 2.0)[6]
    expected = np.zeros(8)
    expected[1:5] = [-0.0234375, 0.2265625, 0.8671875, -0.0703125]
    np.testing.assert_allclose(up, expected, rtol=0, atol=1e-15)


def test_jax_image_resize_differs_only_at_the_border():
    """Why we don't use `jax.image.resize`: same kernel and centres, but it renormalises over the
    taps inside the image instead of mirroring, so only the outputs whose 8 taps (downsampling
    by 2) cross the border, 2 rows and columns on each side, differ."""
    images = jnp.asarray(np.random.default_rng(1).uniform(-1, 1, (1, 64, 64, 1)), jnp.float32)
    ours = np.asarray(imresize(images, 0.5))[0, :, :, 0]
    theirs = jax.image.resize(
        images, (1, 32, 32, 1), "bicubic", antialias=True, precision=jax.lax.Precision.HIGHEST
    )
    difference = np.abs(ours - np.asarray(theirs)[0, :, :, 0])
    np.testing.assert_array_less(difference[2:-2, 2:-2], 1e-5)
    for border in (difference[:2], difference[-2:], difference[:, :2], difference[:, -2:]):
        assert border.max() > 1e-2


def test_gradient_is_the_transposed_resize():
    images = jnp.zeros((1, 9, 12, 1), jnp.float32)
    gradient = jax.grad(lambda x: imresize(x, 1 / 3).sum())(images)
    expected = np.outer(resize_matrix(9, 3, 1 / 3).sum(0), resize_matrix(12, 4, 1 / 3).sum(0))
    np.testing.assert_allclose(np.asarray(gradient)[0, :, :, 0], expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    ("shape", "scale"),
    [((1, 8, 8, 1), 0.0), ((1, 8, 8, 1), -2.0), ((1, 8, 8, 1), math.nan), ((1, 0, 8, 1), 2.0)],
)
def test_rejects_bad_scale_or_empty_output(shape, scale):
    with pytest.raises(ValueError, match="imresize"):
        imresize(jnp.zeros(shape), scale)
