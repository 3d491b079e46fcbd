"""The feature networks sample quality is measured on, and what identifies each in a protocol:
the FID Inception (torch-fidelity's graph and resize) or the project's domain classifier."""

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from cnngen_jax.metrics import FIDInceptionV3, domain, load_inception_weights

FEATURE_NETS = ("domain", "inception")


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
