"""Orbit segmentation engine pieces that need no trained model."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from orbitai.io import Volume, VolumeError
from orbitai.labels import values_for
from orbitai.orbit.rules import class_lut, class_values, classes_to_orbit_labels
from orbitai.preprocess.checks import check_input
from orbitai.preprocess.grid import model_grid
from orbitai.preprocess.intensity import normalise
from orbitai.orbit.configs import ORBIT_STRUCTURES, get_config
from orbitai.orbit.data import to_classes
from orbitai.engine.windows import WindowLimits, sliding_window


def ball(shape, centre, r):
    k, j, i = np.indices(shape)
    return (k - centre[0]) ** 2 + (j - centre[1]) ** 2 + (i - centre[2]) ** 2 <= r * r


def test_classes_split_into_left_and_right_with_one_component_each():
    shape = (20, 30, 60)
    cls = np.zeros(shape, np.uint8)
    right_eye, left_eye = ball(shape, (10, 15, 12), 6), ball(shape, (10, 15, 47), 6)
    cls[right_eye | left_eye] = 1
    cls[ball(shape, (10, 15, 12), 2)] = 0            # a hole inside the right eye
    cls[2, 2, 5] = 1                                  # an island on the right
    cls[10, 15, 24:28] = 2                            # right optic nerve stub
    vol = Volume(cls, (0.5, 0.5, 1.0))               # identity direction: +i is LPS +x = patient left
    lab = classes_to_orbit_labels(vol, class_values(ORBIT_STRUCTURES))
    l_eye, r_eye = values_for("eyeball")
    assert np.array_equal(lab.array == l_eye, left_eye)
    assert np.array_equal(lab.array == r_eye, right_eye)   # hole filled, island removed
    assert np.count_nonzero(lab.array == values_for("optic_nerve")[1]) == 4


def test_to_classes_maps_both_sides_and_drops_unmodelled():
    lut = class_lut(ORBIT_STRUCTURES)
    lab = np.array([0, 1, 2, 3, 4, 11, 12, 13, 16]).reshape(1, 1, 9)
    assert to_classes(lab, lut).ravel().tolist() == [0, 1, 1, 2, 2, 6, 6, 0, 0]
    with pytest.raises(VolumeError, match="must lie in 0.."):
        to_classes(np.array([[[40]]]), lut)


def test_model_grid_covers_oblique_input():
    th = np.deg2rad(20)
    d = np.array([[np.cos(th), -np.sin(th), 0], [np.sin(th), np.cos(th), 0], [0, 0, 1]])
    vol = Volume(np.zeros((10, 40, 40), np.float32), (0.5, 0.5, 2.0), (5, -3, 1), d)
    ref = model_grid(vol, (1.0, 1.0, 1.0))
    lo = np.array(ref.GetOrigin())
    hi = lo + (np.array(ref.GetSize()) - 1) * 1.0
    for corner in [(0, 0, 0), (39, 39, 9), (39, 0, 0), (0, 39, 9)]:
        p = vol.index_to_physical(corner)
        assert np.all(p >= lo - 1e-6) and np.all(p <= hi + 1.0)


def test_ct_window_normalisation_is_the_papers():
    x = np.array([-1000, -152, 48, 248, 2000], np.float32)
    np.testing.assert_allclose(normalise(x, {"mode": "ct_window", "level": 48, "width": 400}), [0, 0, 0.5, 1, 1])


def test_step1_and_overlap_windows_agree_for_a_translation_invariant_net():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv3d(1, 3, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv3d(3, 2, 1)).eval()
    x = torch.rand(1, 1, 40, 24, 24)
    a = sliding_window(x, net, (16, 16, 16), "overlap")
    b = sliding_window(x, net, (16, 16, 16), "step1")
    assert a.shape == b.shape == (1, 2, 40, 24, 24)
    # Window borders see zero padding, so maps differ slightly (random net: logits near ties).
    assert (a.argmax(1) == b.argmax(1)).float().mean() > 0.9
    pointwise = torch.nn.Conv3d(1, 2, 1).eval()   # no spatial context: every window scheme is exact
    full = pointwise(x)
    for mode in ("overlap", "step1"):
        torch.testing.assert_close(sliding_window(x, pointwise, (16, 16, 16), mode), full, atol=1e-5, rtol=1e-4)


def test_bad_inputs_are_refused():
    modality = get_config("svnet-demo-ct").spec.modality
    arr = np.zeros((10, 10, 10), np.float32)
    arr[0, 0, 0] = np.nan
    with pytest.raises(VolumeError, match="NaN"):
        check_input(Volume(arr), modality)
    with pytest.raises(VolumeError, match="slices"):
        check_input(Volume(np.zeros((1, 50, 50), np.float32)), modality)
    warn = check_input(Volume(np.full((10, 60, 60), 300.0, np.float32), (1, 1, 1)), modality)
    assert any("does not look like CT" in w for w in warn)


@pytest.mark.parametrize("mode", ["ct_window", "percentile", "zscore"])
def test_normalisation_gives_float32_for_any_input_type(mode):
    for dtype in (np.int16, np.float32, np.float64):
        out = normalise(np.arange(1000, dtype=dtype).reshape(10, 10, 10), {"mode": mode})
        assert out.dtype == np.float32


def test_overlap_windows_take_as_many_slices_as_the_voxel_budget_allows():
    torch.manual_seed(0)
    pointwise = torch.nn.Conv3d(1, 2, 1).eval()
    x = torch.rand(1, 1, 200, 32, 32)
    totals = {}
    for budget in (64 * 32 * 32, 2 ** 23):
        seen: list[int] = []
        out = sliding_window(x, pointwise, (16, 16, 16), "overlap", limits=WindowLimits(max_window_voxels=budget),
                             progress=lambda d, t, m, seen=seen: seen.append(t))
        totals[budget] = seen[-1]
        with torch.no_grad():
            torch.testing.assert_close(out, pointwise(x), atol=1e-5, rtol=1e-4)
    # 64-slice windows, half overlapping, over 208 slices: 6; the default budget: the whole scan at once
    assert totals == {64 * 32 * 32: 6, 2 ** 23: 1}
