"""A synthetic data set drawn from a trained generator, written twice with the same PNG bytes:

    OUT/images/train/<label>/<index>.png   an image folder, as tfds.ImageFolder and torchvision's
                                           ImageFolder read it
    OUT/tfds/                              a TFDS dataset in ArrayRecord format:
                                           tfds.builder_from_directory("OUT/tfds")

There is one split, `train`. The TFDS features are `image` (PNG-encoded uint8, H x W x C, the
model's channels) and, for a conditional model, `label` (ClassLabel of the run's classes); record
i is image i. Folder labels are class numbers zero-padded to one width, so that the sorted folder
names (the class order of both readers) are the class numbers; an unconditional model's images
are all under `unlabelled/`. Image i's latent depends on the seed and i alone, so a larger export
starts with a smaller one's images (on an accelerator, batches of another size may round a pixel
differently); batches of `BATCH_SIZE` go through one compiled program, so any count fits.
"""

import contextlib
import io
import os
import shutil
import tempfile
from collections.abc import Iterator

import jax
import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from cnngen_jax import files as files_lib
from cnngen_jax import inference, pixels
from cnngen_jax.capabilities import Sampler, require
from cnngen_jax.random_streams import EXPORT, seed_key

BATCH_SIZE = 256
SPLIT = "train"
IMAGES_DIR = "images"
TFDS_DIR = "tfds"
UNLABELLED = "unlabelled"


def latents(seed: int, indices: np.ndarray, latent_dim: int) -> jax.Array:
    """The latents of images `indices`: one key per image index, so that image i is the same
    whatever the number of images and the batch size."""
    stream = seed_key(seed, EXPORT)
    return jax.vmap(lambda i: jax.random.normal(jax.random.fold_in(stream, i), (latent_dim,)))(
        np.asarray(indices)
    )


def padded_batches(count: int, batch_size: int) -> Iterator[tuple[int, np.ndarray]]:
    """(start, rows) of the batches covering rows 0 .. count - 1, `batch_size` at a time, the
    last padded with copies of row count - 1: one shape, one compiled program; cut each result
    to its first count - start rows."""
    size = min(batch_size, count)
    for start in range(0, count, size):
        yield start, np.minimum(np.arange(start, start + size), count - 1)


def generate(
    run: inference.LoadedRun,
    num_images: int,
    seed: int,
    labels: np.ndarray | None,
    batch_size: int = BATCH_SIZE,
) -> Iterator[np.ndarray]:
    """The images (uint8) of `run`'s generator in batches; `labels` gives each image's class (None
    for an unconditional model). The last batch is computed at full size and cut: one shape, one
    compilation. A UserError unless the run is a `Sampler`."""
    task = require(run.task, Sampler, "`python -m cnngen_jax.commands.sample --export`")
    decode = inference.compiled(task.decode)
    for start, rows in padded_batches(num_images, batch_size):
        batch_labels = None if labels is None else labels[rows]
        batch = decode(run.state, latents(seed, rows, task.latent_dim), batch_labels)
        yield pixels.to_uint8(batch)[: num_images - start]


def label_names(num_classes: int | None) -> list[str]:
    """The folder name of each class: numbers zero-padded to one width (`unlabelled` alone for an
    unconditional model)."""
    if not num_classes:
        return [UNLABELLED]
    width = len(str(num_classes - 1))
    return [f"{label:0{width}d}" for label in range(num_classes)]


def write_export(
    run: inference.LoadedRun, out: str, num_images: int, seed: int, labels: np.ndarray | None
) -> list[str]:
    """Draws `num_images` images of `run`'s generator (of classes `labels`, one per image, already
    checked) into the image folder and the TFDS dataset of `out`; returns the two folders."""
    if files_lib.is_remote(out):  # PNGs and the TFDS build are written locally, then uploaded
        with tempfile.TemporaryDirectory() as local:
            write_export(run, local, num_images, seed, labels)
            files_lib.copy_tree(local, out)
        return [str(files_lib.path(out) / IMAGES_DIR), str(files_lib.path(out) / TFDS_DIR)]
    names = label_names(run.task.num_classes)
    width = len(str(num_images - 1))
    files = []
    for batch in generate(run, num_images, seed, labels):
        for image in batch:
            index = len(files)
            label = names[0] if labels is None else names[int(labels[index])]
            path = os.path.join(out, IMAGES_DIR, SPLIT, label, f"{index:0{width}d}.png")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(path)
            files.append(path)
    tfds_dir = os.path.join(out, TFDS_DIR)
    write_tfds(files, labels, batch.shape[1:], run.task.num_classes, tfds_dir)
    return [os.path.join(out, IMAGES_DIR), tfds_dir]


def write_tfds(
    files: list[str],
    labels: np.ndarray | None,
    image_shape: tuple[int, int, int],
    num_classes: int | None,
    directory: str,
) -> None:
    """Writes the PNG `files` (with `labels`, one per file) as a TFDS ArrayRecord dataset into
    the new `directory`. TFDS builds into `<data_dir>/<name>/<version>/` next to a downloads
    folder and prints that place; it builds in a temporary folder, moved into place after."""
    parent = os.path.dirname(os.path.abspath(directory))
    with tempfile.TemporaryDirectory(dir=parent) as build_dir:
        builder = SyntheticImages(
            files, labels, image_shape, num_classes, data_dir=build_dir, file_format="array_record"
        )
        tfds.disable_progress_bar()
        with contextlib.redirect_stdout(io.StringIO()):
            builder.download_and_prepare()
        shutil.move(builder.data_dir, directory)


class SyntheticImages(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """The TFDS builder of an export: its examples are PNG files just written, given to it, not a
    download that a registered builder could fetch (TFDS's ad-hoc builder needs TensorFlow)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Images drawn from a trained cnngen_jax generator."}

    def __init__(
        self,
        files: list[str],
        labels: np.ndarray | None,
        image_shape: tuple[int, int, int],
        num_classes: int | None,
        **kwargs,
    ):
        self._files, self._labels = files, labels
        self._image_shape, self._num_classes = image_shape, num_classes
        super().__init__(**kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        features = {"image": tfds.features.Image(shape=self._image_shape)}
        if self._num_classes:
            features["label"] = tfds.features.ClassLabel(num_classes=self._num_classes)
        return tfds.core.DatasetInfo(
            builder=self,
            description="Images drawn from a trained cnngen_jax generator (sample --export).",
            features=tfds.features.FeaturesDict(features),
            supervised_keys=("image", "label") if self._num_classes else None,
            disable_shuffling=True,  # record i is image i
        )

    def _split_generators(self, dl_manager):
        return {SPLIT: self._generate_examples()}

    def _generate_examples(self):
        for index, path in enumerate(self._files):
            example = {"image": path}  # the file's PNG bytes, stored as they are
            if self._labels is not None:
                example["label"] = int(self._labels[index])
            yield index, example
