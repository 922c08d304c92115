"""Clinical CT as it comes from the scanner (issue #19): DICOM series with gantry tilt (constant and
varying), uneven spacing and missing slices; values rescaled, offset by 1024 or stored as 8 bits;
untrustworthy voxel spacing in NIfTI/NRRD.

Geometry is checked exactly with a linear intensity field as the "patient": bilinear sampling in
each slice, averaging over the slice thickness and linear interpolation between slices are all
exact for it, so every resampled voxel must hold the field's value at its physical position."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from orbitai.cli import main
from orbitai.io import (Acquisition, Volume, VolumeError, dicom_slice_geometry, itk_warnings_off, read_dicom_scan,
                        read_scan, write_dicom_slice, write_volume)
from orbitai.io.regrid import grid_shape
from orbitai.phantoms.clinical_ct import stored_values, write_clinical_series
from orbitai.phantoms.orbit import PhantomCase, orbit_case
from orbitai.preprocess.checks import check_spacing
from orbitai.scan.values import image_is_ct, looks_like_ct
from orbitai.preprocess.slices import structure_gap_warnings

GRADIENT = np.array([2.0, 3.0, 5.0])       # HU per mm along x, y, z (LPS)


def field_at(points: np.ndarray) -> np.ndarray:
    return points @ GRADIENT


@pytest.fixture(scope="module")
def linear_case() -> PhantomCase:
    """A 'patient' whose CT value is a linear function of position (within -1024..3071 HU)."""
    shape = (100, 90, 90)                      # z, y, x at 1 mm, centred on the origin
    origin = -(np.array(shape[::-1]) - 1) / 2.0
    k, j, i = np.meshgrid(*(np.arange(n, dtype=np.float32) for n in shape), indexing="ij")
    pts = np.stack([i + origin[0], j + origin[1], k + origin[2]], -1)
    image = Volume(field_at(pts).astype(np.float32), (1.0, 1.0, 1.0), tuple(origin))
    return PhantomCase(image, image.with_array(np.zeros(shape, np.uint8)))


def voxel_points(vol: Volume) -> np.ndarray:
    k, j, i = np.meshgrid(*(np.arange(n) for n in vol.shape), indexing="ij")
    ijk = np.stack([i, j, k], -1).reshape(-1, 3).astype(float)
    return (vol.ijk_to_lps()[:3, :3] @ ijk.T).T + np.asarray(vol.origin)


def assert_matches_field(vol: Volume, fill: float) -> None:
    """Every voxel the slices cover holds the field's value at its position (rounding: 0.5 HU)."""
    expected = field_at(voxel_points(vol)).reshape(vol.shape)
    covered = vol.array != fill
    # leave out the last pixel ring of each slice's coverage (where bilinear sampling meets the edge)
    inner = covered.copy()
    for axis in (1, 2):
        inner &= np.roll(covered, 1, axis) & np.roll(covered, -1, axis)
    assert inner.mean() > 0.3
    err = np.abs(vol.array[inner] - expected[inner])
    assert err.max() < 1.01, f"max error {err.max():.2f} HU"


def series(case, tmp_path: Path, name: str, gaps, tilt, **kw) -> Path:
    return write_clinical_series(case, tmp_path / name, gaps, tilt, matrix=60, pixel_mm=1.0, **kw).folder


def naive_read(folder: Path) -> Volume:
    reader = sitk.ImageSeriesReader()
    with itk_warnings_off():
        reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder)))
        return Volume.from_sitk(reader.Execute())


def test_constant_tilt_is_resampled_along_the_slice_normal(linear_case, tmp_path):
    folder = series(linear_case, tmp_path, "tilt20", [3.0] * 11, 20.0)
    before = sorted((p.name, p.stat().st_mtime_ns) for p in folder.iterdir())
    vol, acq = read_dicom_scan(folder)
    assert sorted((p.name, p.stat().st_mtime_ns) for p in folder.iterdir()) == before     # files untouched
    assert acq.tilt_deg == pytest.approx((20.0, 20.0), abs=0.01)
    assert acq.gaps_mm[1] == pytest.approx(3.0 * np.cos(np.radians(20)), abs=1e-3)
    assert len(acq.notes) == 1 and "gantry tilt 20.0 degrees" in acq.notes[0] and "resampled onto a regular" in acq.notes[0]
    np.testing.assert_allclose(vol.direction.T @ vol.direction, np.eye(3), atol=1e-9)
    np.testing.assert_allclose(vol.direction[:, 2], [0, -np.sin(np.radians(20)), np.cos(np.radians(20))], atol=1e-9)
    assert vol.spacing[2] == pytest.approx(3.0 * np.cos(np.radians(20)), abs=1e-3) and vol.shape[0] == 12
    assert_matches_field(vol, float(vol.array.min()))
    assert acq.resampled["size"] == list(vol.size_xyz)
    # the naive reading (as if stacked along the normal) puts values at the wrong places
    naive = naive_read(folder)
    err = np.abs(naive.array - field_at(voxel_points(naive)).reshape(naive.shape))
    assert np.median(err) > 20


