"""Fixtures for the annotation tests: the packaged orbit CT phantom and a headless MRML scene."""
from __future__ import annotations

import pytest

from orbitai.mrml.segment_editor import paint_segment
from orbitai.testing.annotation_effects import annotation_scene, orbit_box



@pytest.fixture(scope="session")
def right_orbit():
    """(image, labels) Volumes of a box around the right orbit (eyeball 2, inferior rectus 8,
    lateral rectus 12)."""
    return orbit_box()


# Helpers are fixtures or namespace methods, never imported `from conftest`: with several conftest.py
# files in the suite, the module named `conftest` is whichever pytest loaded first.
def _headless_scene():
    """A scene set up like Slicer's application does (see DESIGN.md, Headless MRML notes)."""
    pytest.importorskip("slicer", reason="needs 3D Slicer's Python or the PyPI package slicer-core")
    from orbitai.mrml.scene import new_scene

    return new_scene()


@pytest.fixture()
def headless_ctx():
    """A headless MRML context (scene + application logic), closed after the test."""
    ctx = _headless_scene()
    yield ctx
    ctx.close()


@pytest.fixture()
def mrml(right_orbit):
    """A headless scene with the right-orbit image as a volume node and a segmentation with two
    empty segments; returns a namespace with ctx, scene, volume, segmentation, ids, logic."""
    from orbitai.app.annotation.logic import AnnotationLogic


    ctx = _headless_scene()
    image, labels = right_orbit
    names = ("inferior_rectus_muscle_right", "eyeball_right")
    vol, seg, by_name = annotation_scene(ctx, image, names)
    ids = [by_name[n] for n in names]
    logic = AnnotationLogic(ctx.scene, ctx.app_logic)
    logic.setInputs(seg, vol, ids[0])

    class NS:
        def paint(self, segment_id, mask):
            """Set a segment to a mask (what painting strokes does)."""
            paint_segment(self.segmentation, segment_id, self.volume, mask)

    ns = NS()
    ns.ctx, ns.scene, ns.app = ctx, ctx.scene, ctx.app_logic
    ns.volume, ns.segmentation, ns.ids, ns.logic = vol, seg, ids, logic
    ns.image, ns.labels = image, labels
    yield ns
    ctx.close()
