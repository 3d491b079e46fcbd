"""Edit real images through a trained GAN or VAE: project them into its latent space, then walk
between them and add attribute directions there.

    python -m cnngen_jax.edit --workdir=runs/dcgan --input=a.png,b.png --out=edits/ab
        [--labels=3,5] [--steps=300] [--restarts=4] [--learning_rate=0.05] [--seed=0]
        [--feature_weight=0 --vgg_weights=vgg19.npz] [--interpolation_steps=8]
        [--attribute_a=DIR_OR_LIST --attribute_b=DIR_OR_LIST [--attribute_labels=A,B]]
        [--strengths=0,0.5,1,1.5,2] [--step=N]

A GAN's latents are found by inversion (`cnngen_jax.inversion`: Adam on the latents, several
random restarts, the best kept); a VAE's are its encoder's posterior means, so the inversion
settings do not apply to it. Writes into `--out` (created; it must not hold files already), and
only once everything has succeeded:

- `projection.png`: each input beside its reconstruction; `latents.npy`: their latents (N, D);
- `interpolation.png` (two inputs or more): a row between each input and the next, along the
  great circle (`sample.slerp`), in the first one's class for a conditional model;
- `arithmetic.png` and `direction.npy` with `--attribute_a` and `--attribute_b`, two groups of
  images (each a directory or a comma list): the direction mean latent(b) - mean latent(a),
  as in Radford et al. 2016, added to each input's latent at each of `--strengths` (a row per
  input; strength 0 is the reconstruction);
- `report.json`: each input's reconstruction error (MSE of intensities in [0, 1], PSNR in dB),
  the settings, the seed and the source workdir and step.

Inputs must already have the model's size and channel count (a grey picture saved as RGB, as
this project's grids are, counts as one channel); nothing is resized, so the error names the
size expected. A conditional model needs the class of every input (`--labels`) and of both
groups (`--attribute_labels`). A fixed `--seed` gives the same latents every time.
"""

import dataclasses
import datetime
import json
import os
import types

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags
from PIL import Image

from cnngen_jax import cli, images, inference, inversion, tasks
from cnngen_jax.data.pipeline import to_float
from cnngen_jax.errors import UserError
from cnngen_jax.models import vgg
from cnngen_jax.sample import slerp
from cnngen_jax.tasks.gan import GANTask
from cnngen_jax.tasks.vae import VAETask

STRENGTHS = (0.0, 0.5, 1.0, 1.5, 2.0)
VGG_ARCH = inversion.FEATURE_NET.arch
DEFAULT_VGG_WEIGHTS = vgg.DEFAULT_WEIGHTS_PATTERN.format(arch=VGG_ARCH)


def _flags() -> types.SimpleNamespace:
    """The command's flags, defined only when it runs as a program: the module is also a
    library, imported beside other commands that define --workdir too."""
    defaults = inversion.DEFAULTS
    holders = types.SimpleNamespace(
        workdir=flags.DEFINE_string("workdir", None, "The training run (holds config.json)."),
        input=flags.DEFINE_list("input", None, "The images to edit, e.g. a.png,b.png."),
        out=flags.DEFINE_string("out", None, "A new (or empty) directory for the results."),
        labels=flags.DEFINE_list("labels", None, "Conditional models: each input's class."),
        step=flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest)."),
        seed=flags.DEFINE_integer("seed", 0, "Seed of the inversion's random starts."),
        steps=flags.DEFINE_integer("steps", defaults.steps, "GANs: Adam steps of inversion."),
        restarts=flags.DEFINE_integer(
            "restarts", defaults.restarts, "GANs: random starts per image (the best is kept)."
        ),
        learning_rate=flags.DEFINE_float(
            "learning_rate", defaults.learning_rate, "GANs: Adam's learning rate on the latents."
        ),
        feature_weight=flags.DEFINE_float(
            "feature_weight",
            0.0,
            "GANs: weight of a VGG19 relu2_2 feature loss, e.g. 0.01 (0: off).",
        ),
        vgg_weights=flags.DEFINE_string(
            "vgg_weights",
            DEFAULT_VGG_WEIGHTS,
            "Converted VGG19 weights (`python -m cnngen_jax.models.convert_vgg`), for "
            "--feature_weight.",
        ),
        interpolation_steps=flags.DEFINE_integer(
            "interpolation_steps", 8, "Images per interpolation row (0: none)."
        ),
        attribute_a=flags.DEFINE_list(
            "attribute_a", None, "Images without the attribute: a directory or a comma list."
        ),
        attribute_b=flags.DEFINE_list(
            "attribute_b", None, "Images with the attribute: a directory or a comma list."
        ),
        attribute_labels=flags.DEFINE_list(
            "attribute_labels", None, "Conditional models: the classes of groups a and b."
        ),
        strengths=flags.DEFINE_list(
            "strengths", [str(s) for s in STRENGTHS], "Multiples of the direction to add."
        ),
    )
    for name in ("workdir", "input", "out"):
        flags.mark_flag_as_required(name)
    return holders


def image_files(values: list[str], setting: str) -> list[str]:
    """The files of a flag given as a comma list of images or as one directory of them (its
    files with an image extension, in name order)."""
    if len(values) == 1 and os.path.isdir(values[0]):
        known = Image.registered_extensions()
        names = sorted(os.listdir(values[0]))
        files = [
            os.path.join(values[0], n) for n in names if os.path.splitext(n)[1].lower() in known
        ]
        if not files:
            raise UserError(f"{setting}={values[0]} holds no image files")
        return files
    return values


