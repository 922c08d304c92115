"""The annotation effects' options: every user choice of an effect is an *effect parameter* stored on the
``vtkMRMLSegmentEditorNode`` as Slicer's own effects store theirs (attribute ``"<Effect>.<Name>"``, what
``scriptedEffect.setParameter``/``parameter`` read and write). `EFFECT_OPTIONS` declares them with their
defaults and ranges, `EffectParameters` reads and writes them, and `widget_states` / `values_from_widgets`
are the Qt-free halves of the effects' ``updateGUIFromMRML`` / ``updateMRMLFromGUI``. Also the names the
effects share (effect names, modes, node reference roles) and what they need installed. No Qt, no VTK.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from orbitai.app import requirements_file
from orbitai.mrml.dependencies import ensure_requirements, import_name, read_requirements
from orbitai.mrml.editors import notify_effect_parameter

# `orbitai.annotate` needs scipy and scikit-image, which a fresh Slicer lacks: the logic imports it on first
# use, so the effects register at start-up without them and an action first offers to install them
# (`missing_dependencies`).
#: Superpixel counts SmartPencil offers (``orbitai.annotate.RESOLUTIONS``; a test keeps them equal).
SUPERPIXEL_COUNTS = (100, 500, 1000, 2000)
#: SmartPencil's default superpixel size in mm (``orbitai.annotate.superpixels.DEFAULT_SIZE_MM``; a test keeps them
#: equal): a region of a few hundred voxels on a 1 mm head.
SUPERPIXEL_SIZE_MM = 5.0
#: Import names of the packages the effects' algorithms need beyond Slicer (from the module's requirements).
ANNOTATION_MODULES = ("scipy", "skimage")
REQUIREMENTS = requirements_file("OrbitSegmentation")


def missing_dependencies(ask: bool = True) -> str:
    """"" when scipy and scikit-image are installed; inside Slicer first offers to install them (the
    version ranges of the module's requirements). Else one line saying what is missing and how to install it."""
    lines = [r for r in read_requirements(REQUIREMENTS) if import_name(r) in ANNOTATION_MODULES]
    try:
        if ensure_requirements(lines, ask=ask):
            return ""
    except ImportError as exc:
        return str(exc)
    return f"Not run: the effect needs {' and '.join(lines)}; they are not installed."

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
        EffectOption("SizeMm", "float", SUPERPIXEL_SIZE_MM, "Superpixel size:",
                     "Edge of a superpixel in millimetres, about (0 = the number of superpixels below).",
                     0.0, 30.0, 0.5, " mm"),
        EffectOption("Superpixels", "int", 1000, "Superpixels:",
                     "Number of superpixels over the working region (when the size is 0).",
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
                  "Superpixels (sized in mm, a few hundred voxels each on a 1 mm head; or 100-2000 over the working "
                  "region when the size is 0; 2D on the slice or 3D supervoxels) are "
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
        if self.node.GetAttribute(self.key(name)) == text:
            return
        disabled = self.node.GetDisableModifiedEvent()
        self.node.SetDisableModifiedEvent(1)
        try:
            self.node.SetAttribute(self.key(name), text)
        finally:
            self.node.SetDisableModifiedEvent(disabled)
        notify_effect_parameter(self.node)

    def setDefaults(self) -> None:
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


