"""TAO activity classifiers of Lin et al. 2021 (paper 000): Network A (VGG-like) and Network B
(ResNet-like), 2D networks over the five axial slices centred on the optic-nerve plane, taken as
five input channels (128 x 128 x 5 after the random crop).

Network A: five conv modules, each two 3x3 conv (BN between conv and ReLU) + 2x2 max pool, channels
64 -> 128 -> 256 -> 512 -> 512, then four fully connected layers (ReLU + dropout p=0.5 between
them); 10 conv layers.
Network B: one stem conv, eight ResBlocks (two 3x3 conv + identity path) in four stages of two,
and three stride-2 3x3 transition convs between the stages (channels 64 -> 128 -> 256 -> 512, the
paper's "stride 1 or 2"); 1 + 16 + 3 = 20 conv layers, the same fully connected head.

``base_channels`` scales the widths (64 = the paper); the demo bundles use a narrower width so
they train on two CPU cores. The forward pass returns logits; :func:`probabilities` applies the
paper's softmax. ``model.cam_layer`` is the last feature block, the layer Grad-CAM uses.
"""
from __future__ import annotations

import torch
from torch import nn

from orbitai.errors import InputError


def _conv_bn_relu(cin: int, cout: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True)]


class ResBlock(nn.Module):
    """Two 3x3 conv (BN between conv and ReLU) plus the identity path."""

    #: forward is act(x + body(x)): lets orbitai.explain recompute it on a patch's footprint
    forward_is_act_of_x_plus_body = True

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.body(x))


class _Head(nn.Module):
    """Four fully connected layers: flatten(4x4 map) -> 16b -> 4b -> b -> classes."""

    def __init__(self, channels: int, base: int, n_classes: int, dropout: float):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(4)   # identity for the paper's 128 x 128 input
        dims = [channels * 16, base * 16, base * 4, base]
        layers: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(a, b), nn.ReLU(inplace=True), nn.Dropout(dropout)]
        layers.append(nn.Linear(dims[-1], n_classes))
        self.fc = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(x), 1))


class TaoNet(nn.Module):
    """Feature extractor + fully connected head; ``cam_layer`` is the last feature block."""

    #: forward is head(features(x)): lets orbitai.explain reuse unoccluded activations
    forward_is_head_of_features = True

    def __init__(self, features: nn.Sequential, cam_layer: nn.Module, channels: int, base: int,
                 n_classes: int, dropout: float, network: str):
        super().__init__()
        self.features = features
        self.cam_layer = cam_layer
        self.head = _Head(channels, base, n_classes, dropout)
        self.network = network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4:
            raise InputError(f"Network {self.network} expects (N, slices, H, W) input, got shape {tuple(x.shape)}")
        return self.head(self.features(x))

    def weight_decay_groups(self, conv: float = 0.01, fc: float = 0.001) -> list[dict]:
        """Optimizer parameter groups with the paper's L2: ``conv`` on conv kernels, ``fc`` on fully
        connected weights, none on biases and batch-norm parameters."""
        conv_w, fc_w, rest = [], [], []
        for m in self.modules():
            for name, p in m.named_parameters(recurse=False):
                if isinstance(m, nn.Conv2d) and name == "weight":
                    conv_w.append(p)
                elif isinstance(m, nn.Linear) and name == "weight":
                    fc_w.append(p)
                else:
                    rest.append(p)
        return [{"params": conv_w, "weight_decay": conv}, {"params": fc_w, "weight_decay": fc},
                {"params": rest, "weight_decay": 0.0}]


def tao_network_a(in_channels: int = 5, n_classes: int = 2, base_channels: int = 64,
                  dropout: float = 0.5) -> TaoNet:
    b = base_channels
    widths = [b, 2 * b, 4 * b, 8 * b, 8 * b]
    blocks: list[nn.Module] = []
    cin = in_channels
    for w in widths:
        blocks.append(nn.Sequential(*_conv_bn_relu(cin, w), *_conv_bn_relu(w, w)))
        blocks.append(nn.MaxPool2d(2))
        cin = w
    features = nn.Sequential(*blocks)
    return TaoNet(features, blocks[-2], widths[-1], b, n_classes, dropout, "A")


def tao_network_b(in_channels: int = 5, n_classes: int = 2, base_channels: int = 64,
                  dropout: float = 0.5) -> TaoNet:
    b = base_channels
    widths = [b, 2 * b, 4 * b, 8 * b]
    layers: list[nn.Module] = [*_conv_bn_relu(in_channels, b), nn.MaxPool2d(2)]
    for i, w in enumerate(widths):
        if i:
            layers += _conv_bn_relu(widths[i - 1], w, stride=2)
        layers += [ResBlock(w), ResBlock(w)]
    cam = layers[-1]
    layers.append(nn.MaxPool2d(2))
    return TaoNet(nn.Sequential(*layers), cam, widths[-1], b, n_classes, dropout, "B")


def probabilities(logits: torch.Tensor) -> torch.Tensor:
    """The paper's softmax output."""
    return torch.softmax(logits, dim=1)


def conv_layer_count(model: nn.Module) -> int:
    return sum(isinstance(m, nn.Conv2d) for m in model.modules())
