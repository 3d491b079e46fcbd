"""The convolutional part of VGG16 / VGG19 (Simonyan & Zisserman 2015), as a frozen feature
network for perceptual and style losses, and its pickle-free weights file.

The layout is torchvision's `vgg16` / `vgg19` `features` (torchvision/models/vgg.py, configs "D"
and "E", no BatchNorm): five blocks of 3x3 convolutions (padding 1) each followed by a ReLU, the
blocks closed by 2x2 max pools, widths 64, 128, 256, 512, 512. Layers are named as in BasicSR's
VGGFeatureExtractor (basicsr/archs/vgg_arch.py): `conv3_3` is the third convolution of block 3
before its ReLU, `relu3_3` after it, `pool3` the pool closing the block; the convolutions' params
carry the `convB_I` names.

Inputs are the project's images in [-1, 1], mapped here to [0, 1] and standardised with the
ImageNet mean and std torchvision's weights were trained with; greyscale images are repeated to
three channels. Nothing is downloaded: torchvision's `vgg19-dcbb9e9d.pth` (or
`vgg16-397923af.pth`) is converted once by `python -m cnngen_jax.commands.convert_vgg`, and the
`.npz` it writes is read with `allow_pickle=False`.
"""

import os
from collections.abc import Iterator, Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from cnngen_jax import files
from cnngen_jax.converters.torch_weights import shape_mismatch
from cnngen_jax.errors import UserError
from cnngen_jax.metrics import npz_files
from cnngen_jax.models.layers import Conv

# Where a converted file is looked for unless a path is given; `.format(arch=...)`.
DEFAULT_WEIGHTS_PATTERN = "~/.cache/cnngen_jax/{arch}.npz"
# torchvision's files; the name ends in the first 8 hex digits of the file's sha256.
TORCHVISION_FILES = {"vgg16": "vgg16-397923af.pth", "vgg19": "vgg19-dcbb9e9d.pth"}
_WIDTHS = (64, 128, 256, 512, 512)
_CONVS_PER_BLOCK = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


def check_arch(arch: str) -> None:
    if arch not in _CONVS_PER_BLOCK:
        raise UserError(f"VGG arch must be one of {sorted(_CONVS_PER_BLOCK)}, got {arch!r}")


def _layers(arch: str) -> Iterator[tuple[str, int]]:
    """(name, width) of every layer in order; width 0 for the parameter-free ones."""
    for block, (width, convs) in enumerate(zip(_WIDTHS, _CONVS_PER_BLOCK[arch], strict=True), 1):
        for i in range(1, convs + 1):
            yield f"conv{block}_{i}", width
            yield f"relu{block}_{i}", 0
        yield f"pool{block}", 0


def layer_names(arch: str) -> tuple[str, ...]:
    """Every layer of `arch` whose activation `VGG` can return, from the input up."""
    check_arch(arch)
    return tuple(name for name, _ in _layers(arch))


def layers_through(arch: str, layers: tuple[str, ...]) -> tuple[str, ...]:
    """The layers of `arch` from the input up to the deepest of `layers`: what a pass that
    returns `layers` computes."""
    names = layer_names(arch)
    return names[: max(names.index(layer) for layer in layers) + 1]


def zero_params(shapes: dict[str, tuple[int, ...]]) -> dict[str, Any]:
    """Zeros of `param_shapes`' ('/'-joined) shapes, nested as the module's parameters: the
    placeholder a train state holds until the converted weights are read in."""
    return traverse_util.unflatten_dict(
        {name: jnp.zeros(shape) for name, shape in shapes.items()}, sep="/"
    )


def param_shapes(arch: str) -> dict[str, tuple[int, ...]]:
    """The shape of every parameter, by '/'-joined name (`conv1_1/kernel`, HWIO)."""
    check_arch(arch)
    shapes, channels = {}, 3
    for name, width in _layers(arch):
        if width:
            shapes[f"{name}/kernel"] = (3, 3, channels, width)
            shapes[f"{name}/bias"] = (width,)
            channels = width
    return shapes


