"""Using a trained run without its training data: rebuild the task and restore its weights from
the workdir alone (config.json and a checkpoint), for the command-line tools and notebooks.

    run = load_run("runs/srresnet")          # the latest complete checkpoint
    run = load_run("runs/srresnet", step=400)
    restored = run.task.restore(run.state, low_resolution_images)
"""

import dataclasses
import json
import os
from collections.abc import Callable
from typing import Any

import jax
import ml_collections

from cnngen_jax import checkpoint, data, replicas, tasks, train
from cnngen_jax.errors import UserError

# Settings added after runs were first written, with the value that reproduces those runs: a
# config.json without them (an unconditional model from before version 0.2.0) still loads.
ALL_ADDED_SETTINGS = {"num_seeds": 1}
ADDED_SETTINGS = {
    "gan": {"model.conditioning": "none", "class_loss_weight": 1.0, "freeze_d_blocks": 0},
    "vae": {"model.conditioning": "none"},
}


def load_run_config(workdir: str) -> ml_collections.ConfigDict:
    """The run's config.json as an (unlocked) ConfigDict, completed by `ADDED_SETTINGS`."""
    path = os.path.join(workdir, "config.json")
    if not os.path.isfile(path):
        raise UserError(f"{path} does not exist; pass the --workdir of a training run")
    with open(path) as f:
        config = ml_collections.ConfigDict(json.load(f))
    for key, value in {**ALL_ADDED_SETTINGS, **ADDED_SETTINGS.get(config.task, {})}.items():
        *parents, leaf = key.split(".")
        node = config
        for parent in parents:
            node = node[parent]
        if leaf not in node:
            node[leaf] = value
    return config


def compiled(method: Callable) -> Callable:
    """`jax.jit(method)` of a task's method, made once per task and method: every `jax.jit` of a
    bound method (a new object at each attribute access) would compile again. Kept on the task,
    so it goes when the task goes (a module-level cache would keep every task ever loaded)."""
    owner = getattr(method, "__self__", None)
    if owner is None:  # a plain function is one object: jit caches its compilations itself
        return jax.jit(method)
    cache = vars(owner).setdefault("_compiled", {})
    if method.__name__ not in cache:
        cache[method.__name__] = jax.jit(method)
    return cache[method.__name__]


@dataclasses.dataclass
class LoadedRun:
    """A trained run: its settings, its task (model and methods) and the restored train state."""

    config: ml_collections.ConfigDict
    task: tasks.Task
    state: Any
    step: int


def load_run(workdir: str, step: int | None = None, seed: int | None = None) -> LoadedRun:
    """The run in `workdir` at `step` (default: its latest complete checkpoint), on the default
    device. A run of several seeds (`config.num_seeds`) gives the replica of `seed` (default:
    its first, `config.seed`). Opens config.json and the checkpoint only, never the dataset
    (of a `dir:PATH` dataset, its metadata for the channels and classes)."""
    config = load_run_config(workdir)
    replica_seeds = replicas.seeds(config.seed, config.num_seeds)
    seed = config.seed if seed is None else seed
    if seed not in replica_seeds:
        raise UserError(
            f"seed {seed} is not one of the run's seeds {replica_seeds} (config.seed and "
            "config.num_seeds in its config.json)"
        )
    task = tasks.create_task(config, data.dataset_info(config.dataset))
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    abstract = train.abstract_state(task, config, device)
    checkpoint_dir = os.path.join(os.path.abspath(workdir), "checkpoints")
    restored = checkpoint.restore_latest(checkpoint_dir, abstract, config, step=step)
    if restored is None:
        raise UserError(f"no complete checkpoint in {checkpoint_dir}; train the run first")
    state = restored.state
    if config.num_seeds > 1:
        state = replicas.replica(state, replica_seeds.index(seed))
    return LoadedRun(config, task, state, restored.step)
