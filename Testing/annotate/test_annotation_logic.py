"""The MRML-level operations on a headless scene: undo bit for bit, masking, bad clicks."""
import numpy as np
from orbitai.app.annotation.options import SMARTPENCIL

from orbitai.annotate import dice, simulate_strokes
from orbitai.mrml.segment_editor import finish_pending


def _segment_bytes(ns, sid):
    return ns.logic.segmentMask(sid).tobytes()


def test_smartpencil_click_and_undo_restore_bit_for_bit(mrml):
    L = mrml.logic
    before = [_segment_bytes(mrml, s) for s in mrml.ids]
    p = tuple(np.argwhere(mrml.labels.array == 8)[0])
    L.params(SMARTPENCIL).set("Superpixels", 1000)
    r = L.smartPencilClick(ijk=p)
    assert r.ok and r.changed_voxels > 0 and L.segmentMask()[p]
    assert L.undo().ok
    assert [_segment_bytes(mrml, s) for s in mrml.ids] == before
    assert L.redo().ok and L.segmentMask()[p]


def test_smartfill_preview_accept_cancel_and_autocorrect_undo(mrml):
    L = mrml.logic
    L.selectSegment(mrml.ids[1])
    truth = mrml.labels.array == 2
    fg = np.any(simulate_strokes(truth, mrml.image.spacing, 3), axis=0)
    r = finish_pending(L, L.smartFillPreview(fg))       # waits for the model prior's child the first time
    assert r.ok and not L.segmentMask().any()          # a preview changes nothing
    assert L.smartFillCancel().ok and not L.smartFillAccept().ok
    assert not L.smartFillPreview(fg).details.get("pending")   # the prior is there now
    assert L.smartFillAccept().ok
    filled = L.segmentMask()
    assert dice(filled, truth) >= 0.9
    snapshot = filled.tobytes()
    r = L.autocorrect()
    assert r.ok
    if r.changed_voxels:
        assert L.undo().ok
    assert L.segmentMask().tobytes() == snapshot


def test_click_outside_image_and_empty_segment_list(mrml):
    L = mrml.logic
    before = L.segmentMask().tobytes()
    r = L.smartPencilClick(ijk=(999, 0, 0))
    assert not r.ok and "outside the image" in r.message
    r = L.smartPencilClick(ras=(1e5, 1e5, 1e5))
    assert not r.ok and "outside the image" in r.message
    assert L.segmentMask().tobytes() == before
    seg = mrml.segmentation.GetSegmentation()
    seg.RemoveAllSegments()
    r = L.smartPencilClick(ijk=(1, 1, 1))
    assert not r.ok and "segment list is empty" in r.message
    r = L.autocorrect()
    assert not r.ok and "segment list is empty" in r.message


def test_empty_segment_autocorrect_says_why(mrml):
    r = mrml.logic.autocorrect()
    assert not r.ok and "empty" in r.message


def test_masking_overwrite_none_protects_other_segment(mrml):
    L = mrml.logic
    p = tuple(np.argwhere(mrml.labels.array == 8)[0])
    L.selectSegment(mrml.ids[1])
    L.params(SMARTPENCIL).set("Superpixels", 500)
    assert L.smartPencilClick(ijk=p).ok      # eyeball segment takes the superpixel
    other = L.segmentMask(mrml.ids[1]).copy()
    import slicer

    mrml.logic.editorNode.SetOverwriteMode(mrml.logic.editorNode.OverwriteNone)
    mrml.logic.editorNode.SetMaskMode(slicer.vtkMRMLSegmentationNode.EditAllowedOutsideAllSegments)
    L.selectSegment(mrml.ids[0])
    r = L.smartPencilClick(ijk=p)
    assert r.ok and "blocked" in r.message                        # the whole superpixel is masked out
    assert np.array_equal(L.segmentMask(mrml.ids[1]), other)     # the other segment is untouched
    assert not (L.segmentMask(mrml.ids[0]) & other).any()