def predicted_shape(folder: Path) -> tuple[int, int, int]:
    """The grid the reader checks against its memory limit before reading any pixel (`grid_shape`)."""
    geometry = dicom_slice_geometry(sorted(folder.iterdir()))
    return grid_shape(geometry.planes(), max(float(geometry.gaps.min()), 0.5 * geometry.median_spacing))


def test_varying_tilt_is_resampled(linear_case, tmp_path):
    tilts = list(np.linspace(10.0, 25.0, 12))
    folder = series(linear_case, tmp_path, "varying", [3.0] * 11, tilts)
    vol, acq = read_dicom_scan(folder)
    assert acq.tilt_deg == pytest.approx((10.0, 25.0), abs=0.01)
    assert "gantry tilt varying from 10.0 to 25.0 degrees" in acq.notes[0]
    assert_matches_field(vol, float(vol.array.min()))
    assert predicted_shape(folder) == vol.shape


def test_uneven_spacing_is_resampled_at_the_finest_gap(linear_case, tmp_path):
    gaps = [2.5] * 4 + [5.0] * 4 + [7.0] * 3
    vol, acq = read_dicom_scan(series(linear_case, tmp_path, "uneven", gaps, 0.0))
    assert acq.gaps_mm == pytest.approx((2.5, 5.0, 7.0))
    assert "uneven slice spacing 2.50-7.00 mm (median 5.00 mm)" in acq.notes[0] and "gantry" not in acq.notes[0]
    assert vol.shape[0] == 22 and vol.spacing[2] == pytest.approx(51.0 / 21)     # 51 mm in steps <= 2.5 mm
    np.testing.assert_allclose(vol.direction, np.eye(3), atol=1e-9)
    assert_matches_field(vol, float(vol.array.min()))
    # tilt and uneven spacing together
    folder = series(linear_case, tmp_path, "both", gaps, 15.0)
    vol, acq = read_dicom_scan(folder)
    assert "gantry tilt 15.0 degrees and uneven slice spacing" in acq.notes[0]
    assert_matches_field(vol, float(vol.array.min()))
    assert predicted_shape(folder) == vol.shape


def test_regular_series_is_read_as_is(linear_case, tmp_path):
    vol, acq = read_dicom_scan(series(linear_case, tmp_path, "regular", [2.0] * 9, 0.0))
    assert acq.notes == [] and acq.resampled is None and acq.tilt_deg == (0.0, 0.0)
    assert vol.array.dtype == np.int16 and vol.shape == (10, 60, 60)
    assert_matches_field(vol, -10_000)


def test_missing_slice_is_refused_with_the_gap_named(linear_case, tmp_path):
    folder = series(linear_case, tmp_path, "missing", [2.0] * 9, 0.0, drop=[5])
    with pytest.raises(VolumeError) as err:
        read_dicom_scan(folder)
    msg = str(err.value)
    assert "\n" not in msg
    assert ("slices 5 and 6 (slice0004.dcm, slice0006.dcm) are 4.0 mm apart, the median spacing is 2.00 mm: "
            "1 slice is missing between") in msg
    # in an uneven series, a gap over twice the median
    folder = series(linear_case, tmp_path, "gap", [2.5] * 6 + [5.0] * 3 + [7.5], 20.0)
    with pytest.raises(VolumeError, match=r"slices 10 and 11 \(slice0009\.dcm, slice0010\.dcm\) are 7\.0 mm apart, "
                                          r"the median spacing is 2\.35 mm: 2 slices are missing between -?\d+\.\d\d and"):
        read_dicom_scan(folder)


def test_slices_of_another_orientation_are_refused_naming_them(linear_case, tmp_path):
    folder = series(linear_case, tmp_path, "mixed", [3.0] * 9, 0.0)
    for name, tilt in (("scout.dcm", 90.0), ("oblique.dcm", 40.0)):
        t = np.radians(tilt)
        write_dicom_slice(np.zeros((60, 60), np.int16), folder / name, (-30.0, -30.0, 0.0), (1, 0, 0),
                          (0, np.cos(t), np.sin(t)), (1.0, 1.0), 99)
    with pytest.raises(VolumeError, match=r"oblique\.dcm, scout\.dcm have another slice orientation than "
                                          r"slice0000\.dcm \(a localizer or another series mixed in\?\)"):
        read_dicom_scan(folder)


