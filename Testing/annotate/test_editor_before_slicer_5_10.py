"""Issue #28 point 5: ``AnnotationLogic(scene, app_logic)`` on Slicer 5.8, which has no
``vtkSlicerSegmentEditorLogic`` (it appeared in 5.10).

There the logic edits through a hidden ``qMRMLSegmentEditorWidget`` and the C++ base of its Paint effect.
The widget is Qt and cannot run here, so a stand-in with the calls of qMRMLSegmentEditorWidget.h and
qSlicerSegmentEditorAbstractEffect.h at v5.8.1 (effectByName, setMRMLSegmentEditorNode, setSegmentationNode,
setSourceVolumeNode, setCurrentSegmentID, undo, redo, and its UndoButton/RedoButton; defaultModifierLabelmap, sourceVolumeImageData,
saveStateForUndo, modifySelectedSegmentByLabelmap with the ModificationMode enum Set=0, Add=1, Remove=2) does
each through slicer-core's real segment editor logic, which is what the widget's callbacks do in Slicer.
"""
from __future__ import annotations

import types

import numpy as np
import pytest

from orbitai.annotate import dice


class _Effect:
    """Stand-in for the Paint effect's ``qSlicerSegmentEditorAbstractEffect`` base, wired as the widget wires it."""

    def __init__(self, logic):
        self.logic = logic

    def parameterSetNode(self):
        return self.logic.GetSegmentEditorNode()

    def defaultModifierLabelmap(self):
        return self.logic.GetModifierLabelmap() if self.logic.ResetModifierLabelmapToDefault() else None

    def sourceVolumeImageData(self):
        return self.logic.GetAlignedSourceVolume() if self.logic.UpdateAlignedSourceVolume() else None

    def saveStateForUndo(self):
        self.logic.SaveStateForUndo()

    def modifySelectedSegmentByLabelmap(self, labelmap, mode):
        node, L = self.logic.GetSegmentEditorNode(), self.logic
        modes = {0: L.ModificationModeSet, 1: L.ModificationModeAdd, 2: L.ModificationModeRemove}
        L.ModifySegmentByLabelmap(node.GetSegmentationNode(), node.GetSelectedSegmentID(), labelmap, modes[mode],
                                  True, False)


def _widget_class(real_logic_class, calls):
    class SegmentEditorWidget:
        """Stand-in for ``slicer.qMRMLSegmentEditorWidget`` (v5.8.1 API)."""

        def __init__(self):
            self.logic = real_logic_class()
            calls.append("created")

        def setMRMLScene(self, scene):
            self.logic.SetMRMLScene(scene)

        def setMRMLSegmentEditorNode(self, node):
            self.logic.SetSegmentEditorNode(node)

        def effectByName(self, name):
            calls.append(f"effectByName({name})")
            return _Effect(self.logic) if name == "Paint" else None

        def setSegmentationNode(self, node):
            self.logic.SetSegmentationNode(node)

        def setSourceVolumeNode(self, node):
            self.logic.SetSourceVolumeNode(node)

        def setCurrentSegmentID(self, sid):
            self.logic.SetCurrentSegmentID(sid)

        def undo(self):
            if self.logic.CanUndo():
                self.logic.Undo()

        def redo(self):
            if self.logic.CanRedo():
                self.logic.Redo()

        def child(self, name):
            """The widget's UndoButton / RedoButton, enabled as updateUndoRedoButtonsState sets them."""
            can = {"UndoButton": self.logic.CanUndo, "RedoButton": self.logic.CanRedo}[name]
            return types.SimpleNamespace(enabled=bool(can()))

    return SegmentEditorWidget


@pytest.fixture()
def slicer_5_8(monkeypatch):
    """The ``slicer`` module as Slicer 5.8 has it: no vtkSlicerSegmentEditorLogic; the widget and the
    abstract effect's enum are there."""
    slicer = pytest.importorskip("slicer")
    real = slicer.vtkSlicerSegmentEditorLogic
    calls: list[str] = []
    monkeypatch.delattr(slicer, "vtkSlicerSegmentEditorLogic")
    monkeypatch.setattr(slicer, "qMRMLSegmentEditorWidget", _widget_class(real, calls), raising=False)
    enum = types.SimpleNamespace(ModificationModeSet=0, ModificationModeAdd=1, ModificationModeRemove=2)
    monkeypatch.setattr(slicer, "qSlicerSegmentEditorAbstractEffect", enum, raising=False)
    monkeypatch.setattr(slicer.util, "findChild", lambda widget, name: widget.child(name))
    return calls


def test_annotation_logic_edits_and_undoes_through_the_segment_editor_widget(right_orbit, slicer_5_8):
    from orbitai.app.annotation.logic import AnnotationLogic
    from orbitai.app.annotation.options import SMARTPENCIL
    from orbitai.mrml.editors import SegmentEditorWidgetEditor

    from orbitai.mrml import new_scene
    from orbitai.mrml.segment_editor import voxel_to_ras
    from orbitai.mrml.volumes import volume_node_from_volume

    image, labels = right_orbit
    ctx = new_scene()
    try:
        vol = volume_node_from_volume(ctx, image, "orbit_ct")
        seg = ctx.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "annotation")
        seg.CreateDefaultDisplayNodes()
        seg.SetReferenceImageGeometryParameterFromVolumeNode(vol)
        sid = seg.GetSegmentation().AddEmptySegment("pencil", "pencil")
        logic = AnnotationLogic(ctx.scene, ctx.app_logic)
        assert isinstance(logic.editor, SegmentEditorWidgetEditor)
        assert slicer_5_8[:2] == ["created", "effectByName(Paint)"]
        logic.setInputs(seg, vol, sid)
        logic.params(SMARTPENCIL).set("SizeMm", 0)           # sized by count, as this test was written (#67.2)
        logic.params(SMARTPENCIL).set("Superpixels", 500)
        truth = labels.array == 2                                       # the right eyeball
        centre = np.argwhere(truth).mean(0).round().astype(int)
        r = logic.smartPencilClick(ras=voxel_to_ras(vol, centre))
        assert r.ok and r.changed_voxels > 0, r.message
        mask = logic.segmentMask(sid)
        assert mask[tuple(centre)] and dice(mask, truth) > 0.05
        assert logic.undo().ok and not logic.segmentMask(sid).any()
        assert logic.redo().ok and np.array_equal(logic.segmentMask(sid), mask)
    finally:
        ctx.close()
