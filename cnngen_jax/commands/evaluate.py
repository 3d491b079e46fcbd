"""Evaluate a checkpoint of a training run with the evaluators of its `config.evals`.

    python -m cnngen_jax.commands.evaluate --workdir=runs/dcgan [--evals=sample_quality]
        [--split=test] [--step=N] [--num_samples=N] [--feature_net=domain|inception]
        [--inception_weights=inception.npz] [--batch_size=B] [--labels=3,5,8]

Every evaluator of the run (or those of `--evals`) runs, whatever its `every_steps`: sample
quality (FID/KID/precision-recall, and for class-conditional models the conditional metrics
on images of every class or of `--labels`), a VAE's ELBO, a restorer's PSNR/SSIM beside its
baseline, a style model's held-out losses. The other flags replace the settings of that name of
the chosen evaluators. A run of several seeds (`config.num_seeds`) is evaluated replica by
replica: each metric as its mean over the seeds, `/std` and `/seed_<s>`.

The metrics and each evaluator's protocol stamp are printed as one JSON object and appended to
WORKDIR/evaluation.jsonl; reference statistics are computed once per protocol and cached.
Nothing else in the workdir is written.
"""

import json

from absl import app, flags

from cnngen_jax import cli, inference

_WORKDIR = flags.DEFINE_string("workdir", None, "The run directory (holds config.json).")
_EVALS = flags.DEFINE_list("evals", None, "Evaluators of config.evals to run (default: all).")
_SPLIT = flags.DEFINE_string("split", None, "Held-out split (default: the test split).")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest).")
_NUM_SAMPLES = flags.DEFINE_integer("num_samples", None, "Generated images (sample quality).")
_FEATURE_NET = flags.DEFINE_enum(
    "feature_net", None, ["domain", "inception"], "Feature network (sample quality)."
)
_INCEPTION_WEIGHTS = flags.DEFINE_string(
    "inception_weights", None, "Converted FID Inception weights, .npz (sample quality)."
)
_BATCH_SIZE = flags.DEFINE_integer(
    "batch_size", None, "Generation batch size (default: the run's batch_size)."
)
_LABELS = flags.DEFINE_list(
    "labels", None, "Conditional models: the classes to evaluate, e.g. 3,5,8 (default: all)."
)
flags.mark_flag_as_required("workdir")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    with cli.reported_errors():
        result = inference.evaluate_run(
            _WORKDIR.value,
            evals=_EVALS.value,
            split=_SPLIT.value,
            step=_STEP.value,
            batch_size=_BATCH_SIZE.value,
            labels=cli.class_numbers(_LABELS.value),
            num_samples=_NUM_SAMPLES.value,
            feature_net=_FEATURE_NET.value,
            inception_weights=_INCEPTION_WEIGHTS.value,
        )
    print(json.dumps(result, indent=2), flush=True)


if __name__ == "__main__":
    app.run(main, flags_parser=cli.parse_flags)
