"""Benchmark cases: `FAMILY[:PRESET][-SIZE-bBATCH][@KEY=VALUE...]` to a config, and the JAX
training step of that config, built by the trainer's own pieces."""

import ast
import importlib
import importlib.util
import re
import time
from collections.abc import Iterator
from typing import Any

import jax
import ml_collections

from cnngen_jax import data, train
from cnngen_jax.errors import UserError

_CASE = re.compile(
    r"(?P<family>[a-z_][a-z0-9_]*)(?::(?P<preset>[a-z0-9_]+))?(?:-(?P<size>\d+)-b(?P<batch>\d+))?"
    r"(?P<overrides>(?:@[a-z_.]+=[^@]+)*)"
)


def case_config(spec: str, data_dir: str = "") -> ml_collections.ConfigDict | None:
    """The config of case `spec`, or None (with a printed note) if its family has no config."""
    match = _CASE.fullmatch(spec)
    if not match:
        raise UserError(
            f"case {spec!r} is not FAMILY[:PRESET][-SIZE-bBATCH][@KEY=VALUE...], e.g. "
            "dcgan-32-b128 or sngan:cifar10-32-b64"
        )
    name = f"cnngen_jax.configs.{match['family']}"
    if importlib.util.find_spec(name) is None:
        print(f"note: skipping case {spec}: there is no config file {name}", flush=True)
        return None
    config = importlib.import_module(name).get_config(match["preset"])
    if match["size"]:
        config.image_size, config.batch_size = int(match["size"]), int(match["batch"])
    for override in filter(None, match["overrides"].split("@")):
        key, value = override.split("=", 1)
        _override(config, key, _literal(value), spec)
    k = config.steps_per_dispatch
    for key in ("num_train_steps", *train.PERIODS) if k > 1 else ():  # checked against k
        config[key] = k * -(-config[key] // k)
    for entry in config.evals.values() if k > 1 else ():
        entry.every_steps = k * -(-entry.every_steps // k)
    if not data.get_spec(config.dataset).embedded:
        config.dataset = "digits"  # catalog data may be absent
    config.data_dir = data_dir
    config.compilation_cache_dir = ""  # only the subprocesses measure the cache
    return config


def main_flags(spec: str, config: ml_collections.ConfigDict, steps: int) -> list[str]:
    """`python -m cnngen_jax.main` flags training case `spec` (as `case_config` builds it) for
    `steps` steps, logging five times, with no pictures, checkpoints or evaluation between."""
    match = _CASE.fullmatch(spec)
    preset = f":{match['preset']}" if match["preset"] else ""
    settings = {
        "image_size": config.image_size,
        "batch_size": config.batch_size,
        "dataset": config.dataset,
        "data_dir": config.data_dir,
        "compilation_cache_dir": "",
        "num_train_steps": steps,
        "log_every_steps": steps // 5,
        "sample_every_steps": steps,
        "checkpoint_every_steps": steps,
        **{f"evals.{name}.every_steps": 0 for name in config.evals},
    }
    for override in filter(None, match["overrides"].split("@")):
        key, value = override.split("=", 1)
        settings[key] = value
    return [
        f"--config=configs/{match['family']}.py{preset}",
        *(f"--config.{key}={value}" for key, value in settings.items()),
    ]


def _override(config: ml_collections.ConfigDict, key: str, value: Any, spec: str) -> None:
    """config[key] = value as the command line would set it: a known key, a value of its type."""
    *parents, leaf = key.split(".")
    node = config
    for parent in parents:
        node = node.get(parent)
        if not isinstance(node, ml_collections.ConfigDict):
            break
    if not isinstance(node, ml_collections.ConfigDict) or leaf not in node:
        raise UserError(f"case {spec!r}: the config has no setting {key!r}")
    try:
        node[leaf] = value
    except TypeError as error:  # ConfigDict keeps each setting's type
        raise UserError(f"case {spec!r}: {key}={value!r}: {error}") from None


def _literal(value: str) -> Any:
    """A Python literal (`False`, `5`, `1e-4`), or the text itself (`hinge`)."""
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value


def case_name(spec: str, config: ml_collections.ConfigDict) -> str:
    """`spec` with the size and batch spelled out (`vae` -> `vae-32-b64`)."""
    match = _CASE.fullmatch(spec)
    family = match["family"] + (f":{match['preset']}" if match["preset"] else "")
    return f"{family}-{config.image_size}-b{config.batch_size}{match['overrides']}"


class JaxTrainer:
    """The task's state, the trainer's own feed and compiled dispatch (`train.make_feed`,
    `train.jit_dispatch`: `config.steps_per_dispatch` steps a call, at the run's data placement)
    and, with `fixed_batch`, the single step compiled alone on one fixed batch: the step's rate
    with no input path at all."""

    def __init__(self, config: ml_collections.ConfigDict, fixed_batch: bool = True):
        self.config = config
        self.run_setup = train.build_run(config)
        self.spec = self.run_setup.spec
        self.steps_per_call = config.steps_per_dispatch
        self.iterator = self.new_iterator()  # the host pipeline: PyTorch's batches
        self.feed = train.make_feed(self.run_setup)
        self.marks = {"data_ready": time.time()}
        self.state = jax.block_until_ready(train.initial_state(self.run_setup))
        self.marks["state_ready"] = time.time()
        started = time.perf_counter()
        dispatch = train.jit_dispatch(self.run_setup, self.feed)
        self.dispatch_fn = dispatch.lower(self.state, self.feed.next_inputs()).compile()
        self.compile_s = time.perf_counter() - started
        self.marks["compiled"] = time.time()
        if fixed_batch:
            self.batch = self.next_batch()
            jitted = train.jit_train_step(self.run_setup)
            self.step_fn = jitted.lower(self.state, self.batch).compile()

    @property
    def placement(self) -> str:
        return self.feed.placement

    def new_iterator(self) -> Iterator[dict[str, Any]]:
        """A fresh iterator over the training batches of the host pipeline."""
        return train.train_iterator(self.run_setup)

    def next_batch(self) -> Any:
        return self.run_setup.train_batch(next(self.iterator))

    def run(self, steps: int) -> None:
        """`steps` train steps (a multiple of steps_per_call) as the trainer runs them, fed by
        its feed; blocks on the last result."""
        metrics = None
        for _ in range(-(-steps // self.steps_per_call)):
            self.state, metrics = self.dispatch_fn(self.state, self.feed.next_inputs())
        jax.block_until_ready((self.state, metrics))

    def run_fixed(self, steps: int) -> None:
        """`steps` single train steps on the one fixed batch, blocking on the last result."""
        metrics = None
        for _ in range(steps):
            self.state, metrics = self.step_fn(self.state, self.batch)
        jax.block_until_ready((self.state, metrics))
