"""Where a run's training batches live and how each dispatch of the jitted step gets them.

`config.data_placement`:

* `host`: the Grain pipeline (`pipeline.train_iterator`) forms each process's rows of every
  global batch on the host (gathered from the decoded split when it takes at most
  HOST_MEMORY_FRACTION of the RAM); each dispatch's batches are stacked and transferred.
* `device`: the training split, decoded once at the training size (`decoded.decoded_split`,
  cached on disk), is held in every device's memory as uint8 (replicated, or sharded over the
  `data` axis when only that fits) and each step gathers its batch inside the jitted program.
  The indices come from the same order the host pipeline reads (`order`): a run's batches do
  not depend on where its data lives, and resuming, two processes and `num_seeds` behave the
  same. Per dispatch the host sends one integer; the epochs' orders are computed on the
  devices too, a block of epochs at a time (`order.epoch_orders`).
* `auto` (the default): `device` when the decoded split fits DEVICE_MEMORY_FRACTION of each
  device's memory (replicated, else sharded), `host` otherwise and for photographs of their
  own sizes.

A dispatch runs `steps_per_dispatch` train steps (`train.jit_dispatch`); `Feed.batch(inputs, i)`
is the batch of its step i, traced inside that program. Both feeds keep Grain's checkpointed
state, `{"next_index": steps consumed}`, so a run may resume under the other placement.
"""

import dataclasses
import os
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding, PartitionSpec

from cnngen_jax import data, parallel
from cnngen_jax.data import decoded, order
from cnngen_jax.errors import UserError
from cnngen_jax.pixels import to_float

PLACEMENTS = ("auto", "device", "host")
# The share of each device's memory a resident split may take: the rest is the model's.
DEVICE_MEMORY_FRACTION = 0.25
# The host path gathers from the decoded split (decoded in memory once, then memory-mapped) when
# it takes at most this share of the host's RAM; larger splits are decoded record by record.
HOST_MEMORY_FRACTION = 0.25
# The float value of each 8-bit level, as the host pipeline computes it: looked up, because
# XLA may compute p / 127.5 - 1 one rounding away from NumPy.
_LEVELS = to_float(np.arange(256, dtype=np.uint8))
# Epochs of orders computed at once: as many as fit this many int32 values (4 MiB) counting the
# cipher's whole block per epoch, at least those one dispatch reaches.
_ORDER_BLOCK = 1 << 20


class Feed(Protocol):
    """What the training loop asks of where its batches come from."""

    placement: str  # 'host', 'device' (replicated) or 'device-sharded'

    def next_inputs(self) -> Any:
        """The arguments of the next dispatch's batches (and advances the state)."""

    def batch(self, inputs: Any, i: jax.Array | int) -> Any:
        """Traced: the batch of step `i` of a dispatch, from its `inputs`."""

    def get_state(self) -> dict[str, Any]: ...

    def set_state(self, state: dict[str, Any]) -> None: ...


@dataclasses.dataclass
class Layout:
    """What both feeds share: the mesh, the global batch, and the stacking of one dispatch."""

    mesh: jax.sharding.Mesh
    batch_size: int
    batches_per_step: int  # global batches one train step takes (a GAN's D steps)
    steps_per_dispatch: int


class HostFeed:
    """Batches from the host pipeline, `steps_per_dispatch` of them stacked per dispatch."""

    placement = "host"

    def __init__(self, iterator: Any, layout: Layout):
        self.iterator, self.layout = iterator, layout

    def next_inputs(self) -> Any:
        k = self.layout.steps_per_dispatch
        steps = [next(self.iterator) for _ in range(k)]
        local = jax.tree.map(lambda *each: np.stack(each), *steps) if k > 1 else steps[0]
        stacked = parallel.stacked_axes(k, self.layout.batches_per_step)
        return parallel.global_batch(local, self.layout.mesh, self.layout.batch_size, stacked)

    def batch(self, inputs: Any, i: jax.Array | int) -> Any:
        if self.layout.steps_per_dispatch == 1:
            return inputs
        return jax.tree.map(lambda x: x[i], inputs)

    def get_state(self) -> dict[str, Any]:
        return self.iterator.get_state()

    def set_state(self, state: dict[str, Any]) -> None:
        self.iterator.set_state(state)


