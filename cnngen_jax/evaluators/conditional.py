"""The metrics of a class-conditional model's samples: per-class accuracy of the domain
classifier, intra-class FID on the protocol's features, and the Classification Accuracy Score
(Ravuri & Vinyals 2019) beside the same classifier trained on real data."""

from typing import TYPE_CHECKING

import numpy as np

from cnngen_jax import data
from cnngen_jax.errors import UserError
from cnngen_jax.evaluators.references import Reference
from cnngen_jax.metrics import conditional, domain

if TYPE_CHECKING:
    from cnngen_jax.evaluators.sample_quality import SampleMetrics


def conditional_scores(
    metrics: "SampleMetrics",
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
        raise UserError(f"the reference split of {metrics.dataset!r} has no labels")
    classifier = metrics.classifier
    predicted = domain.predict(classifier.model, classifier.variables, images)  # all classes
    accuracy, per_class = conditional.per_class_accuracy(predicted, labels, classes)
    intra_fid, fid_per_class = conditional.intra_class_fid(
        reference.features, reference.labels, features, labels, classes
    )
    # Both classifiers choose among `classes` only, so that with --labels the synthetic one
    # (which never saw another class) and the real one answer the same question.
    test_images, test_labels = _real_test_images(metrics, classes)
    num_classes = domain.num_classes(metrics.dataset)
    synthetic = domain.fit(images, labels, num_classes, domain.DEFAULT_SETTINGS)
    model = classifier.model
    cas = np.mean(domain.predict(model, synthetic, test_images, classes) == test_labels)
    real_predicted = domain.predict(model, classifier.variables, test_images, classes)
    real = np.mean(real_predicted == test_labels)
    net = metrics.net.name
    return {
        "class_accuracy": accuracy,
        **{f"class_accuracy_{c}": value for c, value in per_class.items()},
        f"{net}_intra_fid": intra_fid,
        **{f"{net}_fid_class_{c}": value for c, value in fid_per_class.items()},
        "cas": float(cas),
        "cas_real": float(real),
    }


def _real_test_images(
    metrics: "SampleMetrics", classes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The test split's uint8 images and labels of `classes` (the split read once)."""
    if metrics.test_split is None:
        split = data.get_spec(metrics.dataset).test_split
        metrics.test_split = domain.read_split(
            metrics.dataset, split, metrics.image_size, metrics.data_dir
        )
    images, labels = metrics.test_split
    rows = np.isin(labels, classes)
    return images[rows], labels[rows]
