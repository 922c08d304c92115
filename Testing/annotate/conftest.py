"""Fixtures for the annotation tests: stand-in phantoms and a headless MRML scene."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
for p in (str(HERE), str(REPO / "OrbitSegmentation")):
    if p not in sys.path:
        sys.path.insert(0, p)

import standin  # noqa: E402


@pytest.fixture(scope="session")
def left_orbit():
    """(image, labels) Volumes of a small box around the left orbit (fast)."""
    if not standin.have_atlas():
        pytest.skip("the SPL/NAC atlas (../shared/data) is not available")
    return standin.orbit_ct(seed=0, crop="left")


def headless_scene():
    """A scene set up like Slicer's application does (see DESIGN.md, Headless MRML notes)."""
    try:
        from orbitai.mrml import scene as _bridge  # the MRML bridge, once it exists
        return _bridge.new_scene()
    except (ImportError, AttributeError):
        pass
    slicer = pytest.importorskip("slicer")
    if not hasattr(slicer, "vtkSlicerSegmentEditorLogic"):
        pytest.skip("slicer-core without vtkSlicerSegmentEditorLogic")
    scene = slicer.vtkMRMLScene()
    app = slicer.vtkSlicerApplicationLogic()
    app.SetMRMLScene(scene)
    colors = slicer.vtkSlicerColorLogic()
    colors.SetMRMLApplicationLogic(app)
    colors.SetMRMLScene(scene)
    app.SetModuleLogic("Colors", colors)
    seg_logic = slicer.vtkSlicerSegmentationsModuleLogic()   # registers the converter rules
    seg_logic.SetMRMLApplicationLogic(app)
    seg_logic.SetMRMLScene(scene)
    app.SetModuleLogic("Segmentations", seg_logic)
    slicer.mrmlScene = scene
    return scene, app, [colors, seg_logic]


@pytest.fixture()
def mrml(left_orbit):
    """A headless scene with the left-orbit image as a volume node and a segmentation with
    two empty segments; returns a namespace with scene, app, volume, segmentation, ids, logic."""
    import slicer
    from OrbitSegmentationLib.annotation_logic import AnnotationLogic

    scene, app, keep = headless_scene()
    image, labels = left_orbit
    vol = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "orbit_ct")
    m = image.ijk_to_ras()
    vtk_m = slicer.util.vtkMatrixFromArray(m)
    vol.SetIJKToRASMatrix(vtk_m)
    slicer.util.updateVolumeFromArray(vol, np.ascontiguousarray(image.array))
    seg = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "annotation")
    seg.CreateDefaultDisplayNodes()
    seg.SetReferenceImageGeometryParameterFromVolumeNode(vol)
    ids = [seg.GetSegmentation().AddEmptySegment(n, n) for n in ("inferior_rectus_muscle_left", "eyeball_left")]
    logic = AnnotationLogic(scene, app)
    logic.set_inputs(seg, vol, ids[0])

    class NS:
        pass

    ns = NS()
    ns.scene, ns.app, ns.keep, ns.volume, ns.segmentation, ns.ids, ns.logic = scene, app, keep, vol, seg, ids, logic
    ns.image, ns.labels = image, labels
    return ns