class DeviceFeed:
    """Batches gathered on the devices from a resident uint8 split, in the host order."""

    def __init__(self, split: decoded.DecodedSplit, layout: Layout, seed: int, sharded: bool):
        self.layout, self.seed, self.sharded = layout, seed, sharded
        self.placement = "device-sharded" if sharded else "device"
        self.num_examples = len(split)
        mesh = layout.mesh
        images = split.images
        if sharded:  # rows padded to a multiple of the devices; the padding is never read
            padding = -len(images) % mesh.devices.size
            images = np.concatenate([images, np.zeros((padding, *images.shape[1:]), np.uint8)])
            sharding = NamedSharding(mesh, PartitionSpec(parallel.DATA_AXIS))
        else:
            sharding = parallel.replicated(mesh)
        self.images = parallel.array_from_host(images, mesh, sharding)
        self.labels = None
        if split.labels is not None:
            self.labels = parallel.array_from_host(np.asarray(split.labels), mesh)
        self.next_index = 0  # steps consumed, as Grain counts them
        self._orders: tuple[int, jax.Array, int] | None = None  # first epoch, orders, count

    @property
    def positions_per_dispatch(self) -> int:
        layout = self.layout
        return layout.steps_per_dispatch * layout.batches_per_step * layout.batch_size

    def next_inputs(self) -> Any:
        per_step = self.layout.batches_per_step * self.layout.batch_size
        epoch, offset = divmod(self.next_index * per_step, self.num_examples)
        self.next_index += self.layout.steps_per_dispatch
        first, orders = self._epoch_orders(epoch)
        offset += (epoch - first) * self.num_examples  # from the start of the first order
        return {
            "images": self.images,
            "labels": self.labels,
            "order": orders,
            "offset": parallel.array_from_host(np.int32(offset), self.layout.mesh),
        }

    def _epoch_orders(self, epoch: int) -> tuple[int, jax.Array]:
        """The first epoch and the orders (E, N) int32 of a block of epochs holding `epoch` and
        every epoch a dispatch starting in it reaches: computed on the devices once per block
        (as many epochs as _ORDER_BLOCK allows, so that small datasets do not recompute every
        few steps) and kept there."""
        n = self.num_examples
        reach = (n + self.positions_per_dispatch - 2) // n  # epochs after the first
        if self._orders is None or not (
            self._orders[0] <= epoch <= self._orders[0] + self._orders[2] - reach - 1
        ):
            count = reach + max(1, _ORDER_BLOCK // max(n, order.block_size(n)))
            epochs = range(epoch, epoch + count)
            orders = order.epoch_orders(n, self.seed, epochs, parallel.replicated(self.layout.mesh))
            self._orders = (epoch, orders, count)
        return self._orders[0], self._orders[1]

    def batch(self, inputs: Any, i: jax.Array | int) -> Any:
        layout = self.layout
        per_step = layout.batches_per_step * layout.batch_size
        positions = inputs["offset"] + i * per_step + jnp.arange(per_step, dtype=jnp.int32)
        indices = inputs["order"][positions // self.num_examples, positions % self.num_examples]
        shape = (layout.batch_size,)
        if layout.batches_per_step > 1:
            shape = (layout.batches_per_step, layout.batch_size)
        sharding = parallel.batch_sharded(layout.mesh, len(shape) - 1)
        indices = jax.lax.with_sharding_constraint(indices.reshape(shape), sharding)
        pixels = self._gather(inputs["images"], indices)
        batch = {"image": jnp.asarray(_LEVELS)[pixels]}
        if inputs["labels"] is not None:
            batch["label"] = inputs["labels"][indices]
        return batch

    def _gather(self, images: jax.Array, indices: jax.Array) -> jax.Array:
        if not self.sharded:
            return images[indices]  # replicated operand, rows of the indices: no communication
        return _sharded_gather(images, indices, self.layout.mesh)

    def get_state(self) -> dict[str, Any]:
        return {"next_index": self.next_index}

    def set_state(self, state: dict[str, Any]) -> None:
        self.next_index = int(state["next_index"])


def _sharded_gather(images: jax.Array, indices: jax.Array, mesh: jax.sharding.Mesh) -> jax.Array:
    """Rows `indices` of `images` sharded over the data axis: each device takes the rows it
    holds (zeros elsewhere) for the whole global batch, and a reduce-scatter leaves each device
    its own rows."""
    axis = parallel.DATA_AXIS
    stacked = indices.ndim - 1
    spec = PartitionSpec(*(None,) * stacked, axis)

    def local(chunk, wanted):
        start = jax.lax.axis_index(axis) * chunk.shape[0]
        here = (wanted >= start) & (wanted < start + chunk.shape[0])
        rows = chunk[jnp.clip(wanted - start, 0, chunk.shape[0] - 1)]
        rows = jnp.where(here.reshape(*here.shape, 1, 1, 1), rows, 0)  # one device holds each
        return jax.lax.psum_scatter(rows, axis, scatter_dimension=stacked, tiled=True)

    gathered = jax.shard_map(
        local,
        mesh=mesh,
        in_specs=(PartitionSpec(axis), PartitionSpec()),
        out_specs=spec,
        check_vma=False,
    )(images, jax.lax.with_sharding_constraint(indices, parallel.replicated(mesh)))
    return gathered


def host_memory() -> int:
    """This host's RAM."""
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def decoded_on_host(dataset: str, num_examples: int, image_size: int) -> bool:
    """Whether the host path reads `dataset` from its decoded split (`decoded.decoded_split`)."""
    if data.get_spec(dataset).variable_size:
        return False
    return _split_bytes(dataset, num_examples, image_size) <= HOST_MEMORY_FRACTION * host_memory()


def _split_bytes(dataset: str, num_examples: int, image_size: int) -> int:
    spec = data.get_spec(dataset)
    labelled = spec.num_classes is not None
    return decoded.split_bytes(num_examples, image_size, spec.channels, labelled)


def device_memory(mesh: jax.sharding.Mesh) -> int:
    """The memory of the smallest device of `mesh` (the same figure in every process): its
    allocator's limit on accelerators, an equal share of the host's RAM on CPU."""
    local = [d for d in mesh.devices.flat if d.process_index == jax.process_index()]
    sizes = []
    for device in local:
        stats = device.memory_stats() or {}
        if "bytes_limit" in stats:
            sizes.append(stats["bytes_limit"])
        else:
            sizes.append(host_memory() // len(local))
    smallest = np.asarray(min(sizes), np.int64)
    if jax.process_count() > 1:
        smallest = np.min(multihost_utils.process_allgather(smallest))
    return int(smallest)


def choose_placement(
    placement: str, dataset: str, num_examples: int, image_size: int, mesh: jax.sharding.Mesh
) -> str:
    """'host', 'device' or 'device-sharded' for `config.data_placement`, or a UserError when
    `device` cannot hold the split."""
    spec = data.get_spec(dataset)
    if placement == "host":
        return "host"
    if spec.variable_size:
        if placement == "auto":
            return "host"
        raise UserError(
            f"data_placement='device' needs images of one size, but {dataset!r} holds "
            "photographs of their own sizes (read as random crops); set "
            "--config.data_placement=host (or auto)"
        )
    needed = _split_bytes(dataset, num_examples, image_size)
    budget = int(DEVICE_MEMORY_FRACTION * device_memory(mesh))
    if needed <= budget:
        return "device"
    if -(-needed // mesh.devices.size) <= budget:
        return "device-sharded"
    if placement == "auto":
        return "host"
    raise UserError(
        f"data_placement='device': the training split of {dataset!r} at {image_size} px needs "
        f"{needed / 2**20:.0f} MiB, {-(-needed // mesh.devices.size) / 2**20:.0f} MiB per "
        f"device sharded over {mesh.devices.size}, but {budget / 2**20:.0f} MiB "
        f"({DEVICE_MEMORY_FRACTION:.0%} of a device's memory) is available; set "
        "--config.data_placement=auto or host"
    )
