"""Model families ("tasks"), each in its own module, selected by `config.task`.

A task owns everything that differs between families: how the train state is built, the pure
train step and the pictures written during training. The trainer in `cnngen_jax.train` only
talks to the `Task` interface below and never asks which family it runs. What a trained model
can be used for (sampling, encoding, transforming images, ...) is declared by the protocols of
`cnngen_jax.capabilities`, which commands and evaluators (`cnngen_jax.evaluators`) check.
"""

from collections.abc import Callable
from typing import Any, Protocol

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from cnngen_jax.data import DatasetInfo
from cnngen_jax.errors import UserError
from cnngen_jax.registry import Registry

PyTree = Any
Batch = dict[str, jax.Array]
Metrics = dict[str, jax.Array]


class Task(Protocol):
    """What the trainer needs from a model family.

    `init_state` and `train_step` are pure and traced under `jax.jit`; the state they return is a
    pytree with an integer `step` field. Tasks hold no seed: the trainer passes every key,
    derived from `config.seed` (and, for training, the step), so a resumed run draws exactly the
    numbers an uninterrupted one would, and `jax.vmap` over keys trains several seeds at once.
    """

    # What the run is, for messages: "a GAN", "a super-resolution model", ...
    description: str
    # Global batches one train step consumes. With k > 1 the step receives them stacked, each
    # leaf shaped (k, B, ...), e.g. one real batch per discriminator update of a GAN.
    batches_per_step: int

    def init_state(self, key: jax.Array) -> PyTree:
        """The initial train state (parameters, optimizer states, statistics, step)."""

    def train_step(self, state: PyTree, batch: Batch, key: jax.Array) -> tuple[PyTree, Metrics]:
        """One optimisation step on a global batch with the step's `key`; metrics are scalars."""

    def networks(self, state: PyTree) -> dict[str, PyTree]:
        """Parameters of each network by name, for the parameter overview."""

    def images(self, state: PyTree, examples: Batch, key: jax.Array) -> dict[str, jax.Array]:
        """Named image batches in [-1, 1], (N, H, W, C), written as grids every sample step.

        `examples` is a fixed global batch of the held-out split and `key` a fixed key (both the
        same every call), so grids of successive steps show the same latents and inputs.
        """

    def with_pretrained(self, state: PyTree) -> PyTree:
        """Optional: `state` (from `init_state`, on its devices) with the pretrained weights the
        task reads from files, such as a frozen feature network that `init_state` can only
        shape. Called once for a new run, before `config.init_from`; a resumed run has them in
        its checkpoint."""


@flax.struct.dataclass
class NetState:
    """One network's part of a train state: its parameters, its other variable collections
    (BatchNorm statistics, spectral-norm vectors, ...: whatever the module declares) and its
    optimizer state. A new kind of layer state needs no new field."""

    params: PyTree
    collections: dict[str, PyTree]
    opt_state: PyTree

    def variables(self, params: PyTree | None = None) -> dict[str, PyTree]:
        """The variables to `apply` with, optionally with other parameters."""
        return {"params": self.params if params is None else params, **self.collections}

    def updated(
        self, optimizer: optax.GradientTransformation, grads: PyTree, collections: dict
    ) -> "NetState":
        """One optimizer update of the parameters, with the collections the step produced."""
        updates, opt_state = optimizer.update(grads, self.opt_state, self.params)
        return NetState(optax.apply_updates(self.params, updates), collections, opt_state)


def apply_network(module: nn.Module, variables: dict, *args, mutable: list[str], **kwargs):
    """`module.apply` returning (output, every collection of `variables` after the call)."""
    collections = {k: v for k, v in variables.items() if k != "params"}
    if not mutable:
        return module.apply(variables, *args, **kwargs), collections
    out, updates = module.apply(variables, *args, mutable=mutable, **kwargs)
    return out, {**collections, **updates}


def init_network(
    module: nn.Module, key: jax.Array, optimizer: optax.GradientTransformation, *inputs, **kwargs
) -> NetState:
    """`module`'s variables for example `inputs`, split into parameters and collections."""
    variables = dict(module.init(key, *inputs, **kwargs))
    params = variables.pop("params")
    return NetState(params, variables, optimizer.init(params))


