"""Annotation on trame-slicer's segment editor: `TrameSlicerEditor`, the `Editor` that `AnnotationLogic` edits through,
and `SmartPencilEffect`, the segment editor effect that brings SmartPencil clicks from a slice view.

`TrameSlicerEditor` puts SmartPencil clicks, SmartFill accepts and the model's start into trame-slicer's own undo
stack, beside its Paint and Erase strokes: one undo history. `SmartPencilEffect`'s slice-view pipeline turns a left
click into a RAS point (shift-click removes) for the panel (`orbitai.web.annotate.AnnotationPanel`).
"""
from __future__ import annotations

from typing import Any, Callable, Optional

from trame_slicer.segmentation import ModificationMode, SegmentationEffect, SegmentationEffectPipeline
from vtkmodules.vtkCommonCore import vtkCommand
from vtkmodules.vtkInteractionWidgets import vtkEvent

from orbitai.errors import AnnotationError
from orbitai.mrml.editors import MODE_ADD, MODE_REMOVE, MODE_SET

__all__ = ["TrameSlicerEditor", "SmartPencilEffect"]


class TrameSlicerEditor:
    """`AnnotationLogic`'s `Editor` on trame-slicer's ``SegmentationEditor`` (its editor node and logic, its undo
    stack). trame-slicer keeps the selected segment in Python; it is mirrored into the editor node, where
    `AnnotationLogic` reads it."""

    def __init__(self, segmentation_editor: Any) -> None:
        self.se = segmentation_editor

    @property
    def editorNode(self) -> Any:
        return self.se.editor_node

    def setInputs(self, segmentation_node: Any, volume_node: Any, segment_id: Optional[str] = None) -> None:
        self.se.set_active_segmentation(segmentation_node, volume_node)
        self.selectSegment(segment_id or self.se.get_active_segment_id())

    def selectSegment(self, segment_id: str) -> None:
        self.se.set_active_segment_id(segment_id)
        self.se.editor_node.SetSelectedSegmentID(self.se.get_active_segment_id() or None)

    def aligned(self) -> tuple[Any, Any]:
        logic = self.se.editor_logic
        if not logic.ResetModifierLabelmapToDefault():
            raise AnnotationError("Could not set up the segmentation geometry.")
        if not logic.UpdateAlignedSourceVolume():
            raise AnnotationError("Could not resample the source volume to the segmentation geometry.")
        return logic.GetModifierLabelmap(), logic.GetAlignedSourceVolume()

    def saveStateForUndo(self) -> None:
        """Nothing: `modifySelectedSegment` pushes the change as one undo command."""

    def modifySelectedSegment(self, modifier: Any, mode: str) -> None:
        """Change the segment selected on the editor node (what `AnnotationLogic` computed on). trame-slicer forgets
        its active segment when the segment goes (undo of "Add segment") and not when it comes back (redo): it is
        selected again first, so the change lands where it was computed (issue 67)."""
        m = {MODE_ADD: ModificationMode.Add, MODE_REMOVE: ModificationMode.Remove, MODE_SET: ModificationMode.Set}[mode]
        sid = self.se.editor_node.GetSelectedSegmentID() or self.se.get_active_segment_id()
        if sid and self.se.get_active_segment_id() != sid:
            self.se.set_active_segment_id(sid)
        # The editor's masking settings apply (editable area, overwrite), as in Slicer's modifySelectedSegment.
        self.se.active_segment_modifier.apply_labelmap(modifier, segment_id=sid, modification_mode=m)

    def undo(self) -> bool:
        return self._step("undo")

    def redo(self) -> bool:
        return self._step("redo")

    def _step(self, step: str) -> bool:
        """One step of the shared undo stack ("undo" or "redo"); False when there is none to take."""
        stack = self.se.undo_stack
        if stack is None or not getattr(stack, f"can_{step}")():
            return False
        getattr(stack, step)()
        return True


class _ClickPipeline(SegmentationEffectPipeline):
    """A slice view's SmartPencil pipeline: a left click is the effect's ``on_click(ras, remove, slice_to_ras)``;
    the press and release are consumed so they do not also change the window/level."""

    def CanProcessInteractionEvent(self, event_data: Any) -> tuple[bool, float]:
        kinds = (vtkCommand.LeftButtonPressEvent, vtkCommand.LeftButtonReleaseEvent)
        return bool(self.IsActive()) and event_data.GetType() in kinds, 0.0

    def ProcessInteractionEvent(self, event_data: Any) -> bool:
        if event_data.GetType() == vtkCommand.LeftButtonPressEvent and self._effect is not None:
            ras = tuple(event_data.GetWorldPosition())
            remove = bool(event_data.GetModifiers() & vtkEvent.ShiftModifier)
            slice_to_ras = self.GetViewNode().GetSliceToRAS()   # not self._view (orbitai.web.compat)
            self._effect.on_click(ras, remove, slice_to_ras)
        return True


class SmartPencilEffect(SegmentationEffect):
    """The SmartPencil tool of the web app's segment editor (slice views only)."""

    on_click: Callable[[tuple, bool, Any], None] = staticmethod(lambda ras, remove, m: None)

    def _create_pipeline(self, view_node: Any, parameter: Any) -> Optional[SegmentationEffectPipeline]:
        return _ClickPipeline() if view_node.IsA("vtkMRMLSliceNode") else None
