"""Self-test of the annotation effects (SmartFill, AutoCorrection, SmartPencil).

One scenario, two drivers. `run_in_segment_editor` drives Slicer's Segment Editor as Slicer's effect
template test does: select the source volume, create segments, set the active effect by name, set
its parameters, press the effect's own buttons and check the segment (inside Slicer only).
`run_with_logic` runs the same scenario through `AnnotationLogic`, the code the effects call, on
any MRML scene (pytest runs it headless with slicer-core). No pytest, no ``Testing/`` folder: this
module is importable anywhere and imports Slicer only when a driver runs (through
`orbitai.mrml.segment_editor`, the MRML side).
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

__all__ = ["orbit_box", "run_in_segment_editor", "run_with_logic", "SCENARIO_BARS"]

#: Quality bars the scenario checks (the issue's annotation bars on the right orbit of phantom 0).
SCENARIO_BARS = {"smartfill_eyeball_dice": 0.90, "autocorrect_gain": 0.05, "smartpencil_rectus_dice": 0.85}
EYEBALL, RECTUS = 2, 8  # right eyeball, right inferior rectus (orbit label scheme)


def orbit_box(seed: int = 0, side: str = "right", margin_mm: float = 6.0):
    """(image, labels) `Volume`s of a box around one orbit of the axial CT phantom (built from the
    SPL/NAC atlas shipped in ``orbitai/data``)."""
    from orbitai.boxes import bbox
    from orbitai.io import Volume
    from orbitai.phantoms import orbit_case

    case = orbit_case(seed, modality="ct", orientation="axial")
    image, labels = case.image, case.labels
    values = range(1, 17, 2) if side == "left" else range(2, 17, 2)
    box = bbox(np.isin(labels.array, list(values)), np.ceil(margin_mm / np.asarray(image.spacing[::-1])).astype(int))
    if box is None:
        raise ValueError(f"Phantom {seed} has no {side} orbit labels.")
    origin = tuple(image.index_to_physical([b.start for b in box[::-1]]))
    return (Volume(np.ascontiguousarray(image.array[box], np.float32), image.spacing, origin, image.direction),
            Volume(np.ascontiguousarray(labels.array[box]), labels.spacing, origin, labels.direction))


# --------------------------------------------------------------------------- drivers
class _LogicDriver:
    """The scenario's steps on `AnnotationLogic` (what the effects call), any scene."""

    def __init__(self, ctx, segmentation, volume):
        from orbitai.app.annotation.logic import AnnotationLogic

        self.logic = AnnotationLogic(ctx.scene, ctx.app_logic)
        self.logic.setInputs(segmentation, volume)
        self.effect = ""

    def select(self, segment_id: str) -> None:
        self.logic.selectSegment(segment_id)

    def activate(self, effect: str) -> None:
        self.effect = effect
        self.logic.params(effect).setDefaults()

    def set_parameter(self, name: str, value: Any) -> None:
        self.logic.params(self.effect).set(name, value)

    def parameter(self, name: str) -> str:
        return self.logic.editorNode.GetAttribute(f"{self.effect}.{name}") or ""

    def rebuild_gui(self) -> None:
        """What the effect's updateGUIFromMRML + updateMRMLFromGUI do with a segment option."""
        from orbitai.app.annotation import options as al

        p = self.logic.params(self.effect)
        for name, o in p.options.items():
            if o.kind == "segment":
                choices = al.segment_choices(self.logic.segmentationNode, self.logic.segmentID)
                shown = choices[al.choice_index(choices, p.get(name))][0]
                p.set(name, al.chosen_segment(choices, p.get(name), shown))

    def press(self, button: str, **kwargs):
        logic = self.logic
        action = {"onPreview": logic.smartFillPreview, "onAccept": logic.smartFillAccept,
                  "onApply": logic.autocorrect, "click": lambda ras, remove: logic.smartPencilClick(
                      ras=ras, remove=remove)}[button]
        from orbitai.mrml.segment_editor import finish_pending

        return finish_pending(logic, action(**kwargs))

    def preview_node(self):
        return self.logic.previewNode

    def close(self) -> None:
        self.logic.smartFillCancel()


def annotation_scene(ctx, image, names: tuple[str, ...], volume_name: str = "orbit_ct",
                     segmentation_name: str = "annotation") -> tuple[Any, Any, dict[str, str]]:
    """(volume node of ``image``, a segmentation on its grid, {name: segment ID} of empty segments ``names``):
    what an annotator starts from."""
    from orbitai.mrml.volumes import volume_node_from_volume

    volume = volume_node_from_volume(ctx, image, volume_name)
    seg = ctx.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", segmentation_name)
    seg.CreateDefaultDisplayNodes()
    seg.SetReferenceImageGeometryParameterFromVolumeNode(volume)
    return volume, seg, {n: seg.GetSegmentation().AddEmptySegment(n, n) for n in names}


