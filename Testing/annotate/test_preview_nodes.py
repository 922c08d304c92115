"""SmartFill's preview and SmartPencil's boundaries live in their own hidden segmentation nodes:
the user's segments and slice-view layers stay as they were until Accept (real MRML, headless)."""
import numpy as np
from orbitai.app.annotation.options import BOUNDARIES_ROLE, PREVIEW_ROLE, SMARTFILL, SMARTPENCIL

from orbitai.annotate import dice, simulate_strokes


def _user_layers(ns):
    """The user's own label map shown as the slice views' label layer, and a snapshot of what
    the user sees: every segment's bytes, the label map's voxels, the composite node's layers."""
    import slicer
    import vtk

    labelmap = ns.scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "user labels")
    m = vtk.vtkMatrix4x4()
    ns.volume.GetIJKToRASMatrix(m)
    labelmap.SetIJKToRASMatrix(m)
    slicer.util.updateVolumeFromArray(labelmap, (ns.labels.array == 4).astype(np.uint8))
    composite = ns.scene.AddNewNodeByClass("vtkMRMLSliceCompositeNode")
    composite.SetBackgroundVolumeID(ns.volume.GetID())
    composite.SetLabelVolumeID(labelmap.GetID())

    def snapshot():
        return ([ns.logic.segmentMask(s).tobytes() for s in ns.ids],
                slicer.util.arrayFromVolume(labelmap).tobytes(),
                (composite.GetBackgroundVolumeID(), composite.GetForegroundVolumeID(), composite.GetLabelVolumeID()),
                ns.scene.GetNodesByClass("vtkMRMLLabelMapVolumeNode").GetNumberOfItems())
    return snapshot


def test_smartfill_preview_and_cancel_leave_the_user_segments_alone(mrml):
    L = mrml.logic
    L.selectSegment(mrml.ids[1])
    truth = mrml.labels.array == 2
    strokes = np.any(simulate_strokes(truth, mrml.image.spacing, 3), axis=0)
    mrml.paint(mrml.ids[1], strokes)                       # the user paints strokes into the segment
    snapshot = _user_layers(mrml)
    before = snapshot()
    L.params(SMARTFILL).set("PriorWeight", 0.0)   # the preview nodes, not the model prior (no waiting for it)
    r = L.smartFillPreview()
    assert r.ok and snapshot() == before                    # nothing of the user's changed
    node = L.previewNode
    assert node is not None and node.GetHideFromEditors() and node is r.details["preview_node"]
    assert L.editorNode.GetNodeReference(PREVIEW_ROLE) is node
    assert np.array_equal(_preview_mask(L), r.details["mask"]) and dice(r.details["mask"], truth) >= 0.9
    assert L.smartFillCancel().ok
    assert L.previewNode is None and node.GetScene() is None and snapshot() == before
    assert not L.smartFillAccept().ok                      # nothing left to accept


def test_smartfill_accept_copies_the_preview_with_one_undo_state(mrml):
    L = mrml.logic
    L.selectSegment(mrml.ids[1])
    truth = mrml.labels.array == 2
    strokes = np.any(simulate_strokes(truth, mrml.image.spacing, 3), axis=0)
    mrml.paint(mrml.ids[1], strokes)
    painted = L.segmentMask().tobytes()
    L.params(SMARTFILL).set("PriorWeight", 0.0)
    preview = L.smartFillPreview().details["mask"]
    r = L.smartFillAccept()
    assert r.ok and r.changed_voxels > 0 and L.previewNode is None
    filled = L.segmentMask()
    assert np.array_equal(filled, preview | strokes) and dice(filled, truth) >= 0.9
    assert L.undo().ok and L.segmentMask().tobytes() == painted   # undo restores the strokes exactly
    assert L.redo().ok and np.array_equal(L.segmentMask(), filled)


def test_smartpencil_boundaries_and_working_region(mrml):
    L = mrml.logic
    p = L.params(SMARTPENCIL)
    p.update({"Superpixels": 500, "RegionMm": 30.0, "ShowBoundaries": True})
    snapshot = _user_layers(mrml)
    before = snapshot()
    k, j, i = np.argwhere(mrml.labels.array == 8)[0]
    assert L.smartPencilClick(ijk=(k, j, i)).ok
    node = L.boundariesNode
    assert node is not None and node.GetHideFromEditors()
    assert L.editorNode.GetNodeReference(BOUNDARIES_ROLE) is node
    assert snapshot()[1:] == before[1:]                     # label layer and label map untouched
    hits = L.cache.hits
    assert L.smartPencilClick(ijk=(k, j, i + 1), remove=True).ok      # same working region: from the cache
    assert L.cache.hits == hits + 1 and L.cache.misses == 1            # superpixels computed once
    assert snapshot()[0][1] == before[0][1]                 # the other segment is untouched
    assert L.removeBoundaries() and L.boundariesNode is None and node.GetScene() is None


def _preview_mask(logic):
    import slicer

    from orbitai.mrml.labelmaps import segment_extent_mask

    image = logic.previewNode.GetSegmentation().GetNthSegment(0).GetRepresentation(
        slicer.vtkSegmentationConverter.GetSegmentationBinaryLabelmapRepresentationName())
    return segment_extent_mask(image, logic.editor.aligned()[0])
