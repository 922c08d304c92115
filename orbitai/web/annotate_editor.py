"""Annotation on trame-slicer's segment editor: `TrameSlicerEditor`, the `Editor` that `AnnotationLogic` edits through,
and `SmartPencilEffect`, the segment editor effect that brings SmartPencil clicks from a slice view.

`TrameSlicerEditor` puts SmartPencil clicks, SmartFill accepts and the model's start into trame-slicer's own undo
stack, beside its Paint and Erase strokes: one undo history. It records where each edit, its own and the brush's,
the eraser's or another trame-slicer effect's (the modifier's extent), and an Undo or Redo of one, changed the
segmentation (`orbitai.web.overlay_patches.EditBoxes`: the page is sent that box, issue 81). `SmartPencilEffect`'s
slice-view pipeline turns a left click into a RAS point (shift-click removes) for the panel
(`orbitai.web.annotate.AnnotationPanel`).
"""
from __future__ import annotations

from typing import Any, Callable, Optional, Union

from trame_slicer.segmentation import ModificationMode, SegmentationEffect, SegmentationEffectPipeline
from vtkmodules.vtkCommonCore import vtkCommand
from vtkmodules.vtkCommonMath import vtkMatrix4x4
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
        self._watch()
        segmentation_editor.active_segment_id_changed.connect(self._watch)

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
        selected again first, so the change lands where it was computed (issue 67). Its box is `changedVoxels`'."""
        m = {MODE_ADD: ModificationMode.Add, MODE_REMOVE: ModificationMode.Remove, MODE_SET: ModificationMode.Set}[mode]
        sid = self.se.editor_node.GetSelectedSegmentID() or self.se.get_active_segment_id()
        if sid and self.se.get_active_segment_id() != sid:
            self.se.set_active_segment_id(sid)
        segment_modifier = self.se.active_segment_modifier
        # not through `_watch`'s wrapper: `changedVoxels` records the voxels that changed, not the modifier's extent
        apply = getattr(segment_modifier.apply_labelmap, "__wrapped__", segment_modifier.apply_labelmap)
        start = self._begin()
        # The editor's masking settings apply (editable area, overwrite), as in Slicer's modifySelectedSegment.
        apply(modifier, segment_id=sid, modification_mode=m)
        self._last = self._end(*start)

    def changedVoxels(self, modifier: Any, changed: Any) -> None:
        """The last change (`modifySelectedSegment`) changed the voxels ``changed`` (a bool array on ``modifier``'s
        extent): its box is recorded (`EditBoxes`) and kept with its undo command for Undo and Redo."""
        if self._last is None:
            return
        last, self._last = self._last, None
        found = box_of(changed)
        if found is None:
            self._record(*last, NOTHING)
            return
        ext = modifier.GetExtent()
        self._record(*last, self._scan_box(modifier, [(s.start + ext[2 * a], s.stop - 1 + ext[2 * a])
                                                      for s, a in zip(found, (2, 1, 0))]))

    def _watch(self, *_: Any) -> None:
        """The active segment modifier's ``apply_labelmap`` wrapped (trame-slicer makes a modifier per segmentation
        made active; this runs on its ``active_segment_id_changed``): a change the brush, the eraser or another of
        trame-slicer's effects makes is recorded with the box of its modifier's extent (`_extent_box`)."""
        segment_modifier = self.se.active_segment_modifier
        if segment_modifier is None or hasattr(segment_modifier.apply_labelmap, "__wrapped__"):
            return
        apply = segment_modifier.apply_labelmap

        def apply_labelmap(modifier_labelmap: Any, **kwargs: Any) -> Any:
            start = self._begin()
            out = apply(modifier_labelmap, **kwargs)
            mode = kwargs.get("modification_mode") or segment_modifier.modification_mode
            self._record(*self._end(*start), self._extent_box(modifier_labelmap, kwargs.get("modifier_extent"), mode))
            return out

        apply_labelmap.__wrapped__ = apply      # type: ignore[attr-defined]
        segment_modifier.apply_labelmap = apply_labelmap

    def _begin(self) -> tuple[Any, Any, Any]:
        """Before a change: the active segmentation node, its content stamp and the undo command on top."""
        active = self.se.active_segmentation
        node = active.segmentation_node if active is not None else None
        return node, content_stamp(node) if node is not None else None, _top(self.se.undo_stack)

    def _end(self, node: Any, before: Any, top: Any) -> tuple[Any, Any, Any, Any]:
        """After a change begun as `_begin` said: (node, stamp before, stamp after, the undo command it pushed)."""
        command = _top(self.se.undo_stack)
        return node, before, content_stamp(node) if node is not None else None, command if command is not top else None

    def _record(self, node: Any, before: Any, after: Any, command: Any, box: Union[Box, tuple, None]) -> None:
        """A change of ``node`` from stamp ``before`` to ``after`` within ``box`` (None: not known, nothing recorded)
        into `EditBoxes`, and onto its undo command ``command`` for Undo and Redo."""
        if node is None or box is None:
            return
        self.boxes.record(node.GetID(), before, after, box)
        if command is not None:
            command.orbitai_edit = (node, box)

    def _extent_box(self, labelmap: Any, extent: Any, mode: Any) -> Optional[Union[Box, tuple]]:
        """Where applying the modifier ``labelmap`` in ``mode`` may have changed the segmentation: the box of its
        ``extent`` (trame-slicer's ``modifier_extent``; the labelmap's own when that is not given) on the scan's grid;
        None for "Set" (it may clear the segment outside the extent). Add, Remove and RemoveAll change no voxel outside
        the modifier (Slicer's ``ModifySegmentByLabelmap``)."""
        if mode not in (ModificationMode.Add, ModificationMode.Remove, ModificationMode.RemoveAll):
            return None
        ext = list(extent) if extent is not None and _valid(extent) else list(labelmap.GetExtent())
        if not _valid(ext):
            return NOTHING
        return self._scan_box(labelmap, [(ext[2 * a], ext[2 * a + 1]) for a in (2, 1, 0)])

    def _scan_box(self, labelmap: Any, bounds: list[tuple[int, int]]) -> Optional[Box]:
        """The inclusive index ranges ``bounds`` ([k, j, i]) of ``labelmap`` as a box of the edited scan's array; None
        when the labelmap is not on the scan's grid (another spacing, direction or origin, or another transform)."""
        active = self.se.active_segmentation
        if active is None or active.volume_node is None or active.volume_node.GetImageData() is None:
            return None
        volume, image = active.volume_node, active.volume_node.GetImageData()
        if active.segmentation_node.GetParentTransformNode() is not volume.GetParentTransformNode():
            return None
        grid, scan = vtkMatrix4x4(), vtkMatrix4x4()
        labelmap.GetImageToWorldMatrix(grid)
        volume.GetIJKToRASMatrix(scan)
        if not all(abs(grid.GetElement(r, c) - scan.GetElement(r, c)) < 1e-6 for r in range(4) for c in range(4)):
            return None
        base = image.GetExtent()
        return tuple(slice(lo - base[2 * a], hi + 1 - base[2 * a])          # type: ignore[return-value]
                     for (lo, hi), a in zip(bounds, (2, 1, 0)))

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


def _valid(extent: Any) -> bool:
    """Whether a VTK extent (i0, i1, j0, j1, k0, k1) holds a voxel."""
    return all(extent[2 * a] <= extent[2 * a + 1] for a in range(3))


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
