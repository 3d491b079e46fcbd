"""Pure Flax Linen modules: no optimizers, no training loops.

Model files register builders with `@register_model(name, family)`; tasks look them up with
`get_model(name, family)`, so adding an architecture never edits an import table and a config
naming a model of another family is caught before anything is built.
"""

import dataclasses
from collections.abc import Callable

import flax.linen as nn

from cnngen_jax.errors import UserError
from cnngen_jax.registry import Registry

MODELS = Registry("model", "config.model.name", package=__name__)


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
    """Registers a builder `(model_config, image_size, channels, dtype, num_classes) -> modules`
    for the tasks of `family` (a `config.task` name); `num_classes` 0 builds the unconditional
    model."""

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
