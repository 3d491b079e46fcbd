"""A small CNN classifier the project trains on a labelled dataset, as an offline feature network.

FID/KID/precision-recall need a feature network; the FID Inception weights cannot be downloaded
here, so by default the features are the penultimate layer of this classifier, trained on the
dataset's own train split at the run's image size. Its numbers rank models trained on the same
dataset and are comparable only with numbers from the same weights (the weights hash is part of
every evaluation protocol), never with published Inception FIDs.

Training is deterministic for a given platform, and the result is cached as a pickle-free `.npz`
keyed by the dataset, image size and training settings, so each protocol trains it once.
"""

import dataclasses
import functools
import json
import os
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import traverse_util

import cnngen_jax
from cnngen_jax import data, files
from cnngen_jax.data import pipeline
from cnngen_jax.errors import UserError
from cnngen_jax.metrics import npz_files
from cnngen_jax.metrics.npz_files import content_sha256
from cnngen_jax.pixels import to_uint8

_META_SHA = "meta/sha256"
_META_SETTINGS = "meta/settings"
_META_ACCURACY = "meta/test_accuracy"
PREDICT_BATCH = 256


class DomainClassifier(nn.Module):
    """uint8 images (N, H, W, C) -> {'features': penultimate layer, 'logits'}.

    uint8 input, as the FID Inception takes: real and generated images are both quantised the
    same way before any feature is computed.

    Stride-2 convolutions halve the image down to 4x4 (any size; the first one too, since a
    full-resolution convolution of a one-channel image is ~8x slower on XLA:CPU), then a global
    mean, a dense layer (the features) and the class logits. The features go through a GELU:
    with a ReLU ~40% of them were dead, leaving a rank-deficient covariance. No BatchNorm, so
    `apply` is a pure function of the weights: features never depend on the rest of the batch.
    """

    num_classes: int
    width: int
    feature_dim: int

    @nn.compact
    def __call__(self, images: jax.Array) -> dict[str, jax.Array]:
        x = images.astype(jnp.float32) / 127.5 - 1.0
        x = nn.relu(nn.Conv(self.width, (3, 3), strides=2)(x))
        channels = self.width
        while x.shape[1] > 4:
            channels = min(2 * channels, 4 * self.width)
            x = nn.relu(nn.Conv(channels, (3, 3), strides=2)(x))
        features = nn.gelu(nn.Dense(self.feature_dim)(jnp.mean(x, axis=(1, 2))))
        return {"features": features, "logits": nn.Dense(self.num_classes)(features)}


@dataclasses.dataclass(frozen=True)
class ClassifierSettings:
    """How the classifier is trained; part of the evaluation protocol (and of the cache key),
    so these are fixed here rather than per-experiment settings."""

    width: int = 32
    feature_dim: int = 128
    steps: int = 400
    batch_size: int = 64
    learning_rate: float = 3e-3
    seed: int = 0


DEFAULT_SETTINGS = ClassifierSettings()


@dataclasses.dataclass(frozen=True)
class TrainedClassifier:
    """A trained classifier, the hash of its weights and its accuracy on the test split."""

    model: DomainClassifier
    variables: dict
    sha256: str
    test_accuracy: float
    path: str


def num_classes(dataset: str) -> int:
    """The dataset's class count, or a UserError for a dataset without labels."""
    classes = data.get_spec(dataset).num_classes
    if classes is None:
        raise UserError(
            f"dataset {dataset!r} has no class labels, so no domain classifier can be trained "
            "for it; evaluate with the Inception network (feature_net 'inception')"
        )
    return classes


def _model(classes: int, settings: ClassifierSettings = DEFAULT_SETTINGS) -> DomainClassifier:
    return DomainClassifier(classes, settings.width, settings.feature_dim)


def read_split(
    dataset: str, split: str, image_size: int, data_dir: str
) -> tuple[np.ndarray, np.ndarray]:
    """All images (uint8) and labels of a split, read once through the input pipeline (the same
    crop, resize and quantisation as training batches)."""
    spec = data.get_spec(dataset)
    source = data.open_source(dataset, split, data_dir)
    images, labels = [], []
    for batch in pipeline.eval_batches(
        source, spec, image_size=image_size, global_batch_size=256, rows=slice(None)
    ):
        real = batch["mask"] > 0
        images.append(to_uint8(batch["image"][real]))
        labels.append(batch["label"][real])
    return np.concatenate(images), np.concatenate(labels)


# Module-level and jitted with the model and settings static, so that every `fit` (one per
# conditional evaluation, for the Classification Accuracy Score) reuses one compilation.


@functools.partial(jax.jit, static_argnums=(0, 1))
def _init(model: DomainClassifier, settings: ClassifierSettings, sample: jax.Array):
    # Jitted, with the PRNG that compiles fastest: eager initialisation compiles op by op.
    variables = model.init(jax.random.key(settings.seed, impl="rbg"), sample)
    return variables, optax.adam(settings.learning_rate).init(variables)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _step(model, settings: ClassifierSettings, variables, opt_state, images, labels):
    def loss_fn(variables):
        logits = model.apply(variables, images)["logits"]
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

    grads = jax.grad(loss_fn)(variables)
    updates, opt_state = optax.adam(settings.learning_rate).update(grads, opt_state, variables)
    return optax.apply_updates(variables, updates), opt_state


