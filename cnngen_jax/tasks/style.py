"""Fast neural style transfer (Johnson et al. 2016, "Perceptual Losses for Real-Time Style
Transfer and Super-Resolution"), as pytorch/examples' `fast_neural_style` trains it.

One feed-forward `TransformerNet` learns one style: each step stylises a batch of content
images and is scored by a frozen VGG16 (`config.vgg`), content = content_weight x the mean
squared distance of the `content_layer` (relu2_2) features of the stylised and the content
image, style = style_weight x the sum over `style_layers` (relu1_2, relu2_2, relu3_3 and
relu4_3, weighted 1 each) of the mean squared distance between the Gram matrices of the
stylised images and of the style image (`config.style_image`, computed once, when a run starts).

Scale: the project's images are x = p / 127.5 - 1 for pixels p in 0..255. The network is the
reference's on the reference's scale: it is given p = (x + 1) * 127.5 and its output, pixels
in 0..255 (unbounded), is mapped back by / 127.5 - 1; so its weights, its instance norms' eps
included, mean what theirs do. `models.vgg` maps x to (x + 1) / 2 = p / 255 before the ImageNet
standardisation, exactly pytorch/examples' `normalize_batch(p)`: the VGG features, hence both
losses, are theirs to float rounding (checked against their code in tests/test_style.py), and
`content_loss`, `style_loss` and `loss` (their sum) are the numbers their training prints.

The frozen VGG (only its layers up to the deepest loss layer) and the style Gram matrices
travel in the train state: they are jitted arguments rather than compiled-in constants, and a
run resumes, or is loaded by `cnngen_jax.commands.stylize`, without the weights file or the
style image.
"""

import functools
import os
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from PIL import Image

from cnngen_jax import optim, perceptual
from cnngen_jax.data import DatasetInfo
from cnngen_jax.errors import UserError
from cnngen_jax.images import image_array, read_image
from cnngen_jax.models import ModelSpec, get_model, vgg
from cnngen_jax.pixels import PIXEL_SCALE, to_float
from cnngen_jax.tasks import (
    PREVIEW_IMAGES,
    Batch,
    Metrics,
    NetState,
    centre_crop,
    init_network,
    placed_like,
    preview_side,
    register_task,
)

# `config.style_image` of this form names an image bundled in scikit-image's wheel (found offline).
SKIMAGE_PREFIX = "skimage:"
# TransformerNet halves the resolution twice.
SIZE_MULTIPLE = 4


@flax.struct.dataclass
class StyleState:
    step: jax.Array
    transformer: NetState
    # The frozen VGG's parameters up to the deepest layer the losses use (relu4_3), and the style
    # image's Gram matrix at each style layer, (1, C, C): shaped by `init_state`, filled by
    # `with_pretrained`.
    feature_net: Any
    style_grams: dict[str, jax.Array]


def style_image_path(setting: str) -> str:
    """The file `config.style_image` names: `skimage:FILE` is FILE among scikit-image's bundled
    images (e.g. `skimage:ihc.png`), anything else a path."""
    if setting.startswith(SKIMAGE_PREFIX):
        import skimage

        folder = os.path.join(os.path.dirname(skimage.__file__), "data")
        return os.path.join(folder, setting[len(SKIMAGE_PREFIX) :])
    return os.path.expanduser(setting)


def load_style_image(setting: str, channels: int, size: int, minimum_side: int) -> np.ndarray:
    """The style image as (1, H, W, channels) floats in [-1, 1], resized to size x size by a
    Lanczos filter when `size` is not 0 (pytorch/examples' `--style-size`); a UserError if it
    is unreadable or smaller than `minimum_side`."""
    image = read_image(style_image_path(setting), "config.style_image")
    if size:
        image = image.resize((size, size), Image.Resampling.LANCZOS)
    if min(image.size) < minimum_side:
        raise UserError(
            f"config.style_image={setting} is {image.width}x{image.height} pixels; the style "
            f"layers need at least {minimum_side}x{minimum_side} (see config.style_size)"
        )
    return to_float(image_array(image, channels, f"config.style_image={setting}")[None])


def minimum_side(arch: str, layers: tuple[str, ...]) -> int:
    """The smallest image VGG `arch` takes to the deepest of `layers`: 2 ^ the pools on the way
    (8 for relu4_3)."""
    return 2 ** sum(name.startswith("pool") for name in vgg.layers_through(arch, layers))


def informative(images: jax.Array) -> jax.Array:
    """(N,) whether each image has more than one colour. A uniform image (a crop of the retina's
    black surround among the embedded photographs) makes every instance norm of the network
    normalise a constant: its backward pass multiplies by 1 / sqrt(eps) at each of them, and
    the gradient overflows float32 (Adam's second moment turns inf; PyTorch's would too). Such
    an image has nothing to stylise: training leaves it out of the loss (COCO, the reference's
    data, has none). Images that vary at all, even by one level in a corner, train normally."""
    varies = jnp.max(images, axis=(1, 2)) > jnp.min(images, axis=(1, 2))
    return jnp.any(varies, axis=-1)


