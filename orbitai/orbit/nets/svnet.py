"""SV-net (semantic V-Net, 3D), its 2D counterpart SU-net, and the V-Net it is compared with.

Paper 002 (Zhu et al., "Semantic segmentation ... total extraocular muscles and optic nerve from
orbital CT", arXiv 2007.02091). What the text fixes: V-Net encoder/decoder (Milletari 2016),
3x3x3 kernels instead of 5x5x5, 17 convolution layers instead of V-Net's 21, about 8.6 M weights
(V-Net 9.6 M), BN + ReLU after every convolution, 2x2x2 stride-2 down-sampling, a final 1x1x1
convolution, input 256 x 256 x 32, six output channels (background, SR, LR, MR, IR, ON), trained
with voxel-wise *sigmoid* cross-entropy (the model returns logits; the loss applies the sigmoid).

How the 17 (and V-Net's 21) are counted: V-Net's stages hold 1, 2, 3, 3 | 3 | 3, 3, 2, 1 5x5x5
convolutions = 21, which is only the k x k x k feature convolutions; the four 2x2x2 stride-2
down-convolutions, the four 2x2x2 up-convolutions and the final 1x1x1 convolution are not counted
(with them V-Net would have 30). SV-net's 17 are counted the same way: 3x3x3 convolutions only.

The paper's architecture figure is not in our copy of the text, so the split of the 17 over the
stages is a reconstruction: V-Net's channel widths (16, 32, 64, 128, 256; decoder stages 256, 128,
64, 32 after concatenating the skip) and V-Net's residual stages, with the stage depths mirrored
1, 2, 3, 2 | 1 | 2, 3, 2, 1 = 17. The removed convolutions sit at the two coarsest levels, where
nearly all the weights are (one 256-channel 3x3x3 convolution holds 1.77 M); this gives 8.94 M
trainable parameters (+4 % on the paper's 8.6 M). No even split of 17 over V-Net's stages lands
closer with V-Net's widths, and ``stage_convs`` lets a user try other splits.

Down-sampling: the paper calls it "pooling ... 2x2x2, stride 2"; as in V-Net we implement it as a
learned 2x2x2 stride-2 convolution (+BN+ReLU) that doubles the channels. Up-sampling is V-Net's
2x2x2 stride-2 transposed convolution (+BN+ReLU).

Tensor layout (torch): 3D ``(N, C, D, H, W)`` with D = the 32 axial slices (Z) and H, W = the
256 x 256 in-plane crop; 2D (SU-net) ``(N, C, H, W)``. Every spatial size must be a multiple of
``2 ** 4 = 16`` (four down-samplings).

V-Net weight count: the paper's 9.6 M cannot be reproduced with V-Net as published (Milletari's
21 x 5x5x5 layout at widths 16-256 has 65.2 M parameters; MONAI's ``VNet`` follows a reduced
PyTorch port with 16 5x5x5 convolutions and has 45.6 M), so MONAI's VNet is not used and "vnet"
below is Milletari's layout built with the same blocks as SV-net (BN + ReLU).

The blocks are plain torch laid out as MONAI's ``Convolution`` (``conv``, ``adn.N``, ``adn.A``) and
``ResidualUnit`` (``conv.unit<i>``, identity ``residual``) are, so that bundles' state dicts keep their keys
and the outputs are MONAI's (tested): importing MONAI costs seconds at every start of a prediction.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import torch
from torch import nn

from orbitai.errors import InputError

#: Convolutions per stage: encoder levels 0..3, bottom, decoder levels 3..0 (see module docstring).
SVNET_STAGE_CONVS: tuple[int, ...] = (1, 2, 3, 2, 1, 2, 3, 2, 1)
#: Milletari et al. 2016 V-Net: 21 5x5x5 convolutions.
VNET_STAGE_CONVS: tuple[int, ...] = (1, 2, 3, 3, 3, 3, 3, 2, 1)
#: Output channels at paper configuration: background, SR, LR, MR, IR, ON.
SVNET_LABELS: tuple[str, ...] = ("background", "superior_rectus", "lateral_rectus", "medial_rectus",
                                 "inferior_rectus", "optic_nerve")


_CONV = {(2, False): nn.Conv2d, (3, False): nn.Conv3d, (2, True): nn.ConvTranspose2d, (3, True): nn.ConvTranspose3d}
_NORM = {2: nn.BatchNorm2d, 3: nn.BatchNorm3d}


class ConvBlock(nn.Sequential):
    """Convolution, then BatchNorm -> ReLU unless ``conv_only`` (children ``conv`` and ``adn`` =
    Sequential(``N``, ``A``), MONAI ``Convolution``'s names)."""

    def __init__(self, dims: int, cin: int, cout: int, kernel: int, *, strides: int = 1, transposed: bool = False,
                 padding: int = 0, bias: bool = False, conv_only: bool = False) -> None:
        super().__init__()
        self.add_module("conv", _CONV[dims, transposed](cin, cout, kernel, stride=strides, padding=padding, bias=bias))
        if not conv_only:
            self.add_module("adn", nn.Sequential(OrderedDict(N=_NORM[dims](cout), A=nn.ReLU())))


class ResidualStage(nn.Module):
    """``n`` ConvBlocks (``conv.unit0``...) plus the identity shortcut (channels and size unchanged)."""

    def __init__(self, dims: int, channels: int, n: int, kernel: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(OrderedDict((f"unit{i}", ConvBlock(dims, channels, channels, kernel,
                                                                     padding=kernel // 2)) for i in range(n)))
        self.residual = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) + self.residual(x)


def _conv(dims: int, cin: int, cout: int, kernel: int, *, strides: int = 1, transposed: bool = False,
          padding: int | None = None) -> ConvBlock:
    """Convolution -> BatchNorm -> ReLU (conv bias off because BN follows)."""
    return ConvBlock(dims, cin, cout, kernel, strides=strides, transposed=transposed,
                     padding=kernel // 2 if padding is None else padding)


class _InputStage(nn.Module):
    """V-Net's first stage: n convs from ``in_channels`` to ``width``, residual = input repeated
    over the channels (no 1x1 projection for the channel change: neither V-Net nor SV-net has one)."""

    def __init__(self, dims: int, in_channels: int, width: int, n_convs: int, kernel: int) -> None:
        super().__init__()
        if width % in_channels:
            raise InputError(f"base_channels ({width}) must be a multiple of in_channels ({in_channels}).")
        self.repeat = width // in_channels
        self.convs = nn.Sequential(*[_conv(dims, in_channels if i == 0 else width, width, kernel)
                                     for i in range(n_convs)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.convs(x) + x.repeat_interleave(self.repeat, dim=1)


class VNetLike(nn.Module):
    """V-Net topology with residual stages, configurable kernel, width, stage depths and dims.

    Encoder level l has ``base_channels * 2**l`` channels (l = 0..3), the bottom 16x base; decoder
    level l up-convolves to ``base * 2**l`` channels, concatenates the skip (same width) and runs its
    residual stage at ``2 * base * 2**l``; a 1x1(x1) conv maps to ``out_channels`` logits.
    """

    n_down = 4

    def __init__(self, spatial_dims: int = 3, in_channels: int = 1, out_channels: int = 6,
                 base_channels: int = 16, kernel_size: int = 3,
                 stage_convs: Sequence[int] = SVNET_STAGE_CONVS) -> None:
        super().__init__()
        if spatial_dims not in (2, 3):
            raise InputError(f"spatial_dims must be 2 or 3, got {spatial_dims}.")
        if len(stage_convs) != 2 * self.n_down + 1 or min(stage_convs) < 1:
            raise InputError(f"stage_convs needs {2 * self.n_down + 1} positive counts, got {stage_convs}.")
        if base_channels < 1 or out_channels < 1 or in_channels < 1:
            raise InputError("in_channels, out_channels and base_channels must be >= 1.")
        d, k, b = spatial_dims, kernel_size, base_channels
        self.spatial_dims, self.in_channels, self.out_channels = d, in_channels, out_channels
        self.stage_convs = tuple(stage_convs)
        enc, bottom, dec = stage_convs[:4], stage_convs[4], stage_convs[5:]
        widths = [b * 2 ** lvl for lvl in range(self.n_down + 1)]

        self.enc = nn.ModuleList([_InputStage(d, in_channels, b, enc[0], k)])
        self.down = nn.ModuleList()
        for lvl in range(self.n_down):
            # 2x2x2 stride-2 learned down-sampling doubling the channels (V-Net).
            self.down.append(_conv(d, widths[lvl], widths[lvl + 1], 2, strides=2, padding=0))
            n = enc[lvl + 1] if lvl + 1 < self.n_down else bottom
            # Residual stage: n x (conv-BN-ReLU), identity shortcut (channels unchanged).
            self.enc.append(ResidualStage(d, widths[lvl + 1], n, k))
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        prev = widths[-1]
        for i, lvl in enumerate(reversed(range(self.n_down))):
            stage = 2 * widths[lvl]
            self.up.append(_conv(d, prev, widths[lvl], 2, strides=2, transposed=True, padding=0))
            self.dec.append(ResidualStage(d, stage, dec[i], k))
            prev = stage
        self.head = ConvBlock(d, prev, out_channels, 1, bias=True, conv_only=True)

    @property
    def size_multiple(self) -> int:
        return 2 ** self.n_down

    def check_input(self, x: torch.Tensor) -> None:
        """Raise ValueError naming the expected layout/sizes if ``x`` does not fit."""
        d = self.spatial_dims
        layout = "(N, C, D, H, W)" if d == 3 else "(N, C, H, W)"
        if x.ndim != d + 2:
            raise InputError(f"Expected a {d + 2}-D tensor {layout}, got shape {tuple(x.shape)}.")
        if x.shape[1] != self.in_channels:
            raise InputError(f"Expected {self.in_channels} input channel(s) at dim 1 of {layout}, "
                             f"got {x.shape[1]} (shape {tuple(x.shape)}).")
        m = self.size_multiple
        bad = [s for s in x.shape[2:] if s % m or s == 0]
        if bad:
            raise InputError(f"Spatial sizes {tuple(x.shape[2:])} not allowed: every spatial size must be a "
                             f"positive multiple of {m} (e.g. {m}, {2 * m}, {3 * m}, ...; paper window "
                             f"{'32 x 256 x 256' if d == 3 else '256 x 256'}); pad or crop first.")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        skips = []
        h = self.enc[0](x)
        for lvl in range(self.n_down):
            skips.append(h)
            h = self.enc[lvl + 1](self.down[lvl](h))
        for i in range(self.n_down):
            h = self.dec[i](torch.cat([self.up[i](h), skips[-1 - i]], dim=1))
        return self.head(h)


def conv_layer_counts(model: nn.Module) -> dict[str, int]:
    """Count convolutions by role: ``feature`` (k>=3 kernels, what the papers count), ``down``
    (strided 2-kernels), ``up`` (transposed), ``pointwise`` (1-kernels)."""
    out = {"feature": 0, "down": 0, "up": 0, "pointwise": 0}
    for m in model.modules():
        if isinstance(m, (nn.ConvTranspose2d, nn.ConvTranspose3d)):
            out["up"] += 1
        elif isinstance(m, (nn.Conv2d, nn.Conv3d)):
            k = max(m.kernel_size)
            out["pointwise" if k == 1 else "down" if max(m.stride) > 1 else "feature"] += 1
    return out


def svnet(in_channels: int = 1, out_channels: int = 6, base_channels: int = 16,
          stage_convs: Sequence[int] = SVNET_STAGE_CONVS) -> VNetLike:
    """SV-net: 3D, 3x3x3 kernels, 17 convs, 8.94 M parameters at the paper's defaults.
    Input ``(N, 1, D=32 slices, H=256, W=256)``; output logits ``(N, out_channels, D, H, W)``."""
    return VNetLike(3, in_channels, out_channels, base_channels, 3, stage_convs)


def sunet(in_channels: int = 1, out_channels: int = 6, base_channels: int = 16,
          stage_convs: Sequence[int] = SVNET_STAGE_CONVS) -> VNetLike:
    """SU-net, the paper's 2D baseline: SV-net with 2D operations. Input ``(N, 1, 256, 256)``."""
    return VNetLike(2, in_channels, out_channels, base_channels, 3, stage_convs)


def vnet(in_channels: int = 1, out_channels: int = 6, base_channels: int = 16,
         stage_convs: Sequence[int] = VNET_STAGE_CONVS) -> VNetLike:
    """The comparison V-Net: Milletari's 21 5x5x5 convs, BN + ReLU; 65.2 M parameters at width 16
    (the paper's 9.6 M is not reproducible, see the module docstring)."""
    return VNetLike(3, in_channels, out_channels, base_channels, 5, stage_convs)
