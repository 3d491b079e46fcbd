"""The one training loop, generic over model families (`cnngen_jax.tasks`).

Callable from a notebook: `train_and_evaluate(config, workdir)`. Every process of a multi-host
job runs the same code; only process 0 writes files.
"""

import dataclasses
import functools
import json
import math
import time
from typing import Any

import grain
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from cnngen_jax import (
    checkpoint,
    data,
    evaluators,
    files,
    parallel,
    preemption,
    random_streams,
    replicas,
    tasks,
    transfer,
)
from cnngen_jax.data import decoded, feed, pipeline
from cnngen_jax.errors import NonFiniteLossError, Preempted, UserError
from cnngen_jax.evaluators.held_out import held_out
from cnngen_jax.writers import Progress, RunWriter, parameter_overview

PERIODS = ("log_every_steps", "sample_every_steps", "checkpoint_every_steps")


def validate(config: ml_collections.ConfigDict) -> None:
    """Checks the settings the trainer itself uses; tasks check their own."""
    if config.num_train_steps < 0:
        raise UserError(
            f"num_train_steps={config.num_train_steps} is negative; "
            "set --config.num_train_steps to 0 or more"
        )
    for key in PERIODS:
        if config[key] <= 0:
            raise UserError(
                f"{key}={config[key]} must be positive; set --config.{key}=N with N >= 1"
            )
    choices = {
        "compute_dtype": ("float32", "bfloat16"),
        "init_prng_impl": ("threefry2x32", "rbg", "unsafe_rbg"),
    }
    for key, allowed in choices.items():
        if config[key] not in allowed:
            raise UserError(f"{key}={config[key]!r} is not one of {allowed}; set --config.{key}")
    if config.max_checkpoints_to_keep < 1:
        raise UserError(
            f"max_checkpoints_to_keep={config.max_checkpoints_to_keep} must be at least 1 (the "
            "last checkpoint is what a run resumes from); set --config.max_checkpoints_to_keep"
        )
    if isinstance(config.num_seeds, bool) or not isinstance(config.num_seeds, int):
        raise UserError(
            f"num_seeds={config.num_seeds!r} must be a whole number; set --config.num_seeds=K"
        )
    if config.num_seeds < 1:
        raise UserError(
            f"num_seeds={config.num_seeds} must be at least 1 (the number of seeds trained "
            "side by side); set --config.num_seeds=K with K >= 1"
        )
    if config.data_placement not in feed.PLACEMENTS:
        raise UserError(
            f"data_placement={config.data_placement!r} is not one of {feed.PLACEMENTS}; set "
            "--config.data_placement"
        )
    _check_dispatch(config)


def _check_dispatch(config: ml_collections.ConfigDict) -> None:
    """Everything the loop does between dispatches happens at multiples of steps_per_dispatch."""
    k = config.steps_per_dispatch
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise UserError(
            f"steps_per_dispatch={k!r} must be a whole number >= 1 (train steps per call of the "
            "compiled program); set --config.steps_per_dispatch=K"
        )
    periods = {key: config[key] for key in (*PERIODS, "num_train_steps")}
    for name, entry in config.evals.items():  # malformed entries: the evaluators' own checks
        every = entry.get("every_steps") if hasattr(entry, "get") else None
        if isinstance(every, int) and not isinstance(every, bool) and every >= 0:
            periods[f"evals.{name}.every_steps"] = every
    for key, period in periods.items():
        if period % k:
            raise UserError(
                f"{key}={period} is not a multiple of steps_per_dispatch={k}: the loop logs, "
                f"saves and evaluates between dispatches of {k} steps; set --config.{key} to a "
                f"multiple of {k} or change --config.steps_per_dispatch"
            )


def configure_compilation_cache(cache_dir: str) -> None:
    if cache_dir:
        jax.config.update("jax_compilation_cache_dir", str(files.path(cache_dir)))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


def _is_due(step: int, every: int, last: int) -> bool:
    return step % every == 0 or step == last


