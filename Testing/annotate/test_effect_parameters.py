"""Effect options are Slicer effect parameters on the segment editor node (real MRML, headless)."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from orbitai.app.annotation.options import (AUTOCORRECTION, EFFECT_HELP, EFFECT_OPTIONS, NO_SEGMENT, SMARTFILL,
                                                 SMARTPENCIL, EffectParameters, values_from_widgets, widget_states)

from orbitai.mrml.labelmaps import slice_axis

EFFECTS_DIR = Path(__file__).resolve().parents[2] / "OrbitSegmentation" / "OrbitSegmentationEffects"


@pytest.fixture()
def editor_node(headless_ctx):
    return headless_ctx.scene.AddNewNodeByClass("vtkMRMLSegmentEditorNode")


def test_defaults_are_stored_where_slicer_effects_keep_theirs(editor_node):
    for effect, options in EFFECT_OPTIONS.items():
        params = EffectParameters(editor_node, effect)
        params.setDefaults()
        for o in options:
            # scriptedEffect.parameter(name) reads the attribute "<effect name>.<name>"
            assert editor_node.GetAttribute(f"{effect}.{o.name}") is not None
        assert params.values() == {o.name: o.default for o in options}
        assert effect in EFFECT_HELP
    p = EffectParameters(editor_node, SMARTFILL)
    p.set("Smoothness", 4.5)
    p.setDefaults()                                       # defaults never overwrite a choice
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


def test_parameters_are_written_like_slicer_effects_write_theirs(editor_node):
    """REVIEW #4: like qSlicerSegmentEditorAbstractEffect::setParameter, a write fires
    EffectParameterModified and no full Modified event (which would rebuild the whole Segment
    Editor on every slider move); an unchanged value fires nothing."""
    import slicer
    import vtk

    events = {"modified": 0, "parameter": 0}

    def count(kind):
        def observer(caller, event):
            events[kind] += 1
        return observer

    editor_node.AddObserver(vtk.vtkCommand.ModifiedEvent, count("modified"))
    editor_node.AddObserver(slicer.vtkMRMLSegmentEditorNode.EffectParameterModified, count("parameter"))
    p = EffectParameters(editor_node, SMARTFILL)
    p.setDefaults()
    assert events == {"modified": 0, "parameter": len(EFFECT_OPTIONS[SMARTFILL])}
    events.update(modified=0, parameter=0)
    p.update({"Smoothness": 4.5, "LocalityMm": 12.0})
    assert events == {"modified": 0, "parameter": 2}
    events.update(modified=0, parameter=0)
    assert p.set("Smoothness", 4.5) is False
    p.setDefaults()
    assert events == {"modified": 0, "parameter": 0}
    assert editor_node.GetAttribute("SmartFill.Smoothness") == "4.5"


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
    p.setDefaults()
    p.set("BackgroundSegmentID", bg)

    assert p.node.GetSegmentationNode() is seg

    def rebuild():
        """The effect's updateGUIFromMRML: list the segments, select the stored one."""
        return widget_states(p)["BackgroundSegmentID"]

    def write_back(choices, index):
        """The effect's updateMRMLFromGUI with the combo box's current item."""
        shown = widget_states(p)
        shown["Smoothness"] += 1.0
        shown["BackgroundSegmentID"] = choices[index][0]
        p.update(values_from_widgets(p, shown))

    for _ in range(3):                                      # parameter changes and rebuilds
        choices, index = rebuild()
        assert choices[index][0] == bg and choices[0][0] == NO_SEGMENT
        write_back(choices, index)
    assert p.get("BackgroundSegmentID") == bg and L.backgroundSegmentID() == bg
    L.selectSegment(bg)                                   # editing the background segment itself
    choices, index = rebuild()
    assert bg not in [sid for sid, _ in choices] and index == 0 and L.backgroundSegmentID() is None
    write_back(choices, index)
    assert p.get("BackgroundSegmentID") == bg              # not erased by the other option's change
    L.selectSegment(obj)
    choices, index = rebuild()
    assert choices[index][0] == bg
    write_back(choices, 0)                                 # the user picks "(none)" on purpose
    assert p.get("BackgroundSegmentID") == NO_SEGMENT


def test_smartfill_reads_background_strokes_from_the_chosen_segment(mrml):
    from scipy import ndimage as ndi

    from orbitai.annotate import simulate_strokes

    L = mrml.logic
    truth = mrml.labels.array == 2
    fg = np.any(simulate_strokes(truth, mrml.image.spacing, 2), axis=0)
    bg = ndi.binary_dilation(truth, iterations=3) & ~ndi.binary_dilation(truth, iterations=2)
    mrml.paint(mrml.ids[0], fg)
    mrml.paint(mrml.ids[1], bg)
    L.params(SMARTFILL).set("BackgroundSegmentID", mrml.ids[1])
    from orbitai.mrml.segment_editor import finish_pending

    r = finish_pending(L, L.smartFillPreview())           # strokes from the segments, as the effect does
    assert r.ok and r.details["mask"][fg].all() and not r.details["mask"][bg].any()
    L.smartFillCancel()


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
    """One code path: the effect files hold no algorithm and no Segment Editor arithmetic; of the package they
    import only the effects' logic (`orbitai.app.annotation`) and the segment editor adapters (`orbitai.mrml.editors`)."""
    import re

    for path in EFFECTS_DIR.glob("*.py"):
        text = path.read_text()
        other = [ln for ln in text.splitlines() if "orbitai" in ln
                 and not re.match(r"from orbitai\.(app\.annotation(\.\w+)?|mrml\.editors) import ", ln)]
        assert not other, (path.name, other)
        for call in ("modifySelectedSegmentByLabelmap", "saveStateForUndo", "defaultModifierLabelmap",
                     "arrayFromVolume", "updateVolumeFromArray", "setSliceViewerLayers"):
            assert call not in text, (path.name, call)



def test_effects_register_without_scipy_and_skimage(tmp_path):
    """REVIEW #13: registering the effects at Slicer start-up imported scipy and scikit-image (not in
    a fresh Slicer): now the logic imports, builds its options and its logic without them, and an
    action first reports (or, inside Slicer, offers to install) what is missing."""
    lib = str(EFFECTS_DIR.parent)
    code = (
        "import sys, importlib.util\n"
        "FIND = importlib.util.find_spec\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('scipy', 'skimage'):\n"
        "            raise ImportError('blocked: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "importlib.util.find_spec = lambda name, *a: (None if name.split('.')[0] in ('scipy', 'skimage')\n"
        "                                             else FIND(name, *a))\n"
        f"sys.path.insert(0, {lib!r})\n"
        "from orbitai.app.annotation import logic as al, options as opts\n"
        "from orbitai.mrml import new_scene\n"
        "scene = new_scene().scene\n"
        "logic = al.AnnotationLogic(scene)\n"
        "p = logic.params(opts.SMARTPENCIL); p.setDefaults(); assert p.get('Superpixels') == 1000\n"
        "assert 'orbitai.annotate' not in sys.modules and 'scipy' not in sys.modules\n"
        "print(opts.missing_dependencies(ask=False))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    line = out.stdout.strip().splitlines()[-1]
    assert "scipy" in line and "scikit-image" in line and "pip install" in line, line


def test_superpixel_choices_are_the_algorithms_resolutions():
    from orbitai.app.annotation.options import SUPERPIXEL_COUNTS, missing_dependencies

    from orbitai.annotate import RESOLUTIONS

    assert SUPERPIXEL_COUNTS == RESOLUTIONS
    assert missing_dependencies(ask=False) == ""
