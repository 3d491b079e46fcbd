"""The PyTorch twins of the project's train steps, fed by the same input pipeline: the
pytorch/examples DCGAN (tests/torch_dcgan.py), Mimicry's SNGAN-32 iteration
(`SNGANIteration` of tests/torch_gan_references.py) and BasicSR's MSRResNet
(`MSRResNetIteration` of tests/torch_restoration_references.py). torch is optional: it is
imported only when a reference runs."""

import importlib
import importlib.metadata
from collections.abc import Callable, Iterator
from typing import Any

import ml_collections

from benchmarks.timing import Settings

TORCH_LAYOUTS = {"torch": False, "torch_channels_last": True}


def torch_runner(
    config: ml_collections.ConfigDict, channels: int, channels_last: bool, iterator: Iterator
) -> Callable[[int], None]:
    """The PyTorch reference fed by the same pipeline (NHWC batches viewed as NCHW)."""
    import torch

    if config.model.name == "dcgan":
        torch_dcgan = _references("torch_dcgan")
        model = torch_dcgan.build(**torch_args(config, channels), channels_last=channels_last)
    elif config.model.name == "msrresnet":
        model = _references("torch_restoration_references").MSRResNetIteration(
            channels, config.model.width, config.model.num_blocks, config.scale, channels_last
        )
    else:
        model = _references("torch_gan_references").SNGANIteration(
            channels,
            config.model.latent_dim,
            config.model.g_width,
            config.model.d_width,
            config.n_critic,
            channels_last,
        )

    stacked = config.model.name == "sngan32"  # SNGANIteration takes (n_critic, B, C, H, W)

    def run(steps: int) -> None:
        for _ in range(steps):
            images = torch.from_numpy(next(iterator)["image"])
            if stacked and images.ndim == 4:  # n_critic 1: the pipeline stacks no batches
                images = images[None]
            model.step(images.permute(*range(images.ndim - 3), -1, -3, -2))

    return run


def _references(name: str) -> Any:
    """tests/NAME.py: PyTorch twins of the reference implementations, kept with the tests (the
    benchmarks run from the repository root, where `tests` is importable)."""
    return importlib.import_module(f"tests.{name}")


def torch_args(config: ml_collections.ConfigDict, channels: int) -> dict[str, int]:
    """The arguments of `tests.torch_dcgan.build` for a DCGAN case."""
    return {
        "image_size": config.image_size,
        "channels": channels,
        "latent_dim": config.model.latent_dim,
        "g_width": config.model.g_width,
        "d_width": config.model.d_width,
    }


def has_torch_reference(config: ml_collections.ConfigDict, settings: Settings) -> bool:
    """Whether a PyTorch twin of the case's step exists and can run (torch installed)."""
    if config.task == "restoration":
        plain = not (config.perceptual_weight or config.adversarial_weight)
        reference = config.model.name == "msrresnet" and config.pixel_loss == "l1" and plain
        return settings.torch and reference and torch_version() is not None
    sngan = config.model.name == "sngan32" and config.model.spectral_norm
    reference = config.model.name == "dcgan" or (
        sngan and config.loss == "hinge" and not config.gp_weight and not config.r1_weight
    )
    return settings.torch and reference and torch_version() is not None


def torch_version() -> str | None:
    """torch's version if it is installed, without importing it into a JAX-only run."""
    try:
        return importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return None
