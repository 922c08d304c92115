"""The model prior of the annotation tools: the segmentation network's map of the selected segment's structure.

`ModelPriorActions` asks for the prior of the source image off the caller's thread (`orbitai.app.annotation.priors`,
once per image and shared by the tools), says how far it is (`priorStatus`), and keeps an action asked for before it
arrived (`_defer`) to run from the effect's timer (`pollPrior`) only on the segment it was asked for and only if
nobody edited that segment meanwhile. `startFromModel` sets the segment to the network's mask; SmartFill and
AutoCorrection read the map with their prior weight (`priorMap`). A scene that closes cancels the priors being
computed (`cancel_model_work_on_scene_close`).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np
import vtk

from orbitai.io import Volume
from orbitai.labels import STRUCTURE_CODES
from orbitai.mrml.editors import MODE_SET
from orbitai.mrml.segment_labelmaps import binary_labelmap
from orbitai.orbit.prior_file import ModelPrior, PriorUnavailable, split_side

from .editing import OperationResult, SegmentEditing

#: The device of the model prior's network: a GPU when the child finds one (``orbitai seg prior --device``).
PRIOR_DEVICE = "auto"


class ModelPriorActions(SegmentEditing):
    """The model prior's part of `orbitai.app.annotation.logic.AnnotationLogic` (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._volume: Optional[tuple] = None       # (source key, orbitai Volume, image_key) of the source
        self._prior_job: Any = None                # the current source's ModelPrior, or its PriorRequest (startPrior)
        self._pending: Optional[_Pending] = None    # the action awaiting the prior
        self._prior_map: Optional[tuple] = None    # ((prior key, structure), probability array)

    def sourceVolume(self):
        """The source image on the aligned grid as an `orbitai.io.Volume` with its geometry (LPS), and its key
        for the model prior (both kept while the image and geometry stay). The key is the volume node's ID, its
        image's modification time and the grid (`_grid`'s key), not a checksum of every voxel: VTK's modification
        times only grow within a process, so it names this image and grid uniquely here, at no cost on the
        calling thread (hashing a 512x512x300 CT there took 0.35-0.6 s)."""
        _, src, _ = self._grid()
        if self._volume is None or self._volume[0] != self._source[0]:
            _, source = self.editor.aligned()
            self._volume = (self._source[0], volume_of(src, source), prior_key(self._source[0]))
        return self._volume[1], self._volume[2]

    def segmentStructure(self) -> Optional[str]:
        """The selected segment's name when it names an orbit structure (e.g. superior_rectus_muscle_left,
        optic_nerve), else None: only then can the segmentation network help."""
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



def volume_of(array: np.ndarray, image: Any) -> Volume:
    """``array`` ([k, j, i], read from the oriented image ``image``) as an `orbitai.io.Volume` with ``image``'s
    geometry (LPS)."""
    m = vtk.vtkMatrix4x4()
    image.GetImageToWorldMatrix(m)
    ijk_to_ras = np.array([[m.GetElement(r, c) for c in range(4)] for r in range(4)])
    e = image.GetExtent()
    ijk_to_ras[:3, 3] += ijk_to_ras[:3, :3] @ np.array([e[0], e[2], e[4]], float)  # the extent's first voxel
    return Volume.from_ijk_to_ras(array, ijk_to_ras)


def prior_key(source_key: tuple) -> str:
    """The model prior's key of a source image read under ``source_key`` (`SegmentEditing._grid`'s key)."""
    return "mrml-" + hashlib.blake2b(repr(source_key).encode(), digest_size=16).hexdigest()


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
