"""The batched feature pass: exact statistics, kept outputs, one compilation."""

import jax.numpy as jnp
import numpy as np
import pytest

from cnngen_jax.metrics import extract_features


@pytest.mark.parametrize("sizes", [(6, 6, 13, 2), (8, 8, 19, 4)])  # 8: split over 8 devices
def test_statistics_and_kept_outputs_equal_a_single_numpy_pass(sizes):
    traces = []

    def apply_fn(variables, images):
        traces.append(images.shape)
        pixels = images.reshape(images.shape[0], -1).astype(jnp.float32)
        return {"pool": pixels[:, :5] * variables["scale"], "logits": pixels[:, 5:8]}

    rng = np.random.default_rng(0)
    batches = [rng.integers(0, 256, (n, 4, 4, 3), dtype=np.uint8) for n in sizes]
    summary = extract_features(apply_fn, {"scale": 0.5}, batches, keep=("logits",))

    pixels = np.concatenate(batches).reshape(sum(sizes), -1).astype(np.float64)
    assert summary.count == sum(sizes)
    np.testing.assert_allclose(summary.stats["pool"].mean, pixels[:, :5].mean(0) * 0.5, rtol=1e-12)
    np.testing.assert_allclose(
        summary.stats["pool"].cov, np.cov(pixels[:, :5] * 0.5, rowvar=False), rtol=1e-10
    )
    np.testing.assert_array_equal(summary.kept["logits"], pixels[:, 5:8])
    assert "pool" not in summary.kept and "logits" not in summary.stats
    assert traces == [(sizes[0], 4, 4, 3)], "uneven batches must be re-cut to one compiled shape"


def test_too_few_images_for_a_covariance_is_an_error():
    with pytest.raises(ValueError, match="at least 2"):
        extract_features(lambda v, x: {"pool": x.reshape(len(x), -1)}, {}, [np.zeros((1, 2, 2, 3))])
