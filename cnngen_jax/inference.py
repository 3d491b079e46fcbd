"""Using a trained run without its training data: rebuild the task and restore its weights from
the workdir alone (config.json and a checkpoint), for the command-line tools and notebooks.

    run = load_run("runs/srresnet")          # the latest complete checkpoint
    run = load_run("runs/srresnet", step=400)
    restored = run.task.transform(run.state, low_resolution_images)
"""

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import jax
import ml_collections

from cnngen_jax import checkpoint, data, evaluators, files, random_streams, replicas, tasks, train
from cnngen_jax.configs import common
from cnngen_jax.errors import UserError

# Settings added after runs were first written, with the value that reproduces those runs: a
# config.json without them (an unconditional model from before version 0.2.0) still loads.
ALL_ADDED_SETTINGS = {"num_seeds": 1, "data_placement": "auto", "steps_per_dispatch": 1}
ADDED_SETTINGS = {
    "gan": {"model.conditioning": "none", "class_loss_weight": 1.0, "freeze_d_blocks": 0},
    "vae": {"model.conditioning": "none"},
    "style_transfer": {"model.name": "transformer_net"},  # before style models were registered
}


# Settings replaced by `config.evals` in version 0.4.0: they are translated on load.
LEGACY_EVAL_SETTINGS = ("eval_every_steps", "eval", "eval_images", "eval_iw_samples")


def translate_legacy_evals(config: ml_collections.ConfigDict) -> None:
    """A config.json written before `config.evals` (version 0.3.0 and earlier), whose held-out
    evaluation was `eval_every_steps` and the `eval`, `eval_images` and `eval_iw_samples`
    settings, given the `config.evals` entries that evaluate as it did (in place)."""
    if "evals" in config:
        return
    every = config.get("eval_every_steps", 0)
    evals = ml_collections.ConfigDict()
    if config.task in ("gan", "vae"):
        old = config.get("eval") or ml_collections.ConfigDict()
        samples = old.get("num_samples", 0)
        quality = common.sample_quality(every if samples else 0, samples or 2000)
        for key in ("feature_net", "inception_weights", "cache_dir"):
            if key in old:
                quality[key] = old[key]
        if config.task == "vae":
            evals.elbo = common.elbo(every, config.get("eval_iw_samples", 32))
        evals.sample_quality = quality
    elif config.task == "restoration":
        evals.restoration = common.restoration_quality(every, config.get("eval_images", 100))
    elif config.task == "style_transfer":
        evals.style = common.style_losses(every, config.get("eval_images", 100))
    for key in LEGACY_EVAL_SETTINGS:
        if key in config:
            del config[key]
    config.evals = evals


def load_run_config(workdir: str) -> ml_collections.ConfigDict:
    """The run's config.json as an (unlocked) ConfigDict, completed by `ADDED_SETTINGS` and
    with legacy evaluation settings translated (`translate_legacy_evals`)."""
    path = files.path(workdir, "--workdir") / "config.json"
    config = ml_collections.ConfigDict(
        files.read_json(path, hint="pass the --workdir of a training run")
    )
    for key, value in {**ALL_ADDED_SETTINGS, **ADDED_SETTINGS.get(config.task, {})}.items():
        *parents, leaf = key.split(".")
        node = config
        for parent in parents:
            node = node[parent]
        if leaf not in node:
            node[leaf] = value
    translate_legacy_evals(config)
    return config


def compiled(method: Callable) -> Callable:
    """`jax.jit(method)` of a task's method, made once per task and method: every `jax.jit` of a
    bound method (a new object at each attribute access) would compile again. Kept on the task,
    so it goes when the task goes (a module-level cache would keep every task ever loaded)."""
    owner = getattr(method, "__self__", None)
    if owner is None:  # a plain function is one object: jit caches its compilations itself
        return jax.jit(method)
    cache = vars(owner).setdefault("_compiled", {})
    if method.__name__ not in cache:
        cache[method.__name__] = jax.jit(method)
    return cache[method.__name__]


