"""`JobInputWriter` writes, a slab at a time, the same scan `write_job_input` writes at once: SimpleITK reads back
the same voxels and geometry (oblique, anisotropic, every voxel type the scenes hold); nothing is under the file's
name until it is complete, and a writer closed half-way leaves nothing."""
from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from orbitai.io import Volume
from orbitai.jobs.inputs import JobInputWriter, write_job_input


def _oblique(dtype) -> Volume:
    rng = np.random.default_rng(3)
    a = (rng.normal(0, 300, (7, 11, 13))).astype(dtype)
    c, s = np.cos(0.4), np.sin(0.4)
    direction = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]) @ np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0.0]])
    return Volume(a, (0.43, 0.91, 2.5), (-12.25, 30.5, 7.75), direction)


@pytest.mark.parametrize("dtype", ["int16", "uint8", "float32", "float64", "int32", "uint16"])
def test_slab_by_slab_equals_the_ordinary_writer(tmp_path, dtype):
    vol = _oblique(dtype)
    ref = sitk.ReadImage(str(write_job_input(vol, tmp_path / "ref.nrrd")))
    w = JobInputWriter(vol, tmp_path / "image.nrrd", chunk_bytes=100)
    steps = 0
    while not w.step():
        steps += 1
        assert not (tmp_path / "image.nrrd").exists()          # not under its name until complete
    assert steps > 3
    got = sitk.ReadImage(str(tmp_path / "image.nrrd"))
    assert got.GetPixelID() == ref.GetPixelID()
    np.testing.assert_array_equal(sitk.GetArrayFromImage(got), sitk.GetArrayFromImage(ref))
    np.testing.assert_allclose(got.GetSpacing(), ref.GetSpacing(), rtol=1e-12)
    np.testing.assert_allclose(got.GetOrigin(), ref.GetOrigin(), rtol=1e-12)
    np.testing.assert_allclose(got.GetDirection(), ref.GetDirection(), atol=1e-12)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["image.nrrd", "ref.nrrd"]


def test_a_writer_closed_half_way_leaves_nothing(tmp_path):
    w = JobInputWriter(_oblique("int16"), tmp_path / "image.nrrd", chunk_bytes=64)
    assert not w.step()
    w.close()
    assert list(tmp_path.iterdir()) == []


def test_a_scans_dicom_tags_are_written_a_slab_at_a_time_and_read_back(tmp_path):
    """Issue 82: the DICOM tags a scan keeps (``metadata``, by number) go into the job's file, escaped as teem reads
    them back (a multi-valued tag's backslash), still a slab per step."""
    vol = _oblique("int16")
    vol.metadata.update({"0008|0060": "MR", "0018|0020": "SE\\IR", "0008|103e": "AX FLAIR; x:=y"})
    w = JobInputWriter(vol, tmp_path / "image.nrrd", chunk_bytes=64)
    assert not w.done and not w.step()
    while not w.step():
        pass
    got = sitk.ReadImage(str(tmp_path / "image.nrrd"))
    assert {k: got.GetMetaData(k) for k in vol.metadata} == vol.metadata
    np.testing.assert_array_equal(sitk.GetArrayFromImage(got), vol.array)


def test_a_volume_with_header_fields_it_cannot_write_is_written_at_once_by_the_ordinary_writer(tmp_path):
    vol = _oblique("int16")
    vol.metadata["0008|103e"] = "T2 réglé\tx"
    w = JobInputWriter(vol, tmp_path / "image.nrrd", chunk_bytes=64)
    assert w.done and w.step()
    assert sitk.ReadImage(str(tmp_path / "image.nrrd")).HasMetaDataKey("0008|103e")
