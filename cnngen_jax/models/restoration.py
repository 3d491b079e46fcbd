"""Restoration networks: super-resolution and inpainting generators and their discriminators.

Restorers (family "restoration") map (N, h, w, in_channels) images in [-1, 1] to
(N, h * scale, w * scale, out_channels) float32 images; discriminators (family
"restoration_discriminator") map (N, S, S, in_channels) images and `train` to logits.

* `espcn`: Shi et al. 2016, "Real-Time Single Image and Video Super-Resolution Using an Efficient
  Sub-Pixel Convolutional Neural Network" (arXiv:1609.05158), sec. 3: 5x5 conv to `width`,
  3x3 conv to `width // 2` (tanh after both), 3x3 conv to out_channels * r^2, pixel shuffle. The
  paper gives no initialisation; kernels are LeCun-normal (the tanh default), biases 0. Layout
  as github.com/yjn870/ESPCN-pytorch models.py.
* `msrresnet`: the "modified SRResNet" of BasicSR (github.com/XPixelGroup/BasicSR,
  basicsr/archs/srresnet_arch.py::MSRResNet, arch_util.py::ResidualBlockNoBN and
  default_init_weights): SRResNet (Ledig et al. 2017) with EDSR's BatchNorm-free residual
  blocks, no long skip over the body, and the bilinearly upsampled input added to the output.
* `unet`: an inpainting U-Net (Ronneberger et al. 2015) over the masked image and its mask:
  strided 3x3 convolutions down, nearest-neighbour upsampling + 3x3 convolutions up (no
  transposed convolutions, so no checkerboard), skips by concatenation, no normalisation.
* `vgg_style`: BasicSR's VGGStyleDiscriminator (basicsr/archs/discriminator_arch.py), the
  discriminator of SRGAN / ESRGAN.
* `patch_gan`: the SN-PatchGAN of DeepFill v2 (Yu et al. 2019, "Free-Form Image Inpainting with
  Gated Convolution", arXiv:1806.03589; github.com/JiahuiYu/generative_inpainting
  inpaint_model.py::build_sn_patch_gan_discriminator and inpaint_ops.py::dis_conv).

Convolution and flattening layouts follow the PyTorch references in
tests/torch_restoration_references.py, so converted weights reproduce their outputs.
"""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from cnngen_jax.errors import UserError
from cnngen_jax.models import ModelSpec, register_model
from cnngen_jax.models.layers import Conv, Dense, batch_norm


