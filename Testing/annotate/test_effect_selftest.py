"""The annotation effects' self-test module (orbitai.testing.annotation_effects): importable
without Slicer, its scenario run headless through the logic the effects call."""
import subprocess
import sys

import pytest

from orbitai.testing import annotation_effects as selftest


def test_importable_without_slicer_or_pytest():
    """The module imports nothing of Slicer, Qt or pytest at import time."""
    code = ("import sys; import orbitai.testing.annotation_effects as m; "
            "bad = [n for n in ('slicer', 'qt', 'pytest', 'vtk') if n in sys.modules]; "
            "assert not bad, bad; print(sorted(m.SCENARIO_BARS))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "smartfill_eyeball_dice" in out.stdout


def test_segment_editor_driver_says_it_needs_slicer():
    with pytest.raises(RuntimeError, match="inside 3D Slicer"):
        selftest.run_in_segment_editor()


def test_scenario_through_the_effects_logic():
    """Same steps and bars as the in-Slicer self-test: SmartFill with a background segment kept
    across a GUI rebuild, preview, accept; AutoCorrection; ten SmartPencil clicks."""
    pytest.importorskip("slicer", reason="needs 3D Slicer's Python or the PyPI package slicer-core")
    from orbitai.mrml import new_scene

    ctx = new_scene()
    try:
        before = ctx.scene.GetNumberOfNodes()
        figures = selftest.run_with_logic(ctx)
        assert ctx.scene.GetNumberOfNodes() == before        # the self-test leaves the scene as it was
    finally:
        ctx.close()
    assert all(figures[k] >= bar for k, bar in selftest.SCENARIO_BARS.items()), figures
