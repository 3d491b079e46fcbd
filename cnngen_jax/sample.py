"""Draw images from a trained generative model (GAN or VAE), from its workdir alone.

    python -m cnngen_jax.sample --workdir=runs/dcgan --out=samples/dcgan [--num_images=64]
        [--seed=0] [--labels=3,5] [--step=N] [--interpolation_steps=8] [--export]

Writes into `--out` (created; it must not hold files already):

- `samples.png`: a grid of `num_images` samples, and `samples.npy` (uint8, N x H x W x C);
- `interpolation_linear.png` and `interpolation_slerp.png`: rows that walk between pairs of
  latents, linearly and along the great circle (spherical interpolation, as White 2016 advises
  for Gaussian latents);
- `class_grid.png` for a class-conditional model: one row per class, a shared latent per column;
- `metadata.json`: the source workdir, checkpoint step, seed, settings and date.

With `--export`, `--out` gets instead a synthetic data set of `--num_images` images (see
`cnngen_jax.export`), drawn in batches, any number of them:

- `images/train/<label>/<index>.png`: an image folder (tfds.ImageFolder, torchvision);
- `tfds/`: the same images (and labels) as a TFDS ArrayRecord dataset, which trains a model
  with `--config.dataset=dir:OUT` (see `cnngen_jax.data`);
- `metadata.json` as above.

A fixed `--seed` gives the same images every time. Conditional models draw every class in turn
(a class-balanced data set), or the classes of `--labels` in turn. Only config.json and a
checkpoint are read, never the dataset.
"""

import datetime
import json
import os
import types

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from cnngen_jax import cli, images, inference, tasks
from cnngen_jax import export as export_data
from cnngen_jax.errors import UserError

INTERPOLATION_ROWS = 8


def _flags() -> types.SimpleNamespace:
    """The command's flags, defined only when it runs as a program: the module is also a
    library, imported beside other commands that define --workdir too."""
    holders = types.SimpleNamespace(
        workdir=flags.DEFINE_string("workdir", None, "The training run (holds config.json)."),
        out=flags.DEFINE_string("out", None, "A new (or empty) directory for the images."),
        num_images=flags.DEFINE_integer(
            "num_images", 64, "Samples in the grid, or images in the --export data set."
        ),
        seed=flags.DEFINE_integer(
            "seed", 0, "Seed of the latents: the same seed, the same images."
        ),
        labels=flags.DEFINE_list("labels", None, "Conditional models: classes to draw, e.g. 3,5."),
        step=flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest)."),
        interpolation_steps=flags.DEFINE_integer(
            "interpolation_steps", 8, "Images per interpolation row (0: no interpolations)."
        ),
        export=flags.DEFINE_boolean(
            "export", False, "Write a data set of --num_images images instead of the pictures."
        ),
    )
    for name in ("workdir", "out"):
        flags.mark_flag_as_required(name)
    return holders


def slerp(start: jax.Array, end: jax.Array, t: jax.Array) -> jax.Array:
    """Spherical interpolation between rows of `start` and `end` at fractions `t` (T,): the
    great-circle path, which keeps the norm a Gaussian latent typically has; (N, T, D)."""
    unit_start = start / jnp.linalg.norm(start, axis=-1, keepdims=True)
    unit_end = end / jnp.linalg.norm(end, axis=-1, keepdims=True)
    cosine = jnp.clip(jnp.sum(unit_start * unit_end, axis=-1, keepdims=True), -1.0, 1.0)
    angle = jnp.arccos(cosine)[:, None]  # (N, 1, 1)
    t = t[None, :, None]
    sine = jnp.maximum(jnp.sin(angle), 1e-7)
    spherical = jnp.sin((1 - t) * angle) * start[:, None] + jnp.sin(t * angle) * end[:, None]
    linear = (1 - t) * start[:, None] + t * end[:, None]
    return jnp.where(angle < 1e-4, linear, spherical / sine)


def lerp(start: jax.Array, end: jax.Array, t: jax.Array) -> jax.Array:
    """Linear interpolation between rows of `start` and `end` at fractions `t`; (N, T, D)."""
    return (1 - t[None, :, None]) * start[:, None] + t[None, :, None] * end[:, None]


