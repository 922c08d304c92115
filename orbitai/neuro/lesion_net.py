"""The white-matter lesion network (:mod:`orbitai.neuro.lesionseg`): a 2.5D MONAI U-Net that segments
one axial 1 mm slice from 5 neighbouring slices fed as channels (``orbitai.neuro.seg_configs.CONTEXT``).

A 2D network fits the CPU budget (training <= 30 min, a whole-head 1 mm FLAIR in seconds) and,
trained on slices degraded like 3-5 mm acquisitions, reads thick-slice clinical FLAIR resampled to 1 mm.
Bundles store the registry name ``neuro_lesion_unet25d`` and the factory's keyword arguments.
"""
from __future__ import annotations

from monai.networks.nets import UNet
from torch import nn


#: The registry name (stored by the lesion bundles).
ARCHITECTURE = "neuro_lesion_unet25d"


def neuro_lesion_unet25d(in_channels: int = 5, out_channels: int = 2,
                         channels: tuple[int, ...] | list[int] = (16, 32, 64, 128),
                         num_res_units: int = 1) -> nn.Module:
    """MONAI 2D residual U-Net (batch norm, PReLU), strides of 2 between levels; ``in_channels``: the
    context slices (5: the slice and two on each side)."""
    ch = tuple(int(c) for c in channels)
    return UNet(spatial_dims=2, in_channels=in_channels, out_channels=out_channels, channels=ch,
                strides=(2,) * (len(ch) - 1), num_res_units=num_res_units, norm="batch")
