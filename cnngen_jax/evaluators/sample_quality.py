"""Sample quality: generated images against a held-out split on one feature network (FID, KID,
precision/recall, and the Inception Score with Inception), and for class-conditional models the
conditional metrics (`cnngen_jax.evaluators.conditional`); each result stamped with the protocol
behind it. Such numbers are comparable only between equal protocols: same data, split, image
size, feature network weights, counts.

Real and generated images are both quantised to uint8 at the run's image size before any
feature is computed, as images saved to disk would be.
"""

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import jax
import ml_collections
import numpy as np

import cnngen_jax
from cnngen_jax import capabilities, data, files, parallel
from cnngen_jax.errors import UserError
from cnngen_jax.evaluators import Context, register_evaluator
from cnngen_jax.evaluators.conditional import conditional_scores
from cnngen_jax.evaluators.feature_nets import FEATURE_NETS, FeatureNet, domain_net, inception_net
from cnngen_jax.evaluators.held_out import HeldOut, held_out
from cnngen_jax.evaluators.references import (
    Reference,
    load_reference,
    real_images,
    reference_path,
    save_reference,
)
from cnngen_jax.metrics import (
    domain,
    extract_features,
    frechet_distance,
    inception_score,
    kernel_inception_distance,
    precision_recall,
)
from cnngen_jax.pixels import to_uint8
from cnngen_jax.random_streams import EVAL_STREAM, seed_key
from cnngen_jax.tasks import check_labels

# Metric settings, part of every protocol stamp: torch-fidelity's KID subsets (the subset size
# shrinks to the smaller set when there are fewer than 1000 images) and k of precision/recall.
KID_SUBSETS = 100
KID_MAX_SUBSET_SIZE = 1000
PRECISION_RECALL_K = 3
# The Inception Score is averaged over 10 splits, so evaluations need at least 10 images.
MIN_SAMPLES = 10

Generate = Callable[[Any, jax.Array, int], jax.Array]


def _sample_batch(generate: Generate, seed: int, batch_size: int, state: Any, index: int, labels):
    key = jax.random.fold_in(seed_key(seed, EVAL_STREAM), index)
    if labels is None:
        return generate(state, key, batch_size)
    return generate(state, key, batch_size, labels)


# Static generate/seed/batch size: every evaluation of a run reuses one compilation.
_sample_batch_jit = jax.jit(_sample_batch, static_argnums=(0, 1, 2))


class SampleMetrics:
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
        setting: Callable[[str], str] = lambda key: f"--{key}",
    ):
        if feature_net not in FEATURE_NETS:
            raise UserError(
                f"feature net {feature_net!r} ({setting('feature_net')}) is not one of "
                f"{FEATURE_NETS}"
            )
        if num_samples < MIN_SAMPLES:
            raise UserError(
                f"num_samples={num_samples} ({setting('num_samples')}) must be at least "
                f"{MIN_SAMPLES}"
            )
        if batch_size <= 0:
            raise UserError(
                f"the generation batch size {batch_size} ({setting('batch_size')}) must be positive"
            )
        self.setting = setting
        self.dataset, self.image_size, self.data_dir = dataset, image_size, data_dir
        self.cache_dir = str(files.path(cache_dir, "cache_dir"))
        self.num_samples, self.batch_size, self.seed = num_samples, batch_size, seed
        self.test_split = None  # images and labels, for the Classification Accuracy Score
        self._classifier = None
        if feature_net == "inception":
            self._net = inception_net(inception_weights, image_size)
        else:
            domain.num_classes(dataset)  # a UserError now for a dataset without labels
            self._net = None
        self._references: dict[str, Reference] = {}

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

    def reference(self, held_out: HeldOut) -> Reference:
        """The statistics of the real images of `held_out`: from memory, the cache, or computed
        once and cached (by process 0) under the protocol's key."""
        key = self._reference_key(held_out.split, held_out.num_examples)
        path = reference_path(self.cache_dir, key)
        if path not in self._references:
            if files.path(path).exists():
                self._references[path] = load_reference(path, key)
            else:
                reference = self.reference_from_batches(held_out(), held_out.split)
                if jax.process_index() == 0:
                    save_reference(path, reference)
                self._references[path] = reference
        return self._references[path]

    def cached_reference(self, split: str) -> Reference:
        """The reference of a whole split of the dataset (`reference`), read on this host."""
        data.ensure_prepared(self.dataset, self.data_dir)
        split_batches = held_out(
            self.dataset, split, self.data_dir, self.image_size, self.batch_size
        )
        return self.reference(split_batches)

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
            kept_labels = None if labels is None else labels[:keep]
            yield to_uint8(parallel.gather(images)[:keep]), kept_labels

    def classes(self, num_classes: int, requested: Any = None) -> np.ndarray | None:
        """The classes a conditional model is evaluated on (`requested`, default all of its
        `num_classes`); None for an unconditional model."""
        if not num_classes:
            if requested is not None:
                raise UserError(
                    f"classes ({self.setting('labels')}) were given for an unconditional model"
                )
            return None
        classes = np.arange(num_classes)
        if requested is not None:
            classes = np.unique(np.asarray(requested, np.int64))
            if not classes.size:
                raise UserError(
                    f"{self.setting('labels')} names no class; give class numbers, e.g. 3,5"
                )
            check_labels(classes, num_classes, setting=self.setting("labels"))
        if self.num_samples < 2 * len(classes):  # a covariance per class needs two images
            raise UserError(
                f"num_samples={self.num_samples} ({self.setting('num_samples')}) "
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
            **conditional_scores(self, reference, images, features, labels, classes),
        }

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


@register_evaluator("sample_quality")
class SampleQuality:
    """`config.evals.NAME = common.sample_quality(...)`: `SampleMetrics` of a generative model
    against the held-out split."""

    capability = capabilities.Sampler

    def __init__(self, settings: ml_collections.ConfigDict, context: Context):
        config = context.config
        self.sampler = context.task
        self.metrics = SampleMetrics(
            feature_net=settings.feature_net,
            num_samples=settings.num_samples,
            inception_weights=settings.inception_weights,
            cache_dir=settings.cache_dir,
            dataset=config.dataset,
            image_size=config.image_size,
            data_dir=context.data_dir,
            batch_size=settings.batch_size or config.batch_size,
            seed=config.seed,
            setting=context.setting,
        )
        requested = tuple(settings.labels) or None
        self.classes = self.metrics.classes(self.sampler.num_classes, requested)
        self._protocol: dict[str, Any] | None = None

    def __call__(self, state: Any, held_out: HeldOut, key: jax.Array) -> dict[str, float]:
        """The metrics of `num_samples` images (their latents fixed by the run's seed, not by
        `key`: every evaluation of a run draws the same ones)."""
        reference = self.metrics.reference(held_out)
        self._protocol = self.metrics.protocol(reference, self.classes)
        return self.metrics.evaluate(reference, self.sampler.generate, state, self.classes)

    def protocol(self) -> dict[str, Any]:
        return self._protocol or {}