@dataclasses.dataclass
class Run:
    """Everything a run is built from, before anything is written: checked settings, the device
    mesh, the data, the task and the (sharded) shape of its state."""

    config: ml_collections.ConfigDict
    mesh: jax.sharding.Mesh
    data_dir: str
    spec: data.DatasetSpec
    train_source: Any
    task: tasks.Task
    abstract_state: Any  # ShapeDtypeStructs carrying the replicated sharding
    placement: str  # where the training data lives: 'host', 'device', 'device-sharded'
    # The evaluators of config.evals that run during training, with their periods.
    evaluators: dict[str, tuple[evaluators.Evaluator, int]]

    def held_out(self, split: str | None = None) -> evaluators.HeldOut:
        """The held-out split (default: the dataset's test split) in the trainer's layout."""
        config = self.config
        return held_out(
            config.dataset,
            split or self.spec.test_split,
            self.data_dir,
            config.image_size,
            config.batch_size,
            self.mesh,
        )

    @functools.cached_property
    def decoded_train_split(self) -> decoded.DecodedSplit | None:
        """The training split decoded at image_size (read from its cache, or decoded and cached
        by process 0 first, so that hosts sharing a disk decode it once); None where the host
        path reads record by record (photographs of their own sizes, splits too large)."""
        config = self.config
        if self.placement == "host" and not feed.decoded_on_host(
            config.dataset, len(self.train_source), config.image_size
        ):
            return None

        def split(write: bool) -> decoded.DecodedSplit:
            return decoded.decoded_split(
                config.dataset, self.spec.train_split, self.data_dir, config.image_size, write
            )

        first = split(write=True) if jax.process_index() == 0 else None
        parallel.sync("decoded data cached")
        return split(write=False) if first is None else first

    @property
    def state_shardings(self) -> Any:
        return jax.tree.map(lambda a: a.sharding, self.abstract_state)

    @property
    def rows(self) -> slice:
        return parallel.process_rows(self.mesh, self.config.batch_size)

    @property
    def batch_sharding(self) -> jax.sharding.Sharding:
        """How a train step's batch is laid out: rows over the mesh, k stacked batches kept."""
        return parallel.batch_sharded(self.mesh, parallel.stacked_axes(self.task.batches_per_step))

    def train_batch(self, local: dict[str, np.ndarray]) -> Any:
        """This process's rows of the next step's batch (from `train_iterator`), as a global
        array sharded by `batch_sharding`."""
        stacked = parallel.stacked_axes(self.task.batches_per_step)
        return parallel.global_batch(local, self.mesh, self.config.batch_size, stacked)

    @property
    def layout(self) -> feed.Layout:
        config = self.config
        return feed.Layout(
            self.mesh, config.batch_size, self.task.batches_per_step, config.steps_per_dispatch
        )


def build_run(config: ml_collections.ConfigDict, during_training: bool = True) -> Run:
    """Validates the settings, prepares embedded data and builds the task and (for training)
    the evaluators that run during training; writes no workdir."""
    validate(config)
    config.dataset = data.absolute(config.dataset)  # recorded so in config.json
    configure_compilation_cache(config.compilation_cache_dir)
    mesh = parallel.make_mesh()
    if not during_training and jax.process_count() == 1:  # evaluation: any device count will do
        mesh = parallel.make_mesh(parallel.devices_dividing(config.batch_size))
    parallel.check_batch_size(config.batch_size, mesh)
    data_dir = data.resolve_data_dir(config.data_dir)
    spec = data.get_spec(config.dataset)
    data.check_crop(config.dataset, config.image_size)
    task = tasks.create_task(config, data.dataset_info(config.dataset))  # checks its settings
    if jax.process_index() == 0:
        data.ensure_prepared(config.dataset, data_dir)
    parallel.sync("data prepared")
    data.ensure_prepared(config.dataset, data_dir)  # hosts that do not share process 0's disk
    train_source = data.open_source(config.dataset, spec.train_split, data_dir)
    abstract = abstract_state(task, config, parallel.replicated(mesh))
    # Built now, so their checks stop a run before it trains; only those that run in training.
    run_evaluators, placement = {}, "host"
    if during_training:
        run_evaluators = evaluators.from_config(config, task, data_dir, during_training=True)
        placement = feed.choose_placement(
            config.data_placement, config.dataset, len(train_source), config.image_size, mesh
        )
    return Run(
        config, mesh, data_dir, spec, train_source, task, abstract, placement, run_evaluators
    )


# The trainer owns randomness: every key a task sees is derived here from config.seed (and, for
# training, the step), so tasks stay free of seeds and resumed runs draw the same numbers.


