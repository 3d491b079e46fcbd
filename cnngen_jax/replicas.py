"""Several seeds in one compiled step (`config.num_seeds = K`): a seed ablation as one run.

The K replicas (seeds `seed` ... `seed + K - 1`) are the task's own train state stacked along a
new leading axis and stepped by `jax.vmap` over the state and the keys, every replica seeing the
same batches. Everything with state (parameters, optimizer moments, BatchNorm statistics,
spectral-norm vectors, the EMA generator) is per replica, so replica i initialises and trains
as a separate run with seed `seed + i` would on the same batches. With K = 1 nothing is
stacked: the state, the checkpoints and every command that reads them stay as they were.

Shared on purpose: the data order (it follows `config.seed`, as the batches are common to all),
and the keys of the sample pictures and the held-out evaluation (those of `config.seed`), so
that the replicas' pictures and metrics compare models, not noise draws. A non-finite metric in
any replica stops the run (it names the seed), as it would stop a separate run.
"""

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def seeds(seed: int, num_seeds: int) -> list[int]:
    """The replicas' seeds, in replica order."""
    return list(range(seed, seed + num_seeds))


def replica(state: Any, index: int) -> Any:
    """Replica `index` of a stacked state: a state of the task's own shape."""
    return jax.tree.map(lambda leaf: leaf[index], state)


def each(state: Any, num_seeds: int) -> list[Any]:
    """The replicas of `state` as states of the task's own shape (`[state]` for one seed)."""
    return [state] if num_seeds == 1 else [replica(state, i) for i in range(num_seeds)]


def first(state: Any, num_seeds: int) -> Any:
    """Replica 0 (the run's `config.seed`), e.g. for the shapes of the parameter overview."""
    return state if num_seeds == 1 else replica(state, 0)


def stack(states: list[Any]) -> Any:
    """Replicas (states of one shape) stacked along a new leading axis."""
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *states)


def per_replica(function: Callable[[Any], Any], state: Any, num_seeds: int) -> Any:
    """`function` applied to each replica of `state` in turn, on the host, and stacked again:
    for what cannot be traced, such as reading pretrained weights or another run's checkpoint."""
    if num_seeds == 1:
        return function(state)
    return stack([function(one) for one in each(state, num_seeds)])


def summarize(values: dict[str, np.ndarray], replica_seeds: list[int]) -> dict[str, float]:
    """Per-replica scalars, (K,) each, as `name` (the mean over replicas), `name/std` and
    `name/seed_<s>`; with one replica, `name` alone."""
    if len(replica_seeds) == 1:
        return {name: float(np.reshape(value, ())) for name, value in values.items()}
    summary = {}
    for name, value in values.items():
        value = np.asarray(value, np.float64)
        summary[name] = float(value.mean())
        summary[f"{name}/std"] = float(value.std())
        for seed, replica_value in zip(replica_seeds, value, strict=True):
            summary[f"{name}/seed_{seed}"] = float(replica_value)
    return summary


def summarize_results(results: list[dict[str, Any]], replica_seeds: list[int]) -> dict[str, Any]:
    """Evaluation results, one dict per replica, as one: scalars as `summarize` gives them,
    anything else (per-class lists, ...) as `name/seed_<s>` (as `name` with one replica)."""
    scalars = [name for name in results[0] if np.ndim(results[0][name]) == 0]
    stacked = {name: np.stack([result[name] for result in results]) for name in scalars}
    summary: dict[str, Any] = summarize(stacked, replica_seeds)
    for name in results[0]:
        if name in scalars:
            continue
        if len(results) == 1:
            summary[name] = results[0][name]
            continue
        for seed, result in zip(replica_seeds, results, strict=True):
            summary[f"{name}/seed_{seed}"] = result[name]
    return summary


def image_names(batches: dict[str, np.ndarray], replica_seeds: list[int]) -> dict[str, np.ndarray]:
    """Picture batches with a leading replica axis as one batch per replica, `name_seed<s>`;
    with one replica, unchanged."""
    if len(replica_seeds) == 1:
        return batches
    return {
        f"{name}_seed{s}": batch[i]
        for name, batch in batches.items()
        for i, s in enumerate(replica_seeds)
    }
