"""The annotation effects' logic: SmartPencil, SmartFill and AutoCorrection on a segment (no Qt).

One code path for Slicer and headless use (``slicer-core``). The Segment Editor effects in
``OrbitSegmentation/OrbitSegmentationEffects`` only build widgets and call `AnnotationLogic`; tests drive
the same class on a real MRML scene.

* Options: effect parameters on the segment editor node (`effect_options`).
* Editing: through an *editor* (`segment_editors`): every change is preceded by an undo state and
  goes through the editor, so the masking settings apply.
* Arrays: labelmaps <-> numpy in `orbitai.mrml.labelmaps`.
* Previews and overlays live in their own hidden segmentation nodes (referenced from the segment
  editor node): the user's segments and slice-view layers are never touched until Accept.
* The rooms below it: the segment, editor and undo (`orbitai.app.annotation.editing`), and the model prior
  (`orbitai.app.annotation.model_prior`).

The algorithms are in `orbitai.annotate` (arrays with spacing, no Slicer).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from orbitai.mrml.editors import MODE_ADD, MODE_REMOVE, MODE_SET
from orbitai.mrml.labelmaps import ras_to_ijk, segment_extent_mask, slice_axis, superpixel_edges
from orbitai.mrml.segmentations import binary_labelmap, geometry_key

from .editing import OperationResult, _annotate
from .model_prior import ModelPriorActions, _PriorPending
from .options import AUTOCORRECTION, BOUNDARIES_ROLE, CONSISTENT_SHIFT_SIGMA_MM, PREVIEW_ROLE, SMARTFILL, SMARTPENCIL


class AnnotationLogic(ModelPriorActions):
    """SmartPencil / SmartFill / AutoCorrection on the segment selected in a segment editor.

    Options come from the segment editor node (`params`); each operation returns an
    `OperationResult` (it never raises for bad input or state: the message says what to do).
    ``AnnotationLogic(scene, app_logic)`` gives a headless editor (`headless_editor`: Slicer 5.10's
    ``vtkSlicerSegmentEditorLogic``, or a hidden segment editor widget on 5.8); effects pass their
    `ScriptedEffectEditor` as ``editor``.
    """

    # ---------------------------------------------------------------- SmartPencil
    def smartPencilClick(self, ijk=None, ras=None, remove: bool = False, slice_to_ras=None) -> OperationResult:
        """Add (or remove) the superpixel under a voxel (``ijk`` = (k, j, i) on the aligned grid)
        or a RAS point, with the SmartPencil options of the editor node. ``slice_to_ras``: the
        clicked slice view's SliceToRAS matrix (2D mode: the slice axis; default the k axis)."""
        def go():
            modifier, src, spacing = self._grid()
            p = ras_to_ijk(modifier, ras) if ras is not None else ijk
            if p is None:
                raise _annotate().AnnotationError("Give the click position (ijk or ras).")
            point = _annotate()._common.check_point(p, src.shape)
            opts = self.params(SMARTPENCIL)
            key = self._image_key()
            region = self._working_region(point, opts.get("RegionMm"), spacing, src.shape, key)
            axis = slice_axis(slice_to_ras, modifier) if slice_to_ras is not None else 0
            r = _annotate().smartpencil_click(src, spacing, self.segmentMask(reference=modifier), point, remove=remove,
                                           n_superpixels=opts.get("Superpixels"), region=region,
                                           mode=opts.get("Mode").lower(), axis=axis, cache=self.cache,
                                           key_extra=key)
            if opts.get("ShowBoundaries"):
                self._show_overlay(BOUNDARIES_ROLE, "SmartPencil boundaries", modifier,
                                   superpixel_edges(r.superpixels, src.shape), (1.0, 1.0, 0.0), 0.6)
            if r.changed == 0:
                return OperationResult(True, r.message, 0, {"label": r.label})
            changed = self._apply(modifier, r.modifier, MODE_REMOVE if remove else MODE_ADD)
            msg = r.message if changed else r.message + " (blocked by the editable area / masking settings)"
            return OperationResult(True, msg, changed, {"label": r.label})
        return self._run(go)

    def _working_region(self, point, size_mm: float, spacing, shape, key):
        """The working region: a box of ``size_mm`` around the first click, kept while clicks fall
        inside it and the image and options stay the same (so superpixels come from the cache)."""
        if not size_mm:
            self._region = None
            return None
        region_key = (float(size_mm), tuple(shape), key)
        inside = self._region is not None and all(s.start <= v < s.stop for v, s in zip(point, self._region))
        if region_key != self._region_key or not inside:
            self._region = _annotate().region_around(point, size_mm, spacing, shape)
            self._region_key = region_key
        return self._region

    @property
    def boundariesNode(self):
        return self._overlay_node(BOUNDARIES_ROLE)

    def removeBoundaries(self) -> bool:
        return self._remove_overlay(BOUNDARIES_ROLE)

    # ---------------------------------------------------------------- SmartFill
    @property
    def previewNode(self):
        """The SmartFill preview (a hidden segmentation node), or None."""
        return self._overlay_node(PREVIEW_ROLE)

    def backgroundSegmentID(self) -> Optional[str]:
        """The chosen background-stroke segment when it exists and is not the edited segment."""
        sid = self.params(SMARTFILL).get("BackgroundSegmentID")
        seg = self.segmentationNode.GetSegmentation() if self.segmentationNode is not None else None
        if not sid or seg is None or seg.GetSegment(sid) is None or sid == self.segmentID:
            return None
        return sid

    def smartFillPreview(self, fg_strokes: Optional[np.ndarray] = None,
                          bg_strokes: Optional[np.ndarray] = None) -> OperationResult:
        """Fill the structure around the strokes into a preview node; no segment changes until
        `smartFillAccept`. Strokes default to the selected segment (object) and the
        ``BackgroundSegmentID`` segment (background); options come from the editor node. The
        preview mask is in ``details['mask']``."""
        def go():
            modifier, src, spacing = self._grid()
            try:                               # first: nothing else is read while the prior is being computed
                prior, weight, note = self.priorMap(SMARTFILL)
            except _PriorPending:
                return self._defer(lambda: self.smartFillPreview(fg_strokes, bg_strokes), "The preview will be made", "the preview")
            fg = self.segmentMask(reference=modifier) if fg_strokes is None else fg_strokes
            bg = bg_strokes
            if bg is None and self.backgroundSegmentID():
                bg = self.segmentMask(self.backgroundSegmentID(), reference=modifier)
            opts = self.params(SMARTFILL)
            locality = opts.get("LocalityMm")
            extra = {} if prior is None else {"prior": prior, "prior_weight": weight}
            r = _annotate().smartfill(src, spacing, fg, bg, _annotate().FillParameters(
                smoothness=opts.get("Smoothness"), margin_mm=opts.get("MarginMm"),
                locality_mm=locality if locality > 0 else None), **extra)
            segment = self.segmentationNode.GetSegmentation().GetSegment(self.segmentID)
            node = self._show_overlay(PREVIEW_ROLE, "SmartFill preview", modifier, r.mask, segment.GetColor(), 0.5)
            return OperationResult(True, r.message + note + " Accept or cancel the preview.", 0,
                                   {"mask": r.mask, "region": r.region, "preview_node": node,
                                    "prior_used": prior is not None})
        return self._run(go)

    def smartFillAccept(self) -> OperationResult:
        """Add the preview to the selected segment (one undo state) and remove the preview."""
        def go():
            node = self.previewNode
            if node is None:
                return OperationResult(False, "There is no SmartFill preview to accept: paint strokes and "
                                              "preview first.")
            modifier, _, _ = self._grid()
            preview = node.GetSegmentation().GetNthSegment(0)
            image = binary_labelmap(preview)
            if image is None or geometry_key(image) != geometry_key(modifier):
                self.smartFillCancel()
                return OperationResult(False, "The segmentation geometry changed since the preview; preview again.")
            mask = segment_extent_mask(image, modifier)
            # The fill adds to the segment (strokes define the structure; the rest of the segment stays).
            changed = self._apply(modifier, mask, MODE_ADD)
            self._remove_overlay(PREVIEW_ROLE)
            return OperationResult(True, f"SmartFill accepted: {changed} voxels changed.", changed)
        return self._run(go)

    def smartFillCancel(self) -> OperationResult:
        had = self._remove_overlay(PREVIEW_ROLE)
        return OperationResult(True, "SmartFill preview discarded." if had else "No preview to cancel.")

    # ---------------------------------------------------------------- AutoCorrection
    def autocorrect(self) -> OperationResult:
        """Clean the selected segment with the AutoCorrection options of the editor node."""
        def go():
            modifier, src, spacing = self._grid()
            current = self.segmentMask(reference=modifier)
            if not current.any():
                return OperationResult(False, "The selected segment is empty: nothing to correct.")
            opts = self.params(AUTOCORRECTION)
            try:
                prior, weight, note = self.priorMap(AUTOCORRECTION)
            except _PriorPending:
                return self._defer(self.autocorrect, "The correction will run", "the correction")
            extra = {} if prior is None else {"prior": prior, "prior_weight": weight}
            r = _annotate().autocorrect(src, spacing, current, _annotate().CorrectionParameters(
                max_distance_mm=opts.get("MaxDistanceMm"), stay_cost=opts.get("Stiffness"),
                fill_holes=opts.get("FillHoles"), keep_largest=opts.get("KeepLargest"),
                shift_sigma_mm=CONSISTENT_SHIFT_SIGMA_MM if opts.get("ConsistentShift") else None), **extra)
            if np.array_equal(r.mask, current):
                return OperationResult(True, r.message + note + " The segment already follows the image.", 0)
            changed = self._apply(modifier, r.mask, MODE_SET)
            return OperationResult(True, r.message + note, changed)
        return self._run(go)

