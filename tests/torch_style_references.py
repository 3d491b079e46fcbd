"""PyTorch reference of fast neural style transfer, for parity tests only.

What: plain ``torch`` versions of pytorch/examples' ``fast_neural_style``:

* ``TransformerNet`` (with ``ConvLayer``, ``ResidualBlock``, ``UpsampleConvLayer``), from
  ``neural_style/transformer_net.py``;
* ``Vgg16``, from ``neural_style/vgg.py``: torchvision's ``vgg16().features`` cut into the
  slices ending at relu1_2, relu2_2, relu3_3 and relu4_3, built here without torchvision from
  the ``features.{i}`` state-dict entries;
* ``normalize_batch``, ``gram_matrix`` (``neural_style/utils.py``) and ``losses``, the content
  and style terms of ``neural_style.py``'s ``train``.

Why: cnngen_jax/models/transformer_net.py and cnngen_jax/tasks/style.py are checked against
these (same parameter count, same outputs and losses given the same weights). Only tests import
this file, and only when torch is installed.

Sources, read rather than copied: github.com/pytorch/examples ``fast_neural_style/neural_style``
(``transformer_net.py``, ``vgg.py``, ``utils.py``, ``neural_style.py``). Deliberate difference:
``Vgg16``'s ReLUs are not in place, so that no recorded activation is overwritten.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["TransformerNet", "Vgg16", "gram_matrix", "losses", "normalize_batch"]


class ConvLayer(nn.Module):
    """ReflectionPad2d(kernel_size // 2), then Conv2d with ``stride``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int) -> None:
        super().__init__()
        self.reflection_pad = nn.ReflectionPad2d(kernel_size // 2)
        self.conv2d = nn.Conv2d(in_channels, out_channels, kernel_size, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2d(self.reflection_pad(x))


class ResidualBlock(nn.Module):
    """x + in2(conv2(relu(in1(conv1(x))))), 3x3 convolutions."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = ConvLayer(channels, channels, kernel_size=3, stride=1)
        self.in1 = nn.InstanceNorm2d(channels, affine=True)
        self.conv2 = ConvLayer(channels, channels, kernel_size=3, stride=1)
        self.in2 = nn.InstanceNorm2d(channels, affine=True)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.in1(self.conv1(x)))
        return self.in2(self.conv2(out)) + x


class UpsampleConvLayer(nn.Module):
    """Nearest-neighbour upsampling by ``upsample``, then a ``ConvLayer``."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, stride: int, upsample: int
    ) -> None:
        super().__init__()
        self.upsample = upsample
        self.reflection_pad = nn.ReflectionPad2d(kernel_size // 2)
        self.conv2d = nn.Conv2d(in_channels, out_channels, kernel_size, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.interpolate(x, mode="nearest", scale_factor=self.upsample)
        return self.conv2d(self.reflection_pad(x))


class TransformerNet(nn.Module):
    """Johnson et al.'s network as pytorch/examples builds it (``width`` 32 there)."""

    def __init__(self, channels: int = 3, width: int = 32, num_blocks: int = 5) -> None:
        super().__init__()
        self.conv1 = ConvLayer(channels, width, kernel_size=9, stride=1)
        self.in1 = nn.InstanceNorm2d(width, affine=True)
        self.conv2 = ConvLayer(width, 2 * width, kernel_size=3, stride=2)
        self.in2 = nn.InstanceNorm2d(2 * width, affine=True)
        self.conv3 = ConvLayer(2 * width, 4 * width, kernel_size=3, stride=2)
        self.in3 = nn.InstanceNorm2d(4 * width, affine=True)
        for i in range(1, num_blocks + 1):
            setattr(self, f"res{i}", ResidualBlock(4 * width))
        self.num_blocks = num_blocks
        self.deconv1 = UpsampleConvLayer(4 * width, 2 * width, kernel_size=3, stride=1, upsample=2)
        self.in4 = nn.InstanceNorm2d(2 * width, affine=True)
        self.deconv2 = UpsampleConvLayer(2 * width, width, kernel_size=3, stride=1, upsample=2)
        self.in5 = nn.InstanceNorm2d(width, affine=True)
        self.deconv3 = ConvLayer(width, channels, kernel_size=9, stride=1)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.in1(self.conv1(x)))
        y = self.relu(self.in2(self.conv2(y)))
        y = self.relu(self.in3(self.conv3(y)))
        for i in range(1, self.num_blocks + 1):
            y = getattr(self, f"res{i}")(y)
        y = self.relu(self.in4(self.deconv1(y)))
        y = self.relu(self.in5(self.deconv2(y)))
        return self.deconv3(y)


# torchvision's vgg16 `features` up to relu4_3 (index 22): "M" is a 2x2 max pool.
_VGG16_TO_RELU4_3 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512]
_SLICE_ENDS = (4, 9, 16, 23)  # relu1_2, relu2_2, relu3_3, relu4_3 close slices 1..4


class Vgg16(nn.Module):
    """The four slices of pytorch/examples' Vgg16; ``forward`` returns their outputs."""

    def __init__(self) -> None:
        super().__init__()
        layers, channels = [], 3
        for value in _VGG16_TO_RELU4_3:
            if value == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(channels, value, kernel_size=3, padding=1), nn.ReLU()]
                channels = value
        self.features = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outputs, start = [], 0
        for end in _SLICE_ENDS:
            for layer in self.features[start:end]:
                x = layer(x)
            outputs.append(x)
            start = end
        return tuple(outputs)


def normalize_batch(batch: torch.Tensor) -> torch.Tensor:
    """Pixels in 0..255 to ImageNet-standardised inputs."""
    mean = batch.new_tensor([0.485, 0.456, 0.406]).view(-1, 1, 1)
    std = batch.new_tensor([0.229, 0.224, 0.225]).view(-1, 1, 1)
    return (batch / 255.0 - mean) / std


def gram_matrix(y: torch.Tensor) -> torch.Tensor:
    b, ch, h, w = y.size()
    features = y.view(b, ch, w * h)
    return features.bmm(features.transpose(1, 2)) / (ch * h * w)


def losses(
    vgg: Vgg16,
    x: torch.Tensor,
    y: torch.Tensor,
    style: torch.Tensor,
    content_weight: float = 1e5,
    style_weight: float = 1e10,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(content loss, style loss) of ``neural_style.py``'s ``train`` for content images ``x``,
    their stylised ``y`` (both (N, 3, H, W) in 0..255) and the style image ``style`` (1, 3,
    H', W', 0..255; repeated to the batch as there)."""
    mse = nn.MSELoss()
    gram_style = [gram_matrix(f) for f in vgg(normalize_batch(style.repeat(len(x), 1, 1, 1)))]
    features_y = vgg(normalize_batch(y))
    features_x = vgg(normalize_batch(x))
    content = content_weight * mse(features_y[1], features_x[1])
    style_loss = sum(mse(gram_matrix(f), g) for f, g in zip(features_y, gram_style, strict=True))
    return content, style_weight * style_loss
