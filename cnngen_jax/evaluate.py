"""Evaluate the latest checkpoint of a training run against a split of its dataset.

    python -m cnngen_jax.evaluate --workdir=runs/dcgan [--num_samples=N] [--split=test]
        [--feature_net=domain|inception] [--inception_weights=inception.npz] [--batch_size=B]
        [--labels=3,5,8]

Class-conditional models are evaluated on images of every class (or of `--labels`), equally
many each, with the conditional metrics besides (per-class accuracy of the domain classifier,
intra-class FID, Classification Accuracy Score).

A run of several seeds (`config.num_seeds`) is evaluated replica by replica: each metric as its
mean over the seeds, `/std` and `/seed_<s>`.

Settings not given as flags come from the run's config.json (its `eval` section). The metrics
and their protocol stamp are printed as one JSON object and appended to WORKDIR/evaluation.jsonl;
the split's reference statistics are computed once per protocol and cached in
`config.eval.cache_dir`. Nothing else in the workdir is written.
"""

import json
import os
from typing import Any

from absl import app, flags

from cnngen_jax import checkpoint, cli, evaluation, inference, replicas, train
from cnngen_jax.errors import UserError

_WORKDIR = flags.DEFINE_string("workdir", None, "The run directory (holds config.json).")
_NUM_SAMPLES = flags.DEFINE_integer("num_samples", None, "Generated images (config.eval).")
_FEATURE_NET = flags.DEFINE_enum(
    "feature_net", None, ["domain", "inception"], "Feature network (config.eval)."
)
_INCEPTION_WEIGHTS = flags.DEFINE_string(
    "inception_weights", None, "Converted FID Inception weights, .npz (config.eval)."
)
_SPLIT = flags.DEFINE_string("split", None, "Reference split (default: the test split).")
_BATCH_SIZE = flags.DEFINE_integer(
    "batch_size", None, "Generation batch size (default: the run's batch_size)."
)
_LABELS = flags.DEFINE_list(
    "labels", None, "Conditional models: the classes to evaluate, e.g. 3,5,8 (default: all)."
)
flags.mark_flag_as_required("workdir")


def evaluate_run(
    workdir: str,
    *,
    split: str | None = None,
    batch_size: int | None = None,
    labels: list[int] | None = None,
    **eval_overrides: Any,
) -> dict[str, Any]:
    """Evaluates the latest checkpoint in `workdir`; `eval_overrides` replace `config.eval`
    settings (None: keep); `labels` are the classes a conditional model is evaluated on
    (default: all). Returns the result written to evaluation.jsonl."""
    config = inference.load_run_config(workdir)
    config.eval_every_steps = 0  # the task need not build its own in-training evaluator
    if "eval" not in config:
        raise UserError(
            f"{workdir}/config.json has no `eval` settings (the run predates evaluation); "
            "re-run its training command once, which rewrites config.json"
        )
    run = train.build_run(config)
    if not hasattr(run.task, "generate"):
        raise UserError(f"task {config.task!r} does not generate images, so it has no FID")
    for key, value in eval_overrides.items():
        if value is not None:
            config.eval[key] = value
    checkpoint_dir = os.path.join(os.path.abspath(workdir), "checkpoints")
    restored = checkpoint.restore_latest(checkpoint_dir, run.abstract_state, config)
    if restored is None:
        raise UserError(f"no complete checkpoint in {checkpoint_dir}; train the run first")

    overrides = {} if batch_size is None else {"batch_size": batch_size}
    evaluator = evaluation.Evaluator.from_config(config, **overrides)
    classes = evaluator.classes(run.task.num_classes, labels)  # checked before any work
    reference = evaluator.cached_reference(split or run.spec.test_split)
    metrics = replicas.summarize_results(
        [
            evaluator.evaluate(reference, run.task.generate, replica, classes)
            for replica in replicas.each(restored.state, config.num_seeds)
        ],
        replicas.seeds(config.seed, config.num_seeds),
    )
    protocol = evaluator.protocol(reference, classes)
    result = {"step": restored.step, **metrics, "protocol": protocol}
    with open(os.path.join(workdir, "evaluation.jsonl"), "a") as f:
        f.write(json.dumps(result) + "\n")
    return result


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    with cli.reported_errors():
        result = evaluate_run(
            _WORKDIR.value,
            split=_SPLIT.value,
            batch_size=_BATCH_SIZE.value,
            labels=cli.class_numbers(_LABELS.value),
            num_samples=_NUM_SAMPLES.value,
            feature_net=_FEATURE_NET.value,
            inception_weights=_INCEPTION_WEIGHTS.value,
        )
    print(json.dumps(result, indent=2), flush=True)


if __name__ == "__main__":
    app.run(main, flags_parser=cli.parse_flags)
