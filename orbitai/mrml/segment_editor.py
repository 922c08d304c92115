"""Driving Slicer's Segment Editor and reading/writing segments as arrays: the MRML side of the
annotation effects' self-test (`orbitai.testing.annotation_effects`). Slicer and VTK are imported
inside the functions, so importing this module needs neither."""
from __future__ import annotations

from typing import Any

import numpy as np
import slicer
import vtk

from orbitai.mrml.labelmaps import fill_oriented_image, segment_extent_mask

__all__ = ["SegmentEditorDriver", "finish_pending", "segment_mask", "paint_segment",
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


def segment_mask(segmentation, segment_id: str, reference_volume) -> np.ndarray:
    """A segment as a bool array [k, j, i] on the reference volume's grid."""
    lm = slicer.vtkOrientedImageData()
    slicer.vtkSlicerSegmentationsModuleLogic.GetSegmentBinaryLabelmapRepresentation(segmentation, segment_id, lm, False)
    ref = slicer.vtkOrientedImageData()
    ref.SetExtent(reference_volume.GetImageData().GetExtent())
    value = segmentation.GetSegmentation().GetSegment(segment_id).GetLabelValue()
    return segment_extent_mask(lm, ref, value)


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
