"""Held-out content and style losses of a style-transfer model: the training losses' values on
`image_size` centre crops of held-out images, comparable to those logged during training."""

from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from cnngen_jax import capabilities, parallel
from cnngen_jax.errors import UserError
from cnngen_jax.evaluators import Context, register_evaluator
from cnngen_jax.evaluators.held_out import HeldOut
from cnngen_jax.tasks import centre_crop

Batch = dict[str, jax.Array]


@register_evaluator("style_losses")
class StyleLosses:
    """`config.evals.NAME = common.style_losses(every_steps, num_images)`."""

    capability = capabilities.StyleTransfer

    def __init__(self, settings: ml_collections.ConfigDict, context: Context):
        self.model = context.task
        self.num_images = context.num_images(settings)
        self._eval_sums = jax.jit(self._batch_sums)

    def _batch_sums(self, state: Any, batch: Batch) -> dict[str, jax.Array]:
        """Each image's losses, summed with the batch's weights (0 for padding)."""
        stylized = self.model.transform(state, batch["image"])
        content_loss, style_loss = self.model.per_image_losses(state, stylized, batch["image"])
        weights = batch["mask"]
        return {
            "test_content_loss": jnp.sum(content_loss * weights),
            "test_style_loss": jnp.sum(style_loss * weights),
            "count": jnp.sum(weights),
        }

    def __call__(self, state: Any, held_out: HeldOut, key: jax.Array) -> dict[str, np.ndarray]:
        """Held-out content and style losses (and their sum), on image_size centre crops of the
        first `num_images` held-out images (0: all): comparable to the training losses."""
        totals: dict[str, float] = {"count": 0.0}
        for batch in held_out():
            mask = batch["mask"]
            if self.num_images:  # padding rows and images past num_images weigh 0
                remaining = self.num_images - totals["count"]
                if remaining <= 0:
                    break
                mask = mask * (jnp.arange(mask.shape[0]) < remaining)
            # Cropped before the jitted sums: one compilation for photographs of every size.
            crops = {
                **batch,
                "mask": mask,
                "image": centre_crop(batch["image"], self.model.image_size, self.model.image_size),
            }
            for name, value in parallel.to_host(self._eval_sums(state, crops)).items():
                totals[name] = totals.get(name, 0.0) + float(value)
        count = totals.pop("count")
        if not count:
            raise UserError("the held-out split has no images to evaluate the style transfer on")
        means = {name: total / count for name, total in totals.items()}
        means["test_loss"] = means["test_content_loss"] + means["test_style_loss"]
        return {name: np.asarray(value) for name, value in means.items()}

    def protocol(self) -> dict[str, Any]:
        return {
            "images": f"{self.model.image_size}px centre crops of the held-out images",
            "num_images": self.num_images,
        }
