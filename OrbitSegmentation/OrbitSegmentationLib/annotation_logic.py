"""MRML-level annotation operations: SmartPencil, SmartFill and AutoCorrection on a segment.

No Qt: runs inside Slicer and headless with ``slicer-core``. Two layers:

* array helpers (`oriented_image_to_array`, `fill_oriented_image`, `ras_to_ijk`) used by the
  Segment Editor effects, which get their images from ``scriptedEffect`` (source volume aligned to
  the modifier labelmap, selected segment labelmap);
* `AnnotationLogic`, which does the same through ``vtkSlicerSegmentEditorLogic`` (the logic behind
  Slicer's Segment Editor): every change is preceded by ``SaveStateForUndo`` and goes through
  ``ModifySegmentByLabelmap``, so the editor's masking settings (editable area, editable intensity
  range, overwrite of other segments) apply and undo/redo restore the segmentation exactly.

The algorithms are in `orbitai.annotate` (arrays with spacing, no Slicer).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import vtk
from vtk.util import numpy_support

from orbitai import annotate

MODE_ADD, MODE_REMOVE, MODE_SET = "add", "remove", "set"


@dataclass
class OperationResult:
    """What an operation did: ``ok`` False means nothing was changed and ``message`` says why."""

    ok: bool
    message: str
    changed_voxels: int = 0
    details: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- array helpers
def oriented_image_to_array(image) -> tuple[np.ndarray, tuple[float, float, float]]:
    """(array [k, j, i] view-copy, spacing (x, y, z)) of a vtkOrientedImageData / vtkImageData."""
    if image is None or image.GetPointData() is None or image.GetPointData().GetScalars() is None:
        raise annotate.AnnotationError("The image has no voxels (no source volume selected?).")
    ext = image.GetExtent()
    dims = (ext[5] - ext[4] + 1, ext[3] - ext[2] + 1, ext[1] - ext[0] + 1)
    if min(dims) <= 0:
        raise annotate.AnnotationError("The image is empty.")
    scalars = image.GetPointData().GetScalars()
    a = numpy_support.vtk_to_numpy(scalars)
    if scalars.GetNumberOfComponents() > 1:
        a = a.reshape(-1, scalars.GetNumberOfComponents())[:, 0]
    return np.array(a.reshape(dims)), tuple(float(s) for s in image.GetSpacing())


def fill_oriented_image(image, mask: np.ndarray) -> None:
    """Write a boolean mask (shape matching ``image``'s extent) into ``image`` as 0/1 uint8."""
    ext = image.GetExtent()
    dims = (ext[5] - ext[4] + 1, ext[3] - ext[2] + 1, ext[1] - ext[0] + 1)
    if tuple(mask.shape) != dims:
        raise annotate.AnnotationError(f"Mask shape {mask.shape} does not match the labelmap extent {dims}.")
    image.AllocateScalars(vtk.VTK_UNSIGNED_CHAR, 1)
    out = numpy_support.vtk_to_numpy(image.GetPointData().GetScalars())
    out[:] = np.ascontiguousarray(mask, dtype=np.uint8).ravel()
    image.Modified()


def ras_to_ijk(image, ras) -> tuple[int, int, int]:
    """Voxel (k, j, i) of a RAS point in an oriented image (its extent offset removed)."""
    m = vtk.vtkMatrix4x4()
    image.GetWorldToImageMatrix(m)
    p = m.MultiplyPoint((float(ras[0]), float(ras[1]), float(ras[2]), 1.0))
    ext = image.GetExtent()
    i, j, k = (int(round(p[0])) - ext[0], int(round(p[1])) - ext[2], int(round(p[2])) - ext[4])
    return k, j, i


def segment_extent_mask(labelmap, reference, value: int | None = None) -> np.ndarray:
    """A segment labelmap (any extent, on the same grid as ``reference``) as a bool array of the
    reference's extent: voxels equal to ``value`` (shared labelmap layers), or non-zero."""
    ref_ext = reference.GetExtent()
    dims = (ref_ext[5] - ref_ext[4] + 1, ref_ext[3] - ref_ext[2] + 1, ref_ext[1] - ref_ext[0] + 1)
    out = np.zeros(dims, bool)
    if labelmap is None or labelmap.GetPointData() is None or labelmap.GetPointData().GetScalars() is None:
        return out
    ext = labelmap.GetExtent()
    if ext[1] < ext[0] or ext[3] < ext[2] or ext[5] < ext[4]:
        return out
    arr, _ = oriented_image_to_array(labelmap)
    lo = [max(ext[2 * a], ref_ext[2 * a]) for a in range(3)]
    hi = [min(ext[2 * a + 1], ref_ext[2 * a + 1]) for a in range(3)]
    if any(h < l for l, h in zip(lo, hi)):
        return out
    src = tuple(slice(lo[a] - ext[2 * a], hi[a] - ext[2 * a] + 1) for a in (2, 1, 0))
    dst = tuple(slice(lo[a] - ref_ext[2 * a], hi[a] - ref_ext[2 * a] + 1) for a in (2, 1, 0))
    out[dst] = (arr[src] == value) if value is not None else (arr[src] != 0)
    return out


# --------------------------------------------------------------------------- MRML logic
class AnnotationLogic:
    """SmartPencil / SmartFill / AutoCorrection on a segmentation node, with undo.

    ``scene``: a vtkMRMLScene (Slicer's ``slicer.mrmlScene`` or a headless one); ``app_logic``: the
    application logic (``slicer.app.applicationLogic()`` in Slicer). Select the inputs with
    `set_inputs`, then call the operations; each returns an `OperationResult`.
    """

    def __init__(self, scene, app_logic=None, editor_node=None, cache=None):
        import slicer

        self.scene = scene
        self.editor = slicer.vtkSlicerSegmentEditorLogic()
        if app_logic is not None:
            self.editor.SetMRMLApplicationLogic(app_logic)
        self.editor.SetMRMLScene(scene)
        if editor_node is None:
            editor_node = scene.AddNewNodeByClass("vtkMRMLSegmentEditorNode")
        self.editor_node = editor_node
        self.editor.SetSegmentEditorNode(editor_node)
        self.cache = annotate.SuperpixelCache() if cache is None else cache
        self.segmentation_node = None
        self.volume_node = None
        self._pending_fill: np.ndarray | None = None

    # ---------------------------------------------------------------- inputs
    def set_inputs(self, segmentation_node, volume_node, segment_id: str | None = None) -> None:
        self.segmentation_node = segmentation_node
        self.volume_node = volume_node
        self.editor.SetSegmentationNode(segmentation_node)
        self.editor.SetSourceVolumeNode(volume_node)
        if segment_id is not None:
            self.select_segment(segment_id)
        self._pending_fill = None

    def select_segment(self, segment_id: str) -> None:
        self.editor.SetCurrentSegmentID(segment_id)
        self._pending_fill = None

    @property
    def segment_id(self) -> str:
        return self.editor.GetCurrentSegmentID() or ""

    def _check(self) -> str | None:
        """Why an operation cannot run now (None when it can)."""
        if self.segmentation_node is None:
            return "No segmentation selected: choose or create a segmentation first."
        if self.volume_node is None or self.volume_node.GetImageData() is None:
            return "No source volume selected: choose the image to annotate."
        seg = self.segmentation_node.GetSegmentation()
        if seg.GetNumberOfSegments() == 0:
            return "The segment list is empty: add a segment (e.g. eyeball_left) and select it."
        sid = self.segment_id
        if not sid or seg.GetSegment(sid) is None:
            return "No segment selected: select the segment to edit in the segment list."
        return None

    def _grid(self):
        """(modifier labelmap, source array [k, j, i], spacing) on the editor's aligned geometry."""
        if not self.editor.ResetModifierLabelmapToDefault():
            raise annotate.AnnotationError("Could not set up the segmentation geometry.")
        if not self.editor.UpdateAlignedSourceVolume():
            raise annotate.AnnotationError("Could not resample the source volume to the segmentation geometry.")
        modifier = self.editor.GetModifierLabelmap()
        src, spacing = oriented_image_to_array(self.editor.GetAlignedSourceVolume())
        return modifier, src, spacing

    def segment_mask(self, segment_id: str | None = None) -> np.ndarray:
        """The segment as a bool array on the source volume's aligned grid."""
        import slicer

        modifier, _, _ = self._grid()
        sid = segment_id or self.segment_id
        lm = slicer.vtkOrientedImageData()
        slicer.vtkSlicerSegmentationsModuleLogic.GetSegmentBinaryLabelmapRepresentation(
            self.segmentation_node, sid, lm, False)
        # Segments may share one labelmap layer: the segment is the voxels holding its value.
        value = self.segmentation_node.GetSegmentation().GetSegment(sid).GetLabelValue()
        return segment_extent_mask(lm, modifier, value)

    def _apply(self, modifier, mask: np.ndarray, mode: str) -> int:
        before = self.segment_mask()
        fill_oriented_image(modifier, mask)
        self.editor.SaveStateForUndo()
        m = {MODE_ADD: self.editor.ModificationModeAdd, MODE_REMOVE: self.editor.ModificationModeRemove,
             MODE_SET: self.editor.ModificationModeSet}[mode]
        self.editor.ModifySegmentByLabelmap(self.segmentation_node, self.segment_id, modifier, m, True, False)
        after = self.segment_mask()
        return int(np.count_nonzero(before != after))

    def _run(self, fn) -> OperationResult:
        why = self._check()
        if why:
            return OperationResult(False, why)
        try:
            return fn()
        except annotate.AnnotationError as exc:
            return OperationResult(False, str(exc))

    # ---------------------------------------------------------------- SmartPencil
    def smartpencil_click(self, ijk=None, ras=None, remove: bool = False, n_superpixels: int = 1000,
                          mode: str = "3d", region_mm: float | None = None, compactness: float = 3.0) -> OperationResult:
        """Add (or remove) the superpixel under a voxel (``ijk`` = (k, j, i) on the aligned grid)
        or a RAS point. ``region_mm``: working region = a box of that size around the click (None:
        the whole volume)."""
        def go():
            modifier, src, spacing = self._grid()
            p = ras_to_ijk(modifier, ras) if ras is not None else ijk
            if p is None:
                raise annotate.AnnotationError("Give the click position (ijk or ras).")
            point = annotate._common.check_point(p, src.shape)
            region = None if not region_mm else annotate.region_around(point, region_mm, spacing, src.shape)
            key = (self.volume_node.GetID(), self.volume_node.GetImageData().GetMTime())
            r = annotate.smartpencil_click(src, spacing, self.segment_mask(), point, remove=remove,
                                           n_superpixels=n_superpixels, region=region, mode=mode,
                                           compactness=compactness, cache=self.cache, key_extra=key)
            if r.changed == 0:
                return OperationResult(True, r.message, 0, {"label": r.label})
            changed = self._apply(modifier, r.modifier, MODE_REMOVE if remove else MODE_ADD)
            msg = r.message if changed else r.message + " (blocked by the editable area / masking settings)"
            return OperationResult(True, msg, changed, {"label": r.label})
        return self._run(go)

    # ---------------------------------------------------------------- SmartFill
    def smartfill_preview(self, fg_strokes: np.ndarray, bg_strokes: np.ndarray | None = None, **params) -> OperationResult:
        """Compute the fill from stroke masks (bool arrays on the aligned grid); nothing changes
        until `smartfill_accept`. The preview mask is in ``details['mask']``."""
        def go():
            _, src, spacing = self._grid()
            r = annotate.smartfill(src, spacing, fg_strokes, bg_strokes, **params)
            self._pending_fill = r.mask
            return OperationResult(True, r.message + " Accept or cancel the preview.", 0,
                                   {"mask": r.mask, "region": r.region})
        return self._run(go)

    def smartfill_accept(self) -> OperationResult:
        def go():
            if self._pending_fill is None:
                return OperationResult(False, "There is no SmartFill preview to accept: paint strokes and preview first.")
            modifier, src, _ = self._grid()
            if self._pending_fill.shape != src.shape:
                self._pending_fill = None
                return OperationResult(False, "The image geometry changed since the preview; preview again.")
            # The fill adds to the segment (strokes define the structure; the rest of the segment stays).
            changed = self._apply(modifier, self._pending_fill, MODE_ADD)
            self._pending_fill = None
            return OperationResult(True, f"SmartFill accepted: {changed} voxels changed.", changed)
        return self._run(go)

    def smartfill_cancel(self) -> OperationResult:
        had = self._pending_fill is not None
        self._pending_fill = None
        return OperationResult(True, "SmartFill preview discarded." if had else "No preview to cancel.")

    # ---------------------------------------------------------------- AutoCorrection
    def autocorrect(self, **params) -> OperationResult:
        def go():
            modifier, src, spacing = self._grid()
            current = self.segment_mask()
            if not current.any():
                return OperationResult(False, "The selected segment is empty: nothing to correct.")
            r = annotate.autocorrect(src, spacing, current, **params)
            if np.array_equal(r.mask, current):
                return OperationResult(True, r.message + " The segment already follows the image.", 0)
            changed = self._apply(modifier, r.mask, MODE_SET)
            return OperationResult(True, r.message, changed)
        return self._run(go)

    # ---------------------------------------------------------------- undo
    def undo(self) -> OperationResult:
        if not self.editor.CanUndo():
            return OperationResult(False, "Nothing to undo.")
        self.editor.Undo()
        return OperationResult(True, "Undone.")

    def redo(self) -> OperationResult:
        if not self.editor.CanRedo():
            return OperationResult(False, "Nothing to redo.")
        self.editor.Redo()
        return OperationResult(True, "Redone.")


# --------------------------------------------------------------------------- Slicer registration
#: Scripted effect files in OrbitSegmentation/SegmentEditorEffects/. That folder deliberately has
#: no __init__.py: it must never shadow Slicer's own ``SegmentEditorEffects`` package.
EFFECT_FILES = (
    "SegmentEditorSmartPencilEffect.py",
    "SegmentEditorSmartFillEffect.py",
    "SegmentEditorAutoCorrectionEffect.py",
)


def effect_paths() -> list[str]:
    import os

    here = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "SegmentEditorEffects")
    return [os.path.join(here, f).replace("\\", "/") for f in EFFECT_FILES]


def register_annotation_effects() -> None:
    """Register SmartPencil, SmartFill and AutoCorrection with Slicer's Segment Editor.

    Call inside Slicer once it has started, e.g. in the OrbitSegmentation module's ``__init__``:
    ``slicer.app.connect("startupCompleted()", register_annotation_effects)``."""
    import qSlicerSegmentationsEditorEffectsPythonQt as effects  # Slicer only

    for path in effect_paths():
        instance = effects.qSlicerSegmentEditorScriptedEffect(None)
        instance.setPythonSource(path)
        instance.self().register()