class VGG(nn.Module):
    """VGG `features` returning the activations named in `layers`, computed only as deep as the
    deepest of them."""

    arch: str  # "vgg16" or "vgg19"
    dtype: jnp.dtype = jnp.float32  # of the computation; the params stay float32

    @nn.compact
    def __call__(self, x: jax.Array, layers: tuple[str, ...]) -> dict[str, jax.Array]:
        names = layer_names(self.arch)
        if not layers:
            raise UserError("no VGG layer requested: name at least one, e.g. relu2_2")
        unknown = sorted(set(layers) - set(names))
        if unknown:
            raise UserError(f"{self.arch} has no layer {unknown}; its layers: {', '.join(names)}")
        if x.ndim != 4 or x.shape[-1] not in (1, 3):
            raise UserError(f"VGG takes NHWC RGB or greyscale images, got shape {x.shape}")
        x = jnp.broadcast_to(x, (*x.shape[:-1], 3)).astype(jnp.float32)
        x = ((x + 1) / 2 - jnp.asarray(_MEAN)) / jnp.asarray(_STD)
        x = x.astype(self.dtype)
        outputs = {}
        for name, width in list(_layers(self.arch))[: len(layers_through(self.arch, layers))]:
            if name.startswith("conv"):
                x = Conv(width, 3, padding=1, dtype=self.dtype, name=name)(x)
            elif name.startswith("relu"):
                x = nn.relu(x)
            else:
                x = nn.max_pool(x, (2, 2), strides=(2, 2))
            if name in layers:
                outputs[name] = x
        return outputs


def _convert_hint(arch: str, path: str) -> str:
    source = TORCHVISION_FILES[arch]
    return (
        f"convert torchvision's {source} (https://download.pytorch.org/models/{source}) once "
        f"with `python -m cnngen_jax.commands.convert_vgg --arch={arch} --torch_weights={source} "
        f"--out={path}`"
    )


def _mismatch(flat: Mapping[str, np.ndarray], arch: str) -> str | None:
    return shape_mismatch(flat, param_shapes(arch))


def params_mismatch(flat: Mapping[str, np.ndarray], arch: str) -> str | None:
    """Why `flat` ('/'-joined names) is not exactly `arch`'s parameters, or None when it is."""
    problem = _mismatch(flat, arch)
    if problem is None:
        return None
    for other in sorted(_CONVS_PER_BLOCK.keys() - {arch}):
        if _mismatch(flat, other) is None:
            return f"it holds {other} weights, not {arch}"
    return f"it is not {arch} weights ({problem})"


def save_vgg(flat: Mapping[str, np.ndarray], arch: str, out: str) -> str:
    """Write `arch`'s parameters ('/'-joined names) to `out` as float32; return their content
    sha256 (`npz_files.content_sha256`: the same for every conversion of the same weights)."""
    problem = params_mismatch(flat, arch)
    if problem:
        raise UserError(f"{problem}; nothing written to {out}")
    arrays = {key: np.asarray(value, np.float32) for key, value in flat.items()}
    npz_files.write_atomically(files.path(out, "--out"), arrays)
    return npz_files.content_sha256(arrays)


def load_vgg(path: str, arch: str) -> dict:
    """The params of `arch` (for `VGG(arch).apply({"params": params}, ...)`) from a converted
    file, or a UserError saying what is wrong with it and how to make a good one."""
    check_arch(arch)
    hint = _convert_hint(arch, path)
    full_path = os.fspath(files.path(path, "vgg_weights"))
    if not os.path.isfile(full_path):
        raise UserError(f"VGG weights file {path} does not exist; {hint}")
    try:
        flat = npz_files.read(full_path)
    except (OSError, ValueError) as error:
        raise UserError(f"cannot read VGG weights file {path} ({error}); {hint}") from error
    problem = params_mismatch(flat, arch)
    if problem:
        raise UserError(f"wrong VGG weights file {path}: {problem}; {hint}")
    return traverse_util.unflatten_dict(flat, sep="/")
