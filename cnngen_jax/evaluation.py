"""Generated images against a dataset split on one feature network: FID, KID, precision/recall
(and the Inception Score with Inception), and for class-conditional models the conditional
metrics of `cnngen_jax.metrics.conditional`; each result stamped with the protocol behind it.

Shared by `python -m cnngen_jax.evaluate` (the latest checkpoint of a run) and the GAN task's
`evaluate` (during training), so both compute the same numbers. Such numbers are comparable
only between equal protocols: same data, split, image size, feature network weights, counts.

Real and generated images are both quantised to uint8 at the run's image size before any
feature is computed, as images saved to disk would be.
"""

import dataclasses
import json
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.experimental import multihost_utils

import cnngen_jax
from cnngen_jax import data
from cnngen_jax.data import pipeline
from cnngen_jax.errors import UserError
from cnngen_jax.images import to_uint8
from cnngen_jax.metrics import (
    FIDInceptionV3,
    GaussianStats,
    conditional,
    domain,
    extract_features,
    frechet_distance,
    inception_score,
    kernel_inception_distance,
    load_inception_weights,
    npz_files,
    precision_recall,
)
from cnngen_jax.metrics.npz_files import content_sha256
from cnngen_jax.tasks import EVAL_STREAM, check_labels, seed_key

FEATURE_NETS = ("domain", "inception")
# Metric settings, part of every protocol stamp: torch-fidelity's KID subsets (the subset size
# shrinks to the smaller set when there are fewer than 1000 images) and k of precision/recall.
KID_SUBSETS = 100
KID_MAX_SUBSET_SIZE = 1000
PRECISION_RECALL_K = 3
# The Inception Score is averaged over 10 splits, so evaluations need at least 10 images.
MIN_SAMPLES = 10

Generate = Callable[[Any, jax.Array, int], jax.Array]


@dataclasses.dataclass(frozen=True)
class FeatureNet:
    """A feature network on uint8 images and what identifies it in a protocol."""

    name: str
    apply_fn: Callable[[Any, jax.Array], dict[str, jax.Array]]
    variables: Any
    sha256: str
    features: str  # output for FID, KID and precision/recall
    logits: str | None  # output for the Inception Score, None for no score
    resize: str
    stamp: dict[str, Any]  # extra protocol fields


def domain_net(classifier: domain.TrainedClassifier, dataset: str, image_size: int) -> FeatureNet:
    """The features of the project's classifier for `dataset` at `image_size`."""
    return FeatureNet(
        name="domain",
        apply_fn=classifier.model.apply,
        variables=classifier.variables,
        sha256=classifier.sha256,
        features="features",
        logits=None,
        resize=f"PIL bilinear to {image_size}px by the input pipeline; none before the network",
        stamp={
            "comparable_to_inception_fid": False,
            "note": (
                f"features of a small classifier trained by cnngen_jax on {dataset} at "
                f"{image_size}px: compare only with results of the same protocol, never with "
                "Inception FID/KID"
            ),
            "domain_classifier_test_accuracy": classifier.test_accuracy,
        },
    )


def inception_net(weights_path: str, image_size: int) -> FeatureNet:
    """The FID Inception (torch-fidelity's graph and resize); greyscale is repeated to RGB."""
    weights = load_inception_weights(weights_path or None)

    def apply_fn(variables: Any, images: jax.Array) -> dict[str, jax.Array]:
        if images.shape[-1] == 1:
            images = jnp.repeat(images, 3, axis=-1)
        return FIDInceptionV3().apply(variables, images)

    return FeatureNet(
        name="inception",
        apply_fn=apply_fn,
        variables=weights.variables,
        sha256=weights.sha256,
        features="pool",
        logits="logits_unbiased",
        resize=(
            f"PIL bilinear to {image_size}px by the input pipeline, then TF1 bilinear to 299px "
            "(torch-fidelity)"
        ),
        stamp={
            "comparable_to_inception_fid": True,
            "note": "FID Inception-v3 (2015-12-05) pool features, as torch-fidelity",
            "inception_source_sha256": weights.source_sha256,
        },
    )


