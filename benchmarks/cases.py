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
        *parents, leaf = key.split(".")
        node = config
        for parent in parents:
            node = node[parent]
        node[leaf] = type(node[leaf])(_literal(value))
    if not data.get_spec(config.dataset).embedded:
        config.dataset = "digits"  # catalog data may be absent
    config.data_dir = data_dir
    config.compilation_cache_dir = ""  # only the subprocesses measure the cache
    return config


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
    """The task's state, compiled step and real input pipeline, built by the trainer's own
    pieces (`train.build_run`, `initial_state`, `train_iterator`, `jit_train_step`)."""

    def __init__(self, config: ml_collections.ConfigDict):
        self.config = config
        self.run_setup = train.build_run(config)
        self.spec = self.run_setup.spec
        self.iterator = self.new_iterator()
        self.marks = {"data_ready": time.time()}
        self.state = jax.block_until_ready(train.initial_state(self.run_setup))
        self.marks["state_ready"] = time.time()
        started = time.perf_counter()
        jitted = train.jit_train_step(self.run_setup)
        self.step_fn = jitted.lower(self.state, self.next_batch()).compile()
        self.compile_s = time.perf_counter() - started
        self.marks["compiled"] = time.time()

    def new_iterator(self) -> Iterator[dict[str, Any]]:
        """A fresh iterator over the training batches, as the trainer makes it."""
        return train.train_iterator(self.run_setup)

    def next_batch(self) -> Any:
        return self.run_setup.train_batch(next(self.iterator))

    def run(self, steps: int, batch: Any = None) -> None:
        """`steps` train steps on fresh batches (or on `batch`), blocking on the last result."""
        metrics = None
        for _ in range(steps):
            self.state, metrics = self.step_fn(
                self.state, self.next_batch() if batch is None else batch
            )
        jax.block_until_ready((self.state, metrics))
