"""What the embedded datasets share: a TFDS builder of labelled uint8 images, prepared offline
from a file a package ships, stored as Tensor features (encoding PNGs would need TensorFlow)."""

import abc

import numpy as np
import tensorflow_datasets as tfds


class LabelledImages(tfds.core.GeneratorBasedBuilder, abc.ABC):
    """A subclass sets the image shape, class count, description and homepage, and reads a
    split as (images (N, H, W, C) uint8, labels (N,))."""

    IMAGE_SHAPE: tuple[int, int, int]
    NUM_CLASSES: int
    DESCRIPTION: str
    HOMEPAGE: str

    @abc.abstractmethod
    def read_split(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """The images and labels of `split` ('train' or 'test')."""

    def check_source(self) -> None:
        """A UserError if the packaged file is missing; called before preparing."""

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=self.DESCRIPTION,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Tensor(shape=self.IMAGE_SHAPE, dtype=np.uint8),
                    "label": tfds.features.ClassLabel(num_classes=self.NUM_CLASSES),
                }
            ),
            supervised_keys=("image", "label"),
            homepage=self.HOMEPAGE,
        )

    def _split_generators(self, dl_manager):
        return {split: self._generate_examples(split) for split in ("train", "test")}

    def _generate_examples(self, split: str):
        images, labels = self.read_split(split)
        for i, (image, label) in enumerate(zip(images, labels, strict=True)):
            yield i, {"image": image, "label": int(label)}
