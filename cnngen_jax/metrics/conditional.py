"""Metrics of class-conditional generation, from features and predictions already computed:

- per-class accuracy: how often a classifier trained on real data recognises the requested
  class in generated images (high when the model obeys its labels);
- intra-class FID (Miyato & Koyama 2018): the Frechet distance between the generated and the
  real images of each class, averaged over classes (low when each class's distribution is
  right, which overall FID cannot see: it would not notice swapped labels);
- Classification Accuracy Score (Ravuri & Vinyals 2019): a classifier trained on generated
  images only, tested on real ones (`cnngen_jax.metrics.domain.fit`); read beside the same
  classifier trained on real data.
"""

import numpy as np

from cnngen_jax.metrics.frechet import frechet_distance
from cnngen_jax.metrics.moments import MomentAccumulator


def per_class_accuracy(
    predicted: np.ndarray, labels: np.ndarray, classes: np.ndarray
) -> tuple[float, dict[int, float]]:
    """(mean over `classes` of the per-class accuracy, accuracy of each class)."""
    per_class = {int(c): float(np.mean(predicted[labels == c] == c)) for c in classes}
    return float(np.mean(list(per_class.values()))), per_class


def _moments(features: np.ndarray):
    accumulator = MomentAccumulator(features.shape[1])
    accumulator.update(features)
    return accumulator.stats()


def intra_class_fid(
    real_features: np.ndarray,
    real_labels: np.ndarray,
    fake_features: np.ndarray,
    fake_labels: np.ndarray,
    classes: np.ndarray,
) -> tuple[float, dict[int, float]]:
    """(mean over `classes` of the per-class FID, FID of each class)."""
    per_class = {}
    for c in classes:
        real = _moments(real_features[real_labels == c])
        fake = _moments(fake_features[fake_labels == c])
        per_class[int(c)] = float(frechet_distance(real.mean, real.cov, fake.mean, fake.cov))
    return float(np.mean(list(per_class.values()))), per_class
