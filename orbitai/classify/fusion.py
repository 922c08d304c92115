"""Late-fusion classifier over several named inputs (an image beside radiomics and clinical vectors).

Each named input has its own encoder giving a feature vector; the vectors are concatenated and an
MLP head classifies them. The model declares ``input_names`` so the trainer of
:mod:`orbitai.classify.train` feeds it from a dataset of named samples. Encoders:
:func:`image_encoder` (MONAI's ResNet without its classifier, 2D or 3D) and :func:`vector_encoder`
(an MLP, like RDINet's three-layer medical feature extractor).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import torch
from monai.networks.nets import ResNet
from torch import nn

from orbitai.errors import InputError


class FusionNet(nn.Module):
    """``encoders`` maps each input name, in ``forward`` order, to ``(module, features_out)``."""

    def __init__(self, encoders: Mapping[str, tuple[nn.Module, int]], n_classes: int = 2, hidden: int = 64,
                 dropout: float = 0.0):
        super().__init__()
        if not encoders:
            raise InputError("A FusionNet needs at least one named encoder.")
        self.input_names: tuple[str, ...] = tuple(encoders)
        self.encoders = nn.ModuleDict({name: module for name, (module, _) in encoders.items()})
        width = sum(n for _, n in encoders.values())
        self.head = nn.Sequential(nn.Linear(width, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
                                  nn.Linear(hidden, n_classes))

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        if len(inputs) != len(self.input_names):
            raise InputError(f"FusionNet takes {len(self.input_names)} inputs {list(self.input_names)}, "
                             f"got {len(inputs)}.")
        feats = [enc(x) for enc, x in zip(self.encoders.values(), inputs)]
        return self.head(torch.cat(feats, 1))


def image_encoder(spatial_dims: int = 3, in_channels: int = 1, widths: Sequence[int] = (64, 128, 256, 512),
                  layers: Sequence[int] = (2, 2, 2, 2), block: str = "basic") -> tuple[nn.Module, int]:
    """A MONAI ResNet body with global pooling (``layers`` (2, 2, 2, 2) basic: ResNet-18;
    (3, 4, 6, 3) bottleneck: ResNet-50) and its feature size."""
    net = ResNet(block, list(layers), list(widths), spatial_dims=spatial_dims, n_input_channels=in_channels,
                 feed_forward=False)
    return net, widths[-1] * (4 if block == "bottleneck" else 1)


def vector_encoder(n_in: int, widths: Sequence[int] = (64, 64, 64), dropout: float = 0.0) -> tuple[nn.Module, int]:
    """An MLP over a feature vector (Linear, LayerNorm, ReLU per layer) and its output size."""
    mods: list[nn.Module] = []
    prev = n_in
    for w in widths:
        mods += [nn.Linear(prev, w), nn.LayerNorm(w), nn.ReLU(inplace=True), nn.Dropout(dropout)]
        prev = w
    return nn.Sequential(*mods), prev
