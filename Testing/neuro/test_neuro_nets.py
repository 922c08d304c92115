"""Paper 003's networks: stage shapes for a 100^3 input, parameter counts (Table 3), the views, and the
ImageNet first-convolution mapping on a state dict made here."""
from __future__ import annotations

import hashlib

import pytest
import torch
import torch.nn.functional as F

from orbitai.errors import InputError
from orbitai.models import build_model, count_parameters
from orbitai.neuro.nets import (CompressionBlock, TwoViewNet, adapt_first_conv, load_imagenet, resnet2d,
                                       resnet3d)

#: Parameter counts (paper 003's Table 3 for these implementations; 2 classes).
PARAMS = {("twoview", 18, 1.0): 11_682_562, ("twoview", 34, 1.0): 21_790_722,
          ("resnet3d", 18, 1.0): 33_161_922, ("resnet3d", 34, 1.0): 63_471_554,
          ("resnet3d", 18, 0.25): 2_078_898, ("resnet3d", 34, 0.25): 3_974_642}


@pytest.mark.parametrize("depth", [18, 34])
def test_two_view_stage_shapes_for_a_100_cube(depth):
    torch.manual_seed(0)
    net = TwoViewNet(depth).eval()
    with torch.no_grad():
        st = net.stages(torch.rand(2, 1, 100, 100, 100))
    shapes = {k: tuple(v.shape) for k, v in st.items()}
    assert shapes == {"view0": (2, 32, 32, 32), "view1": (2, 32, 32, 32), "concat": (2, 64, 32, 32),
                      "stem": (2, 64, 16, 16), "maxpool": (2, 64, 8, 8), "layer1": (2, 64, 8, 8),
                      "layer2": (2, 128, 4, 4), "layer3": (2, 256, 2, 2), "layer4": (2, 512, 1, 1),
                      "pool": (2, 512), "logits": (2, 2)}
    assert net.trunk.conv1.in_channels == 64 and net.compress[0].conv.in_channels == 100
    assert net.compress[0].conv.kernel_size == (7, 7) and net.compress[0].conv.stride == (3, 3)
    assert net.dropout.p == pytest.approx(0.15)


def test_parameter_counts():
    for (kind, depth, width), n in PARAMS.items():
        net = TwoViewNet(depth, width=width) if kind == "twoview" else resnet3d(depth, width)
        assert count_parameters(net) == n, (kind, depth, width)
    # the two compression blocks: 2 x (100 x 32 x 7 x 7 weights + BN 2 x 32)
    assert sum(count_parameters(b) for b in TwoViewNet(18).compress) == 2 * (100 * 32 * 49 + 64)
    # the 2D trunk is torchvision's ResNet: 11,689,512 / 21,797,672 parameters at 3 channels, 1000 classes
    assert count_parameters(resnet2d(18, 3, n_classes=1000)) == 11_689_512
    assert count_parameters(resnet2d(34, 3, n_classes=1000)) == 21_797_672


def test_resnet3d_shape_and_registry():
    net = resnet3d(18, width=0.25).eval()
    with torch.no_grad():
        assert tuple(net(torch.rand(1, 1, 100, 100, 100)).shape) == (1, 2)
    assert net.conv1.in_channels == 1
    assert isinstance(build_model("neuro_twoview", depth=34), TwoViewNet)
    assert count_parameters(build_model("neuro_resnet3d", depth=34, width=0.25)) == PARAMS[("resnet3d", 34, 0.25)]


def test_a_view_reads_its_axis_as_channels():
    torch.manual_seed(0)
    a, b = CompressionBlock(1, 20).eval(), CompressionBlock(2, 20).eval()
    b.load_state_dict(a.state_dict())
    x = torch.rand(2, 1, 20, 20, 20)
    with torch.no_grad():
        # the D-axis view of x is the H-axis view of x with D and H swapped
        torch.testing.assert_close(a(x), b(x.transpose(2, 3)))
        ref = F.relu(a.bn(F.conv2d(x[:, 0], a.conv.weight, stride=3)))
        torch.testing.assert_close(a(x), ref)
    assert not torch.allclose(a(x), b(x))


def test_bad_arguments():
    with pytest.raises(InputError):
        TwoViewNet(50)
    with pytest.raises(InputError):
        TwoViewNet(18, views=(1, 1))
    with pytest.raises(InputError):
        resnet3d(18, width=0.01)
    with pytest.raises(InputError, match="takes"):
        TwoViewNet(18, in_size=20)(torch.rand(1, 1, 20, 20, 21))


def test_first_conv_mapping_keeps_a_constant_images_response():
    w = torch.randn(64, 3, 7, 7)
    for c in (1, 2, 64, 100):
        m = adapt_first_conv(w, c)
        assert m.shape == (64, c, 7, 7)
        out_rgb = F.conv2d(torch.ones(1, 3, 7, 7), w)
        torch.testing.assert_close(F.conv2d(torch.ones(1, c, 7, 7), m), out_rgb, rtol=1e-4, atol=1e-4)
    m6 = adapt_first_conv(w, 6)
    for c in range(6):
        torch.testing.assert_close(m6[:, c], w.mean(1) * 0.5)
    with pytest.raises(InputError):
        adapt_first_conv(torch.randn(64, 4, 7, 7), 64)


def _torchvision_like(depth: int, path) -> str:
    """A torchvision-layout ResNet state dict (3 channels, 1000 classes), saved; returns its SHA-256."""
    torch.manual_seed(1)
    sd = resnet2d(depth, 3, n_classes=1000).state_dict()
    assert "layer2.0.downsample.0.weight" in sd and "layer2.0.downsample.0.bias" not in sd
    torch.save(sd, path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_load_imagenet_maps_the_first_conv_and_loads_the_rest(tmp_path):
    path = tmp_path / "resnet18.pth"
    sha = _torchvision_like(18, path)
    src = torch.load(path, weights_only=True)
    torch.manual_seed(2)
    net = TwoViewNet(18)
    fc0, comp0 = net.trunk.fc.weight.clone(), net.compress[0].conv.weight.clone()
    info = load_imagenet(net, path, sha)
    assert info["pretrained"] and info["loaded"] == len(src) - 2 and info["sha256"] == sha
    torch.testing.assert_close(net.trunk.conv1.weight, adapt_first_conv(src["conv1.weight"], 64))
    torch.testing.assert_close(net.trunk.layer3[1].conv2.weight, src["layer3.1.conv2.weight"])
    torch.testing.assert_close(net.trunk.layer4[0].downsample[1].running_var, src["layer4.0.downsample.1.running_var"])
    torch.testing.assert_close(net.trunk.fc.weight, fc0)           # new 2-class head
    torch.testing.assert_close(net.compress[0].conv.weight, comp0)  # compression blocks keep their init


def test_load_imagenet_refusals_and_absence(tmp_path):
    path = tmp_path / "resnet34.pth"
    sha = _torchvision_like(34, path)
    net = TwoViewNet(18)
    before = net.trunk.conv1.weight.clone()
    with pytest.raises(InputError, match="SHA-256"):
        load_imagenet(net, path, "0" * 64)
    with pytest.raises(InputError, match="has not"):
        load_imagenet(net, path, sha)                # resnet34 weights into a resnet18 trunk
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(InputError, match="Cannot read"):
        load_imagenet(net, junk)
    info = load_imagenet(net, tmp_path / "absent.pth", None)
    assert not info["pretrained"] and "from scratch" in info["note"]
    torch.testing.assert_close(net.trunk.conv1.weight, before)
