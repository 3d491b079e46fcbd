"""Restoration quality by the published protocols, always beside a classical baseline on the
same inputs: super-resolution by PSNR / SSIM on the Y channel (BT.601) and on RGB, of 8-bit
images with `scale` pixels cropped at each border (BasicSR's protocol), against bicubic
upsampling; inpainting by L1 in the hole and over the image (on [0, 1]) and PSNR / SSIM of the
completed image, on `image_size` tiles of the held-out images with fixed masks, against
scikit-image's biharmonic inpainting. PSNR is capped at `image_quality.MAX_PSNR` dB (a uniform
region can be restored exactly, whose PSNR is infinite, as BasicSR and scikit-image report it;
one infinite image would make the mean infinite).
"""

from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from cnngen_jax import capabilities, parallel
from cnngen_jax.errors import UserError
from cnngen_jax.evaluators import Context, register_evaluator
from cnngen_jax.evaluators.held_out import HeldOut
from cnngen_jax.metrics import image_quality
from cnngen_jax.pixels import to_8bit
from cnngen_jax.restoration import degradations
from cnngen_jax.restoration.resize import imresize

Batch = dict[str, jax.Array]


@register_evaluator("restoration")
class RestorationQuality:
    """`config.evals.NAME = common.restoration_quality(every_steps, num_images)`."""

    capability = capabilities.Restorer

    def __init__(self, settings: ml_collections.ConfigDict, context: Context):
        self.restorer = context.task
        self.num_images = context.num_images(settings)
        self.inpainting = self.restorer.needs_mask
        self.channels, self.scale = self.restorer.channels, self.restorer.scale
        self.image_size = self.restorer.image_size
        self._scores = jax.jit(self._batch_scores)
        self._baselines: dict[tuple, dict[str, np.ndarray]] = {}  # biharmonic, by batch and key

    def _batch_scores(
        self, state: Any, batch: Batch, key: jax.Array
    ) -> tuple[dict[str, jax.Array], degradations.Degraded, jax.Array]:
        """Per-image scores of the model and (super-resolution) of bicubic upsampling, the
        degraded images, and each one's weight (0 for padding).

        Super-resolution scores whole images, cut to a multiple of the scale. Inpainting scores
        `image_size` tiles of them (a grid, the remainder dropped): masks are drawn at the size
        the model trains on, as inpainting benchmarks fix one image size for their masks.
        """
        clean, weights = batch["image"], batch["mask"]
        size = self.image_size if self.inpainting else self.scale
        height, width = (side // size * size for side in clean.shape[1:3])
        if not (height and width):
            raise UserError(
                f"a held-out image is {clean.shape[1]}x{clean.shape[2]} pixels, smaller than "
                f"image_size={size}, which inpainting evaluates in tiles of; lower image_size"
            )
        clean = clean[:, :height, :width]
        if self.inpainting:
            rows, columns = height // size, width // size
            clean = clean.reshape(-1, rows, size, columns, size, self.channels)
            clean = clean.transpose(0, 1, 3, 2, 4, 5).reshape(-1, size, size, self.channels)
            weights = jnp.repeat(weights, rows * columns)
        degraded = self.restorer.degrade(clean, key)
        restored = self.restorer.transform(state, degraded.inputs, degraded.mask)
        scores = self._quality(restored, degraded)
        if not self.inpainting:
            bicubic = imresize(degraded.inputs, float(self.scale))
            scores.update({f"bicubic_{k}": v for k, v in self._quality(bicubic, degraded).items()})
        return scores, degraded, weights

    def _quality(self, restored: jax.Array, degraded: degradations.Degraded) -> dict:
        """The protocol's scores of each restored image against its target."""
        x, y = to_8bit(restored), to_8bit(degraded.target)
        if self.inpainting:  # the completed image, all channels
            protocols = {"": ("rgb", 0)}
        else:  # luma (a grey image is its own), and RGB; `scale` pixels cropped at each border
            protocols = {"_y": ("y" if self.channels == 3 else "rgb", self.scale)}
            if self.channels == 3:
                protocols["_rgb"] = ("rgb", self.scale)
        scores = {}
        for name, (channel, crop) in protocols.items():
            scores[f"psnr{name}"] = image_quality.capped_psnr(x, y, 255.0, channel, crop)
            scores[f"ssim{name}"] = image_quality.ssim(x, y, 255.0, channel, crop)
        if self.inpainting:
            error = jnp.abs(x - y) / 255.0
            hole = degraded.mask
            scores["l1"] = jnp.mean(error, axis=(1, 2, 3))
            scores["l1_hole"] = jnp.sum(error * hole, axis=(1, 2, 3)) / jnp.maximum(
                jnp.sum(hole, axis=(1, 2, 3)) * self.channels, 1.0
            )
        return scores

    def _biharmonic(self, degraded: degradations.Degraded, cache_key: tuple) -> dict:
        """scikit-image's biharmonic inpainting of the same inputs and masks, scored alike;
        computed on the host once per batch and evaluation key."""
        if cache_key not in self._baselines:
            from skimage.restoration import inpaint_biharmonic

            inputs, mask, target = (
                parallel.gather(x) for x in (degraded.inputs, degraded.mask, degraded.target)
            )
            filled = np.stack(
                [
                    inpaint_biharmonic(image, hole[..., 0].astype(bool), channel_axis=-1)
                    for image, hole in zip(inputs, mask, strict=True)
                ]
            )
            host = degradations.Degraded(
                jnp.asarray(inputs), jnp.asarray(target), jnp.asarray(mask)
            )
            scores = self._quality(jnp.asarray(filled, jnp.float32), host)
            self._baselines[cache_key] = {k: np.asarray(v) for k, v in scores.items()}
        return self._baselines[cache_key]

    def __call__(self, state: Any, held_out: HeldOut, key: jax.Array) -> dict[str, np.ndarray]:
        """Mean scores over the first `num_images` held-out images (0: all), the model's beside
        the baseline's; the inpainting masks of batch i are drawn from `key` and i, the same
        every evaluation."""
        sums: dict[str, float] = {}
        count = 0.0
        key_data = tuple(np.asarray(jax.random.key_data(key)).ravel().tolist())
        for i, batch in enumerate(held_out()):
            size = batch["image"].shape[0]
            if self.num_images:  # images past num_images weigh 0, as padding rows do
                if i * size >= self.num_images:
                    break
                within = (i * size + jnp.arange(size)) < self.num_images
                batch = {**batch, "mask": batch["mask"] * within}
            batch_key = jax.random.fold_in(key, i)
            scores, degraded, weights = self._scores(state, batch, batch_key)
            scores = {k: parallel.gather(v) for k, v in scores.items()}
            if self.inpainting:
                baseline = self._biharmonic(degraded, (i, key_data))
                scores.update({f"biharmonic_{k}": v for k, v in baseline.items()})
            weights = parallel.gather(weights)
            for name, values in scores.items():
                sums[name] = sums.get(name, 0.0) + float(np.sum(values * weights))
            count += float(np.sum(weights))
        means = {
            f"test_{k}" if not k.startswith(("bicubic", "biharmonic")) else k: v / count
            for k, v in sums.items()
        }
        return {name: np.asarray(value) for name, value in means.items()}

    def protocol(self) -> dict[str, Any]:
        if self.inpainting:
            return {
                "images": f"{self.image_size}px tiles of the held-out images, fixed masks",
                "l1": "mean |x - y| on [0, 1], over the image and (l1_hole) the holes",
                "psnr_ssim": "8-bit, all channels, of the completed image",
                "baseline": "skimage.restoration.inpaint_biharmonic of the same inputs",
                "num_images": self.num_images,
                "max_psnr": image_quality.MAX_PSNR,
            }
        return {
            "images": "whole held-out images, cut to a multiple of the scale",
            "psnr_ssim": f"8-bit, Y (BT.601) and RGB, {self.scale} px cropped at each border",
            "baseline": "bicubic upsampling (MATLAB imresize)",
            "num_images": self.num_images,
            "max_psnr": image_quality.MAX_PSNR,
        }
