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

from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

from orbitai.mrml.annotation_images import slicer_contour_interpolation, volume_oriented_image
from orbitai.mrml.editors import MODE_ADD, MODE_REMOVE, MODE_SET
from orbitai.mrml.labelmaps import (oriented_image_to_array, ras_to_ijk, segment_extent_mask, slice_axis,
                                    superpixel_edges)
from orbitai.mrml.segment_labelmaps import binary_labelmap, geometry_key

from .editing import OperationResult, _annotate
from .model_prior import PRIOR_DEVICE, ModelPriorActions, _PriorPending, prior_key, volume_of
from .options import AUTOCORRECTION, BOUNDARIES_ROLE, CONSISTENT_SHIFT_SIGMA_MM, PREVIEW_ROLE, SMARTFILL, SMARTPENCIL


@dataclass
class Preparation:
    """What `AnnotationLogic.prepare` started for one scan: ``superpixels(abort)`` computes the SmartPencil map into
    the logic's cache (a worker thread's job; ``abort``, a `threading.Event`, stops it), ``prior`` is the model
    prior's request (or the cached prior; None when the tools' prior weights are 0)."""

    volume_id: str
    key: tuple
    superpixels: Callable[..., None]
    prior: Any = None


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
                                           settings=self._superpixel_settings(opts.get("Mode").lower(), axis),
                                           region=region, cache=self.cache, key_extra=key)
            if opts.get("ShowBoundaries"):
                self._show_overlay(BOUNDARIES_ROLE, "SmartPencil boundaries", modifier,
                                   superpixel_edges(r.superpixels, src.shape), (1.0, 1.0, 0.0), 0.6)
            if r.changed == 0:
                return OperationResult(True, r.message, 0, {"label": r.label})
            changed = self._apply(modifier, r.modifier, MODE_REMOVE if remove else MODE_ADD)
            msg = r.message if changed else r.message + " (blocked by the editable area / masking settings)"
            return OperationResult(True, msg, changed, {"label": r.label})
        return self._run(go)

    def _superpixel_settings(self, mode: str, axis: int = 0) -> Any:
        """The superpixels' settings (`orbitai.annotate.SuperpixelSettings`) in ``mode`` along ``axis``, their size
        from the SmartPencil options: in mm (``SizeMm``), else their number."""
        opts = self.params(SMARTPENCIL)
        size = float(opts.get("SizeMm") or 0.0)
        return _annotate().SuperpixelSettings(n_superpixels=opts.get("Superpixels"),
                                              size_mm=size if size > 0 else None, mode=mode, axis=axis)

    def prepare(self, volume_node, priors: Any = None) -> Preparation:
        """Start what the first SmartPencil click and SmartFill preview on ``volume_node`` need, before them (issue
        67): the scan read as the tools read it on a segmentation made on its own grid (kept: `_grid` finds it),
        the model prior asked for from ``priors`` (a `PriorCache`, e.g. ``DEFAULT_PRIORS``; computed by the warm
        worker, on the orbits' part of a head), and the superpixel
        map of the whole scan with the SmartPencil options as `Preparation.superpixels`, to run on a worker thread
        (3D mode without a working region only: a region's map waits for its first click). On the caller's thread:
        reads the scan once (a fraction of a second on a 1 mm head); nothing is computed here."""
        image = volume_oriented_image(volume_node)
        array, spacing = oriented_image_to_array(image)
        key = ((volume_node.GetID(), volume_node.GetImageData().GetMTime()), geometry_key(image))
        self._source = (key, array, spacing)
        self._volume = (key, volume_of(array, image), prior_key(key))
        prior = None
        if priors is not None and not self._prior_off():
            prior = priors.request(self._volume[1], key=self._volume[2], device=PRIOR_DEVICE)
            self._prior_job = prior
        opts = self.params(SMARTPENCIL)
        whole = opts.get("Mode") == "3D" and not opts.get("RegionMm")
        cache, settings = self.cache, self._superpixel_settings("3d")

        def superpixels(abort=None):
            if whole:
                cache.get_or_compute(array, spacing, settings, region=None, key_extra=key[0], abort=abort)
        return Preparation(volume_node.GetID(), key, superpixels, prior)

    def _prior_off(self) -> bool:
        """Whether both tools that read the model prior have it switched off (weight 0)."""
        return not (self.priorWanted(SMARTFILL) or self.priorWanted(AUTOCORRECTION))

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

    def _prior_where(self, prior: Optional[np.ndarray], marked: Optional[np.ndarray],
                     note: str) -> tuple[Optional[np.ndarray], str]:
        """The model prior, unless the network sees none of the structure where the user marked it (no voxel of
        ``marked`` above one half: the model missed it in this image, or sees it elsewhere); then the strokes alone
        are used and the note says why (a prior of nothing pulled a 1 mm CT head's eyeball preview to Dice 0.09)."""
        if prior is None or marked is None or prior.shape != marked.shape or not marked.any():
            return prior, note
        if (prior[marked] > 0.5).any():
            return prior, note
        return None, (f" The model does not see '{self.segmentStructure()}' where you marked it, so its prior is "
                      "not used: the strokes alone are.")

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
            prior, note = self._prior_where(prior, fg, note)
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
            prior, note = self._prior_where(prior, current, note)
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

    # ---------------------------------------------------------------- basic edits (Slicer's effects' semantics)
    def threshold(self, minimum: float, maximum: float) -> OperationResult:
        """Slicer's Threshold effect: the selected segment becomes the voxels with ``minimum <= value <= maximum``
        (one undo state; the editable area and masking settings apply)."""
        return self._edit(lambda src, sp, mask: _annotate().threshold_mask(src, minimum, maximum),
                          f"Threshold {float(minimum):g} to {float(maximum):g}", empty_ok=True)

    def islands(self, keep_largest: bool = True, minimum_voxels: int = 1000) -> OperationResult:
        """Slicer's Islands effect: keep the largest island of the selected segment, or remove its islands
        smaller than ``minimum_voxels`` (face-connected)."""
        if keep_largest:
            return self._edit(lambda src, sp, mask: _annotate().keep_largest_island(mask), "Kept the largest island")
        return self._edit(lambda src, sp, mask: _annotate().remove_small_islands(mask, minimum_voxels),
                          f"Removed the islands under {int(minimum_voxels)} voxels")

    def smooth(self, method: str = "MEDIAN", kernel_mm: float = 3.0) -> OperationResult:
        """Slicer's Smoothing effect (median, opening or closing) on the selected segment, kernel in mm."""
        return self._edit(lambda src, sp, mask: _annotate().smooth_mask(mask, sp, method, kernel_mm),
                          f"Smoothing ({str(method).replace('_', ' ').lower()}, {float(kernel_mm):g} mm)")

    def fillBetweenSlices(self, axis: Optional[int] = None) -> OperationResult:
        """Slicer's Fill between slices on the selected segment: the slices between the drawn ones filled by
        morphological contour interpolation (``axis`` [k, j, i]; default the axis it was drawn along)."""
        return self._edit(lambda src, sp, mask: _annotate().fill_between_slices(mask, axis, slicer_contour_interpolation),
                          "Filled between slices")

    def _edit(self, fn: Callable[[np.ndarray, tuple, np.ndarray], np.ndarray], what: str,
              empty_ok: bool = False) -> OperationResult:
        """The selected segment set to ``fn(source, spacing, segment)`` (one undo state, through the editor)."""
        def go():
            modifier, src, spacing = self._grid()
            current = self.segmentMask(reference=modifier)
            if not empty_ok and not current.any():
                return OperationResult(False, "The selected segment is empty: draw it first.")
            mask = fn(src, spacing, current)
            if np.array_equal(mask, current):
                return OperationResult(True, f"{what}: nothing changed.", 0)
            changed = self._apply(modifier, mask, MODE_SET)
            return OperationResult(True, f"{what}: {changed} voxels changed.", changed)
        return self._run(go)
