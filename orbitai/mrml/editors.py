"""The segment editors the annotation effects' logic (`orbitai.app.annotation.logic.AnnotationLogic`) edits through
(no Qt at import).

* `SegmentEditorLogicEditor`: ``vtkSlicerSegmentEditorLogic`` (Slicer 5.10 and slicer-core): headless and scripts.
* `SegmentEditorWidgetEditor`: a hidden ``qMRMLSegmentEditorWidget`` (Slicer 5.8, which lacks that logic).
* `ScriptedEffectEditor`: inside an effect, through ``scriptedEffect``.

Every change is preceded by an undo state and goes through the editor's own "modify segment by labelmap", so
the masking settings (editable area, intensity range, overwrite of other segments) apply.
"""
from __future__ import annotations

from typing import Any, Optional, Protocol

import slicer

from orbitai.errors import AnnotationError

__all__ = ["MODE_ADD", "MODE_REMOVE", "MODE_SET", "Editor", "SegmentEditorLogicEditor", "ScriptedEffectEditor",
           "SegmentEditorWidgetEditor", "headless_editor", "notify_effect_parameter"]

#: How a mask changes the selected segment: added to it, removed from it, or replacing it.
MODE_ADD, MODE_REMOVE, MODE_SET = "add", "remove", "set"


def notify_effect_parameter(editor_node) -> None:
    """Tell the segment editor node's observers that an effect parameter changed (what Slicer's ``setParameter``
    invokes after writing the attribute)."""
    editor_node.InvokeCustomModifiedEvent(slicer.vtkMRMLSegmentEditorNode.EffectParameterModified)


class Editor(Protocol):
    """What `AnnotationLogic` needs from a segment editor."""

    @property
    def editorNode(self): ...

    def aligned(self) -> tuple[Any, Any]:
        """(modifier labelmap reset to the default geometry, source volume on that geometry)."""

    def saveStateForUndo(self) -> None: ...

    def modifySelectedSegment(self, modifier, mode: str) -> None: ...


class SegmentEditorLogicEditor:
    """The editor behind Slicer's Segment Editor, ``vtkSlicerSegmentEditorLogic``, on a scene of
    its own segment editor node: for headless use and scripts (it keeps its own undo history)."""

    def __init__(self, scene, app_logic=None, editor_node=None):
        self.scene = scene
        self.logic = slicer.vtkSlicerSegmentEditorLogic()
        if app_logic is not None:
            self.logic.SetMRMLApplicationLogic(app_logic)
        self.logic.SetMRMLScene(scene)
        self._node = editor_node if editor_node is not None else scene.AddNewNodeByClass("vtkMRMLSegmentEditorNode")
        self.logic.SetSegmentEditorNode(self._node)

    @property
    def editorNode(self):
        return self._node

    def setInputs(self, segmentation_node, volume_node, segment_id: Optional[str] = None) -> None:
        self.logic.SetSegmentationNode(segmentation_node)
        self.logic.SetSourceVolumeNode(volume_node)
        if segment_id is not None:
            self.logic.SetCurrentSegmentID(segment_id)

    def selectSegment(self, segment_id: str) -> None:
        self.logic.SetCurrentSegmentID(segment_id)

    def aligned(self):
        if not self.logic.ResetModifierLabelmapToDefault():
            raise AnnotationError("Could not set up the segmentation geometry.")
        if not self.logic.UpdateAlignedSourceVolume():
            raise AnnotationError("Could not resample the source volume to the segmentation geometry.")
        return self.logic.GetModifierLabelmap(), self.logic.GetAlignedSourceVolume()

    def saveStateForUndo(self) -> None:
        self.logic.SaveStateForUndo()

    def modifySelectedSegment(self, modifier, mode: str) -> None:
        m = {MODE_ADD: self.logic.ModificationModeAdd, MODE_REMOVE: self.logic.ModificationModeRemove,
             MODE_SET: self.logic.ModificationModeSet}[mode]
        self.logic.ModifySegmentByLabelmap(self._node.GetSegmentationNode(), self._node.GetSelectedSegmentID(),
                                           modifier, m, True, False)

    def undo(self) -> bool:
        if not self.logic.CanUndo():
            return False
        self.logic.Undo()
        return True

    def redo(self) -> bool:
        if not self.logic.CanRedo():
            return False
        self.logic.Redo()
        return True


