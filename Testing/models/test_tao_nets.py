"""TAO activity networks (paper 000): conv-layer counts, BN/ReLU placement, shapes, L2 groups."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from orbitai.models import build_model
from orbitai.tao.nets import ResBlock, conv_layer_count, probabilities


@pytest.mark.parametrize("name, convs", [("tao_network_a", 10), ("tao_network_b", 20)])
def test_paper_conv_counts_and_widths(name, convs):
    model = build_model(name)   # paper widths
    assert conv_layer_count(model) == convs
    widths = sorted({m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)})
    assert widths == [64, 128, 256, 512]
    assert all(m.kernel_size == (3, 3) for m in model.modules() if isinstance(m, nn.Conv2d))
    # BN between every conv and its activation
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == convs
    assert sum(isinstance(m, nn.Linear) for m in model.modules()) == 4
    assert sum(isinstance(m, nn.Dropout) and m.p == 0.5 for m in model.modules()) == 3


def test_network_b_has_eight_resblocks():
    model = build_model("tao_network_b", base_channels=8)
    assert sum(isinstance(m, ResBlock) for m in model.modules()) == 8


@pytest.mark.parametrize("name", ["tao_network_a", "tao_network_b"])
def test_forward_shapes_softmax_and_cam_layer(name):
    torch.manual_seed(0)
    model = build_model(name, base_channels=8).eval()
    seen = {}

    def keep_shape(module, inputs, output):
        seen["shape"] = tuple(output.shape)

    model.cam_layer.register_forward_hook(keep_shape)
    logits = model(torch.randn(3, 5, 128, 128))
    assert logits.shape == (3, 2)
    p = probabilities(logits)
    assert torch.allclose(p.sum(1), torch.ones(3))
    assert seen["shape"][0] == 3 and seen["shape"][2:] == (8, 8)
    with pytest.raises(ValueError, match="expects"):
        model(torch.randn(5, 128, 128))


def test_weight_decay_groups_follow_the_paper():
    model = build_model("tao_network_a", base_channels=8)
    conv, fc, rest = model.weight_decay_groups()
    assert (conv["weight_decay"], fc["weight_decay"], rest["weight_decay"]) == (0.01, 0.001, 0.0)
    assert len(conv["params"]) == 10 and len(fc["params"]) == 4
    n = sum(p.numel() for g in (conv, fc, rest) for p in g["params"])
    assert n == sum(p.numel() for p in model.parameters())
