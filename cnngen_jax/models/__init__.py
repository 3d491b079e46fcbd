"""Pure Flax Linen modules: no optimizers, no training loops.

Model files register builders with `@register_model(name, family)`; tasks look them up with
`get_model(name, family)`, so adding an architecture never edits an import table and a config
naming a model of another family is caught before anything is built. Every builder has one
signature, `builder(settings, spec) -> modules`: its own settings (`config.model` or
`config.discriminator`) and the task's `ModelSpec`.
"""

import dataclasses
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from cnngen_jax.errors import UserError
from cnngen_jax.registry import Registry

MODELS = Registry("model", "config.model.name", package=__name__)


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """What the task asks of a model besides its own settings: the data's shape, the classes and
    the compute dtype, which come from the dataset and the task's settings, not config.model."""

    image_size: int  # the side of the images it makes (or, for a discriminator, sees) in training
    channels: int  # the channels of those images
    # The channels of its input where they differ from `channels`: a restorer's and its
    # discriminator's for inpainting (the image and the mask); None: `channels`.
    in_channels: int | None = None
    num_classes: int = 0  # the classes to condition on; 0: unconditional
    scale: int = 1  # output side / input side (super-resolution); 1 for every other model
    dtype: Any = jnp.float32  # the compute dtype; parameters are float32 whatever it is

    @classmethod
    def of_run(cls, config: Any, channels: int, **fields: Any) -> "ModelSpec":
        """The spec of a run's images: `config.image_size`, the data's `channels`, the run's
        `config.compute_dtype`, and the task's other `fields`."""
        dtype = jnp.dtype(config.compute_dtype)
        return cls(image_size=config.image_size, channels=channels, dtype=dtype, **fields)


@dataclasses.dataclass(frozen=True)
class GANModels:
    """What a GAN builder returns: G maps (B, latent_dim) latents (and labels, when conditional)
    to images in [-1, 1]; D maps images (and labels) to (one logit each, class logits or None);
    both take `train`."""

    generator: nn.Module
    discriminator: nn.Module
    latent_dim: int
    # D's feature blocks from the input up, each the names of its top-level parameter modules
    # (not the output layer or the conditional heads): what FreezeD can freeze.
    discriminator_blocks: tuple[tuple[str, ...], ...] = ()


def register_model(name: str, family: str) -> Callable[[Callable], Callable]:
    """Registers a builder `(settings, spec: ModelSpec) -> modules` for the tasks of `family`
    (a `config.task` name, or `restoration_discriminator`): `settings` is the model's own
    ConfigDict (`config.model`, or `config.discriminator`), `spec` what the task asks of it
    (`spec.num_classes` 0 builds the unconditional model)."""

    def register(builder: Callable) -> Callable:
        builder.family = family
        return MODELS.register(name)(builder)

    return register


def require_image_size(model: str, image_size: int, size: int) -> None:
    """A UserError unless `image_size` is the one size that `model` produces."""
    if image_size != size:
        raise UserError(
            f"model {model!r} produces {size}x{size} images, not image_size={image_size}; "
            f"set --config.image_size={size} (or pick another config.model.name)"
        )


def models_of(family: str) -> list[str]:
    return [name for name in MODELS.names() if MODELS.get(name).family == family]


def get_model(name: str, family: str) -> Callable:
    """The builder registered under `name`, checked to belong to `family`."""
    builder = MODELS.get(name)
    if builder.family != family:
        raise UserError(
            f"model {name!r} (config.model.name) is a {builder.family} model, and task "
            f"{family!r} takes one of: {', '.join(models_of(family))}"
        )
    return builder
