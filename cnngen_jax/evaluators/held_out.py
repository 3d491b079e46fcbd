"""The held-out split as evaluators see it: every call iterates the whole split again, in global
batches laid out over the trainer's mesh (or, without a mesh, as host arrays of one process)."""

import dataclasses
from collections.abc import Callable, Iterator

import jax

from cnngen_jax import data, parallel
from cnngen_jax.data import pipeline
from cnngen_jax.errors import UserError

Batch = dict[str, jax.Array]


@dataclasses.dataclass(frozen=True)
class HeldOut:
    """One split's batches (the last padded: mask 0), and what identifies the split."""

    dataset: str
    split: str
    num_examples: int
    batches: Callable[[], Iterator[Batch]]

    def __call__(self) -> Iterator[Batch]:
        return self.batches()


def held_out(
    dataset: str,
    split: str,
    data_dir: str,
    image_size: int,
    batch_size: int,
    mesh: jax.sharding.Mesh | None = None,
) -> HeldOut:
    """The batches of `split` at `image_size`, `batch_size` images each: global arrays sharded
    over `mesh` (each process reads its rows), or without one all rows in this process.
    Photographs of their own sizes come one per batch, replicated."""
    spec = data.get_spec(dataset)
    try:
        source = data.open_source(dataset, split, data_dir)
    except ValueError as error:  # TFDS: unknown split
        raise UserError(f"split {split!r} of {dataset!r} (--split): {error}") from None
    rows = slice(None) if mesh is None else parallel.process_rows(mesh, batch_size)

    def batches() -> Iterator[Batch]:
        for local in pipeline.eval_batches(
            source, spec, image_size=image_size, global_batch_size=batch_size, rows=rows
        ):
            if mesh is None:
                yield local
            elif spec.variable_size:  # one whole photograph, the same in every process
                yield jax.device_put(local, parallel.replicated(mesh))
            else:
                yield parallel.global_batch(local, mesh, batch_size)

    return HeldOut(dataset, split, len(source), batches)
