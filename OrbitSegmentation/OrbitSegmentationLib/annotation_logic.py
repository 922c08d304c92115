"""The annotation effects' logic: SmartPencil, SmartFill and AutoCorrection on a segment (no Qt).

One code path for Slicer and headless use (``slicer-core``). The Segment Editor effects in
``OrbitSegmentation/OrbitSegmentationEffects`` only build widgets and call `AnnotationLogic`; tests drive
the same class on a real MRML scene.

* Options: every user choice of an effect is an *effect parameter* stored on the
  ``vtkMRMLSegmentEditorNode`` as Slicer's own effects store theirs (attribute ``"<Effect>.<Name>"``,
  what ``scriptedEffect.setParameter``/``parameter`` read and write). `EFFECT_OPTIONS` declares them
  with their defaults and ranges; `EffectParameters` reads and writes them.
* Editing: `AnnotationLogic` works through an *editor*: `SegmentEditorLogicEditor`
  (``vtkSlicerSegmentEditorLogic``: headless and in scripts) or `ScriptedEffectEditor` (inside an
  effect, through ``scriptedEffect``). Every change is preceded by an undo state and goes through
  the editor's ``ModifySegmentByLabelmap``, so the masking settings (editable area, intensity
  range, overwrite of other segments) apply.
* Previews and overlays live in their own hidden segmentation nodes (referenced from the segment
  editor node): the user's segments and slice-view layers are never touched until Accept.

The algorithms are in `orbitai.annotate` (arrays with spacing, no Slicer).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Protocol

import numpy as np
import vtk
from vtk.util import numpy_support


# `orbitai.annotate` needs scipy and scikit-image, which a fresh Slicer lacks: it is imported on first
# use (`_annotate`), so the effects register at start-up without them and an action first offers to
# install them (`missing_dependencies`).
#: Superpixel counts SmartPencil offers (``orbitai.annotate.RESOLUTIONS``; a test keeps them equal).
SUPERPIXEL_COUNTS = (100, 500, 1000, 2000)
#: Import names of the packages the effects' algorithms need beyond Slicer (from the module's requirements).
ANNOTATION_MODULES = ("scipy", "skimage")
REQUIREMENTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "requirements.txt")


def _annotate():
    """The `orbitai.annotate` package (imported on first use, see above)."""
    from orbitai import annotate

    return annotate


def missing_dependencies(ask: bool = True) -> str:
    """"" when scipy and scikit-image are installed; inside Slicer first offers to install them (the
    version ranges of the module's requirements). Else one line saying what is missing and how to install it."""
    from orbitai.mrml.dependencies import ensure_requirements, import_name, read_requirements

    lines = [r for r in read_requirements(REQUIREMENTS) if import_name(r) in ANNOTATION_MODULES]
    try:
        if ensure_requirements(lines, ask=ask):
            return ""
    except ImportError as exc:
        return str(exc)
    return f"Not run: the effect needs {' and '.join(lines)}; they are not installed."

MODE_ADD, MODE_REMOVE, MODE_SET = "add", "remove", "set"
#: How often an effect's timer polls the model prior's child process (the job panels' period).
PRIOR_POLL_MS = 200
SMARTPENCIL, SMARTFILL, AUTOCORRECTION = "SmartPencil", "SmartFill", "AutoCorrection"

#: Node reference roles on the segment editor node (like Grow from seeds' preview reference).
PREVIEW_ROLE = "SmartFill.Preview"
BOUNDARIES_ROLE = "SmartPencil.Boundaries"
NO_SEGMENT = ""
NO_SEGMENT_TEXT = "(none)"


# --------------------------------------------------------------------------- effect options
@dataclass(frozen=True)
class EffectOption:
    """One user choice of an effect. ``kind``: ``float`` (slider), ``int`` (one of ``choices``),
    ``choice`` (text, one of ``choices``), ``bool`` (check box) or ``segment`` (a segment ID of
    the edited segmentation, ``""`` for none)."""

    name: str
    kind: str
    default: Any
    label: str
    tooltip: str = ""
    minimum: float = 0.0
    maximum: float = 0.0
    step: float = 1.0
    suffix: str = ""
    choices: tuple[str, ...] = ()

    def parse(self, text: Optional[str]) -> Any:
        """The typed value of a stored text; the default when it is missing or invalid."""
        if text is None:
            return self.default
        try:
            if self.kind == "float":
                value = float(text)
                return min(max(value, self.minimum), self.maximum) if np.isfinite(value) else self.default
            if self.kind == "bool":
                return bool(int(float(text)))
            if self.kind == "int":
                value = int(float(text))
                return value if str(value) in self.choices else self.default
            if self.kind == "choice":
                return text if text in self.choices else self.default
            return str(text)  # segment
        except ValueError:
            return self.default

    def format(self, value: Any) -> str:
        """The stored text of a value (numbers as ``setParameter`` stores them, booleans as 0/1)."""
        if self.kind == "bool":
            return "1" if value else "0"
        if self.kind == "float":
            return repr(float(value))
        if self.kind == "int":
            return str(int(value))
        return "" if value is None else str(value)


#: Default weights of the segmentation network's probability: SmartFill's (`orbitai.annotate.smartfill`); in
#: AutoCorrection off, as its loss on an already correct mask rose to 0.012 Dice at weight 1 (its bar is 0.01).
DEFAULT_PRIOR_WEIGHT = 2.0
AUTOCORRECTION_PRIOR_WEIGHT = 0.0
PRIOR_TOOLTIP = ("Weight of the segmentation network's probability for this segment's structure (0 = the image and "
                 "strokes alone). Used when a segmentation model for the image's modality is installed and the "
                 "segment is named after an orbit structure, e.g. superior_rectus_muscle_left; strokes always win.")

EFFECT_OPTIONS: dict[str, tuple[EffectOption, ...]] = {
    SMARTPENCIL: (
        EffectOption("Superpixels", "int", 1000, "Superpixels:", "Number of superpixels over the working region.",
                     choices=tuple(str(n) for n in SUPERPIXEL_COUNTS)),
        EffectOption("Mode", "choice", "3D", "Mode:", "3D supervoxels, or 2D superpixels on the clicked slice.",
                     choices=("3D", "2D")),
        EffectOption("RegionMm", "float", 0.0, "Working region:",
                     "Working region: a box of this size around the first click (0 = whole volume).",
                     0.0, 200.0, 5.0, " mm"),
        EffectOption("ShowBoundaries", "bool", False, "Show superpixel boundaries"),
    ),
    SMARTFILL: (
        EffectOption("BackgroundSegmentID", "segment", NO_SEGMENT, "Background strokes:",
                     "Segment holding background strokes (optional)."),
        EffectOption("Smoothness", "float", 2.0, "Smoothness:", "Weight of the boundary term.", 0.0, 10.0, 0.1),
        EffectOption("MarginMm", "float", 10.0, "Region margin:", "Working region around the strokes.",
                     2.0, 60.0, 1.0, " mm"),
        EffectOption("LocalityMm", "float", 8.0, "Locality:",
                     "Stroke locality: distance that costs one unit of evidence (0 = off).", 0.0, 100.0, 1.0, " mm"),
        EffectOption("PriorWeight", "float", DEFAULT_PRIOR_WEIGHT, "Model prior:", PRIOR_TOOLTIP, 0.0, 5.0, 0.1),
    ),
    AUTOCORRECTION: (
        EffectOption("MaxDistanceMm", "float", 1.0, "Maximum border shift:", "", 0.0, 10.0, 0.1, " mm"),
        EffectOption("Stiffness", "float", 3.0, "Border stiffness:",
                     "Evidence needed to move a border voxel (higher = keeps the mask more).", 0.0, 10.0, 0.1),
        EffectOption("FillHoles", "bool", True, "Fill holes and remove islands"),
        EffectOption("KeepLargest", "bool", False, "Keep only the largest island"),
        EffectOption("ConsistentShift", "bool", True, "Move the border also where no edge is visible",
                     "Where the segment touches tissue of its own intensity, move its border as far as it moved "
                     "at the visible edges around it (a second cut)."),
        EffectOption("PriorWeight", "float", AUTOCORRECTION_PRIOR_WEIGHT, "Model prior:", PRIOR_TOOLTIP, 0.0, 5.0, 0.1),
    ),
}

#: Help text of each effect (HTML, shown by the Segment Editor).
EFFECT_HELP: dict[str, str] = {
    SMARTPENCIL: ("<html>Click a superpixel to add it to the selected segment; shift-click removes it.<br>"
                  "Superpixels (100-2000 over the working region, 2D on the slice or 3D supervoxels) are "
                  "computed once per image and region and cached.</html>"),
    SMARTFILL: ("<html>Paint a few strokes inside the structure into the selected segment (Paint effect), "
                "optionally strokes outside it into a background segment, then Preview: a graph cut fills the "
                "structure in 3D around the strokes. Accept or Cancel the preview.<br>"
                "With a segmentation model installed and the segment named after an orbit structure (e.g. "
                "superior_rectus_muscle_left), the network's probability joins the fill (Model prior weight; 0 = off) "
                "and <i>Start from the model</i> fills the segment with the network's mask to correct.</html>"),
    AUTOCORRECTION: ("<html>Cleans the selected segment: fills holes, removes islands and moves its border onto "
                     "the image edges (graph cut in a thin band), never farther than the maximum shift; with the model "
                     "prior (see SmartFill) the network's probability joins the cut.</html>"),
}

#: AutoCorrection's smoothing radius of the consistent border shift when that option is on.
CONSISTENT_SHIFT_SIGMA_MM = 3.0


class EffectParameters:
    """An effect's options on a segment editor node, stored where ``scriptedEffect.setParameter``
    stores them (attribute ``"<effect>.<name>"``), so they are saved with the scene and survive any
    rebuild of the effect's widgets.

    Inside an effect (``scripted_effect`` given) values are written with the effect's own
    ``setParameter``. Headless they are written the way Slicer's
    ``qSlicerSegmentEditorAbstractEffect::setParameter`` does: only a changed value, with the node's
    full Modified event disabled, then ``vtkMRMLSegmentEditorNode.EffectParameterModified`` (so a
    slider move does not rebuild the whole Segment Editor)."""

    def __init__(self, editor_node, effect: str, scripted_effect: Any = None):
        if effect not in EFFECT_OPTIONS:
            raise ValueError(f"Unknown effect '{effect}': use one of {', '.join(EFFECT_OPTIONS)}.")
        self.node = editor_node
        self.effect = effect
        self.scripted_effect = scripted_effect
        self.options = {o.name: o for o in EFFECT_OPTIONS[effect]}

    def key(self, name: str) -> str:
        return f"{self.effect}.{self.option(name).name}"

    def option(self, name: str) -> EffectOption:
        try:
            return self.options[name]
        except KeyError:
            raise ValueError(f"{self.effect} has no option '{name}': use one of {', '.join(self.options)}.") from None

    def _write(self, name: str, text: str) -> None:
        """Store ``text`` as Slicer's ``setParameter`` does (see the class docstring)."""
        if self.scripted_effect is not None:
            self.scripted_effect.setParameter(name, text)
            return
        import slicer

        if self.node.GetAttribute(self.key(name)) == text:
            return
        disabled = self.node.GetDisableModifiedEvent()
        self.node.SetDisableModifiedEvent(1)
        try:
            self.node.SetAttribute(self.key(name), text)
        finally:
            self.node.SetDisableModifiedEvent(disabled)
        self.node.InvokeCustomModifiedEvent(slicer.vtkMRMLSegmentEditorNode.EffectParameterModified)

    def set_defaults(self) -> None:
        """Store the default of every option not stored yet (``setMRMLDefaults``; Slicer's
        ``setParameterDefault``)."""
        for o in self.options.values():
            if self.node.GetAttribute(self.key(o.name)) is None:
                self._write(o.name, o.format(o.default))

    def get(self, name: str) -> Any:
        o = self.option(name)
        return o.parse(self.node.GetAttribute(self.key(name)))

    def set(self, name: str, value: Any) -> bool:
        """Store a value (normalised and range-checked); True when the stored text changed."""
        o = self.option(name)
        text = o.format(o.parse(o.format(value)))
        if self.node.GetAttribute(self.key(name)) == text:
            return False
        self._write(name, text)
        return True

    def update(self, values: dict[str, Any]) -> None:
        """Store several values (one ``EffectParameterModified`` per changed value, as Slicer's effects)."""
        for name, value in values.items():
            self.set(name, value)

    def values(self) -> dict[str, Any]:
        return {name: self.get(name) for name in self.options}


def segment_choices(segmentation_node, exclude: Optional[str] = None) -> list[tuple[str, str]]:
    """(segment ID, name) pairs a ``segment`` option offers: none first, then every segment but
    ``exclude`` (the segment being edited)."""
    out = [(NO_SEGMENT, NO_SEGMENT_TEXT)]
    if segmentation_node is None:
        return out
    seg = segmentation_node.GetSegmentation()
    for i in range(seg.GetNumberOfSegments()):
        sid = seg.GetNthSegmentID(i)
        if sid != exclude:
            out.append((sid, seg.GetSegment(sid).GetName()))
    return out


def choice_index(choices: list[tuple[str, str]], chosen: str) -> int:
    """Index of the stored choice in `segment_choices` (0, none, when it is not offered now; the
    stored choice itself is kept, so it comes back when the segment is offered again)."""
    return next((i for i, (sid, _) in enumerate(choices) if sid == chosen), 0)


def chosen_segment(choices: list[tuple[str, str]], stored: str, picked: Optional[str]) -> str:
    """The segment ID to store when the widget shows ``picked``: a stored segment that is not
    offered now (the widget shows none) is kept, so another option's change does not erase it."""
    picked = picked or NO_SEGMENT
    if picked == NO_SEGMENT and stored not in {sid for sid, _ in choices}:
        return stored
    return picked


def widget_states(params: EffectParameters) -> dict[str, Any]:
    """What each option widget shows (the effect's ``updateGUIFromMRML``): a float, a bool, the
    stored text of a choice, or for a segment option ``(segment_choices, index to select)``."""
    node = params.node
    states: dict[str, Any] = {}
    for name, o in params.options.items():
        value = params.get(name)
        if o.kind == "segment":
            choices = segment_choices(node.GetSegmentationNode(), node.GetSelectedSegmentID())
            states[name] = (choices, choice_index(choices, value))
        elif o.kind == "bool":
            states[name] = bool(value)
        elif o.kind == "float":
            states[name] = value
        else:
            states[name] = str(value)
    return states


def values_from_widgets(params: EffectParameters, shown: dict[str, Any]) -> dict[str, Any]:
    """The values to store from what the option widgets show (the effect's ``updateMRMLFromGUI``):
    a float, a bool, a choice's text, or a segment option's picked segment ID (a stored segment that
    is not offered now is kept, see `chosen_segment`)."""
    node = params.node
    values: dict[str, Any] = {}
    for name, picked in shown.items():
        if params.option(name).kind == "segment":
            choices = segment_choices(node.GetSegmentationNode(), node.GetSelectedSegmentID())
            values[name] = chosen_segment(choices, params.get(name), picked)
        else:
            values[name] = picked
    return values


# --------------------------------------------------------------------------- array helpers
def _dims(image) -> tuple[int, int, int]:
    ext = image.GetExtent()
    return ext[5] - ext[4] + 1, ext[3] - ext[2] + 1, ext[1] - ext[0] + 1


def oriented_image_to_array(image) -> tuple[np.ndarray, tuple[float, float, float]]:
    """(array [k, j, i] copy, spacing (x, y, z)) of a vtkOrientedImageData / vtkImageData."""
    if image is None or image.GetPointData() is None or image.GetPointData().GetScalars() is None:
        raise _annotate().AnnotationError("The image has no voxels (no source volume selected?).")
    dims = _dims(image)
    if min(dims) <= 0:
        raise _annotate().AnnotationError("The image is empty.")
    scalars = image.GetPointData().GetScalars()
    a = numpy_support.vtk_to_numpy(scalars)
    if scalars.GetNumberOfComponents() > 1:
        a = a.reshape(-1, scalars.GetNumberOfComponents())[:, 0]
    sx, sy, sz = image.GetSpacing()
    return np.array(a.reshape(dims)), (float(sx), float(sy), float(sz))


def fill_oriented_image(image, mask: np.ndarray) -> None:
    """Write a boolean mask (shape matching ``image``'s extent) into ``image`` as 0/1 uint8."""
    dims = _dims(image)
    if tuple(mask.shape) != dims:
        raise _annotate().AnnotationError(f"Mask shape {mask.shape} does not match the labelmap extent {dims}.")
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


def slice_axis(slice_to_ras, image) -> int:
    """Array axis (0 = k, 1 = j, 2 = i) of ``image`` most aligned with a slice view's normal
    (``slice_to_ras``: the slice node's SliceToRAS vtkMatrix4x4)."""
    normal = np.array([slice_to_ras.GetElement(r, 2) for r in range(3)])
    m = vtk.vtkMatrix4x4()
    image.GetImageToWorldMatrix(m)
    axes = np.array([[m.GetElement(r, c) for r in range(3)] for c in range(3)])  # i, j, k directions
    best = int(np.argmax(np.abs(axes @ normal) / np.linalg.norm(axes, axis=1)))
    return 2 - best


def segment_extent_mask(labelmap, reference, value: Optional[int] = None) -> np.ndarray:
    """A segment labelmap (any extent, on the same grid as ``reference``) as a bool array of the
    reference's extent: voxels equal to ``value`` (shared labelmap layers), or non-zero."""
    ref_ext = reference.GetExtent()
    out = np.zeros(_dims(reference), bool)
    if labelmap is None or labelmap.GetPointData() is None or labelmap.GetPointData().GetScalars() is None:
        return out
    ext = labelmap.GetExtent()
    if ext[1] < ext[0] or ext[3] < ext[2] or ext[5] < ext[4]:
        return out
    arr, _ = oriented_image_to_array(labelmap)
    lo = [max(ext[2 * a], ref_ext[2 * a]) for a in range(3)]
    hi = [min(ext[2 * a + 1], ref_ext[2 * a + 1]) for a in range(3)]
    if any(h < low for low, h in zip(lo, hi)):
        return out
    src = tuple(slice(lo[a] - ext[2 * a], hi[a] - ext[2 * a] + 1) for a in (2, 1, 0))
    dst = tuple(slice(lo[a] - ref_ext[2 * a], hi[a] - ref_ext[2 * a] + 1) for a in (2, 1, 0))
    out[dst] = (arr[src] == value) if value is not None else (arr[src] != 0)
    return out


def superpixel_edges(superpixels, shape) -> np.ndarray:
    """Boundaries between superpixels as a bool array of the full image ``shape``."""
    lab = superpixels.labels
    edge = np.zeros(lab.shape, bool)
    for ax in range(3):
        if lab.shape[ax] > 1:
            d = np.diff(lab, axis=ax) != 0
            sl = [slice(None)] * 3
            sl[ax] = slice(0, -1)
            edge[tuple(sl)] |= d
    out = np.zeros(shape, bool)
    out[superpixels.region] = edge
    return out


# --------------------------------------------------------------------------- editors
class Editor(Protocol):
    """What `AnnotationLogic` needs from a segment editor."""

    @property
    def editor_node(self): ...

    def aligned(self) -> tuple[Any, Any]:
        """(modifier labelmap reset to the default geometry, source volume on that geometry)."""

    def save_state_for_undo(self) -> None: ...

    def modify_selected_segment(self, modifier, mode: str) -> None: ...


class SegmentEditorLogicEditor:
    """The editor behind Slicer's Segment Editor, ``vtkSlicerSegmentEditorLogic``, on a scene of
    its own segment editor node: for headless use and scripts (it keeps its own undo history)."""

    def __init__(self, scene, app_logic=None, editor_node=None):
        import slicer

        self.scene = scene
        self.logic = slicer.vtkSlicerSegmentEditorLogic()
        if app_logic is not None:
            self.logic.SetMRMLApplicationLogic(app_logic)
        self.logic.SetMRMLScene(scene)
        self._node = editor_node if editor_node is not None else scene.AddNewNodeByClass("vtkMRMLSegmentEditorNode")
        self.logic.SetSegmentEditorNode(self._node)

    @property
    def editor_node(self):
        return self._node

    def set_inputs(self, segmentation_node, volume_node, segment_id: Optional[str] = None) -> None:
        self.logic.SetSegmentationNode(segmentation_node)
        self.logic.SetSourceVolumeNode(volume_node)
        if segment_id is not None:
            self.logic.SetCurrentSegmentID(segment_id)

    def select_segment(self, segment_id: str) -> None:
        self.logic.SetCurrentSegmentID(segment_id)

    def aligned(self):
        if not self.logic.ResetModifierLabelmapToDefault():
            raise _annotate().AnnotationError("Could not set up the segmentation geometry.")
        if not self.logic.UpdateAlignedSourceVolume():
            raise _annotate().AnnotationError("Could not resample the source volume to the segmentation geometry.")
        return self.logic.GetModifierLabelmap(), self.logic.GetAlignedSourceVolume()

    def save_state_for_undo(self) -> None:
        self.logic.SaveStateForUndo()

    def modify_selected_segment(self, modifier, mode: str) -> None:
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
    def editor_node(self):
        return self.effect.parameterSetNode()

    def aligned(self):
        get_source = getattr(self.effect, "sourceVolumeImageData", None) or self.effect.masterVolumeImageData
        return self.effect.defaultModifierLabelmap(), get_source()

    def save_state_for_undo(self) -> None:
        self.effect.saveStateForUndo()

    def modify_selected_segment(self, modifier, mode: str) -> None:
        import slicer

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
        import slicer

        self.widget = slicer.qMRMLSegmentEditorWidget()
        self.widget.setMRMLScene(scene)
        node = editor_node if editor_node is not None else scene.AddNewNodeByClass("vtkMRMLSegmentEditorNode")
        self.widget.setMRMLSegmentEditorNode(node)
        effect = self.widget.effectByName(self.CARRIER_EFFECT)
        if effect is None:
            raise RuntimeError(f"The Segment Editor has no {self.CARRIER_EFFECT} effect.")
        super().__init__(effect)

    def set_inputs(self, segmentation_node, volume_node, segment_id: Optional[str] = None) -> None:
        self.widget.setSegmentationNode(segmentation_node)
        (getattr(self.widget, "setSourceVolumeNode", None) or self.widget.setMasterVolumeNode)(volume_node)
        if segment_id is not None:
            self.widget.setCurrentSegmentID(segment_id)

    def select_segment(self, segment_id: str) -> None:
        self.widget.setCurrentSegmentID(segment_id)

    def _history_step(self, step, button: str) -> bool:
        """Undo or redo when the widget's own button is enabled (its segmentation history says whether a
        state is there: qMRMLSegmentEditorWidget::updateUndoRedoButtonsState, v5.8.1)."""
        import slicer

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
    import slicer

    if hasattr(slicer, "vtkSlicerSegmentEditorLogic"):
        return SegmentEditorLogicEditor(scene, app_logic, editor_node)
    return SegmentEditorWidgetEditor(scene, editor_node)


# --------------------------------------------------------------------------- the logic
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
        self._prior_job: Any = None                # the current source's ModelPrior, or its PriorRequest (start_prior)
        self._pending: Optional[tuple[str, Callable[[], OperationResult]]] = None  # (segment, action) awaiting the prior
        self._prior_map: Optional[tuple] = None    # ((prior key, structure), probability array)

    # ---------------------------------------------------------------- state
    @property
    def cache(self):
        """The superpixel cache (made on first use: it needs `orbitai.annotate`)."""
        if self._cache is None:
            self._cache = _annotate().SuperpixelCache()
        return self._cache

    @property
    def editor_node(self):
        return self.editor.editor_node

    @property
    def segmentation_node(self):
        node = self.editor_node
        return None if node is None else node.GetSegmentationNode()

    @property
    def volume_node(self):
        node = self.editor_node
        return None if node is None else node.GetSourceVolumeNode()

    @property
    def segment_id(self) -> str:
        node = self.editor_node
        return (node.GetSelectedSegmentID() or "") if node is not None else ""

    def params(self, effect: str) -> EffectParameters:
        return EffectParameters(self.editor_node, effect)

    def _own_editor(self) -> Any:
        if not isinstance(self.editor, (SegmentEditorLogicEditor, SegmentEditorWidgetEditor)):
            raise RuntimeError("Inside the Segment Editor, select inputs and undo with the editor's own controls.")
        return self.editor

    def set_inputs(self, segmentation_node, volume_node, segment_id: Optional[str] = None) -> None:
        """Select segmentation, source volume and segment (headless editor; in Slicer the editor
        widget does this)."""
        self._own_editor().set_inputs(segmentation_node, volume_node, segment_id)

    def select_segment(self, segment_id: str) -> None:
        self._own_editor().select_segment(segment_id)

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
        if self.editor_node is None or self.segmentation_node is None:
            return "No segmentation selected: choose or create a segmentation first."
        volume = self.volume_node
        if volume is None or volume.GetImageData() is None:
            return "No source volume selected: choose the image to _annotate()."
        seg = self.segmentation_node.GetSegmentation()
        if seg.GetNumberOfSegments() == 0:
            return "The segment list is empty: add a segment (e.g. eyeball_left) and select it."
        sid = self.segment_id
        if not sid or seg.GetSegment(sid) is None:
            return "No segment selected: select the segment to edit in the segment list."
        return None

    def _grid(self):
        """(modifier labelmap, source array [k, j, i], spacing) on the editor's aligned geometry.

        The array is read once per source image and geometry and then reused: the superpixel
        cache knows an image by its array, so a fresh copy per click would never hit it."""
        import slicer

        modifier, source = self.editor.aligned()
        if modifier is None or source is None:
            raise _annotate().AnnotationError("Could not set up the segmentation geometry.")
        key = (self._image_key(), slicer.vtkSegmentationConverter.SerializeImageGeometry(source))
        if self._source is None or self._source[0] != key:
            self._source = (key, *oriented_image_to_array(source))
        return modifier, self._source[1], self._source[2]

    def segment_mask(self, segment_id: Optional[str] = None, reference=None) -> np.ndarray:
        """A segment (default: the selected one) as a bool array on the aligned grid."""
        import slicer

        if reference is None:
            reference, _ = self.editor.aligned()
        sid = segment_id or self.segment_id
        lm = slicer.vtkOrientedImageData()
        slicer.vtkSlicerSegmentationsModuleLogic.GetSegmentBinaryLabelmapRepresentation(
            self.segmentation_node, sid, lm, False)
        # Segments may share one labelmap layer: the segment is the voxels holding its value.
        value = self.segmentation_node.GetSegmentation().GetSegment(sid).GetLabelValue()
        return segment_extent_mask(lm, reference, value)

    def _apply(self, modifier, mask: np.ndarray, mode: str) -> int:
        """Save an undo state and change the selected segment; the number of voxels that changed."""
        before = self.segment_mask(reference=modifier)
        fill_oriented_image(modifier, mask)
        self.editor.save_state_for_undo()
        self.editor.modify_selected_segment(modifier, mode)
        return int(np.count_nonzero(before != self.segment_mask(reference=modifier)))

    def _run(self, fn: Callable[[], OperationResult]) -> OperationResult:
        why = self._check()
        if why:
            return OperationResult(False, why)
        try:
            return fn()
        except _annotate().AnnotationError as exc:
            return OperationResult(False, str(exc))

    def _image_key(self) -> tuple:
        volume = self.volume_node
        return volume.GetID(), volume.GetImageData().GetMTime()

    # ---------------------------------------------------------------- overlay nodes
    def _overlay_node(self, role: str):
        node = self.editor_node
        return None if node is None else node.GetNodeReference(role)

    def _show_overlay(self, role: str, name: str, modifier, mask: np.ndarray, color, fill_opacity: float):
        """A hidden segmentation node holding ``mask`` on the modifier's grid, referenced from the
        segment editor node under ``role`` (created on first use)."""
        import slicer

        scene = self.editor_node.GetScene()
        node = self._overlay_node(role)
        if node is None:
            node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", scene.GenerateUniqueName(name))
            node.SetHideFromEditors(True)
            node.SetSaveWithScene(False)
            node.CreateDefaultDisplayNodes()
            node.GetDisplayNode().SetSaveWithScene(False)
            node.GetDisplayNode().SetVisibility3D(False)
            node.GetDisplayNode().SetOpacity2DFill(fill_opacity)
            self.editor_node.SetNodeReferenceID(role, node.GetID())
        segmentation = node.GetSegmentation()
        geometry = self.segmentation_node.GetSegmentation().GetConversionParameter(
            slicer.vtkSegmentationConverter.GetReferenceImageGeometryParameterName())
        segmentation.SetConversionParameter(
            slicer.vtkSegmentationConverter.GetReferenceImageGeometryParameterName(), geometry)
        image = slicer.vtkOrientedImageData()
        image.DeepCopy(modifier)
        fill_oriented_image(image, mask)
        segmentation.RemoveAllSegments()
        segment = slicer.vtkSegment()
        segment.SetName(name)
        segment.SetColor(*color)
        segment.AddRepresentation(slicer.vtkSegmentationConverter.GetSegmentationBinaryLabelmapRepresentationName(),
                                  image)
        segmentation.AddSegment(segment, name)
        return node

    def _remove_overlay(self, role: str) -> bool:
        node = self._overlay_node(role)
        if node is None:
            return False
        self.editor_node.RemoveNodeReferenceIDs(role)
        if node.GetScene() is not None:
            node.GetScene().RemoveNode(node)
        return True

    # ---------------------------------------------------------------- SmartPencil
    def smartpencil_click(self, ijk=None, ras=None, remove: bool = False, slice_to_ras=None) -> OperationResult:
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
            r = _annotate().smartpencil_click(src, spacing, self.segment_mask(reference=modifier), point, remove=remove,
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
    def boundaries_node(self):
        return self._overlay_node(BOUNDARIES_ROLE)

    def remove_boundaries(self) -> bool:
        return self._remove_overlay(BOUNDARIES_ROLE)

    # ---------------------------------------------------------------- SmartFill
    @property
    def preview_node(self):
        """The SmartFill preview (a hidden segmentation node), or None."""
        return self._overlay_node(PREVIEW_ROLE)

    def background_segment_id(self) -> Optional[str]:
        """The chosen background-stroke segment when it exists and is not the edited segment."""
        sid = self.params(SMARTFILL).get("BackgroundSegmentID")
        seg = self.segmentation_node.GetSegmentation() if self.segmentation_node is not None else None
        if not sid or seg is None or seg.GetSegment(sid) is None or sid == self.segment_id:
            return None
        return sid

    def smartfill_preview(self, fg_strokes: Optional[np.ndarray] = None,
                          bg_strokes: Optional[np.ndarray] = None) -> OperationResult:
        """Fill the structure around the strokes into a preview node; no segment changes until
        `smartfill_accept`. Strokes default to the selected segment (object) and the
        ``BackgroundSegmentID`` segment (background); options come from the editor node. The
        preview mask is in ``details['mask']``."""
        def go():
            modifier, src, spacing = self._grid()
            try:                               # first: nothing else is read while the prior is being computed
                prior, weight, note = self.prior_map(SMARTFILL)
            except _PriorPending:
                return self._defer(lambda: self.smartfill_preview(fg_strokes, bg_strokes), "The preview will be made")
            fg = self.segment_mask(reference=modifier) if fg_strokes is None else fg_strokes
            bg = bg_strokes
            if bg is None and self.background_segment_id():
                bg = self.segment_mask(self.background_segment_id(), reference=modifier)
            opts = self.params(SMARTFILL)
            locality = opts.get("LocalityMm")
            extra = {} if prior is None else {"prior": prior, "prior_weight": weight}
            r = _annotate().smartfill(src, spacing, fg, bg, smoothness=opts.get("Smoothness"),
                                   margin_mm=opts.get("MarginMm"), locality_mm=locality if locality > 0 else None,
                                   **extra)
            segment = self.segmentation_node.GetSegmentation().GetSegment(self.segment_id)
            node = self._show_overlay(PREVIEW_ROLE, "SmartFill preview", modifier, r.mask, segment.GetColor(), 0.5)
            return OperationResult(True, r.message + note + " Accept or cancel the preview.", 0,
                                   {"mask": r.mask, "region": r.region, "preview_node": node,
                                    "prior_used": prior is not None})
        return self._run(go)

    def smartfill_accept(self) -> OperationResult:
        """Add the preview to the selected segment (one undo state) and remove the preview."""
        def go():
            import slicer

            node = self.preview_node
            if node is None:
                return OperationResult(False, "There is no SmartFill preview to accept: paint strokes and "
                                              "preview first.")
            modifier, _, _ = self._grid()
            preview = node.GetSegmentation().GetNthSegment(0)
            image = preview.GetRepresentation(
                slicer.vtkSegmentationConverter.GetSegmentationBinaryLabelmapRepresentationName())
            ser = slicer.vtkSegmentationConverter.SerializeImageGeometry
            if image is None or ser(image) != ser(modifier):
                self.smartfill_cancel()
                return OperationResult(False, "The segmentation geometry changed since the preview; preview again.")
            mask = segment_extent_mask(image, modifier)
            # The fill adds to the segment (strokes define the structure; the rest of the segment stays).
            changed = self._apply(modifier, mask, MODE_ADD)
            self._remove_overlay(PREVIEW_ROLE)
            return OperationResult(True, f"SmartFill accepted: {changed} voxels changed.", changed)
        return self._run(go)

    def smartfill_cancel(self) -> OperationResult:
        had = self._remove_overlay(PREVIEW_ROLE)
        return OperationResult(True, "SmartFill preview discarded." if had else "No preview to cancel.")

    # ---------------------------------------------------------------- AutoCorrection
    def autocorrect(self) -> OperationResult:
        """Clean the selected segment with the AutoCorrection options of the editor node."""
        def go():
            modifier, src, spacing = self._grid()
            current = self.segment_mask(reference=modifier)
            if not current.any():
                return OperationResult(False, "The selected segment is empty: nothing to correct.")
            opts = self.params(AUTOCORRECTION)
            try:
                prior, weight, note = self.prior_map(AUTOCORRECTION)
            except _PriorPending:
                return self._defer(self.autocorrect, "The correction will run")
            extra = {} if prior is None else {"prior": prior, "prior_weight": weight}
            r = _annotate().autocorrect(
                src, spacing, current, max_distance_mm=opts.get("MaxDistanceMm"), stay_cost=opts.get("Stiffness"),
                fill_holes=opts.get("FillHoles"), keep_largest=opts.get("KeepLargest"),
                shift_sigma_mm=CONSISTENT_SHIFT_SIGMA_MM if opts.get("ConsistentShift") else None, **extra)
            if np.array_equal(r.mask, current):
                return OperationResult(True, r.message + note + " The segment already follows the image.", 0)
            changed = self._apply(modifier, r.mask, MODE_SET)
            return OperationResult(True, r.message + note, changed)
        return self._run(go)


    # ---------------------------------------------------------------- model prior
    def source_volume(self):
        """The source image on the aligned grid as an `orbitai.io.Volume` with its geometry (LPS), and
        its `orbitai.annotate.prior.image_key` (both kept while the image and geometry stay)."""
        from orbitai.annotate.prior import image_key
        from orbitai.io import Volume

        _, src, _ = self._grid()
        if self._volume is None or self._volume[0] != self._source[0]:
            _, source = self.editor.aligned()
            m = vtk.vtkMatrix4x4()
            source.GetImageToWorldMatrix(m)
            ijk_to_ras = np.array([[m.GetElement(r, c) for c in range(4)] for r in range(4)])
            e = source.GetExtent()
            ijk_to_ras[:3, 3] += ijk_to_ras[:3, :3] @ np.array([e[0], e[2], e[4]], float)  # the extent's first voxel
            vol = Volume.from_ijk_to_ras(src, ijk_to_ras)
            self._volume = (self._source[0], vol, image_key(vol))
        return self._volume[1], self._volume[2]

    def segment_structure(self) -> Optional[str]:
        """The selected segment's name when it names an orbit structure (e.g. superior_rectus_muscle_left,
        optic_nerve), else None: only then can the segmentation network help."""
        from orbitai.annotate.prior import split_side
        from orbitai.labels import STRUCTURE_CODES

        name = self.segmentation_node.GetSegmentation().GetSegment(self.segment_id).GetName()
        return name if split_side(name)[0] in STRUCTURE_CODES else None

    def _unnamed(self) -> str:
        name = self.segmentation_node.GetSegmentation().GetSegment(self.segment_id).GetName()
        return (f"No model prior for '{name}': name the segment after an orbit structure "
                "(e.g. superior_rectus_muscle_left) to use the model.")

    def start_prior(self) -> OperationResult:
        """Start computing the model prior of the source image in a child process (the warm worker; once
        per image, shared by the effects: `orbitai.annotate.prior.DEFAULT_PRIORS`) when the selected segment
        names an orbit structure. Returns at once; `poll_prior` (the effect's timer) takes the result."""
        def go():
            from orbitai.annotate.prior import DEFAULT_PRIORS

            if self.segment_structure() is None:      # no network runs for a segment it cannot help
                return OperationResult(True, self._unnamed())
            vol, key = self.source_volume()
            if self._prior_job is None or self._prior_job.key != key or self._failed(self._prior_job):
                self._prior_job = DEFAULT_PRIORS.request(vol, key=key)
            return OperationResult(True, self.prior_status())
        return self._run(go)

    @staticmethod
    def _failed(job) -> bool:
        return getattr(job, "error", None) is not None

    def prior_status(self) -> str:
        """One line on the model prior of the current image: not started, computing, ready or why not
        (never waits)."""
        if self._check() is None and self.segment_structure() is None:
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
        from orbitai.annotate.prior import ModelPrior, PriorUnavailable

        _, key = self.source_volume()
        if self._prior_job is None or self._prior_job.key != key:
            self.start_prior()
        job = self._prior_job
        if isinstance(job, ModelPrior):
            return job
        if job.poll() and job.prior is not None:
            return job.prior
        if job.error is not None:
            raise PriorUnavailable(job.error)
        return None

    def _defer(self, action: Callable[[], OperationResult], what: str) -> OperationResult:
        """Keep ``action`` to run when the prior arrives (`poll_prior`); say so. Nothing changes now."""
        self._pending = (self.segment_id, action)
        return OperationResult(True, f"{self.prior_status()} {what} when it is ready "
                                     "(set the model prior weight to 0 to go on without it).", 0, {"pending": True})

    @property
    def pending(self) -> bool:
        """Whether an action waits for the model prior."""
        return self._pending is not None

    def poll_prior(self) -> Optional[OperationResult]:
        """Timer tick: take the prior if its child has ended and run the action that waited for it (on the
        segment it was asked for). Returns that action's result, else None. Returns at once while the child runs."""
        job = self._prior_job
        if self._pending is None or job is None or (hasattr(job, "poll") and not job.poll()):
            return None
        (segment, action), self._pending = self._pending, None
        if segment != self.segment_id:
            return OperationResult(False, "The selected segment changed while the model prior was computed; "
                                          "press the button again.")
        return action()

    def wait_for_prior(self, timeout_s: Optional[float] = None) -> Optional[OperationResult]:
        """Block until the prior is there (scripts and tests; never on Slicer's main thread), then run the
        waiting action: `poll_prior`'s result."""
        job = self._prior_job
        if job is not None and hasattr(job, "wait"):
            job.wait(timeout_s)
        return self.poll_prior()

    def prior_map(self, effect: str) -> tuple[Optional[np.ndarray], float, str]:
        """(the network's probability of the selected segment's structure on the source grid, the
        effect's prior weight, a note for the status line); (None, 0, why) when the prior is off or
        unavailable: the effect then works exactly as without it. Raises `_PriorPending` while it is
        being computed."""
        from orbitai.annotate.prior import PriorUnavailable

        weight = float(self.params(effect).get("PriorWeight"))
        if weight <= 0:
            return None, 0.0, ""
        name = self.segment_structure()
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
        vol, _ = self.source_volume()
        if self._prior_map is None or self._prior_map[0] != (prior.key, name):
            self._prior_map = ((prior.key, name), prior.probability(name, vol))
        return self._prior_map[1], weight, f" Model prior {prior.bundle}, weight {weight:g}."

    def start_from_model(self) -> OperationResult:
        """Set the selected segment to the network's mask of its structure (probability above one half;
        one undo state; the editable area and masking settings apply), to correct from there. While the
        prior is being computed this returns at once and runs when it arrives (`poll_prior`)."""
        def go():
            from orbitai.annotate.prior import PriorUnavailable

            modifier, _, _ = self._grid()
            name = self.segment_structure()
            if name is None:
                return OperationResult(False, self._unnamed())
            try:
                prior = self._ready_prior()
            except PriorUnavailable as exc:
                return OperationResult(False, str(exc))
            if prior is None:
                return self._defer(self.start_from_model, "The segment will be started from the model")
            if not prior.has(name):
                return OperationResult(False, f"The model has no structure '{name}': name the segment after an orbit "
                                              "structure (e.g. superior_rectus_muscle_left).")
            vol, _ = self.source_volume()
            mask = prior.start_mask(name, vol)
            if not mask.any():
                return OperationResult(False, f"The model ({prior.bundle}) found no {name} in this image.")
            changed = self._apply(modifier, mask, MODE_SET)
            return OperationResult(True, f"Started '{name}' from the model ({prior.bundle}): {changed} voxels changed. "
                                         "Correct it with strokes or clicks, or undo.", changed)
        return self._run(go)


class _PriorPending(Exception):
    """Raised by `AnnotationLogic.prior_map` while the prior is being computed: the action waits for it."""


# --------------------------------------------------------------------------- Slicer registration
#: The folder of the scripted effect files (OrbitSegmentation/OrbitSegmentationEffects/). Slicer's loader
#: (qSlicerSegmentEditorScriptedEffect::setPythonSource) takes the folder's name as the Python module name of
#: every file in it, so it must never be Slicer's own ``SegmentEditorEffects`` (docs/slicer.md).
EFFECTS_FOLDER = "OrbitSegmentationEffects"
EFFECT_FILES = (
    "SegmentEditorSmartPencilEffect.py",
    "SegmentEditorSmartFillEffect.py",
    "SegmentEditorAutoCorrectionEffect.py",
)
#: Slicer's built-in effects package: registration must leave its module object untouched.
SLICER_EFFECTS_PACKAGE = "SegmentEditorEffects"
_MODULE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def effect_paths() -> list[str]:
    here = os.path.join(_MODULE_DIR, EFFECTS_FOLDER)
    return [os.path.join(here, f).replace("\\", "/") for f in EFFECT_FILES]


def effect_icon_path(effect: str) -> Optional[str]:
    """The module's ``Resources/Icons/<effect>.png``, or None when it is missing."""
    path = os.path.join(_MODULE_DIR, "Resources", "Icons", f"{effect}.png")
    return path if os.path.isfile(path) else None


def register_annotation_effects(paths: Optional[list[str]] = None) -> dict[str, str]:
    """Register SmartPencil, SmartFill and AutoCorrection with Slicer's Segment Editor, each on its own:
    an effect that fails to load is logged and skipped, the others still register, and Slicer's
    ``SegmentEditorEffects`` module object is put back if a loader replaced it. Returns ``{file: error}``
    for the effects that failed (empty when all registered); effects already registered are left alone.

    Call inside Slicer once it has started (the OrbitSegmentation module connects it to
    ``startupCompleted()``)."""
    import logging
    import sys

    import qSlicerSegmentationsEditorEffectsPythonQt as effects  # Slicer only

    log = logging.getLogger(__name__)
    paths = list(paths or effect_paths())
    folder = os.path.dirname(paths[0]) if paths else ""
    if folder and folder not in sys.path:  # the effect files import OrbitEffectBase from beside them
        sys.path.insert(0, folder)
    registered = _registered_effect_names()
    failed: dict[str, str] = {}
    for path in paths:
        slicer_package = sys.modules.get(SLICER_EFFECTS_PACKAGE)
        try:
            instance = effects.qSlicerSegmentEditorScriptedEffect(None)
            if not instance.setPythonSource(path) or instance.self() is None:
                raise RuntimeError("Slicer could not load the file (see the Python console)")
            effect = instance.self()
            if getattr(effect, "EFFECT", None) in registered:
                continue
            effect.register()
        except Exception as exc:  # noqa: BLE001 - one effect's failure must not stop the others
            failed[path] = f"{type(exc).__name__}: {exc}"
            log.error("OrbitAI: the Segment Editor effect %s was not registered: %s", os.path.basename(path), exc)
        finally:
            if slicer_package is not None and sys.modules.get(SLICER_EFFECTS_PACKAGE) is not slicer_package:
                sys.modules[SLICER_EFFECTS_PACKAGE] = slicer_package
                log.error("OrbitAI: loading %s replaced Slicer's %s module; restored.", path, SLICER_EFFECTS_PACKAGE)
    return failed


def _registered_effect_names() -> set[str]:
    """Names of the effects Slicer's effect factory holds (empty when it cannot be asked)."""
    try:
        import slicer

        return {e.name for e in slicer.qSlicerSegmentEditorEffectFactory.instance().registeredEffects()}
    except (ImportError, AttributeError):
        return set()
