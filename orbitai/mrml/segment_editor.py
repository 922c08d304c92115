"""Driving Slicer's Segment Editor and reading/writing segments as arrays: the MRML side of the
annotation effects' self-test (`orbitai.testing.annotation_effects`). Slicer and VTK are imported
inside the functions, so importing this module needs neither."""
from __future__ import annotations

from typing import Any

import numpy as np
import slicer
import vtk

from orbitai.mrml.labelmaps import fill_oriented_image, segment_extent_mask

__all__ = ["SegmentEditorDriver", "finish_pending", "segment_mask", "content_stamp", "paint_segment",
           "voxel_to_ras"]


#: How long a scenario step waits for the model prior's child process (the network on a CPU).
PRIOR_TIMEOUT_S = 300.0


def finish_pending(logic, result):
    """A pressed button's result; when the action waits for the model prior (``details['pending']``),
    wait for it (a test may block; the effect's timer does this in Slicer) and return the action's result."""
    if result.ok and result.details.get("pending"):
        result = logic.waitForPrior(PRIOR_TIMEOUT_S)
        assert result is not None, f"the model prior did not arrive within {PRIOR_TIMEOUT_S:.0f} s"
    assert result.ok, result.message
    return result


class SegmentEditorDriver:
    """The scenario's steps on a Segment Editor widget, as Slicer's effect template test does."""

    def __init__(self, ctx, segmentation, volume):
        registered = {e.name for e in slicer.qSlicerSegmentEditorEffectFactory.instance().registeredEffects()}
        # The OrbitSegmentation module registers the effects when Slicer has started (its registerEditorEffects).
        assert "SmartFill" in registered, ("The OrbitAI effects are not registered with the Segment Editor: "
                                           "the OrbitSegmentation module registers them when Slicer starts.")
        self.widget = slicer.qMRMLSegmentEditorWidget()
        self.widget.setMRMLScene(ctx.scene)
        self.node = ctx.scene.AddNewNodeByClass("vtkMRMLSegmentEditorNode")
        self.widget.setMRMLSegmentEditorNode(self.node)
        self.widget.setSegmentationNode(segmentation)
        (getattr(self.widget, "setSourceVolumeNode", None) or self.widget.setMasterVolumeNode)(volume)
        self.effect = None

    def select(self, segment_id: str) -> None:
        self.widget.setCurrentSegmentID(segment_id)

    def activate(self, effect: str) -> None:
        self.widget.setActiveEffectByName(effect)
        self.effect = self.widget.activeEffect()
        assert self.effect is not None, f"The Segment Editor has no effect named {effect}"

    def set_parameter(self, name: str, value: Any) -> None:
        self.effect.setParameter(name, int(value) if isinstance(value, bool) else value)

    def parameter(self, name: str) -> str:
        return self.effect.parameter(name)

    def rebuild_gui(self) -> None:
        self.effect.self().updateGUIFromMRML()
        self.effect.self().updateMRMLFromGUI()

    def press(self, button: str, **kwargs):
        effect = self.effect.self()
        return finish_pending(effect.logic, getattr(effect, button)(**kwargs))

    def preview_node(self):
        return self.effect.self().logic.previewNode

    def close(self) -> None:
        """Deactivate the effect (SmartFill cancels a pending preview); the scenario removes the nodes."""
        self.widget.setActiveEffect(None)


def segment_mask(segmentation, segment_id: str, reference_volume, box: Any = None) -> np.ndarray:
    """A segment as a bool array [k, j, i] on the reference volume's grid, or on its ``box`` only (three slices
    [k, j, i] of the volume's array, steps of 1)."""
    segment = segmentation.GetSegmentation().GetSegment(segment_id)
    lm = segment.GetRepresentation(slicer.vtkSegmentationConverter.GetSegmentationBinaryLabelmapRepresentationName())
    if lm is None or box is None:       # a box is read from the segment's own labelmap (no copy of the whole)
        lm = slicer.vtkOrientedImageData()
        slicer.vtkSlicerSegmentationsModuleLogic.GetSegmentBinaryLabelmapRepresentation(segmentation, segment_id, lm,
                                                                                        False)
    ref = slicer.vtkOrientedImageData()
    ext = list(reference_volume.GetImageData().GetExtent())
    if box is not None:         # [k, j, i] slices to a VTK extent (i0, i1, j0, j1, k0, k1)
        ext = [v for axis, s in zip((0, 1, 2), reversed(box)) for v in (ext[2 * axis] + s.start,
                                                                         ext[2 * axis] + s.stop - 1)]
    ref.SetExtent(ext)
    return segment_extent_mask(lm, ref, segment.GetLabelValue())


def content_stamp(segmentation) -> Any:
    """What a segmentation node's label maps hold, as a value that any change of them changes: each segment's ID,
    label value and binary labelmap (its address and modified time, a global VTK counter); None when its source
    representation is not the binary labelmap (a conversion may change the labelmap at any time)."""
    seg = segmentation.GetSegmentation()
    name = slicer.vtkSegmentationConverter.GetSegmentationBinaryLabelmapRepresentationName()
    if seg.GetSourceRepresentationName() != name:
        return None
    out = []
    for n in range(seg.GetNumberOfSegments()):
        sid = seg.GetNthSegmentID(n)
        segment = seg.GetSegment(sid)
        rep = segment.GetRepresentation(name)
        out.append((sid, segment.GetLabelValue(),
                    None if rep is None else (rep.GetAddressAsString("vtkObject"), rep.GetMTime())))
    return tuple(out)


def paint_segment(segmentation, segment_id: str, volume, mask: np.ndarray) -> None:
    """Set a segment to a mask on the volume's grid (what painting strokes does)."""
    image = slicer.vtkOrientedImageData()
    image.SetExtent(volume.GetImageData().GetExtent())
    m = vtk.vtkMatrix4x4()
    volume.GetIJKToRASMatrix(m)
    image.SetImageToWorldMatrix(m)
    fill_oriented_image(image, mask)
    slicer.vtkSlicerSegmentationsModuleLogic.SetBinaryLabelmapToSegment(
        image, segmentation, segment_id, slicer.vtkSlicerSegmentationsModuleLogic.MODE_REPLACE)


def voxel_to_ras(volume, point) -> list[float]:
    """RAS of a voxel (k, j, i) of a volume node."""
    m = vtk.vtkMatrix4x4()
    volume.GetIJKToRASMatrix(m)
    k, j, i = (float(v) for v in point)
    return list(m.MultiplyPoint((i, j, k, 1.0))[:3])
