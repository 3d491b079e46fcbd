"""Degradations: pure, seeded `(clean, key) -> Degraded` operators, applied inside the jitted
train step so the input pipeline stays generic (it only crops), and again, with a fixed key, to
held-out images and a user's own.

`config.degradation` names one: "bicubic" (super-resolution: MATLAB's bicubic downsampling by
`config.scale`, its output rounded to 8-bit pixels as the LR files of the benchmarks are) or
"inpainting" (a hole of `config.masks` kind is blanked out).
"""

from collections.abc import Callable
from typing import NamedTuple

import jax
import ml_collections

from cnngen_jax.errors import UserError
from cnngen_jax.pixels import quantize
from cnngen_jax.registry import Registry
from cnngen_jax.restoration.masks import MASK_KINDS, random_masks
from cnngen_jax.restoration.resize import imresize

SCALES = (2, 3, 4)


class Degraded(NamedTuple):
    """A degraded batch: what the model sees, what it should produce, and (inpainting) where
    pixels are missing (1) or known (0)."""

    inputs: jax.Array
    target: jax.Array
    mask: jax.Array | None = None


Degradation = Callable[[jax.Array, jax.Array], Degraded]


def bicubic_downsampling(scale: int) -> Degradation:
    """HR -> LR by MATLAB's antialiased bicubic `imresize(HR, 1/scale)`, quantised to 8 bits."""

    def degrade(clean: jax.Array, key: jax.Array) -> Degraded:
        del key  # deterministic
        return Degraded(quantize(imresize(clean, 1.0 / scale)), clean)

    return degrade


def blank_holes(images: jax.Array, mask: jax.Array) -> jax.Array:
    """Missing pixels set to 0, the middle grey of [-1, 1]."""
    return images * (1.0 - mask)


def masked_holes(kind: str) -> Degradation:
    """A new random mask of `kind` per image and call; the holes are blanked out."""

    def degrade(clean: jax.Array, key: jax.Array) -> Degraded:
        num, height, width, _ = clean.shape
        mask = random_masks(key, num, height, width, kind)
        return Degraded(blank_holes(clean, mask), clean, mask)

    return degrade


def check_scale(scale: int) -> None:
    if scale not in SCALES:
        raise UserError(f"scale={scale} is not supported (config.scale); choose one of {SCALES}")


DEGRADATIONS = Registry("degradation", "config.degradation")


@DEGRADATIONS.register("bicubic")
def _bicubic(config: ml_collections.ConfigDict) -> Degradation:
    check_scale(config.scale)
    if config.image_size % config.scale:
        raise UserError(
            f"image_size={config.image_size} (the HR crop) is not a multiple of "
            f"scale={config.scale}; set --config.image_size to a multiple of it"
        )
    return bicubic_downsampling(config.scale)


@DEGRADATIONS.register("inpainting")
def _inpainting(config: ml_collections.ConfigDict) -> Degradation:
    if config.masks not in MASK_KINDS:
        raise UserError(
            f"unknown mask kind {config.masks!r} (config.masks); choose one of: "
            f"{', '.join(MASK_KINDS)}"
        )
    return masked_holes(config.masks)


def from_config(config: ml_collections.ConfigDict) -> Degradation:
    """The degradation `config.degradation` with its settings, checked."""
    return DEGRADATIONS.get(config.degradation)(config)