# --------------------------------------------------------------------------- the scenario
def _scenario(ctx, driver_class) -> dict[str, float]:
    from scipy import ndimage as ndi

    from orbitai import annotate as A
    from orbitai.mrml import segment_editor
    from orbitai.mrml.transaction import temporary_nodes

    image, labels = orbit_box()
    lab, sp = labels.array, image.spacing
    eye, rectus = lab == EYEBALL, lab == RECTUS
    figures: dict[str, float] = {}
    with temporary_nodes(ctx.scene):
        volume, seg, ids = annotation_scene(
            ctx, image, ("eyeball_right", "background", "inferior_rectus_muscle_right", "pencil"),
            "OrbitAI effect self-test CT", "OrbitAI effect self-test")
        driver = driver_class(ctx, seg, volume)
        try:
            # SmartFill: strokes in the segment, background strokes in another segment, chosen as a parameter
            strokes = np.any(A.simulate_strokes(eye, sp, 2), axis=0)
            ring = ndi.binary_dilation(eye, iterations=3) & ~ndi.binary_dilation(eye, iterations=2)
            segment_editor.paint_segment(seg, ids["eyeball_right"], volume, strokes)
            segment_editor.paint_segment(seg, ids["background"], volume, ring)
            driver.select(ids["eyeball_right"])
            driver.activate("SmartFill")
            driver.set_parameter("BackgroundSegmentID", ids["background"])
            driver.set_parameter("Smoothness", 2.0)
            driver.rebuild_gui()
            assert driver.parameter("BackgroundSegmentID") == ids["background"], "background segment choice lost"
            painted = segment_editor.segment_mask(seg, ids["eyeball_right"], volume)
            driver.press("onPreview")
            assert driver.preview_node() is not None, "no SmartFill preview node"
            assert np.array_equal(segment_editor.segment_mask(seg, ids["eyeball_right"], volume), painted), \
                "the preview changed the segment"
            driver.press("onAccept")
            filled = segment_editor.segment_mask(seg, ids["eyeball_right"], volume)
            assert driver.preview_node() is None and not (filled & ring).any()
            figures["smartfill_eyeball_dice"] = A.dice(filled, eye)
            # AutoCorrection: a rough (dilated, holey) mask comes back to the muscle
            rough = A.rough_mask(rectus)
            segment_editor.paint_segment(seg, ids["inferior_rectus_muscle_right"], volume, rough)
            driver.select(ids["inferior_rectus_muscle_right"])
            driver.activate("AutoCorrection")
            driver.set_parameter("MaxDistanceMm", 1.0)
            driver.press("onApply")
            fixed = segment_editor.segment_mask(seg, ids["inferior_rectus_muscle_right"], volume)
            figures["autocorrect_gain"] = A.dice(fixed, rectus) - A.dice(rough, rectus)
            # SmartPencil: ten clicks at the largest error
            driver.select(ids["pencil"])
            driver.activate("SmartPencil")
            driver.set_parameter("Superpixels", 1000)
            for _ in range(10):
                current = segment_editor.segment_mask(seg, ids["pencil"], volume)
                point, remove = A.next_click(current, rectus, sp)[:2]
                driver.press("click", ras=segment_editor.voxel_to_ras(volume, point), remove=bool(remove))
            figures["smartpencil_rectus_dice"] = A.dice(segment_editor.segment_mask(seg, ids["pencil"], volume), rectus)
        finally:
            driver.close()
    for name, bar in SCENARIO_BARS.items():
        assert figures[name] >= bar, f"{name} = {figures[name]:.3f} is below {bar}"
    return figures


def run_with_logic(ctx: Optional[Any] = None) -> dict[str, float]:
    """The scenario through `AnnotationLogic` on ``ctx`` (default: a new headless scene or Slicer's)."""
    from orbitai.mrml import new_scene

    return _scenario(ctx or new_scene(), _LogicDriver)


def run_in_segment_editor(ctx: Optional[Any] = None) -> dict[str, float]:
    """The scenario through Slicer's Segment Editor widget and the registered effects (Slicer only)."""
    from orbitai.mrml import segment_editor
    from orbitai.mrml.scene import in_slicer_app

    if not in_slicer_app():
        raise RuntimeError("The Segment Editor self-test runs inside 3D Slicer; headless, use run_with_logic().")
    from orbitai.testing import slicer_context

    return _scenario(ctx or slicer_context(), segment_editor.SegmentEditorDriver)