@dataclasses.dataclass
class LoadedRun:
    """A trained run: its settings, its task (model and methods) and the restored train state."""

    config: ml_collections.ConfigDict
    task: tasks.Task
    state: Any
    step: int


def load_run(workdir: str, step: int | None = None, seed: int | None = None) -> LoadedRun:
    """The run in `workdir` at `step` (default: its latest complete checkpoint), on the default
    device. A run of several seeds (`config.num_seeds`) gives the replica of `seed` (default:
    its first, `config.seed`). Opens config.json and the checkpoint only, never the dataset
    (of a `dir:PATH` dataset, its metadata for the channels and classes)."""
    config = load_run_config(workdir)
    replica_seeds = replicas.seeds(config.seed, config.num_seeds)
    seed = config.seed if seed is None else seed
    if seed not in replica_seeds:
        raise UserError(
            f"seed {seed} is not one of the run's seeds {replica_seeds} (config.seed and "
            "config.num_seeds in its config.json)"
        )
    task = tasks.create_task(config, data.dataset_info(config.dataset))
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    abstract = train.abstract_state(task, config, device)
    checkpoint_dir = files.path(workdir, "--workdir") / "checkpoints"
    restored = checkpoint.restore_latest(checkpoint_dir, abstract, config, step=step)
    if restored is None:
        raise UserError(f"no complete checkpoint in {checkpoint_dir}; train the run first")
    state = restored.state
    if config.num_seeds > 1:
        state = replicas.replica(state, replica_seeds.index(seed))
    return LoadedRun(config, task, state, restored.step)


def evaluate_run(
    workdir: str,
    *,
    evals: list[str] | None = None,
    split: str | None = None,
    step: int | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Runs the evaluators of the run's `config.evals` (those named by `evals`, default all)
    on its checkpoint of `step` (default: the latest) against `split` (default: the test
    split), every replica of a `num_seeds` run. `overrides` replace evaluator settings of that
    name (None: keep), e.g. num_samples=10_000, in every chosen evaluator that has them.
    Returns the result appended to WORKDIR/evaluation.jsonl: the step, the metrics and each
    evaluator's protocol stamp."""
    config = load_run_config(workdir)
    names = list(config.evals) if evals is None else list(evals)
    given = {key: value for key, value in overrides.items() if value is not None}
    for key, value in given.items():
        takers = [name for name in names if name in config.evals and key in config.evals[name]]
        if not takers:
            raise UserError(
                f"--{key} is a setting of none of the evaluators {names} (config.evals of the "
                "run); choose them with --evals"
            )
        for name in takers:
            config.evals[name][key] = tuple(value) if key == "labels" else value
    run = train.build_run(config, during_training=False)
    chosen = evaluators.from_config(config, run.task, run.data_dir, names, during_training=False)
    if not chosen:
        raise UserError(f"{workdir}/config.json has no evaluators (config.evals is empty)")
    checkpoint_dir = files.path(workdir, "--workdir") / "checkpoints"
    restored = checkpoint.restore_latest(checkpoint_dir, run.abstract_state, config, step=step)
    if restored is None:
        raise UserError(f"no complete checkpoint in {checkpoint_dir}; train the run first")
    held_out = run.held_out(split)
    key = random_streams.seed_key(config.seed, random_streams.EVAL_STREAM)
    seeds = replicas.seeds(config.seed, config.num_seeds)
    metrics, protocol = {}, {}
    for name, (evaluator, _) in chosen.items():
        per_replica = [
            evaluator(replica, held_out, key)
            for replica in replicas.each(restored.state, config.num_seeds)
        ]
        metrics.update(replicas.summarize_results(per_replica, seeds))
        protocol[name] = evaluators.stamp(evaluator, held_out)
    result = {"step": restored.step, **metrics, "protocol": protocol}
    if jax.process_index() == 0:
        files.append_line(files.path(workdir) / "evaluation.jsonl", json.dumps(result))
    return result