def _channels(image: Image.Image) -> int:
    mode = image.palette.mode if image.mode == "P" else image.mode
    return Image.getmodebands(mode)


def _is_grey(image: Image.Image) -> bool:
    """Whether an RGB image's three channels are equal everywhere."""
    rgb = np.asarray(image.convert("RGB"))
    return bool(np.all(rgb == rgb[..., :1]))


def model_pixels(
    image: Image.Image, path: str, shape: tuple[int, int, int], setting: str
) -> np.ndarray:
    """`image` (read from `path`) as float32 (H, W, C) in [-1, 1], or a UserError unless it has
    the model's `shape`: its size and channel count, where an RGB image whose channels are all
    equal is grey."""
    size, channels = shape[0], shape[2]
    found = _channels(image)
    if found != channels and not (channels == 1 and found == 3 and _is_grey(image)):
        kinds = {1: "greyscale", 2: "greyscale with alpha", 3: "RGB", 4: "RGB with alpha"}
        raise UserError(
            f"{setting}={path} has {found} channels ({kinds.get(found, image.mode)}); the model "
            f"takes {channels}-channel ({kinds[channels]}) images"
        )
    if image.size != (size, size):
        raise UserError(
            f"{setting}={path} is {image.width}x{image.height} pixels; the model takes "
            f"{size}x{size} images (nothing is resized: resize or crop it first)"
        )
    return to_float(images.pixels(image, channels))


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


def _decoder(run: inference.LoadedRun) -> inversion.Decode:
    """The run's decoder, each image a function of its own latent alone (a GAN's
    `decode_each`; a VAE's `decode`), or a UserError for a task that does not make images."""
    if isinstance(run.task, GANTask):
        return run.task.decode_each
    if isinstance(run.task, VAETask):
        return run.task.decode
    raise UserError(f"the run's task is {run.config.task!r}; only GANs and VAEs edit images")


def project(
    run: inference.LoadedRun,
    pictures: np.ndarray,
    labels: jax.Array | None,
    seed: int = 0,
    settings: inversion.Settings = inversion.DEFAULTS,
    vgg_params: dict | None = None,
) -> inversion.Projection:
    """The latents of `pictures` (N, H, W, C) in [-1, 1]: a VAE's posterior means, or a GAN's
    inversion with `settings` from starts drawn with `seed`."""
    decode = _decoder(run)
    if isinstance(run.task, VAETask):
        latents = inference.compiled(run.task.encode)(run.state, jnp.asarray(pictures), labels)
        return inversion.reconstruct(decode, run.state, pictures, labels, np.asarray(latents))
    key = jax.random.key(seed)
    return inversion.invert(
        decode, run.state, pictures, labels, run.task.latent_dim, key, settings, vgg_params
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
    task, draw = run.task, inference.compiled(_decoder(run))
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
    return image_files(attribute_a, "--attribute_a"), image_files(attribute_b, "--attribute_b")


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
        "workdir": os.path.abspath(workdir),
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
    _decoder(run)  # a run that makes no images fails before its images are checked
    pixels = {
        setting: np.stack(
            [
                model_pixels(image, path, run.task.image_shape, setting)
                for image, path in zip(opened[setting], paths, strict=True)
            ]
        )
        for setting, paths in files.items()
    }
    pictures, groups = pixels["--input"], None
    if group_files is not None:
        groups = (pixels["--attribute_a"], pixels["--attribute_b"])
    inverts = isinstance(run.task, GANTask)
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
    os.makedirs(out, exist_ok=True)
    written = []
    for name, rows in edits.pictures.items():
        written.append(os.path.join(out, f"{name}.png"))
        images.save_png(images.make_grid(rows), written[-1])
    for name, array in (("latents", edits.projection.latents), ("direction", edits.direction)):
        if array is not None:
            written.append(os.path.join(out, f"{name}.npy"))
            np.save(written[-1], np.asarray(array, np.float32))
    written.append(os.path.join(out, "report.json"))
    with open(written[-1], "w") as f:
        json.dump(report, f, indent=2)
    return written, report


def main(argv: list[str], holders: types.SimpleNamespace) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    with cli.reported_errors():
        settings = inversion.Settings(
            steps=holders.steps.value,
            restarts=holders.restarts.value,
            learning_rate=holders.learning_rate.value,
            feature_weight=holders.feature_weight.value,
        )
        written, report = edit(
            holders.workdir.value,
            holders.input.value,
            holders.out.value,
            labels=cli.class_numbers(holders.labels.value),
            step=holders.step.value,
            seed=holders.seed.value,
            settings=settings,
            attribute_a=holders.attribute_a.value,
            attribute_b=holders.attribute_b.value,
            attribute_labels=cli.class_numbers(
                holders.attribute_labels.value, "--attribute_labels"
            ),
            strengths=tuple(cli.numbers(holders.strengths.value, "--strengths")),
            interpolation_steps=holders.interpolation_steps.value,
            vgg_weights=holders.vgg_weights.value,
        )
    for entry in report["inputs"]:
        print(f"{entry['path']}: MSE {entry['mse']:.5f}, PSNR {entry['psnr']:.2f} dB")
    print("\n".join(f"wrote {path}" for path in written), flush=True)


if __name__ == "__main__":
    command_flags = _flags()
    app.run(lambda argv: main(argv, command_flags), flags_parser=cli.parse_flags)
