"""Pure Flax Linen modules: no optimizers, no training loops.

Model files register builders with `@register_model(name)`; tasks look them up with
`get_model(name)` so that adding an architecture never edits an import table.
"""

from collections.abc import Callable

from cnngen_jax.errors import UserError

_MODELS: dict[str, Callable] = {}


def register_model(name: str) -> Callable[[Callable], Callable]:
    """Decorator that makes a model builder selectable by `config.model.name`."""

    def register(builder: Callable) -> Callable:
        if name in _MODELS:
            raise ValueError(f"model {name!r} is registered twice")
        _MODELS[name] = builder
        return builder

    return register


def get_model(name: str) -> Callable:
    """Returns the builder registered under `name`, or a UserError listing the known ones."""
    from cnngen_jax.models import dcgan  # noqa: F401  (registers its builders)

    if name not in _MODELS:
        known = ", ".join(sorted(_MODELS))
        raise UserError(f"unknown model {name!r} (config.model.name); choose one of: {known}")
    return _MODELS[name]
