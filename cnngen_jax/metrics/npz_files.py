"""Pickle-free .npz files for the metric caches and weights: content hashes, atomic writes."""

import hashlib
import json
import os
from collections.abc import Mapping
from typing import Any

import numpy as np


def content_sha256(flat: Mapping[str, np.ndarray]) -> str:
    """Order-independent digest of named arrays (name, dtype, shape and bytes of each)."""
    digest = hashlib.sha256()
    for key in sorted(flat):
        array = np.ascontiguousarray(flat[key])
        digest.update(f"{key}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def json_digest(value: Any) -> str:
    """A short, stable name for a JSON-able cache key."""
    text = json.dumps(value, sort_keys=True)
    return content_sha256({"key": np.frombuffer(text.encode(), np.uint8)})[:16]


def write_atomically(path: str, entries: Mapping[str, np.ndarray]) -> None:
    """Writes `entries` to `path` through a temporary file, so a reader (another process
    training the same cache entry, or one killed mid-write) never sees half a file."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "wb") as f:
        np.savez(f, **entries)
    os.replace(temporary, path)


def read(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every entry of an .npz, refusing pickled objects."""
    with np.load(path, allow_pickle=False) as npz:
        return {key: npz[key] for key in npz.files}
