"""Issue 80: a 1.51 mm 3D scan was refused as a "1.5 mm slices" acquisition, the very limit (1.5 mm) it exceeds: a
thickness above a limit is shown with the digits that tell it from the limit."""
from __future__ import annotations

import numpy as np
import pytest

from orbitai.io import Volume
from orbitai.io.orient import MAX_ISO_MM, mm_text, plane_refusal
from orbitai.scan import Expects, Fact, ScanFacts

SAGITTAL = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])     # k along x: sagittal slices


def test_a_151_mm_3d_scan_is_refused_with_its_real_thickness():
    vol = Volume(np.zeros((40, 40, 40), np.int16), (1.51, 1.51, 1.51), direction=SAGITTAL)
    why = plane_refusal(vol, "axial", "TAOActivity")
    assert why is not None and "\n" not in why
    assert "sagittal acquisition with 1.51 mm slices (1.51 mm)" in why and "1.5 mm slices" not in why
    assert f"voxels at most {MAX_ISO_MM:g} mm" in why


def test_thick_slices_keep_their_one_decimal():
    vol = Volume(np.zeros((20, 40, 40), np.int16), (0.5, 0.5, 4.0), direction=SAGITTAL)
    assert "sagittal acquisition with 4.0 mm slices (0.5 x 0.5 x 4 mm)" in plane_refusal(vol, "axial", "TAOActivity")


@pytest.mark.parametrize("value, limit, shown", [(1.51, 1.5, "1.51"), (1.5049, 1.5, "1.505"), (1.5, 1.5, "1.5"),
                                                 (4.0, 1.5, "4.0"), (1.46, 1.5, "1.5")])
def test_mm_text_never_rounds_a_value_above_the_limit_down_to_it(value, limit, shown):
    assert mm_text(value, limit) == shown


def test_the_slice_caveat_tells_the_thickness_from_the_limit():
    facts = ScanFacts(slice_mm=Fact(3.304, 1.0, "voxel spacing"))
    (reason,) = facts.breaks(Expects(max_slice_mm=3.3))
    assert reason == "3.304 mm slices, made for up to 3.3 mm"
    (reason,) = ScanFacts(slice_mm=Fact(4.0, 1.0, "voxel spacing")).breaks(Expects(max_slice_mm=3.3))
    assert reason == "4 mm slices, made for up to 3.3 mm"
