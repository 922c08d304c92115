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

The algorithms are in `orbitai.annotate` (arrays with spacing, no Slicer).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np
import vtk

from orbitai.io import Volume
from orbitai.labels import STRUCTURE_CODES
from orbitai.mrml.editors import (
    MODE_ADD,
    MODE_REMOVE,
    MODE_SET,
    Editor,
    SegmentEditorLogicEditor,
    SegmentEditorWidgetEditor,
    headless_editor,
)
from orbitai.mrml.labelmaps import (
    fill_oriented_image,
    oriented_image_to_array,
    ras_to_ijk,
    segment_extent_mask,
    slice_axis,
    superpixel_edges,
)
from orbitai.mrml.segmentations import binary_labelmap, geometry_key, segment_labelmap, set_single_segment

from .options import (
    AUTOCORRECTION,
    BOUNDARIES_ROLE,
    CONSISTENT_SHIFT_SIGMA_MM,
    PREVIEW_ROLE,
    SMARTFILL,
    SMARTPENCIL,
    EffectParameters,
)


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


class AnnotationLogic:
    """SmartPencil / SmartFill / AutoCorrection on the segment selected in a segment editor.

    Options come from the segment editor node (`params`); each operation returns an
    `OperationResult` (it never raises for bad input or state: the message says what to do).
    ``AnnotationLogic(scene, app_logic)`` gives a headless editor (`headless_editor`: Slicer 5.10's
    ``vtkSlicerSegmentEditorLogic``, or a hidden segment editor widget on 5.8); effects pass their
    `ScriptedEffectEditor` as ``editor``.
    """

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
        self._volume: Optional[tuple] = None       # (source key, orbitai Volume, image_key) of the source
        self._prior_job: Any = None                # the current source's ModelPrior, or its PriorRequest (startPrior)
        self._pending: Optional[_Pending] = None    # the action awaiting the prior
        self._prior_map: Optional[tuple] = None    # ((prior key, structure), probability array)

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
        return int(np.count_nonzero(before != self.segmentMask(reference=modifier)))

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


    # ---------------------------------------------------------------- model prior
    def sourceVolume(self):
        """The source image on the aligned grid as an `orbitai.io.Volume` with its geometry (LPS), and its key
        for the model prior (both kept while the image and geometry stay). The key is the volume node's ID, its
        image's modification time and the grid (`_grid`'s key), not a checksum of every voxel: VTK's modification
        times only grow within a process, so it names this image and grid uniquely here, at no cost on the
        calling thread (hashing a 512x512x300 CT there took 0.35-0.6 s)."""
        _, src, _ = self._grid()
        if self._volume is None or self._volume[0] != self._source[0]:
            _, source = self.editor.aligned()
            m = vtk.vtkMatrix4x4()
            source.GetImageToWorldMatrix(m)
            ijk_to_ras = np.array([[m.GetElement(r, c) for c in range(4)] for r in range(4)])
            e = source.GetExtent()
            ijk_to_ras[:3, 3] += ijk_to_ras[:3, :3] @ np.array([e[0], e[2], e[4]], float)  # the extent's first voxel
            vol = Volume.from_ijk_to_ras(src, ijk_to_ras)
            key = "mrml-" + hashlib.blake2b(repr(self._source[0]).encode(), digest_size=16).hexdigest()
            self._volume = (self._source[0], vol, key)
        return self._volume[1], self._volume[2]

    def segmentStructure(self) -> Optional[str]:
        """The selected segment's name when it names an orbit structure (e.g. superior_rectus_muscle_left,
        optic_nerve), else None: only then can the segmentation network help."""
        from orbitai.orbit.prior import split_side

        name = self.segmentationNode.GetSegmentation().GetSegment(self.segmentID).GetName()
        return name if split_side(name)[0] in STRUCTURE_CODES else None

    def _unnamed(self) -> str:
        name = self.segmentationNode.GetSegmentation().GetSegment(self.segmentID).GetName()
        return (f"No model prior for '{name}': name the segment after an orbit structure "
                "(e.g. superior_rectus_muscle_left) to use the model.")

    def priorWanted(self, effect: str) -> bool:
        """Whether ``effect`` reads the model prior with its current options (its prior weight above 0)."""
        try:
            return self.editorNode is not None and float(self.params(effect).get("PriorWeight")) > 0
        except (KeyError, ValueError):
            return False

    def startPrior(self) -> OperationResult:
        """Start computing the model prior of the source image in a child process (the warm worker; once
        per image, shared by the effects: `orbitai.app.annotation.priors.DEFAULT_PRIORS`) when the selected segment
        names an orbit structure. Returns at once; `pollPrior` (the effect's timer) takes the result."""
        def go():
            from orbitai.app.annotation.priors import DEFAULT_PRIORS

            if self.segmentStructure() is None:      # no network runs for a segment it cannot help
                return OperationResult(True, self._unnamed())
            vol, key = self.sourceVolume()
            if self._prior_job is None or self._prior_job.key != key or self._failed(self._prior_job):
                self._prior_job = DEFAULT_PRIORS.request(vol, key=key, device=PRIOR_DEVICE)
            return OperationResult(True, self.priorStatus())
        return self._run(go)

    @staticmethod
    def _failed(job) -> bool:
        return getattr(job, "error", None) is not None

    def priorStatus(self) -> str:
        """One line on the model prior of the current image: not started, computing, ready or why not
        (never waits)."""
        if self._check() is None and self.segmentStructure() is None:
            return self._unnamed()
        job = self._prior_job
        if job is None:
            return "Model prior: not computed yet."
        if hasattr(job, "poll"):
            job.poll()
            return job.status()
        return f"Model prior ready ({job.bundle})."

    def _ready_prior(self):
        """The current image's prior when it is there, None while it is being computed (started if it was
        not). Never waits. Raises `PriorUnavailable` with the reason when there can be none."""
        from orbitai.orbit.prior import ModelPrior, PriorUnavailable

        _, key = self.sourceVolume()
        if self._prior_job is None or self._prior_job.key != key:
            self.startPrior()
        job = self._prior_job
        if isinstance(job, ModelPrior):
            return job
        if job.poll() and job.prior is not None:
            return job.prior
        if job.error is not None:
            raise PriorUnavailable(job.error)
        return None

    def _segmentState(self) -> tuple:
        """What changes whenever the selected segment is edited (its labelmap's identity and modification
        time; a shared labelmap layer also changes when another segment of the layer is edited)."""
        image = binary_labelmap(self.segmentationNode.GetSegmentation().GetSegment(self.segmentID))
        return (self.segmentID, None if image is None else (image.GetAddressAsString(""), image.GetMTime()))

    def _defer(self, action: Callable[[], OperationResult], what: str, name: str) -> OperationResult:
        """Keep ``action`` (``name``, e.g. "the preview") to run when the prior arrives (`pollPrior`); say so
        (``what``). Nothing changes now."""
        self._pending = _Pending(self.segmentID, action, self._segmentState(), name)
        return OperationResult(True, f"{self.priorStatus()} {what} when it is ready "
                                     "(set the model prior weight to 0 to go on without it).", 0, {"pending": True})

    @property
    def pending(self) -> bool:
        """Whether an action waits for the model prior."""
        return self._pending is not None

    def pollPrior(self) -> Optional[OperationResult]:
        """Timer tick: take the prior if its child has ended and run the action that waited for it, only on the
        segment it was asked for and only if nobody edited that segment meanwhile (the user's edits are never
        replaced by an action they asked for before them). Returns that action's result, else None. Returns at
        once while the child runs."""
        job = self._prior_job
        if self._pending is None or job is None or (hasattr(job, "poll") and not job.poll()):
            return None
        pending, self._pending = self._pending, None
        if getattr(job, "cancelled", False):
            return OperationResult(False, f"The model prior was cancelled; {pending.name} was not run. "
                                          "Press the button again.")
        if self._check() is not None or pending.segment != self.segmentID:
            return OperationResult(False, "The selected segment changed while the model prior was computed; "
                                          "press the button again.")
        if self._segmentState() != pending.state:
            return OperationResult(False, "The segment was edited while the model prior was computed; your edits "
                                          f"are kept and {pending.name} was not run. Press the button "
                                          "again to run it now.")
        return pending.action()

    def cancelPending(self) -> Optional[OperationResult]:
        """Drop the action waiting for the model prior (the effect was deactivated, the scene closes): it will
        not run. The prior itself goes on computing for the next use. Returns what was said, or None when nothing
        waited."""
        pending, self._pending = self._pending, None
        if pending is None:
            return None
        return OperationResult(True, f"Dropped {pending.name}, which waited for the model prior (the tool was left).")

    def waitForPrior(self, timeout_s: Optional[float] = None) -> Optional[OperationResult]:
        """Block until the prior is there (scripts and tests; never on Slicer's main thread), then run the
        waiting action: `pollPrior`'s result."""
        job = self._prior_job
        if job is not None and hasattr(job, "wait"):
            job.wait(timeout_s)
        return self.pollPrior()

    def priorMap(self, effect: str) -> tuple[Optional[np.ndarray], float, str]:
        """(the network's probability of the selected segment's structure on the source grid, the
        effect's prior weight, a note for the status line); (None, 0, why) when the prior is off or
        unavailable: the effect then works exactly as without it. Raises `_PriorPending` while it is
        being computed."""
        from orbitai.orbit.prior import PriorUnavailable

        weight = float(self.params(effect).get("PriorWeight"))
        if weight <= 0:
            return None, 0.0, ""
        name = self.segmentStructure()
        if name is None:
            return None, 0.0, " " + self._unnamed()
        try:
            prior = self._ready_prior()
        except PriorUnavailable as exc:
            return None, 0.0, f" {exc}"
        if prior is None:
            raise _PriorPending()
        if not prior.has(name):
            return None, 0.0, (f" No model prior for '{name}': name the segment after an orbit structure "
                               "(e.g. superior_rectus_muscle_left) to use the model.")
        vol, _ = self.sourceVolume()
        if self._prior_map is None or self._prior_map[0] != (prior.key, name):
            self._prior_map = ((prior.key, name), prior.probability(name, vol, key=self.sourceVolume()[1]))
        return self._prior_map[1], weight, f" Model prior {prior.bundle}, weight {weight:g}."

    def startFromModel(self) -> OperationResult:
        """Set the selected segment to the network's mask of its structure (probability above one half;
        one undo state; the editable area and masking settings apply), to correct from there. While the
        prior is being computed this returns at once and runs when it arrives (`pollPrior`)."""
        def go():
            from orbitai.orbit.prior import PriorUnavailable

            modifier, _, _ = self._grid()
            name = self.segmentStructure()
            if name is None:
                return OperationResult(False, self._unnamed())
            try:
                prior = self._ready_prior()
            except PriorUnavailable as exc:
                return OperationResult(False, str(exc))
            if prior is None:
                return self._defer(self.startFromModel, "The segment will be started from the model",
                                   "starting from the model")
            if not prior.has(name):
                return OperationResult(False, f"The model has no structure '{name}': name the segment after an orbit "
                                              "structure (e.g. superior_rectus_muscle_left).")
            vol, key = self.sourceVolume()
            mask = prior.start_mask(name, vol, key=key)
            if not mask.any():
                return OperationResult(False, f"The model ({prior.bundle}) found no {name} in this image.")
            changed = self._apply(modifier, mask, MODE_SET)
            return OperationResult(True, f"Started '{name}' from the model ({prior.bundle}): {changed} voxels changed. "
                                         "Correct it with strokes or clicks, or undo.", changed)
        return self._run(go)


#: The device of the model prior's network: a GPU when the child finds one (``orbitai seg prior --device``).
PRIOR_DEVICE = "auto"


@dataclass
class _Pending:
    """An action asked for before the model prior was there (`AnnotationLogic._defer`)."""

    segment: str
    action: Callable[[], OperationResult]
    state: tuple          # `AnnotationLogic._segmentState` when it was asked for
    name: str             # e.g. "the preview"


class _PriorPending(Exception):
    """Raised by `AnnotationLogic.priorMap` while the prior is being computed: the action waits for it."""


def cancel_model_work_on_scene_close(scene: Any) -> int:
    """When ``scene`` starts closing, cancel every model prior being computed and forget the computed ones
    (`DEFAULT_PRIORS.clear`: they are the closed scene's images, hundreds of MB); an effect's action that waited
    for one is then dropped (`AnnotationLogic.pollPrior`), never run on the next scene. Returns the observer's tag."""
    from orbitai.app.annotation.priors import DEFAULT_PRIORS

    return scene.AddObserver(scene.StartCloseEvent, lambda caller, event: DEFAULT_PRIORS.clear())
