"""The generic segmentation engine on a non-orbit task (a bright 'lesion' in an oblique scan):
no orbit rule is involved, and probabilities map back onto the input's own grid."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import torch

from orbitai.io import Volume
from orbitai.metrics.segmentation import dice
from orbitai.engine.inference import SegSpec, predict


def threshold_net() -> torch.nn.Module:
    """Pointwise: class 1 where the normalised intensity is above 0.5."""
    net = torch.nn.Conv3d(1, 2, 1)
    with torch.no_grad():
        net.weight[:] = torch.tensor([-20.0, 20.0]).view(2, 1, 1, 1, 1)
        net.bias[:] = torch.tensor([10.0, -10.0])
    return net.eval()


def oblique_scan(lesion: bool = True) -> tuple[Volume, np.ndarray]:
    th = np.deg2rad(15)
    d = np.array([[np.cos(th), -np.sin(th), 0], [np.sin(th), np.cos(th), 0], [0, 0, 1]])
    k, j, i = np.indices((20, 48, 40))
    truth = ((k - 10) / 5.0) ** 2 + ((j - 20) / 8.0) ** 2 + ((i - 25) / 7.0) ** 2 < 1
    arr = np.where(truth & lesion, 100.0, 10.0).astype(np.float32)
    return Volume(arr, (0.9, 0.8, 1.5), (12.0, -30.0, 5.0), d), truth


SPEC = SegSpec((1.0, 1.0, 1.0), (16, 16, 16), ("lesion",), {"mode": "percentile", "low": 0, "high": 100}, "MR")


def test_engine_segments_a_lesion_on_the_input_grid():
    vol, truth = oblique_scan()
    res = predict(vol, threshold_net(), SPEC, mirror=True)
    full = res.class_map()
    assert full.same_geometry(vol) and res.confidence.same_geometry(vol)
    assert dice(full.array == 1, truth) > 0.9
    (k0, k1), (j0, j1), (i0, i1) = res.box
    assert res.classes.shape == (k1 - k0, j1 - j0, i1 - i0)
    assert np.all(res.confidence.array[:k0] == 1.0) and res.confidence.array.min() >= 0.5
    assert res.warnings == [] and res.window_seconds > 0


def test_engine_with_nothing_found_has_no_box():
    vol, _ = oblique_scan(lesion=False)
    res = predict(vol, threshold_net(), SPEC, mirror=False)
    assert res.box is None and res.classes is None
    assert not res.class_map().array.any() and np.all(res.confidence.array == 1.0)


def test_engine_imports_no_orbit_rule():
    code = ("import sys, orbitai.engine.inference; "
            "bad = [m for m in sys.modules if m.startswith(('orbitai.orbit', 'orbitai.labels', 'orbitai.engine.postprocess'))]; "
            "print(bad); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def test_orbit_segmentation_searches_the_whole_scan_when_the_front_of_the_head_has_no_orbit(caplog):
    """Tissue far in front of the face (here a block 150 mm ahead) moves the search box off the orbits:
    the first pass finds no eyeball and the whole scan is searched again."""
    import logging

    from orbitai.orbit.models import load_seg_model
    from orbitai.orbit.segment import segment
    from orbitai.phantoms import orbit_case

    case = orbit_case(777300, "ct", size=(160, 160, 40), spacing=(0.7, 0.7, 1.0), oblique=False)
    a = case.image.array
    pad = 220                                                   # 154 mm more in front (rows run A -> P)
    big = np.full((a.shape[0], a.shape[1] + pad, a.shape[2]), -1000, a.dtype)
    big[:, pad:] = a
    big[:, 5:40, 40:120] = 40                                   # soft tissue, far anterior
    origin = case.image.index_to_physical([0, -pad, 0])
    vol = Volume(big, case.image.spacing, origin, case.image.direction)
    _, net, spec = load_seg_model(None, True, "cpu")
    with caplog.at_level(logging.INFO, logger="orbitai.orbit.segment"):
        res = segment(vol, net, spec, mirror=False)
    assert "searching the whole scan" in caplog.text
    truth = np.zeros_like(res.labels.array)
    truth[:, pad:] = case.labels.array
    assert dice(np.isin(res.labels.array, [1, 2]), np.isin(truth, [1, 2])) > 0.85


class SliceWise(torch.nn.Module):
    """The threshold applied slice by slice with a 2D convolution, as the 2D networks' volume wrappers do."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 2, 1)
        with torch.no_grad():
            self.conv.weight[:] = torch.tensor([-20.0, 20.0]).view(2, 1, 1, 1)
            self.conv.bias[:] = torch.tensor([10.0, -10.0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, d, h, w = x.shape
        y = self.conv(x.permute(0, 2, 1, 3, 4).reshape(n * d, c, h, w))
        return y.reshape(n, d, -1, h, w).permute(0, 2, 1, 3, 4)


def test_3d_and_2d_networks_give_the_same_map_on_the_cpu():
    """3D networks run channels-last on the CPU; a network with 2D convolutions keeps its layout."""
    vol, truth = oblique_scan()
    three, two = (predict(vol, net, SPEC, "overlap", "cpu", mirror=False).class_map().array
                  for net in (threshold_net(), SliceWise().eval()))
    assert np.array_equal(three, two) and dice(three == 1, truth) > 0.9
