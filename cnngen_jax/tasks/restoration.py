"""Image restoration: super-resolution and inpainting, one task over degradations.

Every step crops clean images (the input pipeline), augments them by a random flip / transpose
and degrades them with the step's key (`cnngen_jax.restoration.degradations`), all inside the
jitted step. The restorer maps the degraded input (and, for inpainting, the mask) to the clean
image (inpainting: corrects a biharmonic fill of the holes, `cnngen_jax.restoration.fill`); its
loss is a pixel term (`pixel_loss` over the image, plus `hole_weight` times the mean
over the holes for inpainting), optionally a perceptual term on VGG features
(`perceptual_weight`, SRGAN / BasicSR's PerceptualLoss) and an adversarial term
(`adversarial_weight`) against `config.discriminator` with one of the GAN zoo's objectives
(`gan_loss`). An inpainting output keeps the known pixels: only the holes are the model's.

Held-out evaluation by the published protocols, beside a classical baseline, is the
`restoration` evaluator's (`cnngen_jax.evaluators.restoration`).
"""

import functools
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections

from cnngen_jax import losses, optim, perceptual
from cnngen_jax.data import DatasetInfo
from cnngen_jax.errors import UserError
from cnngen_jax.metrics import image_quality
from cnngen_jax.models import ModelSpec, get_model, vgg
from cnngen_jax.models.spectral_norm import COLLECTION as SPECTRAL
from cnngen_jax.restoration import degradations
from cnngen_jax.restoration.fill import biharmonic
from cnngen_jax.tasks import (
    PREVIEW_IMAGES,
    Batch,
    Metrics,
    NetState,
    apply_network,
    centre_crop,
    init_network,
    placed_like,
    preview_side,
    register_task,
)

PIXEL_LOSSES = ("l1", "l2")


@flax.struct.dataclass
class RestorationState:
    step: jax.Array
    restorer: NetState
    discriminator: NetState | None  # None without an adversarial term
    # The frozen VGG of the perceptual loss (None without one). It travels in the state so the
    # jitted step takes it as an argument: closed over, its 80 MB would be compiled into the
    # program as constants. It is read from its file once, for a new run (`with_pretrained`),
    # and saved with each checkpoint, so a run reloads without the file.
    feature_net: Any = None


def augment(images: jax.Array, key: jax.Array) -> jax.Array:
    """Each image flipped left-right, top-bottom and transposed, each with probability 1/2:
    the eight symmetries of the square (BasicSR's hflip + rot90), drawn per image."""
    flips = jax.random.bernoulli(key, 0.5, (3, images.shape[0]))

    def one(image, flip):
        image = jnp.where(flip[0], image[:, ::-1], image)
        image = jnp.where(flip[1], image[::-1], image)
        return jnp.where(flip[2], jnp.swapaxes(image, 0, 1), image)

    return jax.vmap(one)(images, flips.T)


def pixel_error(restored: jax.Array, target: jax.Array, kind: str) -> jax.Array:
    """Elementwise |x - y| ('l1') or (x - y)^2 ('l2')."""
    difference = restored - target
    return jnp.abs(difference) if kind == "l1" else jnp.square(difference)


def _validate(config: ml_collections.ConfigDict) -> None:
    if config.pixel_loss not in PIXEL_LOSSES:
        raise UserError(
            f"unknown pixel_loss {config.pixel_loss!r}; choose one of: {', '.join(PIXEL_LOSSES)}"
        )
    for name in ("pixel_weight", "hole_weight", "perceptual_weight", "adversarial_weight"):
        if config[name] < 0:
            raise UserError(f"{name}={config[name]} must be >= 0; set --config.{name}")


