"""Every Orbax call of the project: save and restore the train state, the data iterator's state
and the config, asynchronously, keeping the last few complete checkpoints.

Orbax writes each step into a temporary directory and renames it when complete (on object
stores such as gs://, which have no rename, it marks a complete step with a commit file), so a
process killed at any moment (during a save included) leaves the previous complete step as the
latest. Directories are `files.path`s: local (with `~` expanded) or URIs such as gs://bucket/run.
"""

import dataclasses
import json
from typing import Any

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from cnngen_jax import files
from cnngen_jax.errors import UserError

_ITEMS = ("state", "data", "config")


@dataclasses.dataclass
class Restored:
    step: int
    state: Any
    data_state: dict[str, Any]
    config: dict[str, Any]


def restore_latest(
    directory: files.PathLike,
    abstract_state: Any,
    config: ml_collections.ConfigDict,
    step: int | None = None,
) -> Restored | None:
    """Restores the latest complete checkpoint (or the one of `step`) without writing anything,
    or None if there is none.

    `abstract_state` (shapes, dtypes, shardings) is the target; a checkpoint of a different
    architecture is reported, before any array is read, as a UserError that names the shapes
    and the settings which differ.
    """
    directory = files.path(directory)
    options = ocp.CheckpointManagerOptions(read_only=True)
    manager = ocp.CheckpointManager(directory, options=options, item_names=_ITEMS)
    if step is not None and step not in manager.all_steps():
        steps = ", ".join(map(str, manager.all_steps())) or "none"
        manager.close()
        raise UserError(f"no complete checkpoint of step {step} in {directory} (steps: {steps})")
    step = manager.latest_step() if step is None else step
    if step is None:
        manager.close()
        return None
    try:
        mismatch = shape_mismatch(directory / str(step) / "state", abstract_state)
        if mismatch:
            saved = manager.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore()))
            raise UserError(
                f"{directory} holds a checkpoint (step {step}) of a different architecture than "
                f"this config ({mismatch}). Settings that differ (checkpoint -> now): "
                f"{config_diff(saved['config'], config) or 'none found'}. Use a new --workdir, "
                "or the config the checkpoint was trained with (saved in its config.json)."
            )
        args = ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract_state),
            data=ocp.args.JsonRestore(),
            config=ocp.args.JsonRestore(),
        )
        restored = manager.restore(step, args=args)
    finally:
        manager.close()
    return Restored(step, restored["state"], restored["data"], restored["config"])


def path_name(path: tuple) -> str:
    """A pytree key path as 'generator/params/Dense_0/kernel', the same for a train state and
    for the nested dicts a checkpoint restores into."""

    def name(key: Any) -> str:
        return str(getattr(key, "key", getattr(key, "name", getattr(key, "idx", key))))

    return "/".join(name(k) for k in path)


def _shapes(tree: Any) -> dict[str, tuple[int, ...]]:
    flat = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {path_name(path): tuple(leaf.shape) for path, leaf in flat}


def read_state(path: files.PathLike) -> tuple[str, dict[str, np.ndarray]]:
    """The train state saved at `path` as {path name: array} on the host, and which checkpoint
    that was. `path` (local or a URI) is a run's workdir (its latest complete step), its
    checkpoints directory, or one step directory in it; a UserError says what is missing."""
    path = files.path(path, "config.init_from")
    if (path / "checkpoints").is_dir():
        path = path / "checkpoints"
    step = None
    if path.name.isdigit() and (path / "state").is_dir():
        path, step = path.parent, int(path.name)
    if not path.is_dir():
        raise UserError(f"config.init_from={str(path)!r} does not exist; give a run's --workdir")
    options = ocp.CheckpointManagerOptions(read_only=True)
    manager = ocp.CheckpointManager(path, options=options, item_names=_ITEMS)
    try:
        step = manager.latest_step() if step is None else step
        if step is None or step not in manager.all_steps():
            raise UserError(
                f"config.init_from: no complete checkpoint in {path}; train that run first, or "
                "point at a workdir that has one"
            )
        state = ocp.StandardCheckpointer().restore(path / str(step) / "state")
    finally:
        manager.close()
    flat = jax.tree_util.tree_flatten_with_path(state)[0]
    return f"{path} step {step}", {path_name(p): np.asarray(leaf) for p, leaf in flat}


def shape_mismatch(state_directory: files.PathLike, abstract_state: Any) -> str:
    """'' when the saved state has exactly the leaves and shapes of `abstract_state`, else the
    first few differences. Read from metadata, so nothing is restored or left half-read."""
    metadata = ocp.StandardCheckpointer().metadata(files.path(state_directory))
    saved = _shapes(metadata.item_metadata.tree)
    wanted = _shapes(abstract_state)
    differences = [
        f"{path}: {saved.get(path, 'absent')} -> {wanted.get(path, 'absent')}"
        for path in sorted(set(saved) | set(wanted))
        if saved.get(path) != wanted.get(path)
    ]
    return "; ".join(differences[:4]) + (" ..." if len(differences) > 4 else "")


def flat_settings(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested settings as {"model.width": 8, ...}: one entry per leaf, dotted as on the command
    line."""
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(flat_settings(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def config_diff(saved: dict[str, Any], config: ml_collections.ConfigDict) -> str:
    """`key: old -> new` for every leaf setting that differs."""
    old, new = flat_settings(saved), flat_settings(json.loads(config.to_json()))
    keys = sorted(set(old) | set(new))
    return ", ".join(
        f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)
    )


class CheckpointWriter:
    """Asynchronous saves of (state, data iterator state, config) every few steps."""

    def __init__(self, directory: files.PathLike, max_to_keep: int):
        self._manager = ocp.CheckpointManager(
            files.path(directory),
            options=ocp.CheckpointManagerOptions(
                max_to_keep=max_to_keep,
                cleanup_tmp_directories=True,
                enable_async_checkpointing=True,
            ),
            item_names=_ITEMS,
        )

    def save(
        self, step: int, state: Any, data_state: dict[str, Any], config: ml_collections.ConfigDict
    ) -> None:
        args = ocp.args.Composite(
            state=ocp.args.StandardSave(state),
            data=ocp.args.JsonSave(data_state),
            config=ocp.args.JsonSave(json.loads(config.to_json())),
        )
        self._manager.save(step, args=args, force=True)

    def close(self) -> None:
        """Waits for the save in flight to be complete and on disk."""
        self._manager.wait_until_finished()
        self._manager.close()