class ScriptedEffectEditor:
    """The Segment Editor widget seen from inside a scripted effect (``scriptedEffect``): its undo
    stack, masking settings and aligned source volume (Slicer only)."""

    def __init__(self, scripted_effect):
        self.effect = scripted_effect

    @property
    def editorNode(self):
        return self.effect.parameterSetNode()

    def aligned(self):
        get_source = getattr(self.effect, "sourceVolumeImageData", None) or self.effect.masterVolumeImageData
        return self.effect.defaultModifierLabelmap(), get_source()

    def saveStateForUndo(self) -> None:
        self.effect.saveStateForUndo()

    def modifySelectedSegment(self, modifier, mode: str) -> None:
        e = slicer.qSlicerSegmentEditorAbstractEffect
        m = {MODE_ADD: e.ModificationModeAdd, MODE_REMOVE: e.ModificationModeRemove, MODE_SET: e.ModificationModeSet}
        self.effect.modifySelectedSegmentByLabelmap(modifier, m[mode])


class SegmentEditorWidgetEditor(ScriptedEffectEditor):
    """Slicer before 5.10, which has no ``vtkSlicerSegmentEditorLogic``: a hidden ``qMRMLSegmentEditorWidget``
    on a segment editor node of its own, edited through one of its effects. The widget gives every effect
    its volumes and callbacks (``setCallbackSlots``/``setVolumes`` for each effect it creates; qMRMLSegmentEditor
    Widget.cxx, v5.8.1), so the C++ base of its Paint effect (``qSlicerSegmentEditorAbstractEffect``) offers
    exactly the calls `ScriptedEffectEditor` makes inside an effect, with the masking settings and undo."""

    #: A built-in effect present in every Slicer; only its C++ base class is used.
    CARRIER_EFFECT = "Paint"

    def __init__(self, scene, editor_node=None):
        self.widget = slicer.qMRMLSegmentEditorWidget()
        self.widget.setMRMLScene(scene)
        node = editor_node if editor_node is not None else scene.AddNewNodeByClass("vtkMRMLSegmentEditorNode")
        self.widget.setMRMLSegmentEditorNode(node)
        effect = self.widget.effectByName(self.CARRIER_EFFECT)
        if effect is None:
            raise RuntimeError(f"The Segment Editor has no {self.CARRIER_EFFECT} effect.")
        super().__init__(effect)

    def setInputs(self, segmentation_node, volume_node, segment_id: Optional[str] = None) -> None:
        self.widget.setSegmentationNode(segmentation_node)
        (getattr(self.widget, "setSourceVolumeNode", None) or self.widget.setMasterVolumeNode)(volume_node)
        if segment_id is not None:
            self.widget.setCurrentSegmentID(segment_id)

    def selectSegment(self, segment_id: str) -> None:
        self.widget.setCurrentSegmentID(segment_id)

    def _history_step(self, step, button: str) -> bool:
        """Undo or redo when the widget's own button is enabled (its segmentation history says whether a
        state is there: qMRMLSegmentEditorWidget::updateUndoRedoButtonsState, v5.8.1)."""
        if not slicer.util.findChild(self.widget, button).enabled:
            return False
        step()
        return True

    def undo(self) -> bool:
        return self._history_step(self.widget.undo, "UndoButton")

    def redo(self) -> bool:
        return self._history_step(self.widget.redo, "RedoButton")


def headless_editor(scene, app_logic=None, editor_node=None):
    """The editor for scripts and headless use on this Slicer: ``vtkSlicerSegmentEditorLogic`` (5.10 and
    slicer-core), else the hidden segment editor widget (5.8)."""
    if hasattr(slicer, "vtkSlicerSegmentEditorLogic"):
        return SegmentEditorLogicEditor(scene, app_logic, editor_node)
    return SegmentEditorWidgetEditor(scene, editor_node)