@register_task("restoration")
class RestorationTask:
    """Super-resolution or inpainting by `config.degradation`, optionally adversarial."""

    def __init__(self, config: ml_collections.ConfigDict, data_info: DatasetInfo):
        _validate(config)
        self.degrade = degradations.from_config(config)
        self.inpainting = config.degradation == "inpainting"
        self.needs_mask = self.inpainting
        self.tileable = not self.inpainting  # a hole's fill depends on the whole image
        self.description = "an inpainting model" if self.inpainting else "a super-resolution model"
        self.scale = 1 if self.inpainting else config.scale
        self.batches_per_step = 1
        self.channels = data_info.channels
        self.image_size = config.image_size
        self.preview_side = preview_side(config.image_size)
        self.pixel_loss = config.pixel_loss
        self.pixel_weight = config.pixel_weight
        self.hole_weight = config.hole_weight if self.inpainting else 0.0
        # The restorer's input and D's: the image, and for inpainting the mask beside it.
        in_channels = self.channels + 1 if self.inpainting else None
        spec = ModelSpec.of_run(config, self.channels, in_channels=in_channels, scale=self.scale)
        self.model = get_model(config.model.name, "restoration")(config.model, spec)
        self.optimizer = optim.adam(
            config.optimizer.learning_rate, config.optimizer, config.num_train_steps
        )
        self.adversarial_weight = config.adversarial_weight
        self.discriminator = None
        if config.adversarial_weight:
            self.objective = losses.get_objective(config.gan_loss)
            self.discriminator = get_model(config.discriminator.name, "restoration_discriminator")(
                config.discriminator, spec
            )
            self.d_optimizer = optim.adam(
                config.optimizer.d_learning_rate, config.optimizer, config.num_train_steps
            )
        self.perceptual_weight = config.perceptual_weight
        if self.perceptual_weight:
            perceptual.check_criterion(config.perceptual_criterion)
            self.vgg = vgg.VGG(config.vgg)
            self.vgg_weights = config.vgg_weights or vgg.DEFAULT_WEIGHTS_PATTERN.format(
                arch=config.vgg
            )
            self.perceptual_layers = dict(config.perceptual_layers)
            self.perceptual_criterion = config.perceptual_criterion
            unknown = set(self.perceptual_layers) - set(vgg.layer_names(config.vgg))
            if unknown:
                raise UserError(
                    f"config.perceptual_layers names {sorted(unknown)}, not layers of "
                    f"{config.vgg}; e.g. conv5_4 or relu2_2"
                )
        # The smallest input `restore` takes: at least one U-Net cell (smaller ones would be
        # mostly padding), and 2 pixels for the super-resolution networks.
        self.size_multiple = getattr(self.model, "size_multiple", 1)  # the U-Net's 2^depth
        self.minimum_input_side = max(2, self.size_multiple)

    # --- the model -------------------------------------------------------------------------

    def _inputs(self, degraded: degradations.Degraded) -> jax.Array:
        """What the network sees: the LR image, or the biharmonic fill of the holes and the
        mask."""
        if self.inpainting:
            first_guess = biharmonic(degraded.inputs, degraded.mask)
            return jnp.concatenate([first_guess, degraded.mask], axis=-1)
        return degraded.inputs

    def _complete(self, output: jax.Array, degraded: degradations.Degraded) -> jax.Array:
        """Inpainting keeps the known pixels and takes only the holes from the model."""
        if not self.inpainting:
            return output
        return degraded.inputs * (1.0 - degraded.mask) + output * degraded.mask

    def _run(self, params: Any, collections: dict, degraded: degradations.Degraded) -> jax.Array:
        """The network's output; for inpainting a correction of the biharmonic fill."""
        variables = {"params": params, **collections}
        inputs = self._inputs(degraded)
        output = self.model.apply(variables, inputs).astype(jnp.float32)
        if self.inpainting:
            return inputs[..., : self.channels] + output
        return output

    def transform(
        self, state: RestorationState, inputs: jax.Array, mask: jax.Array | None = None
    ) -> jax.Array:
        """The restored images, in [-1, 1]: `inputs` (N, h, w, C) upscaled `scale` times, or,
        for inpainting, completed where `mask` (N, H, W, 1) is 1. Any size the model can take;
        the U-Net's sizes are padded by reflection to the multiple it needs and cropped back."""
        if self.inpainting:
            if mask is None:
                raise UserError("an inpainting model needs a mask (1 = missing) with its image")
            inputs = degradations.blank_holes(inputs, mask)
        degraded = degradations.Degraded(inputs, inputs, mask)
        height, width = inputs.shape[1:3]
        pad = ((0, 0), (0, -height % self.size_multiple), (0, -width % self.size_multiple), (0, 0))
        padded_inputs = jnp.pad(inputs, pad, "symmetric")  # the target is not needed: not padded
        padded_mask = None if mask is None else jnp.pad(mask, pad, "symmetric")
        padded = degradations.Degraded(padded_inputs, padded_inputs, padded_mask)
        output = self._run(state.restorer.params, state.restorer.collections, padded)
        output = output[:, : height * self.scale, : width * self.scale]
        return jnp.clip(self._complete(output, degraded), -1.0, 1.0)

    # --- training --------------------------------------------------------------------------

    def init_state(self, key: jax.Array) -> RestorationState:
        restorer_key, d_key = jax.random.split(key)
        size = self.image_size // self.scale
        example = jnp.zeros((1, size, size, self.channels))
        mask = jnp.zeros((1, size, size, 1)) if self.inpainting else None
        inputs = self._inputs(degradations.Degraded(example, example, mask))
        restorer = init_network(self.model, restorer_key, self.optimizer, inputs)
        discriminator = None
        if self.discriminator is not None:
            channels = inputs.shape[-1]
            images = jnp.zeros((1, self.image_size, self.image_size, channels))
            discriminator = init_network(
                self.discriminator, d_key, self.d_optimizer, images, train=False
            )
        feature_net = None
        if self.perceptual_weight:  # shaped here, filled by `with_pretrained`
            feature_net = vgg.zero_params(vgg.param_shapes(self.vgg.arch))
        return RestorationState(jnp.zeros((), jnp.int32), restorer, discriminator, feature_net)

    def with_pretrained(self, state: RestorationState) -> RestorationState:
        """The converted VGG weights of the perceptual loss, placed like the state's."""
        if not self.perceptual_weight:
            return state
        return state.replace(feature_net=placed_like(self._vgg_weights, state.feature_net))

    @functools.cached_property
    def _vgg_weights(self) -> Any:
        """The converted VGG weights, read once per task however many replicas take them."""
        return vgg.load_vgg(self.vgg_weights, self.vgg.arch)

    def _perceptual(self, feature_net: Any, restored: jax.Array, target: jax.Array) -> jax.Array:
        """The VGG feature distance of the restored images to their targets. Two passes: the
        targets' needs no backward pass, which one pass over both would still run."""

        def features(images):
            variables = {"params": feature_net}
            return self.vgg.apply(variables, images, tuple(self.perceptual_layers))

        return perceptual.feature_loss(
            features(restored),
            features(target),
            self.perceptual_layers,
            self.perceptual_criterion,
        )

    def _critic_input(self, images: jax.Array, degraded: degradations.Degraded) -> jax.Array:
        """What D judges: the image, and for inpainting the mask beside it (SN-PatchGAN)."""
        if self.inpainting:
            return jnp.concatenate([images, degraded.mask], axis=-1)
        return images

    def _criticize(
        self, d: NetState, images: jax.Array, power_iteration: bool = False
    ) -> tuple[jax.Array, dict]:
        """D's logits in training mode and its collections after the pass; spectral norm's
        power iteration runs once per D update, in the pass on real images (as the GAN task)."""
        mutable = [c for c in d.collections if c != SPECTRAL or power_iteration]
        return apply_network(self.discriminator, d.variables(), images, train=True, mutable=mutable)

    def _restorer_loss(self, params, state, degraded, fake_logits_of) -> tuple[jax.Array, tuple]:
        output = self._run(params, state.restorer.collections, degraded)
        error = pixel_error(output, degraded.target, self.pixel_loss)
        terms = {"pixel": jnp.mean(error)}
        loss = self.pixel_weight * terms["pixel"]
        if self.inpainting:
            hole = degraded.mask
            terms["hole"] = jnp.sum(error * hole) / jnp.maximum(jnp.sum(hole) * self.channels, 1)
            loss = loss + self.hole_weight * terms["hole"]
        restored = self._complete(output, degraded)
        if self.perceptual_weight:
            terms["perceptual"] = self._perceptual(state.feature_net, restored, degraded.target)
            loss = loss + self.perceptual_weight * terms["perceptual"]
        collections = None
        if self.discriminator is not None:
            logits, collections = fake_logits_of(restored)
            terms["g_adversarial"] = self.objective.generator(logits)
            loss = loss + self.adversarial_weight * terms["g_adversarial"]
        return loss, (restored, terms, collections)

    def train_step(
        self, state: RestorationState, batch: Batch, key: jax.Array
    ) -> tuple[RestorationState, Metrics]:
        augment_key, degrade_key = jax.random.split(key)
        degraded = self.degrade(augment(batch["image"], augment_key), degrade_key)
        d = state.discriminator

        def fake_logits_of(restored):
            return self._criticize(d, self._critic_input(restored, degraded))

        (loss, (restored, terms, _)), grads = jax.value_and_grad(self._restorer_loss, has_aux=True)(
            state.restorer.params, state, degraded, fake_logits_of
        )
        restorer = state.restorer.updated(self.optimizer, grads, state.restorer.collections)
        metrics = {"loss": loss, **terms}
        if d is not None:  # D's update on the restored images of the step, made before G's update
            d, metrics["d_loss"] = self._discriminator_update(d, degraded, restored)
        metrics["psnr"] = jnp.mean(image_quality.capped_psnr(restored, degraded.target, 2.0))
        return state.replace(step=state.step + 1, restorer=restorer, discriminator=d), metrics

    def _discriminator_update(self, d: NetState, degraded, restored) -> tuple[NetState, jax.Array]:
        real = self._critic_input(degraded.target, degraded)
        fake = self._critic_input(jax.lax.stop_gradient(restored), degraded)

        def loss_fn(params):
            after = d.replace(params=params)
            real_logits, collections = self._criticize(after, real, power_iteration=True)
            fake_logits, collections = self._criticize(after.replace(collections=collections), fake)
            return self.objective.discriminator(real_logits, fake_logits), collections

        (loss, collections), grads = jax.value_and_grad(loss_fn, has_aux=True)(d.params)
        return d.updated(self.d_optimizer, grads, collections), loss

    def networks(self, state: RestorationState) -> dict[str, Any]:
        nets = {"restorer": state.restorer.params}
        if state.discriminator is not None:
            nets["discriminator"] = state.discriminator.params
        return nets

    # --- pictures and evaluation -----------------------------------------------------------

    def _shown_input(self, degraded: degradations.Degraded) -> jax.Array:
        """The input at the target's size: LR pixels repeated, holes white."""
        if self.inpainting:
            return degraded.inputs + degraded.mask
        return jnp.repeat(jnp.repeat(degraded.inputs, self.scale, 1), self.scale, 2)

    def images(self, state: RestorationState, examples: Batch, key: jax.Array) -> dict:
        """Rows of input | output | target for the first held-out images (centre crops)."""
        clean = examples["image"][:PREVIEW_IMAGES]
        height, width = (
            min(side, self.preview_side) // self.scale * self.scale for side in clean.shape[1:3]
        )
        clean = centre_crop(clean, height, width)
        degraded = self.degrade(clean, key)
        restored = self.transform(state, degraded.inputs, degraded.mask)
        rows = jnp.stack([self._shown_input(degraded), restored, clean], axis=1)
        return {"restoration": jnp.clip(rows, -1.0, 1.0)}
