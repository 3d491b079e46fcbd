"""Pickle-free storage of the FID Inception weights, and loading them into the Flax network.

Nothing is downloaded: the standard `pt_inception-2015-12-05-6726825d.pth` (pytorch-fid; the
same file torch-fidelity fetches as `weights-inception-2015-12-05-6726825d.pth`) is converted
once with `python -m cnngen_jax.commands.convert_inception`, and the resulting `.npz` is read
with `allow_pickle=False`, so a weights file can never execute code.
"""

import dataclasses
import functools
import os
from collections.abc import Mapping

import numpy as np
from flax import traverse_util

from cnngen_jax import files
from cnngen_jax.converters.torch_weights import shape_mismatch
from cnngen_jax.errors import UserError
from cnngen_jax.metrics import npz_files
from cnngen_jax.metrics.inception import abstract_variables
from cnngen_jax.metrics.npz_files import content_sha256

# The torch hub file names end in the first 8 hex digits of the file's sha256.
STANDARD_SOURCE_PREFIX = "6726825d"
_SOURCE_KEY = "meta/source_sha256"
_CONVERT_HINT = (
    "provide weights by converting the standard pt_inception-2015-12-05-6726825d.pth "
    "(pytorch-fid / torch-fidelity) once with `python -m cnngen_jax.commands.convert_inception "
    "--torch_weights=PATH.pth --out=PATH.npz` and passing PATH.npz"
)


class InceptionWeightsMissing(UserError):
    """No usable weights file: Inception-based metrics (FID, KID, IS, precision/recall) are off."""


@dataclasses.dataclass(frozen=True)
class InceptionWeights:
    """Loaded variables plus the hashes that identify them in an evaluation protocol stamp.

    `sha256` digests the arrays themselves (names, shapes, values), so it is the same for every
    conversion of the same weights; `source_sha256` is the hash of the original .pth file.
    """

    variables: dict
    sha256: str
    source_sha256: str
    path: str


@functools.cache
def _expected_shapes() -> dict[str, tuple[int, ...]]:
    flat = traverse_util.flatten_dict(abstract_variables(), sep="/")
    return {key: tuple(leaf.shape) for key, leaf in flat.items()}


def variables_mismatch(flat: Mapping[str, np.ndarray]) -> str | None:
    """Why `flat` is not exactly the network's variables, or None when it is."""
    return shape_mismatch(flat, _expected_shapes())


def save_inception_weights(flat: Mapping[str, np.ndarray], source_sha256: str, out: str) -> str:
    """Write float32 variables (flat '/'-joined names) to `out`; return content sha256."""
    problem = variables_mismatch(flat)
    if problem:
        raise UserError(f"not the FID Inception-v3 weights ({problem}); nothing written to {out}")
    arrays = {key: np.asarray(value, np.float32) for key, value in flat.items()}
    with open(out, "wb") as f:
        np.savez(f, **arrays, **{_SOURCE_KEY: np.asarray(source_sha256)})
    return content_sha256(arrays)


def load_inception_weights(path: str | os.PathLike | None) -> InceptionWeights:
    """Load a converted weights file (`~` expanded as for every path setting), or explain how
    to make one."""
    if path:
        path = os.fspath(files.path(path, "inception_weights"))
    if path is None or not os.path.isfile(path):
        where = "no weights path was given" if path is None else f"{os.fspath(path)} does not exist"
        raise InceptionWeightsMissing(f"Inception metrics skipped: {where}; {_CONVERT_HINT}.")
    try:
        flat = npz_files.read(path)
    except (OSError, ValueError) as error:
        raise InceptionWeightsMissing(
            f"Inception metrics skipped: cannot read {os.fspath(path)} ({error}); {_CONVERT_HINT}."
        ) from error
    source = str(flat.pop(_SOURCE_KEY, ""))
    problem = variables_mismatch(flat)
    if problem:
        raise InceptionWeightsMissing(
            f"Inception metrics skipped: {os.fspath(path)} is not the FID Inception-v3 weights "
            f"({problem}); {_CONVERT_HINT}."
        )
    return InceptionWeights(
        variables=traverse_util.unflatten_dict(flat, sep="/"),
        sha256=content_sha256(flat),
        source_sha256=source,
        path=os.fspath(path),
    )
