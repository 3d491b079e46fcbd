"""Device mesh, shardings and global-batch assembly for data parallelism with `jax.jit`.

The batch is sharded over a one-axis mesh `data` spanning every device of every process; the
train state is replicated. Devices are ordered by process, so process `p` holds one contiguous
block of rows of each global batch (which rows: `process_rows`).
"""

import hashlib
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from cnngen_jax.errors import UserError

DATA_AXIS = "data"


def make_mesh(devices: list[jax.Device] | None = None) -> Mesh:
    """A `data` mesh over `devices` (default: all devices of all processes), grouped by process."""
    devices = sorted(devices or jax.devices(), key=lambda d: (d.process_index, d.id))
    return Mesh(np.array(devices), (DATA_AXIS,))


def devices_dividing(batch_size: int) -> list[jax.Device]:
    """The most local devices, in order, whose number divides `batch_size`: a run trained on
    another device count is evaluated on this machine without a setting to change."""
    devices = jax.local_devices()
    count = max(n for n in range(1, len(devices) + 1) if batch_size % n == 0)
    return devices[:count]


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def batch_sharded(mesh: Mesh, stacked_axes: int = 0) -> NamedSharding:
    """Rows over the `data` axis, after `stacked_axes` leading axes of stacked batches (the
    D steps of one train step, the steps of one dispatch) that every device holds whole."""
    return NamedSharding(mesh, PartitionSpec(*(None,) * stacked_axes, DATA_AXIS))


def stacked_axes(*counts: int) -> int:
    """How many stacking axes batches of these counts (1: not stacked) carry."""
    return sum(count > 1 for count in counts)


def array_from_host(array: np.ndarray, mesh: Mesh, sharding: NamedSharding | None = None):
    """A global array from this host's copy of the whole of `array` (the same in every
    process), replicated over `mesh` or laid out by `sharding`; each device reads its part."""
    sharding = sharding or replicated(mesh)
    return jax.make_array_from_callback(array.shape, sharding, lambda index: array[index])


def check_batch_size(batch_size: int, mesh: Mesh) -> None:
    devices = mesh.devices.size
    if batch_size <= 0 or batch_size % devices:
        raise UserError(
            f"batch_size={batch_size} (the global batch) must be a positive multiple of the "
            f"{devices} devices; set --config.batch_size to a multiple of {devices}"
        )


def process_rows(mesh: Mesh, global_batch_size: int) -> slice:
    """The contiguous rows of each global batch that this process loads."""
    index_map = batch_sharded(mesh).addressable_devices_indices_map((global_batch_size,))
    bounds = sorted(
        {(idx[0].start or 0, idx[0].stop or global_batch_size) for idx in index_map.values()}
    )
    start, stop = bounds[0][0], bounds[-1][1]
    if sum(b - a for a, b in bounds) != stop - start:
        raise ValueError(f"this process's batch rows are not contiguous: {bounds}")
    return slice(start, stop)


def global_batch(
    local: dict[str, np.ndarray], mesh: Mesh, global_batch_size: int, stacked: int = 0
) -> Any:
    """Assembles each process's rows into globally sharded arrays (B, ...), or (k, B, ...) and
    so on for `stacked` leading axes of stacked batches."""
    sharding = batch_sharded(mesh, stacked)

    def assemble(x: np.ndarray) -> jax.Array:
        shape = list(x.shape)
        shape[stacked] = global_batch_size
        return jax.make_array_from_process_local_data(sharding, x, tuple(shape))

    return jax.tree.map(assemble, local)


def to_host(tree: Any) -> Any:
    """NumPy copies of replicated arrays (works in every process of a multi-process run)."""
    return jax.tree.map(lambda x: np.asarray(x.addressable_data(0)), tree)


def gather(array: jax.Array | np.ndarray) -> np.ndarray:
    """The whole (global) array on this host, however it is sharded over processes."""
    return np.asarray(multihost_utils.process_allgather(array, tiled=True))


def fingerprint(tree: Any) -> np.ndarray:
    """A digest of this process's copy of a replicated pytree, as uint32 words."""
    digest = hashlib.sha256()
    for leaf in jax.tree.leaves(to_host(tree)):
        digest.update(np.ascontiguousarray(leaf).tobytes())
    return np.frombuffer(digest.digest(), np.uint32)


def assert_replicas_equal(tree: Any, what: str) -> None:
    """Fails loudly if processes hold different copies of a replicated state."""
    if jax.process_count() > 1:
        multihost_utils.assert_equal(fingerprint(tree), f"{what} differs between processes")


def sync(name: str) -> None:
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(name)
