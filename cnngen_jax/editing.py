"""Editing real images through a trained generative model (any `capabilities.Sampler`: a GAN
or a VAE): project them into its latent space, then walk between them and add attribute
directions there. What `python -m cnngen_jax.commands.edit` does, and `edit_images` for
notebooks.

An `Encoder`'s latents (a VAE's) are its posterior means; any other model's (a GAN's) are found
by inversion (`cnngen_jax.inversion`: Adam on the latents, several random restarts, the best
kept), so the inversion settings apply to it alone. `edit` writes into a new directory, only
once everything has succeeded:

- `projection.png`: each input beside its reconstruction; `latents.npy`: their latents (N, D);
- `interpolation.png` (two inputs or more): a row between each input and the next, along the
  great circle (`sampling.slerp`), in the first one's class for a conditional model;
- `arithmetic.png` and `direction.npy` with two groups of images, a and b: the direction
  mean latent(b) - mean latent(a), as in Radford et al. 2016, added to each input's latent at
  each of the strengths (a row per input; strength 0 is the reconstruction);
- `report.json`: each input's reconstruction error (MSE of intensities in [0, 1], PSNR in dB),
  the settings, the seed and the source workdir and step.

Inputs must already have the model's size and channel count (`images.model_pixels`; a grey
picture saved as RGB, as this project's grids are, counts as one channel). A conditional model
needs the class of every input and of both groups. A fixed seed gives the same latents every
time.
"""

import dataclasses
import datetime

import jax
import jax.numpy as jnp
import numpy as np

from cnngen_jax import cli, images, inference, inversion, tasks
from cnngen_jax import files as files_lib
from cnngen_jax.capabilities import Encoder, Sampler, require
from cnngen_jax.errors import UserError
from cnngen_jax.models import vgg
from cnngen_jax.pixels import to_float
from cnngen_jax.sampling import slerp

COMMAND = "`python -m cnngen_jax.commands.edit`"  # named in the messages of a wrong run
STRENGTHS = (0.0, 0.5, 1.0, 1.5, 2.0)
VGG_ARCH = inversion.FEATURE_NET.arch
DEFAULT_VGG_WEIGHTS = vgg.DEFAULT_WEIGHTS_PATTERN.format(arch=VGG_ARCH)


@dataclasses.dataclass
class Edits:
    """What `edit_images` found and drew: the inputs' projection, the pictures by name (arrays
    in [-1, 1] laid out as rows of a grid) and the attribute direction, if one was asked."""

    projection: inversion.Projection
    pictures: dict[str, np.ndarray]
    direction: np.ndarray | None = None
    group_mse: tuple[float, float] | None = None  # mean reconstruction error of groups a, b


def _labels(
    task: tasks.Task, labels: list[int] | None, count: int, setting: str, meaning: str
) -> jax.Array | None:
    """Checked labels for `count` images as an array; required by a conditional model."""
    if labels is None:
        if task.num_classes:
            raise UserError(
                f"this model is conditional on {task.num_classes} classes: give {setting} "
                f"({meaning})"
            )
        return None
    tasks.check_labels(np.asarray(labels), task.num_classes, count, setting)
    return jnp.asarray(labels, jnp.int32)


def project(
    run: inference.LoadedRun,
    pictures: np.ndarray,
    labels: jax.Array | None,
    seed: int = 0,
    settings: inversion.Settings = inversion.DEFAULTS,
    vgg_params: dict | None = None,
) -> inversion.Projection:
    """The latents of `pictures` (N, H, W, C) in [-1, 1] of a `Sampler`'s run: an `Encoder`'s
    (a VAE's posterior means), or found by inversion with `settings` from starts drawn with
    `seed` (a GAN). `decode` makes each image of its own latent alone, so the images (and
    restarts) projected together do not interact."""
    task = require(run.task, Sampler, "`editing.project`")
    if isinstance(task, Encoder):
        latents = inference.compiled(task.encode)(run.state, jnp.asarray(pictures), labels)
        return inversion.reconstruct(task.decode, run.state, pictures, labels, np.asarray(latents))
    key = jax.random.key(seed)
    return inversion.invert(
        task.decode, run.state, pictures, labels, task.latent_dim, key, settings, vgg_params
    )