def pixel_shuffle(x: jax.Array, r: int) -> jax.Array:
    """Depth-to-space of NHWC `x` by `r`, in `torch.nn.PixelShuffle`'s channel order: input
    channel c * r * r + i * r + j becomes output channel c at (h * r + i, w * r + j)."""
    n, h, w, channels = x.shape
    if channels % (r * r):
        raise ValueError(
            f"pixel_shuffle by {r} needs channels divisible by {r * r}, got {channels}"
        )
    x = x.reshape(n, h, w, channels // (r * r), r, r)
    return x.transpose(0, 1, 4, 2, 5, 3).reshape(n, h * r, w * r, channels // (r * r))


def _kaiming_normal(scale: float = 1.0) -> nn.initializers.Initializer:
    """`torch.nn.init.kaiming_normal_` (fan_in, a = 0: std sqrt(2 / fan_in)) times `scale`."""
    return nn.initializers.variance_scaling(2.0 * scale**2, "fan_in", "normal")


# BasicSR's default_init_weights(..., 0.1) on every MSRResNet convolution: small residual
# branches, so the untrained network is close to bilinear upsampling.
_MSRRESNET_INIT = _kaiming_normal(0.1)
# PyTorch's default Conv2d / Linear kernels (kaiming_uniform_, a = sqrt(5)): U(+-1/sqrt(fan_in)).
_TORCH_DEFAULT_INIT = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")
# He initialisation for LeakyReLU(0.2) (gain^2 = 2 / (1 + 0.2^2)).
_UNET_INIT = nn.initializers.variance_scaling(2.0 / 1.04, "fan_in", "truncated_normal")


def _require_scale(model: str, scale: int, supported: tuple[int, ...]) -> None:
    if scale not in supported:
        raise UserError(
            f"model {model!r} (config.model.name) upscales by {' or '.join(map(str, supported))},"
            f" not config.scale={scale}; set config.scale to one of those or pick another"
            " restoration model"
        )


class ESPCN(nn.Module):
    """Shi et al. 2016: two tanh convolutions on the low-resolution image, then one to
    `out_channels * scale^2` channels rearranged into the upscaled image."""

    out_channels: int
    scale: int
    width: int  # n1 of the paper (64); the second layer has width // 2 (n2 = 32)
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = x.astype(self.dtype)
        x = jnp.tanh(Conv(self.width, 5, padding=2, dtype=self.dtype, name="conv1")(x))
        x = jnp.tanh(Conv(self.width // 2, 3, padding=1, dtype=self.dtype, name="conv2")(x))
        x = Conv(self.out_channels * self.scale**2, 3, padding=1, dtype=self.dtype, name="conv3")(x)
        return pixel_shuffle(x, self.scale).astype(jnp.float32)


class ResidualBlockNoBN(nn.Module):
    """EDSR's block as BasicSR: x + conv(relu(conv(x))), residual scale 1."""

    width: int
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        def conv(name: str) -> Conv:
            return Conv(
                self.width, 3, padding=1, kernel_init=_MSRRESNET_INIT, dtype=self.dtype, name=name
            )

        return x + conv("conv2")(nn.relu(conv("conv1")(x)))


class MSRResNet(nn.Module):
    """BasicSR's MSRResNet: conv_first, `num_blocks` residual blocks, pixel-shuffle upsampling
    (one x2 / x3 stage, or two x2 stages for x4) with LeakyReLU(0.1), conv_hr, conv_last, plus
    the bilinearly upsampled input."""

    out_channels: int
    scale: int
    width: int
    num_blocks: int
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        def conv(features: int, name: str) -> Conv:
            return Conv(
                features, 3, padding=1, kernel_init=_MSRRESNET_INIT, dtype=self.dtype, name=name
            )

        n, h, w, c = x.shape
        # F.interpolate(bilinear, align_corners=False) at an integer upscale: the same half-pixel
        # sampling, and at the borders both reduce to the edge pixel (torch clamps the source
        # index; jax renormalises the weights of in-bounds pixels).
        base = jax.image.resize(
            x.astype(jnp.float32), (n, h * self.scale, w * self.scale, c), method="bilinear"
        )
        lrelu = functools.partial(nn.leaky_relu, negative_slope=0.1)
        out = lrelu(conv(self.width, "conv_first")(x.astype(self.dtype)))
        for i in range(self.num_blocks):
            out = ResidualBlockNoBN(self.width, self.dtype, name=f"body_{i}")(out)
        stages = (2, 2) if self.scale == 4 else (self.scale,)
        for i, r in enumerate(stages):
            out = lrelu(pixel_shuffle(conv(self.width * r * r, f"upconv{i + 1}")(out), r))
        out = conv(self.out_channels, "conv_last")(lrelu(conv(self.width, "conv_hr")(out)))
        return out.astype(jnp.float32) + base


class InpaintingUNet(nn.Module):
    """U-Net over (masked image, mask): `depth` stride-2 levels, widths width * 2^level capped
    at 8 * width, each level two 3x3 convolutions with LeakyReLU(0.2); the decoder upsamples by
    nearest neighbour, convolves, concatenates the skip and convolves again; a linear output
    (clipped to [-1, 1] where images are made): a tanh saturated and stalled in the first
    default run, its holes stuck at black.

    Inputs need H and W divisible by 2^depth (callers pad)."""

    out_channels: int
    width: int
    depth: int
    dtype: jnp.dtype = jnp.float32

    @property
    def size_multiple(self) -> int:
        """What H and W must be a multiple of."""
        return 2**self.depth

    def _width(self, level: int) -> int:
        return self.width * min(2**level, 8)

    def _conv(self, features: int, stride: int, name: str) -> Conv:
        return Conv(features, 3, stride, 1, kernel_init=_UNET_INIT, dtype=self.dtype, name=name)

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        _, h, w, _ = x.shape
        multiple = self.size_multiple
        if h % multiple or w % multiple:
            raise ValueError(
                f"the inpainting U-Net of depth {self.depth} needs height and width divisible by "
                f"{multiple}, got {h}x{w}; pad the input to a multiple of {multiple}"
            )
        act = functools.partial(nn.leaky_relu, negative_slope=0.2)
        x = act(self._conv(self.width, 1, "stem")(x.astype(self.dtype)))
        skips = []
        for level in range(1, self.depth + 1):
            skips.append(x)
            x = act(self._conv(self._width(level), 2, f"down{level}_stride")(x))
            x = act(self._conv(self._width(level), 1, f"down{level}_conv")(x))
        for level in range(self.depth, 0, -1):
            n, h, w, c = x.shape
            x = jax.image.resize(x, (n, 2 * h, 2 * w, c), method="nearest")
            x = act(self._conv(self._width(level - 1), 1, f"up{level}_conv")(x))
            x = jnp.concatenate([x, skips.pop()], axis=-1)
            x = act(self._conv(self._width(level - 1), 1, f"up{level}_merge")(x))
        # Zero-initialised: the network starts as the identity on the first guess it corrects.
        x = Conv(
            self.out_channels, 3, padding=1, kernel_init=nn.initializers.zeros_init(),
            dtype=self.dtype, name="to_image",
        )(x)  # fmt: skip
        return x.astype(jnp.float32)


class VGGStyleDiscriminator(nn.Module):
    """BasicSR's VGGStyleDiscriminator: conv0_0 (bias) + LReLU(0.2), then five stages of
    (3x3 stride 1, 4x4 stride 2) convolutions without bias, each with BatchNorm and LReLU, widths
    width * (1, 2, 4, 8, 8); linear to 100, LReLU, linear to one logit.

    BasicSR hard-codes 128 or 256 pixels (256 adds a sixth stage so its linear layer always sees
    4x4); here the five stages stay and the linear layer takes 8 * width * (S / 32)^2 features,
    so any S divisible by 32 works and S = 128 is BasicSR's network. PyTorch's default kernel
    initialisation (biases start at 0, not PyTorch's uniform draw)."""

    width: int

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
        lrelu = functools.partial(nn.leaky_relu, negative_slope=0.2)
        conv = functools.partial(Conv, padding=1, kernel_init=_TORCH_DEFAULT_INIT)
        x = lrelu(conv(self.width, 3, name="conv0_0")(x.astype(jnp.float32)))
        layers = [("0_1", self.width, 4, 2)]
        for stage, multiple in enumerate((2, 4, 8, 8), start=1):
            layers += [(f"{stage}_0", multiple * self.width, 3, 1)]
            layers += [(f"{stage}_1", multiple * self.width, 4, 2)]
        for name, features, size, stride in layers:
            x = conv(features, size, stride, use_bias=False, name=f"conv{name}")(x)
            x = lrelu(batch_norm(train, jnp.float32, f"bn{name}")(x))
        x = x.reshape(x.shape[0], -1)
        x = lrelu(Dense(100, kernel_init=_TORCH_DEFAULT_INIT, name="linear1")(x))
        return Dense(1, kernel_init=_TORCH_DEFAULT_INIT, name="linear2")(x)


class SNPatchGANDiscriminator(nn.Module):
    """DeepFill v2's SN-PatchGAN: six 5x5 stride-2 convolutions, widths width * (1, 2, 4, 4, 4,
    4), spectral norm and LeakyReLU(0.2) after each; glorot-uniform kernels and zero biases (TF's
    `tf.layers.conv2d` defaults, which DeepFill keeps).

    Returns the last (N, ceil(S / 64), ceil(S / 64), 4 * width) map itself, after its LeakyReLU:
    DeepFill flattens it and applies the hinge loss to every element, each a logit of one patch
    and feature, so losses should average over all non-batch axes. Padding is 2 on every side,
    as in the PyTorch ports (e.g. github.com/nipponjo/deepfillv2-pytorch model/networks.py::DConv);
    TF's 'SAME' pads (1, 2) on even sizes: the same output size, shifted by one pixel."""

    width: int
    spectral_norm: bool

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
        del train  # spectral norm's power iteration runs when its collection is mutable
        x = x.astype(jnp.float32)
        for i, multiple in enumerate((1, 2, 4, 4, 4, 4)):
            conv = Conv(
                multiple * self.width,
                5,
                stride=2,
                padding=2,
                kernel_init=nn.initializers.xavier_uniform(),
                spectral_norm=self.spectral_norm,
                name=f"conv{i + 1}",
            )
            x = nn.leaky_relu(conv(x), 0.2)
        return x


@register_model("espcn", "restoration")
def build_espcn(settings, spec: ModelSpec) -> nn.Module:
    """ESPCN at scale 2, 3 or 4. Reads `width` (the paper's n1, 64) from `settings`; its first
    convolution takes whatever input channels it is given."""
    _require_scale("espcn", spec.scale, (2, 3, 4))
    return ESPCN(spec.channels, spec.scale, settings.width, spec.dtype)


@register_model("msrresnet", "restoration")
def build_msrresnet(settings, spec: ModelSpec) -> nn.Module:
    """MSRResNet at scale 2, 3 or 4. Reads `width` (BasicSR's num_feat, 64) and `num_blocks`
    (num_block, 16) from `settings`."""
    _require_scale("msrresnet", spec.scale, (2, 3, 4))
    in_channels = spec.in_channels or spec.channels
    if in_channels != spec.channels:
        raise UserError(
            "model 'msrresnet' (config.model.name) adds the upsampled input to its output, so it "
            f"needs as many input as output channels, got {in_channels} and {spec.channels}; "
            "use 'espcn' for a change of channels"
        )
    return MSRResNet(spec.channels, spec.scale, settings.width, settings.num_blocks, spec.dtype)


@register_model("unet", "restoration")
def build_unet(settings, spec: ModelSpec) -> nn.Module:
    """The inpainting U-Net (scale 1; `spec.in_channels` = image channels + 1 for the mask).
    Reads `width` and `depth` (the number of stride-2 levels) from `settings`."""
    if spec.scale != 1:
        raise UserError(
            "model 'unet' (config.model.name) keeps the image size, so it needs scale 1, not "
            f"config.scale={spec.scale}; use 'espcn' or 'msrresnet' for super-resolution"
        )
    return InpaintingUNet(spec.channels, settings.width, settings.depth, spec.dtype)


# The discriminators see (N, image_size, image_size, in_channels): the image, and for
# inpainting the mask beside it. Both run in float32 (`spec.dtype` is not read).


@register_model("vgg_style", "restoration_discriminator")
def build_vgg_style(settings, spec: ModelSpec) -> nn.Module:
    """SRGAN / ESRGAN's VGG-style D on image_size divisible by 32. Reads `width` (BasicSR's
    num_feat, 64) from `settings`."""
    image_size = spec.image_size
    if image_size % 32:
        multiple = 32 * max(1, round(image_size / 32))
        raise UserError(
            "discriminator 'vgg_style' halves the image five times, so it needs config.image_size "
            f"divisible by 32, got {image_size}; set it to e.g. {multiple} or set "
            "config.discriminator.name='patch_gan'"
        )
    return VGGStyleDiscriminator(settings.width)


@register_model("patch_gan", "restoration_discriminator")
def build_patch_gan(settings, spec: ModelSpec) -> nn.Module:
    """DeepFill v2's SN-PatchGAN at any size (a logit map of ceil(image_size / 64)^2 patches).
    Reads `width` (DeepFill's cnum, 64) and `spectral_norm` (True in DeepFill) from
    `settings`."""
    del spec
    return SNPatchGANDiscriminator(settings.width, settings.spectral_norm)
