"""PyTorch reference restoration networks, for parity tests only.

What: plain ``torch.nn`` versions of

* ESPCN (Shi et al. 2016, arXiv:1609.05158, sec. 3): ``ESPCN``;
* BasicSR's modified SRResNet: ``MSRResNet`` (with ``ResidualBlockNoBN`` and
  ``default_init_weights``);
* BasicSR's ``VGGStyleDiscriminator`` (the SRGAN / ESRGAN discriminator);
* DeepFill v2's SN-PatchGAN discriminator: ``SNPatchGANDiscriminator``.

Why: cnngen_jax/models/restoration.py is checked against these modules (same parameter counts,
same outputs given the same weights). Only tests import this file, and only when torch is
installed.

Module and attribute names follow the sources (``conv_first``, ``body.3.conv1``, ``bn2_1``,
``first_part.0``, ...), so their ``state_dict``s load here.

Sources, read rather than copied:

* github.com/yjn870/ESPCN-pytorch ``models.py`` (layout: ``first_part``, ``last_part``).
* github.com/XPixelGroup/BasicSR ``basicsr/archs/srresnet_arch.py``, ``arch_util.py``,
  ``discriminator_arch.py``.
* github.com/JiahuiYu/generative_inpainting ``inpaint_model.py``
  (``build_sn_patch_gan_discriminator``) and ``inpaint_ops.py`` (``dis_conv``: spectrally
  normalised 5x5 stride-2 'SAME' convolution, ``tf.nn.leaky_relu`` with slope 0.2), and its
  PyTorch port github.com/nipponjo/deepfillv2-pytorch ``model/networks.py`` (``DConv``,
  ``Discriminator``: padding 2 each side, ``nn.Flatten`` of the last map).

Deliberate differences from the sources: ``VGGStyleDiscriminator`` takes any ``input_size``
divisible by 32 with BasicSR's five stages (BasicSR accepts 128, identical here, or 256, where it
adds a sixth stage); ``SNPatchGANDiscriminator`` returns the last feature map unflattened, and
uses ``torch.nn.utils.spectral_norm`` (stored ``weight_u`` and ``weight_v``; no power iteration
in eval mode) where the port uses the parametrization API.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ESPCN",
    "MSRResNet",
    "ResidualBlockNoBN",
    "SNPatchGANDiscriminator",
    "VGGStyleDiscriminator",
    "default_init_weights",
]


@torch.no_grad()
def default_init_weights(modules: list[nn.Module], scale: float = 1.0) -> None:
    """BasicSR's initialisation: kaiming_normal_ (fan_in, a = 0) weights times ``scale``, zero
    biases, on every Conv2d inside ``modules``."""
    for module in modules:
        for m in module.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
                m.weight.mul_(scale)
                if m.bias is not None:
                    m.bias.zero_()


class ESPCN(nn.Module):
    """Conv 5x5 (n1) -> tanh -> conv 3x3 (n1 / 2) -> tanh -> conv 3x3 (out * r^2) ->
    PixelShuffle(r). PyTorch's default initialisation."""

    def __init__(self, scale: int, in_channels: int, out_channels: int, n1: int = 64) -> None:
        super().__init__()
        self.first_part = nn.Sequential(
            nn.Conv2d(in_channels, n1, 5, padding=2),
            nn.Tanh(),
            nn.Conv2d(n1, n1 // 2, 3, padding=1),
            nn.Tanh(),
        )
        self.last_part = nn.Sequential(
            nn.Conv2d(n1 // 2, out_channels * scale**2, 3, padding=1), nn.PixelShuffle(scale)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.last_part(self.first_part(x))


class ResidualBlockNoBN(nn.Module):
    """x + conv2(relu(conv1(x))), both 3x3 with bias, initialised at scale 0.1."""

    def __init__(self, num_feat: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        default_init_weights([self.conv1, self.conv2], 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))


class MSRResNet(nn.Module):
    """BasicSR's MSRResNet (x2, x3: one pixel-shuffle stage; x4: two x2 stages), every conv
    initialised by default_init_weights at scale 0.1. Defaults are BasicSR's."""

    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        num_feat: int = 64,
        num_block: int = 16,
        upscale: int = 4,
    ) -> None:
        super().__init__()
        if upscale not in (2, 3, 4):
            raise ValueError(f"upscale must be 2, 3 or 4, got {upscale}")
        self.upscale = upscale
        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*(ResidualBlockNoBN(num_feat) for _ in range(num_block)))
        stage = 2 if upscale == 4 else upscale
        self.upconv1 = nn.Conv2d(num_feat, num_feat * stage**2, 3, 1, 1)
        if upscale == 4:
            self.upconv2 = nn.Conv2d(num_feat, num_feat * 4, 3, 1, 1)
        self.pixel_shuffle = nn.PixelShuffle(stage)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)
        # BasicSR's order of draws: upconv2 last, so a seed gives BasicSR's weights.
        default_init_weights([self.conv_first, self.upconv1, self.conv_hr, self.conv_last], 0.1)
        if upscale == 4:
            default_init_weights([self.upconv2], 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = F.leaky_relu(self.conv_first(x), 0.1)
        out = self.body(feat)
        out = F.leaky_relu(self.pixel_shuffle(self.upconv1(out)), 0.1)
        if self.upscale == 4:
            out = F.leaky_relu(self.pixel_shuffle(self.upconv2(out)), 0.1)
        out = self.conv_last(F.leaky_relu(self.conv_hr(out), 0.1))
        base = F.interpolate(x, scale_factor=self.upscale, mode="bilinear", align_corners=False)
        return out + base


class VGGStyleDiscriminator(nn.Module):
    """conv0_0 (3x3, bias) -> LReLU(0.2); then conv{i}_0 (3x3 s1) and conv{i}_1 (4x4 s2, pad 1),
    no bias, each -> BatchNorm -> LReLU (conv0_1 / bn0_1 in stage 0), widths num_feat x (1, 2,
    4, 8, 8); flatten (C, H, W) -> linear1 (100) -> LReLU -> linear2 (1). PyTorch default init."""

    def __init__(self, num_in_ch: int = 3, num_feat: int = 64, input_size: int = 128) -> None:
        super().__init__()
        if input_size % 32:
            raise ValueError(f"input_size must be divisible by 32, got {input_size}")
        widths = [num_feat * m for m in (1, 2, 4, 8, 8)]
        self.conv0_0 = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1, bias=True)
        self.conv0_1 = nn.Conv2d(num_feat, num_feat, 4, 2, 1, bias=False)
        self.bn0_1 = nn.BatchNorm2d(num_feat)
        for i in range(1, 5):
            setattr(self, f"conv{i}_0", nn.Conv2d(widths[i - 1], widths[i], 3, 1, 1, bias=False))
            setattr(self, f"bn{i}_0", nn.BatchNorm2d(widths[i]))
            setattr(self, f"conv{i}_1", nn.Conv2d(widths[i], widths[i], 4, 2, 1, bias=False))
            setattr(self, f"bn{i}_1", nn.BatchNorm2d(widths[i]))
        side = input_size // 32
        self.linear1 = nn.Linear(widths[-1] * side * side, 100)
        self.linear2 = nn.Linear(100, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = F.leaky_relu(self.conv0_0(x), 0.2)
        names = ["0_1"] + [f"{i}_{j}" for i in range(1, 5) for j in range(2)]
        for name in names:
            conv, bn = getattr(self, f"conv{name}"), getattr(self, f"bn{name}")
            feat = F.leaky_relu(bn(conv(feat)), 0.2)
        feat = F.leaky_relu(self.linear1(feat.flatten(1)), 0.2)
        return self.linear2(feat)


class SNPatchGANDiscriminator(nn.Module):
    """conv1..conv6: spectrally normalised 5x5 stride-2 convolutions (padding 2, bias), widths
    cnum x (1, 2, 4, 4, 4, 4), each followed by LeakyReLU(0.2). Returns the (N, C, H', W') map,
    every element a hinge-loss logit. Glorot-uniform kernels and zero biases, as TF's defaults in
    the original."""

    def __init__(self, in_channels: int = 4, cnum: int = 64) -> None:
        super().__init__()
        widths = [in_channels] + [cnum * m for m in (1, 2, 4, 4, 4, 4)]
        for i in range(6):
            conv = nn.Conv2d(widths[i], widths[i + 1], 5, 2, 2)
            nn.init.xavier_uniform_(conv.weight)
            nn.init.zeros_(conv.bias)
            setattr(self, f"conv{i + 1}", nn.utils.spectral_norm(conv))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(6):
            x = F.leaky_relu(getattr(self, f"conv{i + 1}")(x), 0.2)
        return x


class MSRResNetIteration:
    """One BasicSR-style training iteration of MSRResNet: HR batch -> LR by antialiased bicubic
    downsampling (torch's, not MATLAB's: same cost), forward, L1 loss, backward, Adam(2e-4, (0.9,
    0.99)). `channels_last` converts the network and inputs to that memory format."""

    def __init__(
        self, channels: int = 3, num_feat: int = 64, num_block: int = 16, upscale: int = 4,
        channels_last: bool = False,
    ) -> None:  # fmt: skip
        self.network = MSRResNet(channels, channels, num_feat, num_block, upscale).train()
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.network.to(memory_format=self.memory_format)
        self.optimizer = torch.optim.Adam(self.network.parameters(), 2e-4, betas=(0.9, 0.99))
        self.upscale = upscale

    def step(self, hr: torch.Tensor) -> float:
        """One iteration on an HR batch (B, C, H, W)."""
        hr = hr.contiguous(memory_format=self.memory_format)
        with torch.no_grad():
            lr = F.interpolate(hr, scale_factor=1 / self.upscale, mode="bicubic", antialias=True)
        self.optimizer.zero_grad(set_to_none=True)
        loss = F.l1_loss(self.network(lr), hr)
        loss.backward()
        self.optimizer.step()
        return loss.item()
