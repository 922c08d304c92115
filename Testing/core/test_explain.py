"""Occlusion and Grad-CAM on small deterministic CNNs: batched == loop, maps find the region the
model looks at, shapes, and the model's training flag is left as it was."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from orbitai.explain import grad_cam, occlusion_map, occlusion_map_loop


class RegionNet(nn.Module):
    """Class 1 logit = mean of a conv feature inside one region; looks nowhere else."""

    def __init__(self, nd: int, region):
        super().__init__()
        conv = nn.Conv2d if nd == 2 else nn.Conv3d
        self.features = nn.Sequential(conv(3, 4, 3, padding=1), nn.ReLU())
        self.region = region

    def forward(self, x):
        f = self.features(x)
        r = f[(slice(None), slice(None)) + self.region].mean(dim=tuple(range(1, f.ndim)))
        return torch.stack([torch.zeros_like(r), 4 * r], 1)


def _seeded(nd, region):
    torch.manual_seed(0)
    m = RegionNet(nd, region)
    with torch.no_grad():
        m.features[0].weight.abs_()
        m.features[0].bias.fill_(0.1)
    return m


@pytest.mark.parametrize("nd, shape, patch, stride", [
    (2, (32, 32), 8, 4), (3, (12, 16, 16), (4, 8, 8), (2, 4, 4)),
    (2, (30, 27), (8, 5), (4, 3)),                      # stride does not divide: last window cut by the edge
])
def test_batched_equals_loop(nd, shape, patch, stride):
    region = tuple(slice(s // 3, None) for s in shape)      # reaches the far edges
    model = _seeded(nd, region)
    x = torch.rand(1, 3, *shape)
    a = occlusion_map(model, x, 1, patch, stride, batch_size=7)
    b = occlusion_map_loop(model, x, 1, patch, stride)
    assert a.shape == shape and np.abs(a - b).max() <= 1e-5
    for axis in range(nd):                              # the far edge is covered (not left at 0)
        assert np.abs(np.take(b, -1, axis=axis)).max() > 1e-4


def test_maps_find_the_region_the_model_uses():
    region = (slice(4, 12), slice(20, 28))
    model = _seeded(2, region)
    x = torch.rand(1, 3, 32, 32) + 0.5
    occ = np.clip(occlusion_map(model, x, 1, 4, 2), 0, None)
    inside = np.zeros((32, 32), bool)
    inside[2:14, 18:30] = True                 # the region plus the patch's reach
    assert occ[inside].sum() / occ.sum() > 0.95
    # Grad-CAM weighs the layer's activations: with evidence only in the region, so is the map
    with torch.no_grad():
        model.features[0].bias.zero_()
    blob = torch.zeros(1, 3, 32, 32)
    blob[..., 4:12, 20:28] = 1.0
    cam = grad_cam(model, blob, 1, model.features)
    assert cam.shape == (32, 32) and cam.max() == pytest.approx(1.0) and cam.min() >= 0
    assert cam[inside].sum() / cam.sum() > 0.9


def test_training_flag_restored_and_bad_input():
    model = _seeded(2, (slice(0, 4), slice(0, 4))).train()
    x = torch.rand(1, 3, 16, 16)
    occlusion_map(model, x, 1, 4, 4)
    grad_cam(model, x, 1, model.features)
    assert model.training
    with pytest.raises(ValueError, match="larger than"):
        occlusion_map(model, x, 1, 32, 4)
    with pytest.raises(ValueError):
        occlusion_map(model, torch.rand(2, 3, 16, 16), 1, 4, 4)
    with pytest.raises(ValueError, match="leaves gaps"):
        occlusion_map_loop(model, x, 1, 4, 8)


# ---------------------------------------------------------------- incremental occlusion
def _tao_net(name, width=4):
    """A TAO network with seeded weights and batch-norm statistics taken from seeded inputs (as
    training would), so that occluding a patch moves the probability."""
    from orbitai.models import build_model

    torch.manual_seed(0)
    model = build_model(name, in_channels=5, n_classes=2, base_channels=width)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = None
    with torch.no_grad():
        model.train()
        for _ in range(3):
            model(torch.randn(8, 5, 64, 64))
    return model.eval()


@pytest.mark.parametrize("name", ["tao_network_a", "tao_network_b"])
@pytest.mark.parametrize("patch, stride", [(16, 8), (12, 7), ((9, 14), (5, 6))])
@pytest.mark.parametrize("batch_size", [1, 5, 14])   # one copy; pieces of a grid row; whole rows
def test_incremental_equals_loop_on_the_tao_networks(name, patch, stride, batch_size):
    from orbitai.explain.incremental import supports

    model = _tao_net(name)
    assert supports(model)
    x = torch.randn(1, 5, 64, 64, generator=torch.Generator().manual_seed(1))
    inc = occlusion_map(model, x, 1, patch, stride, batch_size=batch_size, method="incremental")
    ref = occlusion_map_loop(model, x, 1, patch, stride)
    assert np.abs(ref).max() > 1e-3                     # the map is not trivially zero
    assert np.abs(inc - ref).max() <= 1e-5
    assert np.abs(np.take(ref, -1, axis=1)).max() > 0   # far edge covered


def test_incremental_switches_to_whole_maps_at_an_unsupported_layer():
    class Odd(nn.Module):                               # not one of the supported layers
        def forward(self, x):
            return x * torch.sigmoid(x)

    model = _tao_net("tao_network_b")
    model.features.insert(3, Odd())                     # after the stem's conv, BN, ReLU
    x = torch.randn(1, 5, 64, 64, generator=torch.Generator().manual_seed(2))
    inc = occlusion_map(model, x, 0, 16, 8, method="incremental")
    assert np.abs(inc - occlusion_map_loop(model, x, 0, 16, 8)).max() <= 1e-5


def test_auto_method_and_clear_errors_and_model_untouched():
    from orbitai.explain.incremental import supports

    region_model = _seeded(2, (slice(0, 8), slice(0, 8)))
    assert not supports(region_model)                   # forward is not head(features(x))
    x = torch.rand(1, 3, 16, 16)
    with pytest.raises(ValueError, match="method='batched'"):
        occlusion_map(region_model, x, 1, 4, 4, method="incremental")
    with pytest.raises(ValueError, match="method must be"):
        occlusion_map(region_model, x, 1, 4, 4, method="fast")
    auto = occlusion_map(region_model, x, 1, 4, 4)      # falls back to captum batching
    assert np.abs(auto - occlusion_map_loop(region_model, x, 1, 4, 4)).max() <= 1e-5

    model = _tao_net("tao_network_a").train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    layouts = [p.is_contiguous() for p in model.parameters()]
    xt = torch.randn(1, 5, 64, 64)
    a = occlusion_map(model, xt, 1, 16, 8)              # auto: incremental
    b = occlusion_map(model, xt, 1, 16, 8, method="batched")
    assert np.abs(a - b).max() <= 1e-5
    assert model.training                               # flag restored
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert layouts == [p.is_contiguous() for p in model.parameters()]   # no channels-last left behind


def test_only_declared_residual_blocks_are_recomputed_incrementally():
    from orbitai.explain.incremental import _supported
    from orbitai.tao.nets import ResBlock

    class LooksResidual(nn.Module):                     # has body and act, but forward is something else
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1))
            self.act = nn.ReLU()

        def forward(self, x):
            return self.act(self.body(x) - x)

    assert _supported(ResBlock(4)) and not _supported(LooksResidual())


def test_batch_norm_without_running_statistics_is_not_pointwise():
    """Such a layer normalises with the batch's own statistics in eval mode too, so a copy's output
    depends on the other copies: it must not be recomputed on crops or folded into a convolution."""
    from orbitai.explain.incremental import _folded, _supported

    bn = nn.BatchNorm2d(4, track_running_stats=False)
    assert _supported(nn.BatchNorm2d(4).eval()) and not _supported(bn)
    seq = nn.Sequential(nn.Conv2d(3, 4, 3), bn)
    assert list(_folded(seq)) == [seq[0], bn]


def test_incremental_whole_maps_in_pieces_within_the_memory_budget(monkeypatch):
    """With a budget smaller than one copy's maps, each grid row's whole maps go through the rest
    of the network on their own: the same map as the loop."""
    from orbitai.explain import incremental

    monkeypatch.setattr(incremental, "FULL_MAP_BYTES", 1)
    model = _tao_net("tao_network_b")
    x = torch.randn(1, 5, 64, 64, generator=torch.Generator().manual_seed(3))
    inc = occlusion_map(model, x, 1, 16, 8, method="incremental")     # default: all 49 copies in one pass
    assert np.abs(inc - occlusion_map_loop(model, x, 1, 16, 8)).max() <= 1e-5


def test_incremental_equals_loop_on_random_shapes_patches_and_batches():
    """Seeded random image sizes, patches, strides (even spacing or not) and batch sizes."""
    rng = np.random.default_rng(0)
    nets = {n: _tao_net(n) for n in ("tao_network_a", "tao_network_b")}
    for k in range(8):
        h, w = (int(v) for v in rng.integers(32, 80, 2))
        patch = (int(rng.integers(1, 24)), int(rng.integers(1, 24)))
        stride = tuple(int(rng.integers(1, p + 1)) for p in patch)
        batch = int(rng.choice([1, 3, 7, 50, 256]))
        model = nets[("tao_network_a", "tao_network_b")[k % 2]]
        x = torch.randn(1, 5, h, w, generator=torch.Generator().manual_seed(k))
        inc = occlusion_map(model, x, 1, patch, stride, batch_size=batch, method="incremental")
        ref = occlusion_map_loop(model, x, 1, patch, stride)
        assert np.abs(inc - ref).max() <= 1e-5, (h, w, patch, stride, batch)
