"""Images drawn from a trained generative model (any `capabilities.Sampler`: a GAN or a VAE),
from its workdir alone: what `python -m cnngen_jax.commands.sample` writes, and its pictures as
arrays for notebooks.

    run = inference.load_run("runs/dcgan")
    pictures = draw(run, num_images=64, seed=0)  # name -> images in [-1, 1]

`sample` writes into a new directory:

- `samples.png`: a grid of `num_images` samples, and `samples.npy` (uint8, N x H x W x C);
- `interpolation_linear.png` and `interpolation_slerp.png`: rows that walk between pairs of
  latents, linearly and along the great circle (spherical interpolation, as White 2016 advises
  for Gaussian latents);
- `class_grid.png` for a class-conditional model: one row per class, a shared latent per column;
- `metadata.json`: the source workdir, checkpoint step, seed, settings and date.

With `export`, the directory gets instead a synthetic data set of `num_images` images (see
`cnngen_jax.export`), drawn in batches, any number of them:

- `images/train/<label>/<index>.png`: an image folder (tfds.ImageFolder, torchvision);
- `tfds/`: the same images (and labels) as a TFDS ArrayRecord dataset, which trains a model
  with `--config.dataset=dir:OUT` (see `cnngen_jax.data`);
- `metadata.json` as above.

A fixed seed gives the same images every time. Conditional models draw every class in turn
(a class-balanced data set), or the classes of `labels` in turn. Only config.json and a
checkpoint are read, never the dataset.
"""

import datetime

import jax
import jax.numpy as jnp
import numpy as np

from cnngen_jax import cli, files, images, inference, pixels, tasks
from cnngen_jax import export as export_data
from cnngen_jax.capabilities import Sampler, require
from cnngen_jax.errors import UserError
from cnngen_jax.random_streams import CLASS_GRID, INTERPOLATIONS, SAMPLES, seed_key

COMMAND = "`python -m cnngen_jax.commands.sample`"  # named in the messages of a wrong run
INTERPOLATION_ROWS = 8


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
    run: inference.LoadedRun, num_images: int, labels: list[int] | None, user: str = COMMAND
) -> jax.Array | None:
    """The class of each of `num_images` images: the classes of `labels` in turn, or every class
    in turn; None for an unconditional model. A UserError (naming `user`) for a run that is not
    a `Sampler`, fewer than one image, or labels the model does not have."""
    task = require(run.task, Sampler, user)
    if num_images < 1:
        raise UserError(f"--num_images={num_images} must be at least 1")
    if labels is not None:
        tasks.check_labels(np.asarray(labels), task.num_classes, setting="--labels")
        return jnp.resize(jnp.asarray(labels, jnp.int32), num_images)
    if task.num_classes:
        return tasks.balanced_labels(num_images, task.num_classes)
    return None


def _decoded(decode, latents: jax.Array, labels: jax.Array | None, batch_size: int) -> np.ndarray:
    """`decode(latents, labels)` in batches of `batch_size` rows, gathered on the host: one
    batch of a large count would not fit in device memory."""
    batches = []
    for start, rows in export_data.padded_batches(len(latents), batch_size):
        batch = decode(latents[rows], None if labels is None else labels[rows])
        batches.append(np.asarray(batch)[: len(latents) - start])
    return np.concatenate(batches)


def draw(
    run: inference.LoadedRun,
    num_images: int,
    seed: int,
    labels: list[int] | None = None,
    interpolation_steps: int = 8,
    user: str = "`sampling.draw`",
    batch_size: int = export_data.BATCH_SIZE,
) -> dict[str, np.ndarray]:
    """The pictures of `sample` as arrays in [-1, 1], by name; a function for notebooks. The
    samples are decoded `batch_size` at a time, so any `num_images` fits in memory. A
    UserError naming `user` unless the run is a `Sampler`."""
    task = require(run.task, Sampler, user)
    if interpolation_steps < 0:
        raise UserError(
            f"--interpolation_steps={interpolation_steps} must be 0 (no interpolations) or more"
        )
    labels = image_labels(run, num_images, labels, user)
    latents = jax.random.normal(seed_key(seed, SAMPLES), (num_images, task.latent_dim))
    decode = inference.compiled(task.decode)
    pictures = {
        "samples": _decoded(lambda z, y: decode(run.state, z, y), latents, labels, batch_size)
    }
    if interpolation_steps > 0:
        shape = (2, INTERPOLATION_ROWS, task.latent_dim)
        start, end = jax.random.normal(seed_key(seed, INTERPOLATIONS), shape)
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
            seed_key(seed, CLASS_GRID),
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
    require(run.task, Sampler, COMMAND)
    metadata = {
        "workdir": str(files.path(workdir)),
        "step": run.step,
        "seed": seed,
        "num_images": num_images,
        "labels": labels,
    }
    if export:
        classes = image_labels(run, num_images, labels)  # checked before anything is written
        classes = None if classes is None else np.asarray(classes)
        files.makedirs(out)
        written = export_data.write_export(run, out, num_images, seed, classes)
        metadata["export"] = {
            "split": export_data.SPLIT,
            "image_folder": export_data.IMAGES_DIR,
            "tfds": export_data.TFDS_DIR,
        }
    else:
        pictures = draw(run, num_images, seed, labels, interpolation_steps, COMMAND)
        out = files.makedirs(out)
        written = []
        for name, batch in pictures.items():
            path = out / f"{name}.png"
            files.write_image(path, images.make_grid(batch))
            written.append(str(path))
        written.append(str(out / "samples.npy"))
        files.write_npy(written[-1], pixels.to_uint8(pictures["samples"]))
        metadata["interpolation_steps"] = interpolation_steps
    metadata["date"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    metadata_path = files.path(out) / "metadata.json"
    files.write_json(metadata_path, metadata)
    return [*written, str(metadata_path)]
