"""Orbit rules: the eyeball guard, the field-of-view warning and structure volumes."""
from __future__ import annotations

import numpy as np
import pytest

from orbitai.errors import InputError
from orbitai.io import Volume
from orbitai.labels import values_for
from orbitai.orbit.rules import (
    OrbitNotFoundError,
    eyeball_class,
    field_of_view_warnings,
    require_orbit,
    structure_volumes,
)

STRUCTURES = ("eyeball", "optic_nerve")


def test_eyeball_guard():
    lab = np.zeros((20, 20, 20), np.uint8)
    vol = Volume(lab, (1.0, 1.0, 1.0))
    with pytest.raises(OrbitNotFoundError, match="No orbit found: the model detected 0.00 mL") as err:
        require_orbit(vol, STRUCTURES)
    assert isinstance(err.value, InputError) and err.value.exit_code == 2
    lab[:, :, :10] = values_for("eyeball")[0]                   # 4 mL
    require_orbit(vol.with_array(lab), STRUCTURES)
    with pytest.raises(OrbitNotFoundError, match="No orbit structure found"):
        require_orbit(vol.with_array(np.zeros_like(lab)), ("optic_nerve",))
    assert eyeball_class(STRUCTURES) == 1 and eyeball_class(("optic_nerve",)) == -1


def test_field_of_view_warning_and_volumes():
    assert field_of_view_warnings(Volume(np.zeros((10, 50, 50)), (1.0, 1.0, 1.0))) == [
        "The field of view is very small ([50.0, 50.0, 10.0] mm); an orbit is ~40 mm wide."]
    assert field_of_view_warnings(Volume(np.zeros((30, 50, 50)), (1.0, 1.0, 1.0))) == []
    lab = np.zeros((10, 10, 10), np.uint8)
    lab[0, 0, :4] = values_for("optic_nerve")[1]
    rows = structure_volumes(Volume(lab, (1.0, 1.0, 2.0)), STRUCTURES)
    assert [r["name"] for r in rows] == ["eyeball_left", "eyeball_right", "optic_nerve_left", "optic_nerve_right"]
    assert rows[3]["voxels"] == 4 and rows[3]["volume_cm3"] == pytest.approx(0.008)
    assert [r["name"] for r in structure_volumes(Volume(lab))] == ["optic_nerve_right"]


def _head(shape, centre, radii):
    k, j, i = np.ogrid[: shape[0], : shape[1], : shape[2]]
    return ((((k - centre[0]) / radii[0]) ** 2 + ((j - centre[1]) / radii[1]) ** 2
             + ((i - centre[2]) / radii[2]) ** 2) <= 1).astype(np.float32) * 0.6


def test_orbit_search_box_keeps_the_front_of_a_whole_head():
    from orbitai.orbit.rules import ORBIT_DEPTH_MM, ORBIT_HALF_WIDTH_MM, orbit_search_box

    norm = _head((200, 300, 250), (100, 160, 125), (90, 130, 95))     # a 0.8 mm whole head, front at j=30
    box = orbit_search_box(norm, (0.8, 0.8, 0.8))
    assert box is not None and box[0] == slice(0, 200)
    assert abs(box[1].start - (30 - 5 / 0.8)) <= 4 and abs(box[1].stop - (30 + ORBIT_DEPTH_MM / 0.8)) <= 4
    assert abs((box[2].start + box[2].stop) / 2 - 125) <= 2
    assert abs((box[2].stop - box[2].start) * 0.8 - 2 * ORBIT_HALF_WIDTH_MM) <= 2
    # an orbit-sized field of view, or nothing but air: the whole scan
    assert orbit_search_box(_head((60, 120, 120), (30, 80, 60), (60, 100, 100)), (0.8, 0.8, 0.8)) is None
    assert orbit_search_box(np.zeros((20, 50, 50), np.float32), (0.8, 0.8, 0.8)) is None
