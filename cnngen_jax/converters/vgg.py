"""torchvision's VGG16 / VGG19 weights converted into the pickle-free file `models.vgg` loads
(the command: `python -m cnngen_jax.commands.convert_vgg`).

Only the convolutions of `features` are kept: the perceptual and style losses never use the
classifier. Needs PyTorch only for this one-off step; training never imports it.
"""

import sys
from collections.abc import Mapping

import numpy as np

from cnngen_jax.converters import torch_weights as torch_weights_file
from cnngen_jax.errors import UserError
from cnngen_jax.models import vgg


def _torch_layout(arch: str) -> dict[str, tuple[str, tuple[int, ...]]]:
    """torchvision key -> (our '/'-joined name, torchvision shape). torchvision's `features` is
    one module per layer in the order of `vgg.layer_names`, so a layer's position is its index."""
    shapes = vgg.param_shapes(arch)
    layout = {}
    for index, name in enumerate(vgg.layer_names(arch)):
        if name.startswith("conv"):
            h, w, i, o = shapes[f"{name}/kernel"]
            layout[f"features.{index}.weight"] = (f"{name}/kernel", (o, i, h, w))
            layout[f"features.{index}.bias"] = (f"{name}/bias", (o,))
    return layout


def _layout_mismatch(state: Mapping[str, np.ndarray], arch: str) -> str | None:
    layout = _torch_layout(arch)
    given = {key for key in state if not key.startswith("classifier.")}
    missing = sorted(layout.keys() - given)
    unexpected = sorted(given - layout.keys())
    wrong = sorted(k for k in layout.keys() & given if state[k].shape != layout[k][1])
    if not (missing or unexpected or wrong):
        return None
    return f"missing {missing[:3]}, unexpected {unexpected[:3]}, wrong shape {wrong[:3]}"


def flax_params_from_torch(state: Mapping[str, np.ndarray], arch: str) -> dict[str, np.ndarray]:
    """torchvision's `features.{i}.weight` (OIHW) and `.bias` as our `convB_I/kernel` (HWIO) and
    `convB_I/bias`, dropping the `classifier.*` entries; any other layout is refused."""
    problem = _layout_mismatch(state, arch)
    if problem:
        if any(key.endswith("running_mean") for key in state):
            raise UserError(
                "it holds a VGG with BatchNorm (torchvision's vgg*_bn), not plain "
                f"{arch} (convert torchvision's {vgg.TORCHVISION_FILES[arch]} instead)"
            )
        for other in vgg.TORCHVISION_FILES:
            if other != arch and _layout_mismatch(state, other) is None:
                raise UserError(f"it holds {other} weights, not {arch} (pass --arch={other})")
        raise UserError(f"it is not torchvision's {arch} state dict ({problem})")
    flat = {}
    for key, (name, _) in _torch_layout(arch).items():
        value = np.asarray(state[key], np.float32)
        flat[name] = np.transpose(value, (2, 3, 1, 0)) if value.ndim == 4 else value
    return flat


def convert(arch: str, torch_weights: str, out: str) -> str:
    """Convert `torch_weights` (a torchvision VGG state dict) to `out` (.npz); return the
    content sha256. Nothing is written unless the file is `arch`'s."""
    vgg.check_arch(arch)
    try:
        arrays = torch_weights_file.read_state_dict(torch_weights, arch)
    except UserError as error:
        raise UserError(f"{error}; nothing written to {out}") from error
    try:
        flat = flax_params_from_torch(arrays, arch)
    except UserError as error:
        raise UserError(f"{torch_weights}: {error}; nothing written to {out}") from error
    standard = vgg.TORCHVISION_FILES[arch]
    source_sha256 = torch_weights_file.file_sha256(torch_weights)
    if not source_sha256.startswith(standard.split("-")[1][:8]):
        print(
            f"warning: {torch_weights} is not torchvision's {standard} (sha256 "
            f"{source_sha256[:8]}...); perceptual losses will differ from published ones",
            file=sys.stderr,
        )
    return vgg.save_vgg(flat, arch, out)
