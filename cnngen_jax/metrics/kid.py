"""Kernel Inception Distance exactly as torch-fidelity computes it (Bińkowski et al. 2018)."""

import numpy as np


def _polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(x.y / d + 1)^3: degree 3, gamma 1/d, coef0 1."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def _unbiased_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2: within-set kernel sums without their diagonals, cross term with it."""
    m = x.shape[0]
    k_xx, k_yy, k_xy = _polynomial_kernel(x, x), _polynomial_kernel(y, y), _polynomial_kernel(x, y)
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2.0 * k_xy.sum() / (m * m))


def kernel_inception_distance(
    real: np.ndarray,
    generated: np.ndarray,
    *,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 2020,
) -> tuple[float, float]:
    """Mean and std of the unbiased MMD^2 over random subsets, in float64.

    Defaults and the subset draws are torch-fidelity's (`np.random.RandomState(seed)`, one
    `choice` without replacement from the generated set, then one from the real set, per
    subset), so equal features give equal numbers. torch-fidelity evaluates the kernel in the
    features' dtype (float32 from its extractor); we always use float64.
    """
    real, generated = np.asarray(real, np.float64), np.asarray(generated, np.float64)
    if real.ndim != 2 or generated.ndim != 2 or real.shape[1] != generated.shape[1]:
        raise ValueError(f"expected (n, d) features of equal d: {real.shape}, {generated.shape}")
    if min(len(real), len(generated)) < subset_size or subset_size < 2:
        raise ValueError(
            f"KID subset_size {subset_size} must be at least 2 and at most the number of "
            f"samples (real {len(real)}, generated {len(generated)})"
        )
    rng = np.random.RandomState(seed)
    mmds = np.empty(subsets)
    for i in range(subsets):
        fake_subset = generated[rng.choice(len(generated), subset_size, replace=False)]
        real_subset = real[rng.choice(len(real), subset_size, replace=False)]
        mmds[i] = _unbiased_mmd2(fake_subset, real_subset)
    return float(mmds.mean()), float(mmds.std())
