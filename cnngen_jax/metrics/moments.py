"""Streaming float64 mean and covariance, so 50k features never sit in memory at once."""

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class GaussianStats:
    """Sample mean and covariance (ddof=1, like `np.cov`) of `count` feature vectors."""

    mean: np.ndarray
    cov: np.ndarray
    count: int


class MomentAccumulator:
    """Adds batches of feature vectors into a running float64 mean and scatter matrix.

    Each batch is centred on its own mean and merged with the pairwise update of Chan et al.
    (1979), which avoids the cancellation of the textbook `E[xx^T] - E[x]E[x]^T`.
    """

    def __init__(self, dim: int):
        self.count = 0
        self._mean = np.zeros(dim, np.float64)
        self._scatter = np.zeros((dim, dim), np.float64)

    def update(self, batch: np.ndarray) -> None:
        """Add a (n, dim) batch; any float or int dtype, promoted to float64."""
        batch = np.asarray(batch, np.float64)
        if batch.ndim != 2 or batch.shape[1] != self._mean.shape[0]:
            raise ValueError(f"expected (n, {self._mean.shape[0]}) features, got {batch.shape}")
        n = batch.shape[0]
        if n == 0:
            return
        batch_mean = batch.mean(axis=0)
        centred = batch - batch_mean
        delta = batch_mean - self._mean
        total = self.count + n
        self._scatter += centred.T @ centred + np.outer(delta, delta) * (self.count * n / total)
        self._mean += delta * (n / total)
        self.count = total

    def stats(self) -> GaussianStats:
        """Mean and unbiased covariance of everything added so far (needs at least 2 vectors)."""
        if self.count < 2:
            raise ValueError(f"a covariance needs at least 2 feature vectors, got {self.count}")
        return GaussianStats(self._mean.copy(), self._scatter / (self.count - 1), self.count)
