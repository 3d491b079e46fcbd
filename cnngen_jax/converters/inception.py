"""The PyTorch FID Inception state dict converted into the pickle-free file the Flax network
loads (the command: `python -m cnngen_jax.commands.convert_inception`).

Needs PyTorch only for this one-off step; evaluation itself never imports it.
"""

import sys
from collections.abc import Mapping

import numpy as np

from cnngen_jax.converters import torch_weights as torch_weights_file
from cnngen_jax.errors import UserError
from cnngen_jax.metrics.inception_weights import STANDARD_SOURCE_PREFIX, save_inception_weights

# PyTorch parameter suffix -> (Flax collection, Flax name, transpose to Flax layout).
_RENAMES = {
    "conv.weight": ("params", "conv/kernel", (2, 3, 1, 0)),  # OIHW -> HWIO
    "bn.weight": ("params", "bn/scale", None),
    "bn.bias": ("params", "bn/bias", None),
    "bn.running_mean": ("batch_stats", "bn/mean", None),
    "bn.running_var": ("batch_stats", "bn/var", None),
    "fc.weight": ("params", "fc/kernel", (1, 0)),
    "fc.bias": ("params", "fc/bias", None),
}


def flax_variables_from_torch(state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Rename and transpose a torch state dict (as numpy arrays) to flat Flax variable names."""
    flat = {}
    for key, value in state.items():
        if key.endswith("num_batches_tracked"):
            continue
        suffix = next((s for s in _RENAMES if key == s or key.endswith("." + s)), None)
        if suffix is None:
            raise UserError(f"unexpected entry {key!r} in the PyTorch Inception state dict")
        collection, name, axes = _RENAMES[suffix]
        prefix = key[: -len(suffix)].rstrip(".").replace(".", "/")
        path = "/".join(p for p in (collection, prefix, name) if p)
        flat[path] = np.transpose(value, axes) if axes else np.asarray(value)
    return flat


def convert(torch_weights: str, out: str) -> str:
    """Convert `torch_weights` (.pth state dict) to `out` (.npz); return the content sha256.

    The file is checked before PyTorch is imported, so a wrong path is reported as such whether
    or not PyTorch is installed.
    """
    arrays = torch_weights_file.read_state_dict(torch_weights, "Inception")
    source_sha256 = torch_weights_file.file_sha256(torch_weights)
    if not source_sha256.startswith(STANDARD_SOURCE_PREFIX):
        print(
            f"warning: {torch_weights} is not the standard 2015-12-05 FID Inception file "
            f"(sha256 {source_sha256[:8]}..., expected {STANDARD_SOURCE_PREFIX}...); "
            "scores will not be comparable with published ones",
            file=sys.stderr,
        )
    return save_inception_weights(flax_variables_from_torch(arrays), source_sha256, out)
