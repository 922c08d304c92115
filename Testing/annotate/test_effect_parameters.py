"""Effect options are Slicer effect parameters on the segment editor node (real MRML, headless)."""
from pathlib import Path

import numpy as np
import pytest
from OrbitSegmentationLib.annotation_logic import (AUTOCORRECTION, EFFECT_HELP, EFFECT_OPTIONS, NO_SEGMENT,
                                                   SMARTFILL, SMARTPENCIL, EffectParameters, choice_index,
                                                   chosen_segment, segment_choices, slice_axis)

EFFECTS_DIR = Path(__file__).resolve().parents[2] / "OrbitSegmentation" / "SegmentEditorEffects"


@pytest.fixture()
def editor_node():
    from conftest import headless_scene

    ctx = headless_scene()
    yield ctx.scene.AddNewNodeByClass("vtkMRMLSegmentEditorNode")
    ctx.close()


def test_defaults_are_stored_where_slicer_effects_keep_theirs(editor_node):
    for effect, options in EFFECT_OPTIONS.items():
        params = EffectParameters(editor_node, effect)
        params.set_defaults()
        for o in options:
            # scriptedEffect.parameter(name) reads the attribute "<effect name>.<name>"
            assert editor_node.GetAttribute(f"{effect}.{o.name}") is not None
        assert params.values() == {o.name: o.default for o in options}
        assert effect in EFFECT_HELP
    p = EffectParameters(editor_node, SMARTFILL)
    p.set("Smoothness", 4.5)
    p.set_defaults()                                       # defaults never overwrite a choice
    assert p.get("Smoothness") == 4.5 and editor_node.GetAttribute("SmartFill.Smoothness") == "4.5"


def test_bad_stored_values_fall_back_and_clamp(editor_node):
    p = EffectParameters(editor_node, SMARTPENCIL)
    editor_node.SetAttribute("SmartPencil.Superpixels", "37")
    editor_node.SetAttribute("SmartPencil.Mode", "4D")
    editor_node.SetAttribute("SmartPencil.RegionMm", "nan")
    assert (p.get("Superpixels"), p.get("Mode"), p.get("RegionMm")) == (1000, "3D", 0.0)
    p.set("RegionMm", 1e6)
    assert p.get("RegionMm") == 200.0
    p.set("ShowBoundaries", True)
    assert editor_node.GetAttribute("SmartPencil.ShowBoundaries") == "1" and p.get("ShowBoundaries") is True
    with pytest.raises(ValueError, match="has no option 'Bogus'"):
        p.get("Bogus")
    with pytest.raises(ValueError, match="Unknown effect"):
        EffectParameters(editor_node, "Nope")


def test_options_are_saved_with_the_scene(mrml):
    """The choices travel with the scene (node attributes), like Slicer's own effects' choices."""
    import slicer

    L = mrml.logic
    L.params(SMARTFILL).update({"BackgroundSegmentID": mrml.ids[1], "LocalityMm": 12.0})
    L.params(AUTOCORRECTION).set("KeepLargest", True)
    mrml.scene.SetSaveToXMLString(1)
    mrml.scene.Commit()
    xml = mrml.scene.GetSceneXMLString()
    other = slicer.vtkMRMLScene()
    other.RegisterNodeClass(slicer.vtkMRMLSegmentEditorNode())
    other.SetLoadFromXMLString(1)
    other.SetSceneXMLString(xml)
    other.Import()
    node = other.GetFirstNodeByClass("vtkMRMLSegmentEditorNode")
    assert EffectParameters(node, SMARTFILL).get("BackgroundSegmentID") == mrml.ids[1]
    assert EffectParameters(node, SMARTFILL).get("LocalityMm") == 12.0
    assert EffectParameters(node, AUTOCORRECTION).get("KeepLargest") is True


def test_background_segment_survives_parameter_changes_and_gui_rebuilds(mrml):
    """#13: SmartFill's background segment lived only in a combo box rebuilt on every parameter
    change. Now it is an effect parameter; a rebuild selects it again, and a write-back while it
    is not offered (it is the edited segment) keeps it."""
    L, seg, (obj, bg) = mrml.logic, mrml.segmentation, mrml.ids
    p = L.params(SMARTFILL)
    p.set_defaults()
    p.set("BackgroundSegmentID", bg)

    def rebuild():
        """What the effect's updateGUIFromMRML does: list the segments, select the stored one."""
        choices = segment_choices(seg, L.segment_id)
        return choices, choice_index(choices, p.get("BackgroundSegmentID"))

    def write_back(choices, index):
        """What updateMRMLFromGUI does with the combo box's current item."""
        p.update({"Smoothness": p.get("Smoothness") + 1.0,
                  "BackgroundSegmentID": chosen_segment(choices, p.get("BackgroundSegmentID"), choices[index][0])})

    for _ in range(3):                                      # parameter changes and rebuilds
        choices, index = rebuild()
        assert choices[index][0] == bg and choices[0][0] == NO_SEGMENT
        write_back(choices, index)
    assert p.get("BackgroundSegmentID") == bg and L.background_segment_id() == bg
    L.select_segment(bg)                                   # editing the background segment itself
    choices, index = rebuild()
    assert bg not in [sid for sid, _ in choices] and index == 0 and L.background_segment_id() is None
    write_back(choices, index)
    assert p.get("BackgroundSegmentID") == bg              # not erased by the other option's change
    L.select_segment(obj)
    choices, index = rebuild()
    assert choices[index][0] == bg
    write_back(choices, 0)                                 # the user picks "(none)" on purpose
    assert p.get("BackgroundSegmentID") == NO_SEGMENT


def test_smartfill_reads_background_strokes_from_the_chosen_segment(mrml):
    from scipy import ndimage as ndi

    from conftest import paint

    from orbitai.annotate import simulate_strokes

    L = mrml.logic
    truth = mrml.labels.array == 2
    fg = np.any(simulate_strokes(truth, mrml.image.spacing, 2), axis=0)
    bg = ndi.binary_dilation(truth, iterations=3) & ~ndi.binary_dilation(truth, iterations=2)
    paint(mrml, mrml.ids[0], fg)
    paint(mrml, mrml.ids[1], bg)
    L.params(SMARTFILL).set("BackgroundSegmentID", mrml.ids[1])
    r = L.smartfill_preview()                              # strokes from the segments, as the effect does
    assert r.ok and r.details["mask"][fg].all() and not r.details["mask"][bg].any()
    L.smartfill_cancel()


def test_slice_axis_follows_the_view():
    import vtk

    class Oriented:
        """An image with identity directions (the aligned source volume of an axial scan)."""

        def GetImageToWorldMatrix(self, m):
            m.Identity()

    axial, sagittal, coronal = vtk.vtkMatrix4x4(), vtk.vtkMatrix4x4(), vtk.vtkMatrix4x4()
    for m, normal in ((sagittal, (1, 0, 0)), (coronal, (0, 1, 0))):
        for r in range(3):
            m.SetElement(r, 2, normal[r])
    assert [slice_axis(m, Oriented()) for m in (axial, sagittal, coronal)] == [0, 2, 1]


def test_effects_only_gather_input_and_call_the_logic():
    """One code path: the effect files hold no algorithm and no Segment Editor arithmetic."""
    for path in EFFECTS_DIR.glob("*.py"):
        text = path.read_text()
        assert "orbitai" not in text, path.name
        for call in ("modifySelectedSegmentByLabelmap", "saveStateForUndo", "defaultModifierLabelmap",
                     "arrayFromVolume", "updateVolumeFromArray", "setSliceViewerLayers"):
            assert call not in text, (path.name, call)

