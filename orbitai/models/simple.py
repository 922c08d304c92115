"""A tiny 3D conv net used by the foundation tests and demo to exercise bundles end to end."""
from __future__ import annotations

from torch import nn



def tiny_conv3d(in_channels: int = 1, out_channels: int = 2, width: int = 4) -> nn.Module:
    return nn.Sequential(
        nn.Conv3d(in_channels, width, 3, padding=1),
        nn.BatchNorm3d(width),
        nn.ReLU(inplace=True),
        nn.Conv3d(width, out_channels, 1),
    )
