"""Held-out evaluation chosen by config and owned by the trainer (big_vision's `config.evals`).

`config.evals.NAME = {type, every_steps, ...settings}` names an evaluator of a registered `type`
(`@register_evaluator`), built once per run from its settings. Each declares the capability it
needs of the task (`cnngen_jax.capabilities`) and is called

    metrics = evaluator(state, held_out, key)

with one replica's train state, the held-out split (`HeldOut`) and the evaluation key. The trainer
runs every evaluator with `every_steps` > 0 during training; `python -m
cnngen_jax.commands.evaluate` runs them (all, or those asked for) on a checkpoint. Both compute
the same numbers by the same code. Tasks never import evaluators: evaluators consume the
prediction functions the capabilities declare.
"""

import dataclasses
from typing import Any, Protocol

import jax
import ml_collections
import numpy as np

from cnngen_jax import capabilities
from cnngen_jax.errors import UserError
from cnngen_jax.evaluators.held_out import HeldOut
from cnngen_jax.registry import Registry

Batch = dict[str, jax.Array]
Metrics = dict[str, float | np.ndarray]


@dataclasses.dataclass(frozen=True)
class Context:
    """What an evaluator is built from besides its own settings: its name in `config.evals`,
    the run's config, its task and the resolved TFDS data directory."""

    name: str
    config: ml_collections.ConfigDict
    task: Any
    data_dir: str

    def setting(self, key: str) -> str:
        """How a user sets one of the evaluator's settings, for messages: the evaluate
        command's flag or the config path."""
        return f"--{key} or config.evals.{self.name}.{key}"

    def num_images(self, settings: ml_collections.ConfigDict) -> int:
        """The evaluator's `num_images` (the first held-out images scored; 0: all), checked."""
        if settings.num_images < 0:
            raise UserError(
                f"num_images={settings.num_images} ({self.setting('num_images')}) must be >= 0 "
                "(0: the whole split)"
            )
        return settings.num_images


class Evaluator(Protocol):
    """One held-out evaluation; its constructor checks its settings (and the task's capability),
    so a mistake stops a run before it trains."""

    capability: type  # of `cnngen_jax.capabilities`

    def __init__(self, settings: ml_collections.ConfigDict, context: Context): ...

    def __call__(self, state: Any, held_out: HeldOut, key: jax.Array) -> Metrics:
        """Metrics of one replica's `state` on `held_out`, with noise drawn from `key`."""

    def protocol(self) -> dict[str, Any]:
        """How the last call's numbers were obtained: what makes them comparable."""


EVALUATORS = Registry("evaluator", "config.evals.NAME.type", package=__name__)
register_evaluator = EVALUATORS.register
COMMON_SETTINGS = ("type", "every_steps")


def build(settings: ml_collections.ConfigDict, context: Context) -> tuple[Evaluator, int]:
    """The evaluator `settings` (`config.evals.<context.name>`) describe and how often the
    trainer runs it."""
    name = context.name
    for key in COMMON_SETTINGS:
        if key not in settings:
            raise UserError(f"config.evals.{name} has no {key!r}; every evaluator needs {key}")
    every = settings.every_steps
    if isinstance(every, bool) or not isinstance(every, int) or every < 0:
        raise UserError(
            f"config.evals.{name}.every_steps={every!r} must be a whole number >= 0 (0: only "
            "by the evaluate command)"
        )
    evaluator_type = EVALUATORS.get(settings.type)
    capabilities.require(
        context.task, evaluator_type.capability, f"evaluator {name!r} (config.evals.{name})"
    )
    return evaluator_type(settings, context), every


def stamp(evaluator: Evaluator, held_out: HeldOut) -> dict[str, Any]:
    """The protocol of `evaluator`'s last call on `held_out`, with the split it scored."""
    return {"dataset": held_out.dataset, "split": held_out.split, **evaluator.protocol()}


def from_config(
    config: ml_collections.ConfigDict,
    task: Any,
    data_dir: str,
    names: list[str] | None = None,
    during_training: bool = True,
) -> dict[str, tuple[Evaluator, int]]:
    """The evaluators of `config.evals` (only `names`, if given; only those with `every_steps`
    > 0 when `during_training`), by name, with their periods."""
    known = list(config.evals)
    if names is not None:
        unknown = [name for name in names if name not in known]
        if unknown:
            raise UserError(
                f"--evals names {unknown}, which config.evals of the run does not have; "
                f"it has: {', '.join(known) or 'none'}"
            )
    chosen = known if names is None else names
    built = {}
    for name in chosen:
        settings = config.evals[name]
        if during_training and not settings.get("every_steps"):
            continue
        built[name] = build(settings, Context(name, config, task, data_dir))
    return built
