"""PyTorch reference GAN networks, for parity tests only.

What: plain ``torch.nn`` versions of

* Mimicry's SNGAN ResNet networks: ``SNGANGenerator32`` / ``SNGANDiscriminator32`` and
  ``SNGANGenerator64`` / ``SNGANDiscriminator64``, and its class-conditional cGAN-PD pair
  ``CGANPDGenerator32`` / ``CGANPDDiscriminator32`` (conditional BatchNorm, projection);
* the "standard CNN" of Miyato et al. 2018 (Spectral Normalization for GANs, ICLR 2018,
  Appendix B.4, Table 3): ``StandardCNNGenerator`` / ``StandardCNNDiscriminator``. Mimicry has no
  such network (its ``DCGAN*`` nets are ResNets), so the defaults follow the paper, and the
  arguments also select the StudioGAN and chainer-gan-lib layouts (see those classes).

Why: the cnngen_jax Flax networks are checked against these modules (same layer shapes, same
trainable-parameter counts, same outputs given the same weights). Only tests import this file,
and only when torch is installed (``pytest.importorskip("torch")``).

The Mimicry classes keep Mimicry's attribute names (``l1``, ``block2.c1``, ``b5``, ...), so a
Mimicry ``state_dict`` loads into them. They also build and initialise their layers in
Mimicry's order, so with the same ``torch.manual_seed`` they get the same weights as Mimicry.

Sources, read rather than copied:

* github.com/kwotsin/mimicry, commit a7fda06c (2022-08-07):
  ``torch_mimicry/nets/sngan/sngan_32.py``, ``sngan_64.py``, ``sngan_base.py``,
  ``torch_mimicry/nets/cgan_pd/cgan_pd_32.py``;
  ``torch_mimicry/modules/resblocks.py``, ``layers.py``, ``spectral_norm.py``.
* github.com/POSTECH-CVLab/PyTorch-StudioGAN, commit 947b35e9 (2023-08-06):
  ``src/models/deep_conv.py``, ``src/utils/ops.py``, ``src/config.py``.
* github.com/pfnet-research/chainer-gan-lib, commit cf9efba5: ``common/net.py``
  (``DCGANGenerator``, ``SNDCGANDiscriminator``); github.com/pfnet-research/sngan_projection,
  commit e84b1a5f: ``dis_models/resblocks.py``, ``gen_models/resblocks.py``.
* Miyato et al. 2018, arXiv:1802.05957: Table 3 (standard CNN) and Figure 3 (the D layer widths).

Spectral norm: Mimicry's ``SNConv2d`` / ``SNLinear`` / ``SNEmbedding`` (``modules/layers.py``)
default to ``torch.nn.utils.spectral_norm`` (dim 0, one power iteration, eps 1e-12), which is
what this file uses. Mimicry's own ``modules/spectral_norm.py`` layers, used only with
``default=False``, behave differently: ``u`` is an unnormalised ``randn(1, out)`` buffer and no
``v`` is stored; the power iteration also runs in eval mode, although the stored ``u`` changes only
in training; and they add a ``sn_sigma`` buffer. torch draws ``u`` and ``v`` from N(0, 1),
normalises them, stores both, and skips the power iteration in eval mode. Neither adds a trainable
parameter, so the parameter counts are the same either way. One catch: ``torch_mimicry.modules``
star-imports ``spectral_norm.py`` after ``layers.py``, so ``from torch_mimicry.modules import
SNLinear, SNEmbedding`` returns the custom classes. ``cgan_pd_32.py`` imports them that way, so
its ``l5`` and ``l_y`` use the custom spectral norm. SNGAN imports ``modules.layers.SNLinear``,
and ``resblocks.py`` is imported before that star import runs, so both get torch's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "CGANPDDiscriminator32",
    "CGANPDGenerator32",
    "ConditionalBatchNorm2d",
    "DBlock",
    "DBlockOptimized",
    "GBlock",
    "SNGANDiscriminator32",
    "SNGANDiscriminator64",
    "SNGANGenerator32",
    "SNGANGenerator64",
    "StandardCNNDiscriminator",
    "StandardCNNGenerator",
    "count_parameters",
]


def count_parameters(module: nn.Module) -> int:
    """Counts trainable parameters. With spectral norm this is ``weight_orig`` (a parameter), not
    the ``weight_u`` / ``weight_v`` buffers; BatchNorm running statistics are buffers too."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def _conv(c_in: int, c_out: int, k: int, s: int, p: int, sn: bool) -> nn.Module:
    conv = nn.Conv2d(c_in, c_out, k, s, padding=p)
    return nn.utils.spectral_norm(conv) if sn else conv


