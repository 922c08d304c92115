"""IVGC-response networks of Zhang et al. (paper 001): ResNet-50 and RDINet.

**ResNet-50** is MONAI's 3D ResNet-50 (``monai.networks.nets.resnet50``: bottleneck blocks, layers
3-4-6-3, one input channel) with a stride-2 stem as in He et al.'s ResNet-50 (MONAI's default
stride 1 comes from video networks and would run the 7x7x7 stem convolution at the full
128 x 128 x 32 input). ``width`` is MONAI's ``widen_factor``: 1.0 is the paper's network
(stage widths 64-128-256-512, 2048 features); the demo uses 1/8 (8-16-32-64, 256 features) so
that it trains on two CPU cores.

**RDINet** (Residual Dynamic Integration Network):

* image feature extractor: the ResNet-50 trunk, globally pooled, then a linear projection to
  ``dim`` features: z_0;
* medical feature extractor: three MLP layers (Linear, LayerNorm, ReLU) over the selected radiomics
  features, with the 16 clinical features concatenated for RDINet (clinical): q;
* dynamic mapping module, ``k`` = 3 iterations, each with its own weights:
  W = MLP(q) (LayerNorm, Linear, ReLU, Linear -> dim x dim), z_m = z_i W (batched matrix product),
  skip connection z_m + z_i, then a basic MLP layer (Linear, LayerNorm, ReLU) gives z_{i+1};
* classification head: dropout and a linear layer over z_k.

Why the projection to ``dim`` (default 64) instead of mapping the trunk's features directly: the
paper does not give W's size, and a full W over the trunk's 2048 features has 4.2 M entries, so the
generator's last layer alone would hold 64 x 4.2 M = 268 M weights (about six times the whole
ResNet-50) at a hidden width of 64. Projecting z keeps W a full matrix, as in the paper, at
dim x dim = 4096 entries.

The medical inputs are standardised inside the network with the training cohort's mean and SD
(:meth:`RDINet.set_medical_scaling`, stored as buffers), so a saved model carries its own scaling.
"""
from __future__ import annotations

import math
from typing import Optional, cast

import numpy as np
import torch
from monai.networks.nets import resnet50
from torch import nn

from orbitai.classify.fusion import vector_encoder
from orbitai.errors import InputError

#: widen_factor of the paper's ResNet-50 and of the demo configuration.
PAPER_WIDTH = 1.0
DEMO_WIDTH = 0.125
N_CLASSES = 2


def resnet50_trunk(width: float = PAPER_WIDTH) -> tuple[nn.Module, int]:
    """MONAI's 3D ResNet-50 without its classifier (globally pooled features) and its feature size."""
    if not (isinstance(width, (int, float)) and int(64 * width) >= 4):
        raise InputError(f"width must be at least 1/16 (stage widths of 4 channels or more), got {width!r}.")
    net = resnet50(spatial_dims=3, n_input_channels=1, conv1_t_stride=2, widen_factor=float(width),
                   feed_forward=False)
    return net, int(512 * width) * 4


class ResNet50Classifier(nn.Module):
    """Paper 001's ResNet-50 model: the trunk and a linear classifier on its pooled features."""

    input_names: tuple[str, ...] = ("image",)

    def __init__(self, width: float = PAPER_WIDTH, dropout: float = 0.0, n_classes: int = N_CLASSES):
        super().__init__()
        self.trunk, features = resnet50_trunk(width)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(features, n_classes))

    @property
    def cam_layer(self) -> nn.Module:
        """The last residual stage, where Grad-CAM is taken."""
        return cast(nn.Module, self.trunk.layer4)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(image))


def basic_mlp(n_in: int, n_out: int) -> nn.Sequential:
    """The paper's basic MLP layer: Linear, LayerNorm, ReLU."""
    return nn.Sequential(nn.Linear(n_in, n_out), nn.LayerNorm(n_out), nn.ReLU(inplace=True))


