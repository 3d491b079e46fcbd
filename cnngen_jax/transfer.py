"""Starting a run from another run's weights (`config.init_from`): fine-tuning, transfer to
other data, an unconditional model grown into a conditional one.

Every array of the new train state whose name and shape match one in the source checkpoint is
taken from it: parameters, their moving averages and layer state (BatchNorm statistics,
spectral-norm vectors); optimizer states only with `config.init_from_optimizer`. The rest (a new
class embedding, a first layer for other image channels) keeps its fresh initialisation, and the
step starts at 0.
"""

import dataclasses
from typing import Any

import jax
import numpy as np

from cnngen_jax import checkpoint, files
from cnngen_jax.errors import UserError


@dataclasses.dataclass(frozen=True)
class Transfer:
    """What `transplant` did, by array name."""

    source: str
    restored: list[str]
    fresh: list[str]

    def report(self) -> str:
        """The restored and the freshly initialised arrays, grouped by module."""

        def modules(names: list[str]) -> str:
            grouped = sorted({name.rsplit("/", 1)[0] for name in names})
            return "\n".join(f"  {module}" for module in grouped) or "  (none)"

        return (
            f"init_from {self.source}: {len(self.restored)} arrays restored, "
            f"{len(self.fresh)} initialised fresh.\nrestored:\n{modules(self.restored)}\n"
            f"initialised fresh:\n{modules(self.fresh)}"
        )


def _taken(name: str, with_optimizer: bool) -> bool:
    """Whether an array of this name is taken from the source at all."""
    if name == "step":
        return False
    return with_optimizer or "opt_state" not in name.split("/")


def transplant(
    state: Any, path: files.PathLike, with_optimizer: bool, num_seeds: int = 1
) -> tuple[Any, Transfer]:
    """`state` with every array that fits taken from the checkpoint at `path` (a local path or a
    URI such as gs://bucket/run, read through `checkpoint.read_state`), placed as the
    state's own arrays are; a UserError if nothing fits (an unrelated model). A state of
    `num_seeds` > 1 stacked replicas takes a one-seed source's array into every replica."""
    source, saved = checkpoint.read_state(path)
    leaves, treedef = jax.tree_util.tree_flatten_with_path(state)
    values, restored, fresh = [], [], []
    for key_path, leaf in leaves:
        name = checkpoint.path_name(key_path)
        old = saved.get(name)
        shapes = [leaf.shape] if num_seeds == 1 else [leaf.shape, leaf.shape[1:]]
        fits = old is not None and old.shape in shapes and old.dtype == leaf.dtype
        if _taken(name, with_optimizer) and fits:
            values.append(jax.device_put(np.broadcast_to(old, leaf.shape), leaf.sharding))
            restored.append(name)
            continue
        values.append(leaf)
        if name != "step":
            fresh.append(name)
    if not restored:
        raise UserError(
            f"config.init_from: no parameter of {source} fits this model (names and shapes all "
            "differ); point it at a run of the same architecture"
        )
    return jax.tree_util.tree_unflatten(treedef, values), Transfer(source, restored, fresh)