def attribute_direction(latents_a: np.ndarray, latents_b: np.ndarray) -> np.ndarray:
    """The latent direction from group a to group b: mean latent(b) - mean latent(a)."""
    return np.mean(latents_b, axis=0) - np.mean(latents_a, axis=0)


def edit_images(
    run: inference.LoadedRun,
    pictures: np.ndarray,
    labels: list[int] | None = None,
    seed: int = 0,
    settings: inversion.Settings = inversion.DEFAULTS,
    groups: tuple[np.ndarray, np.ndarray] | None = None,
    group_labels: list[int] | None = None,
    strengths: tuple[float, ...] = STRENGTHS,
    interpolation_steps: int = 8,
    vgg_params: dict | None = None,
) -> Edits:
    """The edits of `edit` as arrays, for notebooks: `pictures` (N, H, W, C) in [-1, 1] of
    classes `labels` projected, interpolated and, with image `groups` (a, b) of classes
    `group_labels`, moved along their attribute direction."""
    task = require(run.task, Sampler, "`editing.edit_images`")
    draw = inference.compiled(task.decode)
    if interpolation_steps < 0:
        raise UserError(f"--interpolation_steps={interpolation_steps} must be >= 0 (0: none)")
    if groups is not None and not strengths:
        raise UserError("--strengths is empty; give the multiples of the direction, e.g. 0,1")
    count = len(pictures)
    input_labels = _labels(task, labels, count, "--labels", "one class per --input")
    every, every_labels = pictures, input_labels
    if groups is not None:
        group_classes = _labels(
            task, group_labels, 2, "--attribute_labels", "the classes of groups a and b"
        )
        every = np.concatenate([pictures, *groups])
        if group_classes is not None:
            sizes = np.asarray([len(group) for group in groups])
            every_labels = jnp.concatenate([input_labels, jnp.repeat(group_classes, sizes)])
    # Inputs and groups in one projection: one compiled inversion, where each image's result
    # does not depend on the others (`inversion.invert`).
    found = project(run, every, every_labels, seed, settings, vgg_params)
    projection = found.rows(0, count)
    latents = jnp.asarray(projection.latents)
    edits = Edits(projection, {"projection": np.stack([pictures, projection.reconstructions], 1)})
    if count > 1 and interpolation_steps:
        path = slerp(latents[:-1], latents[1:], jnp.linspace(0.0, 1.0, interpolation_steps))
        row_labels = None if labels is None else jnp.repeat(input_labels[:-1], interpolation_steps)
        rows = draw(run.state, path.reshape(-1, task.latent_dim), row_labels)
        edits.pictures["interpolation"] = np.asarray(rows).reshape(count - 1, -1, *rows.shape[1:])
    if groups is not None:
        middle = count + len(groups[0])
        group_a, group_b = found.rows(count, middle), found.rows(middle)
        edits.direction = attribute_direction(group_a.latents, group_b.latents)
        edits.group_mse = (float(np.mean(group_a.mse)), float(np.mean(group_b.mse)))
        moved = latents[:, None] + jnp.asarray(strengths)[None, :, None] * edits.direction
        row_labels = None if labels is None else jnp.repeat(input_labels, len(strengths))
        rows = draw(run.state, moved.reshape(-1, task.latent_dim), row_labels)
        edits.pictures["arithmetic"] = np.asarray(rows).reshape(count, -1, *rows.shape[1:])
    return edits


def _read_groups(
    attribute_a: list[str] | None, attribute_b: list[str] | None
) -> tuple[list[str], list[str]] | None:
    """The image files of the two attribute groups, or None without them."""
    if (attribute_a is None) != (attribute_b is None):
        raise UserError("give both --attribute_a and --attribute_b (two groups of images)")
    if attribute_a is None:
        return None
    return (
        images.image_files(attribute_a, "--attribute_a"),
        images.image_files(attribute_b, "--attribute_b"),
    )


