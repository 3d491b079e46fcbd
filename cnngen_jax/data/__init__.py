"""Datasets by config name: the embedded ones (prepared offline on first use), TFDS catalog ones,
and TFDS datasets in a directory of their own, named `dir:PATH`.

`dir:PATH` reads the ArrayRecord TFDS dataset that `tfds.builder_from_directory(PATH)` opens, or
the one in PATH/tfds (an export of `python -m cnngen_jax.commands.sample --export`): an `image`
feature, and a ClassLabel `label` if the data is labelled, which give the channels and classes.
It trains on the `train` split and evaluates on `test` if there is one, else on `train` again
(an export has `train` alone). config.data_dir plays no part; a relative PATH is taken from the
current directory.

Every dataset is read through `tfds.data_source` (ArrayRecord random access); see
`cnngen_jax.data.pipeline` for how batches are formed.
"""

import dataclasses
import hashlib
import os
import re
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
    # The shortest side of the training split's images, where known: a larger image_size crop
    # is refused before a run writes anything, not at its first batch.
    shortest_train_side: int | None = None


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
        "cnngen_photos",
        "train",
        "test",
        3,
        None,
        embedded=True,
        variable_size=True,
        shortest_train_side=427,  # the rocket, 427 x 640
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


DIRECTORY_PREFIX = "dir:"


def file_name(name: str) -> str:
    """Dataset `name` as one file-name component, for caches named after it (a `dir:PATH`
    dataset's name holds slashes)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def absolute(name: str) -> str:
    """`name` with a `dir:PATH` dataset's PATH made absolute (and real), as a run records it:
    its workdir is then used the same from any directory."""
    if not name.startswith(DIRECTORY_PREFIX):
        return name
    path = os.path.expanduser(name.removeprefix(DIRECTORY_PREFIX))
    return DIRECTORY_PREFIX + os.path.realpath(path)


def fingerprint(name: str) -> str:
    """What identifies the contents of dataset `name` for caches of statistics computed from it:
    the name of a catalog or embedded dataset; for `dir:PATH`, also the size and modification
    time of each of its files, so another export into the same place is another dataset."""
    if not name.startswith(DIRECTORY_PREFIX):
        return name
    directory = os.fspath(_directory_builder(name).data_dir)
    files = sorted(
        (entry.name, entry.stat().st_size, entry.stat().st_mtime_ns)
        for entry in os.scandir(directory)
        if entry.is_file()
    )
    return f"{name}:{hashlib.sha256(repr(files).encode()).hexdigest()[:16]}"


def get_spec(name: str) -> DatasetSpec:
    if name.startswith(DIRECTORY_PREFIX):
        return _directory_spec(name)
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
    return f"python -m cnngen_jax.commands.prepare --dataset={name} --data_dir={data_dir}"


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


def prepare(name: str, data_dir: str) -> str:
    """Prepares dataset `name` as ArrayRecord in `data_dir` ('' for TFDS's default): an
    embedded one offline, a catalog one by TFDS's download (network). Returns the directory;
    `python -m cnngen_jax.commands.prepare` is this."""
    spec = get_spec(name)
    data_dir = resolve_data_dir(data_dir)
    if spec.embedded:
        ensure_prepared(name, data_dir)
    else:
        import tensorflow_datasets as tfds

        builder = tfds.builder(spec.tfds_name, data_dir=data_dir, file_format="array_record")
        builder.download_and_prepare()
    return data_dir


def open_source(name: str, split: str, data_dir: str) -> Sequence[dict[str, Any]]:
    """A random-access source of one split, or a UserError saying how to prepare it."""
    import tensorflow_datasets as tfds

    if name.startswith(DIRECTORY_PREFIX):
        return _directory_builder(name).as_data_source(split=split)
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


def check_crop(name: str, image_size: int) -> None:
    """A UserError if `image_size` crops cannot be cut from every training image of `name`."""
    side = get_spec(name).shortest_train_side
    if side is not None and image_size > side:
        raise UserError(
            f"image_size={image_size} is larger than the shortest side ({side} pixels) of the "
            f"training images of {name!r} (config.dataset); set --config.image_size to {side} "
            "or less"
        )


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


def _directory_builder(name: str):
    """The TFDS builder of a `dir:PATH` dataset, or a UserError naming config.dataset."""
    import tensorflow_datasets as tfds

    path = os.path.expanduser(name.removeprefix(DIRECTORY_PREFIX))
    if os.path.isfile(os.path.join(path, "tfds", "dataset_info.json")):
        path = os.path.join(path, "tfds")  # an export of `commands.sample --export`
    try:
        builder = tfds.builder_from_directory(path)
    except Exception as error:  # TFDS raises several types for "no dataset there"
        raise UserError(
            f"dataset {name!r} (config.dataset) names neither a TFDS dataset directory nor an "
            f"export of `cnngen_jax.commands.sample --export` (TFDS said: "
            f"{type(error).__name__}: {error})"
        ) from None
    _check_random_access(name, builder)
    return builder


def _check_random_access(name: str, builder: Any) -> None:
    """A UserError for a `dir:` dataset in a format without random access (TFRecord, TFDS's
    default): the input pipeline reads records by index (ArrayRecord, or TFDS's Parquet)."""
    from tensorflow_datasets.core import file_adapters

    file_format = builder.info.file_format
    if file_format not in file_adapters.FileFormat.with_random_access():
        file_format = getattr(file_format, "value", file_format)
        directory = os.fspath(builder.data_dir)
        raise UserError(
            f"dataset {name!r} (config.dataset) is stored as {file_format}, which has no random "
            f"access; it must be ArrayRecord. Convert it with `tfds convert_format "
            f"--dataset_dir={directory} --out_file_format=array_record --out_dir=NEW_DIR` (or "
            f"rebuild it with `tfds build --file_format=array_record`) and use dir:NEW_DIR"
        )


def _directory_spec(name: str) -> DatasetSpec:
    """The spec of a `dir:PATH` dataset, from its features and splits."""
    builder = _directory_builder(name)
    features = dict(builder.info.features.items())
    splits = list(builder.info.splits)
    if "image" not in features or features["image"].shape[-1] is None or "train" not in splits:
        raise UserError(
            f"dataset {name!r} (config.dataset) needs an 'image' feature of known channels and a "
            f"'train' split; {builder.data_dir} has features {sorted(features)} and splits {splits}"
        )
    return DatasetSpec(
        tfds_name=os.fspath(builder.data_dir),
        train_split="train",
        test_split="test" if "test" in splits else "train",
        channels=features["image"].shape[-1],
        num_classes=_num_classes(name, features.get("label")),
    )


def _num_classes(name: str, label: Any) -> int | None:
    """The classes of a `dir:` dataset's `label` feature (None without one)."""
    if label is None:
        return None
    if not hasattr(label, "num_classes"):
        raise UserError(
            f"dataset {name!r} (config.dataset) has a 'label' feature that is not a TFDS "
            f"ClassLabel ({type(label).__name__}); class labels must be ClassLabel integers"
        )
    return label.num_classes
