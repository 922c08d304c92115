"""orbitai.preprocess: input checks, intensity, model grids and N4 bias-field correction."""
from __future__ import annotations

import numpy as np
import pytest

from orbitai.io import Volume, VolumeError, rotation
from orbitai.preprocess.bias import n4_correct
from orbitai.preprocess.checks import check_input, field_of_view_mm
from orbitai.scan.values import looks_like_ct
from orbitai.preprocess.grid import box_grid, model_grid, resample_onto
from orbitai.preprocess.intensity import masked_zscore, median_mad, normalise, zscore


def head(seed=0, shape=(24, 64, 64)):
    """A round 'head' of tissue at 300 in air at 0 (MR-like) with noise."""
    _, j, i = np.indices(shape)
    inside = ((j - 32) / 28.0) ** 2 + ((i - 32) / 28.0) ** 2 < 1
    rng = np.random.default_rng(seed)
    return np.where(inside, 300.0, 0.0) + rng.normal(0, 5, shape), inside


def test_ct_detection_and_modality_warnings():
    mr, inside = head()
    ct = np.where(inside, 40.0, -1000.0)
    assert looks_like_ct(Volume(ct.astype(np.float32))) and not looks_like_ct(Volume(mr.astype(np.float32)))
    assert check_input(Volume(ct.astype(np.float32)), "CT") == []
    assert check_input(Volume(ct.astype(np.float32)), "MR") == [
        "This model expects MRI but the image looks like CT (Hounsfield units)."]
    assert check_input(Volume(mr.astype(np.float32)), "any") == []
    with pytest.raises(VolumeError, match="only 2 slices"):
        check_input(Volume(np.zeros((2, 9, 9), np.float32)))
    np.testing.assert_allclose(field_of_view_mm(Volume(np.zeros((4, 5, 6)), (0.5, 1.0, 2.0))), [3.0, 5.0, 8.0])


def test_zscore_and_normalisation_modes():
    a = np.array([1.0, 2.0, 3.0, 4.0])
    z = zscore(a)
    assert z.dtype == np.float32 and abs(z.mean()) < 1e-6 and abs(z.std() - 1) < 1e-6
    np.testing.assert_array_equal(zscore(np.full(4, 7.0)), np.zeros(4))      # flat: only centred
    p = normalise(np.linspace(0, 100, 1001), {"mode": "percentile", "low": 0, "high": 100})
    assert p.min() == 0 and p.max() == 1
    with pytest.raises(ValueError, match="Unknown intensity normalisation 'nope'"):
        normalise(a, {"mode": "nope"})


def test_resample_onto_keeps_labels_and_fills_images_with_their_minimum():
    lab = np.zeros((6, 10, 10), np.uint8)
    lab[2:4, 3:7, 3:7] = 5
    vol = Volume(lab, (1.0, 1.0, 2.0), (10.0, -4.0, 3.0))
    ref = model_grid(vol, (0.5, 0.5, 1.0))
    out = resample_onto(vol, ref, label=True)
    assert out.dtype == np.uint8 and set(np.unique(out)) == {0, 5}
    assert abs((out == 5).sum() * 0.25 - (lab == 5).sum() * 2.0) / ((lab == 5).sum() * 2.0) < 0.35
    img = Volume(np.full((6, 10, 10), 7, np.int16), (1.0, 1.0, 2.0))
    grid = resample_onto(img, model_grid(img, (3.0, 3.0, 3.0)))
    assert grid.dtype == np.float32 and np.all(grid == 7.0)


def test_box_grid_covers_the_box_plus_margin_and_keeps_an_aligned_lattice():
    vol = Volume(np.zeros((10, 20, 30), np.uint8), (1.0, 1.0, 1.0), (5.0, -7.0, 2.0), np.diag([1.0, -1.0, 1.0]))
    las = np.diag([1.0, -1.0, 1.0])
    ref = box_grid(vol, (slice(2, 8), slice(3, 15), slice(4, 26)), 1.0, las, margin_mm=4.0)
    assert ref.GetSize() == (22 + 8, 12 + 8, 6 + 8) and ref.GetSpacing() == (1.0, 1.0, 1.0)
    assert np.allclose(ref.GetDirection(), las.ravel())
    # the input's voxel (i, j, k) = (4, 3, 2) lies on the grid's voxel (4, 4, 4): the same lattice
    p = vol.index_to_physical([4, 3, 2])
    assert np.allclose(ref.TransformPhysicalPointToContinuousIndex(tuple(float(v) for v in p)), (4, 4, 4))
    # an oblique input: every box corner inside the (LPS, 2 mm) grid
    obl = Volume(np.zeros((10, 20, 30), np.uint8), (0.8, 1.2, 3.0), (1.0, 2.0, 3.0), rotation(0.3, -0.2, 0.5))
    ref = box_grid(obl, (slice(1, 9), slice(0, 20), slice(5, 25)), (2.0, 2.0, 2.0), np.eye(3), 1.0)
    size = np.array(ref.GetSize())
    for c in ([5, 0, 1], [24, 19, 8], [5, 19, 8], [24, 0, 1]):
        k = np.array(ref.TransformPhysicalPointToContinuousIndex(tuple(obl.index_to_physical(c))))
        assert np.all(k >= 0.5 - 1e-9) and np.all(k <= size - 1.5 + 1e-9)   # 1 mm margin = half a voxel


def test_masked_zscore():
    a = np.array([[0.0, 10.0, 12.0, 14.0, 100.0]], np.float32)
    mask = a > 0
    med, mad = median_mad(a[mask])
    assert (med, mad) == (13.0, 2.0)
    z = masked_zscore(a, mask, med, 2.0, (-3.0, 5.0))
    assert z.dtype == np.float32 and z.tolist() == [[-3.0, -1.5, -0.5, 0.5, 5.0]]


def test_n4_removes_a_smooth_multiplicative_bias():
    clean, inside = head(1)
    _, j, i = np.indices(clean.shape)
    bias = np.exp(0.35 * (i - 32) / 32.0 + 0.2 * (j - 32) / 32.0)        # smooth, +-40 % across the head
    vol = Volume((clean * bias).astype(np.float32), (1.0, 1.0, 2.0))
    out = n4_correct(vol, shrink=2, iterations=30, levels=3)
    assert out.same_geometry(vol) and np.issubdtype(out.array.dtype, np.floating)

    def cv(a):
        t = a[inside]
        return float(t.std() / t.mean())

    assert cv(out.array) < 0.5 * cv(vol.array)
