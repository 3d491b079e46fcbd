"""Every Orbax call of the project: save and restore the train state, the data iterator's state
and the config, asynchronously, keeping the last few complete checkpoints.

Orbax writes each step into a temporary directory and renames it when complete, so a process
killed at any moment (during a save included) leaves the previous complete step as the latest.
"""

import dataclasses
import json
from typing import Any

import ml_collections
import orbax.checkpoint as ocp

from cnngen_jax.errors import UserError

_ITEMS = ("state", "data", "config")


@dataclasses.dataclass
class Restored:
    step: int
    state: Any
    data_state: dict[str, Any]
    config: dict[str, Any]


def _options(**kwargs) -> ocp.CheckpointManagerOptions:
    return ocp.CheckpointManagerOptions(**kwargs)


def restore_latest(
    directory: str, abstract_state: Any, config: ml_collections.ConfigDict
) -> Restored | None:
    """Restores the latest complete checkpoint without writing anything, or None if there is none.

    `abstract_state` (shapes, dtypes, shardings) is the target; a checkpoint of a different
    architecture is reported as a UserError that names the settings which differ.
    """
    manager = ocp.CheckpointManager(directory, options=_options(read_only=True), item_names=_ITEMS)
    step = manager.latest_step()
    if step is None:
        return None
    args = ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state),
        data=ocp.args.JsonRestore(),
        config=ocp.args.JsonRestore(),
    )
    try:
        restored = manager.restore(step, args=args)
    except (ValueError, KeyError, TypeError) as error:
        saved = manager.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore()))
        raise UserError(
            f"{directory} holds a checkpoint (step {step}) of a different architecture than this "
            f"config. Settings that differ (checkpoint -> now): "
            f"{config_diff(saved['config'], config) or 'none found'}. Use a new --workdir, or the "
            f"config the checkpoint was trained with (saved in its config.json). "
            f"(Orbax said: {str(error).splitlines()[0][:300]})"
        ) from None
    finally:
        manager.close()
    return Restored(step, restored["state"], restored["data"], restored["config"])


def config_diff(saved: dict[str, Any], config: ml_collections.ConfigDict) -> str:
    """`key: old -> new` for every leaf setting that differs."""

    def flat(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
        out = {}
        for key, value in tree.items():
            if isinstance(value, dict):
                out.update(flat(value, f"{prefix}{key}."))
            else:
                out[f"{prefix}{key}"] = value
        return out

    old, new = flat(saved), flat(json.loads(config.to_json()))
    keys = sorted(set(old) | set(new))
    return ", ".join(
        f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)
    )


class CheckpointWriter:
    """Asynchronous saves of (state, data iterator state, config) every few steps."""

    def __init__(self, directory: str, max_to_keep: int):
        self._manager = ocp.CheckpointManager(
            directory,
            options=_options(
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