def test_rescale_slope_and_intercept_are_applied(linear_case, tmp_path):
    folder = series(linear_case, tmp_path, "rescaled", [2.0] * 5, 0.0, encoding="rescaled")
    vol, acq = read_dicom_scan(folder)
    raw = np.frombuffer((folder / "slice0000.dcm").read_bytes()[-60 * 60 * 2:], np.int16).reshape(60, 60)
    np.testing.assert_array_equal(vol.array[0], raw.astype(np.int32) - 1024)       # stored HU + 1024
    assert acq.values is None and acq.modality == "CT"
    assert_matches_field(vol, -10_000)


def test_8_bit_windowed_ct_is_converted_with_a_note(linear_case, tmp_path):
    folder = series(linear_case, tmp_path, "win8", [2.0] * 5, 0.0, encoding="window8", window=(100.0, 1000.0))
    vol, acq = read_dicom_scan(folder)
    assert acq.values == "8-bit window 100/1000"
    assert acq.notes == ["CT stored as 8-bit values with window centre 100 / width 1000: converted to Hounsfield "
                         "units -400 to 600 (values outside the window were clipped by the export and stay at its "
                         "ends)"]
    expected = np.clip(field_at(voxel_points(vol)).reshape(vol.shape), -400, 600)
    inside = (expected > -395) & (expected < 595)
    assert np.abs(vol.array[inside] - expected[inside]).max() <= 1000 / 255 + 0.01   # one 8-bit step
    assert looks_like_ct(vol) and image_is_ct(vol, "series") is True


def test_8_bit_ct_without_a_window_is_refused(tmp_path):
    ct = orbit_case(2, "ct", size=(96, 96, 24), oblique=False)
    pixels = stored_values(ct.image.array.astype(np.float32), "clip8")[0]
    folder = tmp_path / "clip8"
    folder.mkdir()
    for k in range(pixels.shape[0]):
        write_dicom_slice(pixels[k], folder / f"s{k:03d}.dcm", ct.image.index_to_physical((0, 0, k)),
                          ct.image.direction[:, 0], ct.image.direction[:, 1], ct.image.spacing[:2], k + 1)
    vol, acq = read_dicom_scan(folder)
    assert acq.values is None and vol.array.max() <= 255
    with pytest.raises(VolumeError, match=r"^series looks like CT stored as 8-bit values \(.*\) without a window in "
                                          r"its header"):
        image_is_ct(vol, "series")
    out = tmp_path / "out"
    assert main(["seg", "predict", str(folder), "--out", str(out), "--device", "cpu"]) == 2
    assert not out.exists()


def test_offset_1024_ct(tmp_path):
    ct = orbit_case(3, "ct", size=(96, 96, 24), oblique=False).image
    folder = tmp_path / "offset"
    folder.mkdir()
    stored = stored_values(ct.array.astype(np.float32), "offset1024")[0]
    for k in range(stored.shape[0]):
        write_dicom_slice(stored[k], folder / f"s{k:03d}.dcm", ct.index_to_physical((0, 0, k)), ct.direction[:, 0],
                          ct.direction[:, 1], ct.spacing[:2], k + 1)
    vol, acq = read_dicom_scan(folder)                 # DICOM says CT: the offset is certain, converted
    assert acq.values == "offset 1024" and "converted to Hounsfield units by subtracting 1024" in acq.notes[0]
    np.testing.assert_array_equal(vol.array, np.clip(ct.array, -1024, 3071).astype(np.int32))
    assert image_is_ct(vol) is True
    # the same values in a NRRD file: nothing says CT, so refused rather than guessed (or given to the MRI model)
    shifted = ct.with_array(stored)
    with pytest.raises(VolumeError, match=r"^scan\.nrrd looks like CT stored with 1024 added to its Hounsfield units "
                                          r"\(values 0 to \d+, none negative.*Subtract 1024"):
        image_is_ct(shifted, "scan.nrrd")
    assert not looks_like_ct(shifted)


