"""Run a feature network over image batches and keep only what the metrics need.

Generic over the network: `apply_fn(variables, images)` returns a dict of (batch, ...) arrays,
e.g. `FIDInceptionV3().apply` or a domain classifier's `apply`. Outputs named in `moments_of`
are reduced on the host into float64 mean/covariance accumulators; those in `keep` (features for
precision/recall or KID, logits for the Inception Score) are gathered whole.
"""

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from cnngen_jax.metrics.moments import GaussianStats, MomentAccumulator

ApplyFn = Callable[[object, jax.Array], Mapping[str, jax.Array]]


@dataclasses.dataclass(frozen=True)
class FeatureSummary:
    """What one pass over a set of images produced."""

    stats: dict[str, GaussianStats]
    kept: dict[str, np.ndarray]
    count: int


def _fixed_size(batches: Iterable[np.ndarray]) -> Iterator[tuple[np.ndarray, int]]:
    """Re-cut batches to the first batch's size, padding the remainder with zeros, so the
    network compiles once; yields (batch, number of real images in it)."""
    size = None
    for batch in batches:
        batch = np.asarray(batch)
        size = size or len(batch)
        for start in range(0, len(batch), size):
            piece = batch[start : start + size]
            count = len(piece)
            if count < size:
                padding = np.zeros((size - count, *piece.shape[1:]), piece.dtype)
                piece = np.concatenate([piece, padding])
            yield piece, count


def extract_features(
    apply_fn: ApplyFn,
    variables: object,
    batches: Iterable[np.ndarray],
    *,
    moments_of: Sequence[str] = ("pool",),
    keep: Sequence[str] = (),
) -> FeatureSummary:
    """One jitted pass of `apply_fn` over `batches` (uint8 NHWC arrays).

    Each batch is split over this process's devices when its size allows (the variables are
    replicated). The next batch is dispatched before the previous result is copied to the host,
    so device compute and host accumulation overlap.
    """
    network = jax.jit(apply_fn)
    mesh = Mesh(np.array(jax.local_devices()), ("data",))
    variables = jax.device_put(variables, NamedSharding(mesh, PartitionSpec()))
    split = NamedSharding(mesh, PartitionSpec("data"))
    accumulators: dict[str, MomentAccumulator] = {}
    kept: dict[str, list[np.ndarray]] = {name: [] for name in keep}
    count = 0

    def consume(outputs: Mapping[str, jax.Array], valid: int) -> None:
        host = jax.device_get({name: outputs[name] for name in {*moments_of, *keep}})
        for name in moments_of:
            features = host[name][:valid].reshape(valid, -1)
            if name not in accumulators:
                accumulators[name] = MomentAccumulator(features.shape[1])
            accumulators[name].update(features)
        for name in keep:
            kept[name].append(host[name][:valid])

    pending = None
    for batch, valid in _fixed_size(batches):
        if len(batch) % mesh.size == 0:
            batch = jax.device_put(batch, split)
        outputs = network(variables, batch)
        if pending is not None:
            consume(*pending)
        pending = (outputs, valid)
        count += valid
    if pending is not None:
        consume(*pending)
    return FeatureSummary(
        stats={name: accumulator.stats() for name, accumulator in accumulators.items()},
        kept={name: np.concatenate(parts) for name, parts in kept.items() if parts},
        count=count,
    )