def image_labels(
    run: inference.LoadedRun, num_images: int, labels: list[int] | None
) -> jax.Array | None:
    """The class of each of `num_images` images: the classes of `labels` in turn, or every class
    in turn; None for an unconditional model. A UserError for a task that does not sample
    images, fewer than one image, or labels the model does not have."""
    task = run.task
    if not hasattr(task, "decode"):
        raise UserError(f"the run's task is {run.config.task!r}, which does not sample images")
    if num_images < 1:
        raise UserError(f"--num_images={num_images} must be at least 1")
    if labels is not None:
        tasks.check_labels(np.asarray(labels), task.num_classes, setting="--labels")
        return jnp.resize(jnp.asarray(labels, jnp.int32), num_images)
    if task.num_classes:
        return tasks.balanced_labels(num_images, task.num_classes)
    return None


def draw(
    run: inference.LoadedRun,
    num_images: int,
    seed: int,
    labels: list[int] | None = None,
    interpolation_steps: int = 8,
) -> dict[str, np.ndarray]:
    """The pictures of `sample` as arrays in [-1, 1], by name; a function for notebooks."""
    task = run.task
    labels = image_labels(run, num_images, labels)
    key = jax.random.key(seed)
    latents = jax.random.normal(jax.random.fold_in(key, 0), (num_images, task.latent_dim))
    decode = inference.compiled(task.decode)
    pictures = {"samples": decode(run.state, latents, labels)}
    if interpolation_steps > 0:
        shape = (2, INTERPOLATION_ROWS, task.latent_dim)
        start, end = jax.random.normal(jax.random.fold_in(key, 1), shape)
        t = jnp.linspace(0.0, 1.0, interpolation_steps)
        row_labels = None  # a conditional model keeps one class along each row
        if labels is not None:
            row_labels = jnp.repeat(jnp.resize(labels, INTERPOLATION_ROWS), interpolation_steps)
        for name, path in (("linear", lerp), ("slerp", slerp)):
            rows = decode(run.state, path(start, end, t).reshape(-1, task.latent_dim), row_labels)
            pictures[f"interpolation_{name}"] = rows.reshape(
                INTERPOLATION_ROWS, interpolation_steps, *rows.shape[1:]
            )
    if task.num_classes:
        pictures["class_grid"] = tasks.class_grid(
            lambda z, y: decode(run.state, z, y),
            jax.random.fold_in(key, 2),
            task.num_classes,
            num_images,
            task.latent_dim,
        )
    return {name: np.asarray(value) for name, value in pictures.items()}


def sample(
    workdir: str,
    out: str,
    num_images: int = 64,
    seed: int = 0,
    labels: list[int] | None = None,
    step: int | None = None,
    interpolation_steps: int = 8,
    export: bool = False,
) -> list[str]:
    """Writes the pictures of `workdir`'s model into `out`, or with `export` a data set of
    `num_images` of its images; returns the files (and folders) written."""
    cli.check_new_directory(out)
    run = inference.load_run(workdir, step)
    metadata = {
        "workdir": os.path.abspath(workdir),
        "step": run.step,
        "seed": seed,
        "num_images": num_images,
        "labels": labels,
    }
    if export:
        classes = image_labels(run, num_images, labels)  # checked before anything is written
        classes = None if classes is None else np.asarray(classes)
        os.makedirs(out, exist_ok=True)
        written = export_data.write_export(run, out, num_images, seed, classes)
        metadata["export"] = {
            "split": export_data.SPLIT,
            "image_folder": export_data.IMAGES_DIR,
            "tfds": export_data.TFDS_DIR,
        }
    else:
        pictures = draw(run, num_images, seed, labels, interpolation_steps)
        os.makedirs(out, exist_ok=True)
        written = []
        for name, batch in pictures.items():
            path = os.path.join(out, f"{name}.png")
            images.save_png(images.make_grid(batch), path)
            written.append(path)
        written.append(os.path.join(out, "samples.npy"))
        np.save(written[-1], images.to_uint8(pictures["samples"]))
        metadata["interpolation_steps"] = interpolation_steps
    metadata["date"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    with open(os.path.join(out, "metadata.json"), "w") as f:
        json.dump(metadata, f, indent=2)
    return [*written, os.path.join(out, "metadata.json")]


def main(argv: list[str], holders: types.SimpleNamespace) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    with cli.reported_errors():
        written = sample(
            holders.workdir.value,
            holders.out.value,
            holders.num_images.value,
            holders.seed.value,
            cli.class_numbers(holders.labels.value),
            holders.step.value,
            holders.interpolation_steps.value,
            holders.export.value,
        )
    print("\n".join(f"wrote {path}" for path in written), flush=True)


if __name__ == "__main__":
    command_flags = _flags()
    app.run(lambda argv: main(argv, command_flags), flags_parser=cli.parse_flags)
