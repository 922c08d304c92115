"""SV-net's plain-torch blocks are MONAI's Convolution / ResidualUnit in all but the import: the same
state-dict keys, the same outputs (random weights and the bundled demo weights), and building an
SV-net does not import MONAI."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch import nn

from orbitai.bundle import find_bundle
from orbitai.orbit.nets.svnet import ConvBlock, ResidualStage, svnet, sunet

blocks = pytest.importorskip("monai.networks.blocks")


def monai_twin(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with every ConvBlock / ResidualStage rebuilt from MONAI's blocks."""
    import copy

    twin = copy.deepcopy(model)

    def rebuild(m: nn.Module) -> nn.Module:
        if isinstance(m, ConvBlock):
            conv = m.conv
            dims = 3 if isinstance(conv, (nn.Conv3d, nn.ConvTranspose3d)) else 2
            transposed = isinstance(conv, (nn.ConvTranspose2d, nn.ConvTranspose3d))
            return blocks.Convolution(dims, conv.in_channels, conv.out_channels, strides=conv.stride[0],
                                      kernel_size=conv.kernel_size[0], adn_ordering="NA", act="RELU",
                                      norm="BATCH", bias=conv.bias is not None, is_transposed=transposed,
                                      padding=conv.padding[0], output_padding=0 if transposed else None,
                                      conv_only=not hasattr(m, "adn"))
        if isinstance(m, ResidualStage):
            unit = m.conv.unit0.conv
            dims = 3 if isinstance(unit, nn.Conv3d) else 2
            return blocks.ResidualUnit(dims, unit.in_channels, unit.out_channels, strides=1,
                                       kernel_size=unit.kernel_size[0], subunits=len(m.conv), adn_ordering="NA",
                                       act="RELU", norm="BATCH", bias=False)
        for name, child in list(m.named_children()):
            setattr(m, name, rebuild(child))
        return m

    return rebuild(twin)


def _randomise_batchnorm(model: nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)


@pytest.mark.parametrize("factory, shape", [(svnet, (1, 1, 16, 32, 32)), (sunet, (2, 1, 32, 48))])
def test_same_keys_and_outputs_as_monai_blocks(factory, shape):
    torch.manual_seed(1)
    ours = factory(base_channels=4).eval()
    _randomise_batchnorm(ours, 2)
    twin = monai_twin(ours).eval()
    assert any(isinstance(m, blocks.ResidualUnit) for m in twin.modules())
    assert list(ours.state_dict()) == list(twin.state_dict())
    twin.load_state_dict(ours.state_dict(), strict=True)
    x = torch.randn(*shape)
    with torch.inference_mode():
        assert torch.equal(ours(x), twin(x))


@pytest.mark.parametrize("name", ["orbit_svnet_ct_demo", "orbit_svnet_dr_demo", "orbit_svnet_mri_demo", "orbit_sunet_ct_demo"])
def test_bundled_weights_load_strictly_and_give_monai_outputs(name):
    bundle = find_bundle(name)
    model = bundle.load_model("cpu")          # load_state_dict(strict=True) inside
    twin = monai_twin(model).eval()
    twin.load_state_dict(model.state_dict(), strict=True)
    torch.manual_seed(3)
    x = torch.randn(1, 1, 16, 64, 64)     # a volume: the 2D SU-net bundle runs slice by slice
    with torch.inference_mode():
        assert torch.allclose(model(x), twin(x), atol=1e-5, rtol=0)


def test_building_svnet_imports_no_monai():
    code = ("import sys, orbitai.orbit; from orbitai.models import build_model; build_model('svnet', base_channels=4); "
            "print('monai' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