def _xavier(module: nn.Module, gain: float) -> None:
    # Mimicry calls xavier_uniform_(layer.weight.data) *after* wrapping the layer in spectral norm.
    # At that point torch's `weight` is a plain attribute that shares storage with `weight_orig`,
    # so the init lands on `weight_orig`. We write to `weight_orig` directly. Biases keep PyTorch's
    # default init, U(-1/sqrt(fan_in), 1/sqrt(fan_in)); Mimicry never sets them to zero.
    weight = module.weight_orig if hasattr(module, "weight_orig") else module.weight
    nn.init.xavier_uniform_(weight.data, gain)


def _upsample2x(x: torch.Tensor) -> torch.Tensor:
    # Mimicry GBlock._upsample_conv uses bilinear with align_corners=False. The chainer original
    # (sngan_projection gen_models/resblocks.py) uses nearest (F.unpooling_2d).
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class ConditionalBatchNorm2d(nn.Module):
    """Mimicry's ConditionalBatchNorm2d: BatchNorm2d without affine, then gamma and beta looked
    up from one Embedding(num_classes, 2 C) row (gamma first, initialised N(1, 0.02); beta 0)."""

    def __init__(self, num_features: int, num_classes: int) -> None:
        super().__init__()
        self.num_features = num_features
        self.bn = nn.BatchNorm2d(num_features, affine=False)
        self.embed = nn.Embedding(num_classes, num_features * 2)
        self.embed.weight.data[:, :num_features].normal_(1, 0.02)
        self.embed.weight.data[:, num_features:].zero_()

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.embed(y).chunk(2, 1)
        c = self.num_features
        return gamma.view(-1, c, 1, 1) * self.bn(x) + beta.view(-1, c, 1, 1)


# --------------------------------------------------------------------------------------------
# Mimicry residual blocks (torch_mimicry/modules/resblocks.py).
# --------------------------------------------------------------------------------------------