def fresh_state(task: tasks.Task, config: ml_collections.ConfigDict) -> Any:
    """The task's initial state, or with `config.num_seeds` > 1 one per seed, stacked."""

    def init(seed):
        return task.init_state(
            random_streams.seed_key(seed, random_streams.INIT_STREAM, config.init_prng_impl)
        )

    if config.num_seeds == 1:
        return init(config.seed)
    # A loop, not vmap: the 'rbg' PRNG draws other numbers under vmap than alone.
    return jax.lax.map(init, np.asarray(replicas.seeds(config.seed, config.num_seeds)))


def abstract_state(
    task: tasks.Task, config: ml_collections.ConfigDict, sharding: jax.sharding.Sharding
) -> Any:
    """The shapes and dtypes of the task's train state, placed by `sharding`: traced, not
    computed; the target a checkpoint restores into."""
    shapes = jax.eval_shape(functools.partial(fresh_state, task, config))
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=sharding), shapes)


def keyed_train_step(task: tasks.Task, seed: int, num_seeds: int = 1):
    """`task.train_step` with the key of the state's step: fold_in(train stream, step). With
    `num_seeds` > 1, mapped over the stacked replicas and their seeds, the batch shared."""

    def train_step(state, batch, replica_seed=seed):
        key = jax.random.fold_in(
            random_streams.seed_key(replica_seed, random_streams.TRAIN_STREAM), state.step
        )
        return task.train_step(state, batch, key)

    if num_seeds == 1:
        return train_step
    seeds = np.asarray(replicas.seeds(seed, num_seeds))
    return lambda state, batch: jax.vmap(train_step, in_axes=(0, None, 0))(state, batch, seeds)


def initial_state(run: Run) -> Any:
    """The task's initial state, initialised from shapes straight into its sharding, with the
    pretrained weights it reads from files (`with_pretrained`)."""
    init = functools.partial(fresh_state, run.task, run.config)
    state = jax.jit(init, out_shardings=run.state_shardings)()
    loaded = with_pretrained(run.task, state, run.config.num_seeds)
    if run.config.num_seeds == 1:  # the tasks place what they load as the state's leaves
        return loaded
    return jax.device_put(loaded, run.state_shardings)  # replicas stacked on the host


def with_pretrained(task: tasks.Task, state: Any, num_seeds: int = 1) -> Any:
    """`state` (of `num_seeds` stacked replicas) with the weights `task` reads from files (e.g.
    the frozen VGG of a perceptual loss), for tasks that have any; read on the host, never
    compiled into a program."""
    load = getattr(task, "with_pretrained", None)
    return state if load is None else replicas.per_replica(load, state, num_seeds)


def train_iterator(run: Run) -> grain.DatasetIterator:
    """This process's rows of the global training batches (`pipeline.train_iterator`),
    gathered from the decoded split for data of one size."""
    config = run.config
    return pipeline.train_iterator(
        run.train_source,
        run.spec,
        image_size=config.image_size,
        global_batch_size=config.batch_size,
        rows=run.rows,
        seed=config.seed,
        num_threads=config.input_threads,
        prefetch=config.input_prefetch,
        batches_per_step=run.task.batches_per_step,
        decoded=run.decoded_train_split,
    )


def make_feed(run: Run) -> feed.Feed:
    """The run's training batches at its placement."""
    if run.placement == "host":
        return feed.HostFeed(train_iterator(run), run.layout)
    sharded = run.placement == "device-sharded"
    return feed.DeviceFeed(run.decoded_train_split, run.layout, run.config.seed, sharded)


def jit_dispatch(run: Run, run_feed: feed.Feed) -> Any:
    """`config.steps_per_dispatch` train steps as one compiled program (under `lax.scan` when
    more than one), taking the feed's inputs; returns the state and every step's metrics,
    stacked (k, ...)."""
    step = keyed_train_step(run.task, run.config.seed, run.config.num_seeds)
    k = run.config.steps_per_dispatch

    def dispatch(state, inputs):
        if k == 1:
            state, metrics = step(state, run_feed.batch(inputs, 0))
            return state, jax.tree.map(lambda m: m[None], metrics)

        def body(state, i):
            return step(state, run_feed.batch(inputs, i))

        return jax.lax.scan(body, state, jnp.arange(k))

    replicated = parallel.replicated(run.mesh)
    return jax.jit(dispatch, out_shardings=(run.state_shardings, replicated), donate_argnums=0)


