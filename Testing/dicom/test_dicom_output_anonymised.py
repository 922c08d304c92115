"""DICOM output never costs the result: an anonymised series without its type-2 patient and study attributes
(PatientBirthDate, PatientSex, StudyDate, AccessionNumber), tilted or not, gets a valid SEG and SR with those
attributes present and empty; and when the optional SEG/SR cannot be made, the segmentation, volumes and flags
are written with a warning (result.json and the command line), exit 0."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from orbitai.cli import main
from orbitai.io import write_dicom_series
from orbitai.orbit.result import SegmentationResult
from orbitai.phantoms.clinical_ct import write_clinical_series
from orbitai.phantoms.orbit import orbit_case

pytest.importorskip("highdicom", reason="install orbitai[dicom] (pydicom, highdicom)")
SEED = 777044  # never used for training cohorts
REMOVED = ("PatientBirthDate", "PatientSex", "StudyDate", "AccessionNumber")


def anonymise(folder: Path, extra: dict[str, str] | None = None) -> Path:
    """Remove :data:`REMOVED` from every file of ``folder`` (as an anonymiser does), set ``extra``."""
    import pydicom

    for path in folder.glob("*.dcm"):
        ds = pydicom.dcmread(path)
        for key in REMOVED:
            if key in ds:
                delattr(ds, key)
        for key, value in (extra or {}).items():
            setattr(ds, key, value)
        ds.save_as(path)
    return folder


def check_seg_and_sr(out: Path) -> None:
    import pydicom

    from test_seg_sr import dciodvfy_errors

    data = json.loads((out / "result.json").read_text())
    assert data["files"]["dicom_seg"] == "segmentation.dcm" and data["files"]["dicom_sr"] == "report.dcm"
    for name in ("segmentation.dcm", "report.dcm"):
        ds = pydicom.dcmread(out / name)
        for key in REMOVED:                         # type 2: present, empty
            assert key in ds and str(ds.get(key)) == "", (name, key)
        assert dciodvfy_errors(out / name) == []
    SegmentationResult.read(out)


def test_series_without_type2_attributes_gets_seg_and_sr(tmp_path, capsys):
    folder = anonymise(write_dicom_series(orbit_case(SEED, "ct").image, tmp_path / "series"))
    out = tmp_path / "out"
    assert main(["seg", "predict", str(folder), "--out", str(out), "--device", "cpu", "--no-mirror"]) == 0
    check_seg_and_sr(out)
    assert "not written" not in capsys.readouterr().out


def test_tilted_anonymised_series_with_an_invalid_sex_gets_seg_and_sr(tmp_path):
    case = orbit_case(SEED, "ct", orientation="axial", size=(128, 128, 96), spacing=(0.8, 0.8, 0.8), oblique=False)
    folder = write_clinical_series(case, tmp_path / "dicom", [2.5] * 15, 20.0, matrix=96, pixel_mm=1.0).folder
    anonymise(folder, {"GantryDetectorTilt": "20", "Manufacturer": "GE MEDICAL SYSTEMS"})
    import pydicom

    for path in folder.glob("*.dcm"):       # a value type 2 does not allow: written empty, not refused
        ds = pydicom.dcmread(path)
        ds.PatientSex = "U"
        ds.save_as(path)
    out = tmp_path / "out"
    assert main(["seg", "predict", str(folder), "--out", str(out), "--device", "cpu", "--no-mirror"]) == 0
    check_seg_and_sr(out)
    assert pydicom.dcmread(out / "segmentation.dcm").PatientSex == ""


def test_failed_dicom_output_keeps_the_result_with_a_warning(tmp_path, monkeypatch, capsys):
    from orbitai.dicom import DicomExportError, export

    def broken(*args, **kwargs):
        Path(args[5]).write_bytes(b"half a SEG")          # a partial file must not stay
        raise DicomExportError("The DICOM SEG cannot be made from this series: something odd")

    monkeypatch.setattr(export, "write_seg", broken)
    folder = write_dicom_series(orbit_case(SEED, "ct").image, tmp_path / "series")
    out = tmp_path / "out"
    assert main(["seg", "predict", str(folder), "--out", str(out), "--device", "cpu", "--no-mirror"]) == 0
    data = json.loads((out / "result.json").read_text())
    assert sorted(p.name for p in out.iterdir()) == ["result.json", "segmentation.seg.nrrd", "volumes.csv"]
    assert "dicom_seg" not in data["files"] and "dicom_sr" not in data["files"]
    (warning,) = [w for w in data["warnings"] if "DICOM SEG and SR not written" in w]
    assert "something odd" in warning and "the other results are complete" in warning
    assert "DICOM SEG and SR not written" in capsys.readouterr().out
    SegmentationResult.read(out)


def test_optional_dicom_removes_partial_files_and_warns(tmp_path):
    from orbitai.dicom.export import SEG_FILE, SOURCE_FOLDER, SR_FILE, optional_dicom

    def write() -> dict[str, str]:
        (tmp_path / SEG_FILE).write_bytes(b"x")
        (tmp_path / SOURCE_FOLDER).mkdir()
        raise AttributeError("'FileDataset' object has no attribute 'Rows'")

    warnings: list[str] = []
    assert optional_dicom(write, tmp_path, warnings) == {}
    assert not (tmp_path / SEG_FILE).exists() and not (tmp_path / SR_FILE).exists()
    assert not (tmp_path / SOURCE_FOLDER).exists()
    assert warnings == ["DICOM SEG and SR not written (AttributeError: 'FileDataset' object has no attribute "
                        "'Rows'); the other results are complete."]
