"""Grain input pipelines over TFDS data sources.

Training batches are formed on the *global* index space: one seeded shuffle per epoch of all
example indices, cut into global batches, and each process reads only its own rows of each global
batch. The sequence of global batches therefore depends only on the seed and the dataset, never on
how many processes or devices read it, and the iterator's state (the next global batch) is the
same number in every process.
"""

from collections.abc import Iterator, Sequence
from typing import Any

import grain
import numpy as np
from PIL import Image

from cnngen_jax.data import DatasetSpec


class Preprocess:
    """Reads a batch of examples by index: centre crop, resize, scale to [-1, 1]."""

    def __init__(self, source: Sequence[dict[str, Any]], spec: DatasetSpec, image_size: int):
        self.source = source
        self.spec = spec
        self.image_size = image_size

    def __call__(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        records = [self.source[int(i)] for i in indices]
        images = np.stack([self._image(np.asarray(r["image"])) for r in records])
        batch = {"image": images.astype(np.float32) / 127.5 - 1.0}
        if self.spec.num_classes is not None:
            batch["label"] = np.asarray([r["label"] for r in records], np.int32)
        return batch

    def _image(self, image: np.ndarray) -> np.ndarray:
        if self.spec.center_crop:
            h, w = image.shape[:2]
            c = self.spec.center_crop
            top, left = (h - c) // 2, (w - c) // 2
            image = image[top : top + c, left : left + c]
        if image.shape[:2] != (self.image_size, self.image_size):
            # PIL's bilinear filter widens its support when shrinking, so it also antialiases.
            pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
            pil = pil.resize((self.image_size, self.image_size), Image.Resampling.BILINEAR)
            image = np.asarray(pil).reshape(self.image_size, self.image_size, -1)
        return image


def train_iterator(
    source: Sequence[dict[str, Any]],
    spec: DatasetSpec,
    *,
    image_size: int,
    global_batch_size: int,
    rows: slice,
    seed: int,
    num_threads: int,
    prefetch: int,
    batches_per_step: int = 1,
) -> grain.DatasetIterator:
    """Endless shuffled batches: this process's `rows` of each global batch; with
    `batches_per_step` k > 1, k consecutive ones stacked (k, rows, ...) per element.

    The iterator supports `get_state()` / `set_state()` for exact resumption.
    """
    global_batches = (
        grain.MapDataset.range(len(source))
        .shuffle(seed=seed)  # a fresh permutation every epoch
        .repeat()
        .batch(global_batch_size, drop_remainder=True)
    )
    local = global_batches.map(lambda indices: indices[rows]).map(
        Preprocess(source, spec, image_size)
    )
    if batches_per_step > 1:
        local = local.batch(batches_per_step)
    options = grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=prefetch)
    return iter(local.to_iter_dataset(options))


def eval_batches(
    source: Sequence[dict[str, Any]],
    spec: DatasetSpec,
    *,
    image_size: int,
    global_batch_size: int,
    rows: slice,
) -> Iterator[dict[str, np.ndarray]]:
    """One ordered pass over a split in global batches, the last one padded.

    Each batch carries a float `mask` (1 for real examples, 0 for padding) so that sums over
    the split count every example exactly once.
    """
    num_examples = len(source)
    preprocess = Preprocess(source, spec, image_size)
    for start in range(0, num_examples, global_batch_size):
        indices = np.arange(start, start + global_batch_size)[rows]
        batch = preprocess(np.minimum(indices, num_examples - 1))
        batch["mask"] = (indices < num_examples).astype(np.float32)
        yield batch
