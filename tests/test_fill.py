"""The in-graph biharmonic fill against scikit-image's `inpaint_biharmonic` (float64, a direct
sparse solve) on fresh smooth images and the training masks, borders included."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage
from skimage.restoration import inpaint_biharmonic

from cnngen_jax.restoration import fill, masks


def smooth_images(seed: int, num: int, height: int, width: int) -> np.ndarray:
    """Low-pass filtered noise, stretched to [-1, 1] per image and channel."""
    noise = np.random.default_rng(seed).normal(size=(num, height, width, 3))
    images = ndimage.gaussian_filter(noise, sigma=(0, 3, 3, 0), mode="reflect")
    low = images.min(axis=(1, 2), keepdims=True)
    high = images.max(axis=(1, 2), keepdims=True)
    return 2 * (images - low) / (high - low) - 1


@pytest.mark.parametrize("kind", ["box", "brush"])
def test_biharmonic_matches_scikit_image(kind):
    # Odd, unequal sides: the mirrored borders are checked on all four sides.
    num, height, width = 6, 29, 37
    images = smooth_images(0, num, height, width)
    holes = np.asarray(masks.random_masks(jax.random.key(1), num, height, width, kind))
    border = np.ones((height, width), bool)
    border[2:-2, 2:-2] = False
    assert (holes[..., 0] * border).any(), "no hole reaches the border's stencil"
    expected = np.stack(
        [
            inpaint_biharmonic(image, hole[..., 0] > 0, channel_axis=-1)
            for image, hole in zip(images * (1 - holes), holes, strict=True)
        ]
    )
    blanked = jnp.asarray(images * (1 - holes), jnp.float32)
    # The default iterations converge on holes this small (within 1.4e-5 of the direct solve).
    filled = np.asarray(fill.biharmonic(blanked, jnp.asarray(holes)))
    known = holes[..., 0] == 0
    np.testing.assert_array_equal(filled[known], np.asarray(blanked)[known])
    np.testing.assert_allclose(filled, expected, atol=1e-4)


def test_biharmonic_without_known_pixels_or_holes():
    images = jnp.asarray(smooth_images(2, 2, 8, 8), jnp.float32)
    everything = jnp.ones((2, 8, 8, 1))
    np.testing.assert_array_equal(fill.biharmonic(images * 0, everything, iterations=5), 0)
    nothing = jnp.zeros((2, 8, 8, 1))
    np.testing.assert_array_equal(fill.biharmonic(images, nothing, iterations=5), images)
