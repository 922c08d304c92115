"""Brain extraction, ICV, location regions and FLAIR checks of orbitai.neuro.anatomy (real data where present)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from orbitai.errors import InputError
from orbitai.io import Volume, read_volume, resample_spacing, rotation
from orbitai.neuro import anatomy as A
from orbitai.scan.flair import check_flair

RAW = Path(__file__).resolve().parents[3] / "shared" / "data" / "ms_flair_raw_lesjak"


def _raw(name: str) -> Volume:
    path = RAW / f"long_{name}.nii.gz"
    if not path.exists():
        pytest.skip(f"shared raw FLAIR data absent ({path})")
    return read_volume(path)


def _region_at(regions: np.ndarray, x: int, y: int, z: int) -> str:
    """Region name at an MNI (RAS) millimetre point of the template grid."""
    return A.REGIONS.get(int(regions[72 + z, 126 + y, 90 - x]), "outside")


def test_template_regions_sit_where_anatomy_puts_them():
    T = A.template_anatomy()
    r = sitk.GetArrayFromImage(T["regions"])
    assert set(np.unique(r)) == {0, 1, 2, 3, 4, 5}
    assert 1100 < T["icv_ml"] < 1400
    # lateral-ventricle bodies, corpus callosum (body, genu), cerebellum and pons, centrum semiovale, cortex
    assert _region_at(r, 15, 0, 20) == "periventricular"
    assert _region_at(r, 18, -30, 22) == "periventricular"
    assert _region_at(r, 0, 0, 22) == "callosal"
    assert _region_at(r, 0, 20, 12) == "callosal"
    assert _region_at(r, 0, -60, -30) == "infratentorial"
    assert _region_at(r, 20, -60, -30) == "infratentorial"
    assert _region_at(r, 0, -30, -30) == "infratentorial"
    assert _region_at(r, 28, -10, 28) == "deep_white_matter"
    assert _region_at(r, -28, 10, 30) == "deep_white_matter"
    assert _region_at(r, 55, 0, 10) == "juxtacortical"
    assert _region_at(r, 40, -20, -20) == "juxtacortical"     # temporal lobe: above the tentorium
    # every region voxel is intracranial
    icv = sitk.GetArrayFromImage(T["icv"]) > 0
    assert not np.any((r > 0) & ~icv)


def test_template_input_is_used_without_registration():
    vol = A.template_volume()
    steps: list[tuple[int, int, str]] = []
    e = A.extract_brain(vol, progress=lambda d, t, m: steps.append((d, t, m)))
    assert e.to_template is None
    assert any("skull-stripped" in n for n in e.notes)
    assert e.icv_ml == pytest.approx(A.template_anatomy()["icv_ml"], rel=1e-6)
    assert e.mask.same_geometry(vol) and e.regions.same_geometry(vol)
    assert steps[-1][0] == steps[-1][1] and len(steps) == 4


def test_moved_and_rotated_skull_stripped_brain_is_registered_back():
    """The template on a rotated, shifted 2 mm grid: the registration must find the regions again."""
    T = A.template_anatomy()
    R = rotation(*np.radians([8.0, -5.0, 6.0]))
    ref = sitk.Image([96, 112, 90], sitk.sitkFloat32)
    ref.SetSpacing((2.0, 2.0, 2.0))
    ref.SetDirection(tuple(R.ravel()))
    centre = np.array([0.0, -18.0, 10.0])    # LPS centre of the new grid, away from the template's
    ref.SetOrigin(tuple(centre - R @ (np.array([96, 112, 90]) * 2.0 / 2)))
    moved_img = sitk.Resample(T["image"], ref, sitk.Transform(), sitk.sitkLinear, 0.0)
    truth = sitk.GetArrayFromImage(sitk.Resample(T["regions"], ref, sitk.Transform(), sitk.sitkNearestNeighbor, 0))
    e = A.extract_brain(Volume.from_sitk(moved_img))
    assert e.to_template is not None
    assert e.icv_ml == pytest.approx(T["icv_ml"], rel=0.05)
    got = e.regions.array
    inside = (truth > 0) | (got > 0)
    assert np.mean(truth[inside] == got[inside]) > 0.8


def test_real_raw_flair_downsampled_gives_a_plausible_icv():
    """Real whole-head, oblique, 4 mm-slice FLAIR (patient 01), in-plane 1.5 mm to keep the test fast."""
    flair = resample_spacing(_raw("patient01_study1_FLAIR"), (1.5, 1.5, 4.0))
    check_flair(flair)
    e = A.extract_brain(flair)
    assert e.to_template is not None and not e.notes
    assert 1100 < e.icv_ml < 1900
    check_flair(flair, icv_ml=e.icv_ml)
    m = e.mask.array > 0
    # the mask sits inside the head, off the image border, and holds brain-bright voxels
    assert m.any() and not m[:, 0].any() and not m[:, :, -1].any()
    a = flair.array.astype(float)
    assert np.median(a[m]) > 2 * np.median(a[~m])
    codes = set(np.unique(e.regions.array[m]))
    assert {1, 2, 3, 4, 5} <= codes


def test_array_axis_order_does_not_matter():
    """The same raw FLAIR stored sagittal-first and flipped: same physical head, same ICV."""
    flair = resample_spacing(_raw("patient03_study1_FLAIR"), (2.0, 2.0, 3.3))
    img = sitk.Flip(sitk.PermuteAxes(flair.to_sitk(), [2, 0, 1]), [True, False, False])
    other = Volume.from_sitk(img)
    assert other.shape != flair.shape
    a, b = A.extract_brain(flair), A.extract_brain(other)
    assert b.icv_ml == pytest.approx(a.icv_ml, rel=0.03)


@pytest.mark.slow
@pytest.mark.parametrize("patient", ["patient01", "patient03", "patient04"])
def test_real_raw_flair_full_resolution(patient):
    flair = _raw(f"{patient}_study1_FLAIR")
    e = A.extract_brain(flair)
    assert 1100 < e.icv_ml < 1900


@pytest.mark.parametrize("name, words", [
    ("patient04_study1_T1W", "T1"), ("patient04_study1_T2W", "T2"), ("patient01_study1_T2W", "T2")])
def test_real_t1_and_t2_are_refused_as_flair(name, words):
    vol = resample_spacing(_raw(name), (1.5, 1.5, 3.0))
    with pytest.raises(InputError, match=words) as err:
        check_flair(vol)
    assert "\n" not in str(err.value)


def test_real_skull_stripped_t1_is_refused_as_flair():
    """The real T1 masked with the intracranial mask found on the same patient's FLAIR: no scalp to give
    it away, its bright tissue (white matter) lies deep where a FLAIR's (cortex) lies outside."""
    from orbitai.io import resample_like

    flair = resample_spacing(_raw("patient04_study1_FLAIR"), (2.0, 2.0, 3.0))
    t1 = resample_spacing(_raw("patient04_study1_T1W"), (2.0, 2.0, 3.0))
    icv = A.extract_brain(flair).mask
    mask = resample_like(icv, t1, label=True).array > 0
    with pytest.raises(InputError, match="T1"):
        check_flair(t1.with_array(np.where(mask, t1.array, 0).astype(np.float32)))
    check_flair(flair.with_array(np.where(icv.array > 0, flair.array, 0).astype(np.float32)))   # FLAIR passes