# Pictures of the image-to-image tasks during training: the first PREVIEW_IMAGES held-out images,
# centre crops of at most four training crops' side (and 256 pixels).
PREVIEW_IMAGES = 4


def preview_side(image_size: int) -> int:
    return min(256, 4 * image_size)


def centre_crop(images: jax.Array, height: int, width: int) -> jax.Array:
    """The central height x width window of (N, H, W, C) images (all of a side that is
    shorter)."""
    height, width = min(height, images.shape[1]), min(width, images.shape[2])
    top, left = (images.shape[1] - height) // 2, (images.shape[2] - width) // 2
    return images[:, top : top + height, left : left + width]


def placed_like(values: PyTree, like: PyTree) -> PyTree:
    """Host arrays `values` (pretrained weights read from a file) as float32 device arrays,
    each placed as the matching leaf of `like` (the state's placeholder) is."""
    return jax.tree.map(
        lambda value, old: jax.device_put(np.asarray(value, np.float32), old.sharding),
        values,
        like,
    )


def conditional_classes(conditioning: str, choices: tuple[str, ...], data_info: DatasetInfo) -> int:
    """The number of classes `config.model.conditioning` conditions on: 0 for "none", the
    dataset's classes otherwise; a UserError for an unknown method or unlabelled data."""
    if conditioning not in choices:
        raise UserError(
            f"unknown conditioning {conditioning!r} (config.model.conditioning); choose one of: "
            f"{', '.join(choices)}"
        )
    if conditioning == "none":
        return 0
    if not data_info.num_classes:
        raise UserError(
            f"config.model.conditioning={conditioning!r} needs class labels, and dataset "
            f"{data_info.name!r} (config.dataset) has none; pick a labelled dataset or set "
            "--config.model.conditioning=none"
        )
    return data_info.num_classes


def balanced_labels(count: int, num_classes: int) -> jax.Array:
    """0, 1, ..., num_classes - 1, 0, 1, ...: `count` labels, every class equally often."""
    return jnp.arange(count, dtype=jnp.int32) % num_classes


def class_grid(
    draw: Callable[[jax.Array, jax.Array], jax.Array],
    key: jax.Array,
    num_classes: int,
    num_sample_images: int,
    latent_dim: int,
) -> jax.Array:
    """The picture of a conditional model, (num_classes, columns, H, W, C) from `draw(latents,
    labels)`: row i shows class i, column j the j-th latent drawn with `key`, the same latent in
    every row; about `num_sample_images` images in all."""
    columns = max(1, num_sample_images // num_classes)
    latents = jax.random.normal(key, (columns, latent_dim))
    labels = jnp.repeat(jnp.arange(num_classes), columns)
    images = draw(jnp.tile(latents, (num_classes, 1)), labels)
    return images.reshape(num_classes, columns, *images.shape[1:])


def check_labels(
    labels: Any, num_classes: int, count: int | None = None, setting: str = "labels"
) -> None:
    """A UserError for labels asked of an unconditional model, not `count` of them, or outside
    0..num_classes-1; the values of traced or multi-host labels cannot be read here and pass."""
    if not num_classes:
        raise UserError(f"{setting} were given, but this model is unconditional")
    if count is not None and np.shape(labels) != (count,):
        raise UserError(f"{setting} must be {count} class numbers, got shape {np.shape(labels)}")
    if isinstance(labels, jax.core.Tracer):
        return  # traced inside jit
    if isinstance(labels, jax.Array) and not labels.is_fully_addressable:
        return  # a multi-host array: not all of its values are on this host
    values = np.asarray(labels)
    outside = values[(values < 0) | (values >= num_classes)]
    if outside.size:
        raise UserError(
            f"label {int(outside[0])} ({setting}) is outside the model's classes "
            f"0..{num_classes - 1}"
        )


TASKS = Registry("task", "config.task", package=__name__)
register_task = TASKS.register


def create_task(config: ml_collections.ConfigDict, data_info: DatasetInfo) -> Task:
    """Builds the task named by `config.task`; its constructor validates its own settings."""
    return TASKS.get(config.task)(config, data_info)
