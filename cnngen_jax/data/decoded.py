"""A split decoded once at the training size, as uint8 arrays cached next to the TFDS data.

The device-resident feed (`feed.DeviceFeed`) holds a whole split on the accelerators; decoding
and resizing it record by record takes minutes for the larger sets, so the result is kept in
DATA_DIR/cnngen_decoded/, one folder per (dataset contents, split, size, preprocessing): a second
run starts at once. A cache that is incomplete, truncated or written by another version of this
code is rebuilt, never trusted: `meta.json`, written last, must describe exactly the arrays beside
it.
"""

import dataclasses
import hashlib
import io
import json
from typing import Any

import numpy as np

from cnngen_jax import data, files
from cnngen_jax.data import pipeline
from cnngen_jax.errors import UserError

FORMAT_VERSION = 1  # bump when the preprocessing (centre crop, resize) changes
_CHUNK = 1024  # records decoded per batch while building


@dataclasses.dataclass(frozen=True)
class DecodedSplit:
    """The images (N, S, S, C) uint8 and, for labelled data, labels (N,) int32 of one split."""

    images: np.ndarray
    labels: np.ndarray | None

    def __len__(self) -> int:
        return len(self.images)


def split_bytes(num_examples: int, image_size: int, channels: int, labelled: bool) -> int:
    """The memory a decoded split takes."""
    return num_examples * (image_size * image_size * channels + (4 if labelled else 0))


def decoded_split(
    name: str, split: str, data_dir: str, image_size: int, write: bool = True
) -> DecodedSplit:
    """Split `split` of dataset `name` at `image_size`, from the cache or decoded now (and
    cached when `write`: process 0 of a job)."""
    spec = data.get_spec(name)
    source = data.open_source(name, split, data_dir)
    meta = _meta(name, split, spec, image_size, source)
    folder = _folder(data_dir, name, meta)
    cached = _load(folder, meta)
    if cached is not None:
        return cached
    decoded = _decode(source, spec, image_size)
    if write:
        files.write_npy(folder / "images.npy", decoded.images)
        if decoded.labels is not None:
            files.write_npy(folder / "labels.npy", decoded.labels)
        files.write_json(folder / "meta.json", meta)  # last: it vouches for the arrays
    return decoded


def _meta(name: str, split: str, spec: data.DatasetSpec, image_size: int, source: Any) -> dict:
    info = getattr(source, "dataset_info", None)  # TFDS's: a re-prepared version is other data
    count = len(source)
    return {
        "format_version": FORMAT_VERSION,
        "dataset": data.fingerprint(name),
        "tfds_version": str(getattr(info, "version", "")),
        "split": split,
        "image_size": image_size,
        "center_crop": spec.center_crop,
        "image_feature": spec.image_feature,
        "images": [count, image_size, image_size, spec.channels],
        "labelled": spec.num_classes is not None,
    }


def _folder(data_dir: str, name: str, meta: dict) -> Any:
    key = hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()[:16]
    size = meta["image_size"]
    return files.path(data_dir) / "cnngen_decoded" / data.file_name(name) / f"{size}px-{key}"


def _load(folder: Any, meta: dict) -> DecodedSplit | None:
    """The cached split, or None (with a note when a cache was there but unusable)."""
    if not (folder / "meta.json").exists():
        return None
    try:
        if files.read_json(folder / "meta.json") != meta:
            raise ValueError("meta.json describes other data")
        images = _read_array(folder / "images.npy")
        labels = _read_array(folder / "labels.npy") if meta["labelled"] else None
        if images.dtype != np.uint8 or list(images.shape) != meta["images"]:
            raise ValueError(f"images.npy holds {images.dtype} {images.shape}")
        if labels is not None and (labels.dtype != np.int32 or labels.shape != (len(images),)):
            raise ValueError(f"labels.npy holds {labels.dtype} {labels.shape}")
    except (ValueError, OSError, EOFError, UserError) as error:  # UserError: torn meta.json
        print(f"note: rebuilding the decoded-data cache {folder}: {error}", flush=True)
        return None
    return DecodedSplit(images, labels)


def _read_array(path: Any) -> np.ndarray:
    """An .npy, memory-mapped when local (a truncated file is a ValueError)."""
    if files.is_remote(path):
        return np.load(io.BytesIO(files.read_bytes(path)), allow_pickle=False)
    return np.load(str(path), mmap_mode="r", allow_pickle=False)


def _decode(source: Any, spec: data.DatasetSpec, image_size: int) -> DecodedSplit:
    preprocess = pipeline.Preprocess(source, spec, image_size)
    images = np.empty((len(source), image_size, image_size, spec.channels), np.uint8)
    labels = np.empty((len(source),), np.int32) if spec.num_classes is not None else None
    for start in range(0, len(source), _CHUNK):
        chunk = np.arange(start, min(start + _CHUNK, len(source)))
        batch = preprocess.pixels(chunk)
        images[chunk] = batch["image"]
        if labels is not None:
            labels[chunk] = batch["label"]
    return DecodedSplit(images, labels)