def _report(
    workdir: str,
    run: inference.LoadedRun,
    edits: Edits,
    inputs: list[str],
    labels: list[int] | None,
    seed: int,
    settings: inversion.Settings | None,
    group_files: tuple[list[str], list[str]] | None,
    attribute_labels: list[int] | None,
    strengths: tuple[float, ...],
    interpolation_steps: int,
) -> dict:
    """report.json: where the latents came from and how well they reproduce the inputs."""
    projection = edits.projection
    start = projection.start_mse
    report = {
        "workdir": str(files_lib.path(workdir)),
        "step": run.step,
        "task": run.config.task,
        "method": "encoder" if settings is None else "inversion",
        "seed": seed,
        "inversion": None if settings is None else dataclasses.asdict(settings),
        "inputs": [
            {
                "path": path,
                "label": None if labels is None else labels[i],
                "mse": float(projection.mse[i]),
                "psnr": float(projection.psnr[i]),
                "start_mse": None if start is None else float(start[i]),
            }
            for i, path in enumerate(inputs)
        ],
        "interpolation_steps": interpolation_steps,
        "attribute": None,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    if group_files is not None:
        report["attribute"] = {
            "a": group_files[0],
            "b": group_files[1],
            "labels": attribute_labels,
            "strengths": list(strengths),
            "mse_a": edits.group_mse[0],
            "mse_b": edits.group_mse[1],
        }
    return report


def edit(
    workdir: str,
    inputs: list[str],
    out: str,
    labels: list[int] | None = None,
    step: int | None = None,
    seed: int = 0,
    settings: inversion.Settings = inversion.DEFAULTS,
    attribute_a: list[str] | None = None,
    attribute_b: list[str] | None = None,
    attribute_labels: list[int] | None = None,
    strengths: tuple[float, ...] = STRENGTHS,
    interpolation_steps: int = 8,
    vgg_weights: str = DEFAULT_VGG_WEIGHTS,
) -> tuple[list[str], dict]:
    """Edits the images `inputs` through `workdir`'s model and writes the results into `out`,
    only once all have succeeded; returns the files written and the report."""
    cli.check_new_directory(out)
    if not inputs:
        raise UserError("--input names no image; give one or more, e.g. --input=a.png,b.png")
    group_files = _read_groups(attribute_a, attribute_b)
    files = {"--input": inputs}
    if group_files is not None:
        files.update(zip(("--attribute_a", "--attribute_b"), group_files, strict=True))
    # Unreadable files fail before the model loads; other mistakes before any computation.
    opened = {
        setting: [images.read_image(p, setting) for p in paths] for setting, paths in files.items()
    }
    run = inference.load_run(workdir, step)
    task = require(run.task, Sampler, COMMAND)  # before the images are checked against it
    pixels = {
        setting: np.stack(
            [
                to_float(images.model_pixels(image, path, task.image_shape, setting))
                for image, path in zip(opened[setting], paths, strict=True)
            ]
        )
        for setting, paths in files.items()
    }
    pictures, groups = pixels["--input"], None
    if group_files is not None:
        groups = (pixels["--attribute_a"], pixels["--attribute_b"])
    inverts = not isinstance(task, Encoder)  # a GAN's latents are searched for
    vgg_params = None
    if inverts and settings.feature_weight:
        vgg_params = vgg.load_vgg(vgg_weights, VGG_ARCH)
    edits = edit_images(
        run,
        pictures,
        labels,
        seed,
        settings,
        groups,
        attribute_labels,
        strengths,
        interpolation_steps,
        vgg_params,
    )
    report = _report(
        workdir,
        run,
        edits,
        inputs,
        labels,
        seed,
        settings if inverts else None,
        group_files,
        attribute_labels,
        strengths,
        interpolation_steps,
    )
    out = files_lib.makedirs(out)
    written = []
    for name, rows in edits.pictures.items():
        written.append(str(out / f"{name}.png"))
        files_lib.write_image(written[-1], images.make_grid(rows))
    for name, array in (("latents", edits.projection.latents), ("direction", edits.direction)):
        if array is not None:
            written.append(str(out / f"{name}.npy"))
            files_lib.write_npy(written[-1], np.asarray(array, np.float32))
    written.append(str(out / "report.json"))
    files_lib.write_json(written[-1], report)
    return written, report
