"""Perceptual, content and style losses on the features of a frozen VGG (`models.vgg`).

Two recipes use these functions:

* SRGAN / ESRGAN's perceptual loss (the restoration task), as BasicSR's `PerceptualLoss`
  (basicsr/losses/basic_loss.py): a weighted sum over VGG layers of the L1 or mean-squared
  distance between the features of the restored image and of the ground truth
  (`feature_loss`), optionally plus the same distance between their Gram matrices
  (`style_loss`).
* fast style transfer (Johnson et al. 2016, "Perceptual Losses for Real-Time Style Transfer and
  Super-Resolution"; pytorch/examples fast_neural_style; the style_transfer task,
  `cnngen_jax.tasks.style`): content = mean squared distance of the relu2_2 features
  (`content_loss`); style = sum over relu1_2, relu2_2, relu3_3 and relu4_3 of the mean squared
  distance between Gram matrices (`style_loss`), the style image's computed once
  (`gram_matrices`).

Every function takes the activations dict that `VGG.__call__` returns, so one VGG pass per image
batch, asked for the union of the layers all losses need, serves them all. Targets (ground-truth
features, style Gram matrices) are constants: their gradient is stopped, as BasicSR detaches the
ground truth before its VGG pass.
"""

import types
from collections.abc import Iterable, Mapping

import jax
import jax.numpy as jnp

from cnngen_jax.errors import UserError

Features = Mapping[str, jax.Array]
CRITERIA = ("l1", "l2")
JOHNSON_CONTENT_LAYER = "relu2_2"
JOHNSON_STYLE_WEIGHTS = types.MappingProxyType(
    dict.fromkeys(("relu1_2", "relu2_2", "relu3_3", "relu4_3"), 1.0)
)


def check_criterion(criterion: str) -> None:
    if criterion not in CRITERIA:
        raise UserError(f"perceptual loss criterion must be one of {CRITERIA}, got {criterion!r}")


def _distance(a: jax.Array, b: jax.Array, criterion: str) -> jax.Array:
    """Mean absolute ('l1') or mean squared ('l2') difference, `b` broadcast against `a`."""
    difference = a.astype(jnp.float32) - jax.lax.stop_gradient(b).astype(jnp.float32)
    if criterion == "l1":
        return jnp.mean(jnp.abs(difference))
    return jnp.mean(jnp.square(difference))


def gram_matrix(features: jax.Array) -> jax.Array:
    """(N, H, W, C) activations -> (N, C, C) channel correlations F^T F / (C H W), normalised as
    in pytorch/examples' `utils.gram_matrix` and BasicSR's `_gram_mat`."""
    n, h, w, c = features.shape
    flat = features.reshape(n, h * w, c).astype(jnp.float32)
    return jnp.einsum("npc,npd->ncd", flat, flat) / (c * h * w)


def gram_matrices(features: Features, layers: Iterable[str]) -> dict[str, jax.Array]:
    """The Gram matrix of each of `layers`: the targets of `style_loss` (compute a fixed style
    image's once, outside the training step)."""
    return {layer: gram_matrix(features[layer]) for layer in layers}


def feature_loss(
    outputs: Features,
    targets: Features,
    layer_weights: Mapping[str, float],
    criterion: str = "l1",
) -> jax.Array:
    """sum over layers of weight * distance(output features, target features)."""
    check_criterion(criterion)
    total = jnp.zeros((), jnp.float32)
    for layer, weight in layer_weights.items():
        total += weight * _distance(outputs[layer], targets[layer], criterion)
    return total


def style_loss(
    outputs: Features,
    target_grams: Mapping[str, jax.Array],
    layer_weights: Mapping[str, float] = JOHNSON_STYLE_WEIGHTS,
    criterion: str = "l2",
) -> jax.Array:
    """sum over layers of weight * distance(Gram matrices of the outputs, target Gram matrices);
    a target of batch size 1 (one style image) applies to every output."""
    check_criterion(criterion)
    total = jnp.zeros((), jnp.float32)
    for layer, weight in layer_weights.items():
        total += weight * _distance(gram_matrix(outputs[layer]), target_grams[layer], criterion)
    return total


def content_loss(
    outputs: Features, targets: Features, layer: str = JOHNSON_CONTENT_LAYER
) -> jax.Array:
    """Johnson et al.'s feature reconstruction loss: mean squared distance at one layer."""
    return feature_loss(outputs, targets, {layer: 1.0}, "l2")
