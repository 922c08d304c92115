"""DICOM messages say what the user gave: a study that is not a UID is named as such (not the DICOMweb client's
regular expression); a DICOM SEG given as --segmentation is named a SEG with how to use it; an error on a series
read from a DICOMweb URL (or chosen with --series) names the URL or folder given, never the temporary folder
made for it; a long header string is echoed shortened."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from orbitai.cli import main
from orbitai.io import Volume, write_dicom_series, write_volume
from orbitai.io.dicom_write import new_uid
from orbitai.phantoms.orbit import orbit_case
from orthanc_fixture import ORTHANC_INSTALL, find_orthanc, orthanc_server

pydicom = pytest.importorskip("pydicom")
SEED = 777048  # never used for training cohorts


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


@pytest.mark.parametrize("extra, message", [
    (["--study", "abc"], "'abc' is not a DICOM UID (digits and dots"),
    (["--study", "1.2.3", "--series", "1..2"], "'1..2' is not a DICOM UID"),
    (["--study", "1." + "2" * 70], "give the StudyInstanceUID"),
])
def test_fetch_with_a_study_that_is_no_uid_is_one_line(tmp_path, capsys, extra, message):
    pytest.importorskip("dicomweb_client")
    out = tmp_path / "out"
    assert main(["dicom", "fetch", "--url", "http://127.0.0.1:9/dicom-web", *extra, "--out", str(out)]) == 2
    line = one_error_line(capsys)
    assert message in line and "regex" not in line and len(line) < 300
    assert not out.exists()


def seg_file(path: Path) -> Path:
    """A DICOM SEG header (what reading it looks at)."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    ds = pydicom.Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.66.4"
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
    ds.Modality, ds.SeriesInstanceUID = "SEG", generate_uid()
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.mark.parametrize("task", ["tao", "ivgc"])
def test_a_seg_given_as_segmentation_says_it_is_a_seg_and_how_to_use_it(tmp_path, capsys, task):
    image = write_volume(orbit_case(SEED, "t2").image, tmp_path / "t2.nrrd")
    out = tmp_path / "out"
    code = main([task, "predict", str(image), "--segmentation", str(seg_file(tmp_path / "seg.dcm")), "--out",
                 str(out), "--device", "cpu"])
    assert code == 2 and not out.exists()
    line = one_error_line(capsys)
    assert "is a DICOM Segmentation (SEG)" in line and "--segmentation" in line and ".seg.nrrd" in line


def test_a_long_series_description_is_listed_shortened(tmp_path):
    from orbitai.io.dicom_folder import SeriesInfo

    text = SeriesInfo("1.2.3", "CT", "d" * 10_000, [tmp_path / "a.dcm"]).describe()
    assert "(10000 characters)" in text and len(text) < 200


def damaged_series(folder: Path, study: str | None = None) -> Path:
    """A phantom CT series with one slice missing (refused when read: the error names the folder)."""
    write_dicom_series(orbit_case(SEED, "ct").image, folder, "CT", study, new_uid() if study else None)
    sorted(folder.glob("*.dcm"))[5].unlink()
    return folder


def test_a_series_chosen_with_series_is_named_as_given(tmp_path, capsys):
    folder = damaged_series(tmp_path / "two")
    vol = orbit_case(SEED, "ct").image
    small = Volume(vol.array[::4, ::4, ::4].astype(np.int16), tuple(s * 4 for s in vol.spacing), vol.origin,
                   vol.direction)
    write_dicom_series(small, folder / "x", "CT", series_uid="1.2.826.0.1.3680043.2.1125.9.77")
    for f in (folder / "x").iterdir():
        f.rename(folder / f"scout_{f.name}")
    (folder / "x").rmdir()
    out = tmp_path / "out"
    assert main(["seg", "predict", str(folder), "--series", "1.2.826.0.1.3680043.2.1125.1.2", "--out", str(out),
                 "--device", "cpu"]) == 2
    line = one_error_line(capsys)
    assert "orbitai-input-" not in line and "series-0" not in line and str(folder) in line and "missing" in line


def test_an_error_on_a_url_series_names_the_url(tmp_path, capsys):
    pytest.importorskip("dicomweb_client")
    if find_orthanc() is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Orthanc is missing in CI: {ORTHANC_INSTALL}")
        pytest.skip(ORTHANC_INSTALL)
    from orbitai.dicom.web import push

    study = new_uid()
    folder = damaged_series(tmp_path / "series", study)
    series = str(pydicom.dcmread(next(folder.glob("*.dcm"))).SeriesInstanceUID)
    out = tmp_path / "out"
    with orthanc_server() as url:
        push([folder], url)
        given = f"{url}/studies/{study}/series/{series}"
        assert main(["seg", "predict", given, "--out", str(out), "--device", "cpu"]) == 2
    line = one_error_line(capsys)
    assert "orbitai-input-" not in line and "dicomweb-0" not in line and given in line and "missing" in line
    assert not out.exists()
