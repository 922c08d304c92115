"""Annotation on trame-slicer's segment editor: `TrameSlicerEditor`, the `Editor` that `AnnotationLogic` edits through,
and `SmartPencilEffect`, the segment editor effect that brings SmartPencil clicks from a slice view.

`TrameSlicerEditor` puts SmartPencil clicks, SmartFill accepts and the model's start into trame-slicer's own undo
stack, beside its Paint and Erase strokes: one undo history. It records where each of those edits, and an Undo or Redo
of one, changed the segmentation (`orbitai.web.overlay_patches.EditBoxes`: the page is sent that box, issue 81). `SmartPencilEffect`'s slice-view pipeline turns a left
click into a RAS point (shift-click removes) for the panel (`orbitai.web.annotate.AnnotationPanel`).
"""
from __future__ import annotations

from typing import Any, Callable, Optional, Union

from trame_slicer.segmentation import ModificationMode, SegmentationEffect, SegmentationEffectPipeline
from vtkmodules.vtkCommonCore import vtkCommand
from vtkmodules.vtkInteractionWidgets import vtkEvent

from orbitai.errors import AnnotationError
from orbitai.mrml.editors import MODE_ADD, MODE_REMOVE, MODE_SET
from orbitai.mrml.segment_editor import content_stamp
from orbitai.web.overlay_patches import NOTHING, Box, EditBoxes, box_of

__all__ = ["TrameSlicerEditor", "SmartPencilEffect"]


class TrameSlicerEditor:
    """`AnnotationLogic`'s `Editor` on trame-slicer's ``SegmentationEditor`` (its editor node and logic, its undo
    stack). trame-slicer keeps the selected segment in Python; it is mirrored into the editor node, where
    `AnnotationLogic` reads it."""

    def __init__(self, segmentation_editor: Any, boxes: Optional[EditBoxes] = None) -> None:
        self.se = segmentation_editor
        self.boxes = boxes if boxes is not None else EditBoxes()
        self._last: Optional[tuple[Any, Any, Any, Any]] = None    # the last change: node, stamps, its undo command

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
        active = self.se.active_segmentation
        node = active.segmentation_node if active is not None else None
        stack, before = self.se.undo_stack, content_stamp(node) if node is not None else None
        top = _top(stack)
        # The editor's masking settings apply (editable area, overwrite), as in Slicer's modifySelectedSegment.
        self.se.active_segment_modifier.apply_labelmap(modifier, segment_id=sid, modification_mode=m)
        command = _top(stack)
        self._last = (node, before, content_stamp(node) if node is not None else None,
                      command if command is not top else None)

    def changedVoxels(self, modifier: Any, changed: Any) -> None:
        """The last change (`modifySelectedSegment`) changed the voxels ``changed`` (a bool array on ``modifier``'s
        extent): its box is recorded (`EditBoxes`) and kept with its undo command for Undo and Redo."""
        if self._last is None or self._last[0] is None:
            return
        node, before, after, command = self._last
        self._last = None
        found = box_of(changed)
        box: Union[Box, tuple] = NOTHING
        if found is not None:
            ext = modifier.GetExtent()
            active = self.se.active_segmentation
            volume = active.volume_node if active is not None else None
            base = volume.GetImageData().GetExtent() if volume is not None and volume.GetImageData() else (0,) * 6
            # the modifier's [k, j, i] to the scan's: VTK extents are (i0, i1, j0, j1, k0, k1)
            shift = [ext[2 * a] - base[2 * a] for a in (2, 1, 0)]
            box = tuple(slice(s.start + d, s.stop + d) for s, d in zip(found, shift))
        self.boxes.record(node.GetID(), before, after, box)
        if command is not None:
            command.orbitai_edit = (node, box)

    def undo(self) -> bool:
        return self._step("undo")

    def redo(self) -> bool:
        return self._step("redo")

    def _step(self, step: str) -> bool:
        """One step of the shared undo stack ("undo" or "redo"); False when there is none to take."""
        stack = self.se.undo_stack
        if stack is None or not getattr(stack, f"can_{step}")():
            return False
        # the edit it takes back or again: its box, when it was recorded (`changedVoxels`)
        edit = getattr(_command(stack, stack.index() - 1 if step == "undo" else stack.index()), "orbitai_edit", None)
        before = content_stamp(edit[0]) if edit is not None else None
        getattr(stack, step)()
        if edit is not None:
            self.boxes.record(edit[0].GetID(), before, content_stamp(edit[0]), edit[1])
        return True


def _command(stack: Any, index: int) -> Any:
    """The undo command at ``index`` of ``stack`` (undo_stack has no public accessor), or None."""
    commands = getattr(stack, "_command_list", None) or []
    return commands[index] if 0 <= index < len(commands) else None


def _top(stack: Any) -> Any:
    """The command an Undo of ``stack`` would take back (None without one)."""
    return _command(stack, stack.index() - 1) if stack is not None else None


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
