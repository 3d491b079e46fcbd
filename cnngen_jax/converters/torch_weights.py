"""What the one-off weight converters share (`converters/inception.py`, `converters/vgg.py`):
reading a PyTorch state dict as NumPy arrays, the one place PyTorch is imported and only when a
converter runs; the source file's hash; and the check that named arrays are exactly a network's
(also made by the loaders of the converted files)."""

import hashlib
import os
import pickle
from collections.abc import Mapping

import numpy as np

from cnngen_jax.errors import UserError


def read_state_dict(path: str, network: str) -> dict[str, np.ndarray]:
    """The float32 arrays of the state dict at `path`, or a UserError. The file is checked
    before PyTorch is imported, so a wrong path is reported as such with or without PyTorch."""
    if not os.path.isfile(path):
        raise UserError(f"cannot read PyTorch weights {path}: no such file")
    try:
        import torch
    except ImportError as error:
        raise UserError(
            f"converting the {network} weights needs PyTorch once: pip install torch (CPU build)"
        ) from error
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, pickle.UnpicklingError) as error:
        raise UserError(f"cannot read PyTorch weights {path}: {error}") from error
    if not isinstance(state, Mapping) or not all(torch.is_tensor(v) for v in state.values()):
        raise UserError(f"{path} is not a state dict (names -> tensors)")
    return {key: value.detach().float().numpy() for key, value in state.items()}


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def shape_mismatch(
    flat: Mapping[str, np.ndarray], expected: Mapping[str, tuple[int, ...]]
) -> str | None:
    """Why `flat` is not exactly arrays of the `expected` names and shapes, or None."""
    missing = sorted(set(expected) - set(flat))
    unexpected = sorted(set(flat) - set(expected))
    wrong = sorted(k for k in expected.keys() & flat.keys() if flat[k].shape != expected[k])
    if not (missing or unexpected or wrong):
        return None
    return f"missing {missing[:3]}, unexpected {unexpected[:3]}, wrong shape {wrong[:3]}"
