"""orbitai.io: geometry-exact round trips and clear errors for bad input."""
from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from orbitai.io import (Volume, VolumeError, read_volume, require_finite, resample_like, rotation,
                        resample_spacing, write_dicom_series, write_volume)


@pytest.fixture
def oblique() -> Volume:
    rng = np.random.default_rng(0)
    arr = rng.normal(size=(7, 9, 11)).astype(np.float32)
    return Volume(arr, (0.35, 0.4, 1.25), (-12.5, 30.25, 7.0), rotation(0.2, -0.1, 0.3))


@pytest.mark.parametrize("suffix", [".nrrd", ".nii.gz", ".nii", ".mha", ".mhd"])
def test_round_trip_keeps_oblique_geometry(tmp_path, oblique, suffix):
    path = write_volume(oblique, tmp_path / f"img{suffix}")
    back = read_volume(path)
    np.testing.assert_array_equal(back.array, oblique.array)
    assert back.array.dtype == np.float32
    np.testing.assert_allclose(back.spacing, oblique.spacing, atol=1e-6)
    np.testing.assert_allclose(back.origin, oblique.origin, atol=1e-5)
    np.testing.assert_allclose(back.direction, oblique.direction, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.uint16, np.int32])
def test_label_maps_keep_integer_type(tmp_path, dtype):
    arr = (np.arange(60).reshape(3, 4, 5) % 17).astype(dtype)
    vol = Volume(arr, (0.5, 0.5, 2.0))
    back = read_volume(write_volume(vol, tmp_path / "lab.nrrd"))
    assert back.array.dtype == dtype
    np.testing.assert_array_equal(back.array, arr)


def test_ras_matrix_matches_lps_convention(oblique):
    ijk = np.array([3.0, 4.0, 5.0, 1.0])
    lps = oblique.ijk_to_lps() @ ijk
    ras = oblique.ijk_to_ras() @ ijk
    np.testing.assert_allclose(ras[:3], lps[:3] * np.array([-1, -1, 1]))
    # SimpleITK agrees on the physical point of an index.
    img = oblique.to_sitk()
    np.testing.assert_allclose(img.TransformContinuousIndexToPhysicalPoint((3.0, 4.0, 5.0)), lps[:3], atol=1e-9)
    back = Volume.from_ijk_to_ras(oblique.array, oblique.ijk_to_ras())
    assert back.same_geometry(oblique)
    np.testing.assert_allclose(oblique.physical_to_index(lps[:3]), ijk[:3], atol=1e-9)


def test_dicom_series_round_trip(tmp_path, oblique):
    vol = oblique.with_array((oblique.array * 100).astype(np.int16))
    write_dicom_series(vol, tmp_path / "dcm")
    back = read_volume(tmp_path / "dcm")
    np.testing.assert_array_equal(back.array, vol.array)
    np.testing.assert_allclose(back.spacing, vol.spacing, atol=1e-4)
    np.testing.assert_allclose(back.origin, vol.origin, atol=1e-4)
    np.testing.assert_allclose(back.direction, vol.direction, atol=1e-4)


def test_resample_like_is_identity_on_same_grid(oblique):
    same = resample_like(oblique, oblique)
    np.testing.assert_allclose(same.array, oblique.array, atol=1e-5)
    coarse = resample_spacing(oblique, (0.7, 0.8, 2.5))
    assert coarse.shape[0] < oblique.shape[0] + 1
    np.testing.assert_allclose(coarse.direction, oblique.direction)


@pytest.mark.parametrize("shape, words", [((4, 5), "2D slice"), ((2, 3, 4, 5), "4D series"), ((0, 3, 3), "empty")])
def test_wrong_dimensionality_is_refused(shape, words):
    with pytest.raises(VolumeError, match=words):
        Volume(np.zeros(shape))


@pytest.mark.parametrize("spacing", [(0, 1, 1), (1, -1, 1), (1, float("nan"), 1), (1, 1)])
def test_bad_spacing_is_refused(spacing):
    with pytest.raises(VolumeError, match="spacing"):
        Volume(np.zeros((2, 2, 2)), spacing)


def test_non_orthonormal_direction_is_refused():
    with pytest.raises(VolumeError, match="orthonormal"):
        Volume(np.zeros((2, 2, 2)), direction=np.diag([1.0, 2.0, 1.0]))


def test_nan_is_reported():
    arr = np.zeros((3, 3, 3), np.float32)
    arr[1, 1, 1] = np.nan
    with pytest.raises(VolumeError, match="1 NaN"):
        require_finite(Volume(arr))


def test_with_array_shape_mismatch(oblique):
    with pytest.raises(VolumeError, match="does not match"):
        oblique.with_array(np.zeros((2, 2, 2)))


def test_reading_missing_corrupt_and_2d_files(tmp_path):
    with pytest.raises(VolumeError, match="No such file"):
        read_volume(tmp_path / "nope.nrrd")
    bad = tmp_path / "bad.nrrd"
    bad.write_bytes(b"this is not an image")
    with pytest.raises(VolumeError, match="Could not read"):
        read_volume(bad)
    sitk.WriteImage(sitk.Image(5, 5, sitk.sitkFloat32), str(tmp_path / "slice.nrrd"))
    with pytest.raises(VolumeError, match="3D image"):
        read_volume(tmp_path / "slice.nrrd")
    vec = sitk.Image([4, 4, 4], sitk.sitkVectorFloat32, 3)
    sitk.WriteImage(vec, str(tmp_path / "vec.nrrd"))
    with pytest.raises(VolumeError, match="scalar"):
        read_volume(tmp_path / "vec.nrrd")
    with pytest.raises(VolumeError, match="Unsupported output format"):
        write_volume(Volume(np.zeros((2, 2, 2))), tmp_path / "x.png")


def test_write_is_atomic_on_failure(tmp_path, oblique, monkeypatch):
    target = tmp_path / "out.nrrd"
    write_volume(oblique, target)
    before = target.read_bytes()

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(sitk, "WriteImage", boom)
    with pytest.raises(RuntimeError):
        write_volume(oblique, target)
    assert target.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]
