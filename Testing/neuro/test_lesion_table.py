"""Lesion table on hand-made masks: exact counts, volumes, locations, centroids and the priority rule."""
from __future__ import annotations

import numpy as np
import pytest

from orbitai.errors import InputError
from orbitai.io import Volume
from orbitai.neuro.anatomy import REGION_CODES, BrainExtraction
from orbitai.neuro.lesion_table import LOCATIONS, lesion_table, locate

SPACING = (0.5, 1.0, 2.0)          # x, y, z mm: one voxel = 1 mm^3 = 0.001 mL
ORIGIN = (10.0, -20.0, 5.0)        # LPS


def _extraction() -> BrainExtraction:
    """A 40 x 30 x 20 (z, y, x) grid whose regions are bands of z: 1-8 infratentorial ... see below."""
    shape = (40, 30, 20)
    regions = np.full(shape, REGION_CODES["deep_white_matter"], np.uint8)
    regions[:8] = REGION_CODES["infratentorial"]
    regions[8:16] = REGION_CODES["periventricular"]
    regions[16:20] = REGION_CODES["callosal"]
    regions[28:36] = REGION_CODES["juxtacortical"]
    regions[36:] = 0                                   # outside the intracranial mask
    mask = (regions > 0).astype(np.uint8)
    ref = Volume(mask, SPACING, ORIGIN)
    return BrainExtraction(ref, icv_ml=1500.0, regions=ref.with_array(regions), to_template=None, notes=[])


def _lesions(ext: BrainExtraction, boxes) -> Volume:
    m = np.zeros(ext.mask.shape, np.uint8)
    for z, y, x in boxes:
        m[z, y, x] = 1
    return ext.mask.with_array(m)


def test_counts_volumes_locations_and_centroids_are_exact():
    ext = _extraction()
    les = _lesions(ext, [
        (slice(2, 4), slice(2, 4), slice(2, 4)),            # 8 voxels, infratentorial
        (slice(10, 13), slice(5, 7), slice(5, 6)),          # 6 voxels, periventricular
        (slice(22, 25), slice(10, 12), slice(10, 12)),      # 12 voxels, deep white matter
        (slice(30, 32), slice(20, 21), slice(3, 5)),        # 4 voxels, juxtacortical
        (slice(17, 18), slice(25, 27), slice(15, 17)),      # 4 voxels, callosal
        (slice(24, 25), slice(0, 2), slice(18, 19)),        # 2 voxels: below min_voxels
    ])
    t = lesion_table(les, ext, min_voxels=3)
    assert t.count == 5
    assert [le.voxels for le in t.lesions] == [8, 6, 4, 12, 4]     # label order: z, then y, then x
    assert t.total_ml == pytest.approx(0.034)
    assert t.percent_icv == pytest.approx(100 * 0.034 / 1500.0)
    assert t.location_counts() == {"periventricular": 1, "juxtacortical": 1, "infratentorial": 1,
                                   "deep_white_matter": 1, "callosal": 1}
    assert t.location_volumes_ml()["deep_white_matter"] == pytest.approx(0.012)
    # centroid of the first lesion: voxel (i, j, k) = (2.5, 2.5, 2.5) -> LPS origin + spacing * index
    lps = np.array(ORIGIN) + np.array(SPACING) * 2.5
    assert t.lesions[0].centroid_ras == pytest.approx((-lps[0], -lps[1], lps[2]))
    rows = t.to_rows()
    assert list(rows[0]) == ["id", "volume_ml", "location", "centroid_r", "centroid_a", "centroid_s", "voxels"]
    assert [r["id"] for r in rows] == [1, 2, 3, 4, 5]
    s = t.summary()
    assert s["count"] == 5 and s["icv_ml"] == 1500.0 and set(s["counts"]) == set(LOCATIONS)
    assert lesion_table(les, ext, min_voxels=1).count == 6


def test_26_connected_voxels_are_one_lesion_and_6_separated_are_two():
    ext = _extraction()
    diag = _lesions(ext, [(slice(22, 23), slice(5, 6), slice(5, 6)), (slice(23, 24), slice(6, 7), slice(6, 7)),
                          (slice(24, 25), slice(7, 8), slice(7, 8))])
    assert lesion_table(diag, ext, min_voxels=1).count == 1
    apart = _lesions(ext, [(slice(22, 23), slice(5, 6), slice(5, 6)), (slice(24, 25), slice(5, 6), slice(5, 6))])
    assert lesion_table(apart, ext, min_voxels=1).count == 2


def test_priority_rule_touching_and_compartment():
    pv, jc, it, dwm, cc = (REGION_CODES[n] for n in
                           ("periventricular", "juxtacortical", "infratentorial", "deep_white_matter", "callosal"))
    # touching the ventricles with 20 % of the voxels is periventricular even when most lie deep
    assert locate(np.array([pv] * 2 + [dwm] * 8)) == "periventricular"
    assert locate(np.array([pv] * 1 + [dwm] * 9)) == "deep_white_matter"
    # callosal before periventricular, periventricular before juxtacortical
    assert locate(np.array([cc] * 3 + [pv] * 7)) == "callosal"
    assert locate(np.array([jc] * 5 + [pv] * 5)) == "periventricular"
    # infratentorial needs half of the lesion below the tentorium
    assert locate(np.array([it] * 5 + [pv] * 5)) == "infratentorial"
    assert locate(np.array([it] * 4 + [jc] * 6)) == "juxtacortical"
    # voxels outside the mask count for nothing
    assert locate(np.array([0] * 9 + [dwm])) == "deep_white_matter"


def test_a_big_lesion_straddling_bands_gets_the_priority_class():
    ext = _extraction()
    les = _lesions(ext, [(slice(14, 30), slice(3, 6), slice(3, 6))])   # pv 2, cc 4, dwm 8, jc 2 of 16 slices
    t = lesion_table(les, ext)
    assert t.count == 1 and t.lesions[0].location == "callosal" and t.lesions[0].voxels == 16 * 9


def test_empty_mask_and_geometry_mismatch():
    ext = _extraction()
    t = lesion_table(ext.mask.with_array(np.zeros(ext.mask.shape, np.uint8)), ext)
    assert t.count == 0 and t.total_ml == 0 and t.percent_icv == 0 and t.location_counts()["callosal"] == 0
    other = Volume(np.zeros((40, 30, 20), np.uint8), (1.0, 1.0, 1.0), ORIGIN)
    with pytest.raises(InputError, match="geometry") as err:
        lesion_table(other, ext)
    assert "\n" not in str(err.value)