@dataclasses.dataclass(frozen=True)
class Reference:
    """Feature statistics of the real images of one protocol (`key`)."""

    stats: GaussianStats
    features: np.ndarray
    key: dict[str, Any]
    labels: np.ndarray | None = None  # the class of each row of `features`, when labelled


def _host(array: jax.Array | np.ndarray) -> np.ndarray:
    """The whole (global) array on this host, however it is sharded over processes."""
    return multihost_utils.process_allgather(array, tiled=True)


def real_images(
    batches: Iterable[dict[str, Any]], labels: list[np.ndarray] | None = None
) -> Iterator[np.ndarray]:
    """uint8 images of batches in [-1, 1], without the padding rows (mask 0); their labels, where
    the batches have them, are appended to `labels` on the way."""
    for batch in batches:
        real = _host(batch["mask"]) > 0
        if labels is not None and "label" in batch:
            labels.append(_host(batch["label"])[real])
        yield to_uint8(_host(batch["image"])[real])


def _sample_batch(generate: Generate, seed: int, batch_size: int, state: Any, index: int, labels):
    key = jax.random.fold_in(seed_key(seed, EVAL_STREAM), index)
    if labels is None:
        return generate(state, key, batch_size)
    return generate(state, key, batch_size, labels)


# Static generate/seed/batch size: every evaluation of a run reuses one compilation.
_sample_batch_jit = jax.jit(_sample_batch, static_argnums=(0, 1, 2))


