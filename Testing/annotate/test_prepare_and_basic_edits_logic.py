"""Issue 67 on a headless scene (the logic the browser panel and the Slicer effects share): a scan prepared before a
segmentation exists is what the first click reads (the same array, the superpixels from the cache, the model prior's
key), and the basic edits are each one undo step of the selected segment."""
from __future__ import annotations

import numpy as np

from orbitai.annotate import keep_largest_island, smooth_mask, threshold_mask
from orbitai.app.annotation.options import SMARTFILL


def test_a_scan_prepared_before_its_segmentation_serves_the_first_click(right_orbit, headless_ctx):
    from orbitai.app.annotation.logic import AnnotationLogic
    from orbitai.mrml.volumes import volume_node_from_volume

    image, labels = right_orbit
    logic = AnnotationLogic(headless_ctx.scene, headless_ctx.app_logic)
    logic.params(SMARTFILL).set("PriorWeight", 0.0)          # the prior's key is checked below without a child
    vol = volume_node_from_volume(headless_ctx, image, "orbit_ct")
    prep = logic.prepare(vol)                                # before any segmentation of the scan
    assert prep.prior is None
    prep.superpixels()
    prepared = logic._source[1]
    assert logic.cache.misses == 1
    seg = headless_ctx.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "annotation")
    seg.CreateDefaultDisplayNodes()
    seg.SetReferenceImageGeometryParameterFromVolumeNode(vol)
    sid = seg.GetSegmentation().AddEmptySegment("inferior_rectus_muscle_right", "inferior_rectus_muscle_right")
    logic.setInputs(seg, vol, sid)
    p = tuple(int(v) for v in np.argwhere(labels.array == 8)[0])
    r = logic.smartPencilClick(ijk=p)
    assert r.ok and r.changed_voxels > 0, r.message
    assert logic._source[1] is prepared, "the click read the scan again instead of the prepared array"
    assert (logic.cache.misses, logic.cache.hits) == (1, 1), "the click computed its own superpixels"
    key = logic.sourceVolume()[1]
    assert key == logic._volume[2]          # the model prior asked for on load is the one the tools ask for


def test_threshold_islands_and_smoothing_are_one_undo_step_each(mrml):
    L = mrml.logic
    src = mrml.image.array
    lo, hi = np.percentile(src, [60, 80])
    r = L.threshold(lo, hi)
    assert r.ok, r.message
    thr = threshold_mask(src, lo, hi)
    assert np.array_equal(L.segmentMask(), thr)
    r = L.islands(keep_largest=True)
    assert r.ok and np.array_equal(L.segmentMask(), keep_largest_island(thr)), r.message
    r = L.smooth("MORPHOLOGICAL_CLOSING", 2.0)
    assert r.ok, r.message
    assert np.array_equal(L.segmentMask(), smooth_mask(keep_largest_island(thr), mrml.image.spacing,
                                                       "MORPHOLOGICAL_CLOSING", 2.0))
    assert L.undo().ok and np.array_equal(L.segmentMask(), keep_largest_island(thr))
    assert L.undo().ok and np.array_equal(L.segmentMask(), thr)
    assert L.undo().ok and not L.segmentMask().any()
    assert not L.islands().ok            # an empty segment: nothing to do, said in one line


def test_fill_between_slices_on_the_selected_segment(mrml):
    L = mrml.logic
    truth = mrml.labels.array == 2                         # the eyeball
    ks = np.flatnonzero(truth.any(axis=(1, 2)))
    drawn = np.zeros_like(truth)
    k0, k1 = ks[len(ks) // 4], ks[3 * len(ks) // 4]
    drawn[k0], drawn[k1] = truth[k0], truth[k1]
    mrml.paint(mrml.ids[1], drawn)
    L.selectSegment(mrml.ids[1])
    r = L.fillBetweenSlices()
    assert r.ok and r.changed_voxels > 0, r.message
    filled = L.segmentMask()
    between = truth[k0 + 1:k1]
    assert (filled[k0 + 1:k1] & between).sum() > 0.8 * between.sum()
    assert L.undo().ok and np.array_equal(L.segmentMask(), drawn)
