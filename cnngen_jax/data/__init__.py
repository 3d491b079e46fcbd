"""Datasets by config name: the embedded ones (prepared offline on first use) and TFDS catalog ones.

Every dataset is read through `tfds.data_source` (ArrayRecord random access); see
`cnngen_jax.data.pipeline` for how batches are formed.
"""

import dataclasses
import os
from collections.abc import Sequence
from typing import Any

from cnngen_jax.errors import UserError


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """How to read one dataset: its TFDS name, splits, image layout and labels."""

    tfds_name: str
    train_split: str
    test_split: str
    channels: int
    num_classes: int | None  # None: the dataset has no class labels
    center_crop: int | None = None  # square crop (pixels) taken before resizing
    embedded: bool = False  # a builder of this project, prepared offline on first use
    # Images of differing sizes (photographs): training reads random image_size crops, and
    # evaluation whole images, one at a time; nothing is resized.
    variable_size: bool = False
    image_feature: str = "image"  # the feature holding the image (DIV2K's is "hr")


DATASETS: dict[str, DatasetSpec] = {
    "digits": DatasetSpec("cnngen_digits", "train", "test", 1, 10, embedded=True),
    "mnist5k": DatasetSpec("cnngen_mnist5k", "train", "test", 1, 10, embedded=True),
    "mnist": DatasetSpec("mnist", "train", "test", 1, 10),
    "fashion_mnist": DatasetSpec("fashion_mnist", "train", "test", 1, 10),
    "cifar10": DatasetSpec("cifar10", "train", "test", 3, 10),
    # The usual DCGAN CelebA protocol: a 108x108 centre crop of the aligned 218x178 faces.
    "celeb_a": DatasetSpec("celeb_a", "train", "test", 3, None, center_crop=108),
    # Restoration: real photographs at their own sizes, and 256x256 scenes for inpainting.
    "photos": DatasetSpec(
        "cnngen_photos", "train", "test", 3, None, embedded=True, variable_size=True
    ),
    # DIV2K's 800 / 100 2K-resolution images (Agustsson & Timofte 2017); only the HR images are
    # read, low-resolution inputs are made by the task's degradation.
    "div2k": DatasetSpec(
        "div2k/bicubic_x4", "train", "validation", 3, None, variable_size=True, image_feature="hr"
    ),
    "places365_small": DatasetSpec("places365_small", "train", "validation", 3, 365),
}


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What the model families need to know about the data they train on."""

    name: str
    channels: int
    num_classes: int | None


def get_spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        known = ", ".join(sorted(DATASETS))
        raise UserError(f"unknown dataset {name!r} (config.dataset); choose one of: {known}")
    return DATASETS[name]


def resolve_data_dir(data_dir: str) -> str:
    """`config.data_dir`, or TFDS's default (`$TFDS_DATA_DIR` or ~/tensorflow_datasets)."""
    if data_dir:
        return os.path.expanduser(data_dir)
    return os.environ.get("TFDS_DATA_DIR", os.path.expanduser("~/tensorflow_datasets"))


def prepare_command(name: str, data_dir: str) -> str:
    return f"python -m cnngen_jax.data.prepare --dataset={name} --data_dir={data_dir}"


def ensure_prepared(name: str, data_dir: str) -> None:
    """Prepares an embedded dataset into `data_dir` if it is not there yet (offline, seconds)."""
    spec = get_spec(name)
    if spec.embedded:
        builder = _embedded_builder(spec, data_dir)
        if not builder.is_prepared():
            import tensorflow_datasets as tfds

            builder.check_source()  # a clear error, before TFDS writes anything

            tfds.disable_progress_bar()
            builder.download_and_prepare()


def open_source(name: str, split: str, data_dir: str) -> Sequence[dict[str, Any]]:
    """A random-access source of one split, or a UserError saying how to prepare it."""
    import tensorflow_datasets as tfds

    spec = get_spec(name)
    if spec.embedded:
        builder = _embedded_builder(spec, data_dir)
        if not builder.is_prepared():
            raise UserError(f"embedded dataset {name!r} is not prepared in {data_dir}")
        return builder.as_data_source(split=split)
    try:
        return tfds.data_source(spec.tfds_name, split=split, data_dir=data_dir, download=False)
    except Exception as error:  # TFDS raises several types for "not there"; all mean the same.
        raise UserError(
            f"dataset {name!r} (config.dataset) is not prepared as ArrayRecord in "
            f"{data_dir} (config.data_dir) and nothing is downloaded at training time. "
            f"On a machine with network access run:\n  {prepare_command(name, data_dir)}\n"
            f"then copy the directory here or point --config.data_dir at it. "
            f"(TFDS said: {type(error).__name__}: {str(error).splitlines()[0]})"
        ) from None


def dataset_info(name: str) -> DatasetInfo:
    """What a task may know of `name`, from its spec alone: tasks are built (and their settings
    checked) before any data is opened."""
    spec = get_spec(name)
    return DatasetInfo(name, spec.channels, spec.num_classes)


def _embedded_builder(spec: DatasetSpec, data_dir: str):
    from cnngen_jax.data.digits import CnngenDigits
    from cnngen_jax.data.mnist5k import CnngenMnist5k
    from cnngen_jax.data.photos import CnngenPhotos

    builders = {
        "cnngen_digits": CnngenDigits,
        "cnngen_mnist5k": CnngenMnist5k,
        "cnngen_photos": CnngenPhotos,
    }
    return builders[spec.tfds_name](data_dir=data_dir, file_format="array_record")