def jit_train_step(run: Run) -> Any:
    """The task's step compiled over the mesh: batch sharded, state replicated and donated."""
    return jax.jit(
        keyed_train_step(run.task, run.config.seed, run.config.num_seeds),
        in_shardings=(run.state_shardings, run.batch_sharding),
        out_shardings=(run.state_shardings, parallel.replicated(run.mesh)),
        donate_argnums=0,
    )


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, float]:
    """Trains `config.task` on `config.dataset`, resuming from the latest checkpoint in `workdir`.

    Returns the last logged scalars.
    """
    run = build_run(config)
    checkpoint_dir = files.path(workdir, "--workdir") / "checkpoints"
    restored = checkpoint.restore_latest(checkpoint_dir, run.abstract_state, config)
    transferred = None
    k = config.steps_per_dispatch
    if restored is not None and restored.step % k:
        raise UserError(
            f"the checkpoint in {checkpoint_dir} is at step {restored.step}, not a multiple of "
            f"steps_per_dispatch={k}, so its dispatches could not end at the logging and saving "
            "steps; resume with --config.steps_per_dispatch set to a divisor of "
            f"{restored.step} (1 always works)"
        )
    if restored is None:  # a new run, perhaps from another run's weights
        state = initial_state(run)
        if config.init_from:
            state, transferred = transfer.transplant(
                state, config.init_from, config.init_from_optimizer, config.num_seeds
            )

    # Every check that can fail on user input has passed: from here on the workdir is written.
    is_writer = jax.process_index() == 0
    writer = RunWriter(workdir, is_writer)
    try:
        if is_writer:
            files.write_text(files.path(workdir) / "config.json", config.to_json(indent=2))
        run_feed = make_feed(run)
        print(f"Training data: {run_feed.placement} placement", flush=True)
        start_step = 0
        if restored is not None:
            start_step, state = restored.step, restored.state
            run_feed.set_state(restored.data_state)
            print(f"Resumed from {checkpoint_dir} at step {start_step}", flush=True)
        elif transferred is not None:
            writer.write_text("init_from", transferred.report())
        writer.forget_after(start_step)  # lines of an attempt stopped after its last checkpoint
        overview = parameter_overview(run.task.networks(replicas.first(state, config.num_seeds)))
        if config.num_seeds > 1:
            overview = f"{config.num_seeds} replicas (num_seeds), each:\n{overview}"
        writer.write_text("parameters", overview)
        return _TrainLoop(run, writer, run_feed).run(state, start_step, checkpoint_dir)
    finally:
        writer.close()


