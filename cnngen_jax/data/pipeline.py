"""Grain input pipelines over TFDS data sources.

Training batches are formed on the *global* index space: one seeded shuffle per epoch of all
example indices (Grain's `MapDataset.range(n).shuffle(seed).repeat()`), cut into global batches,
and each process reads only its own rows of each global batch. The sequence of global batches
therefore depends only on the seed and the dataset, never on how many processes or devices read
it, and the iterator's state (the next global batch) is the same number in every process.

A split already decoded at the training size (`decoded.DecodedSplit`) is read a batch at a time:
one gather and one float conversion. Otherwise examples are decoded one by one; photographs are
then kept in memory once decoded (up to `KEEP_PHOTO_BYTES`), so that a batch is a few slices.

Datasets of photographs at their own sizes (`DatasetSpec.variable_size`) are read as random
`image_size` crops whose positions are drawn from the seed and the global batch's position in
the sequence: a resumed iterator crops exactly where an uninterrupted one would. Evaluation
reads such datasets as whole images, one per batch.
"""

import sys
import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import grain
import numpy as np
from PIL import Image

from cnngen_jax.data import DatasetSpec, order
from cnngen_jax.errors import UserError
from cnngen_jax.pixels import to_float

if TYPE_CHECKING:
    from cnngen_jax.data.decoded import DecodedSplit

# Photographs kept in memory per process once decoded (the embedded photos' training split is
# 8 MB; of DIV2K's 6.6 GB, the first ~130 images read).
KEEP_PHOTO_BYTES = 2**30


class Preprocess:
    """Reads a batch of examples by index: centre crop and resize, or a random crop of
    photographs (at `crop_positions`, fractions in [0, 1) of the free room); scales to [-1, 1]."""

    def __init__(self, source: Sequence[dict[str, Any]], spec: DatasetSpec, image_size: int):
        self.source = source
        self.spec = spec
        self.image_size = image_size

    def __call__(
        self, indices: np.ndarray, crop_positions: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        batch = self.pixels(indices, crop_positions)
        batch["image"] = to_float(batch["image"])
        return batch

    def pixels(
        self, indices: np.ndarray, crop_positions: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """The batch as `__call__` gives it, with its images still uint8."""
        records = [self.source[int(i)] for i in indices]
        images = [np.asarray(r[self.spec.image_feature]) for r in records]
        if crop_positions is None:
            images = [self._image(image) for image in images]
        else:
            images = [self._crop(*pair) for pair in zip(images, crop_positions, strict=True)]
        batch = {"image": np.stack(images)}
        if self.spec.num_classes is not None:
            batch["label"] = np.asarray([r["label"] for r in records], np.int32)
        return batch

    def whole(self, index: int) -> np.ndarray:
        """Example `index` as it is stored, (H, W, C) uint8."""
        return np.asarray(self.source[index][self.spec.image_feature])

    def _crop(self, image: np.ndarray, position: np.ndarray) -> np.ndarray:
        size = self.image_size
        room = np.asarray(image.shape[:2]) - size + 1
        if np.any(room < 1):
            raise UserError(
                f"image_size={size} is larger than a {image.shape[0]}x{image.shape[1]} image of "
                f"dataset {self.spec.tfds_name!r}; set --config.image_size to at most "
                f"{min(image.shape[:2])}"
            )
        top, left = (position * room).astype(int)
        return image[top : top + size, left : left + size]

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


class _CropRows:
    """This process's rows of a global batch and, for photographs, their random crop positions,
    drawn from the seed and the global batch's position only."""

    def __init__(self, rows: slice, seed: int, crops: bool):
        self.rows, self.seed, self.crops = rows, seed, crops

    def __call__(self, position: int, indices: np.ndarray) -> tuple:
        if not self.crops:
            return indices[self.rows], None
        fractions = np.random.default_rng((self.seed, position)).random((len(indices), 2))
        return indices[self.rows], fractions[self.rows]


class _Kept(Sequence):
    """A source whose records are kept once read, while they take at most `max_bytes`:
    photographs are decoded whole for every crop of them."""

    def __init__(self, source: Sequence[dict[str, Any]], feature: str, max_bytes: int):
        self.source, self.feature, self.max_bytes = source, feature, max_bytes
        self._kept: dict[int, dict[str, Any]] = {}
        self._bytes = 0
        self._lock = threading.Lock()  # Grain's prefetch threads read concurrently

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> dict[str, Any]:
        record = self._kept.get(index)
        if record is None:
            record = self.source[index]
            size = np.asarray(record[self.feature]).nbytes
            with self._lock:
                if index not in self._kept and self._bytes + size <= self.max_bytes:
                    self._kept[index] = record
                    self._bytes += size
        return record


class _Gather:
    """Rows of a decoded split, a batch at a time."""

    def __init__(self, split: "DecodedSplit"):
        self.split = split

    def __call__(self, indices: np.ndarray, crop_positions: None = None) -> dict[str, np.ndarray]:
        batch = {"image": to_float(self.split.images[indices])}
        if self.split.labels is not None:
            batch["label"] = self.split.labels[indices]
        return batch


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
    decoded: "DecodedSplit | None" = None,
) -> grain.DatasetIterator:
    """Endless shuffled batches: this process's `rows` of each global batch; with
    `batches_per_step` k > 1, k consecutive ones stacked (k, rows, ...) per element. With
    `decoded` (`source` at `image_size`, fixed-size data only), rows are gathered from it.

    The iterator supports `get_state()` / `set_state()` for exact resumption.
    """
    if decoded is not None:
        if decoded.images.shape[:2] != (len(source), image_size):
            raise ValueError(f"decoded {decoded.images.shape} is not this split at {image_size}")
        read = _Gather(decoded)
    elif spec.variable_size:
        read = Preprocess(_Kept(source, spec.image_feature, KEEP_PHOTO_BYTES), spec, image_size)
    else:
        read = Preprocess(source, spec, image_size)
    local = (
        grain.MapDataset.range(sys.maxsize)
        .map(order.GlobalBatches(len(source), global_batch_size, seed))
        .map_with_index(_CropRows(rows, seed, spec.variable_size))
        .map(lambda pair: read(*pair))
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
    the split count every example exactly once. Photographs of their own sizes come whole, one
    per batch, the same in every process.
    """
    num_examples = len(source)
    preprocess = Preprocess(source, spec, image_size)
    if spec.variable_size:
        for index in range(num_examples):
            image = to_float(preprocess.whole(index)[None])
            yield {"image": image, "mask": np.ones((1,), np.float32)}
        return
    for start in range(0, num_examples, global_batch_size):
        indices = np.arange(start, start + global_batch_size)[rows]
        batch = preprocess(np.minimum(indices, num_examples - 1))
        batch["mask"] = (indices < num_examples).astype(np.float32)
        yield batch
