"""The MRML-level operations on a headless scene: undo bit for bit, masking, bad clicks."""
import numpy as np
from OrbitSegmentationLib.effect_options import SMARTPENCIL

from orbitai.annotate import dice, simulate_strokes
from orbitai.mrml.segment_editor import finish_pending


def _segment_bytes(ns, sid):
    return ns.logic.segment_mask(sid).tobytes()


def test_smartpencil_click_and_undo_restore_bit_for_bit(mrml):
    L = mrml.logic
    before = [_segment_bytes(mrml, s) for s in mrml.ids]
    p = tuple(np.argwhere(mrml.labels.array == 8)[0])
    L.params(SMARTPENCIL).set("Superpixels", 1000)
    r = L.smartpencil_click(ijk=p)
    assert r.ok and r.changed_voxels > 0 and L.segment_mask()[p]
    assert L.undo().ok
    assert [_segment_bytes(mrml, s) for s in mrml.ids] == before
    assert L.redo().ok and L.segment_mask()[p]


def test_smartfill_preview_accept_cancel_and_autocorrect_undo(mrml):
    L = mrml.logic
    L.select_segment(mrml.ids[1])
    truth = mrml.labels.array == 2
    fg = np.any(simulate_strokes(truth, mrml.image.spacing, 3), axis=0)
    r = finish_pending(L, L.smartfill_preview(fg))       # waits for the model prior's child the first time
    assert r.ok and not L.segment_mask().any()          # a preview changes nothing
    assert L.smartfill_cancel().ok and not L.smartfill_accept().ok
    assert not L.smartfill_preview(fg).details.get("pending")   # the prior is there now
    assert L.smartfill_accept().ok
    filled = L.segment_mask()
    assert dice(filled, truth) >= 0.9
    snapshot = filled.tobytes()
    r = L.autocorrect()
    assert r.ok
    if r.changed_voxels:
        assert L.undo().ok
    assert L.segment_mask().tobytes() == snapshot


def test_click_outside_image_and_empty_segment_list(mrml):
    L = mrml.logic
    before = L.segment_mask().tobytes()
    r = L.smartpencil_click(ijk=(999, 0, 0))
    assert not r.ok and "outside the image" in r.message
    r = L.smartpencil_click(ras=(1e5, 1e5, 1e5))
    assert not r.ok and "outside the image" in r.message
    assert L.segment_mask().tobytes() == before
    seg = mrml.segmentation.GetSegmentation()
    seg.RemoveAllSegments()
    r = L.smartpencil_click(ijk=(1, 1, 1))
    assert not r.ok and "segment list is empty" in r.message
    r = L.autocorrect()
    assert not r.ok and "segment list is empty" in r.message


def test_empty_segment_autocorrect_says_why(mrml):
    r = mrml.logic.autocorrect()
    assert not r.ok and "empty" in r.message


def test_masking_overwrite_none_protects_other_segment(mrml):
    L = mrml.logic
    p = tuple(np.argwhere(mrml.labels.array == 8)[0])
    L.select_segment(mrml.ids[1])
    L.params(SMARTPENCIL).set("Superpixels", 500)
    assert L.smartpencil_click(ijk=p).ok      # eyeball segment takes the superpixel
    other = L.segment_mask(mrml.ids[1]).copy()
    import slicer

    mrml.logic.editor_node.SetOverwriteMode(mrml.logic.editor_node.OverwriteNone)
    mrml.logic.editor_node.SetMaskMode(slicer.vtkMRMLSegmentationNode.EditAllowedOutsideAllSegments)
    L.select_segment(mrml.ids[0])
    r = L.smartpencil_click(ijk=p)
    assert r.ok and "blocked" in r.message                        # the whole superpixel is masked out
    assert np.array_equal(L.segment_mask(mrml.ids[1]), other)     # the other segment is untouched
    assert not (L.segment_mask(mrml.ids[0]) & other).any()