def fit(images: np.ndarray, labels: np.ndarray, classes: int, settings: ClassifierSettings) -> dict:
    """The classifier's variables after `settings.steps` Adam steps on uint8 `images`.

    The images are held in memory and reshuffled every epoch (seeded): reading each record
    again per step through Grain would cost more than the training itself. Deterministic for a
    given platform.
    """
    model = _model(classes, settings)
    variables, opt_state = _init(model, settings, images[:1])
    rng = np.random.default_rng(settings.seed)
    per_epoch = max(1, len(images) // settings.batch_size)
    for i in range(settings.steps):
        if i % per_epoch == 0:
            order = rng.permutation(len(images))
        rows = order[(i % per_epoch) * settings.batch_size :][: settings.batch_size]
        variables, opt_state = _step(
            model, settings, variables, opt_state, images[rows], labels[rows]
        )
    return jax.device_get(variables)


@functools.partial(jax.jit, static_argnums=0)
def _logits(model: DomainClassifier, variables: dict, images: jax.Array) -> jax.Array:
    return model.apply(variables, images)["logits"]


def predict(
    model: DomainClassifier, variables: dict, images: np.ndarray, classes: Any = None
) -> np.ndarray:
    """The predicted class of each uint8 image, chosen among `classes` (default: all), in
    batches of 256 (the last one padded, so one compilation serves every call)."""
    logits = []
    for start in range(0, len(images), PREDICT_BATCH):
        batch = images[start : start + PREDICT_BATCH]
        padded = np.zeros((PREDICT_BATCH, *batch.shape[1:]), batch.dtype)
        padded[: len(batch)] = batch
        logits.append(np.asarray(_logits(model, variables, padded))[: len(batch)])
    logits = np.concatenate(logits)
    if classes is None:
        return np.argmax(logits, axis=-1)
    classes = np.asarray(classes)
    return classes[np.argmax(logits[:, classes], axis=-1)]


def train_classifier(
    dataset: str, image_size: int, data_dir: str, settings: ClassifierSettings
) -> tuple[dict, float]:
    """Trains on the train split; returns the variables and the accuracy on the test split."""
    spec = data.get_spec(dataset)
    classes = num_classes(dataset)
    data.ensure_prepared(dataset, data_dir)
    images, labels = read_split(dataset, spec.train_split, image_size, data_dir)
    variables = fit(images, labels, classes, settings)
    test_images, test_labels = read_split(dataset, spec.test_split, image_size, data_dir)
    predicted = predict(_model(classes, settings), variables, test_images)
    return variables, float(np.mean(predicted == test_labels))


def cache_path(
    cache_dir: files.PathLike, dataset: str, image_size: int, settings: ClassifierSettings
) -> str:
    """Where the weights for these settings live; the name carries a hash of everything that
    determines them (the library version stands for the architecture)."""
    key = {
        "dataset": data.fingerprint(dataset),
        "image_size": image_size,
        "settings": dataclasses.asdict(settings),
        "cnngen_jax": cnngen_jax.__version__,
    }
    digest = npz_files.json_digest(key)
    name = f"{data.file_name(dataset)}-{image_size}px-{digest}.npz"
    return os.fspath(files.path(cache_dir, "cache_dir") / "domain_classifier" / name)


def _save(path: str, variables: dict, accuracy: float, settings: ClassifierSettings) -> str:
    """Writes atomically (several processes may train the same classifier); returns the hash."""
    flat = {k: np.asarray(v) for k, v in traverse_util.flatten_dict(variables, sep="/").items()}
    sha256 = content_sha256(flat)
    meta = {
        _META_SHA: np.asarray(sha256),
        _META_SETTINGS: np.asarray(json.dumps(dataclasses.asdict(settings), sort_keys=True)),
        _META_ACCURACY: np.asarray(accuracy, np.float64),
    }
    npz_files.write_atomically(path, {**flat, **meta})
    return sha256


def _load(path: str) -> tuple[dict, str, float]:
    """Reads without pickle and checks the arrays against the stored hash."""
    flat = npz_files.read(path)
    stored = str(flat.pop(_META_SHA, ""))
    accuracy = float(flat.pop(_META_ACCURACY, np.nan))
    flat.pop(_META_SETTINGS, None)
    sha256 = content_sha256(flat)
    if sha256 != stored:
        raise UserError(
            f"the cached domain classifier {path} does not match its stored hash (a partial or "
            "edited file); delete it and it is trained again"
        )
    return traverse_util.unflatten_dict(flat, sep="/"), sha256, accuracy


def load_or_train(
    dataset: str,
    image_size: int,
    data_dir: str,
    cache_dir: str,
    settings: ClassifierSettings = DEFAULT_SETTINGS,
) -> TrainedClassifier:
    """The cached classifier for these settings, training and caching it on first use."""
    model = _model(num_classes(dataset), settings)
    path = cache_path(cache_dir, dataset, image_size, settings)
    if files.path(path).exists():
        variables, sha256, accuracy = _load(path)
    else:
        variables, accuracy = train_classifier(dataset, image_size, data_dir, settings)
        sha256 = _save(path, variables, accuracy, settings)
    return TrainedClassifier(model, variables, sha256, accuracy, path)