class _TrainLoop:
    """Steps, logging, pictures, evaluation and checkpoints; knows nothing of the family."""

    def __init__(self, run: Run, writer: RunWriter, run_feed: feed.Feed):
        self.run_setup = run  # `run` is this loop's method
        self.config = run.config
        self.task = run.task
        self.mesh = run.mesh
        self.writer = writer
        self.feed = run_feed
        self.held_out = run.held_out()
        replicated = parallel.replicated(run.mesh)
        self.dispatch = jit_dispatch(run, run_feed)
        seed, num_seeds = run.config.seed, run.config.num_seeds
        self.seeds = replicas.seeds(seed, num_seeds)

        def pictures(state, examples):  # the same latents and inputs for every replica
            def draw(state):
                return run.task.images(
                    state, examples, random_streams.seed_key(seed, random_streams.SAMPLE_STREAM)
                )

            return draw(state) if num_seeds == 1 else jax.vmap(draw)(state)

        self.images = jax.jit(pictures, out_shardings=replicated)
        self.examples = next(self.held_out())  # fixed held-out batch for reconstructions
        self.all_finite = jax.jit(
            lambda tree: jnp.all(jnp.stack([jnp.isfinite(x).all() for x in jax.tree.leaves(tree)])),
            out_shardings=replicated,
        )
        # Made once: eager JAX ops at every step would cost a small model's step a tenth.
        self.eval_key = random_streams.seed_key(seed, random_streams.EVAL_STREAM)
        self.last_scalars: dict[str, float] = {}
        self.protocols_shown: set[str] = set()

    def run(self, state: Any, start_step: int, checkpoint_dir: str) -> dict[str, float]:
        config, total = self.config, self.config.num_train_steps
        k = config.steps_per_dispatch
        if start_step >= total:
            print(f"Nothing to do: the checkpoint is at step {start_step} >= {total}", flush=True)
            return self.last_scalars
        saver = checkpoint.CheckpointWriter(checkpoint_dir, config.max_checkpoints_to_keep)
        watch = preemption.PreemptionWatch()
        try:
            first_inputs = self.feed.next_inputs()
            started = time.perf_counter()
            dispatch = self.dispatch.lower(state, first_inputs).compile()
            print(f"Compiled the train step in {time.perf_counter() - started:.1f} s", flush=True)
            if start_step == 0:
                self._evaluate(0, state)  # the baseline the training improves on
            self.progress = Progress(start_step, total, config.batch_size * config.num_seeds)
            pending = []  # the dispatches whose metrics are not read yet
            for first in range(start_step + 1, total + 1, k):
                step = first + k - 1  # the dispatch's last step
                inputs = first_inputs if first == start_step + 1 else self.feed.next_inputs()
                state, metrics = dispatch(state, inputs)
                # The previous dispatch's metrics are read while this one runs: one dispatch
                # queued ahead keeps the device busy, and the host never runs further ahead.
                self._check_and_log(pending)
                pending = [(first, metrics)]
                preempted = watch.reached(step // k)  # dispatches: consecutive numbers
                if preempted or _is_due(step, config.checkpoint_every_steps, total):
                    self._check_and_log(pending)  # every step checked before it is saved
                    pending = []
                    self._save(saver, step, state)
                if _is_due(step, config.sample_every_steps, total):
                    images = self.images(state, self.examples)
                    self.writer.write_images(
                        step, replicas.image_names(parallel.to_host(images), self.seeds)
                    )
                self._evaluate(step, state)
                if preempted:  # this step is complete and saved: stop here
                    raise Preempted(step, checkpoint_dir)
        finally:
            watch.close()
            saver.close()  # waits for the last save, a preempted run's included
        return self.last_scalars

    def _check_and_log(self, dispatches: list[tuple[int, dict[str, jax.Array]]]) -> None:
        """Checks the metrics of every step of `dispatches` (first step, stacked metrics), read
        together, and logs the steps due."""
        read = parallel.to_host([metrics for _, metrics in dispatches])
        for (first, _), stacked in zip(dispatches, read, strict=True):
            for offset in range(self.config.steps_per_dispatch):
                step = first + offset
                step_metrics = {name: values[offset] for name, values in stacked.items()}
                self._check_and_log_step(step, replicas.summarize(step_metrics, self.seeds))

    def _check_and_log_step(self, step: int, values: dict[str, float]) -> None:
        bad = {k: v for k, v in values.items() if not math.isfinite(v)}
        if bad:
            raise NonFiniteLossError(
                f"non-finite training metrics at step {step}: {bad}. Training stopped; the "
                "last complete checkpoint is kept. Lower the learning rate or check the data."
            )
        if _is_due(step, self.config.log_every_steps, self.config.num_train_steps):
            scalars = {**values, **self.progress.measure(step)}
            self.writer.write_scalars(step, scalars)
            if self.writer.enabled:
                print(self.progress.line(step, scalars), flush=True)
            self.last_scalars = scalars

    def _save(self, saver: checkpoint.CheckpointWriter, step: int, state: Any) -> None:
        if not bool(parallel.to_host(self.all_finite(state))):
            raise NonFiniteLossError(
                f"the train state holds NaN or Inf after step {step}; it is not checkpointed and "
                "the last complete checkpoint is kept. Lower the learning rate or check the data."
            )
        parallel.assert_replicas_equal(state, f"train state at step {step}")
        saver.save(step, state, self.feed.get_state(), self.config)

    def _evaluate(self, step: int, state: Any) -> None:
        """The evaluators due at `step` (all of them at step 0, the baseline), replica by
        replica."""
        total = self.config.num_train_steps
        results = {}
        for name, (evaluator, every) in self.run_setup.evaluators.items():
            if step and not _is_due(step, every, total):
                continue
            evaluated = [
                evaluator(replica, self.held_out, self.eval_key)
                for replica in replicas.each(state, len(self.seeds))
            ]
            results.update(replicas.summarize_results(evaluated, self.seeds))
            if name not in self.protocols_shown and self.writer.enabled:
                stamp = evaluators.stamp(evaluator, self.held_out)
                print(f"evaluation protocol of {name}: {json.dumps(stamp)}")
                self.protocols_shown.add(name)
        if results:
            self.writer.write_scalars(step, results)
            if self.writer.enabled:
                print(f"eval at step {step}: {json.dumps(results)}", flush=True)
