"""PyTorch reference DCGAN, the pytorch/examples `dcgan` layout, for speed comparisons only.

Same layers as `cnngen_jax.models.dcgan` (one stride-2 block per doubling of the image size, no
biases, no BatchNorm after D's first layer), the reference's `weights_init` (conv N(0, 0.02),
BatchNorm N(1, 0.02) and bias 0), Adam(2e-4, 0.5, 0.999) and the reference iteration: a D step on
the real batch then on `fake.detach()`, then a G step, with BCE on logits. As in the reference,
the G step's backward also fills D's (unused) weight gradients. Importing this module needs torch.

`python -m tests.torch_dcgan '{JSON}'` is the fresh-process probe (`probe`) of
`python -m benchmarks.train_speed`.
"""

import dataclasses
import json
import math
import resource
import sys
import time
from typing import Any

import torch
from torch import nn


def _stride2_blocks(image_size: int) -> int:
    if image_size < 16 or image_size & (image_size - 1):
        raise ValueError(f"image_size={image_size} must be a power of two >= 16")
    return int(math.log2(image_size)) - 2


def generator(image_size: int, channels: int, latent_dim: int = 100, width: int = 64) -> nn.Module:
    """z of shape (B, latent_dim, 1, 1) -> images (B, channels, S, S) in [-1, 1]."""
    blocks = _stride2_blocks(image_size)
    features = width * 2 ** (blocks - 1)
    layers: list[nn.Module] = [nn.ConvTranspose2d(latent_dim, features, 4, 1, 0, bias=False)]
    layers += [nn.BatchNorm2d(features), nn.ReLU(True)]
    for _ in range(1, blocks):
        layers += [nn.ConvTranspose2d(features, features // 2, 4, 2, 1, bias=False)]
        features //= 2
        layers += [nn.BatchNorm2d(features), nn.ReLU(True)]
    layers += [nn.ConvTranspose2d(features, channels, 4, 2, 1, bias=False), nn.Tanh()]
    return nn.Sequential(*layers)


def discriminator(image_size: int, channels: int, width: int = 64) -> nn.Module:
    """Images (B, channels, S, S) -> logits (B,); the reference's final sigmoid is in the loss."""
    blocks = _stride2_blocks(image_size)
    layers: list[nn.Module] = []
    features = channels
    for i in range(blocks):
        layers.append(nn.Conv2d(features, width * 2**i, 4, 2, 1, bias=False))
        features = width * 2**i
        if i > 0:
            layers.append(nn.BatchNorm2d(features))
        layers.append(nn.LeakyReLU(0.2, inplace=True))
    layers += [nn.Conv2d(features, 1, 4, 1, 0, bias=False), nn.Flatten(0)]
    return nn.Sequential(*layers)


def weights_init(module: nn.Module) -> None:
    """The reference's initialisation."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@dataclasses.dataclass
class DCGAN:
    """Both networks, their optimizers and the loss; `step(real)` is one reference iteration."""

    netG: nn.Module
    netD: nn.Module
    optG: torch.optim.Optimizer
    optD: torch.optim.Optimizer
    latent_dim: int
    memory_format: torch.memory_format

    def step(self, real: torch.Tensor) -> tuple[float, float]:
        """One iteration on `real` (B, C, S, S) in [-1, 1]; returns (D loss, G loss)."""
        criterion = nn.functional.binary_cross_entropy_with_logits
        real = real.contiguous(memory_format=self.memory_format)
        ones = torch.ones(real.shape[0])
        zeros = torch.zeros(real.shape[0])
        self.netD.zero_grad()
        err_real = criterion(self.netD(real), ones)
        err_real.backward()
        noise = torch.randn(real.shape[0], self.latent_dim, 1, 1).contiguous(
            memory_format=self.memory_format
        )
        fake = self.netG(noise)
        err_fake = criterion(self.netD(fake.detach()), zeros)
        err_fake.backward()
        self.optD.step()
        self.netG.zero_grad()
        err_g = criterion(self.netD(fake), ones)
        err_g.backward()
        self.optG.step()
        return (err_real + err_fake).item(), err_g.item()


def build(
    image_size: int,
    channels: int,
    latent_dim: int = 100,
    g_width: int = 64,
    d_width: int = 64,
    channels_last: bool = False,
    seed: int = 0,
) -> DCGAN:
    """The reference pair with its optimizers, in NCHW (`contiguous`) or `channels_last` layout."""
    torch.manual_seed(seed)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    nets = []
    for net in (
        generator(image_size, channels, latent_dim, g_width),
        discriminator(image_size, channels, d_width),
    ):
        net.apply(weights_init)
        nets.append(net.to(memory_format=memory_format).train())
    net_g, net_d = nets
    adam = dict(lr=2e-4, betas=(0.5, 0.999))
    return DCGAN(
        net_g,
        net_d,
        torch.optim.Adam(net_g.parameters(), **adam),
        torch.optim.Adam(net_d.parameters(), **adam),
        latent_dim,
        memory_format,
    )


def probe(args: dict[str, Any]) -> dict[str, Any]:
    """Start-up and memory of a fresh process: build, then `steps` iterations on a random batch.

    `args` holds `build`'s arguments plus `batch_size` and `steps`; marks are unix times (torch
    is already imported when this runs).
    """
    marks = {"imported": time.time()}
    batch_size, steps = args.pop("batch_size"), args.pop("steps")
    model = build(**args)
    real = torch.rand(batch_size, args["channels"], args["image_size"], args["image_size"]) * 2 - 1
    marks["built"] = time.time()
    for i in range(steps):
        model.step(real)
        if i == 0:
            marks["first_step"] = time.time()
    return {"marks": marks, "max_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}


if __name__ == "__main__":
    print(json.dumps(probe(json.loads(sys.argv[1]))))
