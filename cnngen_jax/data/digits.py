"""scikit-learn's handwritten digits as a TFDS dataset of the project, prepared offline.

1,797 real 8x8 greyscale digits (UCI optdigits test set, bundled with scikit-learn) with their
labels. Intensities 0..16 are scaled to uint8 0..255. The split is fixed: a seeded permutation
holds out 297 images as `test` and keeps 1,500 for `train`.
"""

import numpy as np
import tensorflow_datasets as tfds

from cnngen_jax.data.embedded import LabelledImages

NUM_TEST = 297
_SPLIT_SEED = 0


def _digits_split(split: str) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    order = np.random.default_rng(_SPLIT_SEED).permutation(len(images))
    chosen = order[:NUM_TEST] if split == "test" else order[NUM_TEST:]
    chosen = np.sort(chosen)
    return images[chosen], digits.target[chosen].astype(np.int64)


class CnngenDigits(LabelledImages):
    """The embedded digits dataset (TFDS name `cnngen_digits`)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "scikit-learn digits, 1,500 train / 297 test."}
    IMAGE_SHAPE = (8, 8, 1)
    NUM_CLASSES = 10
    DESCRIPTION = "scikit-learn's 8x8 handwritten digits (UCI optdigits)."
    HOMEPAGE = "https://scikit-learn.org/stable/datasets/toy_dataset.html#digits-dataset"

    read_split = staticmethod(_digits_split)