class GBlock(nn.Module):
    """Generator residual block, pre-activation, as in Mimicry:
    residual = BN(in) -> ReLU -> [2x bilinear] -> conv3x3(in->hidden) -> BN(hidden) -> ReLU ->
    conv3x3(hidden->out); shortcut = [2x bilinear] -> conv1x1(in->out) when in != out or
    upsample, else identity. ``hidden`` defaults to ``out``. Every conv has a bias. c1 and c2 are
    xavier_uniform with gain sqrt(2), c_sc with gain 1. BN uses torch defaults (eps 1e-5,
    momentum 0.1, affine)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hidden_channels: int | None = None,
        upsample: bool = False,
        spectral_norm: bool = False,
        num_classes: int = 0,
    ) -> None:
        super().__init__()
        hidden = out_channels if hidden_channels is None else hidden_channels
        self.upsample = upsample
        self.learnable_sc = in_channels != out_channels or upsample
        # Construction order follows Mimicry (c1, c2, b1, b2, inits, c_sc), so with the same seed
        # the random draws match.
        self.c1 = _conv(in_channels, hidden, 3, 1, 1, spectral_norm)
        self.c2 = _conv(hidden, out_channels, 3, 1, 1, spectral_norm)
        if num_classes:
            self.b1 = ConditionalBatchNorm2d(in_channels, num_classes)
            self.b2 = ConditionalBatchNorm2d(hidden, num_classes)
        else:
            self.b1 = nn.BatchNorm2d(in_channels)
            self.b2 = nn.BatchNorm2d(hidden)
        _xavier(self.c1, math.sqrt(2.0))
        _xavier(self.c2, math.sqrt(2.0))
        if self.learnable_sc:
            self.c_sc = _conv(in_channels, out_channels, 1, 1, 0, spectral_norm)
            _xavier(self.c_sc, 1.0)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        def norm(layer, h):
            return layer(h) if y is None else layer(h, y)

        h = F.relu(norm(self.b1, x))
        if self.upsample:
            h = _upsample2x(h)
        h = self.c1(h)
        h = self.c2(F.relu(norm(self.b2, h)))
        if not self.learnable_sc:
            return h + x
        sc = _upsample2x(x) if self.upsample else x
        return h + self.c_sc(sc)


class DBlock(nn.Module):
    """Discriminator residual block, as in Mimicry:
    residual = ReLU -> conv3x3(in->hidden) -> ReLU -> conv3x3(hidden->out) -> [avgpool 2];
    shortcut = conv1x1(in->out) -> [avgpool 2] (conv, then pool) when in != out or downsample,
    else identity. ``hidden`` defaults to ``in`` (unlike GBlock). Spectral norm is on every conv by
    default. Inits as GBlock.

    ``relu_shortcut``: Mimicry's residual path starts with ``nn.ReLU(inplace=True)`` on the
    block input itself, so ``forward`` (residual first, then shortcut) passes relu(x), not x,
    to the shortcut (checked against Mimicry's code with torch 2.13). True (the default)
    reproduces Mimicry. False gives the chainer original (sngan_projection
    dis_models/resblocks.py), whose shortcut sees the raw x."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hidden_channels: int | None = None,
        downsample: bool = False,
        spectral_norm: bool = True,
        relu_shortcut: bool = True,
    ) -> None:
        super().__init__()
        hidden = in_channels if hidden_channels is None else hidden_channels
        self.downsample = downsample
        self.learnable_sc = in_channels != out_channels or downsample
        self.relu_shortcut = relu_shortcut
        self.c1 = _conv(in_channels, hidden, 3, 1, 1, spectral_norm)
        self.c2 = _conv(hidden, out_channels, 3, 1, 1, spectral_norm)
        _xavier(self.c1, math.sqrt(2.0))
        _xavier(self.c2, math.sqrt(2.0))
        if self.learnable_sc:
            self.c_sc = _conv(in_channels, out_channels, 1, 1, 0, spectral_norm)
            _xavier(self.c_sc, 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xr = F.relu(x)
        h = self.c2(F.relu(self.c1(xr)))
        if self.downsample:
            h = F.avg_pool2d(h, 2)
        sc = xr if self.relu_shortcut else x
        if self.learnable_sc:
            sc = self.c_sc(sc)
            if self.downsample:
                sc = F.avg_pool2d(sc, 2)
        return h + sc


class DBlockOptimized(nn.Module):
    """First discriminator block (no leading ReLU), as in Mimicry:
    residual = conv3x3(in->out) -> ReLU -> conv3x3(out->out) -> avgpool 2;
    shortcut = avgpool 2 -> conv1x1(in->out) (pool, then conv). Inits as GBlock."""

    def __init__(self, in_channels: int, out_channels: int, spectral_norm: bool = True) -> None:
        super().__init__()
        self.c1 = _conv(in_channels, out_channels, 3, 1, 1, spectral_norm)
        self.c2 = _conv(out_channels, out_channels, 3, 1, 1, spectral_norm)
        self.c_sc = _conv(in_channels, out_channels, 1, 1, 0, spectral_norm)
        _xavier(self.c1, math.sqrt(2.0))
        _xavier(self.c2, math.sqrt(2.0))
        _xavier(self.c_sc, 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.avg_pool2d(self.c2(F.relu(self.c1(x))), 2)
        return h + self.c_sc(F.avg_pool2d(x, 2))


# --------------------------------------------------------------------------------------------
# Mimicry SNGAN (torch_mimicry/nets/sngan/sngan_32.py, sngan_64.py). Loss: hinge.
# --------------------------------------------------------------------------------------------


class SNGANGenerator32(nn.Module):
    """Mimicry SNGANGenerator32: Linear(nz, 4*4*ngf) -> view (N, ngf, 4, 4) -> 3 x GBlock(ngf,
    ngf, up) -> BN(ngf) -> ReLU -> conv3x3(ngf->3) -> tanh. No spectral norm in G. l1 and c5 are
    xavier_uniform with gain 1, with default biases. Output (N, 3, 32, 32)."""

    def __init__(self, nz: int = 128, ngf: int = 256, bottom_width: int = 4) -> None:
        super().__init__()
        self.nz, self.ngf, self.bottom_width = nz, ngf, bottom_width
        self.l1 = nn.Linear(nz, bottom_width**2 * ngf)
        self.block2 = GBlock(ngf, ngf, upsample=True)
        self.block3 = GBlock(ngf, ngf, upsample=True)
        self.block4 = GBlock(ngf, ngf, upsample=True)
        self.b5 = nn.BatchNorm2d(ngf)
        self.c5 = nn.Conv2d(ngf, 3, 3, 1, padding=1)
        nn.init.xavier_uniform_(self.l1.weight.data, 1.0)
        nn.init.xavier_uniform_(self.c5.weight.data, 1.0)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.l1(z).view(z.shape[0], -1, self.bottom_width, self.bottom_width)
        h = self.block4(self.block3(self.block2(h)))
        return torch.tanh(self.c5(F.relu(self.b5(h))))


class SNGANDiscriminator32(nn.Module):
    """Mimicry SNGANDiscriminator32: DBlockOptimized(3, ndf) [32->16] -> DBlock(ndf, ndf, down)
    [16->8] -> DBlock(ndf, ndf) -> DBlock(ndf, ndf) -> ReLU -> global *sum* pool over H, W ->
    SNLinear(ndf, 1) (with bias; xavier_uniform gain 1). Spectral norm on every layer.
    Output (N, 1)."""

    def __init__(self, ndf: int = 128, relu_shortcut: bool = True) -> None:
        super().__init__()
        self.ndf = ndf
        self.block1 = DBlockOptimized(3, ndf)
        self.block2 = DBlock(ndf, ndf, downsample=True, relu_shortcut=relu_shortcut)
        self.block3 = DBlock(ndf, ndf, downsample=False, relu_shortcut=relu_shortcut)
        self.block4 = DBlock(ndf, ndf, downsample=False, relu_shortcut=relu_shortcut)
        self.l5 = nn.utils.spectral_norm(nn.Linear(ndf, 1))
        _xavier(self.l5, 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.block4(self.block3(self.block2(self.block1(x))))
        h = torch.sum(F.relu(h), dim=(2, 3))
        return self.l5(h)


class SNGANGenerator64(nn.Module):
    """Mimicry SNGANGenerator64: Linear(nz, 4*4*ngf) -> view (N, ngf, 4, 4) -> GBlock ngf->ngf/2
    -> ngf/4 -> ngf/8 -> ngf/16 (each 2x up) -> BN(ngf/16) -> ReLU -> conv3x3(ngf/16->3) -> tanh.
    Defaults ngf=1024, so the blocks run 1024->512->256->128->64. Output (N, 3, 64, 64)."""

    def __init__(self, nz: int = 128, ngf: int = 1024, bottom_width: int = 4) -> None:
        super().__init__()
        self.nz, self.ngf, self.bottom_width = nz, ngf, bottom_width
        self.l1 = nn.Linear(nz, bottom_width**2 * ngf)
        self.block2 = GBlock(ngf, ngf >> 1, upsample=True)
        self.block3 = GBlock(ngf >> 1, ngf >> 2, upsample=True)
        self.block4 = GBlock(ngf >> 2, ngf >> 3, upsample=True)
        self.block5 = GBlock(ngf >> 3, ngf >> 4, upsample=True)
        self.b6 = nn.BatchNorm2d(ngf >> 4)
        self.c6 = nn.Conv2d(ngf >> 4, 3, 3, 1, padding=1)
        nn.init.xavier_uniform_(self.l1.weight.data, 1.0)
        nn.init.xavier_uniform_(self.c6.weight.data, 1.0)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.l1(z).view(z.shape[0], -1, self.bottom_width, self.bottom_width)
        h = self.block5(self.block4(self.block3(self.block2(h))))
        return torch.tanh(self.c6(F.relu(self.b6(h))))


class SNGANDiscriminator64(nn.Module):
    """Mimicry SNGANDiscriminator64: DBlockOptimized(3, ndf/16) [64->32] -> DBlock ndf/16->ndf/8
    -> ndf/4 -> ndf/2 -> ndf, all downsampling [32->16->8->4->2] -> ReLU -> global sum pool ->
    SNLinear(ndf, 1). Defaults ndf=1024 (widths 64, 128, 256, 512, 1024). A DBlock's hidden
    width is its *input* width (e.g. block5 is 512->512->1024)."""

    def __init__(self, ndf: int = 1024, relu_shortcut: bool = True) -> None:
        super().__init__()
        self.ndf = ndf
        kw = {"downsample": True, "relu_shortcut": relu_shortcut}
        self.block1 = DBlockOptimized(3, ndf >> 4)
        self.block2 = DBlock(ndf >> 4, ndf >> 3, **kw)
        self.block3 = DBlock(ndf >> 3, ndf >> 2, **kw)
        self.block4 = DBlock(ndf >> 2, ndf >> 1, **kw)
        self.block5 = DBlock(ndf >> 1, ndf, **kw)
        self.l6 = nn.utils.spectral_norm(nn.Linear(ndf, 1))
        _xavier(self.l6, 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.block5(self.block4(self.block3(self.block2(self.block1(x)))))
        h = torch.sum(F.relu(h), dim=(2, 3))
        return self.l6(h)


# --------------------------------------------------------------------------------------------
# Standard CNN of Miyato et al. 2018, Table 3 (CIFAR-10: Mg = 4, M = 32).
# --------------------------------------------------------------------------------------------


def _init_standard(module: nn.Module, init: str) -> None:
    for m in module.modules():
        if not isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            continue
        weight = m.weight_orig if hasattr(m, "weight_orig") else m.weight
        if init == "normal":  # chainer-gan-lib: initializers.Normal(0.02), zero bias
            nn.init.normal_(weight, 0.0, 0.02)
        elif init == "ortho":  # StudioGAN default (g_init = d_init = "ortho"), zero bias
            nn.init.orthogonal_(weight)
        elif init == "default":  # keep torch's default init
            continue
        else:
            raise ValueError(f"unknown init {init!r}")
        if m.bias is not None:
            nn.init.zeros_(m.bias)


class StandardCNNGenerator(nn.Module):
    """SNGAN paper Table 3(a): z (nz=128) -> dense -> Mg x Mg x widths[0] -> for each next width:
    deconv 4x4 stride 2 pad 1 -> BN -> ReLU -> conv3x3 stride 1 pad 1 (widths[-1] -> 3) -> tanh.
    Defaults: widths (512, 256, 128, 64), Mg = bottom_width = 4, so the output is 32x32.
    All layers have biases; no spectral norm in G.

    ``dense_bn_relu``: Table 3 lists no BN or ReLU after the dense layer, and StudioGAN's
    ``deep_conv.Generator`` has none (default False). chainer-gan-lib's ``DCGANGenerator`` applies
    BatchNormalization over the Mg*Mg*512 dense features, then ReLU, before the reshape (True:
    BatchNorm1d(Mg*Mg*widths[0]) + ReLU).
    BN: torch defaults eps 1e-5, momentum 0.1. StudioGAN uses eps 1e-4, momentum 0.1; chainer
    uses eps 2e-5, decay 0.9 (= torch momentum 0.1).
    ``init``: "normal" = N(0, 0.02) weights, zero biases (chainer-gan-lib); "ortho" = orthogonal
    weights, zero biases (StudioGAN); "default" = torch's default init. The paper does not state
    an init."""

    def __init__(
        self,
        nz: int = 128,
        widths: Sequence[int] = (512, 256, 128, 64),
        bottom_width: int = 4,
        dense_bn_relu: bool = False,
        bn_eps: float = 1e-5,
        bn_momentum: float = 0.1,
        init: str = "normal",
    ) -> None:
        super().__init__()
        widths = tuple(widths)
        self.nz, self.widths, self.bottom_width = nz, widths, bottom_width
        self.linear = nn.Linear(nz, bottom_width * bottom_width * widths[0])
        self.dense_bn = (
            nn.BatchNorm1d(bottom_width * bottom_width * widths[0], bn_eps, bn_momentum)
            if dense_bn_relu
            else None
        )
        layers: list[nn.Module] = []
        for c_in, c_out in zip(widths[:-1], widths[1:], strict=True):
            layers += [
                nn.ConvTranspose2d(c_in, c_out, 4, 2, 1),
                nn.BatchNorm2d(c_out, bn_eps, bn_momentum),
                nn.ReLU(),
            ]
        layers += [nn.Conv2d(widths[-1], 3, 3, 1, 1), nn.Tanh()]
        self.main = nn.Sequential(*layers)
        _init_standard(self, init)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.linear(z)
        if self.dense_bn is not None:
            h = F.relu(self.dense_bn(h))
        h = h.view(z.shape[0], self.widths[0], self.bottom_width, self.bottom_width)
        return self.main(h)


class StandardCNNDiscriminator(nn.Module):
    """SNGAN paper Table 3(b): convs alternating 3x3 stride 1 pad 1 and 4x4 stride 2 pad 1, each
    followed by LeakyReLU(0.1) (the slope is in the Table 3 caption), then dense -> 1. Spectral norm
    on every conv and on the dense layer; all layers have biases; no BN.

    ``widths`` (defaults are the paper's): (64, 64, 128, 128, 256, 256, 512), i.e. the stride-2
    convs keep the width. Figure 3 of the paper (singular-value counts 27, 64, 128, 128, 256, 256,
    512 for layers 1-7) confirms this. StudioGAN ``deep_conv`` uses the same widths.
    chainer-gan-lib ``SNDCGANDiscriminator`` instead doubles the width in the stride-2 convs:
    (64, 128, 128, 256, 256, 512, 512).
    ``head``: "flatten" = dense over the flattened (M/8)^2 * widths[-1] features (paper "dense",
    chainer-gan-lib); "sum" = global sum pool over H, W, then dense widths[-1] -> 1 (StudioGAN).
    chainer's F.leaky_relu defaults to slope 0.2, which chainer-gan-lib uses; the paper states 0.1.
    StudioGAN's spectral norm uses eps 1e-6 (``sn_eps``); torch's default is 1e-12."""

    def __init__(
        self,
        widths: Sequence[int] = (64, 64, 128, 128, 256, 256, 512),
        image_size: int = 32,
        negative_slope: float = 0.1,
        head: str = "flatten",
        spectral_norm: bool = True,
        sn_eps: float = 1e-12,
        init: str = "normal",
    ) -> None:
        super().__init__()
        widths = tuple(widths)
        if head not in ("flatten", "sum"):
            raise ValueError(f"unknown head {head!r}")
        self.head = head

        def sn(m: nn.Module) -> nn.Module:
            return nn.utils.spectral_norm(m, eps=sn_eps) if spectral_norm else m

        layers: list[nn.Module] = []
        size, c_in = image_size, 3
        for i, c_out in enumerate(widths):
            k, s = (3, 1) if i % 2 == 0 else (4, 2)
            layers += [nn.Conv2d(c_in, c_out, k, s, 1), nn.LeakyReLU(negative_slope)]
            size = size // s
            c_in = c_out
        self.main = nn.Sequential(*layers)
        features = c_in * size * size if head == "flatten" else c_in
        self.linear = nn.Linear(features, 1)
        _init_standard(self, init)  # before SN wrapping; then u, v are drawn
        for m in [*self.main, self.linear]:
            if isinstance(m, nn.Conv2d | nn.Linear):
                sn(m)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.main(x)
        h = torch.flatten(h, 1) if self.head == "flatten" else torch.sum(h, dim=(2, 3))
        return self.linear(h)


class CGANPDGenerator32(nn.Module):
    """Mimicry CGANPDGenerator32: SNGANGenerator32 with conditional BatchNorm in the three
    blocks; the last BatchNorm (b5) stays unconditional."""

    def __init__(self, num_classes: int, nz: int = 128, ngf: int = 256) -> None:
        super().__init__()
        self.l1 = nn.Linear(nz, 4 * 4 * ngf)
        self.block2 = GBlock(ngf, ngf, upsample=True, num_classes=num_classes)
        self.block3 = GBlock(ngf, ngf, upsample=True, num_classes=num_classes)
        self.block4 = GBlock(ngf, ngf, upsample=True, num_classes=num_classes)
        self.b5 = nn.BatchNorm2d(ngf)
        self.c5 = nn.Conv2d(ngf, 3, 3, 1, padding=1)
        nn.init.xavier_uniform_(self.l1.weight.data, 1.0)
        nn.init.xavier_uniform_(self.c5.weight.data, 1.0)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.l1(z).view(z.shape[0], -1, 4, 4)
        h = self.block4(self.block3(self.block2(h, y), y), y)
        return torch.tanh(self.c5(F.relu(self.b5(h))))


class CGANPDDiscriminator32(SNGANDiscriminator32):
    """Mimicry CGANPDDiscriminator32: SNGANDiscriminator32 plus a spectrally normalised class
    embedding l_y (num_classes, ndf), Xavier-initialised; output l5(h) + <l_y(y), h> on the
    pooled features h."""

    def __init__(self, num_classes: int, ndf: int = 128) -> None:
        super().__init__(ndf)
        self.l_y = nn.utils.spectral_norm(nn.Embedding(num_classes, ndf))
        _xavier(self.l_y, 1.0)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.block4(self.block3(self.block2(self.block1(x))))
        h = torch.sum(F.relu(h), dim=(2, 3))
        return self.l5(h) + torch.sum(self.l_y(y) * h, dim=1, keepdim=True)


# --------------------------------------------------------------------------------------------
# The SNGAN iteration as Mimicry trains it, for the benchmark (python -m benchmarks.train_speed).
# --------------------------------------------------------------------------------------------


class SNGANIteration:
    """n_critic hinge-loss D updates, each on its own real batch and detached fakes of fresh
    latents, then one G update on fresh latents; Adam(2e-4, (0.0, 0.9)) for both, as Mimicry's
    trainer. `channels_last` converts the networks and inputs to that memory format."""

    def __init__(
        self,
        channels: int = 3,
        nz: int = 128,
        ngf: int = 256,
        ndf: int = 128,
        n_critic: int = 5,
        channels_last: bool = False,
    ) -> None:
        self.generator, self.discriminator = SNGANGenerator32(nz, ngf), SNGANDiscriminator32(ndf)
        self.generator.c5 = nn.Conv2d(ngf, channels, 3, 1, padding=1)
        self.discriminator.block1 = DBlockOptimized(channels, ndf)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        for net in (self.generator, self.discriminator):
            net.to(memory_format=self.memory_format).train()
        self.g_opt = torch.optim.Adam(self.generator.parameters(), 2e-4, betas=(0.0, 0.9))
        self.d_opt = torch.optim.Adam(self.discriminator.parameters(), 2e-4, betas=(0.0, 0.9))
        self.nz, self.n_critic = nz, n_critic

    def step(self, reals: torch.Tensor) -> tuple[float, float]:
        """One iteration on `reals` of shape (n_critic, B, C, H, W)."""
        batch = reals.shape[1]
        for real in reals:
            real = real.contiguous(memory_format=self.memory_format)
            with torch.no_grad():
                fake = self.generator(torch.randn(batch, self.nz))
            self.d_opt.zero_grad(set_to_none=True)
            d_loss = F.relu(1 - self.discriminator(real)).mean()
            d_loss = d_loss + F.relu(1 + self.discriminator(fake)).mean()
            d_loss.backward()
            self.d_opt.step()
        self.g_opt.zero_grad(set_to_none=True)
        g_loss = -self.discriminator(self.generator(torch.randn(batch, self.nz))).mean()
        g_loss.backward()
        self.g_opt.step()
        return d_loss.item(), g_loss.item()
