"""The white-matter lesion network (:mod:`orbitai.neuro.lesionseg`): a 2.5D MONAI U-Net that segments
one axial 1 mm slice from 5 neighbouring slices fed as channels (``orbitai.neuro.seg_configs.CONTEXT``).

A 2D network fits the CPU budget (training <= 30 min, a whole-head 1 mm FLAIR in seconds) and,
trained on slices degraded like 3-5 mm acquisitions, reads thick-slice clinical FLAIR resampled to 1 mm.
Bundles store the registry name ``neuro_lesion_unet25d`` and the factory's keyword arguments; ``members`` > 1 is a
small ensemble of such networks read as one (`MeanProbability`; made by ``scripts/make_lesion_ensemble.py``).
"""
from __future__ import annotations

import torch
from monai.networks.nets import UNet
from torch import nn


#: The registry name (stored by the lesion bundles).
ARCHITECTURE = "neuro_lesion_unet25d"


class MeanProbability(nn.Module):
    """Networks of one architecture read as one: the log of their mean softmax probability, a logit that softmax
    turns back into that mean (nnU-Net's ensembles average the members' probabilities, as here)."""

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = torch.stack([torch.softmax(m(x).float(), dim=1) for m in self.members]).mean(0)
        return torch.log(mean.clamp_min(1e-12))


def neuro_lesion_unet25d(in_channels: int = 5, out_channels: int = 2,
                         channels: tuple[int, ...] | list[int] = (16, 32, 64, 128),
                         num_res_units: int = 1, members: int = 1) -> nn.Module:
    """MONAI 2D residual U-Net (batch norm, PReLU), strides of 2 between levels; ``in_channels``: the
    context slices (5: the slice and two on each side); ``members`` > 1: that many such networks averaged
    (`MeanProbability`)."""
    ch = tuple(int(c) for c in channels)
    if int(members) < 1:
        raise ValueError(f"members must be at least 1, got {members!r}")

    def one() -> nn.Module:
        return UNet(spatial_dims=2, in_channels=in_channels, out_channels=out_channels, channels=ch,
                    strides=(2,) * (len(ch) - 1), num_res_units=num_res_units, norm="batch")

    return one() if int(members) == 1 else MeanProbability([one() for _ in range(int(members))])