def _validate(config: ml_collections.ConfigDict) -> None:
    vgg.check_arch(config.vgg)
    layers = (config.content_layer, *config.style_layers)
    unknown = sorted(set(layers) - set(vgg.layer_names(config.vgg)))
    if unknown or not config.style_layers:
        raise UserError(
            f"config.content_layer and config.style_layers must name layers of {config.vgg} "
            f"(at least one style layer), e.g. relu2_2; got {unknown or 'no style layer'}"
        )
    smallest = max(SIZE_MULTIPLE, minimum_side(config.vgg, layers))
    size = config.image_size
    if size % SIZE_MULTIPLE or size < smallest:
        raise UserError(
            f"image_size={size} must be a multiple of {SIZE_MULTIPLE} (the network halves it "
            f"twice) and at least {smallest} (the loss layers' VGG pools)"
        )
    weights = {"content_weight": config.content_weight, "style_weight": config.style_weight}
    weights.update({f"style_layers.{k}": v for k, v in config.style_layers.items()})
    for name, value in {**weights, "style_size": config.style_size}.items():
        if value < 0:
            raise UserError(f"{name}={value} must be >= 0; set --config.{name}")
    if not config.style_image:
        raise UserError("config.style_image is empty: give an image path or skimage:FILE")


@register_task("style_transfer")
class StyleTransferTask:
    """One style learnt by a TransformerNet against VGG content and style losses."""

    def __init__(self, config: ml_collections.ConfigDict, data_info: DatasetInfo):
        _validate(config)
        self.description = "a style-transfer model"
        self.batches_per_step = 1
        self.channels = data_info.channels
        self.scale = 1
        self.needs_mask = False
        self.tileable = False  # instance norm: every pixel depends on the whole image
        self.minimum_input_side = SIZE_MULTIPLE
        self.image_size = config.image_size
        self.preview_side = preview_side(config.image_size)
        dtype = jnp.dtype(config.compute_dtype)
        spec = ModelSpec.of_run(config, self.channels)
        self.model = get_model(config.model.name, "style_transfer")(config.model, spec)
        self.optimizer = optim.adam(
            config.optimizer.learning_rate, config.optimizer, config.num_train_steps
        )
        self.vgg = vgg.VGG(config.vgg, dtype)
        self.vgg_weights = config.vgg_weights or vgg.DEFAULT_WEIGHTS_PATTERN.format(arch=config.vgg)
        self.content_weight = config.content_weight
        self.style_weight = config.style_weight
        self.content_layer = config.content_layer
        self.style_layers = dict(config.style_layers)  # layer -> weight within the style term
        self.layers = tuple(dict.fromkeys((*self.style_layers, self.content_layer)))
        self.minimum_style_side = minimum_side(config.vgg, tuple(self.style_layers))
        self.style_image = config.style_image
        self.style_size = config.style_size

    # --- the frozen VGG and the style ------------------------------------------------------

    def _feature_net_shapes(self) -> dict[str, tuple[int, ...]]:
        """The VGG parameters the losses use ('/'-joined names): those up to their deepest
        layer."""
        used = vgg.layers_through(self.vgg.arch, self.layers)
        shapes = vgg.param_shapes(self.vgg.arch)
        return {key: shape for key, shape in shapes.items() if key.split("/")[0] in used}

    def _features(self, feature_net: Any, images: jax.Array) -> dict[str, jax.Array]:
        return self.vgg.apply({"params": feature_net}, images, self.layers)

    def _style_grams(self, feature_net: Any, style: jax.Array) -> dict[str, jax.Array]:
        return perceptual.gram_matrices(self._features(feature_net, style), self.style_layers)

    def with_pretrained(self, state: StyleState) -> StyleState:
        """The converted VGG weights, and the Gram matrices of the style image they give,
        placed like the state's."""
        feature_net, grams = self._pretrained
        return state.replace(
            feature_net=placed_like(feature_net, state.feature_net),
            style_grams=placed_like(grams, state.style_grams),
        )

    @functools.cached_property
    def _pretrained(self) -> tuple[Any, Any]:
        """The VGG weights the losses use and the style image's Gram matrices, on the host: read
        and computed once per task, however many replicas (`config.num_seeds`) take them."""
        style = load_style_image(
            self.style_image, self.channels, self.style_size, self.minimum_style_side
        )
        try:
            weights = vgg.load_vgg(self.vgg_weights, self.vgg.arch)
        except UserError as error:
            raise UserError(f"config.vgg_weights: {error}") from None
        flat = flax.traverse_util.flatten_dict(weights, sep="/")
        used = {key: np.asarray(flat[key], np.float32) for key in self._feature_net_shapes()}
        feature_net = flax.traverse_util.unflatten_dict(used, sep="/")
        grams = jax.jit(self._style_grams)(feature_net, jnp.asarray(style))
        return feature_net, jax.device_get(grams)

    # --- the model and its losses ----------------------------------------------------------

    def _transform(self, params: Any, images: jax.Array) -> jax.Array:
        """The network's (unclipped) output in [-1, 1] for images of any size: padded by
        reflection to a multiple of 4, as the network needs, and cropped back. The network
        itself works on pixels in 0..255, as the reference's."""
        height, width = images.shape[1:3]
        pad = ((0, 0), (0, -height % SIZE_MULTIPLE), (0, -width % SIZE_MULTIPLE), (0, 0))
        pixels_in = (jnp.pad(images, pad, mode="reflect") + 1.0) * PIXEL_SCALE
        output = self.model.apply({"params": params}, pixels_in)
        return output[:, :height, :width] / PIXEL_SCALE - 1.0

    def transform(
        self, state: StyleState, images: jax.Array, mask: jax.Array | None = None
    ) -> jax.Array:
        """`images` (N, H, W, C) in [-1, 1], of any size, in the learnt style, in [-1, 1]."""
        if mask is not None:
            raise UserError("a style-transfer model takes no mask")
        return jnp.clip(self._transform(state.transformer.params, images), -1.0, 1.0)

    def per_image_losses(
        self, state: StyleState, stylized: jax.Array, content: jax.Array
    ) -> tuple[jax.Array, jax.Array]:
        """Each image's weighted content and style losses, (N,) each, for stylised images and
        their content images (both in [-1, 1]). Two VGG passes: the content images' needs no
        backward pass."""
        features = self._features(state.feature_net, stylized)
        targets = self._features(state.feature_net, content)

        def one(features: dict, targets: dict) -> tuple[jax.Array, jax.Array]:
            features, targets = (jax.tree.map(lambda x: x[None], t) for t in (features, targets))
            content_loss = perceptual.content_loss(features, targets, self.content_layer)
            style_loss = perceptual.style_loss(features, state.style_grams, self.style_layers)
            return self.content_weight * content_loss, self.style_weight * style_loss

        return jax.vmap(one)(features, targets)

    def losses(
        self, state: StyleState, stylized: jax.Array, content: jax.Array
    ) -> tuple[jax.Array, jax.Array]:
        """The batch's weighted content and style losses, the means of `per_image_losses`: the
        values pytorch/examples prints. Content images of one colour are left out (see
        `informative`)."""
        content_loss, style_loss = self.per_image_losses(state, stylized, content)
        weights = informative(content).astype(jnp.float32)
        weights = weights / jnp.maximum(jnp.sum(weights), 1.0)
        return jnp.sum(content_loss * weights), jnp.sum(style_loss * weights)

    def init_state(self, key: jax.Array) -> StyleState:
        example = jnp.zeros((1, self.image_size, self.image_size, self.channels))
        transformer = init_network(self.model, key, self.optimizer, example)
        feature_net = vgg.zero_params(self._feature_net_shapes())
        grams = jax.tree.map(
            lambda gram: jnp.zeros(gram.shape, gram.dtype),
            jax.eval_shape(self._style_grams, feature_net, example),
        )
        return StyleState(jnp.zeros((), jnp.int32), transformer, feature_net, grams)

    def train_step(
        self, state: StyleState, batch: Batch, key: jax.Array
    ) -> tuple[StyleState, Metrics]:
        content = batch["image"]

        def loss_fn(params):
            stylized = self._transform(params, content)
            content_loss, style_loss = self.losses(state, stylized, content)
            return content_loss + style_loss, (content_loss, style_loss)

        (loss, (content_loss, style_loss)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state.transformer.params
        )
        transformer = state.transformer.updated(
            self.optimizer, grads, state.transformer.collections
        )
        metrics = {"loss": loss, "content_loss": content_loss, "style_loss": style_loss}
        return state.replace(step=state.step + 1, transformer=transformer), metrics

    def networks(self, state: StyleState) -> dict[str, Any]:
        return {"transformer": state.transformer.params}

    # --- pictures and evaluation -----------------------------------------------------------

    def images(self, state: StyleState, examples: Batch, key: jax.Array) -> dict:
        """Rows of content | stylised for the first held-out images (centre crops)."""
        side = self.preview_side
        content = centre_crop(examples["image"][:PREVIEW_IMAGES], side, side)
        rows = jnp.stack([content, self.transform(state, content)], axis=1)
        return {"style_transfer": rows}
