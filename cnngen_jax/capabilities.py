"""What a trained model can be used for, declared as small protocols rather than found by asking
for a task's class: commands and evaluators check one capability (`require`) and work for every
family that has it.

    sampler = capabilities.require(run.task, capabilities.Sampler, "sample")

The trainer's own interface is `cnngen_jax.tasks.Task`; these are about using the result.
"""

from typing import Any, Protocol, runtime_checkable

import jax

from cnngen_jax.errors import UserError

PyTree = Any


@runtime_checkable
class Sampler(Protocol):
    """A generative model: images in [-1, 1] from latents (and, if conditional, classes)."""

    description: str  # what the run is, for messages: "a GAN", "a VAE", ...
    num_classes: int  # 0: unconditional; otherwise labels are 0..num_classes-1
    latent_dim: int
    image_shape: tuple[int, int, int]  # (height, width, channels)

    def decode(self, state: PyTree, latents: jax.Array, labels: jax.Array | None = None):
        """Images of `latents` (N, latent_dim) and `labels` (N,) (default for a conditional
        model: every class in turn). Row i depends on latent i and label i only, never on the
        other rows, so image i of an export or an edit is the same in any batch."""

    def generate(
        self, state: PyTree, key: jax.Array, num_images: int, labels: jax.Array | None = None
    ):
        """`num_images` images of latents drawn from the prior with `key`: `decode` of them."""


@runtime_checkable
class Encoder(Sampler, Protocol):
    """A generative model that also maps images to latents `decode` takes back (a VAE)."""

    def encode(self, state: PyTree, images: jax.Array, labels: jax.Array | None = None):
        """The latents (N, latent_dim) of `images` (N, H, W, C) in [-1, 1]."""


@runtime_checkable
class ImageToImage(Protocol):
    """A model from images to images: super-resolution, inpainting, style transfer."""

    description: str
    channels: int
    scale: int  # output side / input side
    needs_mask: bool  # inpainting: `transform` takes the mask of missing pixels
    minimum_input_side: int
    tileable: bool  # an output pixel depends on a bounded neighbourhood: tiles are exact

    def transform(self, state: PyTree, images: jax.Array, mask: jax.Array | None = None):
        """`images` (N, h, w, C) in [-1, 1], of any size of at least `minimum_input_side`,
        transformed: `scale` times larger, or (with `mask` (N, h, w, 1), 1 = missing) with the
        missing pixels filled in."""


@runtime_checkable
class Restorer(ImageToImage, Protocol):
    """An image-to-image model trained to undo a degradation it can apply itself."""

    image_size: int  # the side of the clean crops it trains on

    def degrade(self, clean: jax.Array, key: jax.Array):
        """`cnngen_jax.restoration.degradations.Degraded` inputs, targets (and masks) of clean
        images, drawn with `key`: what the model learns to undo."""


@runtime_checkable
class Likelihood(Protocol):
    """A model with bounds on the log-likelihood of images (a VAE): reported in nats."""

    description: str
    image_shape: tuple[int, int, int]

    def likelihood_bounds(
        self, state: PyTree, batch: dict, key: jax.Array, iw_samples: int
    ) -> dict[str, jax.Array]:
        """Per image (B,): `nelbo`, the negative ELBO, and `nll_iw`, the importance-weighted
        bound of `iw_samples` samples, in nats, with noise drawn from `key`."""


@runtime_checkable
class StyleTransfer(ImageToImage, Protocol):
    """An image-to-image model trained against content and style losses."""

    image_size: int

    def per_image_losses(
        self, state: PyTree, stylized: jax.Array, content: jax.Array
    ) -> tuple[jax.Array, jax.Array]:
        """Each image's weighted content and style losses, (N,) each."""


# What each capability means to a user, for the one-line error of a command that needs it.
NEEDS = {
    Sampler: "a generative model (a GAN or a VAE)",
    Encoder: "a model with an encoder (a VAE)",
    ImageToImage: "an image-to-image model (super-resolution, inpainting or style transfer)",
    Restorer: "a restoration model (super-resolution or inpainting)",
    Likelihood: "a model with a likelihood (a VAE)",
    StyleTransfer: "a style-transfer model",
}


def require(task: Any, capability: type, user: str) -> Any:
    """`task`, or a UserError saying what it is and what `user` (a command or an evaluator,
    e.g. "`sample`") needs, if it lacks `capability`."""
    if not isinstance(task, capability):
        raise UserError(f"this run is {task.description}; {user} needs {NEEDS[capability]}")
    return task
