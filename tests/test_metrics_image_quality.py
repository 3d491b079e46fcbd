"""PSNR/SSIM against scikit-image, image by image.

The 1e-6 comparisons run with JAX's 64-bit mode on, against skimage on float64 images, so both
sides compute in float64 and any difference is a definition mismatch, not float32 rounding
(SSIM's E[x^2] - E[x]^2 alone costs ~1e-6 relative in float32). A float32 run is checked
separately at the accuracy float32 can give.
"""

import jax
import numpy as np
import pytest
from skimage.color import rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from cnngen_jax.metrics import psnr, ssim


def _pair(seed: int, shape: tuple[int, ...], data_range: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    clean = rng.uniform(0, data_range, shape)
    noisy = np.clip(clean + rng.normal(0, 0.1 * data_range, shape), 0, data_range)
    return noisy, clean


def _skimage_scores(images, references, data_range, channel, crop):
    """Reference scores; the Y channel from skimage's own rgb2ycbcr (BT.601, MATLAB scale)."""
    psnrs, ssims = [], []
    for x, y in zip(images, references, strict=True):
        if channel == "y":
            x, y = (rgb2ycbcr(im / data_range)[..., :1] * data_range / 255 for im in (x, y))
        if crop:
            x, y = x[crop:-crop, crop:-crop], y[crop:-crop, crop:-crop]
        psnrs.append(peak_signal_noise_ratio(y, x, data_range=data_range))
        ssims.append(
            structural_similarity(
                x,
                y,
                gaussian_weights=True,
                sigma=1.5,
                use_sample_covariance=False,
                data_range=data_range,
                channel_axis=-1,
            )
        )
    return np.array(psnrs), np.array(ssims)


@pytest.mark.parametrize(
    ("data_range", "channel", "crop", "shape"),
    [
        (1.0, "rgb", 0, (3, 24, 31, 3)),
        (255.0, "rgb", 4, (2, 32, 27, 3)),
        (1.0, "y", 0, (2, 20, 20, 3)),
        (255.0, "y", 2, (2, 25, 33, 3)),
        (1.0, "rgb", 0, (2, 11, 16, 1)),
    ],
)
def test_matches_skimage_in_float64(data_range, channel, crop, shape):
    images, references = _pair(0, shape, data_range)
    want_psnr, want_ssim = _skimage_scores(images, references, data_range, channel, crop)
    with jax.enable_x64(True):
        got_psnr = psnr(images, references, data_range, channel=channel, crop=crop)
        got_ssim = ssim(images, references, data_range, channel=channel, crop=crop)
        assert got_psnr.dtype == got_ssim.dtype == np.float64
    np.testing.assert_allclose(got_psnr, want_psnr, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(got_ssim, want_ssim, rtol=1e-6, atol=1e-6)
    assert np.ptp(want_ssim) > 0  # per-image scores, not one batch average


def test_float32_is_close_to_skimage():
    images, references = _pair(1, (2, 32, 32, 3), 1.0)
    want_psnr, want_ssim = _skimage_scores(images, references, 1.0, "rgb", 0)
    x, y = images.astype(np.float32), references.astype(np.float32)
    np.testing.assert_allclose(psnr(x, y, 1.0), want_psnr, rtol=1e-5)
    np.testing.assert_allclose(ssim(x, y, 1.0), want_ssim, rtol=1e-5)


def test_identical_images_score_perfectly():
    images, _ = _pair(2, (1, 16, 16, 3), 1.0)
    assert float(ssim(images, images, 1.0)[0]) == pytest.approx(1.0, abs=1e-6)
    assert np.isinf(psnr(images, images, 1.0)[0])


def test_rejects_bad_protocol_options():
    images, references = _pair(3, (1, 16, 16, 3), 1.0)
    with pytest.raises(ValueError, match="channel"):
        psnr(images, references, 1.0, channel="ycbcr")
    with pytest.raises(ValueError, match="11x11"):
        ssim(images, references, 1.0, crop=3)
    with pytest.raises(ValueError, match="crop"):
        psnr(images, references, 1.0, crop=8)