def test_real_flairs_and_skull_stripped_inputs_pass():
    check_flair(A.template_volume())
    for name in ("patient03_study1_FLAIR", "patient04_study1_FLAIR"):
        check_flair(resample_spacing(_raw(name), (1.5, 1.5, 3.3)))


def _bad_inputs() -> dict[str, tuple[Volume, str]]:
    t = A.template_volume()
    a = t.array.astype(np.float32)
    nan = a.copy()
    nan[90, 100, 90] = np.nan
    rng = np.random.default_rng(0)
    return {
        "single slice": (Volume(a[90:91], t.spacing), "2D"),
        "thin slab": (Volume(a[88:92], t.spacing), "2D"),
        "nan": (t.with_array(nan), "NaN"),
        "ct": (t.with_array(np.where(a > 0, a + 20, -1000).astype(np.float32)), "CT"),
        "noise box": (Volume(rng.random((70, 100, 100)).astype(np.float32) * 100, (2.0, 2.0, 2.0)), "No head"),
        "orbit crop": (Volume(a[50:90, 150:210, 50:130], t.spacing), "too little for a head"),
        "constant": (t.with_array(np.full(a.shape, 7.0, np.float32)), "empty or constant"),
    }


@pytest.mark.parametrize("case", ["single slice", "thin slab", "nan", "ct", "noise box", "orbit crop", "constant"])
def test_bad_inputs_get_one_line_errors(case):
    vol, words = _bad_inputs()[case]
    with pytest.raises(InputError, match=words) as err:
        check_flair(vol)
    assert "\n" not in str(err.value)