class DynamicMapping(nn.Module):
    """One iteration of RDINet's dynamic mapping module: z_{i+1} = MLP(z_i W(q) + z_i)."""

    def __init__(self, dim: int, q_dim: int, hidden: int = 64):
        super().__init__()
        self.dim = dim
        self.generator = nn.Sequential(nn.LayerNorm(q_dim), nn.Linear(q_dim, hidden), nn.ReLU(inplace=True),
                                       nn.Linear(hidden, dim * dim))
        self.mlp = basic_mlp(dim, dim)

    def weights(self, q: torch.Tensor) -> torch.Tensor:
        """W generated from q: (N, dim, dim). Scaled by 1/sqrt(dim) so that z W keeps z's magnitude
        at initialisation (a sum of ``dim`` products), as in scaled dot-product attention."""
        return self.generator(q).view(-1, self.dim, self.dim) / math.sqrt(self.dim)

    def mapped(self, z: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """z_m = z_i W plus the skip connection z_i."""
        return torch.bmm(z.unsqueeze(1), self.weights(q)).squeeze(1) + z

    def forward(self, z: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.mapped(z, q))


class RDINet(nn.Module):
    """RDINet over an image (N, 1, D, H, W), radiomics (N, R) and, with ``n_clinical`` > 0,
    clinical features (N, C); returns logits (N, 2)."""

    medical_mean: torch.Tensor
    medical_std: torch.Tensor

    def __init__(self, n_radiomics: int, n_clinical: int = 0, width: float = PAPER_WIDTH, dim: int = 64,
                 medical_width: int = 64, generator_hidden: int = 64, k: int = 3, dropout: float = 0.0,
                 n_classes: int = N_CLASSES):
        super().__init__()
        if n_radiomics < 1:
            raise InputError(f"RDINet needs at least one radiomics feature, got {n_radiomics}.")
        if n_clinical < 0 or k < 1 or dim < 1:
            raise InputError(f"n_clinical >= 0, k >= 1 and dim >= 1 needed (got {n_clinical}, {k}, {dim}).")
        self.n_radiomics, self.n_clinical, self.k = int(n_radiomics), int(n_clinical), int(k)
        self.input_names: tuple[str, ...] = ("image", "radiomics") + (("clinical",) if n_clinical else ())
        self.trunk, features = resnet50_trunk(width)
        self.project = nn.Linear(features, dim)
        n_med = self.n_radiomics + self.n_clinical
        self.register_buffer("medical_mean", torch.zeros(n_med))
        self.register_buffer("medical_std", torch.ones(n_med))
        self.medical, q_dim = vector_encoder(n_med, (medical_width,) * 3)
        self.mapping = nn.ModuleList(DynamicMapping(dim, q_dim, generator_hidden) for _ in range(self.k))
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(dim, n_classes))

    @property
    def cam_layer(self) -> nn.Module:
        """The image branch's last residual stage, where Grad-CAM is taken."""
        return cast(nn.Module, self.trunk.layer4)

    def set_medical_scaling(self, features: np.ndarray) -> None:
        """Standardise the medical inputs with the mean and SD of ``features`` (training cases x
        radiomics then clinical columns); a constant column keeps SD 1."""
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.medical_mean.numel():
            raise InputError(f"Expected (cases, {self.medical_mean.numel()}) medical features, got {x.shape}.")
        mean, sd = x.mean(0), x.std(0)
        sd[~(sd > 1e-12)] = 1.0
        self.medical_mean.copy_(torch.as_tensor(mean, dtype=self.medical_mean.dtype))
        self.medical_std.copy_(torch.as_tensor(sd, dtype=self.medical_std.dtype))

    def image_features(self, image: torch.Tensor) -> torch.Tensor:
        """z_0: the trunk's pooled features projected to ``dim``."""
        return self.project(self.trunk(image))

    def medical_features(self, radiomics: torch.Tensor, clinical: Optional[torch.Tensor] = None) -> torch.Tensor:
        """q: the three-layer MLP over the standardised radiomics (and clinical) features."""
        if (clinical is None) != (self.n_clinical == 0):
            raise InputError(f"This RDINet takes {self.n_clinical} clinical features; "
                             f"got {'none' if clinical is None else clinical.shape[-1]}.")
        x = radiomics if clinical is None else torch.cat([radiomics, clinical], 1)
        return self.medical((x.float() - self.medical_mean) / self.medical_std)

    def forward(self, image: torch.Tensor, radiomics: torch.Tensor,
                clinical: Optional[torch.Tensor] = None) -> torch.Tensor:
        z = self.image_features(image)
        q = self.medical_features(radiomics, clinical)
        for block in self.mapping:
            z = block(z, q)
        return self.head(z)


def ivgc_resnet50(width: float = PAPER_WIDTH, dropout: float = 0.0) -> ResNet50Classifier:
    return ResNet50Classifier(width=width, dropout=dropout)


def ivgc_rdinet(n_radiomics: int, n_clinical: int = 0, width: float = PAPER_WIDTH, dim: int = 64,
                medical_width: int = 64, generator_hidden: int = 64, k: int = 3, dropout: float = 0.0) -> RDINet:
    return RDINet(n_radiomics, n_clinical, width=width, dim=dim, medical_width=medical_width,
                  generator_hidden=generator_hidden, k=k, dropout=dropout)
