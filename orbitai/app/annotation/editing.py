"""The core of the annotation logic: the segment being edited, through an editor, with undo (no Qt).

`SegmentEditing` holds the editor (`orbitai.mrml.editors`: Slicer's Segment Editor, or a headless one) and what every
tool shares: the selected segmentation, source volume and segment and why an operation cannot run now (`_check`), the
source image on the editor's aligned grid read once per image (`_grid`), a segment as a mask, a change to the selected
segment preceded by an undo state and through the editor's masking settings (`_apply`), and the hidden overlay nodes
(previews, boundaries) referenced from the segment editor node. Each operation returns an `OperationResult`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np

from orbitai.mrml.editors import Editor, SegmentEditorLogicEditor, SegmentEditorWidgetEditor, headless_editor
from orbitai.mrml.labelmaps import fill_oriented_image, oriented_image_to_array, segment_extent_mask
from orbitai.mrml.segment_labelmaps import geometry_key, segment_labelmap, set_single_segment

from .options import EffectParameters


def _annotate():
    """The `orbitai.annotate` package, imported on first use: it needs scipy and scikit-image, which a fresh
    Slicer lacks (`effect_options.missing_dependencies` offers to install them)."""
    from orbitai import annotate

    return annotate


@dataclass
class OperationResult:
    """What an operation did: ``ok`` False means nothing was changed and ``message`` says why."""

    ok: bool
    message: str
    changed_voxels: int = 0
    details: dict = field(default_factory=dict)


class SegmentEditing:
    """The segment selected in a segment editor, changed through the editor (see the module docstring).
    ``SegmentEditing(scene, app_logic)`` gives a headless editor (`headless_editor`: Slicer 5.10's
    ``vtkSlicerSegmentEditorLogic``, or a hidden segment editor widget on 5.8); effects pass their
    `ScriptedEffectEditor` as ``editor``."""

    def __init__(self, scene=None, app_logic=None, editor_node=None, cache=None, editor: Optional[Editor] = None):
        if editor is None:
            if scene is None:
                raise ValueError("Give a scene (headless editor) or an editor.")
            editor = headless_editor(scene, app_logic, editor_node)
        self.editor = editor
        self._cache = cache
        self._region: Optional[tuple] = None
        self._region_key: Optional[tuple] = None
        self._source: Optional[tuple] = None

    # ---------------------------------------------------------------- state
    @property
    def cache(self):
        """The superpixel cache (made on first use: it needs `orbitai.annotate`)."""
        if self._cache is None:
            self._cache = _annotate().SuperpixelCache()
        return self._cache

    @property
    def editorNode(self):
        return self.editor.editorNode

    @property
    def segmentationNode(self):
        node = self.editorNode
        return None if node is None else node.GetSegmentationNode()

    @property
    def volumeNode(self):
        node = self.editorNode
        return None if node is None else node.GetSourceVolumeNode()

    @property
    def segmentID(self) -> str:
        node = self.editorNode
        return (node.GetSelectedSegmentID() or "") if node is not None else ""

    def params(self, effect: str) -> EffectParameters:
        return EffectParameters(self.editorNode, effect)

    def _own_editor(self) -> Any:
        """The editor when it owns its inputs and history (headless, the hidden widget, the web app's editor)."""
        owns = isinstance(self.editor, (SegmentEditorLogicEditor, SegmentEditorWidgetEditor)) or all(
            callable(getattr(self.editor, m, None)) for m in ("setInputs", "selectSegment", "undo", "redo"))
        if not owns:
            raise RuntimeError("Inside the Segment Editor, select inputs and undo with the editor's own controls.")
        return self.editor

    def setInputs(self, segmentation_node, volume_node, segment_id: Optional[str] = None) -> None:
        """Select segmentation, source volume and segment (headless editor; in Slicer the editor
        widget does this)."""
        self._own_editor().setInputs(segmentation_node, volume_node, segment_id)

    def selectSegment(self, segment_id: str) -> None:
        self._own_editor().selectSegment(segment_id)

    def undo(self) -> OperationResult:
        """Undo the last change (headless editor; in Slicer use the Segment Editor's Undo)."""
        if self._own_editor().undo():
            return OperationResult(True, "Undone.")
        return OperationResult(False, "Nothing to undo.")

    def redo(self) -> OperationResult:
        if self._own_editor().redo():
            return OperationResult(True, "Redone.")
        return OperationResult(False, "Nothing to redo.")

    def _check(self) -> Optional[str]:
        """Why an operation cannot run now (None when it can)."""
        if self.editorNode is None or self.segmentationNode is None:
            return "No segmentation selected: choose or create a segmentation first."
        volume = self.volumeNode
        if volume is None or volume.GetImageData() is None:
            return "No source volume selected: choose the image to annotate."
        seg = self.segmentationNode.GetSegmentation()
        if seg.GetNumberOfSegments() == 0:
            return "The segment list is empty: add a segment (e.g. eyeball_left) and select it."
        sid = self.segmentID
        if not sid or seg.GetSegment(sid) is None:
            return "No segment selected: select the segment to edit in the segment list."
        return None

    def _grid(self):
        """(modifier labelmap, source array [k, j, i], spacing) on the editor's aligned geometry.

        The array is read once per source image and geometry and then reused: the superpixel
        cache knows an image by its array, so a fresh copy per click would never hit it."""
        modifier, source = self.editor.aligned()
        if modifier is None or source is None:
            raise _annotate().AnnotationError("Could not set up the segmentation geometry.")
        key = (self._image_key(), geometry_key(source))
        if self._source is None or self._source[0] != key:
            self._source = (key, *oriented_image_to_array(source))
        return modifier, self._source[1], self._source[2]

    def segmentMask(self, segment_id: Optional[str] = None, reference=None) -> np.ndarray:
        """A segment (default: the selected one) as a bool array on the aligned grid."""
        if reference is None:
            reference, _ = self.editor.aligned()
        sid = segment_id or self.segmentID
        lm = segment_labelmap(self.segmentationNode, sid)
        # Segments may share one labelmap layer: the segment is the voxels holding its value.
        value = self.segmentationNode.GetSegmentation().GetSegment(sid).GetLabelValue()
        return segment_extent_mask(lm, reference, value)

    def _apply(self, modifier, mask: np.ndarray, mode: str) -> int:
        """Save an undo state and change the selected segment; the number of voxels that changed."""
        before = self.segmentMask(reference=modifier)
        fill_oriented_image(modifier, mask)
        self.editor.saveStateForUndo()
        self.editor.modifySelectedSegment(modifier, mode)
        changed = before != self.segmentMask(reference=modifier)
        noted = getattr(self.editor, "changedVoxels", None)     # an editor that tells others where an edit changed
        if noted is not None:
            noted(modifier, changed)
        return int(np.count_nonzero(changed))

    def _run(self, fn: Callable[[], OperationResult]) -> OperationResult:
        why = self._check()
        if why:
            return OperationResult(False, why)
        try:
            return fn()
        except _annotate().AnnotationError as exc:
            return OperationResult(False, str(exc))

    def _image_key(self) -> tuple:
        volume = self.volumeNode
        return volume.GetID(), volume.GetImageData().GetMTime()

    # ---------------------------------------------------------------- overlay nodes
    def _overlay_node(self, role: str):
        node = self.editorNode
        return None if node is None else node.GetNodeReference(role)

    def _show_overlay(self, role: str, name: str, modifier, mask: np.ndarray, color, fill_opacity: float):
        """A hidden segmentation node holding ``mask`` on the modifier's grid, referenced from the
        segment editor node under ``role`` (created on first use)."""
        scene = self.editorNode.GetScene()
        node = self._overlay_node(role)
        if node is None:
            node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", scene.GenerateUniqueName(name))
            node.SetHideFromEditors(True)
            node.SetSaveWithScene(False)
            node.CreateDefaultDisplayNodes()
            node.GetDisplayNode().SetSaveWithScene(False)
            node.GetDisplayNode().SetVisibility3D(False)
            node.GetDisplayNode().SetOpacity2DFill(fill_opacity)
            self.editorNode.SetNodeReferenceID(role, node.GetID())
        image = type(modifier)()
        image.DeepCopy(modifier)
        fill_oriented_image(image, mask)
        set_single_segment(node, image, name, color, like=self.segmentationNode)
        return node

    def _remove_overlay(self, role: str) -> bool:
        node = self._overlay_node(role)
        if node is None:
            return False
        self.editorNode.RemoveNodeReferenceIDs(role)
        if node.GetScene() is not None:
            node.GetScene().RemoveNode(node)
        return True

