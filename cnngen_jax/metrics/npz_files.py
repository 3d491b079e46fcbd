"""Pickle-free .npz files for the metric caches and weights: content hashes, atomic writes,
local or remote (through `cnngen_jax.files`)."""

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from cnngen_jax import files


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


def write_atomically(path: files.PathLike, entries: Mapping[str, np.ndarray]) -> None:
    """Writes `entries` to `path` (local or a URI such as gs://...) whole or not at all, so a
    reader (another process training the same cache entry, or one killed mid-write) never sees
    half a file (`files.write_bytes`)."""
    files.write_npz(path, dict(entries))


def read(path: files.PathLike) -> dict[str, np.ndarray]:
    """Every entry of an .npz (local or a URI), refusing pickled objects."""
    return files.read_npz(path)