@pytest.mark.parametrize("spacing", [(1e-4, 1e-4, 1e-4), (0.5, 0.5, 60.0), (0.01, 0.5, 0.5)])
def test_untrustworthy_spacing_is_refused_naming_it(tmp_path, spacing, capsys):
    ct = orbit_case(3, "ct", size=(64, 64, 16), oblique=False).image
    vol = Volume(ct.array, spacing, ct.origin, ct.direction)
    with pytest.raises(VolumeError, match=r"has a voxel spacing of .* mm, outside 0\.05-20 mm"):
        check_spacing(vol)
    path = write_volume(vol, tmp_path / "odd.nrrd")
    out = tmp_path / "out"
    assert main(["seg", "predict", str(path), "--out", str(out), "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    shown = " x ".join(f"{s:.4g}" for s in spacing)
    assert "\n" not in err and f"odd.nrrd has a voxel spacing of {shown} mm" in err
    assert not out.exists()


def test_structure_gap_warnings_name_structures_between_far_slices():
    labels = np.zeros((40, 10, 10), np.uint8)
    labels[5:15, 4:6, 4:6] = 3        # optic nerve, z 5-14 mm: slices 6 mm apart there
    labels[20:35, 2:8, 2:8] = 1       # eyeball, z 20-34 mm: 6 mm gaps, under its 12 mm limit
    lps = np.eye(4)
    positions = [0.0, 6.0, 12.0, 18.0, 24.0, 30.0, 36.0]
    warnings = structure_gap_warnings(labels, lps, {3: "optic_nerve", 1: "eyeball"}, positions, [0, 0, 1])
    assert warnings == ["optic nerve: the acquired slices through it are up to 6.0 mm apart (between 0.0 and 6.0 mm "
                        "along the slice normal), more than its 4 mm limit; its shape and volume between the slices "
                        "are interpolated, not measured"]
    assert structure_gap_warnings(labels, lps, {3: "optic_nerve"}, np.arange(0, 40, 2.0), [0, 0, 1]) == []


def test_file_acquisition_takes_the_thick_axis(tmp_path):
    vol = Volume(np.zeros((5, 8, 8), np.int16), (0.5, 0.5, 4.0), (0.0, 0.0, 10.0))
    _, acq = read_scan(write_volume(vol, tmp_path / "v.nrrd"))
    assert isinstance(acq, Acquisition) and acq.source == "file" and acq.notes == []
    np.testing.assert_allclose(acq.positions, [10, 14, 18, 22, 26])
    assert json.loads(json.dumps(acq.to_json()))["slice_gap_mm"] == {"min": 4.0, "median": 4.0, "max": 4.0}


@pytest.mark.slow
def test_seg_predict_on_a_tilted_series_returns_the_resampled_grid(tmp_path, capsys):
    case = orbit_case(5, "ct", orientation="axial", size=(160, 160, 130), spacing=(0.8, 0.8, 0.8), oblique=False)
    folder = write_clinical_series(case, tmp_path / "dicom", [2.5] * 19, 20.0, matrix=128, pixel_mm=1.0).folder
    vol, acq = read_dicom_scan(folder)
    out = tmp_path / "out"
    assert main(["seg", "predict", str(folder), "--out", str(out), "--device", "cpu", "--no-mirror"]) == 0
    printed = capsys.readouterr().out
    assert "note: 20 DICOM slices with gantry tilt 20.0 degrees: resampled onto a regular" in printed
    from orbitai.orbit.result import SegmentationResult

    res = SegmentationResult.read(out, reference=vol)         # on the resampled grid, which covers the series
    data = json.loads((out / "result.json").read_text())
    assert data["acquisition"]["tilt_deg"] == [20.0, 20.0] and data["acquisition"]["resampled"]["size"] == list(
        vol.size_xyz)
    eyes = {r["name"]: r["volume_cm3"] for r in res.volumes if r["structure"] == "eyeball"}
    assert all(4.0 < v < 10.0 for v in eyes.values())
    shutil.rmtree(folder)


@pytest.mark.parametrize("encoding", ["offset1024", "window8"])
def test_values_are_converted_before_a_tilted_series_is_resampled(tmp_path, encoding):
    case = orbit_case(4, "ct", orientation="axial", size=(112, 112, 72), spacing=(1.0, 1.0, 1.0), oblique=False)
    hu, _ = read_dicom_scan(write_clinical_series(case, tmp_path / "hu", [2.0] * 9, 15.0, matrix=96,
                                                  pixel_mm=1.0).folder)
    vol, acq = read_dicom_scan(write_clinical_series(case, tmp_path / encoding, [2.0] * 9, 15.0, matrix=96,
                                                     pixel_mm=1.0, encoding=encoding).folder)
    assert len(acq.notes) == 2 and "converted to Hounsfield units" in acq.notes[0]
    assert "gantry tilt 15.0 degrees" in acq.notes[1] and vol.same_geometry(hu)
    if encoding == "offset1024":
        np.testing.assert_allclose(vol.array, hu.array, atol=1e-3)
    else:
        from scipy import ndimage as ndi      # where no value nearby was clipped by the window (-160..240)

        inside = (ndi.minimum_filter(hu.array, 3) > -150) & (ndi.maximum_filter(hu.array, 3) < 230)
        assert inside.mean() > 0.2
        err = np.abs(vol.array[inside] - hu.array[inside])     # one 8-bit step (1.57 HU) + the HU rounding
        assert np.percentile(err, 99.9) <= 400 / 255 + 0.5 and err.max() < 5
    assert image_is_ct(vol) is True
