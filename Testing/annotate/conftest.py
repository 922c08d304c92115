"""Fixtures for the annotation tests: the packaged orbit CT phantom and a headless MRML scene."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from orbitai.annotate._common import bbox
from orbitai.io import Volume
from orbitai.phantoms import orbit_case

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "OrbitSegmentation") not in sys.path:
    sys.path.insert(0, str(REPO / "OrbitSegmentation"))

#: Orbit-scheme labels of each orbit (odd: left, even: right).
SIDE_VALUES = {"left": tuple(range(1, 17, 2)), "right": tuple(range(2, 17, 2))}


def orbit_box(seed: int = 0, side: str = "right", margin_mm: float = 6.0):
    """(image, labels) Volumes of a box around one orbit of the axial CT phantom built from the
    packaged SPL/NAC atlas (`orbitai.phantoms.orbit_case`; the case of the annotation benchmark
    and of the slow quality bars)."""
    case = orbit_case(seed, modality="ct", orientation="axial")
    image, labels = case.image, case.labels
    box = bbox(np.isin(labels.array, SIDE_VALUES[side]), np.ceil(margin_mm / np.asarray(image.spacing[::-1])).astype(int))
    origin = tuple(image.index_to_physical([b.start for b in box[::-1]]))
    return (Volume(np.ascontiguousarray(image.array[box], np.float32), image.spacing, origin, image.direction),
            Volume(np.ascontiguousarray(labels.array[box]), labels.spacing, origin, labels.direction))


@pytest.fixture(scope="session")
def right_orbit():
    """(image, labels) Volumes of a box around the right orbit (eyeball 2, inferior rectus 8,
    lateral rectus 12)."""
    return orbit_box()


def headless_scene():
    """A scene set up like Slicer's application does (see DESIGN.md, Headless MRML notes)."""
    pytest.importorskip("slicer", reason="needs 3D Slicer's Python or the PyPI package slicer-core")
    from orbitai.mrml.scene import new_scene

    return new_scene()


def paint(ns, segment_id, mask):
    """Set a segment to a mask on the aligned grid (what painting strokes does)."""
    import slicer

    from OrbitSegmentationLib.annotation_logic import fill_oriented_image

    image = slicer.vtkOrientedImageData()
    image.DeepCopy(ns.logic.editor.aligned()[0])
    fill_oriented_image(image, mask)
    slicer.vtkSlicerSegmentationsModuleLogic.SetBinaryLabelmapToSegment(
        image, ns.segmentation, segment_id, slicer.vtkSlicerSegmentationsModuleLogic.MODE_REPLACE)


@pytest.fixture()
def mrml(right_orbit):
    """A headless scene with the right-orbit image as a volume node and a segmentation with two
    empty segments; returns a namespace with ctx, scene, volume, segmentation, ids, logic."""
    from OrbitSegmentationLib.annotation_logic import AnnotationLogic

    from orbitai.mrml.volumes import volume_node_from_volume

    ctx = headless_scene()
    image, labels = right_orbit
    vol = volume_node_from_volume(ctx, image, "orbit_ct")
    seg = ctx.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "annotation")
    seg.CreateDefaultDisplayNodes()
    seg.SetReferenceImageGeometryParameterFromVolumeNode(vol)
    ids = [seg.GetSegmentation().AddEmptySegment(n, n) for n in ("inferior_rectus_muscle_right", "eyeball_right")]
    logic = AnnotationLogic(ctx.scene, ctx.app_logic)
    logic.set_inputs(seg, vol, ids[0])

    class NS:
        pass

    ns = NS()
    ns.ctx, ns.scene, ns.app = ctx, ctx.scene, ctx.app_logic
    ns.volume, ns.segmentation, ns.ids, ns.logic = vol, seg, ids, logic
    ns.image, ns.labels = image, labels
    yield ns
    ctx.close()
