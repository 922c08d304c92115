"""Issue 67: the basic edits with Slicer's effects' semantics (threshold, islands, smoothing, fill between slices) on
arrays, SmartPencil's superpixels sized in millimetres, and a 3D map shared by every view's clicks."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from orbitai.annotate import AnnotationError, SuperpixelCache, SuperpixelSettings, compute_superpixels
from orbitai.annotate.edits import (drawn_axis, fill_between_slices, kernel_voxels, keep_largest_island,
                                    remove_small_islands, smooth_mask, threshold_mask)
from orbitai.annotate.superpixels import DEFAULT_SIZE_MM


def test_threshold_includes_both_ends_and_refuses_a_reversed_range():
    a = np.arange(27, dtype=np.int16).reshape(3, 3, 3)
    m = threshold_mask(a, 5, 9)
    assert np.array_equal(np.flatnonzero(m), [5, 6, 7, 8, 9])
    with pytest.raises(AnnotationError, match="above the maximum"):
        threshold_mask(a, 9, 5)


def test_islands_are_face_connected_as_in_slicer():
    m = np.zeros((10, 10, 10), bool)
    m[1:4, 1:4, 1:4] = True            # 27 voxels
    m[4, 4, 4] = True                  # touches the cube at a corner only: its own island
    m[6:8, 6:8, 6:8] = True            # 8 voxels
    largest = keep_largest_island(m)
    assert largest.sum() == 27 and not largest[4, 4, 4]
    kept = remove_small_islands(m, 8)
    assert kept.sum() == 27 + 8 and not kept[4, 4, 4]
    assert remove_small_islands(m, 0).sum() == m.sum()
    assert not keep_largest_island(np.zeros((3, 3, 3), bool)).any()


def test_smoothing_kernel_in_mm_and_its_methods():
    assert kernel_voxels(3.0, (1.0, 1.0, 1.0)) == (3, 3, 3)
    assert kernel_voxels(3.0, (0.5, 0.5, 3.0)) == (7, 7, 1)       # Slicer's getKernelSizePixel: odd, at least 1
    m = np.zeros((12, 12, 12), bool)
    m[3:9, 3:9, 3:9] = True
    holed = m.copy()
    holed[6, 6, 6] = False
    assert smooth_mask(holed, (1, 1, 1), "MORPHOLOGICAL_CLOSING", 3.0)[6, 6, 6]
    spiked = m.copy()
    spiked[6, 6, 10] = True
    assert not smooth_mask(spiked, (1, 1, 1), "MEDIAN", 3.0)[6, 6, 10]
    assert not smooth_mask(spiked, (1, 1, 1), "MORPHOLOGICAL_OPENING", 3.0)[6, 6, 10]
    with pytest.raises(AnnotationError, match="Unknown smoothing method"):
        smooth_mask(m, (1, 1, 1), "GAUSSIAN_BLUR", 3.0)


def test_fill_between_slices_interpolates_the_gap_and_keeps_the_drawn_slices():
    pytest.importorskip("slicer", reason="Slicer's vtkITK contour interpolation (the PyPI SimpleITK lacks ITK's)")
    from orbitai.mrml.annotation_images import slicer_contour_interpolation

    m = np.zeros((12, 32, 32), bool)
    yy, xx = np.mgrid[:32, :32]
    m[2] = (yy - 16) ** 2 + (xx - 16) ** 2 <= 36
    m[9] = (yy - 16) ** 2 + (xx - 16) ** 2 <= 64
    assert drawn_axis(m) == 0
    filled = fill_between_slices(m, interpolate=slicer_contour_interpolation)
    assert all(filled[k, 16, 16] for k in range(2, 10)), "every slice between the drawn ones is filled"
    assert np.array_equal(filled[2], m[2]) and np.array_equal(filled[9], m[9])
    assert not filled[0].any() and not filled[11].any()
    assert m[2].sum() < filled[5].sum() < m[9].sum()      # the contour grows from one slice to the other
    with pytest.raises(AnnotationError, match="at least two slices"):
        fill_between_slices(filled[:1], interpolate=slicer_contour_interpolation)


def _median_region_mm3(spacing):
    rng = np.random.default_rng(3)
    size_mm = 48
    shape = tuple(int(round(size_mm / s)) for s in spacing[::-1])
    img = rng.normal(100, 5, shape).astype(np.float32)
    spx = compute_superpixels(img, spacing, size_mm=DEFAULT_SIZE_MM)
    counts = np.bincount(spx.labels.ravel())
    return float(np.median(counts)) * float(np.prod(spacing)), counts


def test_superpixels_sized_in_mm_are_the_same_anatomy_at_any_voxel_size():
    one_mm, counts = _median_region_mm3((1.0, 1.0, 1.0))
    assert np.median(counts) <= 500, "a 1 mm scan gets regions of at most 500 voxels by default"
    half_mm, _ = _median_region_mm3((0.5, 0.5, 1.0))
    assert 0.5 < half_mm / one_mm < 2.0
    with pytest.raises(AnnotationError, match="positive number of mm"):
        compute_superpixels(np.zeros((4, 4, 4), np.float32), (1, 1, 1), size_mm=-2.0)


def test_a_3d_map_serves_clicks_from_every_view_and_a_cancel_stops_it():
    img = np.random.default_rng(0).normal(0, 1, (24, 24, 24)).astype(np.float32)
    cache = SuperpixelCache()
    first = cache.get_or_compute(img, (1, 1, 1), SuperpixelSettings(100, size_mm=4.0, axis=0))
    assert cache.get_or_compute(img, (1, 1, 1), SuperpixelSettings(100, size_mm=4.0, axis=2)) is first
    assert (cache.hits, cache.misses) == (1, 1)
    assert cache.get_or_compute(img, (1, 1, 1), SuperpixelSettings(100, axis=2)) is not first  # a count is another map
    stop = threading.Event()
    stop.set()
    with pytest.raises(AnnotationError, match="cancelled"):
        compute_superpixels(img, (1, 1, 1), size_mm=4.0, abort=stop)


def test_the_effect_option_default_is_the_core_default():
    from orbitai.app.annotation.options import EFFECT_OPTIONS, SMARTPENCIL, SUPERPIXEL_SIZE_MM

    assert SUPERPIXEL_SIZE_MM == DEFAULT_SIZE_MM
    assert next(o for o in EFFECT_OPTIONS[SMARTPENCIL] if o.name == "SizeMm").default == DEFAULT_SIZE_MM


def test_without_an_interpolator_fill_between_slices_says_what_it_needs():
    import SimpleITK as sitk

    if hasattr(sitk, "MorphologicalContourInterpolator"):
        pytest.skip("this SimpleITK has the interpolation")
    m = np.zeros((8, 8, 8), bool)
    m[1, 2:5, 2:5] = m[6, 2:5, 2:5] = True
    with pytest.raises(AnnotationError, match="needs morphological contour interpolation"):
        fill_between_slices(m)
