"""Feature statistics of real images, the reference generated images are compared with: computed
once per protocol and cached as pickle-free .npz files keyed on everything that determines them
(dataset contents, split, size, feature network weights, version)."""

import dataclasses
import json
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from cnngen_jax import data, files, parallel
from cnngen_jax.errors import UserError
from cnngen_jax.metrics import GaussianStats, npz_files
from cnngen_jax.metrics.npz_files import content_sha256
from cnngen_jax.pixels import to_uint8


@dataclasses.dataclass(frozen=True)
class Reference:
    """Feature statistics of the real images of one protocol (`key`)."""

    stats: GaussianStats
    features: np.ndarray
    key: dict[str, Any]
    labels: np.ndarray | None = None  # the class of each row of `features`, when labelled


def real_images(
    batches: Iterable[dict[str, Any]], labels: list[np.ndarray] | None = None
) -> Iterator[np.ndarray]:
    """uint8 images of batches in [-1, 1], without the padding rows (mask 0); their labels, where
    the batches have them, are appended to `labels` on the way."""
    for batch in batches:
        real = parallel.gather(batch["mask"]) > 0
        if labels is not None and "label" in batch:
            labels.append(parallel.gather(batch["label"])[real])
        yield to_uint8(parallel.gather(batch["image"])[real])


def reference_path(cache_dir: str, key: dict[str, Any]) -> str:
    digest = npz_files.json_digest(key)
    dataset = data.file_name(key["dataset"])
    name = f"{dataset}-{key['split']}-{key['image_size']}px-{key['feature_net']}-{digest}"
    return str(files.path(cache_dir) / "reference" / f"{name}.npz")


def _arrays(reference: Reference) -> dict[str, np.ndarray]:
    arrays = {
        "mean": reference.stats.mean,
        "cov": reference.stats.cov,
        "features": reference.features,
    }
    return arrays if reference.labels is None else {**arrays, "labels": reference.labels}


def save_reference(path: str, reference: Reference) -> None:
    """A pickle-free .npz: the arrays, their hash and the protocol key (as JSON text)."""
    arrays = _arrays(reference)
    npz_files.write_atomically(
        path,
        {
            **arrays,
            "sha256": np.asarray(content_sha256(arrays)),
            "key": np.asarray(json.dumps(reference.key, sort_keys=True)),
        },
    )


def load_reference(path: str, key: dict[str, Any]) -> Reference:
    """Reads a cached reference (without pickle), checking its protocol key and its hash."""
    entries = npz_files.read(path)
    names = ("mean", "cov", "features", "labels")
    arrays = {name: entries[name] for name in names if name in entries}
    stored_key, stored_sha = json.loads(str(entries["key"])), str(entries["sha256"])
    if stored_key != key or content_sha256(arrays) != stored_sha:
        raise UserError(
            f"the cached reference statistics {path} do not match their protocol or hash (an "
            "edited or partial file); delete it and they are computed again"
        )
    stats = GaussianStats(arrays["mean"], arrays["cov"], key["num_real"])
    return Reference(stats, arrays["features"], key, arrays.get("labels"))
