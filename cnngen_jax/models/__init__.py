"""Pure Flax Linen modules: no optimizers, no training loops.

Model files register builders with `@register_model(name)`; tasks look them up with
`get_model(name)` so that adding an architecture never edits an import table.
"""

from collections.abc import Callable

from cnngen_jax.registry import Registry

MODELS = Registry("model", "config.model.name")
register_model = MODELS.register


def get_model(name: str) -> Callable:
    """The builder registered under `name`."""
    from cnngen_jax.models import dcgan, vae  # noqa: F401  (registers its builders)

    return MODELS.get(name)
