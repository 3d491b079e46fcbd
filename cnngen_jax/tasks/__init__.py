"""Model families ("tasks"), each in its own module, selected by `config.task`.

A task owns everything that differs between families: how the train state is built, the pure
train step, the pictures written during training and any held-out evaluation. The trainer in
`cnngen_jax.train` only talks to the `Task` interface below and never asks which family it runs.
"""

from collections.abc import Callable, Iterator
from typing import Any, Protocol

import jax
import ml_collections
import numpy as np

from cnngen_jax.data import DatasetInfo
from cnngen_jax.registry import Registry

PyTree = Any
Batch = dict[str, jax.Array]
Metrics = dict[str, jax.Array]


class Task(Protocol):
    """What the trainer needs from a model family.

    `init_state` and `train_step` are pure and traced under `jax.jit`; the state they return is a
    pytree with an integer `step` field. Randomness is derived from `config.seed` and the step, so
    a resumed run draws exactly the numbers an uninterrupted one would.
    """

    def init_state(self) -> PyTree:
        """The initial train state (parameters, optimizer states, statistics, step)."""

    def train_step(self, state: PyTree, batch: Batch) -> tuple[PyTree, Metrics]:
        """One optimisation step on a global batch; metrics are scalars."""

    def networks(self, state: PyTree) -> dict[str, PyTree]:
        """Parameters of each network by name, for the parameter overview."""

    def images(self, state: PyTree, examples: Batch) -> dict[str, jax.Array]:
        """Named image batches in [-1, 1], (N, H, W, C), written as grids every sample step.

        `examples` is a fixed global batch of the held-out split (same every call), for
        families that show reconstructions or interpolations; others ignore it.
        """

    def generate(self, state: PyTree, key: jax.Array, num_images: int) -> jax.Array:
        """`num_images` samples in [-1, 1] drawn with `key`, for `cnngen_jax.evaluate` (FID,
        KID, ...). Optional: families without it cannot be evaluated by sample quality."""

    def evaluate(
        self, state: PyTree, batches: Callable[[], Iterator[Batch]]
    ) -> dict[str, np.ndarray]:
        """Held-out metrics over the batches from `batches()`; {} for families with none."""


# Independent random streams derived from config.seed.
TRAIN_STREAM, INIT_STREAM, SAMPLE_STREAM, EVAL_STREAM = range(4)


def seed_key(seed: int, stream: int, impl: str | None = None) -> jax.Array:
    """The key of one random stream; call it inside jitted code so nothing runs eagerly.

    Parameter initialisation may use a PRNG that compiles faster (`config.init_prng_impl`);
    training draws always use the default (threefry), whose numbers do not depend on how the
    computation is partitioned over devices.
    """
    return jax.random.fold_in(jax.random.key(seed, impl=impl), stream)


TASKS = Registry("task", "config.task")
register_task = TASKS.register


def create_task(config: ml_collections.ConfigDict, data_info: DatasetInfo) -> Task:
    """Builds the task named by `config.task`; its constructor validates its own settings."""
    from cnngen_jax.tasks import gan, vae  # noqa: F401  (registers its task)

    return TASKS.get(config.task)(config, data_info)