class Evaluator:
    """One evaluation protocol: feature network, sample count, generation batch size and seed.

    Settings are checked at construction (Inception weights are loaded then), so a mistake
    stops a run before it trains; the domain classifier is trained or loaded on first use.
    """

    def __init__(
        self,
        *,
        feature_net: str,
        num_samples: int,
        inception_weights: str,
        cache_dir: str,
        dataset: str,
        image_size: int,
        data_dir: str,
        batch_size: int,
        seed: int,
    ):
        if feature_net not in FEATURE_NETS:
            raise UserError(
                f"feature net {feature_net!r} (config.eval.feature_net or --feature_net) is not "
                f"one of {FEATURE_NETS}"
            )
        if num_samples < MIN_SAMPLES:
            raise UserError(
                f"eval num_samples={num_samples} (config.eval.num_samples or --num_samples) "
                f"must be at least {MIN_SAMPLES}"
            )
        if batch_size <= 0:
            raise UserError(f"the generation batch size {batch_size} must be positive")
        self.dataset, self.image_size, self.data_dir = dataset, image_size, data_dir
        self.cache_dir = os.path.expanduser(cache_dir)
        self.num_samples, self.batch_size, self.seed = num_samples, batch_size, seed
        self._test_split = None  # images and labels, for the Classification Accuracy Score
        self._classifier = None
        if feature_net == "inception":
            self._net = inception_net(inception_weights, image_size)
        else:
            domain.num_classes(dataset)  # a UserError now for a dataset without labels
            self._net = None
        self._held_out = None

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict, **overrides: Any) -> "Evaluator":
        """The protocol `config.eval` describes; keyword arguments replace its settings."""
        settings = {
            "feature_net": config.eval.feature_net,
            "num_samples": config.eval.num_samples,
            "inception_weights": config.eval.inception_weights,
            "cache_dir": config.eval.cache_dir,
            "dataset": config.dataset,
            "image_size": config.image_size,
            "data_dir": data.resolve_data_dir(config.data_dir),
            "batch_size": config.batch_size,
            "seed": config.seed,
        }
        return cls(**{**settings, **overrides})

    @classmethod
    def during_training(cls, config: ml_collections.ConfigDict) -> "Evaluator | None":
        """The evaluator a task runs every `config.eval_every_steps`, or None when training
        evaluates no samples (`eval_every_steps` or `eval.num_samples` 0)."""
        if config.eval_every_steps and config.eval.num_samples:
            return cls.from_config(config)
        return None

    @property
    def classifier(self) -> domain.TrainedClassifier:
        """The domain classifier, trained (seconds) or read from the cache on first use only."""
        if self._classifier is None:
            self._classifier = domain.load_or_train(
                self.dataset, self.image_size, self.data_dir, self.cache_dir
            )
        return self._classifier

    @property
    def net(self) -> FeatureNet:
        if self._net is None:
            self._net = domain_net(self.classifier, self.dataset, self.image_size)
        return self._net

    def _reference_key(self, split: str, num_real: int) -> dict[str, Any]:
        """Everything that determines the real statistics: the cache key of a reference."""
        return {
            "dataset": data.fingerprint(self.dataset),
            "split": split,
            "image_size": self.image_size,
            "num_real": num_real,
            "resize": self.net.resize,
            "feature_net": self.net.name,
            "feature_net_sha256": self.net.sha256,
            "cnngen_jax_version": cnngen_jax.__version__,
        }

    def _extract(self, images: Iterable[np.ndarray], keep: tuple[str, ...]):
        net = self.net
        return extract_features(
            net.apply_fn, net.variables, images, moments_of=(net.features,), keep=keep
        )

    def reference_from_batches(self, batches: Iterable[dict[str, Any]], split: str) -> Reference:
        """Statistics, features and labels of the real images of batches in [-1, 1]."""
        labels: list[np.ndarray] = []
        summary = self._extract(real_images(batches, labels), keep=(self.net.features,))
        key = self._reference_key(split, summary.count)
        features = summary.kept[self.net.features]
        stats = summary.stats[self.net.features]
        return Reference(stats, features, key, np.concatenate(labels) if labels else None)

    def held_out_reference(self, batches: Callable[[], Iterator[dict[str, Any]]]) -> Reference:
        """The reference of the trainer's held-out batches (the test split), computed on the
        first call only: the trainer passes the same split every time."""
        if self._held_out is None:
            split = data.get_spec(self.dataset).test_split
            self._held_out = self.reference_from_batches(batches(), split)
        return self._held_out

    def evaluate_held_out(
        self,
        batches: Callable[[], Iterator[dict[str, Any]]],
        generate: Generate,
        state: Any,
        num_classes: int = 0,
    ) -> dict[str, float]:
        """`evaluate` against the trainer's held-out batches; the protocol is printed once."""
        first = self._held_out is None
        reference = self.held_out_reference(batches)
        classes = self.classes(num_classes)
        if first and jax.process_index() == 0:
            print(f"evaluation protocol: {json.dumps(self.protocol(reference, classes))}")
        return self.evaluate(reference, generate, state, classes)

    def cached_reference(self, split: str) -> Reference:
        """The reference of a whole split, read from the cache or computed once and cached."""
        spec = data.get_spec(self.dataset)
        data.ensure_prepared(self.dataset, self.data_dir)
        try:
            source = data.open_source(self.dataset, split, self.data_dir)
        except ValueError as error:  # TFDS: unknown split
            raise UserError(f"split {split!r} of {self.dataset!r} (--split): {error}") from None
        key = self._reference_key(split, len(source))
        path = _reference_path(self.cache_dir, key)
        if os.path.exists(path):
            return load_reference(path, key)
        batches = pipeline.eval_batches(
            source,
            spec,
            image_size=self.image_size,
            global_batch_size=self.batch_size,
            rows=slice(None),
        )
        reference = self.reference_from_batches(batches, split)
        save_reference(path, reference)
        return reference

    def generated(
        self, generate: Generate, state: Any, classes: np.ndarray | None = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        """`num_samples` uint8 images in batches of `batch_size`, with their labels: batch i is
        drawn from key fold_in(seed's eval stream, i), and with `classes` its labels cycle
        through them (every class equally often, up to one image). Every batch is generated
        whole (an unconditional GAN's train-mode BatchNorm sees `batch_size` images) and the
        last one is cut."""
        for start in range(0, self.num_samples, self.batch_size):
            labels = None
            if classes is not None:
                labels = classes[(start + np.arange(self.batch_size)) % len(classes)]
            index = start // self.batch_size
            images = _sample_batch_jit(generate, self.seed, self.batch_size, state, index, labels)
            keep = self.num_samples - start
            yield to_uint8(_host(images)[:keep]), None if labels is None else labels[:keep]

    def classes(self, num_classes: int, requested: Any = None) -> np.ndarray | None:
        """The classes a conditional model is evaluated on (`requested`, default all of its
        `num_classes`); None for an unconditional model."""
        if not num_classes:
            if requested is not None:
                raise UserError("classes (--labels) were given for an unconditional model")
            return None
        classes = np.arange(num_classes)
        if requested is not None:
            classes = np.unique(np.asarray(requested, np.int64))
            if not classes.size:
                raise UserError("--labels names no class; give class numbers, e.g. --labels=3,5")
            check_labels(classes, num_classes, setting="--labels")
        if self.num_samples < 2 * len(classes):  # a covariance per class needs two images
            raise UserError(
                f"num_samples={self.num_samples} (--num_samples or config.eval.num_samples) "
                f"gives fewer than 2 images to each of {len(classes)} classes; set it to at "
                f"least {2 * len(classes)}"
            )
        return classes

    def evaluate(
        self,
        reference: Reference,
        generate: Generate,
        state: Any,
        classes: np.ndarray | None = None,
    ) -> dict[str, float]:
        """The metrics of `num_samples` images of `generate` against `reference`; for a
        conditional model, of images of `classes` (from `classes()`, equally many each) with
        the conditional metrics (`conditional_scores`) besides."""
        if classes is None:  # streamed: only the features are kept
            images = (images for images, _ in self.generated(generate, state))
            return self.score(reference, images)
        batches = list(self.generated(generate, state, classes))
        images = [images for images, _ in batches]
        fake = self._extract(images, keep=self._kept)
        labels = np.concatenate([labels for _, labels in batches])
        features, images = fake.kept[self.net.features], np.concatenate(images)
        return {
            **self._scores(reference, fake),
            **self.conditional_scores(reference, images, features, labels, classes),
        }

    def conditional_scores(
        self,
        reference: Reference,
        images: np.ndarray,
        features: np.ndarray,
        labels: np.ndarray,
        classes: np.ndarray,
    ) -> dict[str, float]:
        """Per-class accuracy of the domain classifier on generated uint8 `images` of `labels`,
        intra-class FID on this protocol's features, and the Classification Accuracy Score
        beside the same classifier trained on real data (`cas_real`), both on the real test
        images of `classes`."""
        if reference.labels is None:
            raise UserError(f"the reference split of {self.dataset!r} has no labels")
        classifier = self.classifier
        predicted = domain.predict(classifier.model, classifier.variables, images)  # all classes
        accuracy, per_class = conditional.per_class_accuracy(predicted, labels, classes)
        intra_fid, fid_per_class = conditional.intra_class_fid(
            reference.features, reference.labels, features, labels, classes
        )
        # Both classifiers choose among `classes` only, so that with --labels the synthetic one
        # (which never saw another class) and the real one answer the same question.
        test_images, test_labels = self._real_test_images(classes)
        num_classes = domain.num_classes(self.dataset)
        synthetic = domain.fit(images, labels, num_classes, domain.DEFAULT_SETTINGS)
        model = classifier.model
        cas = np.mean(domain.predict(model, synthetic, test_images, classes) == test_labels)
        real_predicted = domain.predict(model, classifier.variables, test_images, classes)
        real = np.mean(real_predicted == test_labels)
        net = self.net.name
        return {
            "class_accuracy": accuracy,
            **{f"class_accuracy_{c}": value for c, value in per_class.items()},
            f"{net}_intra_fid": intra_fid,
            **{f"{net}_fid_class_{c}": value for c, value in fid_per_class.items()},
            "cas": float(cas),
            "cas_real": float(real),
        }

    def _real_test_images(self, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The test split's uint8 images and labels of `classes` (the split read once)."""
        if self._test_split is None:
            split = data.get_spec(self.dataset).test_split
            self._test_split = domain.read_split(
                self.dataset, split, self.image_size, self.data_dir
            )
        images, labels = self._test_split
        rows = np.isin(labels, classes)
        return images[rows], labels[rows]

    @property
    def _kept(self) -> tuple[str, ...]:
        net = self.net
        return (net.features,) if net.logits is None else (net.features, net.logits)

    def score(self, reference: Reference, images: Iterable[np.ndarray]) -> dict[str, float]:
        """Metrics of generated uint8 images, named `{feature net}_{metric}`."""
        return self._scores(reference, self._extract(images, keep=self._kept))

    def _scores(self, reference: Reference, fake: Any) -> dict[str, float]:
        net = self.net
        real, generated = reference.stats, fake.stats[net.features]
        features = fake.kept[net.features]
        kid, kid_std = kernel_inception_distance(
            reference.features,
            features,
            subsets=KID_SUBSETS,
            subset_size=_kid_subset_size(len(reference.features), len(features)),
        )
        precision, recall = precision_recall(reference.features, features, k=PRECISION_RECALL_K)
        metrics = {
            "fid": frechet_distance(real.mean, real.cov, generated.mean, generated.cov),
            "kid": kid,
            "kid_std": kid_std,
            "precision": precision,
            "recall": recall,
        }
        if net.logits is not None:
            metrics["is"], metrics["is_std"] = inception_score(fake.kept[net.logits])
        return {f"{net.name}_{name}": float(value) for name, value in metrics.items()}

    def protocol(self, reference: Reference, classes: np.ndarray | None = None) -> dict[str, Any]:
        """The stamp of a result: how the real and generated features were obtained, and for
        conditional models (`classes`) how the conditional metrics were."""
        stamp = {
            **reference.key,
            "num_fake": self.num_samples,
            "generation_batch_size": self.batch_size,
            "seed": self.seed,
            "kid_subsets": KID_SUBSETS,
            "kid_subset_size": _kid_subset_size(reference.key["num_real"], self.num_samples),
            "precision_recall_k": PRECISION_RECALL_K,
            **self.net.stamp,
        }
        if classes is not None:
            real_counts = {int(c): int(np.sum(reference.labels == c)) for c in classes}
            stamp["conditional"] = {
                "classes": [int(c) for c in classes],
                "fake_labels": "cycling through the classes, num_fake in all",
                "real_per_class": real_counts,
                "class_accuracy": "domain classifier (trained on the train split) on the fakes",
                "intra_fid": f"{self.net.name} features, per class against that class's reals",
                "cas": (
                    "the domain classifier's architecture and settings "
                    f"{dataclasses.asdict(domain.DEFAULT_SETTINGS)} trained on the num_fake "
                    "fakes only, tested on the test split's images of the classes, choosing "
                    "among the classes; cas_real: the same classifier trained on the train split"
                ),
            }
        return stamp


def _kid_subset_size(num_real: int, num_fake: int) -> int:
    return min(KID_MAX_SUBSET_SIZE, num_real, num_fake)


def _reference_path(cache_dir: str, key: dict[str, Any]) -> str:
    digest = npz_files.json_digest(key)
    dataset = data.file_name(key["dataset"])
    name = f"{dataset}-{key['split']}-{key['image_size']}px-{key['feature_net']}-{digest}"
    return os.path.join(cache_dir, "reference", f"{name}.npz")


def _arrays(reference: Reference) -> dict[str, np.ndarray]:
    arrays = {
        "mean": reference.stats.mean,
        "cov": reference.stats.cov,
        "features": reference.features,
    }
    return arrays if reference.labels is None else {**arrays, "labels": reference.labels}


def save_reference(path: str, reference: Reference) -> None:
    """A pickle-free .npz: the arrays, their hash and the protocol key (as JSON text)."""
    arrays = _arrays(reference)
    npz_files.write_atomically(
        path,
        {
            **arrays,
            "sha256": np.asarray(content_sha256(arrays)),
            "key": np.asarray(json.dumps(reference.key, sort_keys=True)),
        },
    )


def load_reference(path: str, key: dict[str, Any]) -> Reference:
    """Reads a cached reference (without pickle), checking its protocol key and its hash."""
    entries = npz_files.read(path)
    names = ("mean", "cov", "features", "labels")
    arrays = {name: entries[name] for name in names if name in entries}
    stored_key, stored_sha = json.loads(str(entries["key"])), str(entries["sha256"])
    if stored_key != key or content_sha256(arrays) != stored_sha:
        raise UserError(
            f"the cached reference statistics {path} do not match their protocol or hash (an "
            "edited or partial file); delete it and they are computed again"
        )
    stats = GaussianStats(arrays["mean"], arrays["cov"], key["num_real"])
    return Reference(stats, arrays["features"], key, arrays.get("labels"))
