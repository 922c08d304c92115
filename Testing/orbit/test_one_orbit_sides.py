"""A scan with one orbit in view (issue 80, item 4): its side comes from the orbit's anatomy, not from the image's
middle; its one globe is never split in two, and only its side is reported."""
from __future__ import annotations

import numpy as np
import pytest

from orbitai.io import Volume
from orbitai.labels import ORBIT_LABELS, structure_class, values_for
from orbitai.orbit.anatomy import check_structures, one_orbit_warning
from orbitai.orbit.rules import class_values, classes_to_orbit_labels, orbit_midline, structure_volumes
from orbitai.phantoms.orbit import Rendering, orbit_case

#: The phantom's first six structures, in the label scheme's order (class c <-> values 2c-1, 2c).
STRUCTURES = ("eyeball", "optic_nerve", "superior_rectus_muscle", "inferior_rectus_muscle",
              "medial_rectus_muscle", "lateral_rectus_muscle")


@pytest.fixture(scope="module")
def labels() -> Volume:
    lab = orbit_case(0, "ct", rendering=Rendering(noise=False)).labels
    arr = lab.array.copy()
    arr[arr > 2 * len(STRUCTURES)] = 0
    return lab.with_array(arr)


def _crop_x(vol: Volume, keep) -> Volume:
    """The columns (i) of ``vol`` whose LPS x ``keep`` says, as a volume of their own (its origin moved)."""
    lin = vol.ijk_to_lps()
    x = lin[0, 0] * np.arange(vol.shape[2]) + lin[0, 3]
    cols = np.flatnonzero(keep(x))
    origin = vol.index_to_physical([cols[0], 0, 0])
    return Volume(vol.array[:, :, cols[0]: cols[-1] + 1].copy(), vol.spacing, tuple(origin), vol.direction)


def _mirrored_grid(vol: Volume) -> Volume:
    """The same voxels in the same places, stored with the i axis reversed (direction x negated)."""
    direction = vol.direction.copy()
    direction[:, 0] *= -1
    origin = vol.index_to_physical([vol.shape[2] - 1, 0, 0])
    return Volume(vol.array[:, :, ::-1].copy(), vol.spacing, tuple(origin), direction)


def _classes(labels: Volume) -> Volume:
    return labels.with_array(np.vectorize(structure_class)(labels.array).astype(np.uint8))


def _midline(labels: Volume) -> float:
    """LPS x between the phantom's two globes."""
    cents = [labels.index_to_physical(np.argwhere(labels.array == v)[:, ::-1]).mean(0)[0] for v in values_for("eyeball")]
    return 0.5 * (cents[0] + cents[1])


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("mirrored", [False, True])
def test_one_orbit_in_view_gets_its_side_from_its_anatomy(labels, side, mirrored):
    mid = _midline(labels)
    # the patient's left is LPS +x: the left orbit lies above the midline
    crop = _crop_x(labels, (lambda x: x > mid + 2) if side == "left" else (lambda x: x < mid - 2))
    if mirrored:
        crop = _mirrored_grid(crop)
    truth = {ORBIT_LABELS[int(v)].side for v in np.unique(crop.array) if v}
    assert truth == {side}                           # the crop holds one orbit
    out = classes_to_orbit_labels(_classes(crop), class_values(STRUCTURES), eyeball_class=1)
    found = {ORBIT_LABELS[int(v)].side for v in np.unique(out.array) if v}
    assert found == {side}, f"the {side} orbit's structures were labelled {found}"
    lv, rv = values_for("eyeball")
    eye = rv if side == "right" else lv
    assert (out.array == eye).sum() == (crop.array == eye).sum()      # one globe, not split in two
    for name in ("optic_nerve", "medial_rectus_muscle"):
        v = values_for(name)[side == "right"]
        assert (out.array == v).sum() > 0.9 * (crop.array == v).sum()
    mid_x = orbit_midline(_classes(crop), class_values(STRUCTURES), 1)
    assert mid_x is not None and abs(mid_x - mid) < 10      # the midline put where it is, outside the image

    names = [r["name"] for r in structure_volumes(out, STRUCTURES)]
    assert names == [f"{s}_{side}" for s in STRUCTURES]
    checks = check_structures(out, STRUCTURES)
    assert {ORBIT_LABELS[c.label].side for c in checks} == {side} and len(checks) == len(STRUCTURES)
    (warning,) = one_orbit_warning(out, STRUCTURES)
    assert f"the {side} orbit" in warning


def test_both_orbits_in_view_keep_both_sides(labels):
    out = classes_to_orbit_labels(_classes(labels), class_values(STRUCTURES), eyeball_class=1)
    for v in values_for("eyeball"):
        assert (out.array == v).sum() == (labels.array == v).sum()
    assert len(structure_volumes(out, STRUCTURES)) == 2 * len(STRUCTURES)
    assert not one_orbit_warning(out, STRUCTURES)


def test_a_globe_missing_where_the_scan_shows_its_orbit_is_reported_not_found(labels):
    arr = labels.array.copy()
    arr[arr == values_for("eyeball")[1]] = 0         # both orbits in view, the right globe not segmented
    out = labels.with_array(arr)
    names = [r["name"] for r in structure_volumes(out, STRUCTURES)]
    assert "eyeball_right" in names and len(names) == 2 * len(STRUCTURES)
    checks = {c.name: c for c in check_structures(out, STRUCTURES)}
    assert checks["eyeball_right"].status == "not found"
    assert not one_orbit_warning(out, STRUCTURES)
