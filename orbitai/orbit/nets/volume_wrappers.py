"""Adapters that let 2D networks run in the volumetric segmentation engine.

The engine (windows, training patches) works on ``(N, 1, D, H, W)`` volumes. SU-net sees each
slice alone; SEQ-UNET sees each slice with its neighbours (edge slices repeated) and predicts
the centre one. Both return ``(N, C, D, H, W)`` logits, so they train and infer exactly like
SV-net and their bundles store the wrapped network's arguments.
"""
from __future__ import annotations

import torch
from torch import nn

from orbitai.orbit.nets.sequnet import sequnet
from orbitai.orbit.nets.svnet import sunet


class SliceWise(nn.Module):
    """Apply a 2D network ``(B, C, H, W) -> (B, K, H, W)`` to every slice of a volume."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, d, h, w = x.shape
        y = self.net(x.permute(0, 2, 1, 3, 4).reshape(n * d, c, h, w))
        return y.reshape(n, d, -1, h, w).permute(0, 2, 1, 3, 4)


class SequentialSlices(nn.Module):
    """Apply a slice-sequence network ``(B, S, C, H, W) -> (B, K, H, W)`` centred on every slice."""

    def __init__(self, net: nn.Module, n_slices: int = 3) -> None:
        super().__init__()
        self.net, self.n_slices = net, n_slices

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, d, h, w = x.shape
        r = self.n_slices // 2
        padded = torch.cat([x[:, :, :1].expand(-1, -1, r, -1, -1), x, x[:, :, -1:].expand(-1, -1, r, -1, -1)], dim=2)
        seq = padded.unfold(2, self.n_slices, 1)                 # (N, C, D, H, W, S)
        seq = seq.permute(0, 2, 5, 1, 3, 4).reshape(n * d, self.n_slices, c, h, w)
        y = self.net(seq)                                          # (N*D, K, H, W)
        return y.reshape(n, d, -1, h, w).permute(0, 2, 1, 3, 4)


def sunet_volume(**kwargs) -> nn.Module:
    """SU-net applied slice by slice to a volume (arguments as ``sunet``)."""
    return SliceWise(sunet(**kwargs))


def sequnet_volume(**kwargs) -> nn.Module:
    """SEQ-UNET applied to every slice with its neighbours (arguments as ``sequnet``)."""
    return SequentialSlices(sequnet(**kwargs), kwargs.get("n_slices", 3))
