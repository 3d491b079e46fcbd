"""Feature statistics against SciPy, closed forms and point sets whose answers are known."""

import itertools

import numpy as np
import pytest
import scipy.linalg

from cnngen_jax.metrics import (
    MomentAccumulator,
    frechet_distance,
    inception_score,
    kernel_inception_distance,
    precision_recall,
)


def _random_cov(rng: np.random.Generator, dim: int, samples: int) -> np.ndarray:
    return np.cov(rng.normal(size=(samples, dim)) @ rng.normal(size=(dim, dim)), rowvar=False)


def _sqrtm_frechet(mu1, cov1, mu2, cov2) -> float:
    """pytorch-fid's formula, valid when cov1 @ cov2 has a real square root."""
    covmean = scipy.linalg.sqrtm(cov1 @ cov2)
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2 * np.trace(covmean.real))


def test_frechet_matches_scipy_sqrtm_when_well_defined():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=12), rng.normal(size=12)
    cov1, cov2 = _random_cov(rng, 12, 200), _random_cov(rng, 12, 300)
    want = _sqrtm_frechet(mu1, cov1, mu2, cov2)
    assert frechet_distance(mu1, cov1, mu2, cov2) == pytest.approx(want, rel=1e-9)
    assert frechet_distance(mu2, cov2, mu1, cov1) == pytest.approx(want, rel=1e-9)


def test_frechet_closed_form_for_commuting_gaussians():
    # Shared eigenvectors: the distance is |mu1 - mu2|^2 + sum (sqrt(a_i) - sqrt(b_i))^2.
    rng = np.random.default_rng(1)
    rotation, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    a, b = rng.uniform(0.1, 4, 6), np.array([0, 0, 1.0, 2.0, 0.5, 3.0])  # b is singular
    cov1, cov2 = rotation @ np.diag(a) @ rotation.T, rotation @ np.diag(b) @ rotation.T
    mu1, mu2 = np.arange(6.0), np.ones(6)
    want = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, cov1, mu2, cov2) == pytest.approx(want, rel=1e-10)
    assert frechet_distance(mu1, cov1, mu1, cov1) == pytest.approx(0, abs=1e-10)


def test_frechet_is_real_and_finite_with_fewer_samples_than_dimensions():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(10, 64)), rng.normal(1.0, 2.0, size=(15, 64))
    mu1, cov1, mu2, cov2 = x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False)
    got = frechet_distance(mu1, cov1, mu2, cov2)
    # torch-fidelity's estimate: real parts of the square roots of eig(cov1 @ cov2).
    eigenvalues = np.linalg.eigvals(cov1 @ cov2).astype(complex)
    trace_sqrt = np.sqrt(eigenvalues).real.sum()
    diff = mu1 - mu2
    want = diff @ diff + np.trace(cov1) + np.trace(cov2) - 2 * trace_sqrt
    assert np.isfinite(got) and isinstance(got, float)
    assert got == pytest.approx(want, rel=1e-6)
    assert frechet_distance(mu1, cov1, mu1, cov1) == pytest.approx(0, abs=1e-8)


@pytest.mark.parametrize("offset", [0.0, 1e6])
def test_moment_accumulator_matches_numpy_over_uneven_batches(offset):
    rng = np.random.default_rng(3)
    data = rng.normal(size=(103, 7)) * np.arange(1, 8) + offset
    accumulator = MomentAccumulator(7)
    for start, stop in itertools.pairwise([0, 1, 1, 40, 41, 90, 103]):
        accumulator.update(data[start:stop].astype(np.float32 if offset == 0 else np.float64))
    stats = accumulator.stats()
    reference = data.astype(np.float32).astype(np.float64) if offset == 0 else data
    assert stats.count == 103
    np.testing.assert_allclose(stats.mean, reference.mean(0), rtol=1e-12)
    np.testing.assert_allclose(stats.cov, np.cov(reference, rowvar=False), rtol=1e-9, atol=1e-9)


