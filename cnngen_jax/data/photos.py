"""The colour photographs scikit-image ships in its wheel, as a TFDS dataset of the project.

Real photographs for the restoration tasks (super-resolution, inpainting), prepared offline from
files already installed. Images keep their own sizes (stored as zlib-compressed uint8 tensors of
shape (H, W, 3); encoding PNGs would need TensorFlow); training takes random crops of them
(`cnngen_jax.data.pipeline`) and evaluation scores whole images. The split is by photograph, so
no held-out scene is seen in training: `test` is the cat (chelsea) and the coffee cup; the two
motorcycle views, one scene, are both in `train`. Photographs longer than `MAX_SIDE` pixels
(the retina, the Hubble field) are reduced by an antialiased Lanczos filter so that reading one
crop stays cheap.
"""

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

# skimage.data loader name -> photograph. Each loader reads a file bundled in the wheel.
TRAIN = ("astronaut", "rocket", "hubble_deep_field", "retina", "immunohistochemistry")
TEST = ("chelsea", "coffee")
MAX_SIDE = 800


def _motorcycle_views() -> list[tuple[str, np.ndarray]]:
    from skimage import data

    left, right, _ = data.stereo_motorcycle()
    return [("motorcycle_left", left), ("motorcycle_right", right)]


def _reduced(image: np.ndarray) -> np.ndarray:
    height, width = image.shape[:2]
    factor = MAX_SIDE / max(height, width)
    if factor >= 1:
        return image
    size = (round(width * factor), round(height * factor))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS))


def read_split(split: str) -> list[tuple[str, np.ndarray]]:
    """(name, uint8 (H, W, 3) photograph) pairs of `split` ('train' or 'test')."""
    from skimage import data

    photos = [(name, getattr(data, name)()) for name in (TRAIN if split == "train" else TEST)]
    if split == "train":
        photos += _motorcycle_views()
    return [(name, _reduced(np.ascontiguousarray(image[..., :3]))) for name, image in photos]


class CnngenPhotos(tfds.core.GeneratorBasedBuilder):
    """The embedded photographs (TFDS name `cnngen_photos`): 7 train, 2 test."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "scikit-image's colour photographs, split by photograph."}

    def check_source(self) -> None:
        """scikit-image is a dependency of the project: nothing to check before preparing."""

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description="Colour photographs bundled with scikit-image, at their own sizes.",
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Tensor(
                        shape=(None, None, 3), dtype=np.uint8, encoding="zlib"
                    ),
                    "name": tfds.features.Text(),
                }
            ),
            homepage="https://scikit-image.org/docs/stable/api/skimage.data.html",
        )

    def _split_generators(self, dl_manager):
        return {split: self._generate_examples(split) for split in ("train", "test")}

    def _generate_examples(self, split: str):
        for name, image in read_split(split):
            yield name, {"image": image, "name": name}
