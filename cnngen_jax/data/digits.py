"""scikit-learn's handwritten digits as a TFDS dataset of the project, prepared offline.

1,797 real 8x8 greyscale digits (UCI optdigits test set, bundled with scikit-learn) with their
labels. Intensities 0..16 are scaled to uint8 0..255. The split is fixed: a seeded permutation
holds out 297 images as `test` and keeps 1,500 for `train`.
"""

import numpy as np
import tensorflow_datasets as tfds

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


class CnngenDigits(tfds.core.GeneratorBasedBuilder):
    """The embedded digits dataset (TFDS name `cnngen_digits`)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "scikit-learn digits, 1,500 train / 297 test."}

    def _info(self) -> tfds.core.DatasetInfo:
        # A Tensor feature, not Image: encoding PNGs would need TensorFlow to prepare the data.
        return tfds.core.DatasetInfo(
            builder=self,
            description="scikit-learn's 8x8 handwritten digits (UCI optdigits).",
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Tensor(shape=(8, 8, 1), dtype=np.uint8),
                    "label": tfds.features.ClassLabel(num_classes=10),
                }
            ),
            supervised_keys=("image", "label"),
            homepage="https://scikit-learn.org/stable/datasets/toy_dataset.html#digits-dataset",
        )

    def _split_generators(self, dl_manager):
        return {split: self._generate_examples(split) for split in ("train", "test")}

    def _generate_examples(self, split: str):
        images, labels = _digits_split(split)
        for i, (image, label) in enumerate(zip(images, labels, strict=True)):
            yield i, {"image": image, "label": int(label)}