def test_moment_accumulator_rejects_too_few_or_misshaped_features():
    accumulator = MomentAccumulator(3)
    accumulator.update(np.ones((1, 3)))
    with pytest.raises(ValueError, match="at least 2"):
        accumulator.stats()
    with pytest.raises(ValueError, match=r"\(n, 3\)"):
        accumulator.update(np.ones((2, 4)))


def _mmd2_by_definition(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 with k(a, b) = (a.b / d + 1)^3, summed pair by pair."""

    def k(a, b):
        return (a @ b / len(a) + 1) ** 3

    m = len(x)
    pairs = [(i, j) for i in range(m) for j in range(m) if i != j]
    within = sum(k(x[i], x[j]) + k(y[i], y[j]) for i, j in pairs) / (m * (m - 1))
    cross = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / m**2
    return within - 2 * cross


def test_kid_with_full_subsets_is_the_unbiased_mmd():
    rng = np.random.default_rng(4)
    real, generated = rng.normal(size=(6, 3)), rng.normal(0.5, 1.0, size=(6, 3))
    mean, std = kernel_inception_distance(real, generated, subsets=4, subset_size=6)
    # Every subset is a permutation of the whole set, so all subsets agree.
    assert mean == pytest.approx(_mmd2_by_definition(generated, real), rel=1e-12)
    assert std == pytest.approx(0, abs=1e-12)


def test_kid_rejects_subsets_larger_than_the_sets():
    with pytest.raises(ValueError, match="subset_size 10"):
        kernel_inception_distance(np.zeros((5, 2)), np.zeros((20, 2)), subset_size=10)


def test_inception_score_of_uniform_predictions_is_one():
    mean, std = inception_score(np.zeros((40, 1008)), splits=4)
    assert mean == pytest.approx(1.0, abs=1e-12) and std == pytest.approx(0, abs=1e-12)


def test_inception_score_of_confident_distinct_classes_is_their_number():
    # Each split sees 10 classes equally often, each predicted with certainty: IS = 10,
    # even though most of the 1008 classes are never predicted.
    logits = np.full((50, 1008), -1e3)
    logits[np.arange(50), np.arange(50) % 10] = 1e3
    mean, std = inception_score(logits, splits=5, shuffle=False)
    assert mean == pytest.approx(10.0, rel=1e-12) and std == pytest.approx(0, abs=1e-10)


def test_precision_recall_on_a_grid_with_known_balls():
    # Real points on a line at 0..9: the 3rd nearest neighbour is at distance 2 (3 at the ends).
    real = np.stack([np.arange(10.0), np.zeros(10)], axis=1).astype(np.float32)
    # Generated: 3 points inside real balls (one exactly on a boundary), 1 far away.
    generated = np.array([[4, 1], [0, 3], [9, 2.5], [50, 50]], np.float32)
    precision, recall = precision_recall(real, generated, k=3, batch_size=3)
    assert precision == pytest.approx(3 / 4)
    # With k=3 each generated ball reaches the farthest other generated point; the far point
    # makes every ball huge, so every real point is covered.
    assert recall == pytest.approx(1.0)
    # k=1: real balls have radius 1; generated radii^2 are 1, 1 and 18.25 (from (9, 2.5) to its
    # nearest, (5, 1)), which covers real x with (x - 9)^2 <= 12, i.e. 6..9.
    generated = np.array([[4, 1], [5, 1], [9, 2.5]], np.float32)
    precision, recall = precision_recall(real, generated, k=1)
    assert precision == pytest.approx(2 / 3) and recall == pytest.approx(6 / 10)


def test_precision_recall_of_identical_and_disjoint_sets():
    rng = np.random.default_rng(5)
    points = rng.normal(size=(30, 4)).astype(np.float32)
    assert precision_recall(points, points) == (1.0, 1.0)
    assert precision_recall(points, points + 100) == (0.0, 0.0)
