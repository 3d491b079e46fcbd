"""Fréchet distance between two Gaussians (FID when the features are Inception pool features)."""

import numpy as np


def _denoise(eigenvalues: np.ndarray) -> np.ndarray:
    """Zero eigenvalues that are rounding noise (as `matrix_rank` decides), including negative
    ones; their square roots would otherwise add up to ~1e-7 each along a null space."""
    tolerance = max(eigenvalues.max(initial=0.0), 0.0) * len(eigenvalues) * np.finfo(np.float64).eps
    return np.where(eigenvalues > tolerance, eigenvalues, 0.0)


def _symmetric_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Square root of a symmetric PSD matrix."""
    eigenvalues, eigenvectors = np.linalg.eigh(matrix)
    return (eigenvectors * np.sqrt(_denoise(eigenvalues))) @ eigenvectors.T


def frechet_distance(
    mean1: np.ndarray, cov1: np.ndarray, mean2: np.ndarray, cov2: np.ndarray
) -> float:
    """||m1 - m2||^2 + tr(C1) + tr(C2) - 2 tr((C1 C2)^(1/2)), in float64.

    tr((C1 C2)^(1/2)) is the sum of square roots of the eigenvalues of C1^(1/2) C2 C1^(1/2), a
    symmetric PSD matrix with the same spectrum as C1 C2. Working only with symmetric
    eigendecompositions keeps the result real and finite when the covariances are singular
    (fewer samples than dimensions), where `scipy.linalg.sqrtm(C1 @ C2)` can fail or go complex.
    """
    mean1, mean2 = np.asarray(mean1, np.float64), np.asarray(mean2, np.float64)
    cov1, cov2 = np.asarray(cov1, np.float64), np.asarray(cov2, np.float64)
    if mean1.shape != mean2.shape or cov1.shape != cov2.shape or cov1.shape != mean1.shape * 2:
        raise ValueError(
            f"shape mismatch: {mean1.shape}, {cov1.shape}, {mean2.shape}, {cov2.shape}"
        )
    root1 = _symmetric_sqrt((cov1 + cov1.T) / 2)
    middle = root1 @ cov2 @ root1
    eigenvalues = np.linalg.eigvalsh((middle + middle.T) / 2)
    trace_sqrt = np.sqrt(_denoise(eigenvalues)).sum()
    diff = mean1 - mean2
    return float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * trace_sqrt)
